"""prefect.yaml end to end, as a user runs it: a real `prefect server` (temporary
PREFECT_HOME, free port) with all its services on, scheduler included, `hoopflow setup`,
`prefect deploy --name '*/local'` from the repository's own prefect.yaml, a real process
worker, and `prefect deployment run --watch`. The warehouse is then checked against pandas
over the source CSVs; the cron schedule is checked by letting the server's scheduler create
its runs; the server's log is checked for errors of its services."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time as clock, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pandas as pd
import pytest
import yaml

from blocks.settings import REPO_ROOT
from engine.locks import write_lock_name
from tests.conftest import copy_season

pytestmark = pytest.mark.e2e

BIN = Path(sys.executable).parent
# The bundled season's first game dates; 2023-11-01's shot chart is corrupted in this test's
# source, so a fan-out chunk holding it fails.
BACKFILL_DATES = ["2023-10-24", "2023-10-25", "2023-10-26"]
DAILY_DATE = "2023-10-27"
FANOUT_DATES = ["2023-10-28", "2023-10-29", "2023-10-30", "2023-10-31", "2023-11-01", "2023-11-02"]
BROKEN_DATE = "2023-11-01"


@dataclass
class Server:
    url: str
    env: dict[str, str]
    home: Path
    source: Path
    worker_log: Path
    server_log: Path

    def cli(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        return subprocess.run(args, env=self.env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout)

    def api(self, path: str, body: dict | None = None) -> object:
        request = urllib.request.Request(
            f"{self.url}{path}", data=json.dumps(body or {}).encode(), method="POST" if body is not None else "GET",
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def flow_runs(self, flow_name: str) -> list[dict]:
        return self.api("/flow_runs/filter", {"flows": {"name": {"any_": [flow_name]}}, "sort": "START_TIME_ASC"})

    def run_deployment(self, name: str, **params: object) -> dict:
        args = [str(BIN / "prefect"), "deployment", "run", name, "--params", json.dumps(params),
                "--watch", "--watch-interval", "2"]  # fmt: skip
        done = self.cli(*args, timeout=900)
        found = re.search(r"UUID: ([0-9a-f-]{36})", done.stdout)
        assert found, done.stdout + done.stderr
        run = self.api(f"/flow_runs/{found.group(1)}")
        assert run["state"]["type"] in ("COMPLETED", "FAILED", "CRASHED"), (done.stdout, done.stderr)
        return run

    def wait_for_run(self, run_id: str, timeout: float = 600) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            run = self.api(f"/flow_runs/{run_id}")
            if run["state"]["type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
                return run
            assert time.monotonic() < deadline, f"flow run {run_id} still {run['state']['name']}"
            time.sleep(2)

    def api_patch(self, path: str, body: dict) -> None:
        request = urllib.request.Request(
            f"{self.url}{path}", data=json.dumps(body).encode(), method="PATCH",
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=30):
            pass

    def table(self, sql: str) -> pd.DataFrame:
        # Read-only and closed at once: the worker's flow runs write this file, and a run's
        # process may still hold it for a moment after the run is reported Completed.
        deadline = time.monotonic() + 60
        while True:
            try:
                with duckdb.connect(str(self.home / "warehouse.duckdb"), read_only=True) as con:
                    return con.execute(sql).df()
            except duckdb.IOException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("deployments")
    season = copy_season(root, BACKFILL_DATES + [DAILY_DATE] + FANOUT_DATES)
    shots = pd.read_csv(season / "shots.csv.gz", dtype=str, keep_default_na=False)
    shots.loc[shots.GAME_DATE == BROKEN_DATE, "SHOT_DISTANCE"] = "far"
    shots.to_csv(season / "shots.csv.gz", index=False)

    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "HOOPFLOW_"))}
    # Every server service runs with its defaults (scheduler, late runs, cancellation cleanup,
    # repossessor, event persister, triggers, ...): the scheduler creates the nightly runs for
    # the coming days at 10:00 America/New_York, which no worker picks up during the test.
    env.update(
        PREFECT_HOME=str(root / "prefect"), PREFECT_API_URL=url, PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_WORKER_QUERY_SECONDS="2", PREFECT_LOGGING_LEVEL="INFO",
        HOOPFLOW_HOME=str(root / "home"), HOOPFLOW_SOURCE_DIR=str(season.parent),
    )  # fmt: skip
    log = open(root / "server.log", "w")
    api = subprocess.Popen([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                           env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    worker = None
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                urllib.request.urlopen(f"{url}/health", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline or api.poll() is not None:
                    raise RuntimeError(f"prefect server did not start: {(root / 'server.log').read_text()[-3000:]}")
                time.sleep(1)
        srv = Server(url, env, root / "home", season.parent, root / "worker.log", root / "server.log")
        setup = srv.cli(str(BIN / "hoopflow"), "setup")
        assert setup.returncode == 0, setup.stderr
        deploy = srv.cli(str(BIN / "prefect"), "deploy", "--name", "*/local", "--no-prompt")
        assert deploy.returncode == 0, deploy.stdout + deploy.stderr
        worker = subprocess.Popen([str(BIN / "prefect"), "worker", "start", "--pool", "hoopflow-local"],
                                  env=env, cwd=root, stdout=open(srv.worker_log, "w"),
                                  stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        yield srv
    finally:
        for proc in (worker, api):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)


def test_setup_and_deploy_create_what_prefect_yaml_declares(server):
    declared = yaml.safe_load((REPO_ROOT / "prefect.yaml").read_text())["deployments"]
    local = {(d["entrypoint"].rsplit(":", 1)[1].replace("_", "-"), d["name"]) for d in declared if d["name"] == "local"}
    deployments = server.api("/deployments/filter", {})
    flows = {f["id"]: f["name"] for f in server.api("/flows/filter", {})}
    assert {(flows[d["flow_id"]], d["name"]) for d in deployments} == local
    assert {name for name, _ in local} == {"daily", "backfill", "validate", "ml", "raw", "reconcile", "analytics", "precompute"}

    daily = next(d for d in deployments if flows[d["flow_id"]] == "daily")
    schedule = daily["schedules"][0]["schedule"]
    assert (schedule["cron"], schedule["timezone"]) == ("0 10 * * *", "America/New_York")
    assert daily["work_queue_name"] == "daily" and daily["global_concurrency_limit"]["limit"] == 1

    queues = {q["name"]: q for q in server.api("/work_pools/hoopflow-local/queues/filter", {})}
    assert [queues[n]["priority"] for n in ("daily", "backfill", "chunks")] == [1, 2, 3]
    assert all(queues[n]["concurrency_limit"] == 1 for n in ("daily", "backfill", "chunks"))
    limits = {lim["name"]: lim for lim in server.api("/v2/concurrency_limits/filter", {})}
    assert limits["nba-stats-api"]["slot_decay_per_second"] == 0.5
    assert sum(name.startswith("hoopflow-date-writes-") for name in limits) == 16
    pools = {p["name"]: p["type"] for p in server.api("/work_pools/filter", {})}
    assert pools["hoopflow-local"] == "process" and pools["hoopflow-cloud-run"] == "cloud-run-v2"


def test_backfill_then_daily_through_the_worker(server, season_csv):
    run = server.run_deployment("backfill/local", start=BACKFILL_DATES[0], end=BACKFILL_DATES[-1])
    assert run["state"]["type"] == "COMPLETED", run["state"]["message"]
    assert run["name"] == f"backfill-{BACKFILL_DATES[0]}-{BACKFILL_DATES[-1]}"

    run = server.run_deployment("daily/local", game_date=DAILY_DATE)
    assert run["state"]["type"] == "COMPLETED", run["state"]["message"]
    assert run["name"] == f"daily-{DAILY_DATE}"

    # Every date the two runs loaded, against pandas over the CSVs.
    dates = BACKFILL_DATES + [DAILY_DATE]
    box = season_csv["player_box"][season_csv["player_box"].GAME_DATE.isin(dates)]
    games = season_csv["schedule"][season_csv["schedule"].GAME_DATE.isin(dates)]
    counts = server.table(
        "SELECT strftime(game_date, '%Y-%m-%d') AS d, count(*) AS n FROM nba_analytics.player_game_summary GROUP BY 1"
    ).set_index("d").n.to_dict()
    assert counts == box.groupby("GAME_DATE").size().to_dict()
    points = server.table("SELECT game_id, sum(pts) AS pts FROM nba_raw.player_boxscores GROUP BY 1")
    finals = games.assign(pts=games.HOME_PTS + games.AWAY_PTS).set_index("GAME_ID").pts
    assert points.set_index("game_id").pts.astype(int).to_dict() == finals.to_dict()

    # Every date was written holding its write lock (the deployments turn the locks on).
    events = server.api("/events/filter", {"filter": {"event": {"name": ["prefect.concurrency-limit.acquired"]}},
                                           "limit": 50})["events"]  # fmt: skip
    locks = {e["resource"].get("prefect.resource.name") for e in events}
    assert {write_lock_name(date.fromisoformat(d)) for d in dates} <= locks

    # The reports are artifacts of those runs.
    artifacts = {a["key"] for a in server.api("/artifacts/filter", {})}
    assert {"backfill-report", "backfill-status", "daily-report", "validation-raw"} <= artifacts
    report = server.api("/artifacts/filter", {"artifacts": {"key": {"any_": ["daily-report"]}}})[-1]
    assert f"daily {DAILY_DATE}: completed; {len(games[games.GAME_DATE == DAILY_DATE])} games" in report["data"]

    # Twice is safe: the second run finds every phase current and writes nothing.
    before = server.table("SELECT count(*) AS n FROM nba_ops.run_ledger").n[0]
    run = server.run_deployment("daily/local", game_date=DAILY_DATE)
    assert run["state"]["type"] == "COMPLETED"
    assert server.table("SELECT count(*) AS n FROM nba_ops.run_ledger").n[0] == before


def test_a_failed_fanout_chunk_fails_the_backfill_naming_it(server, season_csv):
    run = server.run_deployment(
        "backfill/local", start=FANOUT_DATES[0], end=FANOUT_DATES[-1], phases=["raw"],
        executor="deployments", chunk_days=2,
    )  # fmt: skip
    # The parent's children: flow runs started from one of its task runs (run_deployment's).
    parent_tasks = {t["id"] for t in server.api("/task_runs/filter", {"flow_runs": {"id": {"any_": [run["id"]]}}})}
    children = [r for r in server.flow_runs("raw") if r["parent_task_run_id"] in parent_tasks]
    names = {r["name"]: r["state"]["type"] for r in children}
    # Game dates 10-28 … 11-02 in 2-day chunks; the chunk with the corrupted date failed alone.
    assert names == {
        "raw-2023-10-28-2023-10-29": "COMPLETED",
        "raw-2023-10-30-2023-10-31": "COMPLETED",
        "raw-2023-11-01-2023-11-02": "FAILED",
    }
    assert run["state"]["type"] == "FAILED"
    assert "raw-2023-11-01-2023-11-02" in run["state"]["message"]
    # The other chunks' dates are loaded, and the failed chunk's good date too.
    loaded = set(server.table("SELECT DISTINCT strftime(game_date, '%Y-%m-%d') AS d FROM nba_raw.shots").d)
    assert set(FANOUT_DATES) - {BROKEN_DATE} <= loaded and BROKEN_DATE not in loaded


def _next_nightly_runs(after: datetime, n: int) -> list[datetime]:
    """The cron `0 10 * * *` in America/New_York, computed by hand: the next n times after `after`."""
    eastern = ZoneInfo("America/New_York")
    day = after.astimezone(eastern).date()
    out: list[datetime] = []
    while len(out) < n:
        at = datetime.combine(day, clock(10), tzinfo=eastern)
        if at > after:
            out.append(at.astimezone(timezone.utc))
        day += timedelta(days=1)
    return out


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_the_scheduler_creates_the_nightly_runs_and_a_worker_runs_one(server):
    """The server's own scheduler turns daily/local's cron into scheduled runs (none are
    created by hand), and the worker takes one of them to Completed."""
    deployment = next(
        d for d in server.api("/deployments/filter", {"deployments": {"name": {"any_": ["local"]}}})
        if d["entrypoint"].endswith(":daily")
    )
    query = {"flow_runs": {"deployment_id": {"any_": [deployment["id"]]}, "state": {"type": {"any_": ["SCHEDULED"]}}},
             "sort": "EXPECTED_START_TIME_ASC"}  # fmt: skip
    deadline = time.monotonic() + 180  # the scheduler visits new deployments every 5 s, all every 60 s
    while len(scheduled := [r for r in server.api("/flow_runs/filter", query) if r["auto_scheduled"]]) < 3:
        assert time.monotonic() < deadline, "the scheduler created no runs from the daily cron:\n" + _service_errors(server)
        time.sleep(2)
    times = [_when(r["expected_start_time"]) for r in scheduled]
    created = _when(scheduled[0]["created"])
    assert times[:3] == _next_nightly_runs(created - timedelta(seconds=1), 3)

    # Take the first nightly run now, for a date with games (yesterday has none in this source).
    run = scheduled[0]
    game_date = BACKFILL_DATES[0]
    server.api_patch(f"/flow_runs/{run['id']}", {"parameters": {"game_date": game_date}})
    now = datetime.now(timezone.utc).isoformat()
    server.api(f"/flow_runs/{run['id']}/set_state",
               {"state": {"type": "SCHEDULED", "state_details": {"scheduled_time": now}}, "force": True})  # fmt: skip
    done = server.wait_for_run(run["id"])
    assert done["state"]["type"] == "COMPLETED", (done["state"]["message"], server.worker_log.read_text()[-3000:])
    assert done["name"] == f"daily-{game_date}"  # named once it starts, like every daily run
    loaded = server.table(f"SELECT count(*) AS n FROM nba_raw.player_boxscores WHERE game_date = DATE '{game_date}'")
    assert loaded.n[0] > 0


# Errors a server may log that are no fault of its services or of our pins, each with why.
HARMLESS = (
    # SQLite takes one writer at a time: while flow runs write their states, the worker
    # channel may fail to persist one worker heartbeat ("database is locked"); the next one,
    # 30 s later, goes through (the test checks the worker is still ONLINE at the end).
    re.compile(r"Worker channel heartbeat persistence failed"),
    # The late-runs service reads a run, then writes its Late state in the same deferred
    # transaction; if another write commits in between, SQLite refuses the upgrade at once
    # ("database is locked", no wait). The run stays Scheduled: the next loop, 5 s later,
    # marks it, or a worker takes it first. Seen with prefect 3.8.8 and 3.9.1 alike, whenever
    # a fan-out chunk waits behind its queue's limit for more than 15 s.
    re.compile(r"Encountered error during state validation.*database is locked.*'name': 'Late'", re.S),
)
_RECORD = re.compile(r"^\d\d:\d\d:\d\d\.\d+ \| (\w+)\s*\| ")


def _service_errors(server: Server) -> str:
    """The server log's ERROR and CRITICAL records (with their tracebacks) and any bare
    traceback, less the allow-listed ones."""
    records: list[list[str]] = []
    for line in server.server_log.read_text(errors="replace").splitlines():
        if _RECORD.match(line) or not records:
            records.append([line])
        else:
            records[-1].append(line)
    bad = []
    for record in records:
        head = _RECORD.match(record[0])
        failing = head.group(1) in ("ERROR", "CRITICAL") if head else any("Traceback" in x for x in record)
        if failing and not any(h.search("\n".join(record)) for h in HARMLESS):
            bad.append("\n".join([record[0], *[x for x in record[1:] if "Error" in x or "Exception" in x][-3:]]))
    return "\n".join(bad[:20])


def test_the_server_services_log_no_errors(server):
    """Run last in the module: every service (scheduler, late runs, cancellation cleanup, the
    lease repossessor, event persister, triggers) has looped many times with these pins."""
    time.sleep(20)  # one more loop of the slowest services after the last flow run
    assert _service_errors(server) == ""
    workers = server.api("/work_pools/hoopflow-local/workers/filter", {})
    assert [w["status"] for w in workers] == ["ONLINE"]
