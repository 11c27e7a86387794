"""Analytics phase, one game date: team offense ∥ team defense → player game summary
(usage needs team totals) → player game context (rest and load before the game)."""

from __future__ import annotations

from datetime import date

from prefect import flow

from tasks.analytics import (
    PLAYER_GAME_CONTEXT,
    PLAYER_GAME_SUMMARY,
    TEAM_DEFENSE,
    TEAM_OFFENSE,
    analytics_inputs,
    ensure_analytics_tables,
    player_context,
    player_summary,
    team_defense,
    team_offense,
)
from tasks.locks import date_write_lock


@flow(name="analytics", flow_run_name="analytics-{game_date}")
def analytics(game_date: date) -> dict[str, int]:
    """Rows written per analytics table for the date."""
    ensure_analytics_tables()
    with date_write_lock(game_date):
        inputs = analytics_inputs(game_date)  # fails clearly when a raw partition is missing
        fp = inputs.fingerprints
        offense = team_offense.submit(game_date, fp[TEAM_OFFENSE.name])
        defense = team_defense.submit(game_date, fp[TEAM_DEFENSE.name])
        summary = player_summary.submit(game_date, fp[PLAYER_GAME_SUMMARY.name], wait_for=[offense])
        context = player_context.submit(
            game_date, inputs.season, fp[PLAYER_GAME_CONTEXT.name], wait_for=[summary]
        )
        written = [f.result() for f in (offense, defense, summary, context)]
    return {w.table: w.rows for w in written}
