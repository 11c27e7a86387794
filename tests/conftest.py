"""Shared fixtures: a real temporary Prefect API for the session, a fresh hoopflow home
(warehouse, landing zone, result/cache storage) for every test that asks for one."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

from blocks.settings import BUNDLED_SOURCE_DIR, reset_settings  # noqa: E402
from tests.bigquery import bigquery_emulator  # noqa: E402, F401  (a session fixture)

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


BUILT_START, BUILT_END = date(2023, 10, 24), date(2023, 11, 20)


def _build_home(tmp_path_factory: pytest.TempPathFactory, name: str, start: date, end: date) -> Path:
    """A home whose warehouse holds every phase (raw, reconcile, analytics, precompute) for
    [start, end], built by the task functions without Prefect (tasks.phases.run_directly)."""
    from blocks.settings import get_settings
    from tasks.phases import run_directly

    home = tmp_path_factory.mktemp(name) / "home"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOOPFLOW_HOME", str(home))
        reset_settings()
        settings = get_settings()
        run_directly(["raw", "reconcile", "analytics", "precompute"], settings.source_block().game_dates(start, end))
        settings.warehouse_block().query("CHECKPOINT")  # everything in the file: tests copy it
    reset_settings()
    return home


@pytest.fixture(scope="session")
def built_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The season's first four weeks (precompute from 2023-11-08, after the bootstrap days),
    built once per session. Tests copy its warehouse file instead of changing it."""
    yield _build_home(tmp_path_factory, "built", BUILT_START, BUILT_END)


@pytest.fixture
def built_copy(built_home: Path, hoopflow_home: Path):
    """The built four weeks as this test's warehouse (a copy it may change)."""
    import shutil

    from blocks.settings import get_settings

    hoopflow_home.mkdir(parents=True, exist_ok=True)
    shutil.copy(built_home / "warehouse.duckdb", hoopflow_home / "warehouse.duckdb")
    return get_settings().warehouse_block()


ML_START, ML_END = date(2023, 10, 24), date(2024, 2, 15)


@pytest.fixture(scope="session")
def ml_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Like built_home, through 2024-02-15 (~110 s on 2 cores): the points model needs it.
    Trained on shorter ranges it does not honestly beat the players' own averages (2023-24:
    through 2024-01-31, by 0.013 points of MAE, under the gate's 0.03 margin); through
    2024-02-15 it does, by 0.071 on its last fifth of dates (2024-01-28 → 02-15, ~3,000 rows)."""
    yield _build_home(tmp_path_factory, "ml", ML_START, ML_END)


def copy_season(tmp_path: Path, dates: list[str]) -> Path:
    """A source folder with one season restricted to a few dates (same layout); returns the
    season folder, whose files a test may then edit."""
    folder = tmp_path / "source" / "2023-24"
    folder.mkdir(parents=True)
    for name in ("schedule", "player_box", "shots"):
        df = pd.read_csv(SEASON_DIR / f"{name}.csv.gz", dtype=str, keep_default_na=False)
        df[df.GAME_DATE.isin(dates)].to_csv(folder / f"{name}.csv.gz", index=False)
    return folder


def use_source(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    monkeypatch.setenv("HOOPFLOW_SOURCE_DIR", str(folder.parent))
    reset_settings()


def make_service_account_info(project: str, email: str) -> dict[str, str]:
    """Service-account info with a locally generated RSA key (GcpCredentials needs real-shaped
    credentials to build; nothing here is ever sent to Google)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return {
        "type": "service_account",
        "project_id": project,
        "private_key_id": "local-test-key",
        "private_key": pem,
        "client_email": email,
        "client_id": "1",
        "token_uri": "http://127.0.0.1:9/token",  # should a token ever be asked for: not Google
    }
