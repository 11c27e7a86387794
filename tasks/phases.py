"""The phases, in pipeline order: their tables, their processors, and the state of each
(phase, date) as the run ledger records it. A phase reads what the phases before it wrote."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from itertools import chain
from typing import Literal

from blocks.sources import SOURCE_TABLES
from blocks.warehouse import TableSpec
from hoopflow.settings import get_settings
from tasks.analytics import ANALYTICS_TABLES, analytics_current_dates
from tasks.ledger import RUN_LEDGER, last_attempts
from tasks.precompute import PRECOMPUTE_TABLES, precompute_current_dates, precompute_processable
from tasks.raw import RAW_PLAYER_BOXSCORES, RAW_SCHEDULE, RAW_SHOTS, RAW_TABLES, raw_current_dates

PHASE_NAMES = ("raw", "analytics", "precompute")

PHASE_TABLES: dict[str, tuple[TableSpec, ...]] = {
    "raw": tuple(RAW_TABLES.values()),
    "analytics": ANALYTICS_TABLES,
    "precompute": PRECOMPUTE_TABLES,
}

# The processors (run-ledger names) whose success makes a table's partition for a date.
TABLE_PROCESSORS: dict[str, tuple[str, ...]] = {
    RAW_SCHEDULE.name: ("extract_schedule", "load_raw"),
    RAW_PLAYER_BOXSCORES.name: ("extract_player_box", "load_raw"),
    RAW_SHOTS.name: ("extract_shots", "load_raw"),
    **{spec.name: (spec.name,) for spec in (*ANALYTICS_TABLES, *PRECOMPUTE_TABLES)},
}
PHASE_PROCESSORS: dict[str, tuple[str, ...]] = {
    "raw": (*(f"extract_{t}" for t in SOURCE_TABLES), "load_raw"),
    "analytics": tuple(spec.name for spec in ANALYTICS_TABLES),
    "precompute": tuple(spec.name for spec in PRECOMPUTE_TABLES),
}

# Which dates of a phase are current: every processor last succeeded on today's inputs and code.
PHASE_CURRENT: dict[str, Callable[[list[date]], set[date]]] = {
    "raw": raw_current_dates,
    "analytics": analytics_current_dates,
    "precompute": precompute_current_dates,
}

# The dates a phase writes among the game dates (precompute: not a season's first 14 days).
PHASE_PROCESSABLE: dict[str, Callable[[list[date]], list[date]]] = {
    "precompute": precompute_processable,
}


def processable(phase: str, dates: list[date]) -> list[date]:
    return PHASE_PROCESSABLE[phase](dates) if phase in PHASE_PROCESSABLE else list(dates)

DATA_TABLES = tuple(chain(*PHASE_TABLES.values()))
TABLES: dict[str, TableSpec] = {spec.name: spec for spec in DATA_TABLES}
TABLE_PHASE: dict[str, str] = {spec.name: phase for phase, specs in PHASE_TABLES.items() for spec in specs}

# The state of a phase on a date:
#   current  every processor last succeeded on today's inputs and code (nothing to do)
#   stale    every processor succeeded, but its inputs or code have changed since
#   failed   a processor's last attempt failed
#   missing  never ran, or ran only partly (an interrupted run)
DateStatus = Literal["current", "stale", "failed", "missing"]
STATUSES: tuple[DateStatus, ...] = ("current", "stale", "failed", "missing")


def phase_status(phase: str, dates: list[date]) -> dict[date, DateStatus]:
    """The status of each date of the phase, from the run ledger."""
    if not dates:
        return {}
    warehouse = get_settings().warehouse_block()
    if not warehouse.has_table(RUN_LEDGER):
        return dict.fromkeys(dates, "missing")
    current = PHASE_CURRENT[phase](dates)
    attempts = last_attempts(warehouse, min(dates), max(dates))
    last = {(p, d): s for p, d, s in zip(attempts.processor, attempts.game_date, attempts.status, strict=True)}
    out: dict[date, DateStatus] = {}
    for d in dates:
        states = [last.get((p, d)) for p in PHASE_PROCESSORS[phase]]
        if d in current:
            out[d] = "current"
        elif "failed" in states:
            out[d] = "failed"
        elif all(s == "succeeded" for s in states):
            out[d] = "stale"
        else:
            out[d] = "missing"
    return out
