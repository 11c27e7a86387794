"""Precompute phase, one game date: team defence zones ∥ player shot zones → player daily
cache → composite factors → the ML feature store. Every row describes the state *before*
the date's games; nothing is written in a season's first 14 days (bootstrap)."""

from __future__ import annotations

from datetime import date

from prefect import flow, get_run_logger

from tasks.precompute import (
    ML_FEATURE_STORE,
    PLAYER_COMPOSITE,
    PLAYER_DAILY_CACHE,
    PLAYER_SHOT_ZONES,
    TEAM_DEFENSE_ZONES,
    composite_factors,
    daily_cache,
    ensure_precompute_tables,
    feature_store,
    player_shot_zones,
    precompute_inputs,
    team_defense_zones,
)
from tasks.locks import date_write_lock


@flow(name="precompute", flow_run_name="precompute-{game_date}")
def precompute(game_date: date) -> dict[str, int]:
    """Rows written per precompute table for the date ({} inside the bootstrap days)."""
    ensure_precompute_tables()
    inputs = precompute_inputs(game_date)  # fails clearly when an analytics partition is missing
    if inputs.bootstrap:
        get_run_logger().info(
            "%s is inside %s's first 14 days (season start %s): nothing to precompute",
            game_date, inputs.season, inputs.season_start,
        )  # fmt: skip
        return {}
    fp, season = inputs.fingerprints, inputs.season
    with date_write_lock(game_date):
        defense = team_defense_zones.submit(game_date, season, fp[TEAM_DEFENSE_ZONES.name])
        zones = player_shot_zones.submit(game_date, season, fp[PLAYER_SHOT_ZONES.name])
        cache = daily_cache.submit(game_date, season, fp[PLAYER_DAILY_CACHE.name], wait_for=[defense, zones])
        composite = composite_factors.submit(game_date, season, fp[PLAYER_COMPOSITE.name], wait_for=[cache])
        store = feature_store.submit(game_date, season, fp[ML_FEATURE_STORE.name], wait_for=[composite])
        written = [f.result() for f in (defense, zones, cache, composite, store)]
    return {w.table: w.rows for w in written}
