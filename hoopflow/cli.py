"""`hoopflow`: the flows, for local use.

    hoopflow backfill [--start D] [--end D] [--phases raw,analytics,precompute,ml]
                      [--reprocess none|failed|all] [--dry-run] [--sample N] [--test-from D]
                      [--executor in-process|deployments] [--chunk-days N]
    hoopflow daily    [--date D]    # one night: every phase for the date + the day's report
    hoopflow validate --phase P [--start D] [--end D]   # exit 0 passed, 1 critical, 2 warnings
    hoopflow status   [--start D] [--end D]             # the date × phase grid
    hoopflow setup      # tables, work pools, queues, variables, blocks, limits (idempotent)
    hoopflow train   [--start D] [--end D] [--test-from D]   # the points model, gated
    hoopflow predict [--start D] [--end D]   # with the latest registered model
    hoopflow grade   [--start D] [--end D]   # the predictions against the box scores

backfill exits 0 when every date succeeded and every gate passed, 1 otherwise (the report
says which check and which dates), 2 on bad usage. train exits 1 when the gate refuses the
model; predict and grade when a date fails (a date whose games are not in yet stays ungraded).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
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
    parser = argparse.ArgumentParser(prog="hoopflow", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

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
    if start is None or end is None:
        dates = get_settings().source_block().game_dates(date.min, date.max)
        start, end = start or dates[0], end or dates[-1]
    return start, end


def _phases(text: str, known: tuple[str, ...] | None = None) -> list[str] | None:
    from tasks.phases import PHASE_NAMES

    known = known or PHASE_NAMES
    phases = [p.strip() for p in text.split(",") if p.strip()]
    unknown = sorted(set(phases) - set(known))
    if unknown:
        print(f"hoopflow: unknown phases {unknown}; known: {', '.join(known)}", file=sys.stderr)
        return None
    return phases


def backfill_command(args: argparse.Namespace) -> int:
    from flows.backfill import ML_PHASE, backfill
    from tasks.phases import PHASE_NAMES, PHASE_TABLES

    start, end = _bounds(args)
    phases = _phases(args.phases, (*PHASE_NAMES, ML_PHASE))
    if phases is None:
        return 2
    if args.sample < 0:
        print("hoopflow: --sample must be ≥ 0", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    if args.chunk_days < 1:
        print("hoopflow: --chunk-days must be ≥ 1", file=sys.stderr)
        return 2
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

    return _finish(daily(args.date, return_state=True))


def validate_command(args: argparse.Namespace) -> int:
    from flows.validate import validate

    start, end = _bounds(args)
    state = validate(args.phase, start, end, fail_on_critical=False, return_state=True)
    if not state.is_completed():
        print(f"hoopflow: validation did not run: {state.message}", file=sys.stderr)
        return 1
    report = state.result()
    print(report.to_text())
    return report.exit_code


def status_command(args: argparse.Namespace) -> int:
    from engine.processors import STATUSES
    from engine.runner import status_grid
    from tasks.phases import PHASES

    start, end = _bounds(args)
    phases = _phases(args.phases)
    if phases is None:
        return 2
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
    if start > end:
        print(f"hoopflow: --start {start} is after --end {end}", file=sys.stderr)
        return 2
    if args.test_from and not start < args.test_from <= end:
        print(f"hoopflow: --test-from {args.test_from} must be after --start {start} and not after --end {end}",
              file=sys.stderr)  # fmt: skip
        return 2
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
    if start > end:
        print(f"hoopflow: --start {start} is after --end {end}", file=sys.stderr)
        return 2
    return _finish(flow(start, end, return_state=True))


def predict_command(args: argparse.Namespace) -> int:
    from flows.ml import predict

    return _dates_command(predict, args)


def grade_command(args: argparse.Namespace) -> int:
    from flows.ml import grade

    return _dates_command(grade, args)


def main(argv: list[str] | None = None) -> int:
    _configure_prefect()  # before anything imports prefect (the parser lists the phases)
    args = _parser().parse_args(argv)
    commands = {"backfill": backfill_command, "validate": validate_command, "status": status_command,
                "setup": setup_command, "train": train_command, "predict": predict_command,
                "grade": grade_command, "daily": daily_command}  # fmt: skip
    return commands[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
