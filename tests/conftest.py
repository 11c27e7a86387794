"""Shared fixtures: a real temporary Prefect API for the session, a fresh hoopflow home
(warehouse, landing zone, result/cache storage) for every test that asks for one."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

from hoopflow.settings import BUNDLED_SOURCE_DIR, reset_settings  # noqa: E402

SEASON_DIR = BUNDLED_SOURCE_DIR / "2023-24"


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[None]:
    """A real temporary Prefect API (SQLite) shared by the session's flow tests."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.fixture
def hoopflow_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh $HOOPFLOW_HOME; Prefect's results and cache records go under it too, because
    the test harness does not isolate result storage (caches would leak between tests)."""
    from prefect.settings import PREFECT_LOCAL_STORAGE_PATH, temporary_settings

    home = tmp_path / "home"
    monkeypatch.setenv("HOOPFLOW_HOME", str(home))
    reset_settings()
    with temporary_settings({PREFECT_LOCAL_STORAGE_PATH: home / "results"}):
        yield home
    reset_settings()


@pytest.fixture(scope="session")
def season_csv() -> dict[str, pd.DataFrame]:
    """The bundled season read straight from the CSVs with pandas: the independent truth."""
    return {
        name: pd.read_csv(SEASON_DIR / f"{name}.csv.gz", dtype={"GAME_ID": str})
        for name in ("schedule", "player_box", "shots")
    }
