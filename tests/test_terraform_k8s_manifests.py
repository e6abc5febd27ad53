"""The nightly trigger (deploy/k8s) and the driver image (Dockerfile) keep their promises:
the CronJob runs `emr-driver run` for yesterday with the IRSA service account, never
concurrently, within limits and locked down; its ConfigMap env file names only real config
keys, with the same names as config/pipeline.toml and the Terraform outputs; the Dockerfile is
multi-stage and runs as a non-root user.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import tomllib
import yaml

REPO = Path(__file__).resolve().parents[1]
K8S = REPO / "deploy" / "k8s"


def load_yaml(name: str) -> dict:
    with (K8S / name).open(encoding="utf-8") as source:
        return yaml.safe_load(source)


def load_script():
    path = REPO / "scripts" / "config-from-terraform.py"
    spec = importlib.util.spec_from_file_location("config_from_terraform", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parse_env_file(text: str) -> dict[str, str]:
    """A kustomize env file: KEY=VALUE lines, # comments and blank lines ignored."""
    values = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not re.fullmatch(r"[A-Z][A-Z0-9_]*", key):
            raise ValueError(f"line {number}: not KEY=VALUE: {line!r}")
        if key in values:
            raise ValueError(f"line {number}: {key} set twice")
        values[key] = value
    return values


@pytest.fixture(scope="module")
def config() -> dict:
    with (REPO / "config" / "pipeline.toml").open("rb") as source:
        return tomllib.load(source)


@pytest.fixture(scope="module")
def pod_spec() -> dict:
    return load_yaml("cronjob.yaml")["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def test_kustomization_lists_every_manifest():
    kustomization = load_yaml("kustomization.yaml")
    assert kustomization["resources"] == ["namespace.yaml", "serviceaccount.yaml", "cronjob.yaml"]
    for name in kustomization["resources"]:
        assert (K8S / name).is_file(), name
    generator = kustomization["configMapGenerator"][0]
    assert generator["name"] == "emr-driver-config"
    assert generator["envs"] == ["driver-config.env"]
    assert kustomization["namespace"] == load_yaml("namespace.yaml")["metadata"]["name"]


def test_cronjob_never_runs_twice_at_once_and_gives_up_in_time():
    cronjob = load_yaml("cronjob.yaml")
    spec = cronjob["spec"]
    assert spec["concurrencyPolicy"] == "Forbid"
    assert spec["startingDeadlineSeconds"] > 0
    assert spec["timeZone"] == "Etc/UTC"
    job = spec["jobTemplate"]["spec"]
    assert 0 <= job["backoffLimit"] <= 3
    assert job["activeDeadlineSeconds"] > 0


def test_cronjob_runs_yesterday_with_the_irsa_service_account(pod_spec):
    service_account = load_yaml("serviceaccount.yaml")
    assert pod_spec["serviceAccountName"] == service_account["metadata"]["name"]
    role_arn = service_account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
    assert re.fullmatch(r"arn:aws:iam::\d{12}:role/movie-analytics-dev-emr-driver", role_arn)
    (container,) = pod_spec["containers"]
    assert container["command"] == ["/bin/sh", "-c"]
    (script,) = container["args"]
    assert "emr-driver run --date" in script
    assert '"$(date -u -d yesterday +%F)"' in script


def test_the_run_date_command_prints_yesterday():
    # The same shell command the CronJob runs, with GNU date as in the image.
    if shutil.which("date") is None:
        pytest.skip("no date binary")

    def yesterday() -> str:
        return (datetime.now(timezone.utc) - timedelta(days=1)).date().isoformat()

    before = yesterday()
    result = subprocess.run(
        ["sh", "-c", 'printf %s "$(date -u -d yesterday +%F)"'],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    # Both ends, in case the command straddles midnight UTC.
    assert result.stdout in {before, yesterday()}


def test_cronjob_is_locked_down(pod_spec):
    pod_security = pod_spec["securityContext"]
    assert pod_security["runAsNonRoot"] is True
    assert pod_security["runAsUser"] != 0
    assert pod_security["seccompProfile"]["type"] == "RuntimeDefault"
    assert pod_spec["automountServiceAccountToken"] is False
    (container,) = pod_spec["containers"]
    security = container["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    resources = container["resources"]
    for bound in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(resources[bound]), bound


def test_cronjob_reads_everything_from_the_configmap_and_no_password(pod_spec):
    (container,) = pod_spec["containers"]
    assert container["envFrom"] == [{"configMapRef": {"name": "emr-driver-config"}}]
    # No Kubernetes Secret holds a password by default: nothing references one.
    assert not any("valueFrom" in e for e in container.get("env", []))
    values = parse_env_file((K8S / "driver-config.env").read_text(encoding="utf-8"))
    # The URLs are there (Redshift has its own: the driver never falls back to DATABASE_URL
    # for it), and so are the secrets the driver reads the credentials from.
    for key in (
        "DATABASE_URL",
        "EMR_DRIVER_WAREHOUSE_URL",
        "EMR_DRIVER_SOURCE_PASSWORD_SECRET_ARN",
        "EMR_DRIVER_WAREHOUSE_PASSWORD_SECRET_ARN",
        # How the driver logs in: "secret" by default, "iam" with Terraform's database_auth.
        "EMR_DRIVER_SOURCE_AUTH",
        "EMR_DRIVER_WAREHOUSE_AUTH",
    ):
        assert key in values, key
    assert values["EMR_DRIVER_SOURCE_AUTH"] in ("secret", "iam")
    assert values["EMR_DRIVER_WAREHOUSE_AUTH"] in ("secret", "iam")
    for key in ("DATABASE_URL", "EMR_DRIVER_WAREHOUSE_URL"):
        assert "@" not in values[key] and "password" not in values[key].lower(), key


def rust_duration_secs(path: Path, pattern: str) -> int:
    text = path.read_text(encoding="utf-8")
    match = re.search(pattern, text)
    assert match, f"{path.relative_to(REPO)} no longer has {pattern!r}: update this test"
    return int(match.group(1))


def test_the_grace_period_outlasts_the_drivers_cancel_and_settle(pod_spec, config):
    driver = REPO / "driver" / "src"
    # After SIGTERM the driver cancels the steps (ListSteps then CancelSteps, each retried
    # with backoff), waits `settle` for them, then terminates its cluster (retried too).
    settle = rust_duration_secs(
        driver / "backend.rs", r"const SETTLE: Duration = Duration::from_secs\((\d+)\)"
    )
    cancel = (driver / "runner" / "cancel.rs").read_text(encoding="utf-8")
    attempts = int(re.search(r"const CANCEL_ATTEMPTS: u32 = (\d+);", cancel).group(1))
    backoff = re.search(
        r"Backoff::new\(Duration::from_secs\((\d+)\),\s*Duration::from_secs\((\d+)\)\)", cancel
    )
    base, ceiling = int(backoff.group(1)), int(backoff.group(2))
    one_retried_call = sum(min(ceiling, base * 2**n) for n in range(attempts - 1))
    # ListSteps, CancelSteps and TerminateJobFlows each retried, plus 5 s for each of those
    # requests to answer, is the worst case.
    worst = settle + 3 * one_retried_call + 5 * 3 * attempts
    grace = pod_spec["terminationGracePeriodSeconds"]
    assert grace > worst, (
        f"terminationGracePeriodSeconds {grace} <= the driver's worst case {worst} s"
    )
    # And the job's deadline leaves room for the run timeout plus that.
    run_timeout = config["emr"]["run_timeout_minutes"] * 60
    job = load_yaml("cronjob.yaml")["spec"]["jobTemplate"]["spec"]
    assert job["activeDeadlineSeconds"] >= run_timeout + worst


def test_env_file_names_real_config_keys_with_the_config_names(config):
    script = load_script()
    values = parse_env_file((K8S / "driver-config.env").read_text(encoding="utf-8"))
    expected_keys = {script.env_var_name(s, k) for s, k in script.OUTPUT_TO_CONFIG.values()}
    expected_keys |= {script.env_var_name(s, k) for s, k in script.ENVIRONMENT_SETTINGS}
    expected_keys |= {"EMR_DRIVER_WAREHOUSE_URL", script.SOURCE_URL_VARIABLE}
    assert set(values) == expected_keys
    for section, key in list(script.OUTPUT_TO_CONFIG.values()) + list(script.ENVIRONMENT_SETTINGS):
        assert key in config[section], f"{section}.{key} is not in config/pipeline.toml"
    for section, key in [
        ("aws", "region"),
        ("buckets", "raw"),
        ("buckets", "staging"),
        ("emr", "log_uri"),
        ("emr", "service_role"),
        ("emr", "instance_profile"),
        ("emr", "security_configuration"),
        ("emr", "release_label"),
    ]:
        assert values[script.env_var_name(section, key)] == config[section][key], (section, key)


def test_every_checkov_skip_annotation_has_a_reason():
    for name in ("namespace.yaml", "serviceaccount.yaml", "cronjob.yaml"):
        annotations = load_yaml(name)["metadata"].get("annotations", {})
        for key, value in annotations.items():
            if key.startswith("checkov.io/skip"):
                check, sep, reason = value.partition("=")
                assert re.fullmatch(r"CKV2?_K8S_\d+", check), (name, value)
                assert sep and len(reason) >= 20 and "=" not in reason, (name, value)


def test_env_file_parser_rejects_what_kustomize_would_misread():
    with pytest.raises(ValueError, match="not KEY=VALUE"):
        parse_env_file("emr_driver_buckets_raw=x\n")
    with pytest.raises(ValueError, match="set twice"):
        parse_env_file("A=1\nA=2\n")


def test_dockerfile_is_multi_stage_non_root_and_ships_the_runtime_files():
    text = (REPO / "Dockerfile").read_text(encoding="utf-8")
    stages = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", text, flags=re.MULTILINE)
    assert [name for _, name in stages] == ["builder", "runtime"]
    assert "COPY --from=builder" in text
    users = re.findall(r"^USER\s+(\S+)", text, flags=re.MULTILINE)
    assert users and not users[-1].startswith(("0", "root"))
    for folder in ("driver/templates", "config", "pyspark_jobs", "bootstrap", "sql"):
        assert re.search(rf"^COPY\s+{re.escape(folder)}\s", text, flags=re.MULTILINE), folder
    # No Java or Spark in the runtime image: EMR runs Spark.
    runtime = text.split("AS runtime", 1)[1]
    installs = " ".join(re.findall(r"apt-get install[^\n]*", runtime))
    assert "ca-certificates" in installs
    assert not re.search(r"jdk|jre|java|spark", installs, flags=re.IGNORECASE)


def test_dockerignore_keeps_build_output_and_venvs_out():
    ignored = (REPO / ".dockerignore").read_text(encoding="utf-8").split()
    for pattern in ("target/", ".venv", ".venv-*/", ".lake/", ".git"):
        assert pattern in ignored, pattern
