"""``demo_out``: the output directory of one real ``tvote demo --voters 12`` run (record, commission root,
pins), made once per test session (per xdist worker) and shared by the verifier's tests of the demo's
record. The tests only read it: a test that edits the record copies it first."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def demo_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo-12")
    exe = Path(sys.executable).parent / "tvote"
    p = subprocess.run(
        [str(exe), "demo", "--out", str(out), "--voters", "12"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    return out
