-- team_offense_game_summary: one row per team per game of game_date, its offence: the
-- schedule's two sides of each game, the box-score sums of its players, its shot chart split
-- by zone, possessions, pace, ratings (tasks.analytics.team_offense_game_summary, with
-- team_game_totals, zone_counts and shot_zone).
-- Params: game_date.
-- Float literals carry an exponent (0.44e0): DuckDB reads 0.44 as DECIMAL, 0.44e0 as DOUBLE,
-- BigQuery both as FLOAT64, so the arithmetic is float64 on both, as in pandas. A rate over
-- a zero denominator is NULL (_div: NULLIF). A scheduled team without box-score rows (pandas:
-- MissingInputError), or a team twice in one game (pandas: the one-to-one merge fails), gets
-- points NULL: points is NOT NULL, so writing the date's rows fails.
WITH team_sides AS (
  SELECT
    game_id,
    game_date,
    season,
    home_team_id AS team_id,
    home_team_abbreviation AS team_abbr,
    away_team_id AS opponent_team_id,
    TRUE AS home,
    home_pts AS final_points,
    away_pts AS opponent_final_points,
    num_ot AS overtime_periods
  FROM nba_raw.schedule
  WHERE game_date = @game_date
  UNION ALL
  SELECT
    game_id,
    game_date,
    season,
    away_team_id AS team_id,
    away_team_abbreviation AS team_abbr,
    home_team_id AS opponent_team_id,
    FALSE AS home,
    away_pts AS final_points,
    home_pts AS opponent_final_points,
    num_ot AS overtime_periods
  FROM nba_raw.schedule
  WHERE game_date = @game_date
),
team_sides_counted AS (
  SELECT s.*, COUNT(*) OVER (PARTITION BY s.game_id, s.team_id) AS sides_of_team
  FROM team_sides AS s
),
-- pandas sums skip NULLs (an all-NULL sum is 0).
box_totals AS (
  SELECT
    game_id,
    team_id,
    CAST(COALESCE(SUM(pts), 0) AS INT64) AS pts,
    CAST(COALESCE(SUM(fgm), 0) AS INT64) AS fgm,
    CAST(COALESCE(SUM(fga), 0) AS INT64) AS fga,
    CAST(COALESCE(SUM(fg3m), 0) AS INT64) AS fg3m,
    CAST(COALESCE(SUM(fg3a), 0) AS INT64) AS fg3a,
    CAST(COALESCE(SUM(ftm), 0) AS INT64) AS ftm,
    CAST(COALESCE(SUM(fta), 0) AS INT64) AS fta,
    CAST(COALESCE(SUM(oreb), 0) AS INT64) AS oreb,
    CAST(COALESCE(SUM(dreb), 0) AS INT64) AS dreb,
    CAST(COALESCE(SUM(reb), 0) AS INT64) AS reb,
    CAST(COALESCE(SUM(ast), 0) AS INT64) AS ast,
    CAST(COALESCE(SUM(stl), 0) AS INT64) AS stl,
    CAST(COALESCE(SUM(blk), 0) AS INT64) AS blk,
    CAST(COALESCE(SUM(tov), 0) AS INT64) AS tov,
    CAST(COALESCE(SUM(pf), 0) AS INT64) AS pf
  FROM nba_raw.player_boxscores
  WHERE game_date = @game_date
  GROUP BY game_id, team_id
),
-- shot_zone: every 3PT is a three; paint = Restricted Area + In The Paint (Non-RA), or no
-- zone and at most 8 ft; every other 2PT is mid-range.
zoned_shots AS (
  SELECT
    game_id,
    team_id,
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
zone_counts AS (
  SELECT
    game_id,
    team_id,
    SUM(CASE WHEN zone = 'paint' THEN 1 ELSE 0 END) AS paint_attempts,
    SUM(CASE WHEN zone = 'paint' THEN shot_made ELSE 0 END) AS paint_makes,
    SUM(CASE WHEN zone = 'mid_range' THEN 1 ELSE 0 END) AS mid_range_attempts,
    SUM(CASE WHEN zone = 'mid_range' THEN shot_made ELSE 0 END) AS mid_range_makes,
    SUM(CASE WHEN zone = 'three' THEN 1 ELSE 0 END) AS three_attempts,
    SUM(CASE WHEN zone = 'three' THEN shot_made ELSE 0 END) AS three_makes
  FROM zoned_shots
  GROUP BY game_id, team_id
),
team_totals AS (
  SELECT
    s.game_id,
    s.game_date,
    s.season,
    s.team_id,
    s.team_abbr,
    s.opponent_team_id,
    s.home,
    s.final_points,
    s.opponent_final_points,
    s.overtime_periods,
    CASE WHEN s.sides_of_team = 1 THEN b.pts END AS pts,
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
    CAST(COALESCE(z.paint_attempts, 0) AS INT64) AS paint_attempts,
    CAST(COALESCE(z.paint_makes, 0) AS INT64) AS paint_makes,
    CAST(COALESCE(z.mid_range_attempts, 0) AS INT64) AS mid_range_attempts,
    CAST(COALESCE(z.mid_range_makes, 0) AS INT64) AS mid_range_makes,
    CAST(COALESCE(z.three_attempts, 0) AS INT64) AS three_attempts,
    CAST(COALESCE(z.three_makes, 0) AS INT64) AS three_makes,
    b.fga + 0.44e0 * b.fta - b.oreb + b.tov AS possessions
  FROM team_sides_counted AS s
  LEFT JOIN box_totals AS b ON b.game_id = s.game_id AND b.team_id = s.team_id
  LEFT JOIN zone_counts AS z ON z.game_id = s.game_id AND z.team_id = s.team_id
)
SELECT
  game_id,
  game_date,
  season,
  team_id,
  team_abbr,
  opponent_team_id,
  home,
  pts AS points,
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
  possessions,
  100 * pts / NULLIF(possessions, 0) AS offensive_rating,
  -- Possessions per 48 minutes: 240 player-minutes + 25 per overtime period, over 5 players.
  possessions * 48 / ((240 + 25 * overtime_periods) / 5) AS pace,
  pts / NULLIF(2 * (fga + 0.44e0 * fta), 0) AS ts_pct,
  paint_attempts,
  paint_makes,
  mid_range_attempts,
  mid_range_makes,
  three_attempts,
  three_makes,
  2 * paint_makes AS points_in_paint,
  final_points > opponent_final_points AS win,
  final_points - opponent_final_points AS margin,
  overtime_periods
FROM team_totals
