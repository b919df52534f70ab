"""tvote-verify as a program: import isolation, exit codes, --json, --since, --receipt, executors
(local processes and a real Dask LocalCluster), the privacy screen, and a random single-byte mutation
property (the counting rule against its reference: tests/ledger/test_counting.py)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner
from verifier_fixture import Election, build_election

from ledger.merkle import inclusion_proof, leaf_hash
from tests.strategies import privacy_entries
from verifier import Options, RecordUnreadable, verify_record
from verifier._privacy import scan_entry, scan_payload
from verifier.cli import EXIT_INVALID, EXIT_OK, EXIT_RECEIPT_MISMATCH, EXIT_UNREADABLE, app

pytestmark = pytest.mark.xdist_group("verifier")
ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = ("voting", "kiosk", "fastapi", "sqlmodel", "sqlalchemy", "uvicorn")


@pytest.fixture(scope="module")
def election() -> Election:
    return build_election(seed=2)


@pytest.fixture(scope="module")
def valid(election: Election, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return election.write(tmp_path_factory.mktemp("valid-cli") / "record")


def roots_args(valid: Path) -> list[str]:
    return ["--trust-root", str(valid.parent / "record-root.pem")]


# ------------------------------------------------------------------------------------ import isolation


def test_verifier_never_imports_the_server_side() -> None:
    code = (
        "import sys, verifier, verifier.cli, verifier._engine, verifier._ballots, verifier._extras, "
        "verifier._ledger, verifier._pdf\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})\n"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == ""


def test_verifier_sources_name_no_server_module() -> None:
    pat = re.compile(rf"^\s*(from|import)\s+({'|'.join(FORBIDDEN)})\b", re.M)
    offenders = [
        p.name for p in (ROOT / "verifier").glob("*.py") if pat.search(p.read_text(encoding="utf-8"))
    ]
    assert offenders == []


# ------------------------------------------------------------------------------------- CLI, exit codes


def test_result_labels_from_an_untrusted_manifest_are_sanitised() -> None:
    from verifier._manifest import _label

    assert _label({"ja": "市長", "en": "Mayor"}) == "市長 (Mayor)"
    assert _label({"ja": "a\x1b[31mred\x07", "en": "b\n\tc"}) == "a[31mred (b c)"  # no escape codes
    assert _label({"ja": "x" * 500, "en": "y"}).endswith("…")
    assert len(_label({"ja": "x" * 500, "en": "y"}) or "") == 120
    for bad in (None, "Mayor", {"ja": "市長"}, {"ja": 1, "en": "Mayor"}, {"ja": " ", "en": "Mayor"}):
        assert _label(bad) is None


def test_cli_valid_record_exit_0_and_json(valid: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    res = CliRunner().invoke(app, [str(valid), "--json", str(out), *roots_args(valid)])
    assert res.exit_code == EXIT_OK, res.output
    assert "VALID" in res.output and "superseded by re-votes 1" in res.output
    # the result table shows the manifest's names beside the ids
    assert "市長 (Mayor)" in res.output and "候補2 (Candidate 2)" in res.output
    rep = json.loads(out.read_text())
    assert rep["valid"] is True and rep["format"] == "tvote-verify-report/1"
    assert rep["summary"]["overridden"] == 1
    assert [c["status"] for c in rep["checks"][:23]] == ["pass"] * 23


def test_cli_invalid_record_exit_1_names_check_and_entry(
    election: Election, valid: Path, tmp_path: Path
) -> None:
    rec = tmp_path / "record"
    shutil.copytree(valid, rec)
    lines = (rec / "entries.jsonl").read_bytes().split(b"\n")
    lines[12], lines[13] = lines[13], lines[12]
    (rec / "entries.jsonl").write_bytes(b"\n".join(lines))
    out = tmp_path / "r.json"
    res = CliRunner().invoke(app, [str(rec), "--json", str(out), *roots_args(valid)])
    assert res.exit_code == EXIT_INVALID
    assert "V2" in res.output and "ledger entry 12" in res.output
    rep = json.loads(out.read_text())
    assert rep["valid"] is False
    assert any(f["step"] == 2 and f["entry"] == 12 for f in rep["failures"])


def test_cli_unreadable_record_exit_2(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, [str(tmp_path / "nothing-here")])
    assert res.exit_code == EXIT_UNREADABLE


def test_console_script_runs(valid: Path) -> None:
    exe = Path(sys.executable).parent / "tvote-verify"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "verifier.cli"]
    p = subprocess.run([*cmd, str(valid), *roots_args(valid)], capture_output=True, text=True, cwd=ROOT)
    assert p.returncode == 0, p.stdout + p.stderr


# ------------------------------------------------------------------------------------ --since, --receipt


def test_since_accepts_an_extension_and_rejects_a_rewrite(
    election: Election, valid: Path, tmp_path: Path
) -> None:
    k = next(i for i, (t, _) in enumerate(election.events) if t == "voting.closed")
    old = election.write(tmp_path / "old" / "record", election.events[:k])
    res = CliRunner().invoke(app, [str(valid), "--since", str(old), *roots_args(valid)])
    assert res.exit_code == EXIT_OK, res.output
    # a rewritten history: same length, one ballot replaced by a re-encryption of another choice
    evs = [(t, dict(p)) for t, p in election.events[:k]]
    i = [j for j, (t, _) in enumerate(evs) if t == "ballot.cast"][1]
    evs[i] = evs[i + 1]
    forged = election.write(tmp_path / "forged" / "record", evs)
    res = CliRunner().invoke(app, [str(valid), "--since", str(forged), *roots_args(valid)])
    assert res.exit_code == EXIT_INVALID
    assert "V24" in res.output


def _receipt(rec: Path, index: int) -> dict[str, Any]:
    lines = (rec / "entries.jsonl").read_bytes().split(b"\n")[:-1]
    cp = json.loads((rec / "checkpoints.jsonl").read_bytes().split(b"\n")[-2])
    hashes = [leaf_hash(x) for x in lines]
    p = json.loads(lines[index])["payload"]
    return {
        "kind": "cast",
        "election_id": p["election_id"],
        "ballot_hash": p["ballot_hash"],
        "tracking_code": p["tracking_code"],
        "leaf_index": index,
        "entry_hash": hashes[index].hex(),
        "checkpoint": cp["note"],
        "inclusion_proof": [h.hex() for h in inclusion_proof(index, hashes[: cp["size"]])],
    }


def test_receipt_found_and_tampered_receipt_rejected(election: Election, valid: Path, tmp_path: Path) -> None:
    i = [j for j, (t, _) in enumerate(election.events) if t == "ballot.cast"][3]
    rc = _receipt(valid, i)
    good = tmp_path / "receipt.json"
    good.write_text(json.dumps(rc))
    res = CliRunner().invoke(app, [str(valid), "--receipt", str(good), *roots_args(valid)])
    assert res.exit_code == EXIT_OK, res.output
    rc["tracking_code"] = "ZZZZ-ZZZZ-ZZZZ-ZZZZ"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(rc))
    res = CliRunner().invoke(app, [str(valid), "--receipt", str(bad), *roots_args(valid)])
    assert res.exit_code == EXIT_RECEIPT_MISMATCH and "V25" in res.output
    rc = _receipt(valid, i)
    rc["leaf_index"] = i + 1
    bad.write_text(json.dumps(rc))
    res = CliRunner().invoke(app, [str(valid), "--receipt", str(bad), *roots_args(valid)])
    assert res.exit_code == EXIT_RECEIPT_MISMATCH and "V25" in res.output


def test_a_pending_receipt_is_checked_against_the_record(
    election: Election, valid: Path, tmp_path: Path
) -> None:
    """Checkpoints on a schedule: a receipt kept before the next checkpoint has no checkpoint and no proof.
    The verifier checks it against the record's entry at leaf_index instead of crashing on the nulls."""
    i = [j for j, (t, _) in enumerate(election.events) if t == "ballot.cast"][3]
    rc = _receipt(valid, i) | {"checkpoint": None, "inclusion_proof": None}
    path = tmp_path / "pending.json"
    path.write_text(json.dumps(rc))
    res = CliRunner().invoke(app, [str(valid), "--receipt", str(path), *roots_args(valid)])
    assert res.exit_code == EXIT_OK, res.output
    assert "pending" in res.output
    for change in (
        {"entry_hash": "00" * 32},
        {"leaf_index": i + 1},
        {"leaf_index": 10**6},
        {"tracking_code": "x"},
    ):
        path.write_text(json.dumps(rc | change))
        res = CliRunner().invoke(app, [str(valid), "--receipt", str(path), *roots_args(valid)])
        assert res.exit_code == EXIT_RECEIPT_MISMATCH and "V25" in res.output, (change, res.output)
    path.write_text(json.dumps(rc | {"inclusion_proof": []}))  # a checkpoint missing but a proof: malformed
    res = CliRunner().invoke(app, [str(valid), "--receipt", str(path), *roots_args(valid)])
    assert res.exit_code == EXIT_RECEIPT_MISMATCH and "V25" in res.output, res.output


# ------------------------------------------------------------------------------------- hostile JSON

#: issue 9, finding 3: about 200 KB, nested 100,001 deep; it used to kill tvote-verify with a signal
DEEP = b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}"


def _tvote_verify(*args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).parent / "tvote-verify"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "verifier.cli"]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, cwd=ROOT, timeout=300)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_deeply_nested_record_line_is_invalid_v1_not_a_crash(
    election: Election, valid: Path, tmp_path: Path, workers: str
) -> None:
    """The real program, in its own process (a crash would be a negative exit status): the deep line is
    refused before it is decoded and reported as V1 record.format at that entry; the rest is checked."""
    i = [j for j, (t, _) in enumerate(election.events) if t == "ballot.cast"][2]
    rec = tmp_path / "record"
    shutil.copytree(valid, rec)
    lines = (rec / "entries.jsonl").read_bytes().split(b"\n")
    lines[i] = DEEP
    (rec / "entries.jsonl").write_bytes(b"\n".join(lines))
    out = tmp_path / "report.json"
    p = _tvote_verify(str(rec), "--json", str(out), "--workers", workers, *roots_args(valid))
    assert p.returncode == EXIT_INVALID, (p.returncode, p.stdout[-2000:], p.stderr[-2000:])
    rep = json.loads(out.read_text())
    v1 = [f for f in rep["failures"] if f["step"] == 1 and f["check"] == "record.format"]
    assert any(f["entry"] == i and "deeper than 65" in f["message"] for f in v1), v1
    # an over-long line (beyond the 1 MiB entry limit) is V1 at its entry too, without reading it whole
    lines[i] = b'{"a":"' + b"x" * (3 << 20) + b'"}'
    (rec / "entries.jsonl").write_bytes(b"\n".join(lines))
    p = _tvote_verify(str(rec), "--json", str(out), "--workers", workers, *roots_args(valid))
    assert p.returncode == EXIT_INVALID, (p.returncode, p.stderr[-2000:])
    rep = json.loads(out.read_text())
    assert any(f["step"] == 1 and f["entry"] == i and "exceeds" in f["message"] for f in rep["failures"])
    assert rep["entries"] == len(lines) - 1  # the long line was skipped as one line (the last one is empty)


def test_a_deeply_nested_receipt_is_unreadable_not_a_crash(valid: Path, tmp_path: Path) -> None:
    receipt = tmp_path / "receipt.json"
    receipt.write_bytes(b'{"a":' + b"[" * 30_000 + b"]" * 30_000 + b"}")  # under a receipt's 64 KiB
    p = _tvote_verify(str(valid), "--receipt", str(receipt), *roots_args(valid))
    assert p.returncode == EXIT_UNREADABLE, (p.returncode, p.stdout[-2000:], p.stderr[-2000:])
    assert "deeper than 65" in p.stdout + p.stderr


# --------------------------------------------------------------------------------------------- executors


def _same(a: Any, b: Any) -> None:
    assert a.statuses == b.statuses and a.summary == b.summary and a.results == b.results
    assert [f.to_dict() for f in a.failures] == [f.to_dict() for f in b.failures]


def test_process_pool_gives_the_serial_report(election: Election, valid: Path) -> None:
    opts = dict(pdf_trust_roots=(election.root_certificate,), batch_size=2)
    _same(verify_record(valid, Options(**opts)), verify_record(valid, Options(workers=2, **opts)))


def test_dask_local_cluster_gives_the_serial_report(election: Election, valid: Path, tmp_path: Path) -> None:
    from distributed import Client, LocalCluster

    # a record with one bad ballot proof, so failures travel back from the workers too
    evs = [(t, json.loads(json.dumps(p))) for t, p in election.events]
    i = [j for j, (t, _) in enumerate(evs) if t == "ballot.cast"][5]
    sel = evs[i][1]["ballot"]["contests"][1]["proof"]
    sel["challenges"][0], sel["challenges"][1] = sel["challenges"][1], sel["challenges"][0]
    rec = election.write(tmp_path / "record", election.retally(evs))
    opts = dict(pdf_trust_roots=(election.root_certificate,), batch_size=2)
    serial = verify_record(rec, Options(**opts))
    assert any(f.step == 13 and f.entry == i for f in serial.failures)
    with (
        LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        _same(serial, verify_record(rec, Options(dask_client=client, **opts)))


# ---------------------------------------------------------------------------------------------- privacy


def test_privacy_screen_passes_protocol_values() -> None:
    payload = {
        "opened_at": "2027-04-18T00:00:00Z",
        "h": "12" * 32,
        "tracking_code": "1234-5678-9ABC-DEFG",
        "auth": {"method": "oidc+face", "face": {"decision": True, "engine": "tvote-face/2"}},
        "seq": 3,
    }
    assert list(scan_payload("ballot.cast", payload)) == []
    assert list(scan_payload("trustee.registered", {"name": "University of Tsukuba"})) == []
    assert list(scan_payload("election.manifest", {"voting_period": {"day": "2027-04-25"}})) == []


def test_privacy_screen_flags_each_kind() -> None:
    for p in (
        {"name": "x"},
        {"birth_date": "x"},
        {"a": "203.0.113.9"},
        {"a": 123456789012},
        {"a": "〒305-8577"},
        {"a": "平成元年3月2日"},
        {"a": "fe80::1"},
    ):
        assert list(scan_payload("ballot.cast", p)), p


@settings(max_examples=400, deadline=None)
@given(privacy_entries())
def test_privacy_text_screen_reports_what_the_walk_reports(entry: tuple[str, dict[str, Any], bytes]) -> None:
    """scan_entry (which skips the walk when the entry's text shows nothing suspicious) reports exactly
    what scan_payload reports, on entries written as the record writes them (RFC 8785) and on other JSON
    texts of the same payload (escapes, whitespace)."""
    etype, payload, line = entry
    assert list(scan_entry(etype, line, payload)) == list(scan_payload(etype, payload))


# ------------------------------------------------------------------------------- random byte mutation


FILES = ["entries.jsonl", "checkpoints.jsonl", "record.json", "result.pdf"]


@settings(
    max_examples=int(__import__("os").environ.get("TVOTE_MUTATION_EXAMPLES", "25")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_any_single_byte_change_is_detected(
    election: Election, valid: Path, tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    name = data.draw(st.sampled_from(FILES), label="file")
    raw = (valid / name).read_bytes()
    pos = data.draw(st.integers(0, len(raw) - 1), label="position")
    new = data.draw(st.integers(0, 255).filter(lambda b: b != raw[pos]), label="byte")
    rec = tmp_path_factory.mktemp("mut") / "record"
    shutil.copytree(valid, rec)
    (rec / name).write_bytes(raw[:pos] + bytes([new]) + raw[pos + 1 :])
    try:
        r = verify_record(rec, Options(pdf_trust_roots=(election.root_certificate,)))
    except RecordUnreadable:
        return
    assert not r.ok, f"undetected change of {name}[{pos}] to {new:#04x}"
    shutil.rmtree(rec.parent, ignore_errors=True)


def test_changed_issued_at_is_detected(election: Election, valid: Path, tmp_path: Path) -> None:
    """Regression (verifier team, issue 3): issued_at was not signed, so changing it went unnoticed. The
    time is now the signed note's ``time`` line and checkpoints.jsonl's issued_at must equal it."""
    raw = (valid / "checkpoints.jsonl").read_bytes()
    stamps = re.findall(rb'"issued_at":(\d+)', raw)
    assert stamps and all(b"time " + t + b"\\n" in raw for t in stamps)  # the signed note carries it
    for earlier in (int(stamps[0]) - 100_000_000, int(stamps[0]) - 1):
        rec = tmp_path / f"record-{earlier}"
        shutil.copytree(valid, rec)
        (rec / "checkpoints.jsonl").write_bytes(
            raw.replace(b'"issued_at":' + stamps[0], b'"issued_at":%d' % earlier, 1)
        )
        r = verify_record(rec, Options(pdf_trust_roots=(election.root_certificate,)))
        assert not r.ok and 3 in failed_steps(r), [f.operator_message for f in r.failures]


# ------------------------------------------------------------------------------------- the real demo


@pytest.mark.slow
def test_demo_election_record_verifies(demo_out: Path) -> None:
    """The record of the real election service (``tvote demo``, the session's run in
    tests/verifier/conftest.py) passes every check. Its commission root
    is only in the demo's private data directory unless the demo exports it beside the record, so
    without it exactly V22 (the PDF's trust) may fail."""
    roots = [c for c in ("commission-root.pem", "commission-chain.pem") if (demo_out / c).exists()]
    from cryptography import x509

    certs = tuple(x509.load_pem_x509_certificates((demo_out / roots[0]).read_bytes())) if roots else ()
    r = verify_record(demo_out / "record", Options(pdf_trust_roots=certs, workers=2))
    assert failed_steps(r) <= ({22} if not roots else set()), [f.operator_message for f in r.failures]
    assert r.summary["cast"] > 0 and r.results


def failed_steps(r: Any) -> set[int]:
    return set(r.failed_steps())
