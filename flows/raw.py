"""Raw phase, one game date: extract each source table to the landing zone, then load the
three landing files into `nba_raw` (all checked before any is written)."""

from __future__ import annotations

from datetime import date

from prefect import flow, get_run_logger

from blocks.sources import SOURCE_TABLES
from hoopflow.settings import get_settings
from tasks.raw import ensure_raw_tables, extract, load_raw, source_fingerprints
from tasks.locks import date_write_lock


@flow(name="raw", flow_run_name="raw-{game_date}")
def raw(game_date: date) -> dict[str, int]:
    """Rows written per raw table for the date ({} when the date has no games)."""
    if not get_settings().source_block().game_dates(game_date, game_date):
        get_run_logger().info("No games on %s: nothing to extract", game_date)
        return {}
    ensure_raw_tables()
    with date_write_lock(game_date):
        fingerprints = source_fingerprints(game_date)
        landed = {t: extract.submit(t, game_date, fingerprints[t]) for t in SOURCE_TABLES}
        return load_raw(game_date, {t: f.result() for t, f in landed.items()})
