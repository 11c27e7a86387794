-- team_defense_zone_analysis: each team playing on game_date (its team offense row of the
-- date) with at least one earlier game of season: opponent FG% by zone over its last 15
-- games (by game_date, game_id) against the league's over the last 30 days; strongest and
-- weakest zone (tasks.precompute.team_defense_zone_analysis).
-- Params: game_date, season (both also written on every row), defense_window (15), league_since (= game_date - 30 days).
WITH today AS (
  SELECT DISTINCT team_id
  FROM nba_analytics.team_offense_game_summary
  WHERE game_date = @game_date
),
numbered AS (
  SELECT
    d.*,
    ROW_NUMBER() OVER (PARTITION BY d.team_id ORDER BY d.game_date DESC, d.game_id DESC) AS k
  FROM nba_analytics.team_defense_game_summary AS d
  WHERE d.season = @season
    AND d.game_date < @game_date
    AND d.team_id IN (SELECT team_id FROM today)
),
team_window AS (
  SELECT
    team_id,
    COUNT(*) AS games_in_window,
    MIN(game_date) AS window_first_date,
    AVG(defensive_rating) AS defensive_rating_last_15,
    AVG(opponent_pace) AS opponent_pace_last_15,
    SUM(opp_paint_attempts) AS paint_attempts,
    SUM(opp_paint_makes) AS paint_makes,
    SUM(opp_mid_range_attempts) AS mid_range_attempts,
    SUM(opp_mid_range_makes) AS mid_range_makes,
    SUM(opp_three_attempts) AS three_attempts,
    SUM(opp_three_makes) AS three_makes
  FROM numbered
  WHERE k <= @defense_window
  GROUP BY team_id
),
-- Every team's games of the last 30 days (not only today's teams, not windowed).
league AS (
  SELECT
    SUM(opp_paint_makes) / NULLIF(SUM(opp_paint_attempts), 0) AS league_paint_fg_pct,
    SUM(opp_mid_range_makes) / NULLIF(SUM(opp_mid_range_attempts), 0) AS league_mid_range_fg_pct,
    SUM(opp_three_makes) / NULLIF(SUM(opp_three_attempts), 0) AS league_three_fg_pct
  FROM nba_analytics.team_defense_game_summary
  WHERE season = @season
    AND game_date < @game_date
    AND game_date >= @league_since
),
zones AS (
  SELECT
    w.*,
    w.paint_makes / NULLIF(w.paint_attempts, 0) AS paint_fg_pct_allowed,
    w.mid_range_makes / NULLIF(w.mid_range_attempts, 0) AS mid_range_fg_pct_allowed,
    w.three_makes / NULLIF(w.three_attempts, 0) AS three_fg_pct_allowed,
    l.league_paint_fg_pct,
    l.league_mid_range_fg_pct,
    l.league_three_fg_pct
  FROM team_window AS w
  CROSS JOIN league AS l
),
versus AS (
  SELECT
    z.*,
    z.paint_fg_pct_allowed - z.league_paint_fg_pct AS paint_vs_league,
    z.mid_range_fg_pct_allowed - z.league_mid_range_fg_pct AS mid_range_vs_league,
    z.three_fg_pct_allowed - z.league_three_fg_pct AS three_vs_league
  FROM zones AS z
)
SELECT
  @game_date AS game_date,
  @season AS season,
  team_id,
  games_in_window,
  window_first_date,
  defensive_rating_last_15,
  opponent_pace_last_15,
  paint_attempts,
  paint_makes,
  mid_range_attempts,
  mid_range_makes,
  three_attempts,
  three_makes,
  paint_fg_pct_allowed,
  league_paint_fg_pct,
  paint_vs_league,
  mid_range_fg_pct_allowed,
  league_mid_range_fg_pct,
  mid_range_vs_league,
  three_fg_pct_allowed,
  league_three_fg_pct,
  three_vs_league,
  -- pandas idxmin / idxmax over (paint, mid_range, three), NULLs skipped, the first zone on
  -- a tie; NULL when all three are NULL.
  CASE
    WHEN paint_vs_league IS NOT NULL
      AND (mid_range_vs_league IS NULL OR paint_vs_league <= mid_range_vs_league)
      AND (three_vs_league IS NULL OR paint_vs_league <= three_vs_league) THEN 'paint'
    WHEN mid_range_vs_league IS NOT NULL
      AND (three_vs_league IS NULL OR mid_range_vs_league <= three_vs_league) THEN 'mid_range'
    WHEN three_vs_league IS NOT NULL THEN 'three'
  END AS strongest_zone,
  CASE
    WHEN paint_vs_league IS NOT NULL
      AND (mid_range_vs_league IS NULL OR paint_vs_league >= mid_range_vs_league)
      AND (three_vs_league IS NULL OR paint_vs_league >= three_vs_league) THEN 'paint'
    WHEN mid_range_vs_league IS NOT NULL
      AND (three_vs_league IS NULL OR mid_range_vs_league >= three_vs_league) THEN 'mid_range'
    WHEN three_vs_league IS NOT NULL THEN 'three'
  END AS weakest_zone
FROM versus
