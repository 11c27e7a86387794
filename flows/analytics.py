"""Analytics phase over a range of game dates: per date, team offense ∥ team defense →
player game summary (usage needs team totals) → player game context (rest and load before
the game), declared in tasks/analytics.py."""

from __future__ import annotations

from datetime import date
from typing import Literal

from prefect import flow

from engine.phase_run import range_run_name, run_phase
from engine.runner import PhaseResult
from tasks.analytics import ANALYTICS
from tasks.phases import PHASES


@flow(name="analytics", flow_run_name=range_run_name("analytics"))
def analytics(
    start: date,
    end: date | None = None,
    reprocess: Literal["none", "failed", "all"] = "none",
    dates: list[date] | None = None,
) -> PhaseResult:
    """Transform the game dates in [start, end] (one date without `end`; only `dates` among
    them when given) that are not current; fails naming the dates that failed."""
    return run_phase(ANALYTICS, PHASES, start, end or start, reprocess, dates)
