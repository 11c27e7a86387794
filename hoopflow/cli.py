"""`hoopflow`: the flows, for local use.

    hoopflow backfill [--start D] [--end D] [--phases raw,analytics]
    hoopflow setup      # warehouse tables + the NBA.com rate limit (idempotent)

Exit codes: 0 every date succeeded, 1 a date failed (they are listed), 2 bad usage.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import date

from hoopflow.settings import get_settings


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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hoopflow", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    bf = commands.add_parser("backfill", help="run phases over a range of game dates")
    bf.add_argument("--start", type=_date, help="first date (default: the source's first game date)")
    bf.add_argument("--end", type=_date, help="last date (default: the source's last game date)")
    bf.add_argument(
        "--phases", default="raw,analytics", help="comma-separated phases (default: raw,analytics)"
    )
    commands.add_parser("setup", help="create the warehouse tables and the NBA.com rate limit")
    return parser


def setup_command(args: argparse.Namespace) -> int:
    from hoopflow.setup import setup

    for line in setup(get_settings()):
        print(line)
    return 0


def _season_bounds() -> tuple[date, date]:
    dates = get_settings().source_block().game_dates(date.min, date.max)
    return dates[0], dates[-1]


def backfill_command(args: argparse.Namespace) -> int:
    from flows.backfill import PHASE_TABLES, backfill

    start, end = args.start, args.end
    if start is None or end is None:
        first, last = _season_bounds()
        start, end = start or first, end or last
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    unknown = sorted(set(phases) - set(PHASE_TABLES))
    if unknown:
        print(f"hoopflow: unknown phases {unknown}; known: {', '.join(PHASE_TABLES)}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    state = backfill(start, end, phases, return_state=True)
    seconds = time.perf_counter() - t0

    warehouse = get_settings().warehouse_block()
    tables = [spec for p in phases for spec in PHASE_TABLES.get(p, ())]
    warehouse.ensure_tables(tables)  # a range without games ran nothing; the summary still reads
    print(f"\nhoopflow backfill {start} → {end}, phases {','.join(phases)}: {state.name}")
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


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _configure_prefect()
    return {"backfill": backfill_command, "setup": setup_command}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
