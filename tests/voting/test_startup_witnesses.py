"""The ``witnesses`` start-up check (issue 11): production refuses fewer than 3 witnesses or a quorum below 2;
development and test accept a manifest without witnesses and log that the ledger is unwitnessed."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import pytest
from _service_util import manifest_dict

from voting._manifest import parse_manifest
from voting._settings import Settings
from voting._startup import run_checks

LONG = "x" * 48


def _manifest(n: int, quorum: int) -> object:
    m = manifest_dict(3, 2)
    keys = [{"name": f"w{i}", "bls_public_key": f"{i:02x}" * 48, "pop": f"{i:02x}" * 96} for i in range(n)]
    m["witnesses"] = {"quorum": quorum, "keys": keys}
    return parse_manifest(m)


def _witness_problems(environment: str, tmp_path: Path, n: int, quorum: int) -> list[str]:
    s = Settings(environment=environment, data_dir=tmp_path / "d", admin_token=LONG)
    problems = run_checks(s, _manifest(n, quorum), now=dt.datetime.now(dt.UTC))
    return [p.message for p in problems if p.check == "witnesses"]


@pytest.mark.parametrize(("n", "quorum"), [(0, 0), (1, 1), (2, 2), (3, 1), (5, 1)])
def test_production_refuses_too_few_witnesses_or_a_low_quorum(tmp_path: Path, n: int, quorum: int) -> None:
    (msg,) = _witness_problems("production", tmp_path, n, quorum)
    assert f"it has {n} witnesses, quorum {quorum}" in msg


@pytest.mark.parametrize(("n", "quorum"), [(3, 2), (3, 3), (5, 3)])
def test_production_accepts_two_of_three_and_more(tmp_path: Path, n: int, quorum: int) -> None:
    assert _witness_problems("production", tmp_path, n, quorum) == []


def test_development_accepts_no_witnesses_and_says_unwitnessed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="tvote.startup"):
        assert _witness_problems("development", tmp_path, 0, 0) == []
    assert any("UNWITNESSED" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="tvote.startup"):
        assert _witness_problems("development", tmp_path, 3, 2) == []
    assert not any("UNWITNESSED" in r.getMessage() for r in caplog.records)
