"""The embedded warehouse: one DuckDB file, datasets as schemas."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any, ClassVar

import os
import threading
import time
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


# One connection per file and process, one cursor per operation. Opening the file for every
# operation cost ~28 % of a backfill's CPU samples (DuckDB checkpoints when the last connection
# closes). DuckDB has one writer per file, and concurrent use from threads raced inside duckdb
# (seen: "pandas_scan does not exist"); tasks run in threads, so operations take a lock.
_CONNECTIONS: dict[tuple[str, int], duckdb.DuckDBPyConnection] = {}
_LOCKS: dict[str, threading.RLock] = {}
_GUARD = threading.Lock()


# Another process (a deployment's flow run on the same machine) may hold the file: wait for
# it to finish, up to this long, rather than fail at once.
LOCK_WAIT_SECONDS = float(os.environ.get("HOOPFLOW_DUCKDB_LOCK_WAIT_SECONDS", "900"))


def _open(path: str) -> duckdb.DuckDBPyConnection:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    deadline, pause = time.monotonic() + LOCK_WAIT_SECONDS, 0.2
    while True:
        try:
            return duckdb.connect(path)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                raise RuntimeError(
                    f"{path}: cannot open the DuckDB warehouse (another process has held it "
                    f"for over {LOCK_WAIT_SECONDS:.0f} s?): {exc}"
                ) from exc
            time.sleep(pause)
            pause = min(pause * 2, 5.0)


def _shared(path: str) -> tuple[duckdb.DuckDBPyConnection, threading.RLock]:
    with _GUARD:
        key = (path, os.getpid())  # a forked child opens its own
        if key not in _CONNECTIONS:
            _CONNECTIONS[key] = _open(path)
        return _CONNECTIONS[key], _LOCKS.setdefault(path, threading.RLock())


def _release(path: str) -> None:
    with _GUARD:
        con = _CONNECTIONS.pop((path, os.getpid()), None)
        if con is not None:
            with _LOCKS.setdefault(path, threading.RLock()):
                con.close()


class DuckDBWarehouse(Warehouse):
    """A DuckDB file, held open by the process that uses it (DuckDB allows one writing
    process per file: another process can open it once this one has exited)."""

    _block_type_name = "hoopflow DuckDB warehouse"
    dialect: ClassVar[str] = "duckdb"

    path: str = Field(description="Path of the DuckDB database file.")

    @contextmanager
    def _connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        con, lock = _shared(str(Path(self.path).resolve()))
        with lock, con.cursor() as cursor:
            cursor.execute("SET TimeZone = 'UTC'")
            yield cursor

    def table_ref(self, dataset: str, table: str) -> str:
        return f'"{dataset}"."{table}"'

    def release(self) -> None:
        _release(str(Path(self.path).resolve()))

    def has_table(self, spec: TableSpec) -> bool:
        if not Path(self.path).exists():
            return False
        with self._connect() as con:
            found = con.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
                [spec.dataset, spec.name],
            ).fetchone()
        return bool(found and found[0])

    def _create_tables(self, specs: list[TableSpec]) -> None:
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
        self,
        game_date: date,
        frames: Mapping[TableSpec, pd.DataFrame],
        log: tuple[TableSpec, pd.DataFrame] | None = None,
    ) -> dict[str, int]:
        conformed = {spec: self._check_partition(spec, game_date, df) for spec, df in frames.items()}
        logged = (log[0], log[0].conform(log[1])) if log else None
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
                if logged is not None:
                    con.register("incoming", logged[1])
                    con.execute(f"INSERT INTO {self.table_ref(logged[0].dataset, logged[0].name)} BY NAME "
                                "SELECT * FROM incoming")  # fmt: skip
                    con.unregister("incoming")
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
