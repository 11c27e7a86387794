"""The Warehouse interface: one contract, a DuckDB and a BigQuery implementation.

SQL handed to a warehouse is written once for both: tables are named `dataset.table`
(`nba_raw.schedule`) and parameters `@name`. Each implementation qualifies the names and
translates the parameters (`Warehouse.render`). A date partition is only ever replaced whole
(`replace_partitions`), so writing a date twice never duplicates rows.
"""

from __future__ import annotations

import re
from abc import abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, ClassVar

import pandas as pd
from prefect.blocks.core import Block

# The portable column types (BigQuery's names); each implementation maps them.
COLUMN_TYPES = ("STRING", "INT64", "FLOAT64", "DATE", "TIMESTAMP", "BOOL")

_TABLE_REF = re.compile(r"(?<![\w.`])(nba_[a-z]+)\.([a-z_][a-z0-9_]*)\b")
_PARAM = re.compile(r"(?<![@\w])@([A-Za-z_]\w*)")


# (warehouse, table) pairs this process has already ensured.
_ENSURED: set[tuple[tuple[str, str], "TableSpec"]] = set()


@dataclass(frozen=True)
class TableSpec:
    """A warehouse table: ordered typed columns, its partition column and key."""

    dataset: str
    name: str
    columns: tuple[tuple[str, str], ...]
    partition_by: str | None = "game_date"
    cluster_by: tuple[str, ...] = ()
    key: tuple[str, ...] = ()
    description: str = ""
    required: tuple[str, ...] = field(default=())  # NOT NULL columns

    def __post_init__(self) -> None:
        names = [c for c, _ in self.columns]
        for _, kind in self.columns:
            if kind not in COLUMN_TYPES:
                raise ValueError(f"{self.id}: unknown column type {kind!r}")
        for col in (*self.cluster_by, *self.key, *self.required):
            if col not in names:
                raise ValueError(f"{self.id}: {col!r} is not a column")
        if self.partition_by and self.partition_by not in names:
            raise ValueError(f"{self.id}: partition column {self.partition_by!r} is not a column")

    @property
    def id(self) -> str:
        return f"{self.dataset}.{self.name}"

    def code_identity(self) -> str:
        """What a formula that reads or writes this table depends on (its code version):
        the name and typed columns, not the description."""
        return f"{self.id}{self.columns}{self.key}{self.partition_by}"

    @property
    def column_names(self) -> list[str]:
        return [c for c, _ in self.columns]

    def conform(self, df: pd.DataFrame) -> pd.DataFrame:
        """The frame with exactly this table's columns, in order, with portable dtypes."""
        missing = [c for c in self.column_names if c not in df.columns]
        if missing:
            raise ValueError(f"{self.id}: frame lacks columns {missing}")
        # One frame built from all its columns at once (column by column costs a copy each).
        out = pd.DataFrame({col: _as_type(df[col], kind) for col, kind in self.columns}, index=df.index)
        for col in self.required:
            if out[col].isna().any():
                raise ValueError(f"{self.id}: NULL in required column {col!r}")
        return out.reset_index(drop=True)


def _as_type(s: pd.Series, kind: str) -> pd.Series:
    if kind == "STRING":
        return s.astype("string")
    if kind == "INT64":
        return s.astype("Int64")
    if kind == "FLOAT64":
        return s.astype("Float64").astype("float64")
    if kind == "BOOL":
        return s.astype("boolean")
    if kind == "DATE":
        return pd.to_datetime(s).dt.date.astype("object")
    if kind == "TIMESTAMP":
        return pd.to_datetime(s, utc=True)
    raise ValueError(kind)


@dataclass(frozen=True)
class Query:
    """A partition's rows as a query (portable SQL, `@name` parameters): the warehouse runs
    it where the data is (DuckDB: INSERT ... SELECT), so the rows never travel through
    Python; a processor whose formula is SQL returns one."""

    sql: str
    params: Mapping[str, Any] = field(default_factory=dict)


# What replaces a partition: its rows as a frame, or the query that selects them.
Rows = pd.DataFrame | Query
# Rows logged with the partitions they describe (the run ledger's entry): a frame, or one
# made from the rows written per table id (a Query's count is known once it ran).
Log = tuple[TableSpec, pd.DataFrame | Callable[[dict[str, int]], pd.DataFrame]]


def log_rows(log: Log, written: dict[str, int]) -> pd.DataFrame:
    rows = log[1]
    return rows if isinstance(rows, pd.DataFrame) else rows(written)


class Warehouse(Block):
    """Query → DataFrame; replace a date partition atomically; ensure tables."""

    _block_schema_capabilities: ClassVar[list[str]] = ["warehouse"]
    dialect: ClassVar[str] = ""
    # Whether ensure_tables remembers, per process, the tables it made (each check costs an
    # API call on BigQuery); a table found gone by has_table is forgotten again.
    remember_tables: ClassVar[bool] = True

    @abstractmethod
    def table_ref(self, dataset: str, table: str) -> str:
        """The fully qualified, quoted name of a table in this warehouse."""

    def ensure_tables(self, specs: Iterable[TableSpec]) -> None:
        """Create the datasets and tables that do not exist yet (idempotent). Each phase
        flow ensures its tables for every date; a process asks the warehouse once per table
        (on BigQuery each check is an API call)."""
        if not self.remember_tables:
            self._create_tables(list(specs))
            return
        where = self._where()
        new = [spec for spec in specs if (where, spec) not in _ENSURED]
        if new:
            self._create_tables(new)
            _ENSURED.update((where, spec) for spec in new)

    def has_table(self, spec: TableSpec) -> bool:
        """Whether the table exists (asking creates nothing, not even the database file). A
        table found gone (dropped, a recreated warehouse) is created again by ensure_tables."""
        found = self._has_table(spec)
        if not found:
            _ENSURED.discard((self._where(), spec))
        return found

    def _where(self) -> tuple[str, str]:
        return type(self).__name__, repr(self.model_dump())

    @abstractmethod
    def _has_table(self, spec: TableSpec) -> bool:
        """Whether the table exists, asked of the warehouse."""

    @abstractmethod
    def _create_tables(self, specs: list[TableSpec]) -> None:
        """Create the given datasets and tables where they do not exist yet."""

    @abstractmethod
    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
        """Run a read query (portable SQL, `@name` parameters) and return its rows."""

    @abstractmethod
    def replace_partitions(
        self,
        game_date: date,
        frames: Mapping[TableSpec, Rows],
        log: Log | None = None,
    ) -> dict[str, int]:
        """Replace the `game_date` partition of each table with its rows (a frame or a
        Query), atomically per table (DuckDB: all tables in one transaction). No rows empty
        the partition; a row of another date, a NULL in a required column or a missing
        column raises ValueError naming the table, and nothing is written.
        `log` rows (the run ledger's entry for the partition) are appended with it (DuckDB: in
        the same transaction; BigQuery: right after the partition's load job).
        Returns rows written per table id."""

    @abstractmethod
    def append(self, spec: TableSpec, df: pd.DataFrame) -> int:
        """Append rows (ledgers and logs, which are never replaced)."""

    def release(self) -> None:
        """Let go of what this process holds on the warehouse (DuckDB: the file, so that
        another process can write it). The next operation takes it again."""

    def replace_partition(
        self, spec: TableSpec, game_date: date, df: Rows,
        log: Log | None = None,
    ) -> int:
        return self.replace_partitions(game_date, {spec: df}, log)[spec.id]

    def render(self, sql: str) -> str:
        """Qualify `dataset.table` references for this warehouse."""
        return _TABLE_REF.sub(lambda m: self.table_ref(m.group(1), m.group(2)), sql)

    def _check_partition(self, spec: TableSpec, game_date: date, df: pd.DataFrame) -> pd.DataFrame:
        if spec.partition_by is None:
            raise ValueError(f"{spec.id} is not partitioned by date")
        out = spec.conform(df)
        wrong = out[out[spec.partition_by] != game_date]
        if len(wrong):
            raise ValueError(
                f"{spec.id}: {len(wrong)} rows have {spec.partition_by} other than {game_date}"
            )
        return out


def translate_params(sql: str, style: str) -> str:
    """`@name` → the driver's placeholder style (`$name` for DuckDB)."""
    if style == "@":
        return sql
    return _PARAM.sub(lambda m: f"{style}{m.group(1)}", sql)


def used_params(sql: str, params: Mapping[str, Any] | None) -> dict[str, Any]:
    """The parameters the SQL names (a processor passes the date and season to every SQL
    file; DuckDB refuses a parameter the statement does not use)."""
    names = set(_PARAM.findall(sql))
    return {k: v for k, v in (params or {}).items() if k in names}
