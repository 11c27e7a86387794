"""The phases without Prefect: the same task functions the phase flows run, called in the
flows' order as plain Python (`task.fn`). The benchmark measures orchestration overhead
against it, and tests build warehouses with it quickly. Production runs the flows."""

from __future__ import annotations

from datetime import date

from blocks.sources import SOURCE_TABLES
from hoopflow.settings import get_settings
from tasks import analytics as a
from tasks import precompute as pc
from tasks import raw as r


def raw_directly(game_date: date) -> dict[str, int]:
    if not get_settings().source_block().game_dates(game_date, game_date):
        return {}
    r.ensure_raw_tables()
    fingerprints = r.source_fingerprints(game_date)
    landed = {t: r.extract.fn(t, game_date, fingerprints[t]) for t in SOURCE_TABLES}
    return r.load_raw.fn(game_date, landed)


def analytics_directly(game_date: date) -> dict[str, int]:
    a.ensure_analytics_tables()
    inputs = a.analytics_inputs(game_date)
    fp = inputs.fingerprints
    written = [
        a.team_offense.fn(game_date, fp[a.TEAM_OFFENSE.name]),
        a.team_defense.fn(game_date, fp[a.TEAM_DEFENSE.name]),
        a.player_summary.fn(game_date, fp[a.PLAYER_GAME_SUMMARY.name]),
        a.player_context.fn(game_date, inputs.season, fp[a.PLAYER_GAME_CONTEXT.name]),
    ]
    return {w.table: w.rows for w in written}


def precompute_directly(game_date: date) -> dict[str, int]:
    pc.ensure_precompute_tables()
    inputs = pc.precompute_inputs(game_date)
    if inputs.bootstrap:
        return {}
    fp, season = inputs.fingerprints, inputs.season
    written = [
        pc.team_defense_zones.fn(game_date, season, fp[pc.TEAM_DEFENSE_ZONES.name]),
        pc.player_shot_zones.fn(game_date, season, fp[pc.PLAYER_SHOT_ZONES.name]),
        pc.daily_cache.fn(game_date, season, fp[pc.PLAYER_DAILY_CACHE.name]),
        pc.composite_factors.fn(game_date, season, fp[pc.PLAYER_COMPOSITE.name]),
        pc.feature_store.fn(game_date, season, fp[pc.ML_FEATURE_STORE.name]),
    ]
    return {w.table: w.rows for w in written}


PHASES_DIRECTLY = {"raw": raw_directly, "analytics": analytics_directly, "precompute": precompute_directly}


def run_directly(phases: list[str], dates: list[date]) -> dict[str, int]:
    """Every phase over every date, phase after phase (no cache, no validation)."""
    rows: dict[str, int] = {}
    for phase in phases:
        for d in dates:
            for table, n in PHASES_DIRECTLY[phase](d).items():
                rows[table] = rows.get(table, 0) + n
    return rows
