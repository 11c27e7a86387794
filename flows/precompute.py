"""Precompute phase over a range of game dates: per date, team defence zones ∥ player shot
zones ∥ player daily cache → composite factors → the ML feature store, declared in
tasks/precompute.py. Every row describes the state *before* the date's games; nothing is
written in a season's first 14 days (bootstrap)."""

from __future__ import annotations

from datetime import date
from typing import Literal

from prefect import flow

from engine.phase_run import range_run_name, run_phase
from engine.runner import PhaseResult
from tasks.phases import PHASES
from tasks.precompute import PRECOMPUTE


@flow(name="precompute", flow_run_name=range_run_name("precompute"))
def precompute(
    start: date,
    end: date | None = None,
    reprocess: Literal["none", "failed", "all"] = "none",
    dates: list[date] | None = None,
) -> PhaseResult:
    """Precompute the game dates in [start, end] (one date without `end`; only `dates` among
    them when given) past the bootstrap days that are not current; fails naming the failed dates."""
    return run_phase(PRECOMPUTE, PHASES, start, end or start, reprocess, dates)
