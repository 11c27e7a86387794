-- player_game_context: rest and load of each player playing on game_date, from his raw
-- box-score rows of season strictly before the date (tasks.analytics.player_game_context).
-- Params: game_date, season, since_7 / since_14 / since_15 (= game_date - 7 / 14 / 15
-- days: "days_ago <= 7" is "game_date >= since_7"). Returns one row per player of the
-- date's player_game_summary, with last_game_date (NULL before his first game of the season);
-- days_rest and back_to_back are derived from it by the caller.
WITH today AS (
  SELECT game_id, game_date, season, player_id, team_id
  FROM nba_analytics.player_game_summary
  WHERE game_date = @game_date
),
earlier AS (
  SELECT b.player_id, b.game_date, b.min AS minutes
  FROM nba_raw.player_boxscores AS b
  WHERE b.season = @season
    AND b.game_date < @game_date
    AND b.player_id IN (SELECT player_id FROM today)
),
season_load AS (
  SELECT player_id, COUNT(*) AS games_played_season, MAX(game_date) AS last_game_date
  FROM earlier
  GROUP BY player_id
),
-- The days he played in the last 15 days: a game is the second of a back-to-back when he
-- also played the day before (a set lookup, like the pandas `played` set).
played AS (
  SELECT DISTINCT player_id, game_date
  FROM earlier
  WHERE game_date >= @since_15
),
recent AS (
  SELECT
    e.player_id,
    e.game_date,
    e.minutes,
    CASE WHEN p.player_id IS NULL THEN 0 ELSE 1 END AS second_of_b2b
  FROM earlier AS e
  LEFT JOIN played AS p
    ON p.player_id = e.player_id AND DATE_ADD(p.game_date, INTERVAL 1 DAY) = e.game_date
  WHERE e.game_date >= @since_14
),
recent_load AS (
  SELECT
    player_id,
    COUNT(CASE WHEN game_date >= @since_7 THEN 1 END) AS games_last_7_days,
    SUM(CASE WHEN game_date >= @since_7 THEN minutes END) AS minutes_last_7_days,
    COUNT(*) AS games_last_14_days,
    SUM(second_of_b2b) AS back_to_backs_last_14_days
  FROM recent
  GROUP BY player_id
)
SELECT
  t.game_id,
  t.game_date,
  t.season,
  t.player_id,
  t.team_id,
  COALESCE(s.games_played_season, 0) AS games_played_season,
  COALESCE(r.games_last_7_days, 0) AS games_last_7_days,
  COALESCE(r.minutes_last_7_days, 0) AS minutes_last_7_days,
  COALESCE(r.games_last_14_days, 0) AS games_last_14_days,
  COALESCE(r.back_to_backs_last_14_days, 0) AS back_to_backs_last_14_days,
  s.last_game_date
FROM today AS t
LEFT JOIN season_load AS s ON s.player_id = t.player_id
LEFT JOIN recent_load AS r ON r.player_id = t.player_id
