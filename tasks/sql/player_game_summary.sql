-- player_game_summary: one row per player per game in the box score of game_date, with his
-- shot chart split by zone, usage (from his team's row of the date's team_offense_game_summary),
-- true shooting and effective FG% (tasks.analytics.player_game_summary, with usage_rate,
-- zone_counts and shot_zone).
-- Params: game_date.
-- Float literals carry an exponent (0.44e0): DuckDB reads 0.44 as DECIMAL, 0.44e0 as DOUBLE,
-- BigQuery both as FLOAT64, so the arithmetic is float64 on both, as in pandas. A rate over
-- a zero denominator is NULL (_div: NULLIF). A player whose team has no team offense row
-- gets usage_rate, season, home and win NULL: win is NOT NULL, so writing the date's rows
-- fails (as the pandas rows fail TableSpec.conform).
WITH team_offense AS (
  SELECT game_id, team_id, season, home, win, fga, fta, tov, overtime_periods
  FROM nba_analytics.team_offense_game_summary
  WHERE game_date = @game_date
),
-- shot_zone: every 3PT is a three; paint = Restricted Area + In The Paint (Non-RA), or no
-- zone and at most 8 ft; every other 2PT is mid-range.
zoned_shots AS (
  SELECT
    game_id,
    player_id,
    shot_made,
    CASE
      WHEN shot_type = '3PT' THEN 'three'
      WHEN basic_zone IN ('Restricted Area', 'In The Paint (Non-RA)')
        OR (COALESCE(basic_zone, '') = '' AND shot_distance <= 8) THEN 'paint'
      ELSE 'mid_range'
    END AS zone
  FROM nba_raw.shots
  WHERE game_date = @game_date
),
-- By game and player (not team), like zone_counts(shots, ["game_id", "player_id"]).
zone_counts AS (
  SELECT
    game_id,
    player_id,
    SUM(CASE WHEN zone = 'paint' THEN 1 ELSE 0 END) AS paint_attempts,
    SUM(CASE WHEN zone = 'paint' THEN shot_made ELSE 0 END) AS paint_makes,
    SUM(CASE WHEN zone = 'mid_range' THEN 1 ELSE 0 END) AS mid_range_attempts,
    SUM(CASE WHEN zone = 'mid_range' THEN shot_made ELSE 0 END) AS mid_range_makes,
    SUM(CASE WHEN zone = 'three' THEN 1 ELSE 0 END) AS three_attempts,
    SUM(CASE WHEN zone = 'three' THEN shot_made ELSE 0 END) AS three_makes,
    COUNT(*) AS shot_chart_fga,
    SUM(CASE WHEN zone = 'three' THEN 1 ELSE 0 END) AS shot_chart_fg3a
  FROM zoned_shots
  GROUP BY game_id, player_id
),
players AS (
  SELECT
    b.game_id,
    b.game_date,
    t.season,
    b.player_id,
    b.player_name,
    b.team_id,
    b.team_abbreviation AS team_abbr,
    b.opp_team_id AS opponent_team_id,
    t.home,
    t.win,
    b.min AS minutes,
    b.pts,
    b.fgm,
    b.fga,
    b.fg3m,
    b.fg3a,
    b.ftm,
    b.fta,
    b.oreb,
    b.dreb,
    b.reb,
    b.ast,
    b.stl,
    b.blk,
    b.tov,
    b.pf,
    b.plus_minus,
    t.fga AS team_fga,
    t.fta AS team_fta,
    t.tov AS team_tov,
    t.overtime_periods,
    CAST(COALESCE(z.paint_attempts, 0) AS INT64) AS paint_attempts,
    CAST(COALESCE(z.paint_makes, 0) AS INT64) AS paint_makes,
    CAST(COALESCE(z.mid_range_attempts, 0) AS INT64) AS mid_range_attempts,
    CAST(COALESCE(z.mid_range_makes, 0) AS INT64) AS mid_range_makes,
    CAST(COALESCE(z.three_attempts, 0) AS INT64) AS three_attempts,
    CAST(COALESCE(z.three_makes, 0) AS INT64) AS three_makes,
    CAST(COALESCE(z.shot_chart_fga, 0) AS INT64) AS shot_chart_fga,
    CAST(COALESCE(z.shot_chart_fg3a, 0) AS INT64) AS shot_chart_fg3a
  FROM nba_raw.player_boxscores AS b
  LEFT JOIN team_offense AS t ON t.game_id = b.game_id AND t.team_id = b.team_id
  LEFT JOIN zone_counts AS z ON z.game_id = b.game_id AND z.player_id = b.player_id
  WHERE b.game_date = @game_date
),
-- usage_rate before the clip: 100·(FGA + 0.44·FTA + TOV)·(team minutes / 5) over
-- minutes·(team FGA + 0.44·team FTA + team TOV); NULL with 0 minutes or no team row.
usage AS (
  SELECT
    p.*,
    100 * (p.fga + 0.44e0 * p.fta + p.tov) * ((240 + 25 * p.overtime_periods) / 5)
      / NULLIF(
        CASE WHEN p.minutes > 0 THEN p.minutes END * (p.team_fga + 0.44e0 * p.team_fta + p.team_tov),
        0
      ) AS usage_unclipped
  FROM players AS p
)
SELECT
  game_id,
  game_date,
  season,
  player_id,
  player_name,
  team_id,
  team_abbr,
  opponent_team_id,
  home,
  minutes,
  pts,
  fgm,
  fga,
  fg3m,
  fg3a,
  ftm,
  fta,
  oreb,
  dreb,
  reb,
  ast,
  stl,
  blk,
  tov,
  pf,
  plus_minus,
  -- Clipped at 100 (minutes are rounded to whole minutes). CASE, not LEAST: DuckDB's LEAST
  -- skips a NULL argument, BigQuery's returns NULL.
  CASE WHEN usage_unclipped > 100 THEN 100 ELSE usage_unclipped END AS usage_rate,
  pts / NULLIF(2 * (fga + 0.44e0 * fta), 0) AS ts_pct,
  (fgm + 0.5e0 * fg3m) / NULLIF(fga, 0) AS efg_pct,
  paint_attempts,
  paint_makes,
  mid_range_attempts,
  mid_range_makes,
  three_attempts,
  three_makes,
  shot_chart_fga,
  -- The shot chart agrees with the box score: zone splits are complete for this row (a NULL
  -- box count makes it NULL unless the other count disagrees, as pandas' nullable `&`).
  shot_chart_fga = fga AND shot_chart_fg3a = fg3a AS has_complete_shot_zones,
  win
FROM usage
