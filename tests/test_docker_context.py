"""scripts/check-docker-context.py: what the Dockerfile's build stage copies, read the way
Docker reads it (stages, WORKDIR, COPY sources, .dockerignore), and whether that set holds
every file the crate compiles in. The compile itself runs in scripts/test.sh (it needs the
built target/); these tests check the parsing and the static include check, in seconds.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def load_script():
    path = REPO / "scripts" / "check-docker-context.py"
    spec = importlib.util.spec_from_file_location("check_docker_context", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


script = load_script()


def compiled_in_files() -> set[str]:
    """Every file driver/src includes with include_str!/include_bytes!, relative to the repo."""
    found = set()
    for source in (REPO / "driver" / "src").rglob("*.rs"):
        text = source.read_text(encoding="utf-8")
        for match in re.finditer(r'include_(?:str|bytes)!\(\s*"([^"]+)"\s*\)', text):
            target = (source.parent / match.group(1)).resolve()
            found.add(target.relative_to(REPO).as_posix())
    return found


def assembled(tmp_path: Path, dockerfile_text: str) -> set[str]:
    stage = script.build_stage(script.parse_stages(dockerfile_text))
    rules = script.read_ignore(REPO / ".dockerignore")
    copied = script.assemble(REPO, stage, rules, tmp_path)
    workdir = stage.workdir.rstrip("/") + "/"
    return {c[len(workdir) :] for c in copied if c.startswith(workdir)}


def test_the_crate_includes_files_outside_driver():
    # Guards the check: if nothing outside driver/ were compiled in, it would prove nothing.
    outside = {f for f in compiled_in_files() if not f.startswith("driver/")}
    assert {"sql/warehouse/tables.sql", "config/pipeline.toml"} <= outside, outside


def test_the_build_stage_copies_everything_the_crate_compiles_in(tmp_path):
    files = assembled(tmp_path, (REPO / "Dockerfile").read_text(encoding="utf-8"))
    missing = sorted(compiled_in_files() - files)
    assert not missing, f"the Dockerfile's build stage does not copy {missing}"
    assert {"Cargo.toml", "Cargo.lock", "driver/Cargo.toml", "driver/src/lib.rs"} <= files


def test_a_build_stage_without_sql_is_caught(tmp_path):
    text = (REPO / "Dockerfile").read_text(encoding="utf-8").replace("COPY sql ./sql\n", "")
    files = assembled(tmp_path, text)
    missing = compiled_in_files() - files
    assert "sql/warehouse/tables.sql" in missing


def test_the_build_command_is_the_stages_own():
    stage = script.build_stage(
        script.parse_stages((REPO / "Dockerfile").read_text(encoding="utf-8"))
    )
    assert stage.name == "builder" and stage.workdir == "/src"
    assert script.cargo_command(stage) == [
        "cargo",
        "build",
        "--release",
        "--locked",
        "-p",
        "emr-driver",
    ]


def test_copy_forms_and_stages(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.txt").write_text("x")
    (tmp_path / "a" / "skip.log").write_text("log")
    (tmp_path / "b.txt").write_text("b")
    (tmp_path / ".dockerignore").write_text("**/*.log\n")
    text = """\
# syntax=docker/dockerfile:1
ARG V=1
FROM rust:1 AS builder
WORKDIR /src
COPY b.txt a/x.txt ./files/
COPY --chown=1:1 a \\
     ./tree
RUN --mount=type=cache,target=/x cargo build --release && true
FROM debian AS runtime
COPY --from=builder /src/x /x
COPY b.txt /never
"""
    stage = script.build_stage(script.parse_stages(text))
    rules = script.read_ignore(tmp_path / ".dockerignore")
    out = tmp_path / "out"
    copied = script.assemble(tmp_path, stage, rules, out)
    assert sorted(copied) == ["/src/files/b.txt", "/src/files/x.txt", "/src/tree/x.txt"]
    assert (out / "src" / "tree" / "x.txt").read_text() == "x"
    assert script.cargo_command(stage) == ["cargo", "build", "--release"]


@pytest.mark.parametrize(
    ("path", "rules", "ignored"),
    [
        ("target/release/x", [(False, "target")], True),
        ("driver/target", [(False, "target")], False),
        ("a/b/__pycache__/m.pyc", [(False, "**/__pycache__")], True),
        ("x.pem", [(False, "*.pem")], True),
        ("certs/x.pem", [(False, "*.pem")], False),
        ("docs/a.md", [(False, "docs"), (True, "docs/a.md")], False),
        ("docs/b.md", [(False, "docs"), (True, "docs/a.md")], True),
        (".venv-checkov/bin/python", [(False, ".venv-*")], True),
    ],
)
def test_dockerignore_rules_follow_docker(path, rules, ignored):
    assert script.is_ignored(path, rules) is ignored


def test_a_missing_copy_source_is_an_error(tmp_path):
    stage = script.build_stage(
        script.parse_stages("FROM x AS b\nWORKDIR /s\nCOPY nope ./\nRUN cargo build\n")
    )
    with pytest.raises(script.DockerContextError, match="nope"):
        script.assemble(tmp_path, stage, [], tmp_path / "out")


def test_every_download_of_the_dockerfile_is_verified():
    text = (REPO / "Dockerfile").read_text(encoding="utf-8")
    assert "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem" in text
    assert script.unverified_downloads(text) == []
    # The digest is a build argument without a default: a build without it fails (the RUN
    # guard before the ADD says which argument to pass).
    assert re.search(r"^ARG RDS_CA_BUNDLE_SHA256$", text, re.MULTILINE)
    assert "--checksum=sha256:${RDS_CA_BUNDLE_SHA256}" in text


@pytest.mark.parametrize(
    ("dockerfile", "problem"),
    [
        ("FROM x\nADD https://h/f.pem /f\n", "is not verified"),
        ("FROM x\nADD --checksum=sha384:abc https://h/f.pem /f\n", "must be sha256"),
        ("FROM x\nADD --checksum=sha256:1234 https://h/f.pem /f\n", "not a sha256 digest"),
        ("FROM x\nADD --checksum=sha256:${D} https://h/f.pem /f\n", "not an ARG of this stage"),
        # A global ARG (before FROM) is not seen inside the stage unless declared again.
        ("ARG D\nFROM x\nADD --checksum=sha256:${D} https://h/f.pem /f\n", "not an ARG of this"),
        ("FROM x\nARG D=todo\nADD --checksum=sha256:${D} https://h/f /f\n", "defaults to 'todo'"),
    ],
)
def test_an_unverified_download_is_caught(dockerfile, problem):
    (message,) = script.unverified_downloads(dockerfile)
    assert problem in message, message


def test_a_pinned_download_passes():
    digest = "0" * 64
    for text in (
        f"FROM x\nADD --checksum=sha256:{digest} https://h/f.pem /f\n",
        f"FROM x\nARG D={digest}\nADD --checksum=sha256:$D --chmod=0444 https://h/f.pem /f\n",
        "FROM x\nARG D\nADD --checksum=sha256:${D} https://h/f.pem /f\nCOPY a b\n",
    ):
        assert script.unverified_downloads(text) == [], text
