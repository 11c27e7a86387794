"""The `extract` task on the NBA stats API source, through a real temporary Prefect API:
HOOPFLOW_SOURCE=nba_api pointed at a local server answering with recorded NBA.com responses.
A 429 is retried by the task's retry policy (2 s + jitter) and the landing file holds the
bundled rows; a malformed body fails at once, without a retry."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
from prefect import flow

from blocks.sources import SOURCE_COLUMNS
from blocks.settings import get_settings, reset_settings
from tasks.raw import LandedFile, ensure_raw_tables, extract, source_fingerprints
from tests.conftest import SEASON_DIR
from tests.nba_api_server import serve_recorded_nba_stats

pytestmark = pytest.mark.e2e

DAY = date(2024, 3, 28)  # a recorded date: 2 games, one of them in overtime


@flow(name="extract-one")
def extract_one(table: str, game_date: date) -> LandedFile:
    ensure_raw_tables()
    return extract(table, game_date, source_fingerprints(game_date)[table])


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
        "SELECT status, attempt, error FROM nba_ops.run_ledger WHERE processor = @p "
        "ORDER BY started_at",
        {"p": f"extract_{table}"},
    )


@pytest.mark.parametrize("table", ["player_box", "shots"])
def test_a_429_is_retried_and_the_date_lands(api_server, hoopflow_home, table):
    assert get_settings().source_block().name == "nba_api"
    endpoint = "shotchartdetail" if table == "shots" else "leaguegamelog"
    api_server.fail(429, times=1, path=endpoint)

    landed = extract_one(table, DAY)

    assert len(api_server.requests_to(endpoint)) == 2  # the 429, then the retry
    file = hoopflow_home / "landing" / table / f"{DAY.isoformat()}.csv"
    assert landed.path == f"{table}/{DAY.isoformat()}.csv" and file.is_file()
    got = pd.read_csv(file, dtype=str, keep_default_na=False)
    assert list(got.columns) == list(SOURCE_COLUMNS[table])
    assert _rows(got) == _rows(_bundled(table))
    assert landed.rows == len(_bundled(table))
    ledger = _ledger(table)
    assert ledger.status.tolist() == ["failed", "succeeded"]
    assert ledger.attempt.tolist() == [1, 2]
    assert "TransientSourceError" in ledger.error.iloc[0] and "HTTP 429" in ledger.error.iloc[0]


def test_a_malformed_body_fails_without_retry(api_server, hoopflow_home):
    api_server.fail(200, '{"resource":"leaguegamelog","parameters":{}}', times=None)

    state = extract_one("schedule", DAY, return_state=True)

    assert state.is_failed()
    assert len(api_server.requests_to("leaguegamelog")) == 1  # no retry
    assert not (hoopflow_home / "landing" / "schedule" / f"{DAY.isoformat()}.csv").exists()
    ledger = _ledger("schedule")
    assert ledger.status.tolist() == ["failed"]
    assert "MalformedPayloadError" in ledger.error.iloc[0]
    assert "leaguegamelog (PlayerOrTeam=T) for 2024-03-28" in ledger.error.iloc[0]
