"""Raw phase over a range of game dates: per date, the schedule, then the box scores and the
shot chart (both checked against the date's schedule), each landed as received, typed and
loaded into `nba_raw` (declared in tasks/raw.py)."""

from __future__ import annotations

from datetime import date
from typing import Literal

from prefect import flow

from engine.phase_run import range_run_name, run_phase
from engine.runner import PhaseResult
from tasks.phases import PHASES
from tasks.raw import RAW


@flow(name="raw", flow_run_name=range_run_name("raw"))
def raw(
    start: date,
    end: date | None = None,
    reprocess: Literal["none", "failed", "all"] = "none",
    dates: list[date] | None = None,
) -> PhaseResult:
    """Extract and load the game dates in [start, end] (one date without `end`; only `dates`
    among them when given) that are not current; fails naming the dates that failed."""
    return run_phase(RAW, PHASES, start, end or start, reprocess, dates)
