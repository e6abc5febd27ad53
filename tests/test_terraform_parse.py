"""Static checks of terraform/ that need no provider: every .tf file parses (python-hcl2), the
modules have their fixed layout, every variable is typed and described, every output described,
every module README names its inputs and outputs, and every checkov skip carries its reason.

Run alone with `python -m pytest -q tests/test_terraform_parse.py`; scripts/check-terraform.sh
runs it before checkov.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import hcl2
import pytest

REPO = Path(__file__).resolve().parents[1]
TERRAFORM = REPO / "terraform"
MODULE_FILES = {"main.tf", "variables.tf", "outputs.tf", "versions.tf", "README.md"}
MODULES = sorted(p for p in (TERRAFORM / "modules").iterdir() if p.is_dir())
ROOTS = sorted(p for p in (TERRAFORM / "envs").iterdir() if p.is_dir())
# .terraform/ is what `terraform init` downloads: not the project's code.
TF_FILES = sorted(p for p in TERRAFORM.rglob("*.tf") if ".terraform" not in p.parts)
SKIP_COMMENT = re.compile(r"checkov:skip=(?P<rest>\S.*)$")
JUSTIFIED_SKIP = re.compile(r"^(?P<id>CKV2?_[A-Z0-9]+_\d+):(?P<reason>.{20,})$")


class TerraformParseError(Exception):
    """A .tf file that is not valid HCL; the message names the file."""


@functools.cache
def parse_tf(path: Path) -> dict:
    """Parse one .tf file, naming the file (relative to the repository) in any error."""
    try:
        with path.open(encoding="utf-8") as source:
            return hcl2.load(source)
    except Exception as error:  # python-hcl2 raises lark errors of many kinds
        try:
            name = path.relative_to(REPO)
        except ValueError:
            name = path
        raise TerraformParseError(f"{name}: not valid HCL: {error}") from error


def label(raw: str) -> str:
    """python-hcl2 keeps the quotes of block labels and string literals."""
    return raw[1:-1] if len(raw) >= 2 and raw[0] == raw[-1] == '"' else raw


def blocks(directory: Path, kind: str) -> dict[str, dict]:
    """Every `kind "name" {...}` block (variable, output) of a directory, by name."""
    found: dict[str, dict] = {}
    for path in sorted(directory.glob("*.tf")):
        for entry in parse_tf(path).get(kind, []):
            for name, body in entry.items():
                found[label(name)] = body
    return found


def test_the_tree_has_terraform_to_check():
    assert len(MODULES) >= 6, "expected the six modules under terraform/modules"
    assert ROOTS, "expected at least one environment under terraform/envs"
    assert TF_FILES


@pytest.mark.parametrize("path", TF_FILES, ids=lambda p: str(p.relative_to(TERRAFORM)))
def test_every_tf_file_parses(path: Path):
    assert isinstance(parse_tf(path), dict)


def test_a_broken_file_is_reported_by_name(tmp_path: Path):
    broken = tmp_path / "broken.tf"
    broken.write_text('resource "aws_s3_bucket" "x" {\n  bucket = \n', encoding="utf-8")
    with pytest.raises(TerraformParseError, match="broken.tf: not valid HCL"):
        parse_tf(broken)


@pytest.mark.parametrize("module", MODULES, ids=lambda p: p.name)
def test_module_has_exactly_the_standard_files(module: Path):
    assert {p.name for p in module.iterdir()} == MODULE_FILES


@pytest.mark.parametrize("directory", MODULES + ROOTS, ids=lambda p: str(p.relative_to(TERRAFORM)))
def test_every_variable_is_typed_and_described(directory: Path):
    variables = blocks(directory, "variable")
    assert variables, f"{directory} declares no variable"
    problems = [
        f"{name}: {what}"
        for name, body in variables.items()
        for what, ok in (
            ("no type", "type" in body),
            ("no description", len(label(str(body.get("description", "")))) >= 10),
        )
        if not ok
    ]
    assert not problems, f"{directory.relative_to(REPO)}: {problems}"


@pytest.mark.parametrize("directory", MODULES + ROOTS, ids=lambda p: str(p.relative_to(TERRAFORM)))
def test_every_output_is_described(directory: Path):
    outputs = blocks(directory, "output")
    assert outputs, f"{directory} declares no output"
    undescribed = [name for name, body in outputs.items() if not body.get("description")]
    where = directory.relative_to(REPO)
    assert not undescribed, f"{where}: outputs without description {undescribed}"


@pytest.mark.parametrize("module", MODULES, ids=lambda p: p.name)
def test_module_readme_lists_every_input_and_output(module: Path):
    readme = (module / "README.md").read_text(encoding="utf-8")
    names = list(blocks(module, "variable")) + list(blocks(module, "output"))
    missing = [name for name in names if f"`{name}`" not in readme]
    assert not missing, f"{module.relative_to(REPO)}/README.md does not document {missing}"


@pytest.mark.parametrize(
    "versions",
    [d / "versions.tf" for d in MODULES + ROOTS],
    ids=lambda p: str(p.relative_to(TERRAFORM)),
)
def test_aws_provider_is_pinned_to_major_5(versions: Path):
    terraform = parse_tf(versions)["terraform"][0]
    providers = {}
    for entry in terraform["required_providers"]:
        providers.update(entry)
    aws = providers["aws"]
    assert label(aws["source"]) == "hashicorp/aws"
    assert label(aws["version"]) == "~> 5.0"


def unjustified_skips(text: str) -> list[str]:
    """checkov:skip comments without a check id and a real reason after the colon."""
    bad = []
    for line in text.splitlines():
        found = SKIP_COMMENT.search(line)
        if found and not JUSTIFIED_SKIP.match(found.group("rest").strip()):
            bad.append(line.strip())
    return bad


@pytest.mark.parametrize("path", TF_FILES, ids=lambda p: str(p.relative_to(TERRAFORM)))
def test_every_checkov_skip_is_justified_in_place(path: Path):
    assert unjustified_skips(path.read_text(encoding="utf-8")) == []


def test_an_unjustified_skip_is_caught():
    assert unjustified_skips("  #checkov:skip=CKV_AWS_18\n") == ["#checkov:skip=CKV_AWS_18"]
    assert unjustified_skips("  #checkov:skip=CKV_AWS_18:ok\n") == ["#checkov:skip=CKV_AWS_18:ok"]
    assert unjustified_skips("  #checkov:skip=CKV_AWS_18:the target of the access logs\n") == []


def test_skipped_checks_are_listed_in_the_readme():
    readme = (TERRAFORM / "README.md").read_text(encoding="utf-8")
    skipped = set()
    for path in TF_FILES:
        for line in path.read_text(encoding="utf-8").splitlines():
            found = SKIP_COMMENT.search(line)
            if found:
                skipped.add(found.group("rest").split(":", 1)[0])
    missing = sorted(check for check in skipped if check not in readme)
    assert not missing, f"terraform/README.md does not explain the skipped checks {missing}"
