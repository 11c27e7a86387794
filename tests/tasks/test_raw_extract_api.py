"""A raw processor's Prefect task on the NBA stats API source, through a real temporary
Prefect API: HOOPFLOW_SOURCE=nba_api pointed at a local server answering with recorded
NBA.com responses. A 429 is retried by the task's retry policy (2 s + jitter) and the landing
file holds the bundled rows; a malformed body fails at once, without a retry."""

from __future__ import annotations

import hashlib
import json
from datetime import date

import pandas as pd
import pytest
from prefect import flow

from blocks.sources import SOURCE_COLUMNS
from blocks.settings import get_settings, reset_settings
from engine.ledger import RUN_LEDGER, Written
from engine.phase_run import processor_task
from engine.processors import execute, plan_phase
from tasks.phases import DATA_TABLES, PHASES
from tasks.raw import RAW
from tests.conftest import SEASON_DIR
from tests.nba_api_server import serve_recorded_nba_stats

pytestmark = pytest.mark.e2e

DAY = date(2024, 3, 28)  # a recorded date: 2 games, one of them in overtime
# Each raw processor (= its table = its ledger name) and the source table it lands.
PROCESSOR_OF = {"schedule": "schedule", "player_box": "player_boxscores", "shots": "shots"}


def _prepare(table: str) -> tuple[str, str | None]:
    """Plan the date (the plan asks the source for the season's dates) and, for box scores
    and shots, load the date's schedule first (they are checked against it), directly, so
    that every request the test then counts is the processor's own. Returns the processor's
    input fingerprint and the date's season."""
    get_settings().warehouse_block().ensure_tables([RUN_LEDGER, *DATA_TABLES])
    step = plan_phase(RAW, [DAY], PHASES).dates[DAY]
    if table != "schedule":
        execute(RAW.processor("schedule"), DAY, step.fingerprints["schedule"], step.season)
    return step.fingerprints[PROCESSOR_OF[table]], step.season


@flow(name="land-one")
def land_one(table: str, game_date: date, fingerprint: str, season: str | None = None) -> Written:
    return processor_task(RAW.processor(PROCESSOR_OF[table]))(game_date, fingerprint, season)


@pytest.fixture
def api_server(prefect_api, hoopflow_home, monkeypatch):
    with serve_recorded_nba_stats() as server:
        monkeypatch.setenv("HOOPFLOW_SOURCE", "nba_api")
        monkeypatch.setenv("HOOPFLOW_NBA_API__BASE_URL", server.url)
        monkeypatch.setenv("HOOPFLOW_NBA_API__TIMEOUT_SECONDS", "5")
        reset_settings()
        yield server
    reset_settings()


def _bundled(table: str) -> pd.DataFrame:
    df = pd.read_csv(SEASON_DIR / f"{table}.csv.gz", dtype=str, keep_default_na=False)
    return df[df.GAME_DATE == DAY.isoformat()]


def _rows(df: pd.DataFrame) -> list[tuple[str, ...]]:
    return sorted(tuple(str(v) for v in row) for row in df.itertuples(index=False))


def _ledger(table: str) -> pd.DataFrame:
    return get_settings().warehouse_block().query(
        "SELECT status, attempt, error, rows_written, detail FROM nba_ops.run_ledger WHERE processor = @p "
        "ORDER BY started_at",
        {"p": PROCESSOR_OF[table]},
    )


@pytest.mark.parametrize("table", ["player_box", "shots"])
def test_a_429_is_retried_and_the_date_lands(api_server, hoopflow_home, table):
    assert get_settings().source_block().name == "nba_api"
    endpoint = "shotchartdetail" if table == "shots" else "leaguegamelog"
    fingerprint, season = _prepare(table)
    before = len(api_server.requests_to(endpoint))
    api_server.fail(429, times=1, path=endpoint)

    written = land_one(table, DAY, fingerprint, season)

    requests = api_server.requests_to(endpoint)[before:]
    assert len(requests) == 2  # the 429, then the retry
    if table == "player_box":
        assert [r.params["PlayerOrTeam"] for r in requests] == ["P", "P"]
    file = hoopflow_home / "landing" / table / f"{DAY.isoformat()}.csv"
    assert file.is_file()
    got = pd.read_csv(file, dtype=str, keep_default_na=False)
    assert list(got.columns) == list(SOURCE_COLUMNS[table])
    assert _rows(got) == _rows(_bundled(table))
    assert written == Written(PROCESSOR_OF[table], len(_bundled(table)))
    ledger = _ledger(table)
    assert ledger.status.tolist() == ["retrying", "succeeded"]  # a transient failure with a retry to come
    assert ledger.attempt.tolist() == [1, 2]
    assert "TransientSourceError" in ledger.error.iloc[0] and "HTTP 429" in ledger.error.iloc[0]
    assert ledger.rows_written.tolist() == [0, len(_bundled(table))]
    detail = json.loads(ledger.detail.iloc[1])  # where the file landed, and its bytes' hash
    assert detail["uri"].endswith(f"{table}/{DAY.isoformat()}.csv")
    assert detail["sha256"] == hashlib.sha256(file.read_bytes()).hexdigest()


def test_a_malformed_body_fails_without_retry(api_server, hoopflow_home):
    fingerprint, season = _prepare("schedule")
    before = len(api_server.requests_to("leaguegamelog"))
    api_server.fail(200, '{"resource":"leaguegamelog","parameters":{}}', times=None)

    state = land_one("schedule", DAY, fingerprint, season, return_state=True)

    assert state.is_failed()
    assert len(api_server.requests_to("leaguegamelog")) - before == 1  # no retry
    assert not (hoopflow_home / "landing" / "schedule" / f"{DAY.isoformat()}.csv").exists()
    ledger = _ledger("schedule")
    assert ledger.status.tolist() == ["failed"]
    assert "MalformedPayloadError" in ledger.error.iloc[0]
    assert "leaguegamelog (PlayerOrTeam=T) for 2024-03-28" in ledger.error.iloc[0]
