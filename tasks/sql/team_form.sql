-- team_form + league_pace (tasks.precompute): for each team playing on game_date (a team
-- or an opponent in the date's player_game_summary) with an earlier game of season, its
-- pace and offensive rating over its last 10 games (by game_date, game_id) and its win %
-- this season; every row carries league_pace, the mean pace of the league's team games of
-- the last 30 days. When no team has an earlier game, one row with team_id NULL still
-- carries league_pace.
-- Params: game_date, season, league_since (= game_date - 30 days).
WITH team_numbered AS (
  SELECT
    o.team_id,
    o.pace,
    o.offensive_rating,
    CASE WHEN o.win THEN 1 ELSE 0 END AS won,
    ROW_NUMBER() OVER (PARTITION BY o.team_id ORDER BY o.game_date DESC, o.game_id DESC) AS k
  FROM nba_analytics.team_offense_game_summary AS o
  WHERE o.season = @season
    AND o.game_date < @game_date
    AND (
      o.team_id IN (SELECT team_id FROM nba_analytics.player_game_summary WHERE game_date = @game_date)
      OR o.team_id IN (SELECT opponent_team_id FROM nba_analytics.player_game_summary WHERE game_date = @game_date)
    )
),
team_form AS (
  SELECT
    team_id,
    AVG(CASE WHEN k <= 10 THEN pace END) AS pace_last_10,
    AVG(CASE WHEN k <= 10 THEN offensive_rating END) AS offensive_rating_last_10,
    AVG(won) AS win_pct_season
  FROM team_numbered
  GROUP BY team_id
),
league AS (
  SELECT AVG(pace) AS league_pace
  FROM nba_analytics.team_offense_game_summary
  WHERE season = @season
    AND game_date < @game_date
    AND game_date >= @league_since
)
SELECT f.team_id, f.pace_last_10, f.offensive_rating_last_10, f.win_pct_season, l.league_pace
FROM league AS l
LEFT JOIN team_form AS f ON TRUE
