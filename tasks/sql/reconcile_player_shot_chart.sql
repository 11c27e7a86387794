-- Per player-game of the date: NBA.com's box score beside its own shot chart (one row per
-- field-goal attempt). A full join: a player with attempts and no shot rows, or shot rows of a
-- player missing from the box, is compared against zeros rather than dropped.
WITH box AS (
    SELECT game_id, team_id, player_id, player_name, fga, fgm, fg3a, fg3m, ftm, pts
    FROM nba_raw.player_boxscores
    WHERE game_date = @game_date
),
chart AS (
    SELECT game_id, team_id, player_id,
           count(*) AS fga,
           sum(shot_made) AS fgm,
           sum(CASE WHEN shot_type = '3PT' THEN 1 ELSE 0 END) AS fg3a,
           sum(CASE WHEN shot_type = '3PT' THEN shot_made ELSE 0 END) AS fg3m,
           sum(CASE WHEN shot_type = '3PT' THEN 3 ELSE 2 END * shot_made) AS fg_points
    FROM nba_raw.shots
    WHERE game_date = @game_date
    GROUP BY game_id, team_id, player_id
)
SELECT COALESCE(b.game_id, c.game_id) AS game_id,
       COALESCE(b.team_id, c.team_id) AS team_id,
       COALESCE(b.player_id, c.player_id) AS player_id,
       b.player_name,
       COALESCE(b.fga, 0) AS box_fga, COALESCE(c.fga, 0) AS shot_chart_fga,
       COALESCE(b.fgm, 0) AS box_fgm, COALESCE(c.fgm, 0) AS shot_chart_fgm,
       COALESCE(b.fg3a, 0) AS box_fg3a, COALESCE(c.fg3a, 0) AS shot_chart_fg3a,
       COALESCE(b.fg3m, 0) AS box_fg3m, COALESCE(c.fg3m, 0) AS shot_chart_fg3m,
       COALESCE(b.pts, 0) AS box_pts, COALESCE(c.fg_points, 0) + COALESCE(b.ftm, 0) AS shot_chart_pts
FROM box b
FULL OUTER JOIN chart c ON c.game_id = b.game_id AND c.player_id = b.player_id
