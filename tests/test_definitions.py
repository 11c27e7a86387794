"""Every deployment in prefect.yaml: its entrypoint imports, its parameters validate against
the flow's signature, it exists on both targets, and the Cloud Run ones render into the job
a Cloud Run worker would submit (what `prefect deploy` and the worker would otherwise find
late, in the cloud)."""

from __future__ import annotations

import inspect
from datetime import date
from uuid import uuid4

import pytest
import yaml
from prefect.flows import load_flow_from_entrypoint

from blocks.settings import REPO_ROOT, ResultsSettings, Settings

PREFECT_YAML = yaml.safe_load((REPO_ROOT / "prefect.yaml").read_text())
DEPLOYMENTS = PREFECT_YAML["deployments"]
IDS = [f"{d['entrypoint'].rsplit(':', 1)[1]}/{d['name']}" for d in DEPLOYMENTS]
CLOUD_RUN = [d for d in DEPLOYMENTS if d["name"] == "cloud-run"]
TARGETS = {"local": "hoopflow-local", "cloud-run": "hoopflow-cloud-run"}


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=IDS)
def test_entrypoint_imports_and_parameters_validate(deployment):
    flow = load_flow_from_entrypoint(str(REPO_ROOT / deployment["entrypoint"]))
    params = dict(deployment.get("parameters", {}))
    required = [n for n, p in inspect.signature(flow.fn).parameters.items() if p.default is inspect.Parameter.empty]
    for name in required:  # what a user passes at run time
        if name not in params:
            params[name] = {"start": date(2023, 10, 24), "end": date(2023, 10, 25)}[name]
    flow.validate_parameters(params)  # raises on an unknown or ill-typed parameter


def test_every_flow_is_deployed_to_both_targets_named_for_them():
    by_flow: dict[str, dict[str, dict]] = {}
    for d in DEPLOYMENTS:
        by_flow.setdefault(d["entrypoint"], {})[d["name"]] = d
    assert set(by_flow) == {
        "flows/daily.py:daily", "flows/backfill.py:backfill", "flows/validate.py:validate", "flows/ml.py:ml",
        "flows/raw.py:raw", "flows/reconcile.py:reconcile", "flows/analytics.py:analytics",
        "flows/precompute.py:precompute",
    }  # fmt: skip
    for targets in by_flow.values():
        assert set(targets) == set(TARGETS)
        for name, d in targets.items():
            assert d["work_pool"]["name"] == TARGETS[name]
            assert bool(d.get("build")) == (name == "cloud-run")  # only Cloud Run needs an image
    assert Settings().deploy.local_pool == TARGETS["local"]
    assert Settings().deploy.cloud_run_pool == TARGETS["cloud-run"]


def test_queues_put_the_daily_run_first_and_chunks_last():
    from hoopflow.setup import QUEUES

    priority = {q.name: q.priority for q in QUEUES}
    queue_of = {d["entrypoint"].rsplit(":", 1)[1]: d["work_pool"]["work_queue_name"] for d in DEPLOYMENTS}
    assert priority[queue_of["daily"]] < priority[queue_of["backfill"]] < priority[queue_of["raw"]]
    assert {d["work_pool"]["work_queue_name"] for d in DEPLOYMENTS} <= set(priority)
    daily = [d for d in DEPLOYMENTS if d["entrypoint"].endswith(":daily")]
    for d in daily:
        assert d["schedules"] == [{"cron": "0 10 * * *", "timezone": "America/New_York"}]
        assert d["concurrency_limit"]["limit"] == 1


def test_cloud_run_env_asks_prefect_for_what_settings_would():
    """Results on GCS: the deployments' Prefect variables equal Settings.prefect_env()."""
    env = CLOUD_RUN[0]["work_pool"]["job_variables"]["env"]
    assert env["HOOPFLOW_RESULTS__KIND"] == "gcs"
    expected = Settings(results=ResultsSettings(kind="gcs")).prefect_env()
    assert {k: env[k] for k in expected} == expected
    assert all(d["work_pool"]["job_variables"]["env"] == env for d in CLOUD_RUN)


@pytest.mark.parametrize("deployment", CLOUD_RUN, ids=[i for i in IDS if i.endswith("/cloud-run")])
def test_cloud_run_deployments_render_a_job_without_a_gcp_project(deployment, prefect_api, hoopflow_home):
    """What `prefect deploy` resolves (the build step's image, the Prefect variables `hoopflow
    setup` wrote) merged into the pool's template as the Cloud Run worker does, with the
    settings' defaults: no GCP project anywhere."""
    from prefect.client.schemas.objects import FlowRun
    from prefect.utilities.asyncutils import run_coro_as_sync
    from prefect.utilities.templating import apply_values, resolve_variables
    from prefect_gcp.credentials import GcpCredentials
    from prefect_gcp.workers.cloud_run_v2 import CloudRunWorkerJobV2Configuration

    from blocks.settings import get_settings
    from hoopflow.setup import cloud_run_job_template, setup
    from tests.conftest import make_service_account_info

    settings = get_settings()
    assert settings.gcp.project is None and settings.bigquery.project is None
    setup(settings)
    image = f"{settings.deploy.image}:2026-11-22t10-00-00"
    variables = apply_values(deployment["work_pool"]["job_variables"], {"build-image": {"image": image}})
    variables = run_coro_as_sync(resolve_variables(variables))

    # The pool's defaults are merged in by from_template_and_values, as the worker does.
    values = dict(variables)
    # The worker's own credentials (on Cloud Run: its service account); a local key here.
    values["credentials"] = GcpCredentials(service_account_info=make_service_account_info("p", "w@p.iam"))
    config = run_coro_as_sync(
        CloudRunWorkerJobV2Configuration.from_template_and_values(cloud_run_job_template(settings), values)
    )
    config.prepare_for_flow_run(FlowRun(id=uuid4(), flow_id=uuid4(), name="backfill-2023-10-24-2024-04-14"))

    job = config.job_body["template"]["template"]
    container = job["containers"][0]
    assert container["image"] == image
    assert container["resources"]["limits"] == {"cpu": settings.deploy.cpu, "memory": settings.deploy.memory}
    assert config.region == settings.deploy.region
    assert job["timeout"] == f"{settings.deploy.timeout_seconds}s"
    assert job.get("serviceAccount") is None  # none set: Cloud Run uses the project's default
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["HOOPFLOW_WAREHOUSE"] == "bigquery" and env["HOOPFLOW_LANDING__KIND"] == "gcs"
    assert env["PREFECT_RESULTS_DEFAULT_STORAGE_BLOCK"] == "gcs-bucket/hoopflow-results"
    assert "HOOPFLOW_BIGQUERY__PROJECT" not in env  # no project: BigQuery takes the credentials' own
    assert container["command"] == ["prefect", "flow-run", "execute"]


def test_names_say_what_a_deployment_is_for():
    assert not {d["name"] for d in DEPLOYMENTS} & {"prod", "default", "main"}


def test_the_phase_flows_are_the_declared_phases_in_order():
    """One flow per declared phase, deployed under the phase's name (the fan-out children)."""
    from flows.backfill import PHASE_FLOWS
    from tasks.phases import PHASE_NAMES

    assert tuple(PHASE_FLOWS) == PHASE_NAMES
    assert [f.name for f in PHASE_FLOWS.values()] == list(PHASE_NAMES)
    deployed = {d["entrypoint"].rsplit(":", 1)[1] for d in DEPLOYMENTS}
    assert set(PHASE_NAMES) <= deployed
