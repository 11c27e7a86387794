"""Backfill: a range of game dates, phase after phase. Each phase runs its dates in chunks
(one phase subflow or fan-out deployment run per chunk; a failed date does not stop the
others), then its validation subflow; the next phase starts only when no critical check
failed. A progress artifact moves while it runs; a markdown report and a date × phase status
table are left at the end."""

from __future__ import annotations

from datetime import date
from typing import Literal

from prefect import flow, get_run_logger, runtime
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from blocks.settings import get_settings
from engine.locks import ensure_write_locks
from engine.runner import (
    BackfillFailed,
    BackfillReport,
    DeploymentRunner,
    PhaseRunner,
    Progress,
    plan_backfill,
    plan_phases,
    status_grid,
)
from flows.analytics import analytics
from flows.ml import ml
from flows.precompute import precompute
from flows.raw import raw
from flows.reconcile import reconcile
from flows.validate import validate
from tasks.ml import MLResult
from tasks.phases import ALL_TABLES, PHASE_NAMES, PHASES, processable
from tasks.validate import report_of

# The phase flows, in pipeline order (a phase reads what the phases before it wrote). The ml
# phase comes last and is not per date: it trains on the range, then predicts its test dates.
PHASE_FLOWS = {"raw": raw, "reconcile": reconcile, "analytics": analytics, "precompute": precompute}
assert tuple(PHASE_FLOWS) == PHASE_NAMES, "one flow per declared phase, in order"
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
    chunk_days: int = 30,
    target: str | None = None,
    test_from: date | None = None,
) -> BackfillReport:
    """Run `phases` over the game dates in [start, end].

    A phase that reads a season of an earlier phase's tables (analytics: the raw box scores
    before each date) gets that history run first when the earlier phase is in `phases`;
    when it is not and the history is missing, nothing runs and the message names the range
    and the command that fills it.
    reprocess: none = dates without a current result (never run, interrupted, or whose
    inputs or code changed); failed = those and the dates whose last run failed; all =
    every date, bypassing the cache. dry_run: report what would run, write nothing.
    sample: first run N dates spread over the range through every phase and validate them.
    executor: in-process = one phase subflow per chunk of `chunk_days` days in this flow run;
    deployments = each chunk a run of the phase's deployment `<phase>/<target>` (target: this
    run's own deployment name, e.g. cloud-run; local outside a deployment), awaited.
    The ml phase, after the others: train on the range's feature store (test dates from
    `test_from`, default the last fifth), gated, then predict and grade the test dates."""
    checked = _checked(start, end, phases, reprocess, sample, executor, chunk_days)
    with_ml = ML_PHASE in checked
    phases = [p for p in PHASE_NAMES if p in checked]
    logger = get_run_logger()
    settings = get_settings()
    planned = plan_backfill(PHASES, phases, start, end, sample)
    dates, plan_dates, samples, gaps = planned.dates, planned.phase_dates, planned.samples, planned.gaps
    report = BackfillReport(start, end, phases + [ML_PHASE] * with_ml, reprocess, dry_run, len(dates), samples)
    logger.info("%d game dates from %s to %s; phases %s", len(dates), start, end, ", ".join(phases))
    if dry_run or gaps:
        report.plans = plan_phases(PHASES, phases, plan_dates, reprocess)
        report.stopped_by = "; ".join(gaps) or None
        create_markdown_artifact(report.to_markdown(), key="backfill-report", description=report.headline())
        if gaps:
            logger.error(report.stopped_by)
            raise BackfillFailed(report)
        return report

    settings.warehouse_block().ensure_tables(ALL_TABLES)
    if settings.write_locks:
        ensure_write_locks()
    units = sum(len(plan_dates[p]) + 1 for p in phases) + (len(phases) * (len(samples) + 1) if samples else 0)
    progress = Progress(units=units + with_ml)
    if executor == "deployments":
        target = target or runtime.deployment.name or "local"
        deployments = {phase: f"{PHASE_FLOWS[phase].name}/{target}" for phase in phases}
        runner: PhaseRunner = DeploymentRunner(deployments, PHASES, chunk_days, reprocess, progress, logger)
    else:
        runner = PhaseRunner(PHASE_FLOWS, PHASES, reprocess, progress, logger, chunk_days)
    try:
        stages = [("sample", samples), ("full", dates)] if samples else [("full", dates)]
        for stage, stage_dates in stages:
            for i, phase in enumerate(phases):
                run_dates = plan_dates[phase] if stage == "full" else processable(phase, stage_dates)
                if stage == "sample" and i > 0:
                    # A phase on a date reads the earlier phases up to that date (a season's
                    # history): those dates run first, and are skipped by the full stage.
                    for upstream in phases[:i]:
                        history = [d for d in plan_dates[upstream] if d <= max(stage_dates)]
                        inputs = runner.run(upstream, history, "inputs")
                        if inputs.ran:  # validated by the full stage
                            report.results.append(inputs)
                result = runner.run(phase, run_dates, stage)
                first = min(run_dates, default=start)
                state = validate(
                    phase, min(first, start), end, dates=stage_dates if stage == "sample" else None,
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
        try:
            report.grid = status_grid(PHASES, phases, dates)
        except Exception as exc:  # never in place of the error that ended the run
            logger.error("backfill-status not built: %s: %s", type(exc).__name__, exc)
        create_markdown_artifact(report.to_markdown(), key="backfill-report", description=report.headline())
        create_table_artifact(
            report.grid_rows(), key="backfill-status", description=f"Status of each date and phase, {start} → {end}"
        )


def _checked(start: date, end: date, phases: list[str], reprocess: str, sample: int, executor: str,
             chunk_days: int) -> list[str]:  # fmt: skip
    known = [*PHASE_NAMES, ML_PHASE]
    if start > end:
        raise ValueError(f"start {start} is after end {end}")
    if not phases:
        raise ValueError(f"no phases given; known: {known}")
    unknown = [p for p in phases if p not in known]
    if unknown:
        raise ValueError(f"unknown phases {unknown}; known: {known}")
    if reprocess not in ("none", "failed", "all"):
        raise ValueError(f"reprocess must be none, failed or all, not {reprocess!r}")
    if sample < 0:
        raise ValueError(f"sample must be ≥ 0, not {sample}")
    if executor not in ("in-process", "deployments"):
        raise ValueError(f"executor must be in-process or deployments, not {executor!r}")
    if chunk_days < 1:
        raise ValueError(f"chunk_days must be ≥ 1, not {chunk_days}")
    return phases
