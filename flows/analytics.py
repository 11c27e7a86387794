"""Analytics phase, one game date: team offense ∥ team defense → player game summary
(usage needs team totals) → player game context (rest and load before the game)."""

from __future__ import annotations

from datetime import date

from prefect import flow

from tasks.analytics import (
    ensure_analytics_tables,
    player_context,
    player_summary,
    raw_inputs,
    team_defense,
    team_offense,
)


@flow(name="analytics", flow_run_name="analytics-{game_date}")
def analytics(game_date: date) -> dict[str, int]:
    """Rows written per analytics table for the date."""
    ensure_analytics_tables()
    season, raw_version, raw_history = raw_inputs(game_date)
    offense = team_offense.submit(game_date, raw_version)
    defense = team_defense.submit(game_date, raw_version)
    summary = player_summary.submit(game_date, raw_version, offense)
    context = player_context.submit(game_date, season, raw_history, summary)
    written = [f.result() for f in (offense, defense, summary, context)]
    return {w.table: w.rows for w in written}
