"""The EMR Serverless requests `emr-driver render --target emr-serverless` (and `run --dry-run`)
prints are valid against botocore's `emr-serverless` service model: every StartJobRun, and the
CreateApplication of a run that creates its application.

botocore comes with moto in the dev venv. The driver binary is the release build the test
command makes before pytest (`cargo nextest run --release` builds target/release/emr-driver).
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import botocore.session
import pytest
from botocore.validate import ParamValidator

REPO_ROOT = Path(__file__).resolve().parents[1]
DRIVER = REPO_ROOT / "target" / "release" / "emr-driver"
ROLE = "arn:aws:iam::123456789012:role/movie-analytics-dev-emr-serverless-runtime"


def model():
    return botocore.session.get_session().get_service_model("emr-serverless")


def plan(*args: str) -> dict:
    assert DRIVER.exists(), f"{DRIVER} is missing: build it with cargo build --release"
    cmd = [str(DRIVER), *args, "--date", "2021-10-31", "--target", "emr-serverless",
           "--set", f"serverless.execution_role_arn={ROLE}"]  # fmt: skip
    out = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def constraints(value, shape, name: str) -> list[str]:
    """What ParamValidator leaves out: the model's `max` and `pattern` of strings, lists and
    maps, and the enums, checked through the whole request."""
    found = []
    meta = shape.metadata
    if shape.type_name in ("string", "list", "map") and "max" in meta and len(value) > meta["max"]:
        found.append(f"{name}: length {len(value)} > max {meta['max']}")
    if shape.type_name == "string":
        if "pattern" in meta and not re.fullmatch(meta["pattern"], value):
            found.append(f"{name}: {value!r} does not match {meta['pattern']}")
        if shape.enum and value not in shape.enum:
            found.append(f"{name}: {value!r} not in {shape.enum}")
    elif shape.type_name == "structure":
        for key, member in value.items():
            if key in shape.members:
                found += constraints(member, shape.members[key], f"{name}.{key}")
    elif shape.type_name == "list":
        for i, member in enumerate(value):
            found += constraints(member, shape.member, f"{name}[{i}]")
    elif shape.type_name == "map":
        for key, member in value.items():
            found += constraints(key, shape.key, f"{name} key")
            found += constraints(member, shape.value, f"{name}[{key}]")
    return found


def errors(operation: str, params: dict) -> str:
    shape = model().operation_model(operation).input_shape
    report = ParamValidator().validate(params, shape)
    found = [report.generate_report()] if report.has_errors() else []
    return "\n".join(found + constraints(params, shape, operation))


@pytest.mark.parametrize("command", [["render"], ["run", "--dry-run"]])
def test_every_start_job_run_is_valid_for_botocore(command):
    doc = plan(*command, "--set", "serverless.application_id=00fabcdexyz12345")
    serverless = doc["serverless"]
    assert serverless["create_application"] is None
    runs = serverless["job_runs"]
    assert [r["name"].rsplit(" ", 1)[1] for r in runs] == [
        "classify_reviews", "parse_logs", "build_dimensions", "build_fact"]  # fmt: skip
    for request in runs:
        assert request["applicationId"] == "00fabcdexyz12345"
        assert errors("StartJobRun", request) == "", request
        # The same command line as the EMR step: entry point and arguments.
        step = next(s for s in doc["steps"] if s["config"]["Name"] == request["name"])
        args = step["config"]["HadoopJarStep"]["Args"]
        submit = request["jobDriver"]["sparkSubmit"]
        entry = args.index(submit["entryPoint"])
        assert args[entry + 1 :] == submit["entryPointArguments"]
        assert f"--py-files {args[args.index('--py-files') + 1]}" in submit["sparkSubmitParameters"]
        assert "--conf spark.sql.shuffle.partitions=16" in submit["sparkSubmitParameters"]
        assert request["tags"]["run-id"] == doc["run_id"]


def test_a_run_that_creates_its_application_sends_a_valid_create_application():
    doc = plan("render", "--set", "serverless.subnet_ids=subnet-0a,subnet-0b",
               "--set", "serverless.security_group_ids=sg-0c")  # fmt: skip
    create = doc["serverless"]["create_application"]
    assert errors("CreateApplication", create) == "", create
    assert create["releaseLabel"] == "emr-7.12.0"
    assert create["networkConfiguration"] == {"subnetIds": ["subnet-0a", "subnet-0b"],
                                              "securityGroupIds": ["sg-0c"]}  # fmt: skip
    assert create["autoStopConfiguration"]["enabled"] is True
    # The job runs get the id once the application exists: with any id they are valid.
    for request in doc["serverless"]["job_runs"]:
        assert "applicationId" not in request
        assert errors("StartJobRun", {**request, "applicationId": "00created"}) == "", request


def test_the_validator_does_catch_a_bad_request():
    """The check above can fail: a token with a space and a missing role are refused."""
    doc = plan("render", "--set", "serverless.application_id=00fabcdexyz12345")
    bad = dict(doc["serverless"]["job_runs"][0], clientToken="has space" * 10)
    del bad["executionRoleArn"]
    report = errors("StartJobRun", bad)
    assert "executionRoleArn" in report and "clientToken" in report, report
