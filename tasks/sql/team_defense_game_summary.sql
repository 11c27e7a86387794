-- team_defense_game_summary: one row per defending team per game of game_date: what its
-- opponent did against it, read from the opponent's team_offense_game_summary row of the
-- date (written first), plus its own steals, blocks and defensive rebounds
-- (tasks.analytics.team_defense_game_summary).
-- Params: game_date.
-- A team whose opponent has no offence row gets points_allowed NULL: points_allowed is
-- NOT NULL, so writing the date's rows fails rather than writing a half-empty game.
WITH offense AS (
  SELECT *
  FROM nba_analytics.team_offense_game_summary
  WHERE game_date = @game_date
)
SELECT
  t.game_id,
  t.game_date,
  t.season,
  t.team_id,
  t.team_abbr,
  t.opponent_team_id,
  t.home,
  t.overtime_periods,
  o.points AS points_allowed,
  o.fgm AS opp_fgm,
  o.fga AS opp_fga,
  o.fg3m AS opp_fg3m,
  o.fg3a AS opp_fg3a,
  o.ftm AS opp_ftm,
  o.fta AS opp_fta,
  o.oreb AS opp_oreb,
  o.tov AS opp_tov,
  o.paint_attempts AS opp_paint_attempts,
  o.paint_makes AS opp_paint_makes,
  o.mid_range_attempts AS opp_mid_range_attempts,
  o.mid_range_makes AS opp_mid_range_makes,
  o.three_attempts AS opp_three_attempts,
  o.three_makes AS opp_three_makes,
  o.possessions AS opp_possessions,
  100 * o.points / NULLIF(o.possessions, 0) AS defensive_rating,
  o.pace AS opponent_pace,
  o.ts_pct AS opp_ts_pct,
  t.stl AS steals,
  t.blk AS blocks,
  t.dreb AS defensive_rebounds,
  o.tov AS turnovers_forced
FROM offense AS t
LEFT JOIN offense AS o ON o.game_id = t.game_id AND o.team_id = t.opponent_team_id
