"""Reconciliation: a failure between the ledger append and the private write is repaired from the ledger.

The failure is injected for real: the SQLAlchemy session commit right after an append raises (as a full disk
would), so the ledger holds the entry and the private tables do not. The service then refuses changes
(``service.diverged``); reconciliation (``POST /api/v1/admin/reconcile``, or a restart) rebuilds the
private state from the entry and the service accepts changes again. The SIGKILL version is
tests/voting/test_service_crash.py.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from _service_util import ADMIN, ADMIN_TOKEN, CLOSE_EARLY, OPEN_EARLY, error_code
from sqlmodel import Session, select

from crypto import encrypt_ballot, reveal
from ledger.record import ballot_unique_values
from voting._db import ElectionRow, TrusteeRow
from voting._intake_db import AuthEvidence, BallotUniqueValue, IntakeBallot, IntakeChallenge, VoterState
from voting.app import create_app
from voting.clients.trustee import Trustee, TrusteeApi
from voting.clients.voter import ServerError, VoterClient
from voting.service import ElectionService
from voting.service._intake_checks import IntakeChecks
from voting.testing import (
    JpkiTestCa,
    LoopbackServer,
    RsaKeyPool,
    demo_settings,
    make_residents,
    roll_csv,
    run_key_ceremony,
    tsukuba_manifest,
)

CHOICE = {"mayor": ["cand-1"], "referendum": ["no"], "subsidy": ["proj-2"]}


class CommitFails:
    """Arms a one-shot failure: the first ``Session.commit`` after the ledger's next append raises, or the
    first one-statement write in autocommit (a cast's record on PostgreSQL, ``_autocommit_one``)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, service: ElectionService) -> None:
        self.armed = False
        self.fired = 0
        ledger = service.ledger
        real_append, real_many, real_commit = ledger.append, ledger.append_many, Session.commit

        def append(*a: Any, **k: Any) -> Any:
            out = real_append(*a, **k)
            self.armed = self.armed or self.pending
            return out

        def append_many(*a: Any, **k: Any) -> Any:
            out = real_many(*a, **k)
            self.armed = self.armed or self.pending
            return out

        def commit(session: Session) -> None:
            if self.armed:
                self.armed = self.pending = False
                self.fired += 1
                session.rollback()
                raise OSError(28, "No space left on device (injected)")
            real_commit(session)

        real_one = IntakeChecks._autocommit_one

        def autocommit_one(intake: Any, statement: Any, params: Any) -> None:
            if self.armed:
                self.armed = self.pending = False
                self.fired += 1
                raise OSError(28, "No space left on device (injected)")
            real_one(intake, statement, params)

        self.pending = False
        monkeypatch.setattr(ledger, "append", append)
        monkeypatch.setattr(ledger, "append_many", append_many)
        monkeypatch.setattr(Session, "commit", commit)
        monkeypatch.setattr(IntakeChecks, "_autocommit_one", autocommit_one)

    def arm(self) -> None:
        self.pending = True


@contextmanager
def server(tmp_path: Path, database_url: str | None = None) -> Iterator[dict[str, Any]]:
    """A configured app (test JPKI CA) on a loopback HTTP server; election created, roll published."""
    now = dt.datetime.now(dt.UTC)
    ca = JpkiTestCa.generate(now)
    residents = make_residents(3, ca, now, pool=RsaKeyPool(3))
    settings, intake = demo_settings(
        tmp_path,
        ca,
        now,
        admin_token=ADMIN_TOKEN,
        database_url=database_url,
        checkpoint_interval=0,  # no keeper runs here (no lifespan): a checkpoint per receipt
    )
    service = ElectionService.from_settings(settings)
    app = create_app(settings, service=service, intake=intake)
    manifest = tsukuba_manifest(now, trustees=3, threshold=2, small=True)
    # the period begins tomorrow: the server's period keeper leaves the opening to the test (with a reason)
    manifest["voting_period"]["opens"] = (now + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    with LoopbackServer(app) as srv, httpx.Client(base_url=srv.url, timeout=60) as http:
        try:
            created = http.post("/api/v1/admin/election", json=manifest, headers=ADMIN).json()
            csv = {**ADMIN, "Content-Type": "text/csv"}
            assert http.put("/api/v1/admin/roll", content=roll_csv(residents), headers=csv).status_code == 200
            assert http.post("/api/v1/admin/roll/publish", headers=ADMIN).status_code == 200
            invitations = {int(i): c for i, c in created["invitations"].items()}
            yield {
                "http": http,
                "url": srv.url,
                "service": service,
                "settings": settings,
                "intake": intake,
                "residents": residents,
                "invitations": invitations,
            }
        finally:
            service.close()


def reconcile(http: httpx.Client, full: bool = False) -> dict[str, Any]:
    r = http.post("/api/v1/admin/reconcile", params={"full": full}, headers=ADMIN)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def test_a_ballot_whose_private_write_failed_is_rebuilt_from_the_ledger(tmp_path, monkeypatch, database_url):
    """On SQLite and on a real PostgreSQL (``database_url`` fixture)."""
    with server(tmp_path, database_url) as w:
        http, service, residents = w["http"], w["service"], w["residents"]
        run_key_ceremony(http, w["invitations"], admin_token=ADMIN_TOKEN)
        assert http.post("/api/v1/admin/open", headers=ADMIN, json=OPEN_EARLY).status_code == 200
        fail = CommitFails(monkeypatch, service)
        with VoterClient(w["url"]) as v:
            first = v.cast_jpki(residents[0].card, CHOICE)
            size = service.ledger.size
            fail.arm()
            with pytest.raises(ServerError) as e:  # the append happened, the private commit failed
                v.cast_jpki(residents[0].card, CHOICE)
            assert e.value.status == 500 and fail.fired == 1
            assert service.ledger.size == size + 1
            lost = service.ledger.entries(size, size + 1)[0].payload
            assert lost["seq"] == 2
            with Session(service.engine) as s:  # the ledger is ahead: only the pending evidence exists
                assert s.get(IntakeBallot, lost["ballot_hash"]) is None
                assert s.get(VoterState, (service.election_id, lost["voter_alias"])).seq == 1
                ev = s.get(AuthEvidence, lost["auth"]["evidence_hash"])
                assert ev is not None and ev.status == "pending"
                assert s.exec(select(ElectionRow)).one().ledger_synced == size
            with pytest.raises(ServerError) as e:  # stale private state is not acted upon
                v.cast_jpki(residents[1].card, CHOICE)
            assert (e.value.status, e.value.code) == (503, "service.diverged")
            assert service.ledger.size == size + 1

            report = reconcile(http)
            assert report["repaired"] == [{"index": size, "type": "ballot.cast"}]
            assert (report["start"], report["ledger_size"], report["problems"]) == (size, size + 1, [])
            with Session(service.engine) as s:
                row = s.get(IntakeBallot, lost["ballot_hash"])
                assert (row.kind, row.seq, row.ledger_index, row.channel) == ("cast", 2, size, "internet")
                state = s.get(VoterState, (service.election_id, lost["voter_alias"]))
                assert (state.seq, state.last_index, state.kiosk_index) == (2, size, None)
                ev = s.get(AuthEvidence, lost["auth"]["evidence_hash"])
                assert (ev.status, ev.ledger_index, ev.ballot_hash) == ("final", size, lost["ballot_hash"])
                challenge = s.get(IntakeChallenge, v_challenge(ev))
                assert challenge is not None and challenge.used_at is not None
                assert _unique_rows(s, lost) == {
                    (u.kind, u.value): size for u in ballot_unique_values(lost["ballot_hash"], lost["ballot"])
                }
            # the rebuilt rows refuse a ballot reusing the lost ballot's nonce (an anonymous spoil here)
            ctx = w["intake"].build(service).context()
            nonce = bytes.fromhex(lost["ballot"]["ballot_nonce"])
            reuse, secrets = encrypt_ballot(ctx, CHOICE, ballot_nonce=nonce)
            body = {"ballot": reuse.to_dict(), "revealed": reveal(reuse, secrets).to_dict()}
            assert error_code(http.post("/api/v1/voter/spoil", json=body), 409) == "ballot.duplicate_nonce"
            # a spoiled ballot whose private write failed is rebuilt the same way
            fail.arm()
            with pytest.raises(ServerError) as e:
                v.challenge(v.prepare(CHOICE))
            assert e.value.status == 500 and fail.fired == 2
            spoiled = service.ledger.entries(size + 1, size + 2)[0].payload
            report = reconcile(http)
            assert report["repaired"] == [{"index": size + 1, "type": "ballot.spoiled"}]
            with Session(service.engine) as s:
                assert s.get(IntakeBallot, spoiled["ballot_hash"]).kind == "spoiled"
                assert set(_unique_rows(s, spoiled).values()) == {size + 1}
            # the service serves again, and the voter's next ballot continues the sequence
            third = v.cast_jpki(residents[0].card, CHOICE)
            assert (first.seq, third.seq) == (1, 3)
            assert v.lookup(lost["tracking_code"]).leaf_index == size  # findable by its tracking code
            v.verify_receipt(third)
            v.cast_jpki(residents[1].card, CHOICE)
        # a full replay now finds nothing to repair and nothing that differs
        assert reconcile(http, full=True)["repaired"] == []
        assert reconcile(http, full=True)["problems"] == []


def test_a_lost_cast_below_the_high_water_mark_is_replayed_from_its_pending_bound(tmp_path, monkeypatch):
    """Casts of different voters record out of order: a cast whose private write was lost while another
    voter's later cast was recorded (``ledger_synced`` already past it, as when another server process goes
    on serving) is still replayed, by reconciliation (from the pending evidence's lower bound) and by the
    voter's own next cast (which settles the voter's pending evidence first)."""
    with server(tmp_path) as w:
        http, service, residents = w["http"], w["service"], w["residents"]
        run_key_ceremony(http, w["invitations"], admin_token=ADMIN_TOKEN)
        assert http.post("/api/v1/admin/open", headers=ADMIN, json=OPEN_EARLY).status_code == 200
        fail = CommitFails(monkeypatch, service)
        a, b = residents[0].card, residents[1].card
        with VoterClient(w["url"]) as v:
            first = v.cast_jpki(a, CHOICE)
            assert first.seq == 1
            alias_a = service.ledger.entry(first.leaf_index).payload["voter_alias"]

            def lose_one() -> int:
                size = service.ledger.size
                fail.arm()
                with pytest.raises(ServerError):
                    v.cast_jpki(a, CHOICE)
                service._diverged = None  # what another server process, which never saw it, would do
                other = v.cast_jpki(b, CHOICE)  # recorded after it: the high-water mark passes it
                assert other.leaf_index == size + 1
                with Session(service.engine) as s:
                    assert s.exec(select(ElectionRow)).one().ledger_synced == size + 2
                    assert s.get(VoterState, (service.election_id, alias_a)).last_index < size
                return size

            lost = lose_one()
            report = reconcile(http)
            assert report["start"] == lost and report["repaired"] == [{"index": lost, "type": "ballot.cast"}]
            assert report["problems"] == []
            # again, and this time the voter's next cast settles it (no reconciliation)
            lost = lose_one()
            entry = service.ledger.entry(lost).payload
            assert entry["seq"] == 3
            assert v.cast_jpki(a, CHOICE).seq == 4
            with Session(service.engine) as s:
                row = s.get(IntakeBallot, entry["ballot_hash"])
                assert row is not None and (row.seq, row.ledger_index) == (3, lost)
                ev = s.get(AuthEvidence, entry["auth"]["evidence_hash"])
                assert (ev.status, ev.ledger_index) == ("final", lost)
                assert set(_unique_rows(s, entry).values()) == {lost}
        full = reconcile(http, full=True)
        assert (full["repaired"], full["problems"]) == ([], [])


@pytest.mark.postgres
def test_a_lost_cast_whose_bound_lags_far_behind_is_replayed(tmp_path, monkeypatch, postgres_url):
    """A cast's pending bound is the ledger size its process KNEW (``Ledger.known_size``, no read): with
    other processes appending meanwhile it may lie many entries below the cast's entry. Reconciliation and
    the voter's next cast search from it and still find the entry."""
    with server(tmp_path, postgres_url) as w:
        http, service, residents = w["http"], w["service"], w["residents"]
        run_key_ceremony(http, w["invitations"], admin_token=ADMIN_TOKEN)
        assert http.post("/api/v1/admin/open", headers=ADMIN, json=OPEN_EARLY).status_code == 200
        fail = CommitFails(monkeypatch, service)
        stale = 2  # as if this process had seen nothing since the first entries
        monkeypatch.setattr(type(service.ledger), "known_size", property(lambda _self: stale))
        with VoterClient(w["url"]) as v:
            v.cast_jpki(residents[0].card, CHOICE)
            for lost_by in ("reconcile", "next cast"):
                size = service.ledger.size
                fail.arm()
                with pytest.raises(ServerError):
                    v.cast_jpki(residents[0].card, CHOICE)
                lost = service.ledger.entry(size).payload
                with Session(service.engine) as s:
                    ev = s.get(AuthEvidence, lost["auth"]["evidence_hash"])
                    assert (ev.status, ev.ledger_index) == ("pending", stale) and stale < size
                if lost_by == "reconcile":
                    report = reconcile(http)
                    assert report["start"] == stale
                    assert report["repaired"] == [{"index": size, "type": "ballot.cast"}]
                else:
                    service._diverged = None  # what another server process, which never saw it, would do
                    assert v.cast_jpki(residents[0].card, CHOICE).seq == lost["seq"] + 1
                with Session(service.engine) as s:
                    ev = s.get(AuthEvidence, lost["auth"]["evidence_hash"])
                    assert (ev.status, ev.ledger_index) == ("final", size)
                    assert s.get(IntakeBallot, lost["ballot_hash"]).ledger_index == size
        assert (reconcile(http, full=True)["problems"]) == []


@pytest.mark.postgres
@pytest.mark.parametrize("appended_by", ["this process", "another process"])
def test_a_cast_after_a_close_whose_record_was_lost_is_refused(
    tmp_path, monkeypatch, postgres_url, appended_by
):
    """PostgreSQL (several processes): a close appended by a process that died before recording it leaves
    the phase 'voting' in the database. A cast (holding the election's lock shared) finds that unrecorded
    lifecycle entry first, replays it under the exclusive lock, and is refused: no cast follows the close.
    Appended by another process, the close is beyond the ledger size this process knows: the cast asks
    the stored size."""
    with server(tmp_path, postgres_url) as w:
        http, service, residents = w["http"], w["service"], w["residents"]
        run_key_ceremony(http, w["invitations"], admin_token=ADMIN_TOKEN)
        assert http.post("/api/v1/admin/open", headers=ADMIN, json=OPEN_EARLY).status_code == 200
        with VoterClient(w["url"]) as v:
            v.cast_jpki(residents[0].card, CHOICE)
            fail = CommitFails(monkeypatch, service)
            fail.arm()
            r = http.post("/api/v1/admin/close", headers=ADMIN, json=CLOSE_EARLY)
            assert r.status_code == 500 and fail.fired == 1
            closed = service.ledger.size - 1
            assert service.ledger.entry(closed).type == "voting.closed"
            assert service.election().phase == "voting"  # the record was lost
            service._diverged = None  # what another server process, which never saw it, would do
            if appended_by == "another process":  # ... whose ledger never saw the close's append either
                monkeypatch.setattr(type(service.ledger), "known_size", property(lambda _self: closed))
            with pytest.raises(ServerError) as e:
                v.cast_jpki(residents[1].card, CHOICE)
            assert e.value.code == "voting.closed"
        assert service.ledger.size == closed + 1 and service.election().phase == "closed"


@pytest.mark.postgres
def test_the_lifecycle_check_reads_a_cast_entry_at_most_once(tmp_path, monkeypatch, postgres_url):
    """While other casts record, ``ledger_synced`` lies at a cast's entry, and every cast on PostgreSQL asks
    what that entry is (a lifecycle step's left unrecorded by a dead process, or not). A cast this process
    appended is known without reading its entry (about 17 kB); another's is read once, then known."""
    from voting.service._core import _RecentIndices

    with server(tmp_path, postgres_url) as w:
        http, service, residents = w["http"], w["service"], w["residents"]
        run_key_ceremony(http, w["invitations"], admin_token=ADMIN_TOKEN)
        assert http.post("/api/v1/admin/open", headers=ADMIN, json=OPEN_EARLY).status_code == 200
        ledger = service.ledger
        reads: list[tuple[int, int]] = []
        real_payloads = ledger.payloads

        def payloads(start: int, stop: int) -> Any:
            reads.append((start, stop))
            return real_payloads(start, stop)

        monkeypatch.setattr(ledger, "payloads", payloads)

        def still_recording(index: int) -> None:  # as if the cast at ``index`` had not recorded yet
            with Session(service.engine) as s:
                row = s.exec(select(ElectionRow)).one()
                row.ledger_synced = index
                s.add(row)
                s.commit()

        with VoterClient(w["url"]) as v:
            first = v.cast_jpki(residents[0].card, CHOICE).leaf_index
            still_recording(first)
            v.cast_jpki(residents[1].card, CHOICE)
            assert reads == []  # this process appended that cast: nothing read
            service._casts = _RecentIndices()  # a process that did not append it (a restart, another server)
            still_recording(first)
            v.cast_jpki(residents[2].card, CHOICE)
            assert reads == [(first, first + 1)]  # read once ...
            still_recording(first)
            v.cast_jpki(residents[0].card, CHOICE)
            assert reads == [(first, first + 1)]  # ... then known
        assert reconcile(http, full=True)["problems"] == []


def _unique_rows(s: Session, payload: dict[str, Any]) -> dict[tuple[str, str], int]:
    rows = s.exec(select(BallotUniqueValue).where(BallotUniqueValue.ballot_hash == payload["ballot_hash"]))
    return {(r.kind, r.value): r.ledger_index for r in rows}


def v_challenge(ev: AuthEvidence) -> str:
    return str(json.loads(ev.evidence)["challenge"])


def test_orphan_pending_evidence_is_removed_and_a_failed_append_leaves_none(tmp_path, monkeypatch):
    with server(tmp_path) as w:
        http, service, residents = w["http"], w["service"], w["residents"]
        run_key_ceremony(http, w["invitations"], admin_token=ADMIN_TOKEN)
        assert http.post("/api/v1/admin/open", headers=ADMIN, json=OPEN_EARLY).status_code == 200
        ledger = service.ledger
        real_append = ledger.append

        def refuse(*a: Any, **k: Any) -> Any:
            raise OSError("ledger storage unavailable (injected)")

        monkeypatch.setattr(ledger, "append", refuse)
        with VoterClient(w["url"]) as v:
            with pytest.raises(ServerError):
                v.cast_jpki(residents[0].card, CHOICE)
            with Session(service.engine) as s:  # nothing appended: the pending evidence was dropped
                assert s.exec(select(AuthEvidence)).all() == []
            monkeypatch.setattr(ledger, "append", real_append)
            # a server that died between the pending write and the append leaves an orphan row
            with Session(service.engine) as s:
                s.add(
                    AuthEvidence(
                        evidence_hash="ee" * 32,
                        election_id=service.election_id,
                        voter_alias="aa" * 32,
                        ballot_hash="bb" * 32,
                        method="jpki",
                        evidence="{}",
                        created_at=dt.datetime.now(dt.UTC),
                        status="pending",
                    )
                )
                s.commit()
            report = reconcile(http)
            assert (report["orphans_removed"], report["repaired"]) == (1, [])
            with Session(service.engine) as s:
                assert s.get(AuthEvidence, "ee" * 32) is None
            assert v.cast_jpki(residents[0].card, CHOICE).seq == 1  # no divergence from a failed append


def test_lifecycle_steps_are_rebuilt_on_restart(tmp_path, monkeypatch):
    """A trustee registration and the opening of voting whose private writes failed; the server restarts
    (start-up reconciliation); the trustee gets its lost token by registering again with the same code."""
    with server(tmp_path) as w:
        http, service = w["http"], w["service"]
        fail = CommitFails(monkeypatch, service)
        api = TrusteeApi(http)
        trustees = {i: Trustee.init(api, code, f"T{i}") for i, code in w["invitations"].items()}
        trustees[1].register(http)
        fail.arm()
        with pytest.raises(Exception):
            trustees[2].register(http)
        assert trustees[2].token is None and fail.fired == 1
        assert error_code(http.post("/api/v1/admin/open", headers=ADMIN), 503) == "service.diverged"
        settings, intake = w["settings"], w["intake"]
    monkeypatch.undo()

    # restart: a new service on the same data directory reconciles before serving
    service = ElectionService.from_settings(settings)
    app = create_app(settings, service=service, intake=intake)
    try:
        with Session(service.engine) as s:
            t2 = s.get(TrusteeRow, (service.election_id, 2))
            assert (t2.status, t2.token_hash) == ("registered", None)
        with LoopbackServer(app) as srv, httpx.Client(base_url=srv.url, timeout=60) as http:
            trustees[2].register(http)  # same code, same commitments: a fresh token, nothing appended
            assert trustees[2].token is not None
            size = service.ledger.size
            assert sum(1 for e in service.ledger.entries(0, size) if e.type == "trustee.registered") == 2
            trustees[3].register(http)
            for t in trustees.values():
                t.deal(http)
            for t in trustees.values():
                t.verify_shares(http)
            assert http.post("/api/v1/admin/key-ceremony/finalize", headers=ADMIN).status_code == 200
            fail = CommitFails(monkeypatch, service)
            fail.arm()
            assert http.post("/api/v1/admin/open", headers=ADMIN, json=OPEN_EARLY).status_code == 500
            assert service.phase == "setup" and service.ledger.entries(size, service.ledger.size)[
                -1
            ].type == ("voting.opened")
            monkeypatch.undo()
    finally:
        service.close()
    service = ElectionService.from_settings(settings)
    create_app(settings, service=service, intake=intake)
    try:
        row = service.election()
        assert row.phase == "voting" and row.opened_at is not None
        assert row.ledger_synced == service.ledger.size
        assert service.reconcile(full=True).problems == ()
    finally:
        service.close()


def test_an_election_whose_manifest_append_failed_can_be_created_again(tmp_path, monkeypatch):
    now = dt.datetime.now(dt.UTC)
    ca = JpkiTestCa.generate(now)
    settings, _ = demo_settings(tmp_path, ca, now, admin_token=ADMIN_TOKEN)
    manifest = tsukuba_manifest(now, trustees=3, threshold=2, small=True)
    service = ElectionService.from_settings(settings)
    try:
        from ledger import Ledger

        def refuse(self: Any, *a: Any, **k: Any) -> Any:
            raise OSError("ledger storage unavailable (injected)")

        with monkeypatch.context() as m:
            m.setattr(Ledger, "append", refuse)
            with pytest.raises(OSError):
                service.create_election(manifest)
        assert not service.has_election()
        created = service.create_election(manifest)
        assert service.phase == "setup" and service.election().ledger_synced == 1
        # codes the commission never saw are replaced; the old ones stop working
        fresh = service.reissue_invitations()
        assert set(fresh) == {1, 2, 3} and fresh[1] != created.invitations[1]
    finally:
        service.close()
