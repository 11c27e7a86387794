"""Backfill: a range of game dates, phase after phase. Each phase runs its dates (a failed
date does not stop the others), then its validation subflow; the next phase starts only
when no critical check failed. A progress artifact moves while it runs; a markdown report
and a date × phase status table are left at the end."""

from __future__ import annotations

from datetime import date
from typing import Literal

from prefect import flow, get_run_logger, runtime
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from flows.fanout import PHASE_FLOWS, RANGE_FLOWS
from flows.ml import ml
from flows.validate import validate
from hoopflow.settings import get_settings
from tasks.backfill import (
    ALL_TABLES,
    BackfillFailed,
    BackfillReport,
    DeploymentRunner,
    PhaseRunner,
    Progress,
    plan_phases,
    spread_dates,
    status_grid,
)
from tasks.locks import ensure_write_locks
from tasks.ml import MLResult
from tasks.phases import PHASE_NAMES, processable
from tasks.validate import ValidationFailed, ValidationReport

# Phase order is pipeline order: a phase reads what the phases before it wrote. The ml phase
# comes last and is not per date: it trains on the range, then predicts its test dates.
assert tuple(PHASE_FLOWS) == tuple(RANGE_FLOWS) == PHASE_NAMES
ML_PHASE = "ml"


@flow(name="backfill", flow_run_name="backfill-{start}-{end}")
def backfill(
    start: date,
    end: date,
    phases: list[str] = list(PHASE_NAMES),  # noqa: B006
    reprocess: Literal["none", "failed", "all"] = "none",
    dry_run: bool = False,
    sample: int = 0,
    executor: Literal["in-process", "deployments"] = "in-process",
    chunk_days: int = 7,
    target: str | None = None,
    test_from: date | None = None,
) -> BackfillReport:
    """Run `phases` over the game dates in [start, end].

    reprocess: none = dates without a current result (never run, interrupted, or whose
    inputs or code changed); failed = those and the dates whose last run failed; all =
    every date, bypassing the cache. dry_run: report what would run, write nothing.
    sample: first run N dates spread over the range through every phase and validate them.
    executor: in-process = one subflow per date in this flow run; deployments = each phase's
    dates in chunks of `chunk_days` days, each chunk a run of the phase's fan-out deployment
    `<phase>-range/<target>` (target: this run's own deployment name, e.g. cloud-run; local
    outside a deployment), awaited before the phase's validation.
    The ml phase, after the others: train on the range's feature store (test dates from
    `test_from`, default the last fifth), gated, then predict and grade the test dates."""
    checked = _checked(phases, reprocess, sample)
    with_ml = ML_PHASE in checked
    phases = [p for p in PHASE_NAMES if p in checked]
    if executor not in ("in-process", "deployments"):
        raise ValueError(f"executor must be in-process or deployments, not {executor!r}")
    if chunk_days < 1:
        raise ValueError(f"chunk_days must be ≥ 1, not {chunk_days}")
    logger = get_run_logger()
    settings = get_settings()
    dates = settings.source_block().game_dates(start, end)
    # Sample dates every phase can process (precompute: after a season's first 14 days).
    samples = spread_dates(processable(phases[-1], dates), sample) if phases else []
    report = BackfillReport(start, end, phases + [ML_PHASE] * with_ml, reprocess, dry_run, len(dates), samples)
    logger.info("%d game dates from %s to %s; phases %s", len(dates), start, end, ", ".join(phases))
    if dry_run:
        report.plans = plan_phases(phases, dates, reprocess)
        create_markdown_artifact(report.to_markdown(), key="backfill-report", description=report.headline())
        return report

    settings.warehouse_block().ensure_tables(ALL_TABLES)
    if settings.write_locks:
        ensure_write_locks()
    progress = Progress(units=len(phases) * (len(dates) + 1 + (len(samples) + 1 if samples else 0)) + with_ml)
    if executor == "deployments":
        target = target or runtime.deployment.name or "local"
        deployments = {phase: f"{RANGE_FLOWS[phase].name}/{target}" for phase in phases}
        runner: PhaseRunner = DeploymentRunner(deployments, chunk_days, reprocess, progress, logger)
    else:
        runner = PhaseRunner(PHASE_FLOWS, reprocess, progress, logger)
    try:
        stages = [("sample", samples), ("full", dates)] if samples else [("full", dates)]
        for stage, stage_dates in stages:
            for i, phase in enumerate(phases):
                if stage == "sample" and i > 0:
                    # A phase on a date reads the earlier phases up to that date (a season's
                    # history): those dates run first, and are skipped by the full stage.
                    for upstream in phases[:i]:
                        history = [d for d in dates if d <= max(stage_dates)]
                        inputs = runner.run(upstream, processable(upstream, history), "inputs")
                        if inputs.ran:  # validated by the full stage
                            report.results.append(inputs)
                result = runner.run(phase, processable(phase, stage_dates), stage)
                state = validate(
                    phase, start, end, dates=stage_dates if stage == "sample" else None,
                    return_state=True,
                )  # fmt: skip
                result.validation = report_of(state)
                result.validation_message = state.message
                progress.advance()
                report.results.append(result)
                if result.validation is None or result.validation.blocking:
                    report.stopped_by = result.gate_message()
                    logger.error(report.stopped_by)
                    raise BackfillFailed(report)
        if any(r.failed for r in report.results):
            raise BackfillFailed(report)
        if with_ml:
            state = ml(start, end, test_from, return_state=True)
            outcome = state.result(raise_on_failure=False)
            report.ml = outcome if isinstance(outcome, MLResult) else None
            if report.ml is None:  # the gate refused the model, or too few rows to train
                report.stopped_by = f"stopped at ml: {state.message}"
                logger.error(report.stopped_by)
                raise BackfillFailed(report)
        progress.finish()
        return report
    finally:
        report.grid = status_grid(phases, dates)
        create_markdown_artifact(report.to_markdown(), key="backfill-report", description=report.headline())
        create_table_artifact(
            report.grid_rows(), key="backfill-status", description=f"Status of each date and phase, {start} → {end}"
        )


def _checked(phases: list[str], reprocess: str, sample: int) -> list[str]:
    known = [*PHASE_NAMES, ML_PHASE]
    if not phases:
        raise ValueError(f"no phases given; known: {known}")
    unknown = [p for p in phases if p not in known]
    if unknown:
        raise ValueError(f"unknown phases {unknown}; known: {known}")
    if reprocess not in ("none", "failed", "all"):
        raise ValueError(f"reprocess must be none, failed or all, not {reprocess!r}")
    if sample < 0:
        raise ValueError(f"sample must be ≥ 0, not {sample}")
    return phases


def report_of(state) -> ValidationReport | None:
    """The report of a finished validation subflow, passed or failed; None when it crashed
    before reporting (the gate then stays shut)."""
    value = state.result(raise_on_failure=False)
    if isinstance(value, ValidationFailed):
        return value.report
    return value if isinstance(value, ValidationReport) else None
