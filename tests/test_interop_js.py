"""The known-answer vectors, re-checked by an independent JavaScript implementation.

``tests/interop/check_vectors.mjs`` implements docs/protocol.md (Parts I and II) from the document
alone with @noble/curves, @noble/hashes and @noble/ciphers (the libraries of the browser booth) and
recomputes every vector file in tests/vectors/: it regenerates every disjunctive proof and every
ballot byte for byte from the SHAKE-256 stream the file names (docs/protocol.md Appendix A). This
module installs its pinned dependencies (``npm ci``, only when node_modules is missing or older than
package-lock.json), runs it on the real vectors, and runs it on tampered copies to show that it
fails, naming the vector.

Without node/npm the tests skip, unless ``TVOTE_REQUIRE_ALL=1`` (CI), where they fail.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.xdist_group("interop")

ROOT = Path(__file__).resolve().parent.parent
INTEROP = ROOT / "tests" / "interop"
VECTORS = ROOT / "tests" / "vectors"
CHECKER = INTEROP / "check_vectors.mjs"

# Fewer checked vectors than this for one file means the checker silently skipped most of it.
MIN_PER_FILE = 5
_GROUP_LINE = re.compile(r"^(?P<file>[\w.-]+\.json) (?P<group>\S+): (?P<ok>\d+) ok, (?P<bad>\d+) failed$")


def _unavailable(why: str) -> None:
    if os.environ.get("TVOTE_REQUIRE_ALL") == "1":
        pytest.fail(f"node/npm required (TVOTE_REQUIRE_ALL=1): {why}")
    pytest.skip(why)


@pytest.fixture(scope="module")
def node() -> str:
    """Path of `node`, with tests/interop/node_modules installed from the lock file."""
    node_bin, npm_bin = shutil.which("node"), shutil.which("npm")
    if node_bin is None or npm_bin is None:
        _unavailable("node and npm are not installed")
    assert node_bin is not None and npm_bin is not None
    lock = INTEROP / "package-lock.json"
    modules = INTEROP / "node_modules"
    marker = modules / ".package-lock.json"  # written by npm on every install
    if not marker.exists() or marker.stat().st_mtime < lock.stat().st_mtime:
        done = subprocess.run(
            [npm_bin, "ci", "--no-audit", "--no-fund"],
            cwd=INTEROP,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0:
            _unavailable(f"npm ci failed in tests/interop:\n{done.stdout}\n{done.stderr}")
    return node_bin


def _run(node: str, vectors: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([node, str(CHECKER), str(vectors)], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def real_run(node: str) -> subprocess.CompletedProcess[str]:
    """One run of the checker on the committed vectors, shared by the tests that read its report."""
    return _run(node, VECTORS)


def _group_counts(stdout: str) -> dict[tuple[str, str], tuple[int, int]]:
    """Per (vector file, group): (vectors matched, vectors failed)."""
    return {
        (m["file"], m["group"]): (int(m["ok"]), int(m["bad"]))
        for m in map(_GROUP_LINE.match, stdout.splitlines())
        if m
    }


def _counts(stdout: str) -> dict[str, tuple[int, int]]:
    """Per vector file: (vectors matched, vectors failed), summed over its groups."""
    counts: dict[str, tuple[int, int]] = {}
    for line in stdout.splitlines():
        m = _GROUP_LINE.match(line)
        if m:
            ok, bad = counts.get(m["file"], (0, 0))
            counts[m["file"]] = (ok + int(m["ok"]), bad + int(m["bad"]))
    return counts


def test_js_implementation_reproduces_every_vector_file(real_run: subprocess.CompletedProcess[str]) -> None:
    done = real_run
    assert done.returncode == 0, done.stdout + done.stderr
    counts = _counts(done.stdout)
    expected = sorted(p.name for p in VECTORS.glob("*.json"))
    assert sorted(counts) == expected, done.stdout
    for name, (ok, bad) in counts.items():
        assert bad == 0, (name, done.stdout)
        assert ok >= MIN_PER_FILE, (name, ok, done.stdout)
    assert "MISMATCH" not in done.stdout


def test_js_implementation_regenerates_ballots_and_proofs_from_their_streams(
    real_run: subprocess.CompletedProcess[str],
) -> None:
    """Every ballot of ballots.json and every disjunctive proof comes out of its stream byte for byte."""
    done = real_run
    assert done.returncode == 0, done.stdout + done.stderr
    groups = _group_counts(done.stdout)
    ballots = json.loads((VECTORS / "ballots.json").read_text())["ballots"]
    cases = json.loads((VECTORS / "disjunctive.json").read_text())["cases"]
    assert len(ballots) >= 3 and all(b["stream"] for b in ballots)
    assert groups[("ballots.json", "regenerated-from-stream")] == (len(ballots), 0), done.stdout
    assert groups[("disjunctive.json", "regenerated-from-stream")] == (len(cases), 0), done.stdout
    # §9.5: each invalid ballot fails the named check, and the order cases are reported as the document says.
    invalid = json.loads((VECTORS / "ballots.json").read_text())["invalid"]
    assert groups[("ballots.json", "invalid")] == (len(invalid), 0), done.stdout
    assert groups[("ballots.json", "verification-order")][1] == 0, done.stdout
    assert groups[("ballots.json", "verification-order")][0] >= 3, done.stdout


def _tampered(tmp_path: Path, name: str, edit: object) -> Path:
    """A directory holding only a copy of vector file `name`, edited (the checker takes any subset)."""
    target = tmp_path / "vectors"
    target.mkdir()
    path = target / name
    shutil.copyfile(VECTORS / name, path)
    data = json.loads(path.read_text())
    edit(data)  # type: ignore[operator]
    path.write_text(json.dumps(data, indent=1))
    return target


def _flip_hex(value: str, at: int) -> str:
    digit = "1" if value[at] == "0" else "0"
    return value[:at] + digit + value[at + 1 :]


def test_js_checker_names_a_flipped_proof_response(node: str, tmp_path: Path) -> None:
    def edit(data: dict[str, object]) -> None:
        proof = data["chaum_pedersen"][1]["proof"]  # type: ignore[index]
        proof["response"] = _flip_hex(proof["response"], 2)

    done = _run(node, _tampered(tmp_path, "proofs.json", edit))
    assert done.returncode == 1, done.stdout + done.stderr
    mismatches = [line for line in done.stdout.splitlines() if line.startswith("MISMATCH")]
    assert mismatches
    assert all(line.startswith("MISMATCH proofs.json chaum_pedersen[1 ") for line in mismatches), mismatches
    assert any("proof (produced)" in line for line in mismatches)
    assert any("chaum-pedersen: challenge mismatch" in line for line in mismatches)  # verification failed too


def test_js_checker_names_a_flipped_ciphertext(node: str, tmp_path: Path) -> None:
    def edit(data: dict[str, object]) -> None:
        ciphertext = data["cases"][3]["ciphertext"]  # type: ignore[index]
        ciphertext["a"] = _flip_hex(ciphertext["a"], 6)

    done = _run(node, _tampered(tmp_path, "elgamal.json", edit))
    assert done.returncode == 1, done.stdout + done.stderr
    mismatches = [line for line in done.stdout.splitlines() if line.startswith("MISMATCH")]
    assert mismatches
    assert all(line.startswith("MISMATCH elgamal.json cases[3] ") for line in mismatches), mismatches
    assert any("ciphertext.a: expected" in line for line in mismatches)


def test_js_checker_names_a_ballot_whose_stream_label_changed(node: str, tmp_path: Path) -> None:
    def edit(data: dict[str, object]) -> None:
        ballot = data["ballots"][1]  # type: ignore[index]
        ballot["stream"] = ballot["stream"] + "-other"

    done = _run(node, _tampered(tmp_path, "ballots.json", edit))
    assert done.returncode == 1, done.stdout + done.stderr
    mismatches = [line for line in done.stdout.splitlines() if line.startswith("MISMATCH")]
    assert mismatches
    prefix = "MISMATCH ballots.json regenerated-from-stream[1 (ballots/1-other)] "
    assert all(line.startswith(prefix) for line in mismatches), mismatches
    assert any("ballot_nonce: expected" in line for line in mismatches)  # the first draw already differs
    groups = _group_counts(done.stdout)
    assert groups[("ballots.json", "ballots")][1] == 0  # the ballot itself still verifies
    assert groups[("ballots.json", "regenerated-from-stream")][1] == 1


def test_js_checker_exits_2_on_unreadable_input(node: str, tmp_path: Path) -> None:
    (tmp_path / "group.json").write_text("{not json")
    done = _run(node, tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "cannot read vectors" in done.stderr
