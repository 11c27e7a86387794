"""The one settings object: the only place that knows which environment hoopflow runs in.

Everything environment-specific (warehouse, landing zone, source, result storage) is decided
here from `HOOPFLOW_*` variables; flows and tasks ask for `get_settings().warehouse()` and never
import a database or cloud client themselves.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:  # the block modules import prefect; keep `import blocks.settings` cheap
    from blocks.landing import LandingZone
    from blocks.sources import Source
    from blocks.warehouse import Warehouse

REPO_ROOT = Path(__file__).resolve().parents[1]
BUNDLED_SOURCE_DIR = REPO_ROOT / "data" / "nba"
BUNDLED_ESPN_DIR = REPO_ROOT / "data" / "espn"


class BigQuerySettings(BaseModel):
    """Production warehouse: BigQuery through google-cloud-bigquery and pandas-gbq."""

    project: str | None = None
    location: str = "US"
    # Prepended to every dataset name (`dev_` → `dev_nba_raw`), so several environments
    # can share one GCP project.
    dataset_prefix: str = ""
    # Every query carries this cap: a runaway query fails instead of billing.
    maximum_bytes_billed: int = 10 * 1024**3
    # Name of a saved prefect-gcp GcpCredentials block; None means application default credentials.
    credentials_block: str | None = None
    # Point the clients at a local BigQuery API (tests: the bqemulator package).
    api_endpoint: str | None = None


class LandingSettings(BaseModel):
    """Where extracted source files land before they are loaded (kept for inspection)."""

    kind: Literal["local", "gcs"] = "local"
    # local: defaults to $HOOPFLOW_HOME/landing
    path: Path | None = None
    # gcs: a bucket name (+ optional folder) or a saved prefect-gcp GcsBucket block
    bucket: str | None = None
    bucket_folder: str = "landing"
    gcs_bucket_block: str | None = None
    credentials_block: str | None = None


class NbaApiSettings(BaseModel):
    """The NBA.com stats API (production source)."""

    # None → nba_api's own https://stats.nba.com/stats ; tests point it at a local server.
    base_url: str | None = None
    timeout_seconds: float = 30.0
    # Name of a Prefect global concurrency limit with slot decay (a rate limit) shared by every
    # process that calls the API; `hoopflow setup` / deployments create it.
    rate_limit_name: str = "nba-stats-api"
    # NBA.com throttles and blocks bursts; `hoopflow setup` gives the limit this slot decay.
    requests_per_second: float = 0.5
    # Season type of the endpoints; hoopflow models the regular season.
    season_type: str = "Regular Season"


class ResultsSettings(BaseModel):
    """Where Prefect keeps task results and cache records. A Cloud Run container is gone
    after its flow run, so in production they live in a GCS bucket, or no run would ever
    find another's cache."""

    kind: Literal["local", "gcs"] = "local"
    # local: defaults to $HOOPFLOW_HOME/results
    path: Path | None = None
    # gcs: the saved prefect-gcp GcsBucket block results go to (`hoopflow setup` saves it
    # for `bucket`, under `bucket_folder`)
    gcs_bucket_block: str = "hoopflow-results"
    bucket: str | None = None
    bucket_folder: str = "prefect-results"


class GcpSettings(BaseModel):
    """Google Cloud: the credentials every GCP block shares."""

    project: str | None = None
    # `hoopflow setup` saves a prefect-gcp GcpCredentials block under this name from a
    # service-account key file; without one, blocks use application default credentials
    # (on Cloud Run: the job's service account).
    credentials_block: str = "hoopflow-gcp"
    service_account_file: Path | None = None


class DeploySettings(BaseModel):
    """The work pools flows run on (prefect.yaml reads the Cloud Run values from the Prefect
    variables `hoopflow setup` writes from these)."""

    local_pool: str = "hoopflow-local"
    cloud_run_pool: str = "hoopflow-cloud-run"
    # Artifact Registry repository of the flow image, without a tag
    # (<region>-docker.pkg.dev/<project>/<repository>/hoopflow).
    image: str = "us-central1-docker.pkg.dev/my-project/hoopflow/hoopflow"
    region: str = "us-central1"
    cpu: str = "2"
    memory: str = "4Gi"
    # A Cloud Run job is killed after this; a full-season backfill parent needs about an hour.
    timeout_seconds: int = 4 * 3600
    service_account: str | None = None
    # Fan-out children of one backfill (and of all backfills) that may run at once on Cloud Run;
    # the local pool runs one at a time (DuckDB has a single writer per file).
    cloud_run_chunk_concurrency: int = 8


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="HOOPFLOW_", env_nested_delimiter="__", extra="ignore"
    )

    home: Path = Path(".hoopflow")
    source: Literal["bundled", "nba_api"] = "bundled"
    # Any folder holding <season>/{player_box,schedule,shots}.csv.gz
    source_dir: Path = BUNDLED_SOURCE_DIR
    # Bundled source only (`make chaos --faults`): this share of source calls fails with an
    # injected TransientSourceError, seeded (HOOPFLOW_SOURCE_FAULT_RATE, _FAULT_SEED); only
    # these calls when _FAULT_CALLS lists some (e.g. fetch_csv,fetch; empty: every call).
    source_fault_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    source_fault_seed: int = 0
    source_fault_calls: str = ""
    # ESPN's team box, the second provider reconciliation checks against: any folder holding
    # <season>/team_box.csv.gz; a season without one reconciles NBA.com's own feeds only.
    espn_dir: Path = BUNDLED_ESPN_DIR
    warehouse: Literal["duckdb", "bigquery"] = "duckdb"
    bigquery: BigQuerySettings = Field(default_factory=BigQuerySettings)
    landing: LandingSettings = Field(default_factory=LandingSettings)
    nba_api: NbaApiSettings = Field(default_factory=NbaApiSettings)
    # Date write locks (engine/locks.py): on in deployments (prefect.yaml), which run against a
    # Prefect server; off for the CLI's ephemeral API, which cannot free a killed run's lock.
    write_locks: bool = False
    results: ResultsSettings = Field(default_factory=ResultsSettings)
    # Processor tasks a phase flow runs at once; None: 1 on DuckDB (one writer, and pandas
    # holds the GIL), 8 on BigQuery (tasks mostly wait on its API).
    task_workers: int | None = Field(default=None, ge=1)
    gcp: GcpSettings = Field(default_factory=GcpSettings)
    deploy: DeploySettings = Field(default_factory=DeploySettings)
    # Validation thresholds (one section per table), and overrides of any of their values:
    # HOOPFLOW_THRESHOLDS__PLAYER_GAME_SUMMARY__NULL_RATES__USAGE_RATE=0.05
    thresholds_file: Path = REPO_ROOT / "config" / "thresholds.yaml"
    thresholds: dict[str, Any] = Field(default_factory=dict)
    # Reconciliation rules (tasks/reconcile_rules.py): tolerance and severity per rule and field.
    reconcile_file: Path = REPO_ROOT / "config" / "reconcile.yaml"

    @property
    def task_pool_size(self) -> int:
        if self.task_workers is not None:
            return self.task_workers
        # DuckDB: one writer, but its queries run outside the GIL, so Prefect's own work for
        # one task overlaps another's query (53 dates, all phases: 54.4 s on 1 thread, 43.5 s
        # on 4); BigQuery's work is waiting on its API.
        return 4 if self.warehouse == "duckdb" else 8

    @property
    def duckdb_path(self) -> Path:
        return self.home / "warehouse.duckdb"

    @property
    def results_dir(self) -> Path:
        return self.results.path or self.home / "results"

    def warehouse_block(self) -> Warehouse:
        if self.warehouse == "duckdb":
            from blocks.warehouse_duckdb import DuckDBWarehouse

            return DuckDBWarehouse(path=str(self.duckdb_path))
        from blocks.warehouse_bigquery import BigQueryWarehouse

        bq = self.bigquery
        return BigQueryWarehouse(
            project=bq.project,
            location=bq.location,
            dataset_prefix=bq.dataset_prefix,
            maximum_bytes_billed=bq.maximum_bytes_billed,
            credentials_block=bq.credentials_block,
            api_endpoint=bq.api_endpoint,
        )

    def landing_block(self) -> LandingZone:
        from blocks.landing import GcsLandingZone, LocalLandingZone

        if self.landing.kind == "local":
            return LocalLandingZone(path=str(self.landing.path or self.home / "landing"))
        return GcsLandingZone(
            bucket=self.landing.bucket,
            bucket_folder=self.landing.bucket_folder,
            gcs_bucket_block=self.landing.gcs_bucket_block,
            credentials_block=self.landing.credentials_block,
        )

    def source_block(self) -> Source:
        if self.source == "bundled":
            from blocks.sources import BundledSeasonSource

            return BundledSeasonSource(
                source_dir=str(self.source_dir),
                fault_rate=self.source_fault_rate,
                fault_seed=self.source_fault_seed,
                fault_calls=self.source_fault_calls,
            )
        from blocks.nba_stats_api import NbaStatsApiSource

        api = self.nba_api
        return NbaStatsApiSource(
            base_url=api.base_url,
            timeout_seconds=api.timeout_seconds,
            rate_limit_name=api.rate_limit_name,
            season_type=api.season_type,
        )

    def provider_source(self, provider: str) -> Source:
        """The source of a provider: NBA.com's (`source_block`), or ESPN's team box."""
        if provider == "nba":
            return self.source_block()
        if provider == "espn":
            from blocks.sources import EspnTeamBoxSource

            return EspnTeamBoxSource(espn_dir=str(self.espn_dir))
        raise ValueError(f"unknown provider {provider!r}; expected nba or espn")

    def prefect_env(self) -> dict[str, str]:
        """Prefect settings that follow from ours (result and cache storage). Prefect reads
        them when it is imported: the CLI sets them first, a deployment's job variables
        carry them (prefect.yaml)."""
        env = {"PREFECT_RESULTS_PERSIST_BY_DEFAULT": "true"}
        if self.results.kind == "gcs":
            env["PREFECT_RESULTS_DEFAULT_STORAGE_BLOCK"] = f"gcs-bucket/{self.results.gcs_bucket_block}"
        else:
            env["PREFECT_LOCAL_STORAGE_PATH"] = str(self.results_dir.resolve())
        return env


@lru_cache(maxsize=1)
def _cached() -> Settings:
    return Settings()


def get_settings() -> Settings:
    """The process-wide settings (read once from the environment; `reset_settings` re-reads)."""
    return _cached()


def reset_settings() -> None:
    _cached.cache_clear()
