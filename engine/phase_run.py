"""A phase over a range of dates, derived from its declaration: one Prefect task per
(processor, date), chained on each date as the processors declare (`after`), the dates side
by side; or the same processors called directly, without Prefect (`make bench`, fixtures).

A failed date does not stop the others: the run ends with every date tried, and fails
naming the failed dates and the first error of each."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from functools import cache
from typing import Any

from prefect import Task, task
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner

from blocks.settings import get_settings
from engine.ledger import RUN_LEDGER, Written
from engine.policies import TRANSIENT_RETRIES
from engine.processors import DatePlan, Phase, PhasePlan, Processor, execute, plan_phase
from engine.runner import REPROCESS, PhaseFailed, PhaseResult, range_name


@cache
def processor_task(processor: Processor) -> Task[..., Written]:
    """The processor's Prefect task: named after it, transient source errors retried with
    backoff where it calls a source. Not cached by Prefect (engine.policies): the planner
    submits only what the warehouse lacks, and its result stays in memory."""

    def run(game_date: date, fingerprint: str, season: str | None = None) -> Written:
        return execute(processor, game_date, fingerprint, season)

    run.__name__ = run.__qualname__ = processor.name
    run.__doc__ = f"{processor.table.description} ({processor.table.id})"
    retries: dict[str, Any] = dict(TRANSIENT_RETRIES) if processor.retry_transient else {}
    return task(
        name=processor.name,
        task_run_name=processor.task_run_name,
        cache_policy=NO_CACHE,
        persist_result=False,
        **retries,
    )(run)


def phase_dates(phase: Phase, start: date, end: date, dates: Sequence[date] | None = None) -> list[date]:
    """The dates of [start, end] the phase writes (or the given ones among them)."""
    source = get_settings().source_block()
    game_dates = source.game_dates(start, end)
    if dates is not None:
        wanted = set(dates)
        game_dates = [d for d in game_dates if d in wanted]
    return phase.processable(game_dates, source)


def todo(plan: PhasePlan, reprocess: str, result: PhaseResult) -> list[date]:
    """The plan's dates to run under `reprocess`; the others are counted as skipped."""
    run = [d for d, p in plan.dates.items() if p.status in REPROCESS[reprocess]]
    result.skipped = [d for d in plan.dates if d not in set(run)]
    return run


def run_phase(
    phase: Phase,
    catalog: Sequence[Phase],
    start: date,
    end: date,
    reprocess: str = "none",
    dates: Sequence[date] | None = None,
    stage: str = "chunk",
) -> PhaseResult:
    """Inside a phase flow: plan [start, end], submit every (processor, date) task to run,
    wait for them, and fail naming the failed dates (PhaseFailed carries the result)."""
    t0 = time.perf_counter()
    days = phase_dates(phase, start, end, dates)
    plan = plan_phase(phase, days, catalog)
    result = PhaseResult(phase.name, stage, days)
    to_run = todo(plan, reprocess, result)
    if to_run:  # a phase flow run on its own (its deployment) may be the first on a new warehouse
        get_settings().warehouse_block().ensure_tables([RUN_LEDGER, *phase.tables])
    tasks = {p.name: processor_task(p) for p in phase.processors}
    futures: dict[date, dict[str, Any]] = {}
    # Dates side by side on a pool sized for the warehouse (Settings.task_pool_size).
    with ThreadPoolTaskRunner(max_workers=get_settings().task_pool_size) as runner:
        for d in to_run:
            step = plan.dates[d]
            if step.missing:
                result.failed[d] = step.missing
                continue
            submitted: dict[str, Any] = {}
            for p in to_compute(phase, step, reprocess):
                submitted[p.name] = runner.submit(
                    tasks[p.name],
                    parameters={"game_date": d, "fingerprint": step.fingerprints[p.name], "season": step.season},
                    wait_for=[submitted[a] for a in p.after if a in submitted],
                )
            futures[d] = submitted
        for d, submitted in futures.items():
            _collect(phase, d, submitted, result)
    result.ran = list(to_run)
    result.seconds = time.perf_counter() - t0
    if result.failed:
        raise PhaseFailed(result)
    return result


def to_compute(phase: Phase, step: DatePlan, reprocess: str) -> list[Processor]:
    """A date's processors to run: those whose partition the warehouse does not hold on the
    date's inputs and code (all of them when reprocessing everything)."""
    return [p for p in phase.processors if reprocess == "all" or p.name not in step.current]


def _collect(phase: Phase, d: date, submitted: Mapping[str, Any], result: PhaseResult) -> None:
    for f in submitted.values():
        f.wait()
    for p in phase.processors:
        if p.name not in submitted:  # current: not run
            continue
        state = submitted[p.name].state
        if state.is_completed():
            written = state.result()
            result.rows[written.table] = result.rows.get(written.table, 0) + written.rows
        elif d not in result.failed:  # the first failure is the cause; later ones waited on it
            result.failed[d] = f"{p.name}: {_message(state)}"


def _message(state: Any) -> str:
    try:
        exc = state.result(raise_on_failure=False)
    except Exception as err:  # the result itself could not be read
        exc = err
    if isinstance(exc, BaseException):
        return f"{type(exc).__name__}: {exc}"
    return state.message or state.name


def run_phase_directly(phase: Phase, catalog: Sequence[Phase], dates: Sequence[date]) -> PhaseResult:
    """The same processors over the dates that need them, called as plain Python in the
    declared order: no Prefect, no cache (a failed date is recorded and the others go on)."""
    t0 = time.perf_counter()
    days = phase.processable(sorted(dates))
    plan = plan_phase(phase, days, catalog)
    result = PhaseResult(phase.name, "direct", days)
    for d in todo(plan, "none", result):
        step = plan.dates[d]
        result.ran.append(d)
        if step.missing:
            result.failed[d] = step.missing
            continue
        blocked: set[str] = set()  # as in the flow: what runs after a failure does not run
        for p in to_compute(phase, step, "none"):
            if blocked & set(p.after):
                blocked.add(p.name)
                continue
            try:
                written = execute(p, d, step.fingerprints[p.name], step.season)
            except Exception as exc:
                result.failed.setdefault(d, f"{p.name}: {type(exc).__name__}: {exc}")
                blocked.add(p.name)
                continue
            result.rows[written.table] = result.rows.get(written.table, 0) + written.rows
    result.seconds = time.perf_counter() - t0
    return result


def range_run_name(kind: str) -> Callable[[], str]:
    """`analytics-2024-01-15` for one date, `analytics-2023-10-24-2023-11-30` for a range."""

    def name() -> str:
        from prefect.runtime import flow_run

        return range_name(kind, flow_run.parameters["start"], flow_run.parameters.get("end"))

    return name
