"""The driver's default configuration (config/pipeline.toml) and the Terraform of
terraform/envs/dev name the same things: buckets, EMR roles, security configuration, log URI,
release and region.

The test evaluates the names statically: it follows each output of the environment through
module outputs, module inputs, resource arguments, locals and variable defaults, and resolves
simple `${...}` string templates. Anything it cannot evaluate (a function call, a conditional,
a computed attribute such as an ARN) is an error, never a skip, so a refactoring that hides a
name from the check fails here and must be made resolvable again.

It also checks the table of scripts/config-from-terraform.py (which output feeds which config
key) against outputs.tf and config/pipeline.toml.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import hcl2
import pytest
import tomllib

REPO = Path(__file__).resolve().parents[1]
ENV_DIR = REPO / "terraform" / "envs" / "dev"
CONFIG = REPO / "config" / "pipeline.toml"

# The config keys whose values Terraform decides before anything is applied, so they must be
# equal in both places. (emr.cluster_id, emr.subnet_id and warehouse.redshift_copy_role_arn are
# known only after `terraform apply`: only their outputs are required to exist.)
NAMES_FIXED_BEFORE_APPLY = [
    # The project tag on created clusters (the driver's IAM policy requires project = var.project).
    ("pipeline", "name"),
    ("aws", "region"),
    ("buckets", "raw"),
    ("buckets", "staging"),
    ("emr", "log_uri"),
    ("emr", "service_role"),
    ("emr", "instance_profile"),
    ("emr", "security_configuration"),
    ("emr", "release_label"),
]

REFERENCE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z_][A-Za-z0-9_-]*)+$")
INTERPOLATION = re.compile(r"\$\{([^{}]*)\}")
MAX_DEPTH = 40


class Unresolvable(Exception):
    """An expression the static resolver does not evaluate; the message says where."""


def load_script():
    path = REPO / "scripts" / "config-from-terraform.py"
    spec = importlib.util.spec_from_file_location("config_from_terraform", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def unquote(raw: str) -> str:
    return raw[1:-1] if len(raw) >= 2 and raw[0] == raw[-1] == '"' else raw


@dataclass
class Directory:
    """The blocks of one Terraform directory (a root or a module), merged over its .tf files."""

    path: Path
    variables: dict = field(default_factory=dict)
    locals: dict = field(default_factory=dict)
    outputs: dict = field(default_factory=dict)
    modules: dict = field(default_factory=dict)
    resources: dict = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> Directory:
        directory = cls(path)
        for tf in sorted(path.glob("*.tf")):
            with tf.open(encoding="utf-8") as source:
                parsed = hcl2.load(source)
            for entry in parsed.get("variable", []):
                directory.variables.update({unquote(k): v for k, v in entry.items()})
            for entry in parsed.get("locals", []):
                directory.locals.update({k: v for k, v in entry.items() if not k.startswith("__")})
            for entry in parsed.get("output", []):
                directory.outputs.update({unquote(k): v for k, v in entry.items()})
            for entry in parsed.get("module", []):
                directory.modules.update({unquote(k): v for k, v in entry.items()})
            for entry in parsed.get("resource", []):
                for rtype, named in entry.items():
                    for name, body in named.items():
                        directory.resources[(unquote(rtype), unquote(name))] = body
        return directory


@dataclass
class Scope:
    """A directory being evaluated, with the inputs its caller gave it (None for the root)."""

    directory: Directory
    inputs: dict | None = None
    caller: Scope | None = None

    def where(self) -> str:
        try:
            return str(self.directory.path.relative_to(REPO))
        except ValueError:
            return str(self.directory.path)


def resolve(raw, scope: Scope, depth: int = 0):
    """The value of a python-hcl2 expression: literal, string template or plain reference."""
    if depth > MAX_DEPTH:
        raise Unresolvable(f"{scope.where()}: reference chain too deep (a cycle?)")
    if isinstance(raw, (bool, int, float)):
        return raw
    if not isinstance(raw, str):
        raise Unresolvable(f"{scope.where()}: cannot evaluate {raw!r} statically")
    whole = INTERPOLATION.fullmatch(raw)
    if whole:
        return resolve_reference(whole.group(1).strip(), scope, depth + 1)
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        template = raw[1:-1]
        if "%{" in template or "\\" in template:
            raise Unresolvable(
                f"{scope.where()}: template directives and escapes are not supported: {raw}"
            )
        return INTERPOLATION.sub(
            lambda m: str(resolve_reference(m.group(1).strip(), scope, depth + 1)), template
        )
    raise Unresolvable(f"{scope.where()}: cannot evaluate {raw!r} statically")


def resolve_reference(expression: str, scope: Scope, depth: int):
    if not REFERENCE.match(expression):
        raise Unresolvable(
            f"{scope.where()}: `{expression}` is not a plain reference (function call, "
            "operator, index or conditional); the drift check cannot evaluate it"
        )
    parts = expression.split(".")
    head = parts[0]
    directory = scope.directory
    if head == "var" and len(parts) == 2:
        return resolve_variable(parts[1], scope, depth)
    if head == "local" and len(parts) == 2:
        if parts[1] not in directory.locals:
            raise Unresolvable(f"{scope.where()}: no local `{parts[1]}`")
        return resolve(directory.locals[parts[1]], scope, depth + 1)
    if head == "module" and len(parts) == 3:
        return resolve_module_output(parts[1], parts[2], scope, depth)
    if head not in ("data", "each", "count", "path", "terraform", "self") and len(parts) == 3:
        return resolve_resource_argument(parts[0], parts[1], parts[2], scope, depth)
    raise Unresolvable(
        f"{scope.where()}: `{expression}` is not something the drift check evaluates"
    )


def resolve_variable(name: str, scope: Scope, depth: int):
    directory = scope.directory
    if name not in directory.variables:
        raise Unresolvable(f"{scope.where()}: no variable `{name}`")
    if scope.inputs is not None and name in scope.inputs:
        # A module input is an expression of the caller, evaluated in the caller's scope.
        return resolve(scope.inputs[name], scope.caller, depth + 1)
    if "default" not in directory.variables[name]:
        raise Unresolvable(f"{scope.where()}: variable `{name}` has no default and no input")
    return resolve(directory.variables[name]["default"], scope, depth + 1)


def resolve_module_output(module: str, output: str, scope: Scope, depth: int):
    directory = scope.directory
    if module not in directory.modules:
        raise Unresolvable(f"{scope.where()}: no module `{module}`")
    call = directory.modules[module]
    source = unquote(call["source"])
    if not source.startswith("."):
        raise Unresolvable(f"{scope.where()}: module `{module}` is not local ({source})")
    child = Directory.load((directory.path / source).resolve())
    inputs = {
        k: v for k, v in call.items() if k not in ("source", "version") and not k.startswith("__")
    }
    child_scope = Scope(child, inputs, scope)
    if output not in child.outputs:
        raise Unresolvable(f"{child_scope.where()}: no output `{output}`")
    return resolve(child.outputs[output]["value"], child_scope, depth + 1)


def resolve_resource_argument(rtype: str, name: str, argument: str, scope: Scope, depth: int):
    resources = scope.directory.resources
    if (rtype, name) not in resources:
        raise Unresolvable(f"{scope.where()}: no resource `{rtype}.{name}`")
    body = resources[(rtype, name)]
    if argument not in body:
        raise Unresolvable(
            f"{scope.where()}: `{rtype}.{name}.{argument}` is computed by the provider, "
            "not an argument; output a name that is set from a variable or local"
        )
    return resolve(body[argument], scope, depth + 1)


def output_value(directory: Directory, output: str):
    if output not in directory.outputs:
        raise Unresolvable(f"{directory.path}: no output `{output}`")
    return resolve(directory.outputs[output]["value"], Scope(directory))


def drift(env_dir: Path, config: dict, table: dict) -> list[str]:
    """Every disagreement between the environment's outputs and the config, as messages."""
    by_key = {target: output for output, target in table.items()}
    directory = Directory.load(env_dir)
    problems = []
    for section, key in NAMES_FIXED_BEFORE_APPLY:
        output = by_key.get((section, key))
        if output is None:
            problems.append(f"{section}.{key}: no output feeds it in config-from-terraform.py")
            continue
        terraform_value = output_value(directory, output)
        config_value = config[section][key]
        if terraform_value != config_value:
            problems.append(
                f"{section}.{key}: config/pipeline.toml has {config_value!r} but the output "
                f"`{output}` of {env_dir.name} is {terraform_value!r}"
            )
    return problems


@pytest.fixture(scope="module")
def config() -> dict:
    with CONFIG.open("rb") as source:
        return tomllib.load(source)


@pytest.fixture(scope="module")
def table() -> dict:
    return load_script().OUTPUT_TO_CONFIG


def test_terraform_names_equal_the_default_config(config, table):
    assert drift(ENV_DIR, config, table) == []


def test_every_output_the_config_needs_exists(table):
    outputs = Directory.load(ENV_DIR).outputs
    missing = [output for output in table if output not in outputs]
    assert not missing, f"terraform/envs/dev/outputs.tf lacks {missing}"


def test_every_mapped_config_key_exists_in_the_config(config, table):
    unknown = [f"{s}.{k}" for s, k in table.values() if s not in config or k not in config[s]]
    assert not unknown, f"config-from-terraform.py maps to keys pipeline.toml lacks: {unknown}"


def test_the_expected_names_are_resolved(config, table):
    # Guards the resolver itself: it must reach the literal names, not echo the config.
    directory = Directory.load(ENV_DIR)
    assert output_value(directory, "raw_bucket") == "movie-analytics-dev-raw"
    assert output_value(directory, "emr_log_uri") == "s3://movie-analytics-dev-raw/emr-logs/"
    assert output_value(directory, "emr_instance_profile") == "movie-analytics-dev-emr-instance"


def copy_terraform(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "terraform", tmp_path / "terraform")
    return tmp_path / "terraform" / "envs" / "dev"


def test_a_drifted_variable_default_is_reported(tmp_path, config, table):
    env_dir = copy_terraform(tmp_path)
    variables = env_dir / "variables.tf"
    text = variables.read_text(encoding="utf-8")
    assert 'default     = "movie-analytics"' in text
    variables.write_text(text.replace('default     = "movie-analytics"', 'default     = "movies"'))
    problems = drift(env_dir, config, table)
    assert any(p.startswith("buckets.raw:") and "'movies-dev-raw'" in p for p in problems), problems
    assert any(p.startswith("emr.log_uri:") for p in problems), problems


def test_a_drifted_resource_argument_inside_a_module_is_reported(tmp_path, config, table):
    env_dir = copy_terraform(tmp_path)
    module_main = env_dir.parent.parent / "modules" / "emr" / "main.tf"
    text = module_main.read_text(encoding="utf-8")
    profile_name = "name = var.instance_profile_name\n  role = aws_iam_role.instance.name"
    assert profile_name in text
    module_main.write_text(
        text.replace(profile_name, 'name = "nodes"\n  role = aws_iam_role.instance.name')
    )
    problems = drift(env_dir, config, table)
    assert problems == [
        "emr.instance_profile: config/pipeline.toml has 'movie-analytics-dev-emr-instance' but "
        "the output `emr_instance_profile` of dev is 'nodes'"
    ]


def test_a_missing_mapping_is_reported(config, table):
    partial = {k: v for k, v in table.items() if v != ("emr", "service_role")}
    assert drift(ENV_DIR, config, partial) == [
        "emr.service_role: no output feeds it in config-from-terraform.py"
    ]


def test_an_expression_it_cannot_evaluate_fails_loudly(tmp_path, config, table):
    env_dir = copy_terraform(tmp_path)
    outputs = env_dir / "outputs.tf"
    text = outputs.read_text(encoding="utf-8")
    original = "value       = module.s3.raw_bucket_name"
    assert original in text
    outputs.write_text(text.replace(original, "value       = lower(local.raw_bucket_name)"))
    with pytest.raises(Unresolvable, match="not a plain reference"):
        drift(env_dir, config, table)


def test_a_computed_attribute_fails_loudly():
    directory = Directory.load(ENV_DIR)
    with pytest.raises(Unresolvable, match="computed by the provider"):
        output_value(directory, "redshift_copy_role_arn")
