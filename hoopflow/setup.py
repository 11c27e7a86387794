"""`hoopflow setup`: everything that must exist before flows run, created from settings.
Idempotent: run it again after changing a setting and it updates what changed.

- the warehouse tables;
- the work pools `prefect.yaml` deploys to: a `process` pool for this machine and a
  `cloud-run-v2` pool (prefect-gcp's job template with our region, CPU, memory, timeout and
  service account), each with the work queues `daily` > `backfill` > `chunks` (priorities)
  and their concurrency limits;
- the Prefect variables prefect.yaml's Cloud Run deployments read (image, region, ...);
- the blocks: GcpCredentials (from a service-account key file, when one is set), GcsBucket
  for the landing zone and for results (when they are on GCS), and the Warehouse;
- the global concurrency limits: the NBA.com rate limit and the date write locks."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate, WorkPoolUpdate
from prefect.exceptions import ObjectNotFound
from prefect.variables import Variable

from blocks.settings import REPO_ROOT, Settings


@dataclass(frozen=True)
class Queue:
    name: str
    priority: int  # 1 is served first
    description: str


# The daily run goes ahead of a backfill; a backfill parent ahead of its own chunks (it only
# waits, but it must start for its chunks to exist).
QUEUES = (
    Queue("daily", 1, "The nightly run: served before any backfill."),
    Queue("backfill", 2, "Backfill parents and validations."),
    Queue("chunks", 3, "Backfill fan-out children (one phase over a chunk of dates)."),
)
# Flow runs of a queue that may run at once. On this machine everything writes one DuckDB
# file (one writing process at a time), so each queue runs one; Cloud Run writes BigQuery.
LOCAL_QUEUE_LIMITS = {"daily": 1, "backfill": 1, "chunks": 1}


def cloud_run_queue_limits(settings: Settings) -> dict[str, int]:
    return {"daily": 1, "backfill": 2, "chunks": settings.deploy.cloud_run_chunk_concurrency}


def deployment_variables(settings: Settings) -> dict[str, Any]:
    """The Prefect variables prefect.yaml's deployments read when deployed: where the local
    ones run (this checkout, this HOOPFLOW_HOME), and the Cloud Run job's values."""
    d = settings.deploy
    return {
        "hoopflow_local_repo": str(REPO_ROOT),
        "hoopflow_local_home": str(settings.home.resolve()),
        "hoopflow_local_results": str(settings.results_dir.resolve()),
        "hoopflow_image": d.image,
        "hoopflow_region": d.region,
        "hoopflow_cpu": d.cpu,
        "hoopflow_memory": d.memory,
        "hoopflow_timeout_seconds": d.timeout_seconds,
        "hoopflow_service_account": d.service_account,
        "hoopflow_gcp_project": settings.gcp.project or settings.bigquery.project,
    }


def cloud_run_job_template(settings: Settings, credentials_block_id: Any = None) -> dict[str, Any]:
    """prefect-gcp's cloud-run-v2 base job template with our defaults for its variables."""
    from prefect_gcp.workers.cloud_run_v2 import CloudRunWorkerV2

    template = CloudRunWorkerV2.get_default_base_job_template()
    props = template["variables"]["properties"]
    d = settings.deploy
    defaults = {"region": d.region, "cpu": d.cpu, "memory": d.memory, "timeout": d.timeout_seconds,
                "image": f"{d.image}:latest", "service_account_name": d.service_account}  # fmt: skip
    for name, value in defaults.items():
        if value is not None:
            props[name]["default"] = value
    if credentials_block_id is not None:
        props["credentials"]["default"] = {"$ref": {"block_document_id": str(credentials_block_id)}}
    return template


def process_job_template() -> dict[str, Any]:
    from prefect.workers.process import ProcessWorker

    return ProcessWorker.get_default_base_job_template()


def setup(settings: Settings) -> list[str]:
    """Create or update what hoopflow needs; return one line per thing done."""
    from tasks.phases import ALL_TABLES
    from engine.locks import ensure_write_locks

    done = []
    settings.warehouse_block().ensure_tables(ALL_TABLES)
    done.append(f"{len(ALL_TABLES)} warehouse tables ensured ({settings.warehouse})")

    blocks, credentials_id = _blocks(settings)
    done += blocks

    d = settings.deploy
    pools = [
        (d.local_pool, "process", process_job_template(), LOCAL_QUEUE_LIMITS),
        (d.cloud_run_pool, "cloud-run-v2", cloud_run_job_template(settings, credentials_id),
         cloud_run_queue_limits(settings)),
    ]  # fmt: skip
    with get_client(sync_client=True) as client:
        for name, kind, template, limits in pools:
            done.append(_work_pool(client, name, kind, template))
            for queue in QUEUES:
                done.append(_work_queue(client, name, queue, limits[queue.name]))

        api = settings.nba_api
        # One slot that refills at the allowed request rate: a rate limit, not a pool size.
        client.upsert_global_concurrency_limit_by_name(
            api.rate_limit_name, limit=1, slot_decay_per_second=api.requests_per_second
        )
    done.append(f"rate limit {api.rate_limit_name!r}: {api.requests_per_second} NBA.com requests per second")
    locks = ensure_write_locks()
    done.append(f"date write locks {locks[0]} … {locks[-1]} ({len(locks)} limits of 1 slot)")

    variables = deployment_variables(settings)
    for name, value in variables.items():
        Variable.set(name, value, overwrite=True)
    done.append("variables " + ", ".join(f"{k}={json.dumps(v)}" for k, v in variables.items()))
    return done


def _work_pool(client, name: str, kind: str, template: dict[str, Any]) -> str:
    try:
        pool = client.read_work_pool(name)
    except ObjectNotFound:
        client.create_work_pool(WorkPoolCreate(name=name, type=kind, base_job_template=template,
                                               description=f"hoopflow flow runs ({kind})"))  # fmt: skip
        return f"work pool {name!r} ({kind}) created"
    if pool.type != kind:
        raise RuntimeError(f"work pool {name!r} exists with type {pool.type!r}, not {kind!r}: rename one")
    client.update_work_pool(name, WorkPoolUpdate(base_job_template=template))
    return f"work pool {name!r} ({kind}) updated"


def _work_queue(client, pool: str, queue: Queue, limit: int) -> str:
    try:
        existing = client.read_work_queue_by_name(queue.name, work_pool_name=pool)
    except ObjectNotFound:
        client.create_work_queue(name=queue.name, work_pool_name=pool, priority=queue.priority,
                                 concurrency_limit=limit, description=queue.description)  # fmt: skip
        return f"  queue {pool}/{queue.name}: priority {queue.priority}, {limit} at a time (created)"
    client.update_work_queue(existing.id, priority=queue.priority, concurrency_limit=limit,
                             description=queue.description)  # fmt: skip
    return f"  queue {pool}/{queue.name}: priority {queue.priority}, {limit} at a time"


LANDING_BUCKET_BLOCK = "hoopflow-landing"
WAREHOUSE_BLOCK = "hoopflow-warehouse"


def _blocks(settings: Settings) -> tuple[list[str], UUID | None]:
    """Save the blocks settings describe; return what was done and the credentials' id."""
    from google.auth.exceptions import DefaultCredentialsError
    from prefect_gcp import GcpCredentials
    from prefect_gcp.cloud_storage import GcsBucket

    done: list[str] = []
    gcp, credentials, credentials_id = settings.gcp, None, None
    if gcp.service_account_file:
        info = json.loads(gcp.service_account_file.read_text())
        credentials = GcpCredentials(service_account_info=info, project=gcp.project or info.get("project_id"))
        credentials_id = credentials.save(gcp.credentials_block, overwrite=True)
        done.append(f"block gcp-credentials/{gcp.credentials_block} ({info.get('client_email', 'service account')})")
    else:
        done.append("no GcpCredentials block (HOOPFLOW_GCP__SERVICE_ACCOUNT_FILE unset): GCP clients use "
                    "application default credentials (on Cloud Run: the job's service account)")  # fmt: skip

    buckets = []
    if settings.landing.kind == "gcs" and settings.landing.bucket:
        buckets.append((settings.landing.gcs_bucket_block or LANDING_BUCKET_BLOCK, settings.landing.bucket,
                        settings.landing.bucket_folder, "landing zone"))  # fmt: skip
    if settings.results.kind == "gcs" and settings.results.bucket:
        r = settings.results
        buckets.append((r.gcs_bucket_block, r.bucket, r.bucket_folder, "results and cache records"))
    for name, bucket, folder, purpose in buckets:
        try:
            kwargs = {"gcp_credentials": credentials} if credentials else {}
            GcsBucket(bucket=bucket, bucket_folder=folder, **kwargs).save(name, overwrite=True)
        except DefaultCredentialsError as exc:
            raise RuntimeError(
                f"GcsBucket block {name!r} ({purpose}) needs credentials: set "
                f"HOOPFLOW_GCP__SERVICE_ACCOUNT_FILE or run `gcloud auth application-default login` ({exc})"
            ) from exc
        done.append(f"block gcs-bucket/{name}: gs://{bucket}/{folder} ({purpose})")

    warehouse = settings.warehouse_block()
    warehouse.save(WAREHOUSE_BLOCK, overwrite=True)
    done.append(f"block {warehouse.get_block_type_slug()}/{WAREHOUSE_BLOCK} ({settings.warehouse})")
    return done, credentials_id
