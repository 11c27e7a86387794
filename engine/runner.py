"""What the orchestrator needs besides its flows: which dates of a phase to run
(reprocess), sample dates, the phase runners (in-process subflows or fan-out deployments, a
chunk of dates each), progress, and the report."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from uuid import UUID

from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

from blocks.settings import get_settings
from engine.ledger import RUN_LEDGER, latest_runs
from engine.processors import STATUSES, DateStatus, Phase, plan_phase, registry

# Which statuses each reprocess mode runs (Airflow 3's reprocess behaviours). A date whose
# inputs or code changed ("stale") has no current result, so it counts as missing.
REPROCESS: dict[str, set[DateStatus]] = {
    "none": {"missing", "stale"},
    "failed": {"missing", "stale", "failed"},
    "all": set(STATUSES),
}


def dates_to_run(statuses: Mapping[date, DateStatus], reprocess: str) -> list[date]:
    return [d for d, s in statuses.items() if s in REPROCESS[reprocess]]


def spread_dates(dates: list[date], n: int) -> list[date]:
    """n dates spread evenly over `dates`: the first, the last, and evenly between."""
    if n <= 0 or not dates:
        return []
    if n >= len(dates):
        return list(dates)
    if n == 1:
        return [dates[0]]
    picks = {round(i * (len(dates) - 1) / (n - 1)) for i in range(n)}
    return [dates[i] for i in sorted(picks)]


def chunk_dates(dates: list[date], chunk_days: int) -> list[list[date]]:
    """Dates in chunks spanning at most `chunk_days` calendar days each, in order."""
    if chunk_days < 1:
        raise ValueError(f"chunk_days must be ≥ 1, not {chunk_days}")
    chunks: list[list[date]] = []
    for d in sorted(dates):
        if chunks and (d - chunks[-1][0]).days < chunk_days:
            chunks[-1].append(d)
        else:
            chunks.append([d])
    return chunks


def statuses_of(phase: Phase, catalog: Sequence[Phase], dates: list[date]) -> dict[date, DateStatus]:
    """The status of each date of the phase, from the run ledger."""
    return plan_phase(phase, dates, catalog).statuses()


def range_name(kind: str, start: Any, end: Any) -> str:
    """`analytics-2024-01-15` for one date, `analytics-2023-10-24-2023-11-30` for a range:
    how a phase flow run over [start, end] is named."""
    return f"{kind}-{start}" if end is None or str(end) == str(start) else f"{kind}-{start}-{end}"


# ---------------------------------------------------------------- what a backfill runs


def reads_history(phase: Phase, upstream: Phase) -> bool:
    """Whether the phase reads a season's worth of the upstream phase's tables."""
    tables = {p.name for p in upstream.processors}
    return any(r.processor in tables and r.window != "date" for p in phase.processors for r in p.reads)


def backfill_dates(catalog: Sequence[Phase], phases: list[str], dates: list[date], source: Any) -> dict[str, list[date]]:
    """The game dates each phase of a backfill runs over: the range's, and for a phase a later
    one reads a season of, its history from the season's first date (so that a range that
    starts mid-season finds every earlier game it needs loaded)."""
    by_name = {p.name: p for p in catalog}
    out = {name: list(dates) for name in phases}
    for i in reversed(range(len(phases))):
        later = [by_name[n] for n in phases[i + 1:]]
        if dates and any(reads_history(ph, by_name[phases[i]]) for ph in later):
            needed = [d for n in phases[i + 1:] for d in out[n]] or dates
            first = source.season_start(min(needed))
            history = source.game_dates(first, max(needed))
            out[phases[i]] = sorted(set(history) | set(out[phases[i]]))
    return {name: by_name[name].processable(out[name], source) for name in phases}


@dataclass
class BackfillPlan:
    """What a backfill covers: the range's game dates, each phase's dates (with the history a
    later phase reads), the sample dates, and what the phases read that is missing."""

    dates: list[date]
    phase_dates: dict[str, list[date]]
    samples: list[date]
    gaps: list[str]


def plan_backfill(catalog: Sequence[Phase], phases: list[str], start: date, end: date, sample: int) -> BackfillPlan:
    """The backfill's plan from the source's schedule and the warehouse."""
    settings = get_settings()
    source = settings.source_block()
    dates = source.game_dates(start, end)
    phase_dates = backfill_dates(catalog, phases, dates, source)
    by_name = {p.name: p for p in catalog}
    # Sample dates every phase can process (precompute: after a season's first 14 days).
    samples = spread_dates(by_name[phases[-1]].processable(dates, source), sample) if phases else []
    gaps = upstream_gaps(catalog, phases, phase_dates, settings.warehouse_block(), source) if phases else []
    return BackfillPlan(dates, phase_dates, samples, gaps)


def upstream_gaps(catalog: Sequence[Phase], phases: list[str], plan_dates: Mapping[str, list[date]],
                  warehouse: Any, source: Any) -> list[str]:  # fmt: skip
    """What the phases of a backfill read from phases it does not run and that is not in the
    warehouse, one message per upstream phase with the command that fills it (the backfill
    then runs nothing). Every table read is checked over every date it is read for: a
    season read, over the season's history before the range too."""
    registered, messages = registry(catalog), []
    owner = {p.name: ph.name for ph in catalog for p in ph.processors}
    for name in phases:
        days = plan_dates[name]
        reads = [r for p in next(ph for ph in catalog if ph.name == name).processors for r in p.reads
                 if owner.get(r.processor) not in phases]  # fmt: skip
        if not reads or not days:
            continue
        seasonal = {r.processor for r in reads if r.window != "date"}
        history = source.game_dates(source.season_start(min(days)), max(days)) if seasonal else days
        loaded: set[tuple[str, date]] = set()
        if warehouse.has_table(RUN_LEDGER):
            read = {r.processor: registered[r.processor].table for r in reads if r.processor in registered}
            runs = latest_runs(warehouse, min(history), max(days), read)
            loaded = set(zip(runs.processor, runs.game_date, strict=True))
        gaps: dict[str, tuple[set[date], list[str]]] = {}  # upstream phase → (its missing dates, tables)
        for processor in (q for q in registered if q in {r.processor for r in reads}):
            lacking = {d for d in (history if processor in seasonal else days) if (processor, d) not in loaded}
            if lacking:
                missing, tables = gaps.setdefault(owner[processor], (set(), []))
                missing |= lacking
                tables.append(registered[processor].table.id)
        for upstream, (missing, tables) in gaps.items():
            first, last = min(missing), max(missing)
            messages.append(
                f"{name} needs {', '.join(tables)} for {len(missing)} game dates that are not "
                f"loaded ({first} → {last}): run `hoopflow backfill --start {first} --end {last} --phases "
                f"{upstream}` first, or add {upstream} to --phases"
            )
    return messages


# ---------------------------------------------------------------- dry run


@dataclass
class DryRunPlan:
    phase: str
    statuses: dict[date, DateStatus]
    to_run: list[date]
    inputs_missing: list[date]  # dates to run whose inputs neither exist nor are made by this run
    inputs_note: str


def plan_phases(catalog: Sequence[Phase], phases: list[str], plan_dates: Mapping[str, list[date]],
                reprocess: str) -> list[DryRunPlan]:  # fmt: skip
    """What a backfill would run, per phase, and whether the inputs of those dates exist or
    are made by this run. Reads the run ledger and the source; writes nothing."""
    owner = {p.name: ph.name for ph in catalog for p in ph.processors}
    plans = []
    for name in phases:
        phase = next(p for p in catalog if p.name == name)
        plan = plan_phase(phase, plan_dates[name], catalog)
        statuses = plan.statuses()
        to_run = dates_to_run(statuses, reprocess)
        missing = [d for d in to_run if (m := plan.dates[d].missing_input) and owner.get(m[0]) not in phases]
        upstream = sorted({owner[r.processor] for p in phase.processors for r in p.reads
                           if owner.get(r.processor) not in (None, name)})  # fmt: skip
        made = [u for u in upstream if u in phases]
        note = ", ".join(f"{u} (loaded, or run earlier in this backfill)" if u in made else f"{u} (loaded)"
                         for u in upstream) or "the source lists every date"  # fmt: skip
        plans.append(DryRunPlan(name, statuses, to_run, missing, note))
    return plans


# ---------------------------------------------------------------- running a phase


class Progress:
    """A progress artifact that moves as dates and validations finish."""

    def __init__(self, units: int, key: str = "backfill-progress", description: str = "Backfill progress"):
        self.units, self.done = max(units, 1), 0
        self.id: UUID = create_progress_artifact(0.0, key=key, description=description)

    def advance(self, n: int = 1) -> None:
        self.done += n
        update_progress_artifact(self.id, min(99.9, 100 * self.done / self.units))

    def finish(self) -> None:
        update_progress_artifact(self.id, 100.0)


@dataclass
class PhaseResult:
    phase: str
    stage: str  # sample | inputs | full | chunk | daily | direct
    dates: list[date] = field(default_factory=list)
    ran: list[date] = field(default_factory=list)
    skipped: list[date] = field(default_factory=list)  # already current (or not selected by reprocess)
    skipped_failed: list[date] = field(default_factory=list)  # their last run failed; reprocess=none leaves them
    failed: dict[date, str] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    validation: Any = None  # the phase's ValidationReport, once validated
    validation_message: str | None = None
    failed_chunks: list[str] = field(default_factory=list)

    @property
    def done(self) -> list[date]:
        return [d for d in self.ran if d not in self.failed]

    @property
    def dates_per_hour(self) -> float:
        return len(self.ran) * 3600 / self.seconds if self.seconds else 0.0

    def merge(self, other: PhaseResult) -> None:
        self.ran += [d for d in other.ran if d not in self.ran]
        self.failed.update(other.failed)
        for table, n in other.rows.items():
            self.rows[table] = self.rows.get(table, 0) + n

    def gate_message(self) -> str:
        if self.validation is None:
            return f"{self.phase} ({self.stage}): validation did not finish: {self.validation_message}"
        dates = self.validation.blocking_dates()
        listed = ", ".join(map(str, dates[:10])) + (" ..." if len(dates) > 10 else "")
        return (
            f"stopped after {self.phase} ({self.stage}): "
            + "; ".join(f"{r.table} {r.name}: {r.message}" for r in self.validation.blocking)
            + (f" (first offending rows on {listed})" if dates else "")
        )


def skipped_failed_note(phase: str, dates: list[date]) -> str:
    listed = ", ".join(map(str, dates[:5])) + (" ..." if len(dates) > 5 else "")
    return (f"{phase}: {len(dates)} dates whose last run failed were not run again ({listed}): "
            "rerun with --reprocess failed (reprocess=failed) to retry them")


class PhaseFailed(RuntimeError):
    """Some dates of a phase run failed; the run's result travels with it."""

    def __init__(self, result: PhaseResult):
        listed = "; ".join(f"{d}: {m}" for d, m in list(result.failed.items())[:10])
        more = f" (and {len(result.failed) - 10} more)" if len(result.failed) > 10 else ""
        super().__init__(f"{result.phase}: {len(result.failed)} of {len(result.dates)} dates failed: {listed}{more}"[:4000])
        self.result = result

    def __reduce__(self):
        return (PhaseFailed, (self.result,))


class PhaseRunner:
    """Runs a phase's dates that need it, as phase subflows in this flow run, one per chunk
    of at most `chunk_days` calendar days (a flow run stays well under ~1,000 task runs)."""

    def __init__(self, flows: Mapping[str, Callable[..., Any]], catalog: Sequence[Phase], reprocess: str,
                 progress: Progress, logger: logging.Logger | logging.LoggerAdapter, chunk_days: int = 30):  # fmt: skip
        self.flows, self.catalog, self.reprocess = flows, {p.name: p for p in catalog}, reprocess
        self.progress, self.logger, self.chunk_days = progress, logger, chunk_days
        self.ran: set[tuple[str, date]] = set()  # run once per backfill (reprocess="all" too)

    def _todo(self, phase: str, dates: list[date], stage: str, result: PhaseResult) -> list[date]:
        statuses = statuses_of(self.catalog[phase], list(self.catalog.values()), dates)
        todo = [d for d in dates_to_run(statuses, self.reprocess) if (phase, d) not in self.ran]
        result.skipped = [d for d in dates if d not in set(todo)]
        result.skipped_failed = [d for d in result.skipped if statuses.get(d) == "failed"]
        if result.skipped_failed:
            self.logger.warning(skipped_failed_note(phase, result.skipped_failed))
        self.logger.info("%s (%s): %d of %d dates to run (%s)", phase, stage, len(todo), len(dates),
                         ", ".join(f"{s} {list(statuses.values()).count(s)}" for s in STATUSES))  # fmt: skip
        if stage != "inputs":
            self.progress.advance(len(result.skipped))
        return todo

    def run(self, phase: str, dates: list[date], stage: str) -> PhaseResult:
        result, t0 = PhaseResult(phase, stage, list(dates)), time.perf_counter()
        todo = self._todo(phase, dates, stage, result)
        # The subflows run in this process, which keeps its own heartbeat; a subflow's own
        # heartbeat thread costs ~1 s at its exit.
        with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
            for chunk in chunk_dates(todo, self.chunk_days):
                state = self.flows[phase](chunk[0], chunk[-1], self.reprocess, dates=chunk, return_state=True)
                self._record(result, phase, chunk, state, range_name(phase, chunk[0], chunk[-1]))
                if stage != "inputs":
                    self.progress.advance(len(chunk))
        result.ran.sort()
        result.seconds = time.perf_counter() - t0
        return result

    def _record(self, result: PhaseResult, phase: str, chunk: list[date], state: Any, name: str) -> None:
        self.ran.update((phase, d) for d in chunk)
        try:  # the chunk's PhaseResult: its return value, or carried by its PhaseFailed
            value = state.result(raise_on_failure=False)
        except Exception as exc:  # e.g. the result of a remote child could not be read
            self.logger.warning("%s: could not read its result: %s", name, exc)
            value = None
        chunk_result = value.result if isinstance(value, PhaseFailed) else value
        if isinstance(chunk_result, PhaseResult):
            result.merge(chunk_result)
        else:
            result.ran += [d for d in chunk if d not in result.ran]
        if not state.is_completed():
            if not isinstance(chunk_result, PhaseResult) or not chunk_result.failed:
                message = f"{name} ({state.name}): {state.message or 'no message'}"
                result.failed.update({d: message for d in chunk if d not in result.failed})
            why = str(value) if isinstance(value, BaseException) else state.message or "no message"
            result.failed_chunks.append(f"{name} ({state.name}): {why}")
            for d in sorted(d for d in chunk if d in result.failed):
                self.logger.error("%s %s failed: %s", phase, d, result.failed[d])


class DeploymentRunner(PhaseRunner):
    """Runs a phase's dates as chunks, each a flow run of the phase's deployment
    (`raw/<target>`, ...) on a work pool, all submitted at once and awaited.

    run_deployment does not raise when a child fails: every child's final state is checked,
    and a failed chunk's failed dates count as failed. Each child has an idempotency key made
    of this flow run, the phase, stage and chunk: a retried parent finds the children it
    already created instead of creating them twice (and starts a failed one again)."""

    POLL_SECONDS = 5.0

    def __init__(self, deployments: Mapping[str, str], catalog: Sequence[Phase], chunk_days: int, reprocess: str,
                 progress: Progress, logger: logging.Logger | logging.LoggerAdapter):  # fmt: skip
        super().__init__({}, catalog, reprocess, progress, logger, chunk_days)
        self.deployments = deployments

    def run(self, phase: str, dates: list[date], stage: str) -> PhaseResult:
        from prefect import runtime
        from prefect.deployments import run_deployment

        from blocks.settings import get_settings

        result, t0 = PhaseResult(phase, stage, list(dates)), time.perf_counter()
        chunks = chunk_dates(self._todo(phase, dates, stage, result), self.chunk_days)
        if not chunks:
            return result
        # DuckDB lets one process write a file: hand it to the children while they run.
        get_settings().warehouse_block().release()
        parent, attempt = runtime.flow_run.id, runtime.flow_run.run_count
        children: dict[Any, list[date]] = {}
        for chunk in chunks:
            params = {"start": chunk[0], "end": chunk[-1], "reprocess": self.reprocess, "dates": chunk}
            key = f"{parent}/{phase}/{stage}/{chunk[0]}/{chunk[-1]}"
            run = run_deployment(self.deployments[phase], parameters=params, idempotency_key=key, timeout=0)
            if run.state and run.state.is_final() and not run.state.is_completed():
                # The key found a child an earlier attempt of this parent left failed: run it again.
                run = run_deployment(self.deployments[phase], parameters=params,
                                     idempotency_key=f"{key}/attempt-{attempt}", timeout=0)  # fmt: skip
            children[run.id] = chunk
        self.logger.info("%s (%s): %d dates in %d chunks of ≤ %d days on %s", phase, stage,
                         sum(map(len, chunks)), len(chunks), self.chunk_days, self.deployments[phase])  # fmt: skip
        for run in self._await(children):
            chunk = children[run.id]
            self._record(result, phase, chunk, run.state, run.name)
            if stage != "inputs":
                self.progress.advance(len(chunk))
        result.ran.sort()
        result.seconds = time.perf_counter() - t0
        return result

    def _await(self, children: Mapping[Any, list[date]]):
        """Yield each child flow run once it reaches a final state (one API call per poll)."""
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

        waiting = set(children)
        with get_client(sync_client=True) as client:
            while waiting:
                batch = sorted(waiting)[:200]  # the API's page size
                runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=batch)), limit=200)
                for run in runs:
                    if run.state and run.state.is_final():
                        waiting.discard(run.id)
                        yield run
                if waiting:
                    time.sleep(self.POLL_SECONDS)


# ---------------------------------------------------------------- the report


@dataclass
class BackfillReport:
    start: date
    end: date
    phases: list[str]
    reprocess: str
    dry_run: bool
    dates: int
    sample_dates: list[date]
    results: list[PhaseResult] = field(default_factory=list)
    plans: list[DryRunPlan] = field(default_factory=list)
    grid: dict[date, dict[str, DateStatus]] = field(default_factory=dict)
    stopped_by: str | None = None
    ml: Any = None  # the ml phase's MLResult: the registered model, its metrics and grades

    @property
    def failed_dates(self) -> dict[str, list[date]]:
        out: dict[str, list[date]] = {}
        for r in self.results:
            if r.failed:
                out.setdefault(r.phase, []).extend(r.failed)
        return out

    @property
    def status(self) -> str:
        if self.dry_run:
            return "dry run"
        return "stopped" if self.stopped_by else "failed dates" if self.failed_dates else "completed"

    def headline(self) -> str:
        text = f"backfill {self.start} → {self.end} ({', '.join(self.phases)}): {self.status}"
        for r in self.results:
            if r.failed_chunks:
                text += f"; {r.phase} ({r.stage}): {len(r.failed_chunks)} chunks failed: " + "; ".join(r.failed_chunks[:5])
            elif r.failed:
                listed = ", ".join(map(str, list(r.failed)[:10])) + (" ..." if len(r.failed) > 10 else "")
                text += f"; {r.phase} ({r.stage}): {len(r.failed)} of {len(r.dates)} dates failed: {listed}"
        if self.stopped_by:
            text += f"; {self.stopped_by}"
        return text[:2000]

    def to_markdown(self) -> str:
        lines = [f"# {self.headline()}", ""]
        lines.append(f"{self.dates} game dates; reprocess={self.reprocess}"
                     + (f"; sample dates {', '.join(map(str, self.sample_dates))}" if self.sample_dates else ""))  # fmt: skip
        if self.plans:
            lines += ["", "| phase | would run | current | stale | failed | missing | inputs missing | inputs from |",
                      "|---|---|---|---|---|---|---|---|"]  # fmt: skip
            for p in self.plans:
                counts = [list(p.statuses.values()).count(s) for s in STATUSES]
                missing = f"{len(p.inputs_missing)}" + (f" ({', '.join(map(str, p.inputs_missing[:5]))} …)" if p.inputs_missing else "")
                lines.append(f"| {p.phase} | {len(p.to_run)} | " + " | ".join(map(str, counts)) + f" | {missing} | {p.inputs_note} |")
        if self.results:
            lines += ["", "| phase | stage | done | failed | skipped | rows | seconds | dates/hour | checks |",
                      "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
            for r in self.results:
                v = r.validation
                checks = (f"{v.status}: {sum(c.passed for c in v.results)}/{len(v.results)} passed, "
                          f"{len(v.blocking)} critical, {len(v.warnings)} warnings") if v else (
                          "validated in the full stage" if r.stage == "inputs" else "no report")  # fmt: skip
                lines.append(f"| {r.phase} | {r.stage} | {len(r.done)} | {len(r.failed)} | {len(r.skipped)} | "
                             f"{sum(r.rows.values()):,} | {r.seconds:,.1f} | {r.dates_per_hour:,.0f} | {checks} |")  # fmt: skip
            skipped = [r for r in self.results if r.skipped_failed]
            if skipped:
                lines += [""] + [f"- {skipped_failed_note(r.phase, r.skipped_failed)}" for r in skipped]
            failed = [(r.phase, d, m) for r in self.results for d, m in r.failed.items()]
            if failed:
                lines += ["", "Failed dates:", ""] + [f"- {p} {d}: {m}" for p, d, m in failed[:50]]
            warnings = [(r.phase, c) for r in self.results if r.validation for c in r.validation.results if not c.passed]
            if warnings:
                lines += ["", "Checks that did not pass:", ""]
                lines += [f"- {p}: {c.severity} {c.table} {c.name} [{c.scope}]: {c.message}" for p, c in warnings]
        if self.dry_run and "ml" in self.phases:
            lines += ["", "ml: would train on the range's feature store once the phases above pass, "
                      "then predict and grade its test dates"]  # fmt: skip
        if self.ml is not None:
            lines += ["", "## ml", "", "```", self.ml.to_text(), "```"]
        return "\n".join(lines)

    def to_text(self) -> str:
        lines = self.to_markdown().replace("# ", "", 1).splitlines()
        return "\n".join(line for line in lines if line != "```")

    def grid_rows(self) -> list[dict[str, str]]:
        return [{"game_date": str(d), **row} for d, row in sorted(self.grid.items())]


def status_grid(catalog: Sequence[Phase], phases: list[str], dates: list[date]) -> dict[date, dict[str, DateStatus]]:
    """date → phase → status, from the run ledger."""
    by_name = {p.name: p for p in catalog}
    per_phase = {p: statuses_of(by_name[p], catalog, by_name[p].processable(dates)) for p in phases}
    # A date a phase does not process (precompute's bootstrap days) shows as "bootstrap".
    return {d: {p: per_phase[p].get(d, "bootstrap") for p in phases} for d in dates}


class BackfillFailed(RuntimeError):
    """The backfill stopped at a gate, or some dates failed; the report travels with it."""

    def __init__(self, report: BackfillReport):
        super().__init__(report.headline())
        self.report = report

    def __reduce__(self):
        return (BackfillFailed, (self.report,))
