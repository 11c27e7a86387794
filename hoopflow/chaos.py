"""`make chaos`: SIGKILL a backfill at random moments, resume it, compare with a clean run.

Not a test: it prints figures. A clean run of `hoopflow backfill --phases raw,analytics,
precompute` over the range on a fresh home is measured first; then each trial runs the same
command on a fresh home of its own, kills the CLI's whole process group with SIGKILL at a
seeded moment (its temporary Prefect API runs in a group of its own and gets a SIGTERM from
the kernel when the CLI dies; any process of the session still alive 10 s later is reported
and killed), and reruns the command on that home until it exits 0. Kill moments are spread over the clean run's pipeline (from the backfill flow's first
log line to the end: phases and validations, not the interpreter's and API's start-up), one
per equal slice, in a seeded order, and counted from the trial's own flow start.

Each trial's warehouse is compared with the clean one by checksums computed here, from the
DuckDB file opened read-only, not by the code under test: every table's rows, ordered by all
their columns, without timestamp columns and run ids (run_id, flow_run_id, task_run_id,
validation_id), floats to 10 significant digits; nba_ops.run_ledger on the last successful
attempt of each processor × date (processor, date, rows, input fingerprint, code version: the
killed attempts and retries are extra rows by design); nba_ops.validation_results on the last
validation of each phase, its samples' rows sorted (checks take samples with LIMIT and no
ORDER BY: their order follows the order partitions were written in; a trial where only that
differs gets a note, not a difference). Landing files are compared byte for byte. A
differing table is narrowed to its differing dates, with example rows.

--faults RATE also sets HOOPFLOW_SOURCE_FAULT_RATE (seeded per run) in every trial's runs:
that share of source calls fails with an injected TransientSourceError (blocks/sources.py).

    python -m hoopflow.chaos [--trials 10] [--seed 13] [--start D --end D] [--faults 0.2]
                             [--fault-calls fetch_csv,fetch] [--max-reruns 3]
                             [--rerun-reprocess none|failed] [--keep]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from blocks.settings import REPO_ROOT

PHASES = "raw,analytics,precompute"
VOLATILE_COLUMNS = frozenset({"run_id", "flow_run_id", "task_run_id", "validation_id"})
LEDGER = "nba_ops.run_ledger"
VALIDATION = "nba_ops.validation_results"
# The ledger's columns that say what a partition holds (the rest is about the attempt).
LEDGER_COLUMNS = ("processor", "game_date", "rows_written", "input_fingerprint", "code_version")
STARTUP = "start-up"


# ---------------------------------------------------------------- running the CLI


@dataclass
class Run:
    """One CLI process: its exit code (None: killed), wall seconds and timed output lines."""

    code: int | None
    seconds: float
    lines: list[tuple[float, str]]  # (seconds since start, line) of stdout and stderr
    flow_began: float | None = None  # seconds since start of the backfill flow's first log line
    leftovers: list[int] = field(default_factory=list)  # processes of its session alive 10 s after a kill

    def text(self) -> str:
        return "\n".join(line for _, line in self.lines)


def env_for(root: Path, name: str, fault_rate: float = 0.0, fault_seed: int = 0, fault_calls: str = "") -> dict:
    """A fresh home under `root` (as hoopflow.bench builds them: own HOOPFLOW_HOME, own
    PREFECT_HOME so the ephemeral API has a fresh database); INFO logs so the running
    subflow and the retries can be read from the output."""
    home = root / name
    return {
        **os.environ,
        "HOOPFLOW_HOME": str(home),
        "PREFECT_HOME": str(root / f"{name}-prefect"),
        "PREFECT_LOCAL_STORAGE_PATH": str(home / "results"),
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
        "PREFECT_LOGGING_LEVEL": "INFO",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "HOOPFLOW_SOURCE_FAULT_RATE": str(fault_rate),
        "HOOPFLOW_SOURCE_FAULT_SEED": str(fault_seed),
        "HOOPFLOW_SOURCE_FAULT_CALLS": fault_calls,
        "PYTHONUNBUFFERED": "1",
    }


def backfill_command(start: date, end: date, reprocess: str = "none") -> list[str]:
    return [sys.executable, "-m", "hoopflow.cli", "backfill", "--start", str(start), "--end", str(end),
            "--phases", PHASES, *(["--reprocess", reprocess] if reprocess != "none" else [])]  # fmt: skip


def _session_members(sid: int) -> list[int]:
    """Live processes (not zombies) of a session, from /proc: the CLI's group and its
    temporary API (which the CLI starts in a group of its own, dying with the CLI)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()  # after "pid (comm) ": state ppid pgrp session
        if int(fields[3]) == sid and fields[0] != "Z":
            pids.append(int(stat.parent.name))
    return pids


def run_cli(command: list[str], env: dict, kill_after: float | None = None) -> Run:
    """Run the CLI in a session of its own; `kill_after` seconds after the backfill flow
    begins (its first log line: the interpreter's and the API's start-up vary from run to
    run, the pipeline much less), SIGKILL its whole group."""
    lines: list[tuple[float, str]] = []
    began: list[float] = []
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        command, env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip

    def read(stream) -> None:
        for line in stream:
            at = time.perf_counter() - t0
            lines.append((at, line.rstrip("\n")))
            if not began and _BEGIN.search(line):
                began.append(at)

    readers = [threading.Thread(target=read, args=(s,), daemon=True) for s in (proc.stdout, proc.stderr)]
    for r in readers:
        r.start()
    killed, leftovers = False, []
    while proc.poll() is None:
        if kill_after is not None and began and time.perf_counter() - t0 >= began[0] + kill_after:
            os.killpg(proc.pid, signal.SIGKILL)
            killed = True
            proc.wait()
            break
        time.sleep(0.02)
    seconds = time.perf_counter() - t0
    if killed:  # the API gets its SIGTERM from the kernel when the CLI dies: give it 10 s
        deadline = time.perf_counter() + 10
        while (leftovers := _session_members(proc.pid)) and time.perf_counter() < deadline:
            time.sleep(0.1)
        for pid in leftovers:  # ours: the session we started
            os.kill(pid, signal.SIGKILL)
    for r in readers:
        r.join(timeout=10)
    return Run(None if killed else proc.returncode, seconds, sorted(lines), began[0] if began else None, leftovers)


_BEGIN = re.compile(r"Beginning (?:subflow|flow) run '([^']+)'")
_END = re.compile(r"Flow run '([^']+)' - Finished in state")
_RETRY = re.compile(r"Task run '([^']+)' - Task run failed with \w+: (\w+)\((.*)\) - Retry (\d+)/(\d+)")
_EXHAUSTED = re.compile(r"Task run '([^']+)' - Task run failed with .* - Retries are exhausted")
_CALL_RETRY = re.compile(r": .*; retry (\d+) of (\d+) in [\d.]+ s")  # blocks.sources, outside tasks


def running_at(lines: list[tuple[float, str]], t: float) -> str:
    """What the output says was running at `t`: the innermost flow run begun and not
    finished (a phase subflow, a validation), else the backfill between them."""
    open_runs: list[str] = []
    for at, line in lines:
        if at > t:
            break
        if m := _BEGIN.search(line):
            open_runs.append(m.group(1))
        elif (m := _END.search(line)) and m.group(1) in open_runs:
            open_runs.remove(m.group(1))
    if not open_runs:
        return STARTUP if not any(_BEGIN.search(line) for at, line in lines if at <= t) else "after the flows"
    if len(open_runs) == 1:  # the backfill itself: planning, or between a phase and its validation
        done = [name for name, _, finished in timeline(lines) if finished <= t and name != open_runs[0]]
        return f"{open_runs[0]}, after {done[-1]}" if done else f"{open_runs[0]}, planning"
    return open_runs[-1]


def timeline(lines: list[tuple[float, str]]) -> list[tuple[str, float, float]]:
    """(flow run, began, finished) of every flow run in the output, in order."""
    began: dict[str, float] = {}
    out = []
    for at, line in lines:
        if m := _BEGIN.search(line):
            began[m.group(1)] = at
        elif (m := _END.search(line)) and m.group(1) in began:
            out.append((m.group(1), began[m.group(1)], at))
    return sorted(out, key=lambda r: r[1])


def retries_in(run: Run) -> tuple[int, int, int]:
    """(task retries scheduled, tasks whose retries ran out, source calls retried outside
    tasks) in a run's output."""
    text = run.text()
    return len(_RETRY.findall(text)), len(_EXHAUSTED.findall(text)), len(_CALL_RETRY.findall(text))


# ---------------------------------------------------------------- checksums, independent of the code


@dataclass(frozen=True)
class TableSum:
    rows: int
    digest: str
    duplicates: int  # rows beyond the first of each key (no key: of each identical row)
    by_date: dict[str, str]  # game_date → digest of its rows (for narrowing a difference)
    strict: str = ""  # the digest without normalising validation samples (see _sample)


def _value(v: object) -> str:
    if v is None:
        return "∅"
    if isinstance(v, float):
        return "nan" if v != v else f"{v:.10g}"
    return str(v)


def _digest(rows: list[tuple[str, ...]]) -> str:
    h = hashlib.sha256()
    for row in sorted(rows):
        h.update("\x1f".join(row).encode())
        h.update(b"\n")
    return h.hexdigest()[:16]


def _keys() -> dict[str, tuple[str, ...]]:
    """Declared table keys (the duplicate count itself is computed here)."""
    from tasks.phases import PHASE_TABLES

    return {spec.id: tuple(spec.key) for specs in PHASE_TABLES.values() for spec in specs}


def _sample(text: str) -> str:
    """A validation sample (a JSON list of rows) with its rows sorted: checks take their
    samples with LIMIT and no ORDER BY, so the rows' order follows the order the partitions
    were written in, which a resumed run changes."""
    try:
        rows = json.loads(text)
    except ValueError:
        return text
    if not isinstance(rows, list):
        return text
    return json.dumps(sorted(rows, key=lambda r: json.dumps(r, sort_keys=True, default=str)), default=str)


def _select(con, table: str) -> tuple[list[str], str]:
    """A table's compared columns and the query of its compared rows."""
    schema, name = table.split(".")
    types = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position", [schema, name],
    ).fetchall()  # fmt: skip
    columns = [c for c, t in types if not t.upper().startswith("TIMESTAMP") and c not in VOLATILE_COLUMNS]
    source = table
    if table == LEDGER:
        columns = list(LEDGER_COLUMNS)
        source = ("(SELECT *, row_number() OVER (PARTITION BY processor, game_date ORDER BY finished_at DESC) "
                  f"AS n_ FROM {LEDGER} WHERE status = 'succeeded') WHERE n_ = 1")  # fmt: skip
    elif table == VALIDATION:
        source = (f"{VALIDATION} WHERE validation_id IN (SELECT arg_max(validation_id, checked_at) "
                  f"FROM {VALIDATION} GROUP BY phase)")  # fmt: skip
    return columns, "SELECT " + ", ".join(f'"{c}"' for c in columns) + f" FROM {source}"


def _table_rows(con, table: str, strict: bool = False) -> tuple[list[str], list[tuple[str, ...]]]:
    """A table's compared columns and rows, as text (see the module docstring)."""
    columns, query = _select(con, table)
    rows = [tuple(map(_value, r)) for r in con.execute(query).fetchall()]
    if table == VALIDATION and "sample" in columns and not strict:
        i = columns.index("sample")
        rows = [(*r[:i], _sample(r[i]), *r[i + 1 :]) for r in rows]
    return columns, rows


def _tables(con) -> list[str]:
    return [f"{s}.{t}" for s, t in con.execute(
        "SELECT table_schema, table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' ORDER BY ALL"
    ).fetchall()]  # fmt: skip


def table_sums(db_path: Path) -> dict[str, TableSum]:
    """Every table of a DuckDB warehouse file, opened read-only, summed as the module says."""
    import duckdb

    keys = _keys()
    out: dict[str, TableSum] = {}
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        for table in _tables(con):
            columns, rows = _table_rows(con, table)
            key = keys.get(table) or (("processor", "game_date") if table == LEDGER else ())
            positions = [columns.index(k) for k in key] if key else list(range(len(columns)))
            distinct = len({tuple(r[i] for i in positions) for r in rows})
            by_date: dict[str, list[tuple[str, ...]]] = {}
            if "game_date" in columns:
                i = columns.index("game_date")
                for r in rows:
                    by_date.setdefault(r[i], []).append(r)
            strict = _digest(_table_rows(con, table, strict=True)[1]) if table == VALIDATION else _digest(rows)
            out[table] = TableSum(len(rows), _digest(rows), len(rows) - distinct,
                                  {d: _digest(rs) for d, rs in by_date.items()}, strict)  # fmt: skip
    finally:
        con.close()
    return out


FLOAT_NOISE = 1e-9  # largest relative gap between two floats that counts as summation order


def _raw_rows(path: Path, table: str, dates: list[str]) -> tuple[list[str], list[tuple]]:
    """A table's compared columns and rows (of the given dates, if it has game_date), its
    floats as floats."""
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        if table not in _tables(con):
            return [], []
        columns, query = _select(con, table)
        rows = con.execute(query).fetchall()
    finally:
        con.close()
    if dates and "game_date" in columns:
        i = columns.index("game_date")
        rows = [r for r in rows if str(r[i]) in set(dates)]
    return columns, rows


def compare_rows(clean_db: Path, trial_db: Path, table: str, dates: list[str]) -> tuple[bool, list[str]]:
    """(whether only floats differ, by at most FLOAT_NOISE relative: the order a sum ran in,
    lines saying where). Rows are paired on their other columns; example lines name each
    differing value with all its digits, or show rows found on one side only."""
    columns, a = _raw_rows(clean_db, table, dates)
    _, b = _raw_rows(trial_db, table, dates)

    def split(rows: list[tuple]) -> dict[tuple, list[tuple]]:
        groups: dict[tuple, list[tuple]] = {}
        for r in rows:
            key = tuple(_value(v) for v in r if not isinstance(v, float))
            groups.setdefault(key, []).append(r)
        return {k: sorted(v, key=lambda r: tuple(_value(x) for x in r)) for k, v in groups.items()}

    ga, gb = split(a), split(b)
    if ga.keys() != gb.keys() or any(len(ga[k]) != len(gb[k]) for k in ga):
        counts_a, counts_b = Counter(tuple(map(_value, r)) for r in a), Counter(tuple(map(_value, r)) for r in b)
        out = []
        for side, only in (("clean only", counts_a - counts_b), ("here only", counts_b - counts_a)):
            for row in list(only.elements())[:2]:
                out.append(f"{side}: " + ", ".join(f"{c}={v}" for c, v in zip(columns, row, strict=True))[:600])
        return False, out
    gaps: list[tuple[float, str]] = []
    for k in ga:
        for ra, rb in zip(ga[k], gb[k], strict=True):
            for c, x, y in zip(columns, ra, rb, strict=True):
                if isinstance(x, float) and isinstance(y, float) and x != y and not (x != x and y != y):
                    gap = abs(x - y) / max(abs(x), abs(y))
                    where = ", ".join(f"{n}={v}" for n, v in zip(columns, ra, strict=True)
                                      if n in ("game_date", "game_id", "player_id", "team_id"))  # fmt: skip
                    gaps.append((gap, f"{where}: {c} {x!r} vs {y!r}"))
    if not gaps:
        return True, []
    worst = max(gaps)
    noise = worst[0] <= FLOAT_NOISE
    return noise, [f"{len(gaps)} float values differ, at most {worst[0]:.1e} relative; e.g. {worst[1]}"]


def landing_sums(home: Path) -> dict[str, str]:
    root = home / "landing"
    if not root.is_dir():
        return {}
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()[:16]
            for p in sorted(root.rglob("*")) if p.is_file()}  # fmt: skip


def differences(clean: dict[str, TableSum], trial: dict[str, TableSum],
                dbs: tuple[Path, Path] | None = None) -> tuple[list[str], list[str]]:  # fmt: skip
    """(differences, notes): a line per differing table (row counts, the dates whose rows
    differ) and, given the two warehouse files, what differs on those dates; a table whose
    rows differ only in floats within FLOAT_NOISE is a note, not a difference."""
    out: list[str] = []
    notes: list[str] = []
    for table in sorted(set(clean) | set(trial)):
        a, b = clean.get(table), trial.get(table)
        if a is None or b is None:
            out.append(f"{table}: only in the {'trial' if a is None else 'clean run'}")
        elif a.digest != b.digest:
            dates = sorted(d for d in set(a.by_date) | set(b.by_date) if a.by_date.get(d) != b.by_date.get(d))
            shown = ", ".join(dates[:8]) + (f" … ({len(dates)} dates)" if len(dates) > 8 else "")
            line = f"{table}: {a.rows} rows clean, {b.rows} here" + (f"; dates {shown}" if dates else "")
            noise, detail = compare_rows(*dbs, table, dates) if dbs else (False, [])
            if noise:
                notes.append(f"{line}: float noise only: " + "; ".join(detail))
            else:
                out += [line, *(f"  {d}" for d in detail)]
    return out, notes


def order_only(clean: dict[str, TableSum], trial: dict[str, TableSum]) -> list[str]:
    """Tables equal once validation samples are sorted, but not as stored."""
    return [t for t, a in clean.items() if t in trial and a.digest == trial[t].digest and a.strict != trial[t].strict]


def ledger_state(db_path: Path) -> tuple[str, int, int]:
    """(last processor × date written, attempts, failed attempts) of a warehouse's ledger."""
    import duckdb

    if not db_path.exists():
        return "no warehouse yet", 0, 0
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        if not con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'nba_ops' AND table_name = 'run_ledger'"
        ).fetchone()[0]:
            return "no ledger yet", 0, 0
        last = con.execute(f"SELECT processor, game_date, status FROM {LEDGER} ORDER BY finished_at DESC LIMIT 1").fetchone()
        n, failed = con.execute(f"SELECT count(*), count(*) FILTER (status = 'failed') FROM {LEDGER}").fetchone()
    finally:
        con.close()
    return (f"{last[0]} {last[1]} ({last[2]})" if last else "no ledger row yet"), int(n), int(failed)


def failed_attempts(db_path: Path) -> dict[str, int]:
    """Failed ledger attempts by error kind (the first words of the error)."""
    import duckdb

    if not db_path.exists():
        return {}
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        rows = con.execute(f"SELECT split_part(error, ':', 1) AS kind, count(*) FROM {LEDGER} "
                           "WHERE status = 'failed' GROUP BY ALL ORDER BY ALL").fetchall()  # fmt: skip
    except duckdb.CatalogException:
        return {}
    finally:
        con.close()
    return {str(k): int(n) for k, n in rows}


# ---------------------------------------------------------------- trials


@dataclass
class Trial:
    number: int
    kill_after: float
    killed: Run
    running: str
    ledger_at_kill: str
    attempts_at_kill: int
    reruns: list[Run]
    differing: list[str]
    float_noise: list[str]
    landing_differing: list[str]
    duplicates: dict[str, int]
    failed: dict[str, int]
    order_only: list[str] = field(default_factory=list)

    @property
    def n_differing(self) -> int:
        """Differing tables (and landing files, as one), without the example lines."""
        return sum(not line.startswith(" ") for line in self.differing) + len(self.landing_differing)

    @property
    def completed(self) -> bool:
        last = self.reruns[-1] if self.reruns else self.killed
        return last.code == 0


def _last_lines(run: Run) -> str:
    """The run's FAILED line (the CLI's last word on a failure), else its last line."""
    keep = [line.strip() for _, line in run.lines if line.strip()]
    failed = [line for line in keep if line.startswith("FAILED")]
    return (failed or keep or ["no output"])[-1][:600]


def run_trial(number: int, kill_after: float, root: Path, args: argparse.Namespace, clean: dict[str, TableSum],
              clean_landing: dict[str, str]) -> Trial:  # fmt: skip
    name = f"trial-{number}"
    command = backfill_command(args.start, args.end)
    rerun = backfill_command(args.start, args.end, args.rerun_reprocess)

    def env(attempt: int) -> dict:  # each process its own fault seed: a rerun meets other faults
        return env_for(root, name, args.faults, args.seed * 1000 + number * 10 + attempt, args.fault_calls)

    killed = run_cli(command, env(0), kill_after=kill_after)
    db = root / name / "warehouse.duckdb"
    running = running_at(killed.lines, killed.seconds) if killed.code is None else f"finished first (exit {killed.code})"
    ledger_at_kill, attempts, _ = ledger_state(db)
    reruns: list[Run] = []
    if killed.code != 0:
        for attempt in range(1, args.max_reruns + 1):
            reruns.append(run_cli(rerun, env(attempt)))
            if reruns[-1].code == 0:
                break
    sums = table_sums(db) if db.exists() else {}
    landing = landing_sums(root / name)
    landing_diff = sorted(p for p in set(clean_landing) | set(landing) if clean_landing.get(p) != landing.get(p))
    if landing_diff:
        shown = ", ".join(landing_diff[:6]) + (" …" if len(landing_diff) > 6 else "")
        landing_diff = [f"landing: {len(landing_diff)} files differ or are missing ({shown})"]
    return Trial(
        number, kill_after, killed, running, ledger_at_kill, attempts, reruns,
        *differences(clean, sums, (root / "clean" / "warehouse.duckdb", db) if (reruns or [killed])[-1].code == 0 else None),
        landing_diff,
        {t: s.duplicates for t, s in sums.items() if s.duplicates}, failed_attempts(db), order_only(clean, sums),
    )  # fmt: skip


def _kill_times(n: int, first: float, last: float, seed: int) -> list[float]:
    """One seeded moment in each of n equal slices of [first, last], in a seeded order."""
    rng = random.Random(seed)
    width = (last - first) / n
    times = [first + (i + rng.random()) * width for i in range(n)]
    rng.shuffle(times)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hoopflow.chaos", description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--start", type=date.fromisoformat, default=date(2023, 10, 24))
    parser.add_argument("--end", type=date.fromisoformat, default=date(2023, 11, 24))
    parser.add_argument("--faults", type=float, default=0.0, metavar="RATE",
                        help="share of source calls failing with an injected transient error in the trials")  # fmt: skip
    parser.add_argument("--fault-calls", default="", metavar="CALLS",
                        help="only these source calls fail (comma-separated, e.g. fetch_csv,fetch; default every call)")  # fmt: skip
    parser.add_argument("--max-reruns", type=int, default=3, help="reruns of a killed trial before giving up")
    parser.add_argument("--rerun-reprocess", choices=("none", "failed"), default="none",
                        help="the reruns' --reprocess (default none: the same command as the killed run)")  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the homes (printed)")
    args = parser.parse_args(argv)
    if args.trials < 1 or not 0 <= args.faults <= 1:
        parser.error("--trials must be ≥ 1 and --faults within [0, 1]")

    root = Path(tempfile.mkdtemp(prefix="hoopflow-chaos-"))
    command = backfill_command(args.start, args.end)
    print(f"chaos: {args.trials} trials of `hoopflow backfill --start {args.start} --end {args.end} --phases {PHASES}`"
          f", seed {args.seed}, faults {args.faults:g}{' in ' + args.fault_calls if args.fault_calls else ''}"
          f"{'; reruns with --reprocess ' + args.rerun_reprocess if args.rerun_reprocess != 'none' else ''}; "
          f"homes under {root}", flush=True)  # fmt: skip
    try:
        clean = run_cli(command, env_for(root, "clean"))
        if clean.code != 0:
            sys.stderr.write(clean.text()[-5000:] + "\n")
            raise SystemExit(f"chaos: the clean run failed (exit {clean.code})")
        flows = timeline(clean.lines)
        first = min((b for _, b, _ in flows), default=0.0)
        print(f"\nclean run: {clean.seconds:.1f} s (backfill flow from {first:.1f} s)", flush=True)
        for run_name, began, finished in flows:
            print(f"  {began:6.1f} – {finished:6.1f} s  {run_name}")
        clean_sums = table_sums(root / "clean" / "warehouse.duckdb")
        clean_landing = landing_sums(root / "clean")
        print(f"  {len(clean_sums)} tables, {len(clean_landing)} landing files; duplicate keys "
              f"{ {t: s.duplicates for t, s in clean_sums.items() if s.duplicates} or 0}", flush=True)  # fmt: skip

        trials = []
        print("\n| trial | kill at s after the flow began (since start) | running | last ledger row at kill | reruns | rerun s (× clean) "
              "| differing tables | duplicate keys | retries (tasks, source calls; exhausted) | failed attempts |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for i, kill_after in enumerate(_kill_times(args.trials, 0.0, clean.seconds - first, args.seed), start=1):
            t = run_trial(i, kill_after, root, args, clean_sums, clean_landing)
            trials.append(t)
            rerun_s = sum(r.seconds for r in t.reruns)
            retried = [retries_in(r) for r in (t.killed, *t.reruns)]
            codes = ",".join(str(r.code) for r in t.reruns)
            dups = {k: v for k, v in t.duplicates.items() if v != clean_sums.get(k, TableSum(0, "", 0, {})).duplicates}
            print(
                f"| {i} | {kill_after:.1f} ({t.killed.seconds:.1f}) | {t.running} | {t.ledger_at_kill}; {t.attempts_at_kill} attempts "
                f"| {len(t.reruns)} (exit {codes or '-'}) | {rerun_s:.1f} ({rerun_s / clean.seconds:.2f}) "
                f"| {t.n_differing if t.completed else 'incomplete'} | {sum(dups.values())} "
                f"| {sum(r[0] for r in retried)} task, {sum(r[2] for r in retried)} call; "
                f"{sum(r[1] for r in retried)} exhausted "
                f"| {', '.join(f'{k} {n}' for k, n in t.failed.items()) or 0} |",
                flush=True,
            )  # fmt: skip
            if t.completed:
                for line in t.differing + t.landing_differing:
                    print(f"    DIFFERENT {line}")
            for line in t.float_noise:
                print(f"    note: {line}")
            for table in t.order_only:
                print(f"    note: {table} equal only once its samples' rows are sorted (the stored row order differs)")
            if not t.completed and t.differing:  # an incomplete trial is short of the clean run, not wrong
                print(f"    incomplete: {t.n_differing} tables short of the clean run, e.g. {t.differing[0]}")
            for table, n in dups.items():
                print(f"    DUPLICATES {table}: {n} (clean {clean_sums.get(table, TableSum(0, '', 0, {})).duplicates})")
            if t.killed.leftovers:
                print(f"    processes of the killed session alive 10 s after the SIGKILL (killed then): {t.killed.leftovers}")
            if not t.completed:
                print(f"    NOT COMPLETED after {len(t.reruns)} reruns")
            if t.killed.code not in (None, 0):
                print(f"    the run to kill failed first: {_last_lines(t.killed)}")
            for r in t.reruns:
                if r.code != 0:
                    print(f"    rerun exit {r.code}: {_last_lines(r)}")

        completed = [t for t in trials if t.completed]
        differing = sum(t.n_differing for t in completed)
        dup_total = sum(
            n for t in trials for k, n in t.duplicates.items()
            if n != clean_sums.get(k, TableSum(0, "", 0, {})).duplicates
        )  # fmt: skip
        rerun_seconds = [sum(r.seconds for r in t.reruns) for t in trials if t.reruns]
        retries = [retries_in(r) for t in trials for r in (t.killed, *t.reruns)]
        kinds: dict[str, int] = {}
        for t in trials:
            for k, n in t.failed.items():
                kinds[k] = kinds.get(k, 0) + n
        print(f"\nsummary: {len(completed)}/{len(trials)} trials completed; "
              f"{sum(len(t.reruns) for t in trials)} reruns ({max((len(t.reruns) for t in trials), default=0)} at most); "
              f"differing tables {differing} (in the completed trials); duplicate keys {dup_total}")  # fmt: skip
        if rerun_seconds:
            mean = sum(rerun_seconds) / len(rerun_seconds)
            print(f"resume cost: rerun {min(rerun_seconds):.1f}–{max(rerun_seconds):.1f} s, mean {mean:.1f} s "
                  f"vs clean {clean.seconds:.1f} s ({mean / clean.seconds:.2f} × clean)")  # fmt: skip
        print(f"retries: {sum(r[0] for r in retries)} task retries, {sum(r[2] for r in retries)} source-call retries "
              f"outside tasks, {sum(r[1] for r in retries)} tasks out of retries; failed ledger attempts {kinds or 0}")  # fmt: skip
        if notes := sum(len(t.order_only) for t in trials):
            print(f"notes: {notes} trials with validation samples in another row order (equal once sorted)")
        if noise := [t.number for t in trials if t.float_noise]:
            print(f"notes: trials {noise} with floats that differ only within {FLOAT_NOISE:g} relative "
                  "(not counted as differences; see their notes)")  # fmt: skip
        if any(t.killed.leftovers for t in trials):
            print("some killed sessions left processes behind (killed afterwards); see the trials")
        ok = len(completed) == len(trials) and differing == 0 and dup_total == 0
    finally:
        if args.keep:
            print(f"homes kept under {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
