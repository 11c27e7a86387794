"""Processors and phases, declared once; everything else is derived from the declarations.

A processor has one name (its table = its task = its ledger entry), the table it writes, what
it reads (which processors' tables, over which window of dates), what it runs after, and its
compute function (and SQL). A phase is its processors in pipeline order. From these come:
the input fingerprint and partition version chain, the status and plan of a range of dates,
the Prefect task of each processor, the phase run over a range (flows/), and the direct run
without Prefect (`make bench`, test fixtures).

Fingerprints: a processor's input fingerprint on a date hashes the versions of every
partition it reads (each read's window of dates) and, for raw, the source's fingerprint. Its
output version is a hash of that fingerprint and its code version, so a processor's version
on a date is known before anything runs: a downstream processor of the same phase chains it,
and a changed input date recomputes exactly the dates whose windows contain it.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from functools import cache, cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd
from prefect.context import TaskRunContext

from blocks.settings import get_settings
from blocks.sources import TRANSIENT_ERRORS
from blocks.warehouse import Query, Rows, TableSpec, Warehouse
from engine.ledger import RUN_LEDGER, Written, last_attempts, latest_runs, ledger_row, partition_version
from engine.policies import code_version

if TYPE_CHECKING:
    from blocks.landing import LandingZone
    from blocks.sources import Source

# The window of dates a read covers, relative to the date being computed:
#   date            the same date
#   season_before   every game date of the date's season strictly before it
#   season_through  every game date of the date's season up to and including it
Window = Literal["date", "season_before", "season_through"]
WINDOWS: tuple[Window, ...] = ("date", "season_before", "season_through")


class MissingInputError(RuntimeError):
    """An input partition a processor needs is absent: fail, never write zeros."""

    def __init__(self, message: str, processor: str | None = None, dates: list[date] | None = None):
        super().__init__(message)
        self.processor, self.dates = processor, dates or []


@dataclass(frozen=True)
class Read:
    processor: str  # whose table is read (processor name = table name)
    window: Window = "date"


@dataclass
class ProcessorRun:
    """What a compute function is given: the date, its season, and where to read and land."""

    processor: Processor
    game_date: date
    season: str | None
    warehouse: Warehouse
    source: Source
    landing: LandingZone
    detail: dict[str, Any] = field(default_factory=dict)  # kept in the ledger row

    def sql_rows(self, **params: Any) -> Query:
        """The processor's SQL file for the date and its season (plus `params`), as the
        partition's rows: the warehouse runs it as it writes them (INSERT ... SELECT)."""
        (path,) = self.processor.sql
        return Query(_sql_text(path), {"game_date": self.game_date, "season": self.season, **params})

    def query_sql(self, **params: Any) -> pd.DataFrame:
        """The processor's SQL file, run by the warehouse and its rows returned."""
        q = self.sql_rows(**params)
        return self.warehouse.query(q.sql, q.params)


@cache
def _sql_text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


@dataclass(frozen=True, eq=False)
class Processor:
    name: str  # = table name = task name = ledger processor
    table: TableSpec
    compute: Callable[[ProcessorRun], Rows]  # the date's rows: a frame, or a Query the warehouse runs
    reads: tuple[Read, ...] = ()
    after: tuple[str, ...] = ()  # processors of the same phase that must finish first (same date)
    sql: tuple[Path, ...] = ()  # SQL files its compute runs: part of its code version
    source_table: str | None = None  # raw: the source table it extracts (its fingerprint is an input)
    retry_transient: bool = False  # a source call: transient errors are retried with backoff
    provider: str = "nba"  # whose source it extracts from or asks (blocks.settings.provider_source)
    config: Callable[[], str] | None = None  # the configuration its compute applies, as text

    def __post_init__(self) -> None:
        if self.name != self.table.name:
            raise ValueError(f"processor {self.name!r} writes {self.table.id}: one name for both")
        for read in self.reads:
            if read.window not in WINDOWS:
                raise ValueError(f"{self.name}: unknown window {read.window!r}")

    @cached_property
    def version(self) -> str:
        """A hash of its own compute code and SQL (engine.policies.code_version), and of the
        configuration it applies (a changed rule recomputes every date)."""
        code = code_version(self.compute, self.sql)
        return code if self.config is None else _digest([code, self.config()])

    @property
    def task_run_name(self) -> str:
        return self.name.replace("_", "-") + "-{game_date}"


@dataclass(frozen=True, eq=False)
class Phase:
    name: str
    processors: tuple[Processor, ...]
    bootstrap_days: int = 0  # nothing is written in a season's first N days
    # The season label of each date (the warehouse's schedule); None: not needed (raw).
    seasons: Callable[[Warehouse, list[date]], dict[date, str]] | None = None

    def __post_init__(self) -> None:
        names = [p.name for p in self.processors]
        if len(set(names)) != len(names):
            raise ValueError(f"phase {self.name}: a processor is declared twice")
        for i, p in enumerate(self.processors):
            earlier = set(names[:i])
            for a in p.after:
                if a not in earlier:
                    raise ValueError(f"{p.name} runs after {a!r}, which is not an earlier processor of {self.name}")
            for r in p.reads:
                if r.processor in names:
                    if r.window != "date" or r.processor not in p.after:
                        raise ValueError(f"{p.name} reads {r.processor} of its own phase: same date, and after it")

    @property
    def tables(self) -> tuple[TableSpec, ...]:
        return tuple(p.table for p in self.processors)

    def processor(self, name: str) -> Processor:
        return next(p for p in self.processors if p.name == name)

    def processable(self, dates: Iterable[date], source: Source | None = None) -> list[date]:
        """The dates this phase writes among the game dates (not a season's bootstrap days)."""
        dates = list(dates)
        if not self.bootstrap_days:
            return dates
        source = source or get_settings().source_block()
        return [d for d in dates if d >= source.season_start(d) + timedelta(days=self.bootstrap_days)]


# ---------------------------------------------------------------- the plan of a range


# The state of a phase on a date:
#   current  every processor last succeeded on today's inputs and code (nothing to do)
#   stale    every processor succeeded, but its inputs or code have changed since
#   failed   a processor's last attempt failed
#   missing  never ran, or ran only partly (an interrupted run)
DateStatus = Literal["current", "stale", "failed", "missing"]
STATUSES: tuple[DateStatus, ...] = ("current", "stale", "failed", "missing")


@dataclass
class DatePlan:
    status: DateStatus
    season: str | None
    fingerprints: dict[str, str]  # processor → input fingerprint (empty when an input is missing)
    missing: str | None = None  # why it cannot run: the first missing input
    missing_input: tuple[str, tuple[date, ...]] | None = None  # (processor read, its missing dates)
    # Processors whose partition the warehouse holds on today's inputs and code: not run
    # again for a date that runs (its other processors failed, or their inputs changed).
    current: frozenset[str] = frozenset()


@dataclass
class PhasePlan:
    phase: Phase
    dates: dict[date, DatePlan]

    def statuses(self) -> dict[date, DateStatus]:
        return {d: p.status for d, p in self.dates.items()}


def _digest(parts: Iterable[str]) -> str:
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:24]


def _listed(dates: list[date], n: int = 5) -> str:
    return ", ".join(map(str, dates[:n])) + (" ..." if len(dates) > n else "")


def registry(catalog: Iterable[Phase]) -> dict[str, Processor]:
    """Every processor of the catalog's phases by name."""
    return {p.name: p for phase in catalog for p in phase.processors}


def plan_phase(
    phase: Phase,
    dates: list[date],
    catalog: Sequence[Phase],
    warehouse: Warehouse | None = None,
    source: Source | None = None,
) -> PhasePlan:
    """The fingerprint of every processor on every date and each date's status, from one
    read of the run ledger and the source's schedule. `catalog` holds every phase, so a read
    of an earlier phase names its table in messages."""
    processors = registry(catalog)
    settings = get_settings()
    warehouse = warehouse or settings.warehouse_block()
    source = source or settings.source_block()
    dates = sorted(dates)
    if not dates:
        return PhasePlan(phase, {})
    starts = {d: source.season_start(d) for d in dates}
    first = min(starts.values())
    has_ledger = warehouse.has_table(RUN_LEDGER)
    # The partitions this plan reads (the phase's own and its inputs), checked against the ledger.
    used = {p.name for p in phase.processors} | {r.processor for p in phase.processors for r in p.reads}
    tables = {name: processors[name].table for name in used if name in processors}
    runs = latest_runs(warehouse, first, dates[-1], tables) if has_ledger else None
    attempts = last_attempts(warehouse, dates[0], dates[-1]) if has_ledger else None
    versions: dict[tuple[str, date], str] = {}
    done: dict[tuple[str, date], tuple[str, str]] = {}
    if runs is not None:
        for p, d, fp, cv in zip(runs.processor, runs.game_date, runs.input_fingerprint, runs.code_version, strict=True):
            versions[(p, d)] = partition_version(p, fp, cv)
            done[(p, d)] = (fp, cv)
    last: dict[tuple[str, date], str] = {}
    if attempts is not None:
        last = dict(zip(zip(attempts.processor, attempts.game_date, strict=True), attempts.status, strict=True))
    seasons = phase.seasons(warehouse, dates) if phase.seasons else {}
    game_dates = source.game_dates(first, dates[-1]) if any(
        r.window != "date" for p in phase.processors for r in p.reads
    ) else []  # fmt: skip
    memo: dict[tuple[str, Window, date], str] = {}
    own = {p.name for p in phase.processors}
    sources = {p.provider: source if p.provider == "nba" else settings.provider_source(p.provider)
               for p in phase.processors}  # fmt: skip

    def window_digest(read: Read, d: date) -> str:
        key = (read.processor, read.window, d)
        if key not in memo:
            if read.window == "date":
                window = [d]
            else:
                window = [g for g in game_dates if starts[d] <= g < d or (read.window == "season_through" and g == d)]
            missing = [w for w in window if (read.processor, w) not in versions]
            if missing:
                table = processors[read.processor].table.id if read.processor in processors else read.processor
                span = {"date": f"{d}", "season_before": f"every game date of its season before {d}",
                        "season_through": f"every game date of its season up to {d}"}[read.window]  # fmt: skip
                raise MissingInputError(
                    f"needs {table} for {span}; {len(missing)} missing: {_listed(missing)}", read.processor, missing
                )
            memo[key] = _digest(f"{read.processor}:{w}:{versions[(read.processor, w)]}" for w in window)
        return memo[key]

    out: dict[date, DatePlan] = {}
    for d in dates:
        chain: dict[str, str] = {}
        fingerprints: dict[str, str] = {}
        missing, missing_input = None, None
        for p in phase.processors:
            try:
                parts = [chain[r.processor] if r.processor in own else window_digest(r, d) for r in p.reads]
            except MissingInputError as exc:
                missing, missing_input = f"{p.name} for {d} {exc}", (exc.processor or "", tuple(exc.dates))
                break
            if p.source_table:
                src = sources[p.provider]
                parts.append(f"{src.name}:{src.fingerprint(p.source_table, d)}")
            fingerprints[p.name] = _digest(parts)
            chain[p.name] = partition_version(p.name, fingerprints[p.name], p.version)
        states = [last.get((p.name, d)) for p in phase.processors]
        current = frozenset(p.name for p in phase.processors
                            if missing is None and done.get((p.name, d)) == (fingerprints[p.name], p.version))  # fmt: skip
        if len(current) == len(phase.processors):
            status: DateStatus = "current"
        elif "failed" in states:
            status = "failed"
        elif all(s == "succeeded" for s in states):
            status = "stale"
        else:
            status = "missing"
        out[d] = DatePlan(status, seasons.get(d), fingerprints if missing is None else {}, missing, missing_input,
                          current)  # fmt: skip
    return PhasePlan(phase, out)


# ---------------------------------------------------------------- running one processor


def execute(processor: Processor, game_date: date, fingerprint: str, season: str | None) -> Written:
    """Compute the date's rows and replace the table's partition together with its ledger
    row (one transaction on DuckDB); a failure is recorded as a failed attempt and re-raised.
    The Prefect task of a processor and the direct runner both call this."""
    from engine.locks import date_write_lock

    settings = get_settings()
    warehouse = settings.warehouse_block()
    run = ProcessorRun(processor, game_date, season, warehouse, settings.provider_source(processor.provider),
                       settings.landing_block())  # fmt: skip
    started, t0 = datetime.now(timezone.utc), time.perf_counter()

    def entry(written: dict[str, int]) -> pd.DataFrame:  # made inside the write: a Query's count is known
        return ledger_row(processor.name, game_date, "succeeded", fingerprint, processor.version, started,
                          time.perf_counter() - t0, written[processor.table.id], detail=run.detail)  # fmt: skip

    try:
        rows = processor.compute(run)
        with date_write_lock(game_date):
            written = warehouse.replace_partition(processor.table, game_date, rows, log=(RUN_LEDGER, entry))
    except Exception as exc:
        warehouse.append(RUN_LEDGER, ledger_row(
            processor.name, game_date, _failed_status(exc), fingerprint, processor.version, started,
            time.perf_counter() - t0, error=f"{type(exc).__name__}: {exc}", detail=run.detail,
        ))  # fmt: skip
        raise
    return Written(processor.name, written)


def _failed_status(exc: Exception) -> str:
    """`retrying` for a transient error with a retry to come (a run killed while it waits
    leaves the date missing, so a plain rerun runs it), else `failed`."""
    ctx = TaskRunContext.get()
    if isinstance(exc, TRANSIENT_ERRORS) and ctx is not None and ctx.task_run.run_count <= (ctx.task.retries or 0):
        return "retrying"
    return "failed"
