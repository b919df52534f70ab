"""Every benchmark runs, at a tiny size, inside ``make test``, so that ``make bench`` cannot rot.

The figures of a tiny run are not measurements and nothing here asserts a speed (speed is measured in
``bench/`` and written to ``docs/benchmarks.md``). What is asserted: every ``bench/bench_*.py`` declares a
``TINY_ARGS`` smoke run, each one exits 0 and prints its section's table, and the crypto section compares
with protocol v1 read from git when the history is there.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("bench")]

EXPECTED = {
    "crypto": "| decode + verify 1-of-5 |",
    "intake": "| SQLite | 1 |",
    "ledger": "|",
    "threshold": "| 2 of 3 |",
    "verifier": "Big record: 24 ballots",
}


def test_every_benchmark_runs_at_a_tiny_size(tmp_path: Path) -> None:
    from _pg import find_bindir

    scripts = {p.stem.removeprefix("bench_") for p in (ROOT / "bench").glob("bench_*.py")}
    assert scripts == set(EXPECTED), "a new benchmark needs its line here"
    if find_bindir() is None:  # bench_intake's PostgreSQL row and bench_ledger's need a server
        if os.environ.get("TVOTE_REQUIRE_ALL") == "1":
            pytest.fail("PostgreSQL is required (TVOTE_REQUIRE_ALL=1) but pg_ctl/initdb were not found")
        pytest.skip("no PostgreSQL server binaries")
    out = tmp_path / "bench.md"
    res = subprocess.run(
        [sys.executable, "bench/run_all.py", "--tiny", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    text = out.read_text(encoding="utf-8")
    for name, marker in EXPECTED.items():
        assert f"<!-- bench:{name} -->" in text and marker in text, (name, text[-2000:])
    git = ["git", "-C", str(ROOT), "cat-file", "-e", "8e33eb1"]
    has_history = subprocess.run(git, capture_output=True).returncode == 0
    if has_history:
        assert "v1 is protocol version 1" in text and "Protocol v1 (edwards25519" in text
    published = (ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    assert "--tiny: not a measurement" not in published
