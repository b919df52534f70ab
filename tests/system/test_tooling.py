"""`make lint`, pyproject.toml and the README say the same thing about what is checked.

The Makefile's ``LINT_PACKAGES`` is what ruff (lint and format, with tests/) and ``mypy --strict`` (without
tests/) check; pyproject.toml's ``[tool.mypy] files`` must list exactly those, every folder of Python code
must be among them, and the README must name them.
"""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _lint_packages() -> list[str]:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    m = re.search(r"^LINT_PACKAGES\s*:=\s*(.+)$", makefile, re.MULTILINE)
    assert m, "Makefile: LINT_PACKAGES is gone"
    return m.group(1).split()


def _lint_recipe() -> list[str]:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    m = re.search(r"^lint:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert m, "Makefile: no lint target"
    return [line.strip() for line in m.group(1).splitlines()]


def test_make_lint_runs_ruff_format_and_mypy_on_every_package() -> None:
    assert _lint_recipe() == [
        "$(VENV)/bin/ruff check $(LINT_PACKAGES) tests",
        "$(VENV)/bin/ruff format --check $(LINT_PACKAGES) tests",
        "$(VENV)/bin/mypy --strict",
    ]


def test_pyproject_mypy_checks_what_make_lint_names() -> None:
    mypy = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["mypy"]
    assert mypy["strict"] is True
    assert mypy["files"] == _lint_packages()
    assert "packages" not in mypy and "modules" not in mypy  # one list, not two


def test_every_folder_of_python_code_is_linted() -> None:
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "ls-files", "*.py"], capture_output=True, text=True)
    except OSError:
        pytest.skip("no git")
    if out.returncode != 0:
        pytest.skip("not a git checkout")
    folders = {Path(f).parts[0] for f in out.stdout.split() if len(Path(f).parts) > 1}
    assert folders <= {*_lint_packages(), "tests"}, "a folder of Python code outside make lint"
    assert set(_lint_packages()) <= folders


def test_readme_says_what_make_lint_checks() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    m = re.search(r"`make lint` \(([^)]*)\)", readme)
    assert m, "README: the sentence about make lint is gone"
    said = " ".join(m.group(1).split())
    for tool in ("`ruff check`", "`ruff format --check`", "`mypy --strict`"):
        assert tool in said
    for package in (*_lint_packages(), "tests"):
        assert re.search(rf"\b{package}\b", said), f"README does not name {package} under make lint"
