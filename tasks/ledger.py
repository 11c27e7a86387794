"""The run ledger (`nba_ops.run_ledger`): one row per processor × date attempt, written by the
processor itself, so "success" means the rows were written, not that nothing crashed."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any

import pandas as pd
from prefect.context import TaskRunContext

from blocks.warehouse import TableSpec, Warehouse
from hoopflow.settings import get_settings

RUN_LEDGER = TableSpec(
    dataset="nba_ops",
    name="run_ledger",
    columns=(
        ("run_id", "STRING"),
        ("processor", "STRING"),
        ("game_date", "DATE"),
        ("status", "STRING"),  # succeeded | failed
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


def latest_runs(warehouse: Warehouse, start: date, end: date) -> pd.DataFrame:
    """The last successful run of every processor on every date in [start, end]."""
    runs = warehouse.query(
        "SELECT processor, game_date, input_fingerprint, code_version, detail, finished_at "
        "FROM nba_ops.run_ledger WHERE status = 'succeeded' AND game_date BETWEEN @start AND @end",
        {"start": start, "end": end},
    )
    runs["game_date"] = pd.to_datetime(runs["game_date"]).dt.date
    return runs.sort_values("finished_at").groupby(["processor", "game_date"]).tail(1)


def latest_versions(warehouse: Warehouse, processor: str, start: date, end: date) -> dict[date, str]:
    """The partition version of each date in [start, end] that `processor` last wrote."""
    return versions_in(latest_runs(warehouse, start, end), processor)


def versions_in(runs: pd.DataFrame, processor: str) -> dict[date, str]:
    """The partition version of each date `processor` last wrote, from `latest_runs` rows."""
    runs = runs[runs.processor == processor]
    return {
        d: partition_version(processor, fp, cv)
        for d, fp, cv in zip(runs.game_date, runs.input_fingerprint, runs.code_version, strict=True)
    }


def last_attempts(warehouse: Warehouse, start: date, end: date) -> pd.DataFrame:
    """The last attempt (any status) of every processor on every date in [start, end]."""
    runs = warehouse.query(
        "SELECT processor, game_date, status, error, finished_at FROM nba_ops.run_ledger "
        "WHERE game_date BETWEEN @start AND @end", {"start": start, "end": end},
    )  # fmt: skip
    runs["game_date"] = pd.to_datetime(runs["game_date"]).dt.date
    return runs.sort_values("finished_at").groupby(["processor", "game_date"]).tail(1)


def current_dates(runs: pd.DataFrame, expected: dict[date, dict[str, str]], code_version: str) -> set[date]:
    """Dates whose every expected processor last succeeded with exactly the expected input
    fingerprint and the current code version: running them again would change nothing."""
    last = {
        (p, d): (fp, cv)
        for p, d, fp, cv in zip(runs.processor, runs.game_date, runs.input_fingerprint, runs.code_version, strict=True)
    }
    return {
        d
        for d, fingerprints in expected.items()
        if all(last.get((p, d)) == (fp, code_version) for p, fp in fingerprints.items())
    }


@contextmanager
def ledger_entry(
    warehouse: Warehouse,
    processor: str,
    game_date: date,
    input_fingerprint: str,
    code_version: str,
) -> Iterator[dict[str, Any]]:
    """Record one attempt of a processor on a date. The body fills `entry["rows"]` and
    `entry["detail"]`; on success `entry["written"]` holds the Written record; an exception
    is recorded as a failed attempt and re-raised."""
    ctx = TaskRunContext.get()
    started = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    entry: dict[str, Any] = {"rows": 0, "detail": {}}
    status, error = "succeeded", None
    try:
        yield entry
        entry["written"] = Written(processor, entry["rows"])
    except Exception as exc:
        status, error = "failed", f"{type(exc).__name__}: {exc}"[:4000]
        raise
    finally:
        row = {
            "run_id": str(uuid.uuid4()),
            "processor": processor,
            "game_date": game_date,
            "status": status,
            "rows_written": entry["rows"] if status == "succeeded" else 0,
            "seconds": time.perf_counter() - t0,
            "input_fingerprint": input_fingerprint,
            "code_version": code_version,
            "flow_run_id": str(ctx.task_run.flow_run_id) if ctx else None,
            "task_run_id": str(ctx.task_run.id) if ctx else None,
            "attempt": ctx.task_run.run_count if ctx else 1,
            "error": error,
            "detail": json.dumps(entry["detail"], default=str),
            "started_at": started,
            "finished_at": datetime.now(timezone.utc),
        }
        warehouse.append(RUN_LEDGER, pd.DataFrame([row]))


def write_partition(
    spec: TableSpec,
    game_date: date,
    input_fingerprint: str,
    code_version: str,
    compute: Callable[[Warehouse, dict[str, Any]], pd.DataFrame],
) -> Written:
    """A processor's body: compute the date's rows (`compute(warehouse, entry)`, which may
    add `entry["detail"]`) and replace the table's partition, inside a ledger entry."""
    warehouse = get_settings().warehouse_block()
    with ledger_entry(warehouse, spec.name, game_date, input_fingerprint, code_version) as entry:
        entry["rows"] = warehouse.replace_partition(spec, game_date, compute(warehouse, entry))
    return entry["written"]
