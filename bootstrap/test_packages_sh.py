"""bootstrap/packages.sh, run with a fake `sudo` and `python3` first on PATH."""

from __future__ import annotations

import os
import re
import stat
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent / "packages.sh"
PINNED_FILE = Path(__file__).resolve().parent / "requirements-emr.txt"

FAKE_SUDO = """#!/usr/bin/env bash
echo "sudo $*" >> "$CALLS"
exec "$@"
"""
# Answers the version check like EMR's Python 3.9; `-m pip` exits with $PIP_EXIT.
FAKE_PYTHON = """#!/usr/bin/env bash
echo "python3 $*" >> "$CALLS"
case "$1" in
  -c) exit "${VERSION_CHECK_EXIT:-0}" ;;
  --version) echo "Python 3.9.16" ;;
  -m) if [ "$2" = pip ]; then
        for arg in "$@"; do [ -f "$arg" ] && cp "$arg" "$PIP_SAW"; done
        echo "pip output" ; exit "${PIP_EXIT:-0}"
      fi ;;
esac
"""


@pytest.fixture
def fake_bin(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in (("sudo", FAKE_SUDO), ("python3", FAKE_PYTHON)):
        path = bin_dir / name
        path.write_text(body)
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return bin_dir


def run(tmp_path, fake_bin, *args, **env):
    calls, saw = tmp_path / "calls.log", tmp_path / "pip_saw.txt"
    environment = {
        **os.environ,
        "PATH": f"{fake_bin}:{os.environ['PATH']}",
        "CALLS": str(calls),
        "PIP_SAW": str(saw),
        **env,
    }
    result = subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, env=environment, timeout=60
    )
    lines = calls.read_text().splitlines() if calls.exists() else []
    return result, lines, (saw.read_text() if saw.exists() else None)


def test_embedded_list_is_the_pinned_file():
    body = SCRIPT.read_text()
    embedded = re.search(r"<<'REQUIREMENTS'\n(.*?)REQUIREMENTS\n", body, re.S).group(1)
    assert embedded == PINNED_FILE.read_text()


def test_with_nothing_pinned_it_checks_python_and_installs_nothing(tmp_path, fake_bin):
    result, calls, _ = run(tmp_path, fake_bin)
    assert result.returncode == 0, result.stderr
    assert "no Python package to install" in result.stderr
    assert not any(c.startswith("sudo") for c in calls)
    assert any(c.startswith("python3 -c") for c in calls)


def test_installs_the_pinned_file_with_sudo_python3_pip(tmp_path, fake_bin):
    pins = tmp_path / "req.txt"
    pins.write_text("# comment\nxmltodict==1.0.4\n\n")
    result, calls, saw = run(tmp_path, fake_bin, str(pins))
    assert result.returncode == 0, result.stderr
    sudo_calls = [c for c in calls if c.startswith("sudo ")]
    assert len(sudo_calls) == 1
    assert sudo_calls[0].startswith("sudo python3 -m pip install ")
    assert " -r " in sudo_calls[0]
    assert saw == pins.read_text()
    # Idempotent: a second run does the same single install and succeeds.
    again, calls_after, _ = run(tmp_path, fake_bin, str(pins))
    assert again.returncode == 0
    assert len([c for c in calls_after if c.startswith("sudo ")]) == 2


def test_fails_loudly_when_pip_fails(tmp_path, fake_bin):
    pins = tmp_path / "req.txt"
    pins.write_text("xmltodict==1.0.4\n")
    result, _, _ = run(tmp_path, fake_bin, str(pins), PIP_EXIT="1")
    assert result.returncode != 0
    assert "pip could not install the pinned packages" in result.stderr


@pytest.mark.parametrize("line", ["xmltodict", "xmltodict>=1.0", "xmltodict==1.0 ; extra"])
def test_refuses_unpinned_requirements(tmp_path, fake_bin, line):
    pins = tmp_path / "req.txt"
    pins.write_text(line + "\n")
    result, calls, _ = run(tmp_path, fake_bin, str(pins))
    assert result.returncode != 0
    assert "is not pinned" in result.stderr
    assert not any(c.startswith("sudo") for c in calls)


def test_refuses_an_old_python(tmp_path, fake_bin):
    result, _, _ = run(tmp_path, fake_bin, VERSION_CHECK_EXIT="1")
    assert result.returncode != 0
    assert "too old" in result.stderr
