"""The run ledger (`nba_ops.run_ledger`): one row per processor × date attempt, written by the
processor itself, so "success" means the rows were written, not that nothing crashed."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timezone
from typing import Any

import pandas as pd
from prefect.context import TaskRunContext

from blocks.warehouse import TableSpec, Warehouse

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


@contextmanager
def ledger_entry(
    warehouse: Warehouse,
    processor: str,
    game_date: date,
    input_fingerprint: str,
    code_version: str,
) -> Iterator[dict[str, Any]]:
    """Record one attempt of a processor on a date. The body fills `entry["rows"]` and
    `entry["detail"]`; an exception is recorded as a failed attempt and re-raised."""
    ctx = TaskRunContext.get()
    started = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    entry: dict[str, Any] = {"rows": 0, "detail": {}}
    status, error = "succeeded", None
    try:
        yield entry
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
