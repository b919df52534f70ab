"""V30 and V31 on the record of the real election service (issue 14): ``tvote demo`` runs a polling place
with two enrolled kiosks that sign their requests and ballots through ``voting.clients.kiosk``, one revoked
halfway and one closed; the verifier, which shares none of that code, checks its kiosk entries and ballots.
Raw edits of that record (its log key is the demo's) break the chain (V2) and the kiosk check they target."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from cryptography import x509

from verifier import Options, Report, verify_record

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("verifier")]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def demo(demo_out: Path) -> Path:
    """The session's ``tvote demo --voters 12`` output (tests/verifier/conftest.py); read only."""
    return demo_out


def _verify(demo: Path, record: Path) -> Report:
    roots = tuple(x509.load_pem_x509_certificates((demo / "commission-root.pem").read_bytes()))
    return verify_record(record, Options(pdf_trust_roots=roots))


def _entries(record: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (record / "entries.jsonl").read_bytes().splitlines()]


def _kiosk_casts(entries: list[dict[str, Any]], kiosk_id: str) -> list[int]:
    return [
        e["index"]
        for e in entries
        if e["type"] == "ballot.cast" and e["payload"].get("kiosk", {}).get("kiosk_id") == kiosk_id
    ]


def test_the_demo_polling_place_verifies(demo: Path) -> None:
    r = _verify(demo, demo / "record")
    assert r.ok, [f.operator_message for f in r.failures]
    assert r.statuses[30] == r.statuses[31] == "pass"
    entries = _entries(demo / "record")
    types = [e["type"] for e in entries]
    assert types.count("kiosk.enrolled") == 2 and types.count("kiosk.opened") == 2
    assert types.count("kiosk.revoked") == 1 and types.count("kiosk.closed") == 1
    revoked = types.index("kiosk.revoked")
    stolen = entries[revoked]["payload"]["kiosk_id"]
    assert _kiosk_casts(entries, stolen) and max(_kiosk_casts(entries, stolen)) < revoked
    closed = entries[types.index("kiosk.closed")]["payload"]
    assert closed["ballots_cast"] == len(_kiosk_casts(entries, closed["kiosk_id"])) > 0


def _rewrite(demo: Path, tmp: Path, edit: Any) -> tuple[Path, list[bytes]]:
    record = tmp / "record"
    shutil.copytree(demo / "record", record)
    lines = (record / "entries.jsonl").read_bytes().split(b"\n")
    edit(lines)
    (record / "entries.jsonl").write_bytes(b"\n".join(lines))
    return record, lines


def test_a_stolen_kiosks_ballot_moved_after_its_revocation_fails_v31(demo: Path, tmp_path: Path) -> None:
    entries = _entries(demo / "record")
    revoked = next(e["index"] for e in entries if e["type"] == "kiosk.revoked")
    stolen = entries[revoked]["payload"]["kiosk_id"]
    ballot = max(_kiosk_casts(entries, stolen))

    def swap(lines: list[bytes]) -> None:  # each keeps its index field (else it is not read at all)
        a, b = json.loads(lines[ballot]), json.loads(lines[revoked])
        a["index"], b["index"] = revoked, ballot
        lines[ballot], lines[revoked] = rfc8785.dumps(b), rfc8785.dumps(a)

    record, _ = _rewrite(demo, tmp_path, swap)
    r = _verify(demo, record)
    assert 31 in r.failed_steps() and 2 in r.failed_steps()
    v31 = [(f.entry, f.message) for f in r.failures if f.step == 31]
    assert v31 == [(revoked, f"kiosk {stolen} was revoked at entry {ballot}, before this ballot")]


def test_a_forged_kiosk_signature_in_the_demo_record_fails_v31(demo: Path, tmp_path: Path) -> None:
    entries = _entries(demo / "record")
    closed = next(e for e in entries if e["type"] == "kiosk.closed")["payload"]
    ballot = _kiosk_casts(entries, closed["kiosk_id"])[0]
    sig = entries[ballot]["payload"]["kiosk"]["signature"]
    forged = ("0" if sig[0] != "0" else "1") + sig[1:]

    def forge(lines: list[bytes]) -> None:
        lines[ballot] = lines[ballot].replace(sig.encode(), forged.encode())

    record, _ = _rewrite(demo, tmp_path, forge)
    r = _verify(demo, record)
    assert {2, 31} <= set(r.failed_steps()) and 30 not in r.failed_steps()
    assert [(f.entry, f.step) for f in r.failures if f.step == 31] == [(ballot, 31)]
