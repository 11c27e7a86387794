"""Start the bqemulator BigQuery emulator offline (run with .venv-bqemu's python, not .venv's).

    .venv-bqemu/bin/python tests/bqemulator_server.py --rest-port 9050 --grpc-port 9060

Every argument goes to `bqemulator start`. Two patches to bqemulator 1.4.0 first:

- It runs `INSTALL spatial` at start-up and refuses to start when the DuckDB extension
  repository is unreachable (spatial is only needed for GEOGRAPHY, which hoopflow does not
  use): the loader becomes a no-op. The best-effort `avro` download is switched off too, so
  start-up does not wait on the network.
- Its load jobs do not understand partition decorators (`table$20240102` is rejected as an
  invalid table id), which is how BigQuery replaces one partition of a table: the decorator
  is stripped and WRITE_TRUNCATE then deletes only that day of the table's partition column,
  as BigQuery does for a column-partitioned table.
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
from datetime import datetime
from typing import Any

from bqemulator.cli import main
from bqemulator.jobs import executor
from bqemulator.storage.engine import DuckDBEngine

_DECORATED = re.compile(r"^(?P<table>[^$]+)\$(?P<day>\d{8})$")


def _skip_spatial(self: DuckDBEngine) -> None:
    """No GEOGRAPHY support, no network at start-up."""


@dataclasses.dataclass(frozen=True)
class _PartitionLoad(executor._LoadJobConfig):
    """A load into one day partition (`table$YYYYMMDD`)."""

    day: str = ""


_parse_load = executor._parse_load_job_config
_apply_disposition = executor._apply_load_write_disposition


def _parse_partition_load(project_id: str, config: dict[str, Any]) -> executor._LoadJobConfig:
    load = config.get("load", {})
    match = _DECORATED.match(load.get("destinationTable", {}).get("tableId", ""))
    if not match:
        return _parse_load(project_id, config)
    destination = {**load["destinationTable"], "tableId": match["table"]}
    job = _parse_load(project_id, {**config, "load": {**load, "destinationTable": destination}})
    day = datetime.strptime(match["day"], "%Y%m%d").date().isoformat()
    fields = {f.name: getattr(job, f.name) for f in dataclasses.fields(job)}
    return _PartitionLoad(**fields, day=day)


def _apply_partition_disposition(job: executor._LoadJobConfig, ctx: Any) -> None:
    if not isinstance(job, _PartitionLoad) or job.write_disposition != "WRITE_TRUNCATE":
        return _apply_disposition(job, ctx)
    table = ctx.catalog.get_table(job.project_id, job.dataset_id, job.table_id)
    field = table.time_partitioning.field if table and table.time_partitioning else None
    if not field:
        raise executor.InvalidQueryError(f"{job.table_id} is not partitioned by a DATE column")
    ctx.engine.execute(f'DELETE FROM {job.target_ref} WHERE "{field}" = ?::DATE', [job.day])


if __name__ == "__main__":
    DuckDBEngine._load_spatial = _skip_spatial  # type: ignore[method-assign]
    executor._parse_load_job_config = _parse_partition_load
    executor._apply_load_write_disposition = _apply_partition_disposition
    os.environ.setdefault("BQEMU_ENABLE_FORMAT_EXTENSIONS", "false")
    sys.exit(main(["start", *sys.argv[1:]]))
