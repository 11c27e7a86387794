"""`hoopflow`: the flows, for local use.

    hoopflow backfill [--start D] [--end D] [--phases raw,analytics,precompute,ml]
                      [--reprocess none|failed|all] [--dry-run] [--sample N] [--test-from D]
                      [--executor in-process|deployments] [--chunk-days N]
    hoopflow daily    [--date D]    # one night: every phase for the date + the day's report
    hoopflow validate --phase P [--start D] [--end D]   # exit 0 passed, 1 critical, 2 warnings
    hoopflow reconcile [--start D] [--end D] [--reprocess none|failed|all]
                       # the feeds against each other: exit 0 clean, 1 critical, 2 warnings only
    hoopflow status   [--start D] [--end D]             # the date × phase grid
    hoopflow setup      # tables, work pools, queues, variables, blocks, limits (idempotent)
    hoopflow train   [--start D] [--end D] [--test-from D]   # the points model, gated
    hoopflow predict [--start D] [--end D]   # with the latest registered model
    hoopflow grade   [--start D] [--end D]   # the predictions against the box scores

backfill exits 0 when every date succeeded and every gate passed, 1 otherwise (the report
says which check and which dates), 2 on bad usage. train exits 1 when the gate refuses the
model; predict and grade when a date fails (a date whose games are not in yet stays ungraded).
Bad usage (a reversed range, no phases, a bad setting or thresholds file) is one line and exit
2 before anything runs. An expected failure prints no traceback unless --verbose.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date

from blocks.settings import get_settings


def _configure_prefect() -> None:
    """Prefect reads its settings when imported: set ours first (results under
    $HOOPFLOW_HOME, a start-up timeout that a cold laptop meets), never overriding the user."""
    settings = get_settings()
    for key, value in settings.prefect_env().items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")  # offline machines


class UsageError(Exception):
    """Bad usage: one line on stderr, exit 2, before anything runs."""


class _WithoutTraceback(logging.Formatter):
    """The console formatter without the exception's traceback (the run's state, report and
    the UI keep the error; `--verbose` shows the traceback too)."""

    def __init__(self, inner: logging.Formatter):
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        saved = record.exc_info, record.exc_text, record.stack_info
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        try:
            return self.inner.format(record)
        finally:
            record.exc_info, record.exc_text, record.stack_info = saved


def _quiet_tracebacks() -> None:
    from prefect.logging.handlers import PrefectConsoleHandler

    for logger in (logging.getLogger(), *map(logging.getLogger, ("uvicorn", "fastapi"))):
        for handler in logger.handlers:
            if isinstance(handler, PrefectConsoleHandler) and not isinstance(handler.formatter, _WithoutTraceback):
                handler.setFormatter(_WithoutTraceback(handler.formatter or logging.Formatter()))


def _die_with_parent() -> None:
    """In the temporary API's process, before it starts: a process group of its own (Ctrl-C
    at the terminal reaches the command, not its API) and, on Linux, a SIGTERM when the command
    dies however it dies (a SIGKILL leaves no orphan server)."""
    os.setpgid(0, 0)
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@contextmanager
def _temporary_api() -> Iterator[None]:
    """Without a configured PREFECT_API_URL, Prefect starts a temporary API server in the
    terminal's process group: Ctrl-C killed it first and the interrupted run then retried it
    for minutes before exiting. The command starts the same server (Prefect's) out of that
    group instead, so an interrupted run reports itself to a live API and exits in seconds."""
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import PREFECT_API_URL, temporary_settings

    if PREFECT_API_URL.value():
        yield
        return

    class DetachedServer(SubprocessASGIServer):
        def _run_uvicorn_command(self) -> subprocess.Popen:
            popen = subprocess.Popen
            subprocess.Popen = functools.partial(popen, preexec_fn=_die_with_parent)  # type: ignore[misc]
            try:
                return super()._run_uvicorn_command()
            finally:
                subprocess.Popen = popen  # type: ignore[misc]

    server = DetachedServer()
    server.start()  # stopped at exit (Prefect registers it with atexit)
    with temporary_settings({PREFECT_API_URL: server.api_url}):
        yield


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a YYYY-MM-DD date: {text!r}") from None


def _range_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--start", type=_date, help="first date (default: the source's first game date)")
    parser.add_argument("--end", type=_date, help="last date (default: the source's last game date)")


def _parser() -> argparse.ArgumentParser:
    from tasks.phases import PHASE_NAMES

    phases = ",".join(PHASE_NAMES)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", help="show the traceback of a failure")
    parser = argparse.ArgumentParser(prog="hoopflow", description=__doc__.split("\n")[0], parents=[common])
    commands = parser.add_subparsers(dest="command", required=True)
    add = commands.add_parser

    def command(name: str, **kwargs: str) -> argparse.ArgumentParser:
        return add(name, parents=[common], **kwargs)

    commands.add_parser = command  # type: ignore[method-assign]  # every command takes --verbose

    bf = commands.add_parser("backfill", help="run phases over a range of game dates, gated by validation")
    _range_args(bf)
    bf.add_argument("--phases", default=phases,
                    help=f"comma-separated phases (default: {phases}); add ml to train, predict and grade")
    bf.add_argument(
        "--reprocess", choices=("none", "failed", "all"), default="none",
        help="none: dates without a current result; failed: also dates whose last run failed; "
        "all: every date, bypassing the cache",
    )  # fmt: skip
    bf.add_argument("--dry-run", action="store_true", help="print what would run; write nothing")
    bf.add_argument("--sample", type=int, default=0, metavar="N",
                    help="first run N dates spread over the range through every phase and validate them")  # fmt: skip
    bf.add_argument("--test-from", type=_date, metavar="D",
                    help="ml phase: first test date (default: the last fifth of the range's dates)")  # fmt: skip
    bf.add_argument("--executor", choices=("in-process", "deployments"), default="in-process",
                    help="deployments: each phase's chunks as runs of its <phase>/local deployment "
                    "(needs a Prefect server, the deployments and a worker)")  # fmt: skip
    bf.add_argument("--chunk-days", type=int, default=30, metavar="N",
                    help="calendar days per chunk: one phase subflow, or deployment run, each (default 30)")  # fmt: skip

    dy = commands.add_parser("daily", help="the nightly run for one date (default: yesterday in New York)")
    dy.add_argument("--date", type=_date, metavar="D", help="the game date (default: yesterday in New York)")

    va = commands.add_parser("validate", help="validate a phase over a date range (exit 0 passed, 1 failed, 2 warnings)")
    va.add_argument("--phase", required=True, choices=PHASE_NAMES)
    _range_args(va)

    rc = commands.add_parser("reconcile", help="NBA.com's feeds against each other and ESPN over a range: "
                             "print the report (exit 0 clean, 1 a critical finding, 2 warnings only)")  # fmt: skip
    _range_args(rc)
    rc.add_argument("--reprocess", choices=("none", "failed", "all"), default="none",
                    help="all: re-evaluate every date (a finding seen again gets its last_seen_at)")  # fmt: skip

    st = commands.add_parser("status", help="the date × phase status grid, from the run ledger")
    _range_args(st)
    st.add_argument("--phases", default=phases, help=f"comma-separated phases (default: {phases})")

    commands.add_parser("setup", help="create the tables, work pools and queues, variables, blocks and limits")

    tr = commands.add_parser("train", help="train the points model on a range's feature store; registered only if the gate passes")
    _range_args(tr)
    tr.add_argument("--test-from", type=_date, metavar="D",
                    help="first test date (default: the last fifth of the range's dates)")  # fmt: skip
    pr = commands.add_parser("predict", help="predict a range's game dates with the latest registered model")
    _range_args(pr)
    gr = commands.add_parser("grade", help="grade a range's predictions against the box scores")
    _range_args(gr)
    return parser


def setup_command(args: argparse.Namespace) -> int:
    from hoopflow.setup import setup

    for line in setup(get_settings()):
        print(line)
    return 0


def _bounds(args: argparse.Namespace) -> tuple[date, date]:
    start, end = args.start, args.end
    if start is not None and end is not None and start > end:
        raise UsageError(f"--start {start} is after --end {end}")
    if start is None or end is None:
        try:
            dates = get_settings().source_block().game_dates(date.min, date.max)
        except FileNotFoundError as exc:  # HOOPFLOW_SOURCE_DIR names no season folder
            raise UsageError(str(exc)) from None
        if not dates:
            raise UsageError("the source lists no game dates: give --start and --end")
        start, end = start or dates[0], end or dates[-1]
        if start > end:
            raise UsageError(f"--start {start} is after --end {end} (the source's last game date)"
                             if args.start else f"--end {end} is before --start {start} (the source's first game date)")  # fmt: skip
    return start, end


def _phases(text: str, known: tuple[str, ...] | None = None) -> list[str]:
    from tasks.phases import PHASE_NAMES

    known = known or PHASE_NAMES
    phases = [p.strip() for p in text.split(",") if p.strip()]
    unknown = sorted(set(phases) - set(known))
    if unknown:
        raise UsageError(f"unknown phases {unknown}; known: {', '.join(known)}")
    if not phases:
        raise UsageError(f"--phases names no phase; known: {', '.join(known)}")
    return phases


def _thresholds() -> None:
    """Read the thresholds file now: a bad one is a usage error, not a failure after raw."""
    from engine.thresholds import ThresholdsError
    from tasks.validate import all_thresholds

    try:
        all_thresholds()
    except ThresholdsError as exc:
        raise UsageError(str(exc)) from None


def backfill_command(args: argparse.Namespace) -> int:
    from flows.backfill import ML_PHASE, backfill
    from tasks.phases import PHASE_NAMES, PHASE_TABLES

    phases = _phases(args.phases, (*PHASE_NAMES, ML_PHASE))
    if args.sample < 0:
        raise UsageError("--sample must be ≥ 0")
    if args.chunk_days < 1:
        raise UsageError("--chunk-days must be ≥ 1")
    start, end = _bounds(args)
    _thresholds()
    t0 = time.perf_counter()
    state = backfill(start, end, phases, reprocess=args.reprocess, dry_run=args.dry_run, sample=args.sample,
                     executor=args.executor, chunk_days=args.chunk_days, test_from=args.test_from,
                     return_state=True)  # fmt: skip
    seconds = time.perf_counter() - t0
    value = state.result(raise_on_failure=False)
    report = getattr(value, "report", value)
    print()
    print(report.to_text() if hasattr(report, "to_text") else f"backfill {state.name}: {state.message}")
    if args.dry_run:
        return 0 if state.is_completed() else 1

    warehouse = get_settings().warehouse_block()
    tables = [spec for p in phases if p in PHASE_TABLES for spec in PHASE_TABLES[p]]
    warehouse.ensure_tables(tables)  # a range without games ran nothing; the summary still reads
    print()
    for spec in tables:
        counts = warehouse.query(
            f"SELECT count(*) AS n, count(DISTINCT game_date) AS dates FROM {spec.id} "
            "WHERE game_date BETWEEN @start AND @end",
            {"start": start, "end": end},
        )
        print(f"  {spec.id:<42} {int(counts.n[0]):>9,} rows over {int(counts.dates[0])} dates")
    print(f"  wall time {seconds:,.1f} s")
    if not state.is_completed():
        print(f"\nFAILED: {state.message}", file=sys.stderr)
        return 1
    return 0


def daily_command(args: argparse.Namespace) -> int:
    from flows.daily import daily

    _thresholds()
    return _finish(daily(args.date, return_state=True))


def validate_command(args: argparse.Namespace) -> int:
    from flows.validate import validate

    start, end = _bounds(args)
    _thresholds()
    state = validate(args.phase, start, end, fail_on_critical=False, return_state=True)
    if not state.is_completed():
        print(f"hoopflow: validation did not run: {state.message}", file=sys.stderr)
        return 1
    report = state.result()
    print(report.to_text())
    return report.exit_code


def reconcile_command(args: argparse.Namespace) -> int:
    """Loads the range's raw tables first where they are not current (as a backfill would),
    then reconciles it and prints the report of the whole range."""
    from datetime import datetime, timezone

    from flows.raw import raw
    from flows.reconcile import reconcile
    from tasks.reconcile_report import reconcile_report
    from tasks.reconcile_rules import ReconcileConfigError, load_rules

    start, end = _bounds(args)
    try:
        load_rules()
    except ReconcileConfigError as exc:
        raise UsageError(str(exc)) from None
    started = datetime.now(timezone.utc)
    loaded = raw(start, end, return_state=True)
    state = reconcile(start, end, reprocess=args.reprocess, return_state=True)
    report = reconcile_report(get_settings().warehouse_block(), start, end, started)
    print(report.to_text())
    failed = [s for s in (loaded, state) if not s.is_completed()]
    if failed:
        print("\nFAILED: " + "; ".join(s.message or s.name for s in failed), file=sys.stderr)
        return 1
    return report.exit_code


def status_command(args: argparse.Namespace) -> int:
    from engine.processors import STATUSES
    from engine.runner import status_grid
    from tasks.phases import PHASES

    phases = _phases(args.phases)
    start, end = _bounds(args)
    dates = get_settings().source_block().game_dates(start, end)
    grid = status_grid(PHASES, phases, dates)
    print("game_date   " + "".join(f"{p:<12}" for p in phases))
    for d, row in grid.items():
        print(f"{d}  " + "".join(f"{row[p]:<12}" for p in phases))
    print()
    for p in phases:
        counts = [sum(row[p] == s for row in grid.values()) for s in STATUSES]
        print(f"{p:<10} " + ", ".join(f"{s} {n}" for s, n in zip(STATUSES, counts, strict=True)))
    return 0


def train_command(args: argparse.Namespace) -> int:
    from flows.ml import train

    start, end = _bounds(args)
    if args.test_from and not start < args.test_from <= end:
        raise UsageError(f"--test-from {args.test_from} must be after --start {start} and not after --end {end}")
    return _finish(train(start, end, args.test_from, return_state=True))


def _finish(state) -> int:
    """Print the run's report (a failure's exception carries it: ModelRejected, DatesFailed,
    DailyFailed); exit 0 when the run completed, 1 otherwise."""
    value = state.result(raise_on_failure=False)
    report = getattr(value, "report", value)
    if hasattr(report, "to_text"):
        print(report.to_text())
    if not state.is_completed():
        print(f"\nFAILED: {state.message}", file=sys.stderr)
        return 1
    return 0


def _dates_command(flow, args: argparse.Namespace) -> int:
    start, end = _bounds(args)
    return _finish(flow(start, end, return_state=True))


def predict_command(args: argparse.Namespace) -> int:
    from flows.ml import predict

    return _dates_command(predict, args)


def grade_command(args: argparse.Namespace) -> int:
    from flows.ml import grade

    return _dates_command(grade, args)


def main(argv: list[str] | None = None) -> int:
    from pydantic import ValidationError

    try:
        _configure_prefect()  # before anything imports prefect (the parser lists the phases)
    except ValidationError as exc:  # a bad HOOPFLOW_* setting
        print(f"hoopflow: bad settings: {_settings_problems(exc)}", file=sys.stderr)
        return 2
    from prefect.exceptions import TerminationSignal  # Prefect only once configured

    from blocks.sources import SourceFileError

    args = _parser().parse_args(argv)
    if not args.verbose:
        _quiet_tracebacks()
    commands = {"backfill": backfill_command, "validate": validate_command, "status": status_command,
                "setup": setup_command, "train": train_command, "predict": predict_command,
                "grade": grade_command, "daily": daily_command, "reconcile": reconcile_command}  # fmt: skip
    previous = signal.signal(signal.SIGTERM, _terminate)  # as Ctrl-C: the run reports itself, then exits
    try:
        if args.command in NO_API:
            return commands[args.command](args)
        with _temporary_api():
            return commands[args.command](args)
    except UsageError as exc:
        print(f"hoopflow: {exc}", file=sys.stderr)
        return 2
    except SourceFileError as exc:  # e.g. a season's schedule that cannot be read: its dates are unknown
        print(f"hoopflow: {exc}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, TerminationSignal):
        print("\nhoopflow: interrupted; what was written is complete per date: run the same command "
              "again to resume", file=sys.stderr)  # fmt: skip
        return 128 + (_SIGNALLED[-1] if _SIGNALLED else signal.SIGINT)
    finally:
        signal.signal(signal.SIGTERM, previous)
        _release_warehouse()


# Commands that need no Prefect API (they read the warehouse and the source only).
NO_API = {"status"}


_SIGNALLED: list[int] = []


def _terminate(signum: int, frame: object) -> None:
    _SIGNALLED.append(signum)
    raise KeyboardInterrupt(f"signal {signum}")


def _settings_problems(exc: Exception) -> str:
    """`HOOPFLOW_WAREHOUSE: Input should be 'duckdb' or 'bigquery' (got 'bogus')`, one per problem."""
    errors = getattr(exc, "errors", lambda: [])()
    return "; ".join(
        f"HOOPFLOW_{'__'.join(str(p) for p in e['loc']).upper()}: {e['msg']} (got {e.get('input')!r})" for e in errors
    ) or str(exc).splitlines()[0]


def _release_warehouse() -> None:
    """Close this process's warehouse connection: DuckDB checkpoints its write-ahead log into
    the file, so a copy of warehouse.duckdb holds the last writes."""
    try:
        get_settings().warehouse_block().release()
    except Exception:  # nothing to release (bad settings), or already gone
        pass


if __name__ == "__main__":
    sys.exit(main())
