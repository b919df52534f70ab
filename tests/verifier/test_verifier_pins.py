"""The verifier's official mode (``--pins``, V27), the manifest's pins (V4, V22) and trustee enrolment (V28).

Each test is an attack by whoever produces the record (the commission's server): a record signed by a log key
of its own, a whole record fabricated with keys of its own, a result PDF signed under another root, a trustee
registered under a key nobody enrolled. Each must fail with the check named, while the honest record passes.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from nacl.signing import SigningKey
from typer.testing import CliRunner
from verifier_fixture import Election, build_election

from crypto import TrusteeCommitments, TrusteeEnrolment
from ledger.record import LogSigner
from verifier import Options, verify_record
from verifier._pins import load_pins
from verifier._report import Report
from verifier.cli import EXIT_INVALID, EXIT_OK, EXIT_UNREADABLE, app

pytestmark = pytest.mark.xdist_group("verifier")


@pytest.fixture(scope="session")
def pinned() -> Election:
    return build_election(pinned=True)


@pytest.fixture(scope="session")
def pinned_record(pinned: Election, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return pinned.write(tmp_path_factory.mktemp("pinned") / "record")


def official_pins(el: Election, **changes: Any) -> dict[str, Any]:
    """The pins file the commission publishes out of band (``tvote admin official-pins``)."""
    doc = {
        "format": "tvote-pins/1",
        "election_id": el.manifest["election_id"],
        "base_hash": el.base_hash.hex(),
        "pins": copy.deepcopy(el.manifest["pins"]),
        "witnesses": copy.deepcopy(el.manifest["witnesses"]),
    }
    doc.update(changes)
    return doc


def write_pins(tmp: Path, doc: dict[str, Any]) -> Path:
    p = tmp / "pins.json"
    p.write_text(json.dumps(doc), encoding="utf-8")
    return p


def verify(path: Path, pins: Path | None = None, roots: tuple[Any, ...] = ()) -> Report:
    return verify_record(path, Options(pdf_trust_roots=roots, pins=None if pins is None else load_pins(pins)))


def test_pinned_record_verifies_in_official_mode(
    pinned: Election, pinned_record: Path, tmp_path: Path
) -> None:
    # no --trust-root: the PDF's root is found by its pinned fingerprint among the signature's certificates
    r = verify(pinned_record, write_pins(tmp_path, official_pins(pinned)))
    assert r.ok, [f.operator_message for f in r.failures]
    assert r.official and r.statuses[27] == "pass" and r.statuses[28] == "pass" and r.statuses[22] == "pass"
    assert r.to_dict()["official"] is True


def test_without_pins_the_report_says_not_official(pinned_record: Path) -> None:
    r = verify(pinned_record)
    assert r.ok and not r.official and r.statuses[27] == "pending"
    assert any("not an official verification" in n for n in r.notes)
    res = CliRunner().invoke(app, [str(pinned_record)])
    assert res.exit_code == EXIT_OK and "not official" in res.output


@pytest.mark.parametrize(
    "change",
    [
        {"base_hash": "00" * 32},
        {"election_id": "another-election"},
        {"witnesses": {"quorum": 1, "keys": []}},
    ],
)
def test_pins_file_differing_from_the_manifest_is_invalid(
    pinned: Election, pinned_record: Path, tmp_path: Path, change: dict[str, Any]
) -> None:
    r = verify(pinned_record, write_pins(tmp_path, official_pins(pinned, **change)))
    assert r.failed_steps() == [27]


@pytest.mark.parametrize("field", ["log_key", "jpki_roots_sha256", "commission_root_sha256"])
def test_each_differing_pin_is_named(
    pinned: Election, pinned_record: Path, tmp_path: Path, field: str
) -> None:
    doc = official_pins(pinned)
    del doc["base_hash"]  # the pins alone
    doc["pins"][field] = {
        "log_key": LogSigner.generate("tvote.test/log", seed=b"\x07" * 32).public.vkey,
        "jpki_roots_sha256": ["ab" * 32],
        "commission_root_sha256": "cd" * 32,
    }[field]
    r = verify(pinned_record, write_pins(tmp_path, doc))
    assert 27 in r.failed_steps()
    assert any(f.step == 27 and f"pins.{field}" in f.message for f in r.failures)


def test_record_signed_by_another_log_key_fails_even_without_pins(pinned: Election, tmp_path: Path) -> None:
    """A second ledger, signed with a key the server keeps for a split view: every checkpoint verifies under
    the key record.json names, but that is not the key the manifest pins."""
    other = copy.copy(pinned)
    other.log = LogSigner.generate(pinned.log.name, seed=b"\x09" * 32)
    rec = other.write(tmp_path / "record")
    r = verify(rec, roots=(pinned.root_certificate,))
    assert 4 in r.failed_steps()
    r = verify(rec, write_pins(tmp_path, official_pins(pinned)))
    assert {4, 27} <= set(r.failed_steps())


def test_fabricated_record_passes_alone_but_not_against_the_pins(pinned: Election, tmp_path: Path) -> None:
    """The server fabricates a whole election (own log key, own commission root, own trustees): checked
    against itself it is consistent; checked against the pins the commission published, it is not."""
    fake = build_election(seed=2, pinned=True)
    rec = fake.write(tmp_path / "record")
    assert verify(rec).ok
    r = verify(rec, write_pins(tmp_path, official_pins(pinned)))
    assert 27 in r.failed_steps() and not r.ok
    res = CliRunner().invoke(app, [str(rec), "--pins", str(tmp_path / "pins.json")])
    assert res.exit_code == EXIT_INVALID and "V27" in res.output


def test_pdf_signed_under_another_root_fails_v22(pinned: Election, tmp_path: Path) -> None:
    """The result PDF is signed by a commission key the manifest does not pin; giving its root with
    --trust-root does not make it trusted."""
    import datetime as dt

    from voting._result_pdf import CommissionSigner
    from voting.testing import CommissionTestCa

    other = copy.copy(pinned)
    ca = CommissionTestCa.generate(dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
    other.commission = ca
    other.signer = CommissionSigner(ca.signer_certificate, ca.signer_key, (ca.root_certificate,))
    rec = other.write(tmp_path / "record")
    r = verify(rec, roots=(ca.root_certificate,))
    assert r.failed_steps() == [22]
    assert any("pinned commission root" in f.message for f in r.failures)


# ------------------------------------------------------------------------------------- V28 trustee.enrolment


def _registered(evs: list[tuple[str, dict[str, Any]]], trustee: int) -> dict[str, Any]:
    return next(p for t, p in evs if t == "trustee.registered" and p["trustee"] == trustee)


def test_sock_puppet_trustee_fails_enrolment(pinned: Election, tmp_path: Path) -> None:
    """The commission registers trustee 2 itself, under a key of its own: the proofs are valid (V9) but the
    registration is not signed by the enrolment key pinned for trustee 2."""
    evs = copy.deepcopy(pinned.events)
    p = _registered(evs, 2)
    p["enrolment"] = TrusteeEnrolment.sign(
        bytes(SigningKey.generate()),
        base_hash=pinned.base_hash,
        trustee=2,
        name=p["name"],
        commitments=TrusteeCommitments.from_dict(p["commitments"]),
    ).to_dict()
    r = verify(pinned.write(tmp_path / "record", evs), roots=(pinned.root_certificate,))
    assert r.failed_steps() == [28]
    assert any(f.step == 28 and "trustee 2" in f.message for f in r.failures)


def test_enrolment_signature_covers_the_registration(pinned: Election, tmp_path: Path) -> None:
    """A genuine enrolment signature moved onto another registration (a renamed trustee) fails."""
    evs = copy.deepcopy(pinned.events)
    _registered(evs, 1)["name"] = "Someone else"
    r = verify(pinned.write(tmp_path / "record", evs), roots=(pinned.root_certificate,))
    assert r.failed_steps() == [28]


def test_missing_enrolment_fails(pinned: Election, tmp_path: Path) -> None:
    evs = copy.deepcopy(pinned.events)
    del _registered(evs, 3)["enrolment"]
    r = verify(pinned.write(tmp_path / "record", evs), roots=(pinned.root_certificate,))
    assert r.failed_steps() == [28]


def test_unpinned_record_has_enrolment_not_applicable(tmp_path: Path) -> None:
    el = build_election()
    r = verify(el.write(tmp_path / "record"), roots=(el.root_certificate,))
    assert r.ok and r.statuses[28] == "n/a"


# ----------------------------------------------------------------------------------------------- the file


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        json.dumps({"format": "tvote-pins/2", "election_id": "x", "base_hash": "00" * 32}),
        json.dumps({"format": "tvote-pins/1", "election_id": "x"}),
        json.dumps({"format": "tvote-pins/1", "election_id": "x", "base_hash": "XY"}),
        json.dumps({"format": "tvote-pins/1", "election_id": "x", "base_hash": "00" * 32, "extra": 1}),
    ],
)
def test_bad_pins_file_is_exit_2(pinned_record: Path, tmp_path: Path, text: str) -> None:
    p = tmp_path / "pins.json"
    p.write_text(text, encoding="utf-8")
    res = CliRunner().invoke(app, [str(pinned_record), "--pins", str(p)])
    assert res.exit_code == EXIT_UNREADABLE and "pins" in res.output


def test_cli_official_mode_valid(pinned: Election, pinned_record: Path, tmp_path: Path) -> None:
    shutil.copy(write_pins(tmp_path, official_pins(pinned)), tmp_path / "official.json")
    res = CliRunner().invoke(app, [str(pinned_record), "--pins", str(tmp_path / "official.json")])
    assert res.exit_code == EXIT_OK, res.output
    assert "official" in res.output and "not official" not in res.output
