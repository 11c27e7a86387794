"""`hoopflow setup` against a real temporary Prefect API: pools, queues, variables, blocks and
limits from settings; a second run changes what changed and duplicates nothing."""

from __future__ import annotations

import json

from prefect.blocks.core import Block
from prefect.client.orchestration import get_client
from prefect.variables import Variable

from blocks.settings import get_settings, reset_settings
from hoopflow.setup import QUEUES, setup
from tests.conftest import make_service_account_info


def test_setup_creates_everything_from_settings_and_is_idempotent(prefect_api, hoopflow_home, tmp_path, monkeypatch):
    key = tmp_path / "sa.json"
    key.write_text(json.dumps(make_service_account_info("hoop-prod", "flows@hoop-prod.iam.gserviceaccount.com")))
    for name, value in {
        "HOOPFLOW_GCP__SERVICE_ACCOUNT_FILE": str(key), "HOOPFLOW_GCP__PROJECT": "hoop-prod",
        "HOOPFLOW_LANDING__KIND": "gcs", "HOOPFLOW_LANDING__BUCKET": "hoop-landing",
        "HOOPFLOW_RESULTS__BUCKET": "hoop-results",
        "HOOPFLOW_DEPLOY__REGION": "europe-west1", "HOOPFLOW_DEPLOY__MEMORY": "8Gi",
        "HOOPFLOW_DEPLOY__SERVICE_ACCOUNT": "flows@hoop-prod.iam.gserviceaccount.com",
    }.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("HOOPFLOW_RESULTS__KIND", "gcs")
    reset_settings()
    settings = get_settings()

    setup(settings)
    second = setup(settings)
    assert not any("created" in line for line in second)  # (the first may find another test's pools)

    credentials = Block.load("gcp-credentials/hoopflow-gcp")
    assert credentials.project == "hoop-prod"
    landing = Block.load("gcs-bucket/hoopflow-landing")
    results = Block.load("gcs-bucket/hoopflow-results")
    assert (landing.bucket, results.bucket, results.bucket_folder) == ("hoop-landing", "hoop-results", "prefect-results/")
    assert results.gcp_credentials.project == "hoop-prod"
    assert Block.load("hoopflow-duckdb-warehouse/hoopflow-warehouse").path == str(settings.duckdb_path)

    assert Variable.get("hoopflow_region") == "europe-west1" and Variable.get("hoopflow_memory") == "8Gi"
    assert Variable.get("hoopflow_gcp_project") == "hoop-prod"
    assert Variable.get("hoopflow_local_home") == str(hoopflow_home.resolve())

    with get_client(sync_client=True) as client:
        pool = client.read_work_pool("hoopflow-cloud-run")
        props = pool.base_job_template["variables"]["properties"]
        assert (props["region"]["default"], props["memory"]["default"]) == ("europe-west1", "8Gi")
        assert props["service_account_name"]["default"] == "flows@hoop-prod.iam.gserviceaccount.com"
        assert props["credentials"]["default"] == {"$ref": {"block_document_id": str(credentials._block_document_id)}}
        for pool_name, chunks in (("hoopflow-local", 1), ("hoopflow-cloud-run", 8)):
            queues = {q.name: q for q in client.read_work_queues(work_pool_name=pool_name)}
            assert {q.name for q in QUEUES} <= set(queues)
            assert [queues[q.name].priority for q in QUEUES] == [1, 2, 3]
            assert queues["chunks"].concurrency_limit == chunks
        names = [limit.name for limit in client.read_global_concurrency_limits(limit=200)]
    assert len(names) == len(set(names))  # the second run duplicated nothing
    assert sum(n.startswith("hoopflow-date-writes-") for n in names) == 16
    reset_settings()
