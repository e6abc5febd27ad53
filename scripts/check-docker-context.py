#!/usr/bin/env python3
"""Check that the Dockerfile's build stage has everything the crate compiles in, and that every
file the Dockerfile downloads is verified against a sha256 digest.

No Docker engine runs here, so this does what the build stage does, without Docker: it reads
the Dockerfile, takes the stage that runs `cargo build`, assembles exactly the files its COPY
lines copy (minus what .dockerignore keeps out of the build context) into a scratch folder laid
out like the stage's WORKDIR, and runs the stage's own build command there:

    cargo build --release --locked -p emr-driver

with CARGO_TARGET_DIR pointing at the repository's target/ (dependencies are already built
there, so only the crate itself compiles). A file that the crate reads with include_str! and
that the stage does not copy fails the build here exactly as it would fail `docker build`.

    scripts/check-docker-context.py [--dockerfile Dockerfile] [--keep]

The scratch folder is target/docker-context/ (fixed, so cargo's fingerprints stay valid from
one run to the next and a rerun costs seconds); file times are preserved for the same reason.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

REPO = Path(__file__).resolve().parents[1]


class DockerContextError(Exception):
    """The Dockerfile cannot be checked; the message says why."""


@dataclass
class Copy:
    sources: list[str]
    dest: str
    line: int


@dataclass
class Stage:
    name: str | None
    workdir: str = "/"
    copies: list[Copy] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)


def logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, instruction) with backslash continuations joined, comments out."""
    lines: list[tuple[int, str]] = []
    current: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if current and stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if not current:
            start = number
        if stripped.endswith("\\"):
            current.append(stripped[:-1].strip())
            continue
        current.append(stripped)
        lines.append((start, " ".join(part for part in current if part)))
        current = []
    if current:
        lines.append((start, " ".join(current)))
    return lines


def parse_stages(text: str) -> list[Stage]:
    stages: list[Stage] = []
    for number, line in logical_lines(text):
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            match = re.search(r"\s+AS\s+(\S+)\s*$", rest, re.IGNORECASE)
            stages.append(Stage(name=match.group(1) if match else None))
            continue
        if not stages:
            continue  # ARG before the first FROM
        stage = stages[-1]
        if keyword == "WORKDIR":
            path = rest.strip()
            stage.workdir = str(PurePosixPath(stage.workdir) / path)
        elif keyword in ("COPY", "ADD"):
            stage.copies.append(parse_copy(rest, number, keyword))
        elif keyword == "RUN":
            stage.runs.append(rest)
    return stages


def parse_copy(rest: str, number: int, keyword: str) -> Copy:
    if rest.lstrip().startswith("["):
        raise DockerContextError(f"line {number}: the JSON form of {keyword} is not supported here")
    words = shlex.split(rest)
    flags = [w for w in words if w.startswith("--")]
    args = [w for w in words if not w.startswith("--")]
    if any(f.startswith("--from") for f in flags):
        return Copy(sources=[], dest="", line=number)  # from another stage: not the context
    if len(args) < 2:
        raise DockerContextError(f"line {number}: {keyword} needs a source and a destination")
    if keyword == "ADD" and any(re.match(r"^https?://", s) for s in args[:-1]):
        # A download, not the context.
        args = [s for s in args[:-1] if not re.match(r"^https?://", s)] + [args[-1]]
        if len(args) < 2:
            return Copy(sources=[], dest="", line=number)
    return Copy(sources=args[:-1], dest=args[-1], line=number)


# --- downloads ------------------------------------------------------------------------------

SHA256 = re.compile(r"^[0-9a-f]{64}$")
ARG_REFERENCE = re.compile(r"^\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?$")


def unverified_downloads(text: str) -> list[str]:
    """Every `ADD <http(s) URL>` whose content the build does not verify, as messages: each
    needs `--checksum=sha256:<digest>`, the digest either 64 hex digits or `${NAME}` of an ARG
    of the same stage. An ARG without a default must be given (`--build-arg NAME=...`); one
    with a default must default to a digest."""
    problems = []
    args: dict[str, str | None] = {}
    for number, line in logical_lines(text):
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            args = {}  # ARGs are scoped to their stage
            continue
        if keyword == "ARG":
            name, _, default = rest.strip().partition("=")
            args[name.strip()] = default.strip().strip('"') if default else None
            continue
        if keyword != "ADD" or rest.lstrip().startswith("["):
            continue
        words = shlex.split(rest)
        urls = [w for w in words if re.match(r"^https?://", w)]
        if not urls:
            continue
        checksums = [w.split("=", 1)[1] for w in words if w.startswith("--checksum=")]
        where = f"line {number}: ADD {urls[0]}"
        if not checksums:
            problems.append(f"{where} is not verified: add --checksum=sha256:<digest>")
            continue
        algorithm, _, digest = checksums[0].partition(":")
        if algorithm != "sha256":
            problems.append(f"{where}: the checksum must be sha256, not {algorithm!r}")
            continue
        reference = ARG_REFERENCE.match(digest)
        if reference:
            name = reference.group(1)
            if name not in args:
                problems.append(f"{where}: ${{{name}}} is not an ARG of this stage")
            elif args[name] is not None and not SHA256.match(args[name]):
                problems.append(
                    f"{where}: ARG {name} defaults to {args[name]!r}, not a sha256 digest"
                )
        elif not SHA256.match(digest):
            problems.append(f"{where}: {digest!r} is not a sha256 digest (64 hex digits)")
    return problems


def build_stage(stages: Sequence[Stage]) -> Stage:
    for stage in stages:
        if any("cargo build" in run for run in stage.runs):
            return stage
    raise DockerContextError("no stage of the Dockerfile runs `cargo build`")


def cargo_command(stage: Stage) -> list[str]:
    """The stage's `cargo build ...` command, as words."""
    for run in stage.runs:
        # Drop RUN flags (--mount=...) and keep the command up to the next shell operator.
        text = re.sub(r"^(--\S+\s+)+", "", run.strip())
        match = re.search(r"cargo build[^&;|]*", text)
        if match:
            return shlex.split(match.group(0))
    raise DockerContextError("the build stage has no `cargo build` command")


# --- .dockerignore ---------------------------------------------------------------------------


def read_ignore(path: Path) -> list[tuple[bool, str]]:
    """(negated, pattern) per line, cleaned the way Docker cleans them."""
    if not path.exists():
        return []
    rules = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        if negated:
            line = line[1:].strip()
        line = str(PurePosixPath(line.lstrip("/"))).rstrip("/")
        rules.append((negated, line))
    return rules


def _pattern_regex(pattern: str) -> re.Pattern:
    parts = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            parts.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            parts.append(".*")
            i += 2
        elif pattern[i] == "*":
            parts.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            parts.append("[^/]")
            i += 1
        else:
            parts.append(re.escape(pattern[i]))
            i += 1
    return re.compile("^" + "".join(parts) + "$")


def is_ignored(relative: str, rules: Sequence[tuple[bool, str]]) -> bool:
    """Docker's rule: the last matching pattern decides; a pattern that matches a parent
    folder matches everything under it."""
    path = PurePosixPath(relative)
    candidates = [str(path)] + [str(p) for p in path.parents if str(p) != "."]
    ignored = False
    for negated, pattern in rules:
        regex = _pattern_regex(pattern)
        if any(regex.match(c) for c in candidates):
            ignored = not negated
    return ignored


# --- assembling the stage's files --------------------------------------------------------------


def context_files(context: Path, source: str, rules) -> Iterable[tuple[Path, str]]:
    """(absolute path, path relative to the source root) of every file a COPY source names."""
    matches = (
        sorted(context.glob(source)) if any(c in source for c in "*?[") else [context / source]
    )
    if not matches or not all(m.exists() for m in matches):
        raise DockerContextError(f"COPY source {source!r} is not in the build context {context}")
    for match in matches:
        rel_root = match.relative_to(context).as_posix()
        if is_ignored(rel_root, rules):
            continue
        if match.is_file():
            yield match, match.name
            continue
        for dirpath, dirnames, filenames in os.walk(match):
            here = Path(dirpath)
            dirnames[:] = [
                d
                for d in dirnames
                if not is_ignored((here / d).relative_to(context).as_posix(), rules)
            ]
            for name in filenames:
                file = here / name
                if not is_ignored(file.relative_to(context).as_posix(), rules):
                    yield file, file.relative_to(match).as_posix()


def assemble(context: Path, stage: Stage, rules, root: Path) -> list[str]:
    """Copies the stage's COPY set under `root` (the image's /); returns what was copied."""
    copied = []
    for copy in stage.copies:
        if not copy.sources:
            continue
        dest = PurePosixPath(copy.dest)
        if not dest.is_absolute():
            dest = PurePosixPath(stage.workdir) / dest
        into_dir = copy.dest.endswith("/") or len(copy.sources) > 1
        for source in copy.sources:
            for file, rel in context_files(context, source, rules):
                is_dir_source = (
                    (context / source).is_dir() if not any(c in source for c in "*?[") else False
                )
                if is_dir_source:
                    target = dest / rel
                elif into_dir:
                    target = dest / file.name
                else:
                    target = dest
                out = root / str(target).lstrip("/")
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(file, out)
                copied.append(str(target))
    return copied


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dockerfile", default=str(REPO / "Dockerfile"))
    parser.add_argument("--context", default=str(REPO))
    parser.add_argument("--scratch", default=str(REPO / "target" / "docker-context"))
    parser.add_argument(
        "--target-dir", default=os.environ.get("CARGO_TARGET_DIR", str(REPO / "target"))
    )
    parser.add_argument("--list", action="store_true", help="only list the assembled files")
    args = parser.parse_args(argv)
    context = Path(args.context).resolve()
    scratch = Path(args.scratch).resolve()
    try:
        text = Path(args.dockerfile).read_text(encoding="utf-8")
        unverified = unverified_downloads(text)
        if unverified:
            raise DockerContextError(
                "downloads the build does not verify:\n  " + "\n  ".join(unverified)
            )
        stages = parse_stages(text)
        stage = build_stage(stages)
        command = cargo_command(stage)
        rules = read_ignore(context / ".dockerignore")
        if scratch.exists():
            shutil.rmtree(scratch)
        scratch.mkdir(parents=True)
        copied = assemble(context, stage, rules, scratch)
    except DockerContextError as error:
        print(f"check-docker-context: {error}", file=sys.stderr)
        return 2
    workdir = scratch / stage.workdir.lstrip("/")
    print(f"check-docker-context: {len(copied)} file(s) of the build stage in {workdir}")
    if args.list:
        print("\n".join(sorted(copied)))
        return 0
    print(f"check-docker-context: {' '.join(command)} (CARGO_TARGET_DIR={args.target_dir})")
    env = dict(os.environ, CARGO_TARGET_DIR=args.target_dir)
    result = subprocess.run(command, cwd=workdir, env=env, check=False)
    if result.returncode != 0:
        print(
            "check-docker-context: the build stage does not compile with only the files it copies: "
            "a file the crate includes (include_str!/include_bytes!) is missing from its COPY "
            "lines or excluded by .dockerignore",
            file=sys.stderr,
        )
        return 1
    print("check-docker-context: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
