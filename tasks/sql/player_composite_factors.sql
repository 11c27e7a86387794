-- player_composite_factors: adjustments for each player of the date's player_daily_cache
-- (tasks.precompute.player_composite_factors): fatigue 0–100 (fatigue_score), shot-zone
-- mismatch ±10 (his zone rates over his last 20 games × his opponent's zone defence vs the
-- league), pace ±3 (his team's and his opponent's pace over their last 10 games vs the
-- league's over the last 30 days), usage spike ±3, and their sum.
-- Params: game_date, season, league_since (= game_date - 30 days).
WITH players AS (
  SELECT player_id, opponent_team_id
  FROM nba_analytics.player_game_summary
  WHERE game_date = @game_date
  QUALIFY ROW_NUMBER() OVER (PARTITION BY player_id ORDER BY game_id) = 1
),
opponent_games AS (
  SELECT
    o.team_id,
    o.pace,
    ROW_NUMBER() OVER (PARTITION BY o.team_id ORDER BY o.game_date DESC, o.game_id DESC) AS k
  FROM nba_analytics.team_offense_game_summary AS o
  WHERE o.season = @season
    AND o.game_date < @game_date
    AND o.team_id IN (SELECT opponent_team_id FROM players)
),
opponent_pace AS (
  SELECT team_id, AVG(pace) AS pace_last_10
  FROM opponent_games
  WHERE k <= 10
  GROUP BY team_id
),
league AS (
  SELECT AVG(pace) AS league_pace
  FROM nba_analytics.team_offense_game_summary
  WHERE season = @season
    AND game_date < @game_date
    AND game_date >= @league_since
),
inputs AS (
  SELECT
    c.player_id,
    c.team_id,
    p.opponent_team_id,
    c.usage_avg_last_5,
    c.usage_avg_season,
    -- a player's first game has no rest to count: NULL, then 0
    35 * CASE WHEN x.back_to_back THEN 1.0 ELSE 0.0 END
      + 12 * GREATEST(x.games_last_7_days - 2, 0)
      + 0.25 * GREATEST(x.minutes_last_7_days - 90, 0)
      + 6 * x.back_to_backs_last_14_days AS fatigue_raw,
    z.paint_rate_last_20 * d.paint_vs_league AS paint_term,
    z.mid_range_rate_last_20 * d.mid_range_vs_league AS mid_range_term,
    z.three_rate_last_20 * d.three_vs_league AS three_term,
    (c.team_pace_last_10 + op.pace_last_10) / 2 - l.league_pace AS pace_edge
  FROM nba_precompute.player_daily_cache AS c
  INNER JOIN players AS p ON p.player_id = c.player_id
  LEFT JOIN nba_analytics.player_game_context AS x
    ON x.player_id = c.player_id AND x.game_date = @game_date
  LEFT JOIN nba_precompute.player_shot_zone_analysis AS z
    ON z.player_id = c.player_id AND z.game_date = @game_date
  LEFT JOIN nba_precompute.team_defense_zone_analysis AS d
    ON d.team_id = p.opponent_team_id AND d.game_date = @game_date
  LEFT JOIN opponent_pace AS op ON op.team_id = p.opponent_team_id
  CROSS JOIN league AS l
  WHERE c.game_date = @game_date
),
factors AS (
  SELECT
    player_id,
    team_id,
    opponent_team_id,
    LEAST(GREATEST(COALESCE(fatigue_raw, 0), 0), 100) AS fatigue_score,
    -- known: at least one zone has both his rate and the opponent's defence
    CASE
      WHEN paint_term IS NULL AND mid_range_term IS NULL AND three_term IS NULL THEN 0.0
      ELSE LEAST(GREATEST(200 * (COALESCE(paint_term, 0) + COALESCE(mid_range_term, 0) + COALESCE(three_term, 0)), -10), 10)
    END AS shot_zone_mismatch,
    NOT (paint_term IS NULL AND mid_range_term IS NULL AND three_term IS NULL) AS shot_zone_mismatch_known,
    LEAST(GREATEST(COALESCE(0.3 * pace_edge, 0), -3), 3) AS pace_adjustment,
    LEAST(GREATEST(COALESCE(0.5 * (usage_avg_last_5 - usage_avg_season), 0), -3), 3) AS usage_spike
  FROM inputs
)
SELECT
  @game_date AS game_date,
  @season AS season,
  player_id,
  team_id,
  opponent_team_id,
  fatigue_score,
  shot_zone_mismatch,
  shot_zone_mismatch_known,
  pace_adjustment,
  usage_spike,
  shot_zone_mismatch + pace_adjustment + usage_spike - fatigue_score / 20 AS total_adjustment
FROM factors
