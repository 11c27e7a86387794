-- player_shot_zone_analysis: each player playing on game_date (the date's
-- player_game_summary) with at least one earlier game of season: zone attempt rates and
-- FG% over his last 10 and last 20 games (by game_date, game_id), primary scoring zone over
-- the last 20, sample quality (tasks.precompute.player_shot_zone_analysis).
-- Params: game_date, season (both also written on every row).
WITH today AS (
  SELECT player_id, team_id
  FROM nba_analytics.player_game_summary
  WHERE game_date = @game_date
  QUALIFY ROW_NUMBER() OVER (PARTITION BY player_id ORDER BY game_id) = 1
),
numbered AS (
  SELECT
    s.player_id,
    s.paint_attempts,
    s.paint_makes,
    s.mid_range_attempts,
    s.mid_range_makes,
    s.three_attempts,
    s.three_makes,
    ROW_NUMBER() OVER (PARTITION BY s.player_id ORDER BY s.game_date DESC, s.game_id DESC) AS k
  FROM nba_analytics.player_game_summary AS s
  WHERE s.season = @season
    AND s.game_date < @game_date
    AND s.player_id IN (SELECT player_id FROM today)
),
sums AS (
  SELECT
    player_id,
    COUNT(CASE WHEN k <= 10 THEN 1 END) AS games_last_10,
    SUM(CASE WHEN k <= 10 THEN paint_attempts END) AS paint_attempts_10,
    SUM(CASE WHEN k <= 10 THEN paint_makes END) AS paint_makes_10,
    SUM(CASE WHEN k <= 10 THEN mid_range_attempts END) AS mid_range_attempts_10,
    SUM(CASE WHEN k <= 10 THEN mid_range_makes END) AS mid_range_makes_10,
    SUM(CASE WHEN k <= 10 THEN three_attempts END) AS three_attempts_10,
    SUM(CASE WHEN k <= 10 THEN three_makes END) AS three_makes_10,
    COUNT(*) AS games_last_20,
    SUM(paint_attempts) AS paint_attempts_20,
    SUM(paint_makes) AS paint_makes_20,
    SUM(mid_range_attempts) AS mid_range_attempts_20,
    SUM(mid_range_makes) AS mid_range_makes_20,
    SUM(three_attempts) AS three_attempts_20,
    SUM(three_makes) AS three_makes_20
  FROM numbered
  WHERE k <= 20
  GROUP BY player_id
),
points AS (
  SELECT
    s.*,
    s.paint_attempts_10 + s.mid_range_attempts_10 + s.three_attempts_10 AS attempts_10,
    s.paint_attempts_20 + s.mid_range_attempts_20 + s.three_attempts_20 AS attempts_20,
    2 * s.paint_makes_20 AS paint_points_20,
    2 * s.mid_range_makes_20 AS mid_range_points_20,
    3 * s.three_makes_20 AS three_points_20
  FROM sums AS s
)
SELECT
  @game_date AS game_date,
  @season AS season,
  t.player_id,
  t.team_id,
  p.games_last_10,
  p.paint_attempts_10 / NULLIF(p.attempts_10, 0) AS paint_rate_last_10,
  p.paint_makes_10 / NULLIF(p.paint_attempts_10, 0) AS paint_fg_pct_last_10,
  p.mid_range_attempts_10 / NULLIF(p.attempts_10, 0) AS mid_range_rate_last_10,
  p.mid_range_makes_10 / NULLIF(p.mid_range_attempts_10, 0) AS mid_range_fg_pct_last_10,
  p.three_attempts_10 / NULLIF(p.attempts_10, 0) AS three_rate_last_10,
  p.three_makes_10 / NULLIF(p.three_attempts_10, 0) AS three_fg_pct_last_10,
  p.games_last_20,
  p.paint_attempts_20 / NULLIF(p.attempts_20, 0) AS paint_rate_last_20,
  p.paint_makes_20 / NULLIF(p.paint_attempts_20, 0) AS paint_fg_pct_last_20,
  p.mid_range_attempts_20 / NULLIF(p.attempts_20, 0) AS mid_range_rate_last_20,
  p.mid_range_makes_20 / NULLIF(p.mid_range_attempts_20, 0) AS mid_range_fg_pct_last_20,
  p.three_attempts_20 / NULLIF(p.attempts_20, 0) AS three_rate_last_20,
  p.three_makes_20 / NULLIF(p.three_attempts_20, 0) AS three_fg_pct_last_20,
  -- pandas idxmax over (paint, mid_range, three) points: the first zone on a tie; NULL
  -- when he scored no field goal in the window.
  CASE
    WHEN p.paint_points_20 + p.mid_range_points_20 + p.three_points_20 > 0 THEN
      CASE
        WHEN p.paint_points_20 >= p.mid_range_points_20 AND p.paint_points_20 >= p.three_points_20 THEN 'paint'
        WHEN p.mid_range_points_20 >= p.three_points_20 THEN 'mid_range'
        ELSE 'three'
      END
  END AS primary_scoring_zone,
  CASE
    WHEN p.games_last_20 >= 10 THEN 'high'
    WHEN p.games_last_20 >= 5 THEN 'medium'
    ELSE 'low'
  END AS sample_quality
FROM today AS t
INNER JOIN points AS p ON p.player_id = t.player_id
