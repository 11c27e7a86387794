-- player_daily_cache: each player playing on game_date (the date's player_game_summary)
-- with at least min_games earlier games of season: scoring, minutes, usage and efficiency
-- over the season, his last 5 and last 10 games (by game_date, game_id), and his team's
-- (today's team) form: pace and offensive rating over its last 10 games, win % this season
-- (tasks.precompute.player_daily_cache and team_form).
-- Params: game_date, season (both also written on every row), min_games.
WITH today AS (
  SELECT player_id, team_id
  FROM nba_analytics.player_game_summary
  WHERE game_date = @game_date
  QUALIFY ROW_NUMBER() OVER (PARTITION BY player_id ORDER BY game_id) = 1
),
numbered AS (
  SELECT
    s.player_id,
    s.pts,
    s.minutes,
    s.usage_rate,
    s.fga,
    s.fta,
    ROW_NUMBER() OVER (PARTITION BY s.player_id ORDER BY s.game_date DESC, s.game_id DESC) AS k
  FROM nba_analytics.player_game_summary AS s
  WHERE s.season = @season
    AND s.game_date < @game_date
    AND s.player_id IN (SELECT player_id FROM today)
),
player_windows AS (
  SELECT
    player_id,
    COUNT(*) AS games_played_season,
    AVG(pts) AS points_avg_season,
    AVG(CASE WHEN k <= 5 THEN pts END) AS points_avg_last_5,
    AVG(CASE WHEN k <= 10 THEN pts END) AS points_avg_last_10,
    STDDEV_SAMP(CASE WHEN k <= 10 THEN pts END) AS points_std_last_10,
    AVG(CASE WHEN k <= 10 THEN minutes END) AS minutes_avg_last_10,
    AVG(CASE WHEN k <= 5 THEN usage_rate END) AS usage_avg_last_5,
    AVG(CASE WHEN k <= 10 THEN usage_rate END) AS usage_avg_last_10,
    AVG(usage_rate) AS usage_avg_season,
    SUM(CASE WHEN k <= 10 THEN pts END) AS pts_10,
    SUM(CASE WHEN k <= 10 THEN fga END) AS fga_10,
    SUM(CASE WHEN k <= 10 THEN fta END) AS fta_10
  FROM numbered
  GROUP BY player_id
  HAVING COUNT(*) >= @min_games
),
team_numbered AS (
  SELECT
    o.team_id,
    o.pace,
    o.offensive_rating,
    CASE WHEN o.win THEN 1 ELSE 0 END AS won,
    ROW_NUMBER() OVER (PARTITION BY o.team_id ORDER BY o.game_date DESC, o.game_id DESC) AS k
  FROM nba_analytics.team_offense_game_summary AS o
  WHERE o.season = @season
    AND o.game_date < @game_date
    AND o.team_id IN (SELECT team_id FROM today)
),
team_form AS (
  SELECT
    team_id,
    AVG(CASE WHEN k <= 10 THEN pace END) AS pace_last_10,
    AVG(CASE WHEN k <= 10 THEN offensive_rating END) AS offensive_rating_last_10,
    AVG(won) AS win_pct_season
  FROM team_numbered
  GROUP BY team_id
)
SELECT
  @game_date AS game_date,
  @season AS season,
  t.player_id,
  t.team_id,
  w.games_played_season,
  w.points_avg_season,
  w.points_avg_last_5,
  w.points_avg_last_10,
  w.points_std_last_10,
  w.minutes_avg_last_10,
  w.usage_avg_last_5,
  w.usage_avg_last_10,
  w.usage_avg_season,
  w.pts_10 / NULLIF(2 * (w.fga_10 + 0.44 * w.fta_10), 0) AS ts_pct_last_10,
  f.pace_last_10 AS team_pace_last_10,
  f.offensive_rating_last_10 AS team_offensive_rating_last_10,
  f.win_pct_season AS team_win_pct_season
FROM today AS t
INNER JOIN player_windows AS w ON w.player_id = t.player_id
LEFT JOIN team_form AS f ON f.team_id = t.team_id
