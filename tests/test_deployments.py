"""prefect.yaml end to end, as a user runs it: a real `prefect server` (temporary
PREFECT_HOME, free port), `hoopflow setup`, `prefect deploy --name '*/local'` from the
repository's own prefect.yaml, a real process worker, and `prefect deployment run --watch`.
The warehouse is then checked against pandas over the source CSVs."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import yaml

from hoopflow.settings import REPO_ROOT
from tasks.locks import write_lock_name
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
        runs = [r for r in self.flow_runs(name.split("/")[0]) if r["parent_task_run_id"] is None]
        run = runs[-1]
        assert run["state"]["type"] in ("COMPLETED", "FAILED", "CRASHED"), (done.stdout, done.stderr)
        return run

    def table(self, sql: str) -> pd.DataFrame:
        # Read-only and closed at once: the worker's flow runs write this file.
        with duckdb.connect(str(self.home / "warehouse.duckdb"), read_only=True) as con:
            return con.execute(sql).df()


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
    env.update(
        PREFECT_HOME=str(root / "prefect"), PREFECT_API_URL=url, PREFECT_SERVER_ANALYTICS_ENABLED="false",
        # The nightly schedule is checked as declared; its runs are not wanted in a test.
        PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED="false",
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
        srv = Server(url, env, root / "home", season.parent, root / "worker.log")
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
    assert {name for name, _ in local} == {"daily", "backfill", "validate", "ml", "raw-range", "analytics-range",
                                           "precompute-range"}  # fmt: skip

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
    children = [r for r in server.flow_runs("raw-range") if r["parent_task_run_id"] is not None]
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
