"""The run ledger (`nba_ops.run_ledger`): one row per processor × date attempt, written by the
processor itself, so "success" means the rows were written, not that nothing crashed."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any

import pandas as pd
from prefect.context import TaskRunContext

from blocks.logs import run_logger
from blocks.warehouse import TableSpec, Warehouse
from blocks.settings import get_settings

RUN_LEDGER = TableSpec(
    dataset="nba_ops",
    name="run_ledger",
    columns=(
        ("run_id", "STRING"),
        ("processor", "STRING"),
        ("game_date", "DATE"),
        ("status", "STRING"),  # succeeded | failed | retrying (a transient error, a retry to come)
        ("rows_written", "INT64"),
        ("seconds", "FLOAT64"),
        ("input_fingerprint", "STRING"),
        ("code_version", "STRING"),
        ("flow_run_id", "STRING"),
        ("task_run_id", "STRING"),
        ("attempt", "INT64"),
        ("error", "STRING"),
        ("detail", "STRING"),  # JSON: rows per table, landing URIs, ...
        ("started_at", "TIMESTAMP"),
        ("finished_at", "TIMESTAMP"),
    ),
    cluster_by=("processor",),
    required=("run_id", "processor", "game_date", "status", "started_at", "finished_at"),
    description="One row per processor × date attempt.",
)


@dataclass(frozen=True)
class Written:
    """What a processor wrote for a date (its task result)."""

    table: str
    rows: int


def partition_version(processor: str, input_fingerprint: str, code_version: str) -> str:
    """A partition's content, identified by what produced it. Downstream processors use it
    as their input fingerprint, so a change propagates and a no-op rewrite does not."""
    return hashlib.sha256(f"{processor}|{input_fingerprint}|{code_version}".encode()).hexdigest()[:24]


def latest_runs(warehouse: Warehouse, start: date, end: date,
                tables: Mapping[str, TableSpec] | None = None) -> pd.DataFrame:  # fmt: skip
    """The last successful run of every processor on every date in [start, end]. With
    `tables` (processor → the table it writes), only runs whose partition the warehouse still
    holds, with the rows the run wrote: the warehouse is the truth, so a dropped table, a
    restored older copy or a recreated dataset makes its dates run again (issue 13)."""
    runs = warehouse.query(
        "SELECT processor, game_date, input_fingerprint, code_version, rows_written, finished_at "
        "FROM nba_ops.run_ledger WHERE status = 'succeeded' AND game_date BETWEEN @start AND @end",
        {"start": start, "end": end},
    )
    runs["game_date"] = pd.to_datetime(runs["game_date"]).dt.date
    runs = runs.sort_values("finished_at").groupby(["processor", "game_date"]).tail(1)
    if tables is None or runs.empty:
        return runs
    held = partition_rows(warehouse, [tables[p] for p in sorted(set(runs.processor) & set(tables))], start, end)
    verifiable = runs.processor.isin(list(tables))
    found = [held.get((p, d), 0) for p, d in zip(runs.processor, runs.game_date, strict=True)]
    kept = ~verifiable | (runs.rows_written.fillna(-1).astype("int64") == pd.Series(found, index=runs.index))
    lost = runs[~kept]
    if not lost.empty:
        run_logger().warning(
            "%d partition(s) the run ledger records are not in the warehouse as written (a dropped "
            "table, a restored or recreated warehouse): they count as missing and run again; e.g. %s",
            len(lost), ", ".join(f"{p} {d}" for p, d in zip(lost.processor[:5], lost.game_date[:5], strict=True)),
        )  # fmt: skip
    return runs[kept]


def partition_rows(warehouse: Warehouse, specs: Iterable[TableSpec], start: date, end: date) -> dict[tuple[str, date], int]:
    """Rows per (table name, game_date) in [start, end] of the tables that exist: one query."""
    present = [s for s in specs if warehouse.has_table(s)]
    if not present:
        return {}
    sql = " UNION ALL ".join(
        f"SELECT '{s.name}' AS processor, game_date, count(*) AS n FROM {warehouse.table_ref(s.dataset, s.name)} "
        "WHERE game_date BETWEEN @start AND @end GROUP BY game_date"
        for s in present
    )  # fmt: skip
    counts = warehouse.query(sql, {"start": start, "end": end})
    days = pd.to_datetime(counts["game_date"]).dt.date
    return {(p, d): int(n) for p, d, n in zip(counts.processor, days, counts.n, strict=True)}


def last_attempts(warehouse: Warehouse, start: date, end: date) -> pd.DataFrame:
    """The last attempt (any status) of every processor on every date in [start, end]."""
    runs = warehouse.query(
        "SELECT processor, game_date, status, error, finished_at FROM nba_ops.run_ledger "
        "WHERE game_date BETWEEN @start AND @end", {"start": start, "end": end},
    )  # fmt: skip
    runs["game_date"] = pd.to_datetime(runs["game_date"]).dt.date
    return runs.sort_values("finished_at").groupby(["processor", "game_date"]).tail(1)


def ledger_row(
    processor: str,
    game_date: date,
    status: str,
    input_fingerprint: str,
    code_version: str,
    started: datetime,
    seconds: float,
    rows: int = 0,
    error: str | None = None,
    detail: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """One run-ledger row for an attempt of a processor on a date, as a one-row frame."""
    ctx = TaskRunContext.get()
    return pd.DataFrame([{
        "run_id": str(uuid.uuid4()),
        "processor": processor,
        "game_date": game_date,
        "status": status,
        "rows_written": rows if status == "succeeded" else 0,
        "seconds": seconds,
        "input_fingerprint": input_fingerprint,
        "code_version": code_version,
        "flow_run_id": str(ctx.task_run.flow_run_id) if ctx else None,
        "task_run_id": str(ctx.task_run.id) if ctx else None,
        "attempt": ctx.task_run.run_count if ctx else 1,
        "error": error[:4000] if error else None,
        "detail": json.dumps(detail or {}, default=str),
        "started_at": started,
        "finished_at": datetime.now(timezone.utc),
    }])  # fmt: skip


def write_partition(
    spec: TableSpec,
    game_date: date,
    input_fingerprint: str,
    code_version: str,
    compute: Callable[[Warehouse, dict[str, Any]], pd.DataFrame],
) -> Written:
    """A processor's body: compute the date's rows (`compute(warehouse, detail)`, which may
    fill `detail`) and replace the table's partition together with its ledger row; a failure
    is recorded as a failed attempt and re-raised."""
    warehouse = get_settings().warehouse_block()
    started, t0, detail = datetime.now(timezone.utc), time.perf_counter(), {}
    try:
        rows = compute(warehouse, detail)
        entry = ledger_row(spec.name, game_date, "succeeded", input_fingerprint, code_version, started,
                           time.perf_counter() - t0, len(rows), detail=detail)  # fmt: skip
        written = warehouse.replace_partition(spec, game_date, rows, log=(RUN_LEDGER, entry))
    except Exception as exc:
        warehouse.append(RUN_LEDGER, ledger_row(
            spec.name, game_date, "failed", input_fingerprint, code_version, started,
            time.perf_counter() - t0, error=f"{type(exc).__name__}: {exc}", detail=detail,
        ))  # fmt: skip
        raise
    return Written(spec.name, written)
