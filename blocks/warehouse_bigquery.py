"""The production warehouse: BigQuery, datasets named `{dataset_prefix}{dataset}`.

Tables are DAY-partitioned on their `game_date` column and clustered by player/team ids. A
date is replaced with one load job `WRITE_TRUNCATE` into the partition `table$YYYYMMDD`, which
BigQuery applies atomically; every query job carries the `maximum_bytes_billed` guard.
"""

from __future__ import annotations

import numbers
import os
import warnings
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from functools import lru_cache
from typing import Any, ClassVar

import pandas as pd
import pandas_gbq
from google.api_core.client_options import ClientOptions
from google.api_core.exceptions import NotFound
from google.cloud import bigquery
from pydantic import Field

from blocks.warehouse import Log, Query, Rows, TableSpec, Warehouse, log_rows, used_params

# The portable names are BigQuery's; tables store the canonical (legacy) names that the
# API returns in table metadata, so a created schema compares equal to a fetched one.
_BQ_TYPES = {
    "STRING": "STRING",
    "INT64": "INTEGER",
    "FLOAT64": "FLOAT",
    "DATE": "DATE",
    "TIMESTAMP": "TIMESTAMP",
    "BOOL": "BOOLEAN",
}

# Pending deprecations that say "use pandas-gbq": reads do; to_gbq cannot replace a partition,
# and pandas-gbq itself reads through the client, so they would warn on every call.
for _message in (
    "Loading DataFrames via google-cloud-bigquery",
    "Retrieving DataFrames via google-cloud-bigquery",
    "In a future major release, the default delimiter",  # pandas-gbq's user agent
):
    warnings.filterwarnings("ignore", _message, PendingDeprecationWarning)

_Param = bigquery.ScalarQueryParameter | bigquery.ArrayQueryParameter


class BigQueryWarehouse(Warehouse):
    """BigQuery through google-cloud-bigquery (reads through pandas-gbq); credentials from a
    prefect-gcp GcpCredentials block or the application default."""

    _block_type_name = "hoopflow BigQuery warehouse"
    dialect: ClassVar[str] = "bigquery"

    project: str | None = Field(
        default=None, description="GCP project; None: the credentials' project."
    )
    location: str = Field(default="US", description="Location of the datasets and jobs.")
    dataset_prefix: str = Field(
        default="", description="Prepended to every dataset name (`dev_` → `dev_nba_raw`)."
    )
    maximum_bytes_billed: int = Field(
        default=10 * 1024**3, description="Every query job fails instead of billing more."
    )
    credentials_block: str | None = Field(
        default=None,
        description="Name of a saved GcpCredentials block; None: application default credentials.",
    )
    api_endpoint: str | None = Field(
        default=None, description="A local BigQuery API (tests: the bqemulator package)."
    )

    def client(self) -> bigquery.Client:
        return _client(self.project, self.location, self.credentials_block, self.api_endpoint)

    def table_ref(self, dataset: str, table: str) -> str:
        return f"`{self._table_id(dataset, table)}`"

    def _has_table(self, spec: TableSpec) -> bool:
        try:
            self.client().get_table(self._table_id(spec.dataset, spec.name))
        except NotFound:
            return False
        return True

    def _create_tables(self, specs: list[TableSpec]) -> None:
        client = self.client()
        for dataset in sorted({spec.dataset for spec in specs}):
            ds = bigquery.Dataset(f"{self._project()}.{self.dataset_prefix}{dataset}")
            ds.location = self.location
            client.create_dataset(ds, exists_ok=True)
        for spec in specs:
            table = bigquery.Table(self._table_id(spec.dataset, spec.name), schema=_schema(spec))
            if spec.partition_by:
                table.time_partitioning = bigquery.TimePartitioning(
                    type_=bigquery.TimePartitioningType.DAY, field=spec.partition_by
                )
            if spec.cluster_by:
                table.clustering_fields = list(spec.cluster_by)
            table.description = spec.description or None
            client.create_table(table, exists_ok=True)

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
        df = pandas_gbq.read_gbq(
            self.render(sql),
            bigquery_client=self.client(),
            configuration=self._job_config(used_params(sql, params)).to_api_repr(),
            progress_bar_type=None,
        )
        # Dates as datetime64 (not db-dtypes' dbdate), like DuckDB's results, so task code
        # behaves the same on both warehouses.
        for col in df.columns[df.dtypes == "dbdate"]:
            df[col] = df[col].astype("datetime64[us]")
        return df

    def replace_partitions(
        self,
        game_date: date,
        frames: Mapping[TableSpec, Rows],
        log: Log | None = None,
    ) -> dict[str, int]:
        # Every frame is checked before the first table is touched. A Query's rows come back
        # and load like a frame (the same checks; a query job writing the partition itself,
        # WRITE_TRUNCATE on `table$YYYYMMDD`, would save the round trip).
        fetched = {spec: self.query(r.sql, r.params) if isinstance(r, Query) else r for spec, r in frames.items()}
        conformed = {spec: self._check_partition(spec, game_date, df) for spec, df in fetched.items()}
        written: dict[str, int] = {}
        for spec, df in conformed.items():
            if len(df):
                partition = f"{self._table_id(spec.dataset, spec.name)}${game_date:%Y%m%d}"
                self._load(spec, df, partition, bigquery.WriteDisposition.WRITE_TRUNCATE)
            else:
                # A zero-row load is not documented to truncate a partition; a DELETE is.
                self.client().query(
                    f"DELETE FROM {self.table_ref(spec.dataset, spec.name)} "
                    f"WHERE `{spec.partition_by}` = @game_date",
                    job_config=self._job_config({"game_date": game_date}),
                ).result()
            written[spec.id] = len(df)
        if log is not None:  # no transaction spans load jobs: the entry follows its partition
            self.append(log[0], log_rows(log, written))
        return written

    def append(self, spec: TableSpec, df: pd.DataFrame) -> int:
        df = spec.conform(df)
        if len(df):
            destination = self._table_id(spec.dataset, spec.name)
            self._load(spec, df, destination, bigquery.WriteDisposition.WRITE_APPEND)
        return len(df)

    def _project(self) -> str:
        return self.project or self.client().project

    def _table_id(self, dataset: str, table: str) -> str:
        return f"{self._project()}.{self.dataset_prefix}{dataset}.{table}"

    def _job_config(self, params: Mapping[str, Any] | None) -> bigquery.QueryJobConfig:
        return bigquery.QueryJobConfig(
            query_parameters=[_param(name, value) for name, value in (params or {}).items()],
            maximum_bytes_billed=self.maximum_bytes_billed,
        )

    def _load(self, spec: TableSpec, df: pd.DataFrame, destination: str, disposition: str) -> None:
        config = bigquery.LoadJobConfig(
            schema=_schema(spec),
            write_disposition=disposition,
            create_disposition=bigquery.CreateDisposition.CREATE_NEVER,
        )
        # pandas-gbq's to_gbq cannot replace one partition, so the client loads the frame.
        self.client().load_table_from_dataframe(df, destination, job_config=config).result()


@lru_cache(maxsize=8)
def _client(
    project: str | None, location: str, credentials_block: str | None, api_endpoint: str | None
) -> bigquery.Client:
    """One client per configuration and process (loading a credentials block is an API call)."""
    credentials = None  # application default credentials
    if credentials_block:
        from prefect_gcp import GcpCredentials

        gcp = GcpCredentials.load(credentials_block, _sync=True)  # also from async callers
        credentials, project = gcp.get_credentials_from_service_account(), project or gcp.project
    elif api_endpoint:
        from google.auth.credentials import AnonymousCredentials

        credentials = AnonymousCredentials()
    if api_endpoint:
        # pandas-gbq builds a client of its own for large results, which finds a local API
        # only through this variable.
        os.environ.setdefault("BIGQUERY_EMULATOR_HOST", api_endpoint)
    return bigquery.Client(
        project=project,
        location=location,
        credentials=credentials,
        client_options=ClientOptions(api_endpoint=api_endpoint) if api_endpoint else None,
    )


def _schema(spec: TableSpec) -> list[bigquery.SchemaField]:
    return [
        bigquery.SchemaField(
            name, _BQ_TYPES[kind], mode="REQUIRED" if name in spec.required else "NULLABLE"
        )
        for name, kind in spec.columns
    ]


def _param_type(value: Any) -> str:
    # Order matters: bool is an int, datetime is a date.
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return "BOOL"
    if isinstance(value, numbers.Integral):
        return "INT64"
    if isinstance(value, numbers.Real):
        return "FLOAT64"
    if isinstance(value, str):
        return "STRING"
    if isinstance(value, datetime):
        return "TIMESTAMP"
    if isinstance(value, date):
        return "DATE"
    raise TypeError(f"no BigQuery parameter type for {value!r} ({type(value).__name__})")


def _scalar(kind: str, value: Any) -> Any:
    """numpy scalars → Python values (the client serialises only the built-in types)."""
    if kind == "BOOL":
        return bool(value)
    if kind == "INT64":
        return int(value)
    if kind == "FLOAT64":
        return float(value)
    return value


def _param(name: str, value: Any) -> _Param:
    if isinstance(value, Sequence) and not isinstance(value, str):
        if not value:
            raise ValueError(f"@{name}: an empty list has no element type; pass a typed value")
        kind = _param_type(value[0])
        return bigquery.ArrayQueryParameter(name, kind, [_scalar(kind, v) for v in value])
    kind = _param_type(value)
    return bigquery.ScalarQueryParameter(name, kind, _scalar(kind, value))
