"""Every benchmark runs, at a tiny size, inside ``make test``, so that ``make bench`` cannot rot.

The figures of a tiny run are not measurements and nothing here asserts a speed (speed is measured in
``bench/`` and written to ``docs/benchmarks.md``). What is asserted: every ``bench/bench_*.py`` declares a
``TINY_ARGS`` smoke run, each one exits 0 and prints its section's table, and the crypto and verifier
sections compare with protocol v1 read from git when the history is there. One test per benchmark, in no
xdist group, so that ``make test``'s workers share them out. The booth's benchmark drives Chromium, so it runs
in its own test, beside the browser tests (xdist group "browser").
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

EXPECTED = {
    "booth": "| `/vote` | `encrypt-worker.js` ",
    "crypto": "| decode + verify 1-of-5 |",
    "intake": "| SQLite | 1 |",
    "ledger": "|",
    "million": "| verify, Dask LocalCluster 2 workers |",
    "threshold": "| 2 of 3 |",
    "verifier": "Big record: 24 ballots",
}


TINY = sorted(set(EXPECTED) - {"booth"})  # the booth's: test_the_booth_benchmark_drives_chromium


def test_every_benchmark_has_its_line_here() -> None:
    scripts = {p.stem.removeprefix("bench_") for p in (ROOT / "bench").glob("bench_*.py")}
    assert scripts == set(EXPECTED), "a new benchmark needs its line here"


def test_the_published_benchmarks_are_no_tiny_run() -> None:
    published = (ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    assert "--tiny: not a measurement" not in published


@pytest.mark.slow
@pytest.mark.parametrize("name", TINY)
def test_every_benchmark_runs_at_a_tiny_size(name: str, tmp_path: Path) -> None:
    """One test per benchmark, so that xdist spreads them over its workers."""
    from _pg import find_bindir

    if name in ("intake", "ledger") and find_bindir() is None:  # their PostgreSQL rows need a server
        if os.environ.get("TVOTE_REQUIRE_ALL") == "1":
            pytest.fail("PostgreSQL is required (TVOTE_REQUIRE_ALL=1) but pg_ctl/initdb were not found")
        pytest.skip("no PostgreSQL server binaries")
    out = tmp_path / "bench.md"
    res = subprocess.run(
        [sys.executable, "bench/run_all.py", "--tiny", "--out", str(out), name],
        cwd=ROOT, capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    text = out.read_text(encoding="utf-8")
    assert f"<!-- bench:{name} -->" in text and EXPECTED[name] in text, (name, text[-2000:])
    assert set(re.findall(r"<!-- bench:(\w+) -->", text)) == {name}, text[-2000:]
    # bench_crypto and bench_verifier compare with protocol v1 read from git, when the history is there
    v1 = {"crypto": "v1 is protocol version 1", "verifier": "Protocol v1 (edwards25519"}
    git = ["git", "-C", str(ROOT), "cat-file", "-e", "8e33eb1"]
    if name in v1 and subprocess.run(git, capture_output=True).returncode == 0:
        assert v1[name] in text, text[-2000:]
    if name == "crypto":
        # bench_crypto's native section: measured when the extension is installed, else it says how to get it
        assert "### Native engine (`tvote_native`" in text
        from crypto import native_available

        assert ("| native batch check, batches of" in text) == native_available()


@pytest.mark.slow
@pytest.mark.xdist_group("browser")
def test_the_booth_benchmark_drives_chromium(tmp_path: Path) -> None:
    """bench_booth.py at its tiny size: Chromium really encrypts on /vote (a tracking code, the worker
    answered), the page's scripts are measured, and the slow-4G loads really were slowed."""
    from _booth_site import BUILT_STATIC, CHROMIUM

    if not CHROMIUM.exists() or not (BUILT_STATIC.parent / "assets.json").exists():
        if os.environ.get("TVOTE_REQUIRE_ALL") == "1":
            pytest.fail(f"required (TVOTE_REQUIRE_ALL=1): {CHROMIUM} and the built booth (make web)")
        pytest.skip(f"{CHROMIUM} is not installed or the booth is not built")
    out = tmp_path / "bench.md"
    res = subprocess.run(
        [sys.executable, "bench/run_all.py", "--tiny", "--out", str(out), "booth"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    text = out.read_text(encoding="utf-8")
    assert "<!-- bench:booth -->" in text and EXPECTED["booth"] in text, text
    assert "--tiny: a smoke run, not a measurement" in text, text
    # one encryption per CPU rate, timed click → tracking code, part of it in the worker
    for rate in ("4×", "1×"):
        m = re.search(
            rf"^\| {rate} \| 1 \| (\d+) ms \| \d+ ms \| \d+ ms \| (\d+) ms \| (-?\d+) ms \|$", text, re.M
        )
        assert m, (rate, text)
        total, worker, rest = (int(g) for g in m.groups())
        assert 0 < worker < total and rest > 0 and abs(total - worker - rest) <= 1, m.group(0)
    # every page's JavaScript, gzipped smaller than served; /vote's includes the worker it started
    for page in ("/", "/vote", "/check", "/vote/oidc-callback"):
        m = re.search(rf"^\| `{re.escape(page)}` \| (.+) \| ([\d.]+) KB \| ([\d.]+) KB \|$", text, re.M)
        assert m and "tvote-protocol.js" in m.group(1), (page, text)
        assert 1 < float(m.group(3)) < float(m.group(2)), m.group(0)
    assert "Chromium fetched on `/vote`, through the encryption: `encrypt-worker.js`" in text, text
    # slow 4G: nothing can paint before the page's own request has paid the preset's 562.5 ms latency
    loads = re.findall(
        r"^\| `(/|/vote)` \| [^|]+ \| 1 \| ([\d.]+) s / [\d.]+ s \| ([\d.]+) s / [\d.]+ s \|$", text, re.M
    )
    assert len(loads) == 4, text
    for _, fcp, shown in loads:
        assert 0.56 <= float(fcp) and 0.56 <= float(shown) < 60, loads
