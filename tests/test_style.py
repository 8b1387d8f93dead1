"""The code style is checked in CI: ruff's lint rules and its formatter, as configured.

``pyproject.toml`` selects the rules (pyflakes, pycodestyle, import order, bugbear, NumPy,
pydocstyle with the Google convention, and mccabe complexity at most 10); ``ruff format`` keeps
one layout. These tests run the pinned ruff of the ``dev`` extra over the repository, so a
change that breaks the style fails ``pytest`` (and so CI), not only a pre-commit hook.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _ruff(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("ruff")
    cmd = [exe] if exe else [sys.executable, "-m", "ruff"]
    return subprocess.run([*cmd, *args], cwd=ROOT, capture_output=True, text=True, check=False)


@pytest.fixture(scope="module", autouse=True)
def _ruff_installed() -> None:
    """Fail (not skip) without ruff: the dev extra installs it, and a skip would hide the check."""
    probe = _ruff("--version")
    assert probe.returncode == 0, f"ruff is not installed (pip install -e '.[dev]'): {probe.stderr}"


def test_ruff_lint_rules_hold_everywhere():
    """``ruff check .`` finds nothing (lint, docstrings, complexity <= 10)."""
    result = _ruff("check", "--no-cache", "--output-format", "concise", ".")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_ruff_format_leaves_every_file_unchanged():
    """``ruff format --check .`` finds no file it would reformat."""
    result = _ruff("format", "--no-cache", "--check", ".")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_the_configuration_enforces_docstrings_and_complexity():
    """The rules the project promises are the rules configured (not silently dropped)."""
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    lint = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["ruff"][
        "lint"
    ]
    assert {"D", "C90"} <= set(lint["select"])
    assert lint["pydocstyle"]["convention"] == "google"
    assert lint["mccabe"]["max-complexity"] == 10
