"""Every deployment in prefect.yaml points at a flow that imports, and its parameters
validate against that flow's signature (what `prefect deploy` would otherwise find late)."""

from __future__ import annotations

from datetime import date

import pytest
import yaml
from prefect.flows import load_flow_from_entrypoint

from hoopflow.settings import REPO_ROOT

DEPLOYMENTS = yaml.safe_load((REPO_ROOT / "prefect.yaml").read_text())["deployments"]


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=[d["name"] for d in DEPLOYMENTS])
def test_entrypoint_imports_and_parameters_validate(deployment):
    flow = load_flow_from_entrypoint(str(REPO_ROOT / deployment["entrypoint"]))
    params = {"start": date(2023, 10, 24), "end": date(2023, 10, 25), **deployment.get("parameters", {})}
    flow.validate_parameters(params)  # raises on an unknown or ill-typed parameter


def test_names_say_what_a_deployment_is_for():
    assert not {d["name"] for d in DEPLOYMENTS} & {"prod", "default", "main"}
