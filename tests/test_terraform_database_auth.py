"""How the nightly driver logs in to the databases, in Terraform: the typed variable
`database_auth` of terraform/envs/dev picks "secret" or "iam" per database, and the driver's
IRSA policy (terraform/modules/eks) grants exactly what that choice needs: GetSecretValue on
the secrets of the secret path, rds-db:connect on one database user and
redshift:GetClusterCredentialsWithIAM on one database (or, with a Redshift Serverless
workgroup, redshift-serverless:GetCredentials on that workgroup) for the IAM path, nothing for
the path not taken. The driver's configuration follows the same variable (outputs source_auth,
warehouse_auth, the ARNs empty on the IAM path).
"""

from __future__ import annotations

import re
from pathlib import Path

import hcl2

REPO = Path(__file__).resolve().parents[1]
ENV = REPO / "terraform" / "envs" / "dev"
EKS = REPO / "terraform" / "modules" / "eks"


def load(path: Path) -> dict:
    with path.open(encoding="utf-8") as source:
        return hcl2.load(source)


def named(entries: list[dict], name: str) -> dict:
    for entry in entries:
        for key, body in entry.items():
            if key.strip('"') == name:
                return body
    raise AssertionError(f"no block {name!r}")


def test_database_auth_is_a_typed_choice_defaulting_to_the_secrets():
    variable = named(load(ENV / "variables.tf")["variable"], "database_auth")
    assert "object" in variable["type"] and "source" in variable["type"]
    # python-hcl2 keeps the quotes of string literals.
    assert variable["default"] == {"source": '"secret"', "warehouse": '"secret"'}
    (validation,) = variable["validation"]
    for value in ('"secret"', '"iam"', "var.database_auth.source", "var.database_auth.warehouse"):
        assert value in validation["condition"], value


def test_the_env_passes_each_permission_only_for_its_path():
    eks = named(load(ENV / "main.tf")["module"], "eks")
    # Secrets only where the path is "secret"; IAM resources only where it is "iam".
    for key in ("driver_secret_arns", "driver_secret_kms_key_arns"):
        text = eks[key]
        assert "local.source_iam ? [] :" in text and "local.warehouse_iam ? [] :" in text, key
    assert re.search(
        r"local\.source_iam \? \[.*iam_db_user_arn_prefix.*rds_iam_db_user.*\] : \[\]",
        eks["driver_rds_db_user_arns"],
    )
    # The cluster's database or the workgroup, never both.
    assert re.search(
        r"local\.warehouse_iam && !local\.warehouse_workgroup "
        r"\? \[module\.redshift\.iam_dbname_arn\] : \[\]",
        eks["driver_redshift_dbname_arns"],
    )
    assert re.search(
        r"local\.warehouse_iam && local\.warehouse_workgroup "
        r"\? \[var\.redshift_serverless_workgroup_arn\] : \[\]",
        eks["driver_redshift_serverless_workgroup_arns"],
    )
    locals_ = {k: v for entry in load(ENV / "main.tf")["locals"] for k, v in entry.items()}
    assert locals_["source_iam"] == '${var.database_auth.source == "iam"}'
    assert locals_["warehouse_iam"] == '${var.database_auth.warehouse == "iam"}'
    assert locals_["warehouse_workgroup"] == '${var.redshift_serverless_workgroup_arn != ""}'
    workgroup = named(load(ENV / "variables.tf")["variable"], "redshift_serverless_workgroup_arn")
    # python-hcl2 keeps the quotes: the default is the empty string (the cluster).
    assert workgroup["default"] == '""'


def test_the_driver_policy_grants_the_iam_logins_on_exactly_the_given_resources():
    text = (EKS / "main.tf").read_text(encoding="utf-8")
    policy = text[text.index('resource "aws_iam_role_policy" "driver"') :]
    policy = policy[: policy.index("\n}\n")]
    for variable, action in (
        ("driver_rds_db_user_arns", '"rds-db:connect"'),
        ("driver_redshift_dbname_arns", '"redshift:GetClusterCredentialsWithIAM"'),
        ("driver_redshift_serverless_workgroup_arns", '"redshift-serverless:GetCredentials"'),
        ("driver_secret_arns", '"secretsmanager:GetSecretValue"'),
    ):
        guard = f"length(var.{variable}) == 0 ? [] : ["
        assert guard in policy, f"the statement of {variable} is not conditional on it"
        block = policy[policy.index(guard) :]
        block = block[: block.index("}")]
        assert action in block and f"Resource = var.{variable}" in block, block
    # Never a wildcard for the database logins.
    assert not re.search(r'"(rds-db|redshift|redshift-serverless):\*"', policy)
    variables = load(EKS / "variables.tf")["variable"]
    for name in (
        "driver_rds_db_user_arns",
        "driver_redshift_dbname_arns",
        "driver_redshift_serverless_workgroup_arns",
    ):
        body = named(variables, name)
        assert body["default"] == [], name


def test_the_driver_config_follows_the_choice():
    outputs = {
        k.strip('"'): v for entry in load(ENV / "outputs.tf")["output"] for k, v in entry.items()
    }
    assert outputs["source_auth"]["value"] == "${var.database_auth.source}"
    assert outputs["warehouse_auth"]["value"] == "${var.database_auth.warehouse}"
    assert outputs["source_password_secret_arn"]["value"].startswith('${local.source_iam ? "" :')
    assert outputs["warehouse_password_secret_arn"]["value"].startswith(
        '${local.warehouse_iam ? "" :'
    )
    assert outputs["source_db_user"]["value"] == '${local.source_iam ? var.rds_iam_db_user : ""}'
