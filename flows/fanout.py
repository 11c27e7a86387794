"""The fan-out children of a backfill (`executor="deployments"`): one flow per phase that
runs the phase over a chunk of dates, one subflow per date, on whatever pool its deployment
names. Each ends Failed when any of its dates failed; the parent validates the phase."""

from __future__ import annotations

from datetime import date
from typing import Literal

from prefect import flow, get_run_logger

from flows.analytics import analytics
from flows.precompute import precompute
from flows.raw import raw
from hoopflow.settings import get_settings
from tasks.backfill import ChunkFailed, PhaseResult, PhaseRunner, Progress
from tasks.phases import processable

PHASE_FLOWS = {"raw": raw, "analytics": analytics, "precompute": precompute}
Reprocess = Literal["none", "failed", "all"]


def _run_chunk(phase: str, start: date, end: date, reprocess: str) -> PhaseResult:
    dates = processable(phase, get_settings().source_block().game_dates(start, end))
    progress = Progress(len(dates), key=f"{phase}-range-progress", description=f"{phase} {start} → {end}")
    result = PhaseRunner(PHASE_FLOWS, reprocess, progress, get_run_logger()).run(phase, dates, "chunk")
    progress.finish()
    if result.failed:
        raise ChunkFailed(result)
    return result


@flow(name="raw-range", flow_run_name="raw-{start}-{end}")
def raw_range(start: date, end: date, reprocess: Reprocess = "none") -> PhaseResult:
    """The raw phase over the game dates in [start, end] (a backfill chunk)."""
    return _run_chunk("raw", start, end, reprocess)


@flow(name="analytics-range", flow_run_name="analytics-{start}-{end}")
def analytics_range(start: date, end: date, reprocess: Reprocess = "none") -> PhaseResult:
    """The analytics phase over the game dates in [start, end] (a backfill chunk)."""
    return _run_chunk("analytics", start, end, reprocess)


@flow(name="precompute-range", flow_run_name="precompute-{start}-{end}")
def precompute_range(start: date, end: date, reprocess: Reprocess = "none") -> PhaseResult:
    """The precompute phase over the game dates in [start, end] (a backfill chunk)."""
    return _run_chunk("precompute", start, end, reprocess)


RANGE_FLOWS = {"raw": raw_range, "analytics": analytics_range, "precompute": precompute_range}
