-- Per scheduled game of the date: what each NBA.com feed says of the game as a whole: its
-- overtimes (the schedule's count, the shot chart's last period, the box score's minutes) and
-- how many of its two teams each feed holds.
WITH chart AS (
    SELECT game_id, max(period) AS last_period, count(DISTINCT team_id) AS teams
    FROM nba_raw.shots
    WHERE game_date = @game_date
    GROUP BY game_id
),
box AS (
    SELECT game_id, count(DISTINCT team_id) AS teams, sum(min) AS minutes
    FROM nba_raw.player_boxscores
    WHERE game_date = @game_date
    GROUP BY game_id
)
SELECT s.game_id, s.home_team_id, s.away_team_id,
       s.home_team_abbreviation AS home_team, s.away_team_abbreviation AS away_team,
       s.num_ot, c.last_period, COALESCE(c.teams, 0) AS shot_chart_teams,
       COALESCE(b.teams, 0) AS box_teams, b.minutes AS box_minutes
FROM nba_raw.schedule s
LEFT JOIN chart c ON c.game_id = s.game_id
LEFT JOIN box b ON b.game_id = s.game_id
WHERE s.game_date = @game_date
