"""The pinned Prefect stack answers its own client: guards the fastapi pin (see pyproject)."""

from __future__ import annotations

from prefect.client.orchestration import get_client


def test_filters_with_default_limits_are_accepted(prefect_api):
    # prefect's client sends "limit": null; fastapi >= 0.151 answers 422 to it.
    with get_client(sync_client=True) as client:
        assert isinstance(client.read_work_pools(), list)
        assert isinstance(client.read_deployments(), list)
        assert isinstance(client.read_flow_runs(), list)
