"""The verifier's structure holds (issue 12, points 2 and 5): one list of checks from which the docs' table
is generated, one way to make a check failure, and a handler registered for every event type."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from verifier import CHECKS, markdown_check_table
from verifier._checks import failure
from verifier._engine import EVENTS
from verifier._phases import BALLOT_TYPES, RANK

ROOT = Path(__file__).resolve().parents[2]


def test_the_docs_check_table_is_generated_from_the_code() -> None:
    doc = (ROOT / "docs" / "verifier.md").read_text(encoding="utf-8")
    assert markdown_check_table() in doc
    run = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "gen_check_table.py"), "--check"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert run.returncode == 0, run.stderr


def test_a_failure_takes_its_step_from_its_check_id() -> None:
    for c in CHECKS:
        f = failure(c.id, "m", entry=3)
        assert (f.step, f.check, f.entry) == (c.step, c.id, 3)
    with pytest.raises(KeyError):
        failure("no.such-check", "m")


def test_check_failures_are_made_one_way() -> None:
    """No module builds a ``CheckFailed`` with a step number of its own: only ``_checks.failure`` does (and
    the engine re-creates the failures a worker process sent back, ``CheckFailed(**fields)``)."""
    bad = []
    for path in sorted((ROOT / "verifier").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "CheckFailed"
                and path.name != "_checks.py"
                and not (len(node.args) == 0 and [k.arg for k in node.keywords] == [None])
            ):
                bad.append(f"{path.name}:{node.lineno}")
    assert bad == []


def test_every_event_type_has_a_handler() -> None:
    handled = set(EVENTS)
    assert handled == set(RANK) - BALLOT_TYPES - {"election.manifest"}
    assert {e.check for e in EVENTS.values()} <= {c.id for c in CHECKS}
