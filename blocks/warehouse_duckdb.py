"""The embedded warehouse: one DuckDB file, datasets as schemas."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from pathlib import Path
from typing import Any, ClassVar

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import duckdb
import pandas as pd
from pydantic import Field

from blocks.warehouse import TableSpec, Warehouse, translate_params

_DUCKDB_TYPES = {
    "STRING": "VARCHAR",
    "INT64": "BIGINT",
    "FLOAT64": "DOUBLE",
    "DATE": "DATE",
    "TIMESTAMP": "TIMESTAMPTZ",
    "BOOL": "BOOLEAN",
}


# DuckDB has one writer per file, and opening one file from several threads at once races
# inside duckdb (seen: "pandas_scan does not exist"); tasks run in threads, so one lock per file.
_LOCKS: dict[str, threading.RLock] = {}
_LOCKS_GUARD = threading.Lock()


def _lock_for(path: str) -> threading.RLock:
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(str(Path(path).resolve()), threading.RLock())


class DuckDBWarehouse(Warehouse):
    """A DuckDB file. Connections are opened per operation so other processes
    (`hoopflow status` in a second terminal) can read between writes."""

    _block_type_name = "hoopflow DuckDB warehouse"
    dialect: ClassVar[str] = "duckdb"

    path: str = Field(description="Path of the DuckDB database file.")

    @contextmanager
    def _connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        with _lock_for(self.path), duckdb.connect(self.path) as con:
            con.execute("SET TimeZone = 'UTC'")
            yield con

    def table_ref(self, dataset: str, table: str) -> str:
        return f'"{dataset}"."{table}"'

    def ensure_tables(self, specs: Iterable[TableSpec]) -> None:
        with self._connect() as con:
            for spec in specs:
                con.execute(f'CREATE SCHEMA IF NOT EXISTS "{spec.dataset}"')
                cols = ", ".join(
                    f'"{c}" {_DUCKDB_TYPES[t]}{" NOT NULL" if c in spec.required else ""}'
                    for c, t in spec.columns
                )
                con.execute(
                    f"CREATE TABLE IF NOT EXISTS {self.table_ref(spec.dataset, spec.name)} ({cols})"
                )

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
        sql = translate_params(self.render(sql), "$")
        with self._connect() as con:
            return con.execute(sql, dict(params or {})).df()

    def replace_partitions(
        self, game_date: date, frames: Mapping[TableSpec, pd.DataFrame]
    ) -> dict[str, int]:
        conformed = {spec: self._check_partition(spec, game_date, df) for spec, df in frames.items()}
        written: dict[str, int] = {}
        with self._connect() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                for spec, df in conformed.items():
                    ref = self.table_ref(spec.dataset, spec.name)
                    con.execute(f'DELETE FROM {ref} WHERE "{spec.partition_by}" = ?', [game_date])
                    if len(df):
                        con.register("incoming", df)
                        con.execute(f"INSERT INTO {ref} BY NAME SELECT * FROM incoming")
                        con.unregister("incoming")
                    written[spec.id] = len(df)
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        return written

    def append(self, spec: TableSpec, df: pd.DataFrame) -> int:
        df = spec.conform(df)
        if not len(df):
            return 0
        with self._connect() as con:
            con.register("incoming", df)
            con.execute(f"INSERT INTO {self.table_ref(spec.dataset, spec.name)} BY NAME SELECT * FROM incoming")
        return len(df)
