"""`make bench`: the full bundled season through every phase on a fresh home; prints JSON.

Not a test: it measures. Three runs, each in its own process on its own fresh home:
  flows   the gated backfill (Prefect: ephemeral API on a fresh database), then an
          immediate rerun in the same process (everything current: the cache path);
  direct  the same task functions and checks called as plain Python, no Prefect
          (tasks.phases.run_directly), for the orchestration overhead ratio.
Wall seconds exclude the ephemeral API's start-up (reported apart). Peak RSS is the measured
process's own (the ephemeral API server runs in a child process
of its own and is not included).

    python -m hoopflow.bench [--start D] [--end D] [--source-dir DIR] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _flows(start: date, end: date) -> dict:
    from prefect.client.orchestration import get_client

    from flows.backfill import backfill
    from tasks.phases import PHASE_NAMES

    # The ephemeral API starts on first use: time it apart from the backfill.
    t = time.perf_counter()
    with get_client(sync_client=True) as client:
        client.hello()
    startup = time.perf_counter() - t
    t0 = time.perf_counter()
    state = backfill(start, end, list(PHASE_NAMES), return_state=True)
    wall = time.perf_counter() - t0
    peak_first = _peak_rss_mb()
    value = state.result(raise_on_failure=False)
    report = getattr(value, "report", value)
    t1 = time.perf_counter()
    rerun = backfill(start, end, list(PHASE_NAMES), return_state=True)
    rerun_wall = time.perf_counter() - t1

    with get_client(sync_client=True) as client:  # a fresh API database: this run's only
        task_runs = client._client.post("/task_runs/count", json={}).json()
        flow_runs = client._client.post("/flow_runs/count", json={}).json()
    from blocks.settings import get_settings

    attempts = get_settings().warehouse_block().query("SELECT count(*) AS n FROM nba_ops.run_ledger").n[0]
    full = [r for r in report.results if r.stage == "full"]
    return {
        "state": state.name,
        "api_startup_seconds": round(startup, 1),
        "rerun_state": rerun.name,
        "wall_seconds": round(wall, 1),
        "seconds_per_phase": {r.phase: round(r.seconds, 1) for r in full},
        "validation_checks": {r.phase: len(r.validation.results) if r.validation else None for r in full},
        "dates": report.dates,
        "dates_per_hour": round(report.dates * 3600 / wall),
        "task_runs": task_runs,
        "flow_runs": flow_runs,
        "processor_runs_in_ledger": int(attempts),
        "peak_rss_mb": round(peak_first, 1),
        "rerun_wall_seconds": round(rerun_wall, 1),
    }


def _direct(start: date, end: date) -> dict:
    from blocks.settings import get_settings
    from tasks.phases import run_directly
    from tasks.phases import PHASE_NAMES, PHASE_TABLES
    from tasks.validate import all_thresholds, check_table, validation_scopes

    settings = get_settings()
    dates = settings.source_block().game_dates(start, end)
    t0 = time.perf_counter()
    seconds, checks = {}, 0
    thresholds = all_thresholds()
    for phase in PHASE_NAMES:
        t = time.perf_counter()
        run_directly([phase], dates)
        for scope in validation_scopes(phase, start, end):
            for spec in PHASE_TABLES[phase]:
                checks += len(check_table(
                    settings.warehouse_block(), spec.name, scope, thresholds[spec.name], settings.source_block()
                ))  # fmt: skip
        seconds[phase] = round(time.perf_counter() - t, 1)
    return {
        "wall_seconds": round(time.perf_counter() - t0, 1),
        "seconds_per_phase": seconds,
        "validation_checks": checks,
        "peak_rss_mb": round(_peak_rss_mb(), 1),
    }


def _child(kind: str, root: Path, start: date, end: date, source_dir: Path | None) -> dict:
    home = root / kind
    env = {
        **os.environ,
        **({"HOOPFLOW_SOURCE_DIR": str(source_dir)} if source_dir else {}),
        "HOOPFLOW_HOME": str(home),
        "PREFECT_HOME": str(root / f"{kind}-prefect"),  # a fresh API database per run
        "PREFECT_LOCAL_STORAGE_PATH": str(home / "results"),
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "hoopflow.bench", "--child", kind, "--start", str(start), "--end", str(end)],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-5000:])
        raise SystemExit(f"bench: the {kind} run failed (exit {done.returncode})")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    figures["process_seconds"] = round(time.perf_counter() - t0, 1)  # with interpreter start-up
    return figures


def two_seasons(folder: Path) -> Path:
    """A source folder of two seasons for the growth figure: the bundled 2023-24 and the same
    season moved 52 weeks later as "2024-25" (dates + 364 days, so weekdays and rest days are
    kept; game ids and season ids relabelled). A cost measurement only: not real data."""
    import pandas as pd

    from blocks.settings import BUNDLED_SOURCE_DIR

    src = BUNDLED_SOURCE_DIR / "2023-24"
    shutil.copytree(src, folder / "2023-24", dirs_exist_ok=True)
    later = folder / "2024-25"
    later.mkdir(parents=True, exist_ok=True)
    for name in ("schedule", "player_box", "shots"):
        df = pd.read_csv(src / f"{name}.csv.gz", dtype=str, keep_default_na=False)
        df["GAME_DATE"] = (pd.to_datetime(df.GAME_DATE) + pd.Timedelta(days=364)).dt.strftime("%Y-%m-%d")
        df["GAME_ID"] = df.GAME_ID.str.slice(0, 3) + "24" + df.GAME_ID.str.slice(5)
        if "SEASON" in df:
            df["SEASON"] = "2024-25"
        if "SEASON_ID" in df:
            df["SEASON_ID"] = "22024"
        df.to_csv(later / f"{name}.csv.gz", index=False)
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hoopflow.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--start", type=date.fromisoformat)
    parser.add_argument("--end", type=date.fromisoformat)
    parser.add_argument("--keep", action="store_true", help="keep the bench homes")
    parser.add_argument("--source-dir", type=Path, help="a source folder of season folders (default: the bundled one)")
    parser.add_argument("--two-seasons", type=Path, metavar="DIR",
                        help="write the two-season source folder for the growth figure to DIR and exit")  # fmt: skip
    parser.add_argument("--growth", action="store_true",
                        help="also run the flows on two seasons (see two_seasons) and report the cost ratio")  # fmt: skip
    parser.add_argument("--child", choices=("flows", "flows-two", "direct"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.two_seasons:
        print(two_seasons(args.two_seasons))
        return 0
    if args.source_dir:
        args.source_dir = args.source_dir.resolve()
        os.environ["HOOPFLOW_SOURCE_DIR"] = str(args.source_dir)
    if args.start is None or args.end is None:
        from blocks.settings import get_settings

        dates = get_settings().source_block().game_dates(date.min, date.max)
        args.start, args.end = args.start or dates[0], args.end or dates[-1]
    if args.child:
        run = _direct if args.child == "direct" else _flows
        print(json.dumps(run(args.start, args.end)))
        return 0

    root = Path(tempfile.mkdtemp(prefix="hoopflow-bench-"))
    try:
        flows = _child("flows", root, args.start, args.end, args.source_dir)
        direct = _child("direct", root, args.start, args.end, args.source_dir)
        growth = None
        if args.growth:
            both = two_seasons(root / "two-seasons")
            two = _child("flows-two", root, args.start, args.end + timedelta(days=364), both)
            growth = {"flows_two_seasons": two,
                      "two_over_one": round(two["wall_seconds"] / flows["wall_seconds"], 2)}  # fmt: skip
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    figures = {
        "range": f"{args.start}..{args.end}",
        "source_dir": str(args.source_dir or "bundled"),
        "cpus": os.cpu_count(),
        "flows": flows,
        "direct": direct,
        "orchestration_overhead_ratio": round(flows["wall_seconds"] / direct["wall_seconds"], 2),
        **({"growth": growth} if growth else {}),
    }
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
