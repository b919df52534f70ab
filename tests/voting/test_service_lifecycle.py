"""The election service end to end over HTTP: setup → key ceremony → voting → tally → result → PDF → export.

Runs on SQLite (default) and on a real PostgreSQL (the ``database_url`` fixture; skipped when absent).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import random
import tarfile
import time

from _service_util import (
    ADMIN,
    ADMIN_TOKEN,
    CLOSE_EARLY,
    OPEN_EARLY,
    cast_directly,
    cosign,
    create_election,
    error_code,
    ok,
    roll_aliases,
    running_app,
)
from cryptography import x509
from sqlmodel import Session, select

from crypto import PartialDecryption
from crypto._elgamal import Ciphertext
from verifier._engine import Options, verify_record
from voting._db import ElectionRow
from voting.testing import run_decryption, run_key_ceremony

BLANK = {"mayor": [], "projects": [], "referendum": []}


def _lifecycle(tmp_path, database_url=None):
    rng = random.Random(4)
    with running_app(tmp_path, database_url) as (client, service):
        invitations = create_election(client)
        trustees = run_key_ceremony(client, invitations, admin_token=ADMIN_TOKEN)
        info = ok(client.get("/api/v1/election"))
        assert info["joint_key"] == service.joint_key().public_key.hex()
        assert info["roll_size"] == 5 and info["roll_committed"]
        # voting opens only with joint key + roll commitment (both present now)
        ok(client.post("/api/v1/admin/open", headers=ADMIN, json=OPEN_EARLY))
        A, B, C, D = roll_aliases(service)[:4]  # the entries carry roll inclusion proofs: real voters
        cast = [
            # A votes twice on the internet: the last counts, the first is superseded
            (A, "internet", {"mayor": ["cand-1"], "projects": ["library"], "referendum": ["yes"]}, 1),
            (
                A,
                "internet",
                {"mayor": ["cand-2"], "projects": ["library", "cycling"], "referendum": ["no"]},
                2,
            ),
            # B votes online, then at a kiosk: the kiosk ballot overrides
            (B, "internet", {"mayor": ["cand-3"], "projects": [], "referendum": ["yes"]}, 1),
            (B, "kiosk", {"mayor": ["cand-2"], "projects": ["science"], "referendum": ["yes"]}, 2),
            (C, "internet", {"mayor": ["cand-2"], "projects": ["cycling", "childcare"], "referendum": []}, 1),
            (D, "internet", BLANK, 1),
        ]
        for alias, channel, choices, seq in cast:
            cast_directly(service, alias, channel, choices, seq, rng)
        ok(client.post("/api/v1/admin/close", headers=ADMIN, json=CLOSE_EARLY))
        tally = ok(client.post("/api/v1/admin/tally", headers=ADMIN))
        assert (tally["cast"], tally["counted"], tally["superseded"], tally["overridden"]) == (6, 4, 1, 1)
        cosign(client, service)  # trustees decrypt only a tally under a witnessed checkpoint

        # trustee 4 sends a corrupted partial: named and excluded; 1, 2, 3 are valid; 5 is absent
        t4 = trustees[4]
        t4.finalize(client)
        cts = ok(client.get("/api/v1/election/tally"))["ciphertexts"]
        good = {
            c: {s: t4.key.partial_decrypt(Ciphertext.from_dict(ct)) for s, ct in sels.items()}
            for c, sels in cts.items()
        }
        bad = {c: {s: p.to_dict() for s, p in sels.items()} for c, sels in good.items()}
        other = PartialDecryption.from_dict(bad["mayor"]["cand-1"])
        bad["mayor"]["cand-2"] = {**bad["mayor"]["cand-2"], "decryption_share": other.decryption_share.hex()}
        r = ok(
            client.post(
                "/api/v1/trustee/partials",
                json={"partials": bad},
                headers={"Authorization": f"Bearer {t4.token}"},
            )
        )
        assert r["accepted"] is False and "mayor/cand-2" in r["reason"]
        # too few valid partials yet
        assert error_code(client.post("/api/v1/admin/result", headers=ADMIN), 409) == "tally.too_few_partials"
        answers = run_decryption(client, [trustees[1], trustees[2], trustees[3]])
        assert all(a["accepted"] for a in answers.values())
        result = ok(client.post("/api/v1/admin/result", headers=ADMIN))
        assert result["trustees_used"] == [1, 2, 3]
        assert result["results"] == {
            "mayor": {"cand-1": 0, "cand-2": 3, "cand-3": 0},
            "projects": {"library": 1, "cycling": 2, "childcare": 1, "science": 1},
            "referendum": {"yes": 1, "no": 1},
        }
        assert (
            result["cast"],
            result["counted"],
            result["superseded"],
            result["overridden"],
            result["spoiled"],
        ) == (
            6,
            4,
            1,
            1,
            0,
        )
        assert ok(client.get("/api/v1/election/result"))["results"] == result["results"]

        decl = ok(client.post("/api/v1/admin/declaration", headers=ADMIN))
        pdf = client.get("/api/v1/election/result.pdf")
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
        assert hashlib.sha256(pdf.content).hexdigest() == decl["pdf_sha256"]

        # the ledger holds the lifecycle in order
        types = [e.type for e in service.ledger.entries(0, service.ledger.size)]
        assert types[0] == "election.manifest" and types[-1] == "result.declaration"
        assert types.count("trustee.registered") == 5 and types.count("trustee.shares") == 5
        assert types.count("tally.partial") == 4 and types.count("tally.excluded") == 1
        excluded = [
            e.payload for e in service.ledger.entries(0, service.ledger.size) if e.type == "tally.excluded"
        ]
        assert excluded[0]["trustee"] == 4

        archive = client.get("/api/v1/admin/export", headers=ADMIN)
        assert archive.status_code == 200
        with tarfile.open(fileobj=io.BytesIO(archive.content), mode="r:gz") as tar:
            names = tar.getnames()
            entries = tar.extractfile(next(n for n in names if n.endswith("entries.jsonl")))
            lines = entries.read().splitlines()
        assert any(n.endswith("result.pdf") for n in names)
        assert len(lines) == service.ledger.size
        assert json.loads(lines[-1])["type"] == "result.declaration"
        # no private column leaks into the record
        blob = b"\n".join(lines).decode()
        assert service.election().roll_key_hex not in blob
        for t in trustees.values():
            assert t.token not in blob

        # the independent verifier accepts the exported record (PDF checked against the commission root)
        cosign(client, service)  # the witnesses cosign the final checkpoint (V5)
        service.export(tmp_path / "record")
        roots = tuple(
            x509.load_pem_x509_certificates((tmp_path / "data" / "commission-chain.pem").read_bytes())
        )
        report = verify_record(tmp_path / "record", Options(pdf_trust_roots=roots))
        assert [(f.check, f.message) for f in report.failures] == []


def test_lifecycle(tmp_path, database_url):
    _lifecycle(tmp_path, database_url)


# ------------------------------------------------------------------------------------ the voting period


class _Clock:
    """The service's clock, moved by the test (the example manifest's period: 2027-04-18T00:00Z, a week)."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


OPENS = dt.datetime(2027, 4, 18, 0, 0, tzinfo=dt.UTC)
CLOSES = dt.datetime(2027, 4, 25, 11, 0, tzinfo=dt.UTC)


def _entries(service, etype):
    return [e.payload for e in service.ledger.entries(0, service.ledger.size) if e.type == etype]


def _until(predicate, timeout=10.0):
    """Wait for the server's period keeper (it polls every 20 ms here): never for a real date."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "the period keeper did not act"
        time.sleep(0.01)


def _ready(client):
    invitations = create_election(client)
    run_key_ceremony(client, invitations, admin_token=ADMIN_TOKEN)


def test_the_server_opens_and_closes_voting_on_time_by_itself(tmp_path, database_url):
    clock = _Clock(OPENS - dt.timedelta(hours=2))
    with running_app(tmp_path, database_url, clock=clock, period_poll_seconds=0.02) as (client, service):
        _ready(client)
        size = service.ledger.size
        # before the period: no ballot, no challenge, and the commission cannot open without a reason
        assert error_code(client.post("/api/v1/voter/challenge"), 409) == "voting.not_open"
        r = client.post("/api/v1/admin/open", headers=ADMIN)
        assert error_code(r, 409) == "voting.too_early" and "override" in r.json()["error"]["message"]
        time.sleep(0.1)  # the keeper ran several times: still nothing to do
        assert service.phase == "setup" and service.ledger.size == size

        clock.now = OPENS
        _until(lambda: service.phase == "voting")
        assert _entries(service, "voting.opened") == [
            {"election_id": service.election_id, "base_hash": service.base_hash.hex(),
             "opened_at": "2027-04-18T00:00:00Z"}
        ]  # fmt: skip
        assert client.post("/api/v1/voter/challenge").status_code == 200

        # closing before the end needs a reason too
        assert error_code(client.post("/api/v1/admin/close", headers=ADMIN), 409) == "voting.too_early"
        clock.now = CLOSES - dt.timedelta(seconds=1)
        assert client.post("/api/v1/voter/challenge").status_code == 200
        # at the end, intake refuses at once, whether or not the keeper has appended voting.closed yet
        clock.now = CLOSES
        assert error_code(client.post("/api/v1/voter/challenge"), 409) == "voting.closed"
        _until(lambda: service.phase == "closed")
        clock.now = CLOSES + dt.timedelta(hours=3)
        assert _entries(service, "voting.closed")[0]["closed_at"] == "2027-04-25T11:00:00Z"
        assert "override" not in _entries(service, "voting.closed")[0]
        assert error_code(client.post("/api/v1/voter/challenge"), 409) == "voting.closed"
        assert ok(client.get("/api/v1/election"))["closed_at"] == "2027-04-25T11:00:00Z"


def test_early_open_and_close_are_published_with_their_reason(tmp_path):
    clock = _Clock(OPENS - dt.timedelta(days=1))
    # the period keeper runs once, at start: it must not close on schedule while the clock visits CLOSES below
    with running_app(tmp_path, clock=clock, period_poll_seconds=3600) as (client, service):
        _ready(client)
        size = service.ledger.size
        for bad in ("", "   ", "\u202eesrever", "\x1b[31mred", "x" * 501):
            r = client.post("/api/v1/admin/open", headers=ADMIN, json={"override_reason": bad})
            assert error_code(r, 400) == "voting.override_reason", bad
        r = client.post("/api/v1/admin/open", headers=ADMIN, json={"override_reason": 1})
        assert r.status_code == 422
        assert service.ledger.size == size and service.phase == "setup"
        ok(client.post("/api/v1/admin/open", headers=ADMIN, json=OPEN_EARLY))
        opened = _entries(service, "voting.opened")[0]
        assert opened["opened_at"] == "2027-04-17T00:00:00Z"
        assert opened["override"] == {"reason": OPEN_EARLY["override_reason"]}
        # an override where none is needed is refused (the record says exactly when the period was left)
        clock.now = CLOSES
        r = client.post("/api/v1/admin/close", headers=ADMIN, json=CLOSE_EARLY)
        assert error_code(r, 400) == "voting.override_unneeded"
        clock.now = CLOSES - dt.timedelta(hours=1)
        ok(client.post("/api/v1/admin/close", headers=ADMIN, json=CLOSE_EARLY))
        closed = _entries(service, "voting.closed")[0]
        assert closed["closed_at"] == "2027-04-25T10:00:00Z"
        assert closed["override"] == {"reason": CLOSE_EARLY["override_reason"]}


def test_a_late_close_is_an_extension_published_before_the_end(tmp_path):
    clock = _Clock(OPENS + dt.timedelta(hours=1))
    with running_app(tmp_path, clock=clock, period_poll_seconds=0.02) as (client, service):
        _ready(client)
        _until(lambda: service.phase == "voting")
        late = {"closes": "2027-04-25T22:00:00+09:00", "reason": "the booth was unreachable for 2 hours"}
        for body, code in [
            ({"closes": "2027-04-25T10:00:00Z", "reason": "x"}, "voting.extend_time"),  # earlier
            ({"closes": "2027-04-25T13:00:00", "reason": "x"}, "voting.extend_time"),  # no time zone
            ({"closes": "next week", "reason": "x"}, "voting.extend_time"),
            ({"closes": late["closes"], "reason": "\u200b"}, "voting.override_reason"),
        ]:
            assert error_code(client.post("/api/v1/admin/extend", headers=ADMIN, json=body), 400) == code
        index = ok(client.post("/api/v1/admin/extend", headers=ADMIN, json=late))["ledger_index"]
        assert _entries(service, "voting.extended")[0]["closes"] == "2027-04-25T13:00:00Z"
        # a crash between the append and the private write: reconciliation restores the new end
        with Session(service.engine) as s:
            row = s.exec(select(ElectionRow)).one()
            row.closes_at, row.ledger_synced = None, index
            s.add(row)
            s.commit()
        assert service.voting_window()[1] == CLOSES
        assert (index, "voting.extended") in service.reconcile().repaired
        assert ok(client.get("/api/v1/election"))["voting_closes"] == "2027-04-25T13:00:00Z"
        clock.now = CLOSES + dt.timedelta(minutes=30)  # past the manifest's end, within the extension
        time.sleep(0.1)
        assert service.phase == "voting"
        assert client.post("/api/v1/voter/challenge").status_code == 200
        clock.now = CLOSES + dt.timedelta(hours=2)
        _until(lambda: service.phase == "closed")
        assert _entries(service, "voting.closed")[0]["closed_at"] == "2027-04-25T13:00:00Z"
        # once the end has passed it cannot be moved (the extension is decided in time, on the record)
        later = {**late, "closes": "2027-04-26T00:00:00Z"}
        r = client.post("/api/v1/admin/extend", headers=ADMIN, json=later)
        assert r.status_code == 409
        cosign(client, service)
        service.export(tmp_path / "record")
        report = verify_record(tmp_path / "record", Options(partial=True))
        assert [f.operator_message for f in report.failures] == [] and report.statuses[26] == "pass"


def test_voting_never_opens_after_the_period(tmp_path):
    clock = _Clock(CLOSES)
    with running_app(tmp_path, clock=clock, period_poll_seconds=0.02) as (client, service):
        _ready(client)
        time.sleep(0.1)
        assert service.phase == "setup"
        for body in (None, OPEN_EARLY):
            r = client.post("/api/v1/admin/open", headers=ADMIN, json=body)
            assert error_code(r, 409) == "voting.period_over"
        assert _entries(service, "voting.opened") == []
