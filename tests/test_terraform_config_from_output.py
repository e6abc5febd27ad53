"""scripts/config-from-terraform.py turns `terraform output -json` into the driver's settings.

The sample below is the shape `terraform output -json` prints for terraform/envs/dev (every
output as {"sensitive", "type", "value"}), with made-up account-specific values.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "config-from-terraform.py"

SAMPLE_OUTPUT = r"""
{
  "aws_region": {"sensitive": false, "type": "string", "value": "us-east-1"},
  "driver_namespace": {"sensitive": false, "type": "string", "value": "movie-analytics"},
  "driver_role_arn": {"sensitive": false, "type": "string",
    "value": "arn:aws:iam::111122223333:role/movie-analytics-dev-emr-driver"},
  "driver_service_account": {"sensitive": false, "type": "string", "value": "emr-driver"},
  "eks_cluster_name": {"sensitive": false, "type": "string", "value": "movie-analytics-dev"},
  "emr_cluster_id": {"sensitive": false, "type": "string", "value": ""},
  "emr_instance_profile": {"sensitive": false, "type": "string",
    "value": "movie-analytics-dev-emr-instance"},
  "emr_log_uri": {"sensitive": false, "type": "string",
    "value": "s3://movie-analytics-dev-raw/emr-logs/"},
  "emr_release_label": {"sensitive": false, "type": "string", "value": "emr-7.12.0"},
  "emr_security_configuration": {"sensitive": false, "type": "string",
    "value": "movie-analytics-dev"},
  "emr_service_role": {"sensitive": false, "type": "string",
    "value": "movie-analytics-dev-emr-service"},
  "emr_master_security_group": {"sensitive": false, "type": "string",
    "value": "sg-0aaa1111bbbb22223"},
  "emr_core_security_group": {"sensitive": false, "type": "string",
    "value": "sg-0ccc3333dddd44445"},
  "emr_service_access_security_group": {"sensitive": false, "type": "string",
    "value": "sg-0eee5555ffff66667"},
  "project": {"sensitive": false, "type": "string", "value": "movie-analytics"},
  "emr_subnet_id": {"sensitive": false, "type": "string", "value": "subnet-0a1b2c3d4e5f60718"},
  "lake_kms_key_arn": {"sensitive": false, "type": "string",
    "value": "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"},
  "raw_bucket": {"sensitive": false, "type": "string", "value": "movie-analytics-dev-raw"},
  "rds_address": {"sensitive": false, "type": "string",
    "value": "movie-analytics-dev-purchases.c9akciq32.us-east-1.rds.amazonaws.com"},
  "rds_admin_secret_arn": {"sensitive": false, "type": "string",
    "value": "arn:aws:secretsmanager:us-east-1:111122223333:secret:rds!db-1a2b3c-AbCdEf"},
  "rds_database": {"sensitive": false, "type": "string", "value": "movie_analytics"},
  "rds_port": {"sensitive": false, "type": "number", "value": 5432},
  "redshift_admin_secret_arn": {"sensitive": false, "type": "string",
    "value": "arn:aws:secretsmanager:us-east-1:111122223333:secret:redshift!mad-4d5e6f-GhIjKl"},
  "redshift_copy_role_arn": {"sensitive": false, "type": "string",
    "value": "arn:aws:iam::111122223333:role/movie-analytics-dev-redshift-copy"},
  "redshift_database": {"sensitive": false, "type": "string", "value": "movie_analytics"},
  "redshift_endpoint": {"sensitive": false, "type": "string",
    "value": "movie-analytics-dev.cx1y2z3.us-east-1.redshift.amazonaws.com:5439"},
  "redshift_glue_database": {"sensitive": false, "type": "string",
    "value": "movie_analytics_dev_staging"},
  "staging_bucket": {"sensitive": false, "type": "string",
    "value": "movie-analytics-dev-staging"},
  "source_auth": {"sensitive": false, "type": "string", "value": "secret"},
  "warehouse_auth": {"sensitive": false, "type": "string", "value": "secret"},
  "source_password_secret_arn": {"sensitive": false, "type": "string",
    "value": "arn:aws:secretsmanager:us-east-1:111122223333:secret:rds!db-1a2b3c-AbCdEf"},
  "warehouse_password_secret_arn": {"sensitive": false, "type": "string",
    "value": "arn:aws:secretsmanager:us-east-1:111122223333:secret:redshift!mad-4d5e6f-GhIjKl"},
  "source_db_user": {"sensitive": false, "type": "string", "value": ""}
}
"""

EXPECTED_ENV = """\
EMR_DRIVER_PIPELINE_TARGET=emr
EMR_DRIVER_WAREHOUSE_KIND=redshift
EMR_DRIVER_AWS_REGION=us-east-1
EMR_DRIVER_BUCKETS_RAW=movie-analytics-dev-raw
EMR_DRIVER_BUCKETS_STAGING=movie-analytics-dev-staging
EMR_DRIVER_EMR_RELEASE_LABEL=emr-7.12.0
EMR_DRIVER_EMR_CLUSTER_ID=
EMR_DRIVER_EMR_LOG_URI=s3://movie-analytics-dev-raw/emr-logs/
EMR_DRIVER_EMR_SERVICE_ROLE=movie-analytics-dev-emr-service
EMR_DRIVER_EMR_INSTANCE_PROFILE=movie-analytics-dev-emr-instance
EMR_DRIVER_EMR_SUBNET_ID=subnet-0a1b2c3d4e5f60718
EMR_DRIVER_EMR_SECURITY_CONFIGURATION=movie-analytics-dev
EMR_DRIVER_EMR_MASTER_SECURITY_GROUP=sg-0aaa1111bbbb22223
EMR_DRIVER_EMR_CORE_SECURITY_GROUP=sg-0ccc3333dddd44445
EMR_DRIVER_EMR_SERVICE_ACCESS_SECURITY_GROUP=sg-0eee5555ffff66667
EMR_DRIVER_PIPELINE_NAME=movie-analytics
EMR_DRIVER_WAREHOUSE_REDSHIFT_COPY_ROLE_ARN=arn:aws:iam::111122223333:role/movie-analytics-dev-redshift-copy
EMR_DRIVER_SOURCE_AUTH=secret
EMR_DRIVER_WAREHOUSE_AUTH=secret
EMR_DRIVER_SOURCE_PASSWORD_SECRET_ARN=arn:aws:secretsmanager:us-east-1:111122223333:secret:rds!db-1a2b3c-AbCdEf
EMR_DRIVER_WAREHOUSE_PASSWORD_SECRET_ARN=arn:aws:secretsmanager:us-east-1:111122223333:secret:redshift!mad-4d5e6f-GhIjKl
EMR_DRIVER_WAREHOUSE_GLUE_DATABASE=movie_analytics_dev_staging
EMR_DRIVER_WAREHOUSE_URL=postgres://movie-analytics-dev.cx1y2z3.us-east-1.redshift.amazonaws.com:5439/movie_analytics?sslmode=verify-full
DATABASE_URL=postgres://movie-analytics-dev-purchases.c9akciq32.us-east-1.rds.amazonaws.com:5432/movie_analytics?sslmode=verify-full&sslrootcert=/app/certs/rds-global-bundle.pem
"""


def run_script(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_env_lines_from_stdin():
    result = run_script(stdin=SAMPLE_OUTPUT)
    assert result.returncode == 0, result.stderr
    assert result.stdout == EXPECTED_ENV
    assert result.stderr == ""


def test_env_lines_from_a_file(tmp_path: Path):
    outputs = tmp_path / "outputs.json"
    outputs.write_text(SAMPLE_OUTPUT, encoding="utf-8")
    result = run_script(str(outputs))
    assert result.returncode == 0, result.stderr
    assert result.stdout == EXPECTED_ENV


def test_toml_overlay_has_the_config_sections():
    result = run_script("--format", "toml", stdin=SAMPLE_OUTPUT)
    assert result.returncode == 0, result.stderr
    overlay = tomllib.loads(result.stdout)
    assert overlay["buckets"] == {
        "raw": "movie-analytics-dev-raw",
        "staging": "movie-analytics-dev-staging",
    }
    assert overlay["emr"]["log_uri"] == "s3://movie-analytics-dev-raw/emr-logs/"
    assert overlay["emr"]["subnet_id"] == "subnet-0a1b2c3d4e5f60718"
    assert overlay["emr"]["cluster_id"] == ""
    assert overlay["warehouse"] == {
        "kind": "redshift",
        "redshift_copy_role_arn": "arn:aws:iam::111122223333:role/"
        "movie-analytics-dev-redshift-copy",
        "auth": "secret",
        "password_secret_arn": "arn:aws:secretsmanager:us-east-1:111122223333:secret:"
        "redshift!mad-4d5e6f-GhIjKl",
        "glue_database": "movie_analytics_dev_staging",
        "url": "postgres://movie-analytics-dev.cx1y2z3.us-east-1.redshift.amazonaws.com:5439/"
        "movie_analytics?sslmode=verify-full",
    }
    # No credentials anywhere: the passwords stay in Secrets Manager.
    assert "password=" not in result.stdout and "@" not in overlay["warehouse"]["url"]
    assert overlay["pipeline"] == {"target": "emr", "name": "movie-analytics"}
    assert overlay["emr"]["service_access_security_group"] == "sg-0eee5555ffff66667"
    assert overlay["aws"] == {"region": "us-east-1"}
    # Every key of the overlay is a key of the driver's config.
    with (REPO / "config" / "pipeline.toml").open("rb") as source:
        config = tomllib.load(source)
    for section, values in overlay.items():
        assert set(values) <= set(config[section]), section


def test_shell_format_quotes_for_eval():
    outputs = json.loads(SAMPLE_OUTPUT)
    outputs["emr_cluster_id"]["value"] = "j-ABC 'quoted'"
    result = run_script("--format", "shell", stdin=json.dumps(outputs))
    assert result.returncode == 0, result.stderr
    line = next(x for x in result.stdout.splitlines() if "EMR_CLUSTER_ID" in x)
    assert line == "export EMR_DRIVER_EMR_CLUSTER_ID='j-ABC '\"'\"'quoted'\"'\"''"
    evaluated = subprocess.run(
        ["sh", "-c", result.stdout + 'printf %s "$EMR_DRIVER_EMR_CLUSTER_ID"'],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert evaluated.stdout == "j-ABC 'quoted'"


@pytest.mark.parametrize(
    ("stdin", "message"),
    [
        ("", "no input: pipe `terraform output -json`"),
        ("raw_bucket = movie-analytics-dev-raw\n", "the input is not JSON"),
        ("[1, 2]", "expected the JSON object printed by `terraform output -json`, got list"),
        ('{"raw_bucket": {"value": "x"}}', "terraform outputs missing: aws_region, staging_bucket"),
    ],
)
def test_bad_input_says_how_to_fix_it(stdin: str, message: str):
    result = run_script(stdin=stdin)
    assert result.returncode == 2
    assert result.stdout == ""
    assert message in result.stderr


def test_a_single_output_value_is_refused():
    outputs = json.loads(SAMPLE_OUTPUT)
    outputs["raw_bucket"] = "movie-analytics-dev-raw"
    result = run_script(stdin=json.dumps(outputs))
    assert result.returncode == 2
    assert "output 'raw_bucket' has no \"value\"" in result.stderr


def test_a_sensitive_output_is_never_printed():
    outputs = json.loads(SAMPLE_OUTPUT)
    outputs["emr_subnet_id"] = {"sensitive": True, "type": "string", "value": "s3cr3t-value"}
    result = run_script(stdin=json.dumps(outputs))
    assert result.returncode == 2
    assert "marked sensitive" in result.stderr
    assert "s3cr3t-value" not in result.stdout + result.stderr


def test_a_non_string_value_is_refused():
    outputs = json.loads(SAMPLE_OUTPUT)
    outputs["emr_subnet_id"]["value"] = ["subnet-1", "subnet-2"]
    result = run_script(stdin=json.dumps(outputs))
    assert result.returncode == 2
    assert "expected a string" in result.stderr


def test_a_missing_file_is_a_clear_error(tmp_path: Path):
    result = run_script(str(tmp_path / "absent.json"))
    assert result.returncode == 2
    assert "cannot read" in result.stderr and "absent.json" in result.stderr


def test_the_emr_serverless_outputs_feed_the_serverless_section():
    outputs = json.loads(SAMPLE_OUTPUT)
    serverless = {
        "emr_serverless_application_id": "00fabcdexyz12345",
        "emr_serverless_runtime_role_arn": "arn:aws:iam::111122223333:role/"
        "movie-analytics-dev-emr-serverless-runtime",
        "emr_serverless_security_group_id": "sg-0123456789abcdef0",
        "emr_serverless_log_uri": "s3://movie-analytics-dev-raw/emr-logs/serverless/",
    }
    for name, value in serverless.items():
        outputs[name] = {"sensitive": False, "type": "string", "value": value}
    result = run_script(stdin=json.dumps(outputs))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(EXPECTED_ENV)
    assert result.stdout[len(EXPECTED_ENV) :] == (
        "EMR_DRIVER_SERVERLESS_APPLICATION_ID=00fabcdexyz12345\n"
        "EMR_DRIVER_SERVERLESS_EXECUTION_ROLE_ARN=arn:aws:iam::111122223333:role/"
        "movie-analytics-dev-emr-serverless-runtime\n"
        "EMR_DRIVER_SERVERLESS_SECURITY_GROUP_IDS=sg-0123456789abcdef0\n"
        "EMR_DRIVER_SERVERLESS_LOG_URI=s3://movie-analytics-dev-raw/emr-logs/serverless/\n"
    )
    overlay = tomllib.loads(run_script("--format", "toml", stdin=json.dumps(outputs)).stdout)
    with (REPO / "config" / "pipeline.toml").open("rb") as source:
        config = tomllib.load(source)
    assert set(overlay["serverless"]) <= set(config["serverless"])
    # And every one of them is an output of terraform/envs/dev.
    text = (REPO / "terraform" / "envs" / "dev" / "outputs.tf").read_text(encoding="utf-8")
    for name in serverless:
        assert f'output "{name}"' in text, name


def test_the_iam_path_names_the_user_and_no_secret():
    outputs = json.loads(SAMPLE_OUTPUT)
    iam = {
        "source_auth": "iam",
        "warehouse_auth": "iam",
        "source_password_secret_arn": "",
        "warehouse_password_secret_arn": "",
        "source_db_user": "emr_driver",
    }
    for name, value in iam.items():
        outputs[name]["value"] = value
    result = run_script(stdin=json.dumps(outputs))
    assert result.returncode == 0, result.stderr
    lines = dict(line.split("=", 1) for line in result.stdout.splitlines())
    assert lines["EMR_DRIVER_SOURCE_AUTH"] == "iam"
    assert lines["EMR_DRIVER_WAREHOUSE_AUTH"] == "iam"
    assert lines["EMR_DRIVER_SOURCE_PASSWORD_SECRET_ARN"] == ""
    assert lines["EMR_DRIVER_WAREHOUSE_PASSWORD_SECRET_ARN"] == ""
    # The token is made for the user of the URL; TLS verifies the server (the token is a
    # password). Redshift maps the role to its user: its URL names none.
    assert lines["DATABASE_URL"].startswith(
        "postgres://emr_driver@movie-analytics-dev-purchases.c9akciq32.us-east-1.rds.amazonaws.com:5432/"
    )
    assert "sslmode=verify-full" in lines["DATABASE_URL"]
    assert "@" not in lines["EMR_DRIVER_WAREHOUSE_URL"]
    outputs["source_db_user"]["value"] = "x@evil"
    refused = run_script(stdin=json.dumps(outputs))
    assert refused.returncode == 2 and "source_db_user" in refused.stderr
