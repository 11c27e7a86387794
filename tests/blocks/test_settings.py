"""The one settings object decides the environment, from HOOPFLOW_* variables."""

from __future__ import annotations

from pathlib import Path

from blocks.landing import GcsLandingZone, LocalLandingZone
from blocks.sources import BundledSeasonSource
from blocks.warehouse_duckdb import DuckDBWarehouse
from blocks.settings import BUNDLED_SOURCE_DIR, Settings


def test_embedded_default(monkeypatch):
    for key in ("HOOPFLOW_HOME", "HOOPFLOW_WAREHOUSE", "HOOPFLOW_SOURCE", "HOOPFLOW_SOURCE_DIR"):
        monkeypatch.delenv(key, raising=False)
    settings = Settings()
    assert settings.home == Path(".hoopflow")
    assert settings.source_dir == BUNDLED_SOURCE_DIR and (BUNDLED_SOURCE_DIR / "2023-24").is_dir()
    warehouse = settings.warehouse_block()
    assert isinstance(warehouse, DuckDBWarehouse)
    assert warehouse.path == str(Path(".hoopflow") / "warehouse.duckdb")
    assert isinstance(settings.landing_block(), LocalLandingZone)
    assert isinstance(settings.source_block(), BundledSeasonSource)
    assert settings.prefect_env()["PREFECT_LOCAL_STORAGE_PATH"] == str(
        Path(".hoopflow/results").resolve()
    )


def test_production_from_nested_variables(monkeypatch, tmp_path):
    monkeypatch.setenv("HOOPFLOW_HOME", str(tmp_path))
    monkeypatch.setenv("HOOPFLOW_WAREHOUSE", "bigquery")
    monkeypatch.setenv("HOOPFLOW_BIGQUERY__PROJECT", "hoop-prod")
    monkeypatch.setenv("HOOPFLOW_BIGQUERY__DATASET_PREFIX", "dev_")
    monkeypatch.setenv("HOOPFLOW_BIGQUERY__MAXIMUM_BYTES_BILLED", "1000")
    monkeypatch.setenv("HOOPFLOW_LANDING__KIND", "gcs")
    monkeypatch.setenv("HOOPFLOW_LANDING__BUCKET", "hoop-landing")
    settings = Settings()
    warehouse = settings.warehouse_block()
    assert type(warehouse).__name__ == "BigQueryWarehouse"
    assert warehouse.project == "hoop-prod" and warehouse.maximum_bytes_billed == 1000
    assert warehouse.table_ref("nba_raw", "shots") == "`hoop-prod.dev_nba_raw.shots`"
    landing = settings.landing_block()
    assert isinstance(landing, GcsLandingZone)
    assert (landing.bucket, landing.bucket_folder) == ("hoop-landing", "landing")
    assert settings.results_dir == tmp_path / "results"
