"""Casts serialised per voter, not per election (``voting.service._intake``, step 6).

Different voters' casts run side by side (``ElectionService.casting``: the election's lock shared, the
voter's exclusive), so what used to be ordered by the one election lock is now the database's: a ballot's
unique values are reserved with its pending evidence, before its append, and a phase change takes the
election's lock exclusive. On SQLite and on PostgreSQL (threads of one server; two server processes:
``test_multiprocess_intake``).
"""

from __future__ import annotations

import concurrent.futures as cf
import datetime as dt
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from _service_util import start_election_on
from sqlmodel import Session, select

from crypto import encrypt_ballot
from crypto._ballot import EncryptedBallot
from ledger.record import ballot_unique_values, repeats_within
from voting._intake_db import AuthEvidence, BallotUniqueValue, IntakeChallenge
from voting.testing import DemoElection, JpkiTestCa, RsaKeyPool, make_residents, tsukuba_manifest

pytestmark = pytest.mark.xdist_group("intake")

CHOICE = {"mayor": ["cand-2"], "referendum": ["no"], "subsidy": ["proj-1"]}
OTHER = {"mayor": ["cand-3"], "referendum": ["yes"], "subsidy": []}
DUPLICATES = {"ballot.duplicate", "ballot.duplicate_nonce", "ballot.duplicate_ciphertext"}
VOTERS = 12


def _body(e: DemoElection, card: Any, ballot: EncryptedBallot) -> dict[str, Any]:
    challenge = bytes.fromhex(e.http.post("/api/v1/voter/challenge").json()["challenge"])
    sub = card.sign_ballot(e.service.base_hash, ballot.ballot_hash(), challenge)
    auth = {
        "method": "jpki",
        "certificate": sub.certificate_der.hex(),
        "intermediates": [],
        "signature": sub.signature.hex(),
        "challenge": challenge.hex(),
    }
    return {"ballot": ballot.to_dict(), "auth": auth}


def _at_once(e: DemoElection, bodies: list[dict[str, Any]]) -> list[httpx.Response]:
    go = threading.Barrier(len(bodies))

    def send(body: dict[str, Any]) -> httpx.Response:
        with httpx.Client(base_url=e.base_url, timeout=120) as c:
            go.wait()
            return c.post("/api/v1/voter/ballots", json=body)

    with cf.ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(send, bodies))


def _code(r: httpx.Response) -> str:
    return str(r.json()["error"]["code"])


def _ballot_entries(e: DemoElection) -> list[tuple[int, str, dict[str, Any]]]:
    out = []
    for i in range(e.ledger_size()):
        entry = e.service.ledger.entry(i)
        out.append((i, str(entry.type), dict(entry.payload)))
    return out


def _assert_record_unique(e: DemoElection) -> None:
    """What the verifier's V15 checks: no unique value of any cast or spoiled ballot repeats on the ledger."""
    values = []
    for _i, etype, p in _ballot_entries(e):
        if etype in ("ballot.cast", "ballot.spoiled"):
            values += ballot_unique_values(p["ballot_hash"], p["ballot"])
    assert list(repeats_within(tuple(values))) == []


@pytest.fixture
def election(tmp_path: Path, database_url: str | None) -> Any:
    now = dt.datetime.now(dt.UTC)
    ca = JpkiTestCa.generate(now)
    residents = make_residents(VOTERS, ca, now, pool=RsaKeyPool(VOTERS))
    manifest = tsukuba_manifest(now, small=True, trustees=1, threshold=1)
    with start_election_on(database_url, tmp_path, residents, ca, manifest) as e:
        yield e


def test_two_voters_racing_one_ballots_values_get_one_acceptance(election: DemoElection) -> None:
    """Two different voters submit, at the same moment, the same ballot (copied whole), then a ballot that
    copies the first one's nonce and contest: each time exactly one is accepted, the other refused with a
    duplicate code; the record repeats no value (V15), and no reservation or pending evidence is left."""
    e = election
    r = e.residents
    with e.client() as c:
        shared = c.prepare(CHOICE).ballot
    for round_, (a, b) in enumerate([(0, 1), (2, 3)]):
        if round_ == 0:
            first = second = shared
        else:
            with e.client() as c:
                first = c.prepare(CHOICE).ballot
            own, _ = encrypt_ballot(e.intake.context(), OTHER, ballot_nonce=first.ballot_nonce)
            forged = own.to_dict()
            forged["contests"][0] = first.to_dict()["contests"][0]
            second = EncryptedBallot.from_dict(forged)
        before = e.ledger_size()
        answers = _at_once(e, [_body(e, r[a].card, first), _body(e, r[b].card, second)])
        ok = [x for x in answers if x.status_code == 200]
        refused = [x for x in answers if x.status_code != 200]
        assert len(ok) == 1 and len(refused) == 1, [x.text for x in answers]
        assert refused[0].status_code == 409 and _code(refused[0]) in DUPLICATES, refused[0].text
        assert e.ledger_size() == before + 1
    _assert_record_unique(e)
    with Session(e.service.engine) as s:
        assert s.exec(select(AuthEvidence).where(AuthEvidence.status == "pending")).first() is None
        assert s.exec(select(BallotUniqueValue).where(BallotUniqueValue.ledger_index < 0)).first() is None
    report = e.service.reconcile(full=True)
    assert report.problems == ()


def test_a_value_taken_after_the_checks_is_refused_by_the_key_and_the_challenge_stays_unused(
    election: DemoElection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Step 6 reads no unique value: the primary key of the reserved values refuses one that another ballot
    took after this cast's checks before the locks (here: those checks skipped, as if the two casts had
    raced). The refusal has the rule's code, read again; the one-time challenge is not spent, nothing is
    written, and the refused voter's next ballot is accepted."""
    e = election
    r = e.residents
    with e.client() as c:
        first = c.prepare(CHOICE).ballot
    own, _ = encrypt_ballot(e.intake.context(), OTHER, ballot_nonce=first.ballot_nonce)
    forged = own.to_dict()
    forged["contests"][0] = first.to_dict()["contests"][0]  # the first ballot's nonce and first contest
    copies = [(first, "ballot.duplicate"), (EncryptedBallot.from_dict(forged), "ballot.duplicate_nonce")]
    assert e.http.post("/api/v1/voter/ballots", json=_body(e, r[0].card, first)).status_code == 200
    check = type(e.intake)._check_unique
    for copy, code in copies:
        calls: list[int] = []

        def after_the_race(self: Any, s: Any, b: Any, calls: list[int] = calls) -> None:
            calls.append(1)
            if len(calls) > 1:  # the checks before the locks saw nothing; the refusal reads again
                check(self, s, b)

        monkeypatch.setattr(type(e.intake), "_check_unique", after_the_race)
        size = e.ledger_size()
        body = _body(e, r[1].card, copy)
        answer = e.http.post("/api/v1/voter/ballots", json=body)
        assert answer.status_code == 409 and _code(answer) == code, answer.text
        assert len(calls) == 2 and e.ledger_size() == size
        monkeypatch.setattr(type(e.intake), "_check_unique", check)
        with Session(e.service.engine) as s:
            taken = s.get(IntakeChallenge, body["auth"]["challenge"])
            assert taken is not None and taken.used_at is None
            assert len(s.exec(select(AuthEvidence)).all()) == 1  # the first voter's, final
            assert s.exec(select(AuthEvidence).where(AuthEvidence.status == "pending")).all() == []
            assert s.exec(select(BallotUniqueValue).where(BallotUniqueValue.ledger_index < 0)).all() == []
    with e.client() as c:
        assert c.cast_jpki(r[1].card, CHOICE).seq == 1
    _assert_record_unique(e)
    assert e.service.reconcile(full=True).problems == ()


@pytest.mark.parametrize("how", ["used", "expired"])
def test_a_challenge_spent_or_expired_after_the_checks_is_refused_under_the_locks(
    election: DemoElection, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """Step 6 takes the one-time challenge again (on PostgreSQL in the one statement that also reserves the
    values and writes the pending evidence, and only if the challenge was taken): one that another cast
    spent, or that expired, after this cast's checks before the locks (here: those checks skipped) is
    refused with its code, and nothing of the cast is written."""
    e = election
    r = e.residents
    check = type(e.intake)._check_challenge
    calls: list[int] = []

    def after_the_race(self: Any, challenge: bytes, s: Any = None) -> None:
        calls.append(1)
        if len(calls) > 1:  # the checks before the locks saw it fresh; the refusal reads it again
            check(self, challenge, s)

    with e.client() as c:
        first, second = c.prepare(CHOICE).ballot, c.prepare(OTHER).ballot
    body = _body(e, r[0].card, first)
    if how == "used":  # another voter's cast spends it first (a client that sent the challenge twice)
        spender = _body(e, r[1].card, second)
        spent = bytes.fromhex(body["auth"]["challenge"])
        sub = r[1].card.sign_ballot(e.service.base_hash, second.ballot_hash(), spent)
        spender["auth"] |= {"challenge": spent.hex(), "signature": sub.signature.hex()}
        assert e.http.post("/api/v1/voter/ballots", json=spender).status_code == 200
    else:  # the service's clock is past the challenge's expiry when the cast takes it
        later = dt.datetime.now(dt.UTC) + e.intake.challenge_ttl + dt.timedelta(seconds=5)
        monkeypatch.setattr(e.intake, "clock", lambda: later)
    monkeypatch.setattr(type(e.intake), "_check_challenge", after_the_race)
    size = e.ledger_size()
    answer = e.http.post("/api/v1/voter/ballots", json=body)
    assert answer.status_code == 401 and _code(answer) == f"challenge.{how}", answer.text
    assert len(calls) == (2 if how == "used" else 1) and e.ledger_size() == size
    with Session(e.service.engine) as s:
        taken = s.get(IntakeChallenge, body["auth"]["challenge"])
        assert taken is not None and (taken.used_at is not None) == (how == "used")
        assert s.exec(select(AuthEvidence).where(AuthEvidence.status == "pending")).all() == []
        assert (
            s.exec(
                select(BallotUniqueValue).where(BallotUniqueValue.ballot_hash == first.ballot_hash().hex())
            ).all()
            == []
        )
    monkeypatch.undo()
    with e.client() as c:  # the voter's next ballot, with a fresh challenge, is accepted
        assert c.cast_jpki(r[0].card, CHOICE).seq == 1
    assert e.service.reconcile(full=True).problems == ()


def test_many_voters_cast_side_by_side_and_a_racing_close_is_after_every_cast(election: DemoElection) -> None:
    """Every voter casts at once, twice each (re-votes racing), while the commission closes voting: every
    acknowledged ballot is on the ledger before ``voting.closed``, no ``ballot.cast`` follows it, every
    refusal says voting is closed, each voter's ``seq`` runs 1..k in ledger order, and a full reconciliation
    finds the private state equal to the ledger."""
    e = election
    bodies = []
    for res in e.residents[4:]:
        for _ in range(2):
            with e.client() as c:
                bodies.append((res, _body(e, res.card, c.prepare(CHOICE).ballot)))
    go = threading.Barrier(len(bodies) + 1)

    def send(item: tuple[Any, dict[str, Any]]) -> tuple[Any, httpx.Response]:
        with httpx.Client(base_url=e.base_url, timeout=120) as c:
            go.wait()
            return item[0], c.post("/api/v1/voter/ballots", json=item[1])

    def close() -> Any:
        go.wait()
        return e.close_early()

    with cf.ThreadPoolExecutor(len(bodies) + 1) as pool:
        sent = [pool.submit(send, b) for b in bodies]
        closing = pool.submit(close)
        answers = [f.result() for f in sent]
        closing.result()
    entries = _ballot_entries(e)
    (closed,) = [i for i, t, _ in entries if t == "voting.closed"]
    casts = [(i, p) for i, t, p in entries if t == "ballot.cast"]
    assert all(i < closed for i, _ in casts)
    acked = [r.json() for _, r in answers if r.status_code == 200]
    assert sorted(a["leaf_index"] for a in acked) == [i for i, _ in casts]  # acknowledged = on the ledger
    for _, r in answers:
        if r.status_code != 200:
            assert r.status_code == 409 and _code(r) in ("voting.closed", "voting.not_open"), r.text
    by_voter: dict[str, list[int]] = {}
    for _, p in casts:
        by_voter.setdefault(p["voter_alias"], []).append(p["seq"])
    assert all(seqs == list(range(1, len(seqs) + 1)) for seqs in by_voter.values()), by_voter
    report = e.service.reconcile(full=True)
    assert report.problems == ()


def test_more_casts_at_once_than_the_pool_has_connections_all_succeed(election: DemoElection) -> None:
    """Every voter casts twice at once (24 requests, 12 voters): every cast is acknowledged and on the
    ledger, and reconciliation finds nothing to repair. (``bench_intake.py`` with 16 clients on PostgreSQL
    once got 500s here: each step-6 holder took a lock connection and then waited for a session connection
    of the exhausted pool; this test does not reproduce that timing reliably, the next one pins the bound.)"""
    e = election
    bodies = []
    for res in e.residents:
        for _ in range(2):
            with e.client() as c:
                bodies.append(_body(e, res.card, c.prepare(CHOICE).ballot))
    before = e.ledger_size()
    answers = _at_once(e, bodies)
    assert [x.status_code for x in answers] == [200] * len(bodies), [
        x.text for x in answers if x.status_code != 200
    ]
    assert e.ledger_size() == before + len(bodies)
    _assert_record_unique(e)
    assert e.service.reconcile(full=True).problems == ()


def test_step_6_holders_are_bounded_by_the_cast_slots(election: DemoElection) -> None:
    """At most ``CAST_SLOTS`` casts of one process hold step 6 (``casting``) at once, so their lock and
    session connections never exhaust the service's pool; the others wait their turn and all get in."""
    from voting.service._core import CAST_SLOTS

    e = election.service
    inside = peak = done = 0
    lock = threading.Lock()

    def hold(i: int) -> None:
        nonlocal inside, peak, done
        with e.casting(f"{i:064x}"):
            with lock:
                inside += 1
                peak = max(peak, inside)
            threading.Event().wait(0.05)
            with lock:
                inside -= 1
                done += 1

    n = CAST_SLOTS * 3
    with cf.ThreadPoolExecutor(n) as pool:
        list(pool.map(hold, range(n)))
    assert done == n and peak == CAST_SLOTS, (peak, CAST_SLOTS)
