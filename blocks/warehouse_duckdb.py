"""The embedded warehouse: one DuckDB file, datasets as schemas."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any, ClassVar

import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import duckdb
import pandas as pd
import pyarrow as pa
from pydantic import Field

from blocks.warehouse import Log, Query, Rows, TableSpec, Warehouse, log_rows, translate_params, used_params

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
    deadline, pause, said = time.monotonic() + LOCK_WAIT_SECONDS, 0.2, False
    while True:
        try:
            return duckdb.connect(path)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                raise RuntimeError(
                    f"{path}: cannot open the DuckDB warehouse (another process has held it "
                    f"for over {LOCK_WAIT_SECONDS:.0f} s?): {exc}"
                ) from exc
            if not said:  # a waiting command says what it waits for
                logging.getLogger("hoopflow.warehouse").warning(
                    "waiting for %s: another process holds it (%s); trying again for up to %.0f s "
                    "(HOOPFLOW_DUCKDB_LOCK_WAIT_SECONDS)", path, str(exc).splitlines()[0][:200], LOCK_WAIT_SECONDS,
                )  # fmt: skip
                said = True
            time.sleep(pause)
            pause = min(pause * 2, 5.0)


def _shared(path: str) -> tuple[duckdb.DuckDBPyConnection, threading.RLock]:
    with _GUARD:
        key = (path, os.getpid())  # a forked child opens its own
        if key in _CONNECTIONS and not os.path.exists(path):  # deleted under us: not an unlinked copy
            _CONNECTIONS.pop(key).close()
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
    # CREATE ... IF NOT EXISTS of every table costs ~5 ms: asked each time, a deleted or
    # restored file or a dropped table is recreated within a long-lived process too.
    remember_tables: ClassVar[bool] = False

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

    def _has_table(self, spec: TableSpec) -> bool:
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
        params = used_params(sql, params)
        with self._connect() as con:
            return con.execute(translate_params(self.render(sql), "$"), params).df()

    def replace_partitions(
        self,
        game_date: date,
        frames: Mapping[TableSpec, Rows],
        log: Log | None = None,
    ) -> dict[str, int]:
        # The rows are cast to the table's types by DuckDB as they are inserted (a frame is
        # scanned in place, a Query runs as INSERT ... SELECT): no copy of the rows in pandas.
        # The checks of a partition are the table's own (NOT NULL on required columns) and a
        # count of the partition after the insert: any failure rolls the whole call back.
        written: dict[str, int] = {}
        with self._connect() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                for spec, rows in frames.items():
                    if spec.partition_by is None:
                        raise ValueError(f"{spec.id} is not partitioned by date")
                    ref = self.table_ref(spec.dataset, spec.name)
                    con.execute(f'DELETE FROM {ref} WHERE "{spec.partition_by}" = ?', [game_date])
                    n = self._insert(con, spec, rows)
                    found = con.execute(f'SELECT count(*) FROM {ref} WHERE "{spec.partition_by}" = ?',
                                        [game_date]).fetchone()[0]  # fmt: skip
                    if found != n:
                        raise ValueError(f"{spec.id}: {n - found} rows have {spec.partition_by} other than {game_date}")
                    written[spec.id] = n
                if log is not None:
                    self._insert(con, log[0], log_rows(log, written))
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        return written

    def _insert(self, con: duckdb.DuckDBPyConnection, spec: TableSpec, rows: Rows) -> int:
        """Insert the rows into the table, each column cast to its type; returns the count."""
        ref, cols = self.table_ref(spec.dataset, spec.name), ", ".join(f'"{c}"' for c in spec.column_names)
        select = f"INSERT INTO {ref} ({cols}) SELECT " + ", ".join(
            f'CAST("{c}" AS {_DUCKDB_TYPES[t]})' for c, t in spec.columns)  # fmt: skip
        if isinstance(rows, Query):
            sql = f"{select} FROM ({translate_params(self.render(rows.sql), '$')})"
            return _inserted(spec, con, sql, used_params(rows.sql, rows.params))
        missing = [c for c in spec.column_names if c not in rows.columns]
        if missing:
            raise ValueError(f"{spec.id}: frame lacks columns {missing}")
        if not len(rows):
            return 0
        if len(rows) == 1:  # a ledger entry: bound as values (registering costs ~3 ms)
            cast = ", ".join(f"CAST(? AS {_DUCKDB_TYPES[t]})" for _, t in spec.columns)
            values = [_python(rows[c].iloc[0]) for c in spec.column_names]
            return _inserted(spec, con, f"INSERT INTO {ref} ({cols}) VALUES ({cast})", values)
        # Registered as Arrow: DuckDB scans a pandas frame's columns one by one to guess
        # their types (15 ms for the feature store's 75 columns; 3 ms through Arrow).
        con.register("incoming", pa.Table.from_pandas(rows, preserve_index=False))
        try:
            return _inserted(spec, con, f"{select} FROM incoming")
        finally:
            con.unregister("incoming")

    def append(self, spec: TableSpec, df: pd.DataFrame) -> int:
        with self._connect() as con:
            return self._insert(con, spec, df)


def _inserted(spec: TableSpec, con: duckdb.DuckDBPyConnection, sql: str, params: Any = None) -> int:
    """Run one INSERT and return its count; the table's refusals as errors naming it."""
    try:
        found = con.execute(sql, params or {}).fetchone()
    except duckdb.ConstraintException as exc:
        column = str(exc).rsplit(".", 1)[-1].strip()
        raise ValueError(f"{spec.id}: NULL in required column {column!r} ({exc})") from exc
    except duckdb.BinderException as exc:
        raise ValueError(f"{spec.id}: the rows do not fit the table: {exc}") from exc
    return int(found[0]) if found else 0


def _python(value: Any) -> Any:
    """A frame's cell as a value DuckDB binds: NULL for any missing marker, plain Python."""
    if value is None or (not isinstance(value, (list, tuple)) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value.item() if hasattr(value, "item") else value
