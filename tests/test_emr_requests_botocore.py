"""Every EMR request `emr-driver render` prints is valid for EMR's own API model.

botocore (installed with moto / boto3) ships the EMR service model that the AWS CLI and SDKs
are generated from; its ParamValidator checks names, types, required members, enums and
lengths. The rendered `cluster_request` is a RunJobFlow request as is (the same PascalCase
member names); the step configs become one AddJobFlowSteps request.
"""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path

import pytest

botocore_session = pytest.importorskip("botocore.session")
from botocore.validate import ParamValidator  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DRIVER = REPO / "target" / "release" / "emr-driver"

SECURITY_GROUPS = [
    "emr.master_security_group=sg-0aaa1111bbbb22223",
    "emr.core_security_group=sg-0ccc3333dddd44445",
    "emr.service_access_security_group=sg-0eee5555ffff66667",
]


@pytest.fixture(scope="module")
def emr_model():
    return botocore_session.get_session().get_service_model("emr")


def render(*sets: str) -> dict:
    if not DRIVER.exists():
        pytest.fail(f"{DRIVER} is missing: build it first (cargo build --release)")
    args = [str(DRIVER), "--output", "json", "render", "--date", "2021-10-31", "--target", "emr"]
    for item in sets:
        args += ["--set", item]
    result = subprocess.run(
        args, cwd=REPO, capture_output=True, text=True, check=False, env={"PATH": "/usr/bin:/bin"}
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def errors(model, operation: str, params: dict) -> str:
    shape = model.operation_model(operation).input_shape
    report = ParamValidator().validate(params, shape)
    return report.generate_report() if report.has_errors() else ""


def add_steps_request(plan: dict) -> dict:
    return {"JobFlowId": "j-2AXXXXXXGAPLF", "Steps": [step["config"] for step in plan["steps"]]}


@pytest.mark.parametrize(
    "sets",
    [
        ["emr.subnet_id=subnet-x"],
        ["emr.subnet_id=subnet-0a1b2c3d4e5f60718", *SECURITY_GROUPS],
        ["emr.subnet_id=subnet-x", "emr.autoscaling_role=EMR_AutoScaling_DefaultRole"],
    ],
    ids=["subnet-only", "terraform-network", "autoscaling-role"],
)
def test_the_rendered_run_job_flow_is_valid(emr_model, sets):
    plan = render(*sets)
    request = plan["cluster_request"]
    assert errors(emr_model, "RunJobFlow", request) == ""
    tags = {tag["Key"]: tag["Value"] for tag in request["Tags"]}
    assert tags["for-use-with-amazon-emr-managed-policies"] == "true"
    assert tags["project"] == "movie-analytics"
    assert tags["run-id"] == plan["run_id"]
    assert tags["config-hash"] == plan["config_hash"]
    assert request["Instances"]["Ec2SubnetId"] == sets[0].split("=", 1)[1]


def test_the_security_groups_reach_the_request(emr_model):
    instances = render("emr.subnet_id=subnet-x", *SECURITY_GROUPS)["cluster_request"]["Instances"]
    assert instances["EmrManagedMasterSecurityGroup"] == "sg-0aaa1111bbbb22223"
    assert instances["EmrManagedSlaveSecurityGroup"] == "sg-0ccc3333dddd44445"
    assert instances["ServiceAccessSecurityGroup"] == "sg-0eee5555ffff66667"


def test_the_rendered_steps_are_a_valid_add_job_flow_steps(emr_model):
    for plan in [render("emr.subnet_id=subnet-x"), render("emr.cluster_id=j-2AXXXXXXGAPLF")]:
        request = add_steps_request(plan)
        assert len(request["Steps"]) == 4
        assert errors(emr_model, "AddJobFlowSteps", request) == ""


def test_the_validator_does_catch_a_bad_request(emr_model):
    # Guards the check itself: the model must refuse what EMR would refuse.
    plan = render("emr.subnet_id=subnet-x")
    bad = copy.deepcopy(plan["cluster_request"])
    bad["Instances"]["InstanceGroups"][0]["InstanceCount"] = "1"
    bad["Tags"].append({"Key": "x", "Valeu": "y"})
    del bad["Name"]
    report = errors(emr_model, "RunJobFlow", bad)
    assert "InstanceCount" in report and "Valeu" in report and "Name" in report, report
    steps = add_steps_request(plan)
    steps["Steps"][0]["ActionOnFailure"] = 3
    assert "ActionOnFailure" in errors(emr_model, "AddJobFlowSteps", steps)
