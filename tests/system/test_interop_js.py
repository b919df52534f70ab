"""The known-answer vectors, re-checked by tvote's one JavaScript implementation of the protocol.

``web/test/check_vectors.mjs`` runs the booth's protocol library (``web/src/protocol/``: docs/protocol.md,
version 2, Parts I and II, on @noble/curves (ristretto255), @noble/hashes and @noble/ciphers) over every
vector file in tests/vectors/: it regenerates every disjunctive
proof and every ballot byte for byte from the SHAKE-256 stream the file names (docs/protocol.md
Appendix A), and reproduces every batch of §12 (equations, weights from ``weights_stream``, the combined
point, the failures found by bisection). This module installs web/'s pinned dependencies (``npm ci``, only
when node_modules is missing or older than package-lock.json), runs it on the real vectors, and runs it
on tampered copies to show that it fails, naming the vector.

Without node/npm the tests skip, unless ``TVOTE_REQUIRE_ALL=1`` (CI), where they fail.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from _node import web_node
from _tools import read_json

pytestmark = pytest.mark.xdist_group("interop")

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "web"
VECTORS = ROOT / "tests" / "vectors"
CHECKER = WEB / "test" / "check_vectors.mjs"

# Fewer checked vectors than this for one file means the checker silently skipped most of it.
MIN_PER_FILE = 5
_GROUP_LINE = re.compile(r"^(?P<file>[\w.-]+\.json) (?P<group>\S+): (?P<ok>\d+) ok, (?P<bad>\d+) failed$")


@pytest.fixture(scope="module")
def node() -> str:
    """Path of `node`, with web/node_modules installed from the lock file."""
    return web_node()


def _run(node: str, vectors: Path, *only: str) -> subprocess.CompletedProcess[str]:
    """Run the checker on a vector directory; with `only`, check just those files (the rest is context)."""
    command = [node, str(CHECKER), str(vectors), *only]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


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
    ballots_file = read_json(VECTORS / "ballots.json")
    ballots = ballots_file["ballots"]
    disjunctive = read_json(VECTORS / "disjunctive.json")
    cases = disjunctive["cases"]
    assert len(ballots) >= 3 and all(b["stream"] for b in ballots)
    assert groups[("ballots.json", "regenerated-from-stream")] == (len(ballots), 0), done.stdout
    assert groups[("disjunctive.json", "regenerated-from-stream")] == (len(cases), 0), done.stdout
    # §9.5: each invalid ballot fails the named check, and the order cases are reported as the document says.
    assert groups[("ballots.json", "invalid")] == (len(ballots_file["invalid"]), 0), done.stdout
    assert groups[("ballots.json", "verification-order")][1] == 0, done.stdout
    assert groups[("ballots.json", "verification-order")][0] >= 3, done.stdout
    # §8.2, §9.4, §1: every invalid_encoding proof or ballot is refused by the decoder, every invalid_lexical
    # text before decoding (plus the checker's own controls in each group).
    assert groups[("disjunctive.json", "invalid")] == (len(disjunctive["invalid"]) + 2, 0), done.stdout
    assert groups[("disjunctive.json", "invalid_encoding")] == (len(disjunctive["invalid_encoding"]) + 1, 0)
    assert groups[("ballots.json", "invalid_encoding")] == (len(ballots_file["invalid_encoding"]), 0)
    assert groups[("ballots.json", "invalid_lexical")] == (len(ballots_file["invalid_lexical"]) + 2, 0)


def test_js_implementation_reproduces_every_batch(real_run: subprocess.CompletedProcess[str]) -> None:
    """§12: each batch of batch.json and proofs.json is reproduced (weights from its stream, the combined
    point, the failures by bisection), and the ballots that verify are regenerated from their streams."""
    done = real_run
    assert done.returncode == 0, done.stdout + done.stderr
    groups = _group_counts(done.stdout)
    batches = read_json(VECTORS / "batch.json")["batches"]
    assert any(b["failures"] for b in batches) and any(not b["failures"] for b in batches)
    assert groups[("batch.json", "batches")] == (len(batches), 0), done.stdout
    # Ballot i of every batch is one ballot (stream batch/ballot/i): each distinct one that verifies, once.
    verified = {
        json.dumps(ballot, sort_keys=True)
        for b in batches
        for i, ballot in enumerate(b["ballots"])
        if all(f["index"] != i for f in b["failures"])
    }
    assert groups[("batch.json", "regenerated-from-stream")] == (len(verified), 0), done.stdout
    assert groups[("batch.json", "bisection")][0] >= 2 and groups[("batch.json", "bisection")][1] == 0
    proof_batches = read_json(VECTORS / "proofs.json")["batch"]
    assert groups[("proofs.json", "batch")] == (len(proof_batches) + 1, 0), done.stdout


def _tampered(tmp_path: Path, name: str, edit: object, *beside: str) -> Path:
    """A directory holding a copy of vector file `name`, edited, and unedited copies of the files `beside`
    (the checker takes any subset; batch.json needs ballots.json's election)."""
    target = tmp_path / "vectors"
    target.mkdir()
    for other in beside:
        shutil.copyfile(VECTORS / other, target / other)
    path = target / name
    shutil.copyfile(VECTORS / name, path)
    data = read_json(path)
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
    # verification failed too: the first group equation of T2.2 does not hold
    assert any("error: chaum-pedersen: v·G != R1 + c·X" in line for line in mismatches)


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


def test_js_checker_names_a_batch_whose_weights_stream_changed(node: str, tmp_path: Path) -> None:
    def edit(data: dict[str, object]) -> None:
        batch = data["batches"][1]  # type: ignore[index]
        batch["weights_stream"] = batch["weights_stream"] + "-other"

    done = _run(node, _tampered(tmp_path, "batch.json", edit, "ballots.json"), "batch.json")
    assert done.returncode == 1, done.stdout + done.stderr
    mismatches = [line for line in done.stdout.splitlines() if line.startswith("MISMATCH")]
    assert mismatches
    prefix = "MISMATCH batch.json batches[1 (bad-equation-in-the-middle)] "
    assert all(line.startswith(prefix) for line in mismatches), mismatches
    assert any("weights (from weights_stream) [0]: expected" in line for line in mismatches)  # the first read
    assert any(line.startswith(f"{prefix}combined: expected") for line in mismatches)
    groups = _group_counts(done.stdout)
    batches = read_json(VECTORS / "batch.json")["batches"]
    assert groups[("batch.json", "batches")] == (len(batches) - 1, 1)
    assert groups[("batch.json", "regenerated-from-stream")][1] == 0  # the ballots themselves still match
    assert not any(file == "ballots.json" for file, _ in groups)  # read as the election only


def test_js_checker_names_a_batch_failure_it_does_not_find(node: str, tmp_path: Path) -> None:
    def edit(data: dict[str, object]) -> None:
        data["batch"]["one_bad"]["failing"] = [3]  # type: ignore[index]

    done = _run(node, _tampered(tmp_path, "proofs.json", edit))
    assert done.returncode == 1, done.stdout + done.stderr
    mismatches = [line for line in done.stdout.splitlines() if line.startswith("MISMATCH")]
    expected = "MISMATCH proofs.json batch[one_bad (batch/proofs/one_bad)] failing: expected [3], got [2]"
    assert mismatches == [expected]


def test_js_checker_exits_2_on_unreadable_input(node: str, tmp_path: Path) -> None:
    (tmp_path / "group.json").write_text("{not json")
    done = _run(node, tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "cannot read vectors" in done.stderr
    shutil.copyfile(VECTORS / "hash.json", tmp_path / "group.json")
    done = _run(node, tmp_path, "batch.json")  # a file to check that is not there
    assert done.returncode == 2, done.stdout + done.stderr
    assert "no batch.json in" in done.stderr
