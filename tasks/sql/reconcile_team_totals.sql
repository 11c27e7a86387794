-- Per team-game of the date: each scheduled side's final score beside the sums of its
-- players' box score (NULL sums: the team has no box rows, a teams_present finding).
WITH sides AS (
    SELECT game_id, home_team_id AS team_id, home_team_abbreviation AS team, home_pts AS final_score
    FROM nba_raw.schedule WHERE game_date = @game_date
    UNION ALL
    SELECT game_id, away_team_id AS team_id, away_team_abbreviation AS team, away_pts AS final_score
    FROM nba_raw.schedule WHERE game_date = @game_date
),
box AS (
    SELECT game_id, team_id,
           sum(pts) AS pts, sum(fgm) AS fgm, sum(fga) AS fga, sum(fg3m) AS fg3m, sum(fg3a) AS fg3a,
           sum(ftm) AS ftm, sum(fta) AS fta, sum(oreb) AS oreb, sum(dreb) AS dreb, sum(reb) AS reb,
           sum(ast) AS ast, sum(stl) AS stl, sum(blk) AS blk, sum(tov) AS tov, sum(pf) AS pf
    FROM nba_raw.player_boxscores
    WHERE game_date = @game_date
    GROUP BY game_id, team_id
)
SELECT s.game_id, s.team_id, s.team, s.final_score,
       b.pts, b.fgm, b.fga, b.fg3m, b.fg3a, b.ftm, b.fta, b.oreb, b.dreb, b.reb, b.ast, b.stl,
       b.blk, b.tov, b.pf
FROM sides s
LEFT JOIN box b ON b.game_id = s.game_id AND b.team_id = s.team_id
