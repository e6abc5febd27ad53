#!/usr/bin/env python3
"""Turn `terraform output -json` of terraform/envs/<env> into the driver's configuration.

    terraform -chdir=terraform/envs/dev output -json | scripts/config-from-terraform.py
    scripts/config-from-terraform.py --format toml outputs.json > overlay.toml

The default format, `env`, prints one `EMR_DRIVER_<SECTION>_<KEY>=value` line per setting:
the format of a kustomize `configMapGenerator` env file (deploy/k8s/driver-config.env) and of
`docker run --env-file`. `shell` prints `export` lines for `eval`, `toml` a TOML overlay with the
same sections as config/pipeline.toml.

OUTPUT_TO_CONFIG below is the one table that says which Terraform output feeds which config key;
tests/test_terraform_config_drift.py checks it against terraform/envs/dev/outputs.tf and
config/pipeline.toml, so outputs, config and this script cannot drift apart.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Sequence
from typing import Any, TextIO

# Terraform output name -> (config section, config key).
OUTPUT_TO_CONFIG: dict[str, tuple[str, str]] = {
    "aws_region": ("aws", "region"),
    "raw_bucket": ("buckets", "raw"),
    "staging_bucket": ("buckets", "staging"),
    "emr_release_label": ("emr", "release_label"),
    "emr_cluster_id": ("emr", "cluster_id"),
    "emr_log_uri": ("emr", "log_uri"),
    "emr_service_role": ("emr", "service_role"),
    "emr_instance_profile": ("emr", "instance_profile"),
    "emr_subnet_id": ("emr", "subnet_id"),
    "emr_security_configuration": ("emr", "security_configuration"),
    "emr_master_security_group": ("emr", "master_security_group"),
    "emr_core_security_group": ("emr", "core_security_group"),
    "emr_service_access_security_group": ("emr", "service_access_security_group"),
    # The project tag of the clusters the driver creates: its IAM policy requires it.
    "project": ("pipeline", "name"),
    "redshift_copy_role_arn": ("warehouse", "redshift_copy_role_arn"),
    # How the driver logs in (terraform variable database_auth): "secret" reads the user and
    # password from the secrets RDS and Redshift manage (and rotate) at run time; "iam" makes
    # an RDS auth token / asks Redshift for temporary credentials, and the ARN is empty
    # (driver/src/db/login.rs).
    "source_auth": ("source", "auth"),
    "warehouse_auth": ("warehouse", "auth"),
    "source_password_secret_arn": ("source", "password_secret_arn"),
    "warehouse_password_secret_arn": ("warehouse", "password_secret_arn"),
    # Spectrum: the external schema over staging reads this Glue database.
    "redshift_glue_database": ("warehouse", "glue_database"),
}

# Outputs of the EMR Serverless module (terraform/modules/emr_serverless): fed to the
# [serverless] keys when the environment has them (older applies do not), so
# `--target emr-serverless` (or EMR_DRIVER_PIPELINE_TARGET=emr-serverless) runs on them.
OPTIONAL_OUTPUT_TO_CONFIG: dict[str, tuple[str, str]] = {
    "emr_serverless_application_id": ("serverless", "application_id"),
    "emr_serverless_runtime_role_arn": ("serverless", "execution_role_arn"),
    "emr_serverless_security_group_id": ("serverless", "security_group_ids"),
    "emr_serverless_log_uri": ("serverless", "log_uri"),
}

# Where the image keeps the AWS RDS CA bundle (Dockerfile): the source database is reached
# with sslmode=verify-full against it. Redshift's certificates chain to the Amazon roots of
# the system store.
RDS_CA_BUNDLE = "/app/certs/rds-global-bundle.pem"

# What every deployment of terraform/envs/* implies whatever its outputs: the Spark steps run
# on EMR and the warehouse is the Redshift cluster.
ENVIRONMENT_SETTINGS: dict[tuple[str, str], str] = {
    ("pipeline", "target"): "emr",
    ("warehouse", "kind"): "redshift",
}

FORMATS = ("env", "shell", "toml")

# The connection URLs, without credentials (the secrets above give them), from several outputs.
# DATABASE_URL is the driver's own variable for the source database, not a config key.
SOURCE_URL_VARIABLE = "DATABASE_URL"


def derived_settings(outputs: dict) -> list[tuple[str, str, str]]:
    """warehouse.url from the Redshift outputs; (None-section) DATABASE_URL from the RDS ones,
    with the database user of the IAM path (`source_db_user`; empty: the secret names it)."""
    needed = [
        "redshift_endpoint",
        "redshift_database",
        "rds_address",
        "rds_port",
        "rds_database",
        "source_db_user",
    ]
    missing = [name for name in needed if name not in outputs]
    if missing:
        raise ConfigFromTerraformError(
            f"terraform outputs missing: {', '.join(missing)}; "
            "apply the current terraform/envs/<env>"
        )
    values = {name: _string_value(name, outputs[name]) for name in needed}
    warehouse = f"postgres://{values['redshift_endpoint']}/{values['redshift_database']}?sslmode=verify-full"
    user = values["source_db_user"]
    if user and not user.replace("_", "").isalnum():
        raise ConfigFromTerraformError(
            f"output 'source_db_user' is {user!r}, not a plain PostgreSQL user name"
        )
    at = f"{user}@" if user else ""
    source = (
        f"postgres://{at}{values['rds_address']}:{values['rds_port']}/{values['rds_database']}"
        f"?sslmode=verify-full&sslrootcert={RDS_CA_BUNDLE}"
    )
    return [("warehouse", "url", warehouse), ("", SOURCE_URL_VARIABLE, source)]


class ConfigFromTerraformError(Exception):
    """Input that cannot become a driver configuration; the message says how to fix it."""


def env_var_name(section: str, key: str) -> str:
    """The driver's environment override of `[section] key` (an empty section: `key` is the
    variable's own name, such as DATABASE_URL)."""
    if not section:
        return key
    return f"EMR_DRIVER_{section.upper()}_{key.upper()}"


def settings_from_outputs(outputs: Any) -> list[tuple[str, str, str]]:
    """(section, key, value) for every config setting, from parsed `terraform output -json`."""
    if not isinstance(outputs, dict):
        raise ConfigFromTerraformError(
            "expected the JSON object printed by `terraform output -json`, got "
            f"{type(outputs).__name__}; run it in terraform/envs/<env> after `terraform apply`"
        )
    missing = [name for name in OUTPUT_TO_CONFIG if name not in outputs]
    if missing:
        raise ConfigFromTerraformError(
            f"terraform outputs missing: {', '.join(missing)}; apply the current "
            "terraform/envs/<env> (its outputs.tf defines them) and run "
            "`terraform output -json` again"
        )
    settings = [(section, key, value) for (section, key), value in ENVIRONMENT_SETTINGS.items()]
    for name, (section, key) in OUTPUT_TO_CONFIG.items():
        settings.append((section, key, _string_value(name, outputs[name])))
    settings += derived_settings(outputs)
    for name, (section, key) in OPTIONAL_OUTPUT_TO_CONFIG.items():
        if name in outputs:
            settings.append((section, key, _string_value(name, outputs[name])))
    return settings


def _string_value(name: str, output: Any) -> str:
    if not isinstance(output, dict) or "value" not in output:
        raise ConfigFromTerraformError(
            f'output {name!r} has no "value": pass the JSON of `terraform output -json` '
            "(all outputs), not of `terraform output -json NAME`"
        )
    if output.get("sensitive"):
        # None of the mapped outputs is a secret; refuse rather than print one if that changes.
        raise ConfigFromTerraformError(
            f"output {name!r} is marked sensitive; it must not go into the driver's plain "
            "configuration: put it in a Kubernetes Secret instead"
        )
    value = output["value"]
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ConfigFromTerraformError(
            f"output {name!r} is {json.dumps(value)}, expected a string; "
            "check terraform/envs/<env>/outputs.tf"
        )
    text = str(value)
    if "\n" in text or "\r" in text:
        raise ConfigFromTerraformError(
            f"output {name!r} contains a line break, which no env file can hold"
        )
    return text


def render(settings: Sequence[tuple[str, str, str]], fmt: str) -> str:
    if fmt == "env":
        return "".join(f"{env_var_name(s, k)}={v}\n" for s, k, v in settings)
    if fmt == "shell":
        return "".join(f"export {env_var_name(s, k)}={shlex.quote(v)}\n" for s, k, v in settings)
    if fmt == "toml":
        return _render_toml(settings)
    raise ConfigFromTerraformError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")


def _render_toml(settings: Sequence[tuple[str, str, str]]) -> str:
    sections: dict[str, list[tuple[str, str]]] = {}
    for section, key, value in settings:
        if not section:
            continue  # an environment variable of its own, not a config key
        sections.setdefault(section, []).append((key, value))
    blocks = []
    for section, pairs in sections.items():
        # A JSON string is a valid TOML basic string (same escapes).
        lines = [f"[{section}]"] + [f"{key} = {json.dumps(value)}" for key, value in pairs]
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


def convert(source: TextIO, fmt: str) -> str:
    text = source.read()
    if not text.strip():
        raise ConfigFromTerraformError(
            "no input: pipe `terraform output -json` into this script or give the file holding it"
        )
    try:
        outputs = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigFromTerraformError(
            f"the input is not JSON ({error}); use `terraform output -json`, not `terraform output`"
        ) from None
    return render(settings_from_outputs(outputs), fmt)


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "file", nargs="?", help="file holding `terraform output -json` (default: stdin)"
    )
    parser.add_argument(
        "--format", choices=FORMATS, default="env", help="output format (default: env)"
    )
    args = parser.parse_args(argv)
    try:
        if args.file:
            try:
                with open(args.file, encoding="utf-8") as source:
                    result = convert(source, args.format)
            except OSError as error:
                raise ConfigFromTerraformError(
                    f"cannot read {args.file}: {error.strerror}"
                ) from None
        else:
            result = convert(sys.stdin, args.format)
    except ConfigFromTerraformError as error:
        print(f"config-from-terraform: {error}", file=sys.stderr)
        return 2
    sys.stdout.write(result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
