"""Backfill: run phases over a range of game dates, phase after phase, date after date.
A failed date does not stop the others; the run ends Failed naming every failed date."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date

from prefect import flow, get_run_logger

from flows.analytics import analytics
from flows.raw import raw
from hoopflow.settings import get_settings

PHASES = {"raw": raw, "analytics": analytics}


@dataclass
class PhaseResult:
    phase: str
    dates: list[date] = field(default_factory=list)
    failed: dict[date, str] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


class BackfillFailed(RuntimeError):
    pass


@flow(name="backfill", flow_run_name="backfill-{start}-{end}")
def backfill(start: date, end: date, phases: list[str] = ["raw"]) -> list[PhaseResult]:  # noqa: B006
    unknown = [p for p in phases if p not in PHASES]
    if unknown:
        raise ValueError(f"unknown phases {unknown}; known: {list(PHASES)}")
    logger = get_run_logger()
    dates = get_settings().source_block().game_dates(start, end)
    logger.info("%d game dates from %s to %s", len(dates), start, end)
    results = []
    for phase in phases:
        result, t0 = PhaseResult(phase, dates), time.perf_counter()
        for game_date in dates:
            state = PHASES[phase](game_date, return_state=True)
            if state.is_completed():
                for table, n in state.result().items():
                    result.rows[table] = result.rows.get(table, 0) + n
            else:
                result.failed[game_date] = state.message or state.name
                logger.error("%s %s failed: %s", phase, game_date, state.message)
        result.seconds = time.perf_counter() - t0
        results.append(result)
        if result.failed:
            listed = ", ".join(str(d) for d in result.failed)
            raise BackfillFailed(f"{phase}: {len(result.failed)} of {len(dates)} dates failed: {listed}")
    return results
