"""Reconcile phase over a range of game dates: per date, NBA.com's games mapped to ESPN's →
the findings of every rule (with their history) → each game's quality score, declared in
tasks/reconcile.py; then the range's report as artifacts (`reconcile-report`, the open
findings as `reconcile-open-findings`)."""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Literal

from prefect import flow
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from blocks.settings import get_settings
from engine.phase_run import range_run_name, run_phase
from engine.runner import PhaseResult
from tasks.phases import PHASES
from tasks.reconcile import RECONCILE
from tasks.reconcile_report import reconcile_report


@flow(name="reconcile", flow_run_name=range_run_name("reconcile"))
def reconcile(
    start: date,
    end: date | None = None,
    reprocess: Literal["none", "failed", "all"] = "none",
    dates: list[date] | None = None,
) -> PhaseResult:
    """Reconcile the game dates in [start, end] (one date without `end`; only `dates` among
    them when given) that are not current; fails naming the dates that failed. The report
    covers the whole range, what this run found and what it found resolved."""
    started = datetime.now(timezone.utc)
    try:
        return run_phase(RECONCILE, PHASES, start, end or start, reprocess, dates)
    finally:
        report = reconcile_report(get_settings().warehouse_block(), start, end or start, started)
        create_markdown_artifact(report.to_markdown(), key="reconcile-report", description=report.headline())
        create_table_artifact(report.open_rows(), key="reconcile-open-findings",
                              description=f"Open reconciliation findings, {report.start} → {report.end}")  # fmt: skip
