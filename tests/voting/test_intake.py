"""Ballot intake over real HTTP (uvicorn on loopback): JPKI casting, re-voting, kiosk override, spoiling,
rejections that leave the ledger unchanged, private evidence, rate limiting and concurrent submissions."""

from __future__ import annotations

import concurrent.futures as cf
import datetime as dt
import json
import random
from pathlib import Path
from typing import Any

import httpx
import pytest
from _serve_util import kiosk_cast
from _service_util import start_election_on
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from crypto import encrypt_ballot, reveal, verify_ballot
from crypto._ballot import EncryptedBallot
from voting._db import create_tables, make_engine
from voting._intake_db import AuthEvidence, IntakeBallot, IntakeChallenge, VoterState
from voting.auth import JpkiEvidence
from voting.clients.kiosk import KioskApiError
from voting.testing import DemoElection, JpkiTestCa, TestResident, make_residents, tsukuba_manifest

pytestmark = pytest.mark.xdist_group("intake")

CHOICE = {"mayor": ["cand-2"], "referendum": ["no"], "subsidy": ["proj-1", "proj-3"]}


@pytest.fixture(scope="module")
def election(tmp_path_factory: pytest.TempPathFactory, module_database_url: str | None) -> Any:
    now = dt.datetime.now(dt.UTC)
    ca = JpkiTestCa.generate(now)
    residents = make_residents(10, ca, now)  # fresh RSA keys: these tests are about signatures
    revoked = residents[9:]
    manifest = tsukuba_manifest(now, small=True, trustees=3, threshold=2)
    with start_election_on(
        module_database_url, tmp_path_factory.mktemp("intake"), residents, ca, manifest, revoked=revoked
    ) as e:
        yield e


@pytest.fixture(scope="module")
def kiosk(election: DemoElection) -> Any:
    """An enrolled polling-place kiosk with its session 1 open (``voting.clients.kiosk.KioskApi``)."""
    api, pin = election.enrol_kiosk("intake-hall-1")
    api.open(1, pin)
    return api


def _post(e: DemoElection, path: str, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return e.http.post("/api/v1/voter" + path, json=body, headers=headers or {})


def _jpki_body(
    e: DemoElection, card: Any, ballot: EncryptedBallot, challenge: bytes | None = None
) -> dict[str, Any]:
    if challenge is None:
        challenge = bytes.fromhex(_post(e, "/challenge", None).json()["challenge"])
    sub = card.sign_ballot(e.service.base_hash, ballot.ballot_hash(), challenge)
    return {
        "ballot": ballot.to_dict(),
        "auth": {
            "method": "jpki",
            "certificate": sub.certificate_der.hex(),
            "intermediates": [],
            "signature": sub.signature.hex(),
            "challenge": challenge.hex(),
        },
    }


def _encrypt(e: DemoElection, choices: dict[str, list[str]] = CHOICE) -> EncryptedBallot:
    with e.client() as c:
        return c.prepare(choices).ballot


def _entry(e: DemoElection, index: int) -> Any:
    return e.service.ledger.entry(index)


def test_cast_records_alias_and_evidence_hash_only(election: DemoElection) -> None:
    e = election
    r0 = e.residents[0]
    ballot = _encrypt(e)
    body = _jpki_body(e, r0.card, ballot)
    before = e.ledger_size()
    resp = _post(e, "/ballots", body)
    assert resp.status_code == 200, resp.text
    rec = resp.json()
    assert rec["kind"] == "cast" and rec["seq"] == 1 and rec["channel"] == "internet"
    assert rec["ballot_hash"] == ballot.ballot_hash().hex()
    assert rec["tracking_code"] == ballot.tracking_code()
    assert rec["leaf_index"] == before and e.ledger_size() == before + 1

    entry = _entry(e, rec["leaf_index"])
    assert entry.type == "ballot.cast"
    p = entry.payload
    assert set(p) == {
        "election_id",
        "base_hash",
        "ballot",
        "ballot_hash",
        "tracking_code",
        "voter_alias",
        "roll_proof",
        "channel",
        "auth",
        "seq",
    }
    assert set(p["auth"]) == {"method", "evidence_hash"} and p["auth"]["method"] == "jpki"
    # the evidence hash is the auth package's transcript hash over exactly what the card signed
    ch = bytes.fromhex(body["auth"]["challenge"])
    ev = JpkiEvidence(
        e.service.base_hash,
        ballot.ballot_hash(),
        ch,
        bytes.fromhex(body["auth"]["signature"]),
        r0.card.certificate_der,
    )
    assert p["auth"]["evidence_hash"] == ev.digest.hex()
    # no personal data and not the certificate in the public entry
    text = entry.canonical.decode("utf-8")
    for secret in (
        r0.person.name,
        r0.person.address,
        r0.person.birth_date.strftime("%Y%m%d"),
        r0.card.certificate_der.hex()[:64],
        ch.hex(),
    ):
        assert secret not in text
    # the evidence is kept privately, for auditors with the admin token only
    no = e.http.get(f"/api/v1/voter/evidence/{ev.digest.hex()}")
    assert no.status_code == 401
    yes = e.http.get(
        f"/api/v1/voter/evidence/{ev.digest.hex()}", headers={"Authorization": f"Bearer {e.admin_token}"}
    )
    assert yes.status_code == 200
    assert yes.json()["certificate"] == r0.card.certificate_der.hex()
    with Session(e.service.engine) as s:
        row = s.get(AuthEvidence, ev.digest.hex())
        assert row is not None and row.voter_alias == p["voter_alias"]


def test_revote_increments_seq_and_receipt_verifies(election: DemoElection) -> None:
    e = election
    r = e.residents[1]
    with e.client() as c:
        first = c.cast_jpki(r.card, CHOICE)
        second = c.cast_jpki(r.card, {"mayor": ["cand-3"], "referendum": [], "subsidy": []})
        assert (first.seq, second.seq) == (1, 2)
        assert second.leaf_index > first.leaf_index
        c.verify_receipt(first)
        c.verify_receipt(second)
    alias = _entry(e, first.leaf_index).payload["voter_alias"]
    assert _entry(e, second.leaf_index).payload["voter_alias"] == alias
    with Session(e.service.engine) as s:
        st = s.get(VoterState, (e.service.election_id, alias))
        assert st is not None and st.seq == 2 and st.last_index == second.leaf_index


def test_kiosk_ballot_overrides_and_ends_internet_voting(election: DemoElection, kiosk: Any) -> None:
    e = election
    r = e.residents[2]
    with e.client() as c:
        c.cast_jpki(r.card, CHOICE)
        k = kiosk_cast(kiosk, c, r.card, {"mayor": ["cand-1"], "referendum": ["yes"], "subsidy": []})
        assert k.channel == "kiosk" and k.seq == 2
        payload = _entry(e, k.leaf_index).payload
        assert payload["channel"] == "kiosk" and payload["kiosk"]["kiosk_id"] == "intake-hall-1"
        before = e.ledger_size()
        refused = _jpki_body(e, r.card, _encrypt(e))
        resp = _post(e, "/ballots", refused)
        assert resp.status_code == 409 and resp.json()["error"]["code"] == "voter.kiosk_voted"
        # refused under the locks, after its challenge was taken there: the refusal gave the challenge back
        with Session(e.service.engine) as s:
            taken = s.get(IntakeChallenge, refused["auth"]["challenge"])
            assert taken is not None and taken.used_at is None
        with pytest.raises(KioskApiError) as second:  # a second kiosk ballot too
            kiosk_cast(kiosk, c, r.card, CHOICE)
        assert (second.value.status, second.value.code) == (409, "voter.kiosk_voted")
    assert e.ledger_size() == before
    with Session(e.service.engine) as s:  # the voter's state, updated by the kiosk ballot
        st = s.get(VoterState, (e.service.election_id, payload["voter_alias"]))
        assert st is not None and (st.seq, st.kiosk_index, st.last_index) == (2, k.leaf_index, k.leaf_index)


def test_spoil_publishes_opening_and_blocks_casting_it(election: DemoElection) -> None:
    e = election
    with e.client() as c:
        p = c.prepare(CHOICE)
        res = c.challenge(p)
    assert res.receipt.kind == "spoiled"
    assert {k: sorted(v) for k, v in res.opened.items()} == {k: sorted(v) for k, v in CHOICE.items()}
    entry = _entry(e, res.receipt.leaf_index)
    assert entry.type == "ballot.spoiled" and "voter_alias" not in entry.payload
    before = e.ledger_size()
    resp = _post(e, "/ballots", _jpki_body(e, e.residents[3].card, p.ballot))
    assert resp.status_code == 409 and resp.json()["error"]["code"] == "ballot.duplicate"
    assert "already spoiled (challenged)" in resp.json()["error"]["message"]
    assert e.ledger_size() == before


def test_spoil_rejections_leave_the_ledger_unchanged_and_verify_once(
    election: DemoElection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bad opening or a tampered ballot is refused with a code; each submission checks the ballot's proofs
    once (the opening's check includes the ballot's: intake does not verify it a second time)."""
    import crypto._ballot_verify as cb
    import voting.service._intake_checks as vi
    from crypto import reveal

    e = election
    calls: list[bytes] = []
    real = cb.verify_ballot

    def counted(ctx: Any, ballot: EncryptedBallot) -> None:
        calls.append(ballot.ballot_hash())
        real(ctx, ballot)

    def counted_dict(ctx: Any, ballot: Any) -> Any:
        checked = real_check(ctx, ballot)
        calls.append(checked.ballot_hash)
        return checked

    real_check = vi.check_with_engine
    monkeypatch.setattr(cb, "verify_ballot", counted)  # called by verify_revealed
    monkeypatch.setattr(vi, "check_with_engine", counted_dict)  # called by cast (whichever ballot engine)

    with e.client() as c:
        p, q = c.prepare(CHOICE), c.prepare(CHOICE)
    revealed, other = reveal(p.ballot, p.secrets).to_dict(), reveal(q.ballot, q.secrets).to_dict()
    wrong = {**other, "ballot_hash": revealed["ballot_hash"]}  # another ballot's randomness under this hash
    cases = [
        ("another ballot's opening", "ballot.revealed-ballot-hash", p.ballot.to_dict(), other),
        ("wrong randomness", "ballot.revealed-reencryption", p.ballot.to_dict(), wrong),
        ("tampered ballot", "ballot.selection-proof", _tamper_proof(p.ballot.to_dict()), revealed),
        ("undecodable opening", "ballot.encoding", p.ballot.to_dict(), {"contests": []}),
    ]
    before = e.ledger_size()
    for name, code, ballot, opening in cases:
        calls.clear()
        resp = _post(e, "/spoil", {"ballot": ballot, "revealed": opening})
        assert resp.status_code == 422, (name, resp.text)
        assert resp.json()["error"]["code"] == code, (name, resp.text)
        assert e.ledger_size() == before, name
        assert len(calls) == (0 if code == "ballot.encoding" else 1), name
    calls.clear()
    assert _post(e, "/spoil", {"ballot": p.ballot.to_dict(), "revealed": revealed}).status_code == 200
    assert calls == [p.ballot_hash]
    calls.clear()
    ok = _post(e, "/ballots", _jpki_body(e, e.residents[3].card, q.ballot))
    assert ok.status_code == 200, ok.text
    assert calls == [q.ballot_hash]


def _tamper_proof(b: dict[str, Any]) -> dict[str, Any]:
    b = json.loads(json.dumps(b))
    sel = b["contests"][0]["selections"][0]
    sel["ciphertext"], b["contests"][0]["selections"][1]["ciphertext"] = (
        b["contests"][0]["selections"][1]["ciphertext"],
        sel["ciphertext"],
    )
    return b


def test_rejections_are_4xx_with_codes_and_leave_the_ledger_unchanged(election: DemoElection) -> None:
    e = election
    good, other = e.residents[4], e.residents[5]
    now = dt.datetime.now(dt.UTC)
    stranger = e.ca.issue_card(TestResident("部外 者", dt.date(1980, 1, 1), "東京都千代田区1-1"), now)
    cases: list[tuple[str, int, str, dict[str, Any], dict[str, str]]] = []

    b = _encrypt(e)
    body = _jpki_body(e, good.card, b)
    body["auth"]["signature"] = _jpki_body(e, other.card, b)["auth"]["signature"]
    cases.append(("another card's signature", 401, "jpki.signature", body, {}))

    b = _encrypt(e)
    body = _jpki_body(e, good.card, b)
    body["auth"]["certificate"] = other.card.certificate_der.hex()
    cases.append(("certificate of another resident", 401, "jpki.signature", body, {}))

    b = _encrypt(e)
    cases.append(
        ("unknown challenge", 401, "challenge.unknown", _jpki_body(e, good.card, b, challenge=bytes(32)), {})
    )

    b = _encrypt(e)
    body = _jpki_body(e, good.card, b)
    body["ballot"] = _tamper_proof(body["ballot"])
    cases.append(("tampered ballot", 422, "ballot.selection-proof", body, {}))

    b = _encrypt(e)
    body = _jpki_body(e, good.card, b)
    body["ballot"]["election_hash"] = "00" * 32
    cases.append(("ballot for another election", 422, "ballot.election-hash", body, {}))

    b = _encrypt(e)
    body = _jpki_body(e, good.card, b)
    body["ballot"]["version"] = 1  # protocol v1's ballot format: refused by v2's strict decoding
    cases.append(("undecodable ballot", 422, "ballot.encoding", body, {}))

    cases.append(("revoked card", 401, "jpki.revoked", _jpki_body(e, e.residents[9].card, _encrypt(e)), {}))
    cases.append(("not on the roll", 403, "voter.not_on_roll", _jpki_body(e, stranger, _encrypt(e)), {}))
    cases.append(("schema violation", 422, "request.invalid", {"ballot": {}, "auth": {"method": "jpki"}}, {}))
    cases.append(
        ("unknown auth method", 422, "request.invalid", {"ballot": {}, "auth": {"method": "password"}}, {})
    )

    before = e.ledger_size()
    for name, status, code, body, headers in cases:
        resp = _post(e, "/ballots", body, headers)
        assert resp.status_code == status, (name, resp.text)
        assert resp.json()["error"]["code"] == code, (name, resp.text)
        assert e.ledger_size() == before, name

    # the kiosk route without a kiosk's signature (tests/voting/test_kiosk_requests.py has the rest)
    body = _jpki_body(e, good.card, _encrypt(e))
    for headers in ({}, {"Authorization": "Bearer nope"}):
        resp = e.http.post("/api/v1/kiosk/ballots", json=body, headers=headers)
        assert resp.status_code == 401 and resp.json()["error"]["code"] == "kiosk.required"
    assert e.ledger_size() == before
    # the same challenge cannot be used twice; a replayed ballot is refused
    ok = _post(e, "/ballots", body)
    assert ok.status_code == 200, ok.text
    size = e.ledger_size()
    b2 = _encrypt(e)
    reuse = _jpki_body(e, good.card, b2, challenge=bytes.fromhex(body["auth"]["challenge"]))
    resp = _post(e, "/ballots", reuse)
    assert resp.status_code == 401 and resp.json()["error"]["code"] == "challenge.used"
    resp = _post(e, "/ballots", _jpki_body(e, good.card, EncryptedBallot.from_dict(body["ballot"])))
    assert resp.status_code == 409 and resp.json()["error"]["code"] == "ballot.duplicate"
    assert "this ballot was already cast" in resp.json()["error"]["message"]
    assert e.ledger_size() == size


def test_expired_challenge_is_refused(election: DemoElection) -> None:
    e = election
    ballot = _encrypt(e)
    body = _jpki_body(e, e.residents[6].card, ballot)
    real_clock = e.intake.clock
    e.intake.clock = lambda: real_clock() + dt.timedelta(hours=1)
    try:
        before = e.ledger_size()
        resp = _post(e, "/ballots", body)
    finally:
        e.intake.clock = real_clock
    assert resp.status_code == 401 and resp.json()["error"]["code"] == "challenge.expired"
    assert e.ledger_size() == before


@pytest.mark.filterwarnings("error::sqlalchemy.exc.SAWarning")  # in the server threads too
def test_concurrent_challenges_purge_expired_ones_without_conflict(election: DemoElection) -> None:
    """Issuing a challenge also deletes challenges expired for over a day; concurrent requests doing that
    on the same rows all succeed, without SQLAlchemy's "expected to delete N rows; 0 were matched" (each
    request used to load the rows and delete them one by one; the losers of the race warned)."""
    e = election
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=3)
    with Session(e.service.engine) as s:
        s.add_all(
            IntakeChallenge(
                challenge=f"{i:064x}", election_id=e.service.election_id, issued_at=old, expires_at=old
            )
            for i in range(300)
        )
        s.commit()

    def ask(_: int) -> httpx.Response:
        with httpx.Client(base_url=e.base_url, timeout=60) as c:
            return c.post("/api/v1/voter/challenge")

    with cf.ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(ask, range(8)))
    assert [a.status_code for a in answers] == [200] * 8, [a.text for a in answers if a.status_code != 200]
    stale = select(IntakeChallenge).where(IntakeChallenge.expires_at < old + dt.timedelta(days=1))
    with Session(e.service.engine) as s:
        assert s.exec(stale).first() is None


def test_concurrent_submissions_of_one_voter_are_serialised(election: DemoElection) -> None:
    """Real concurrent HTTP requests: every internet ballot of one voter gets its own seq; of concurrent
    kiosk ballots of another voter (at four kiosks at once) exactly one is accepted."""
    e = election
    n = 6
    voter, kiosk_voter = e.residents[7], e.residents[8]
    bodies = [_jpki_body(e, voter.card, _encrypt(e)) for _ in range(n)]
    kiosks = []
    for i in range(4):
        api, pin = e.enrol_kiosk(f"concurrent-hall-{i}")
        api.open(1, pin)
        kiosks.append(api)
    before = e.ledger_size()

    def send(body: dict[str, Any]) -> httpx.Response:
        with httpx.Client(base_url=e.base_url, timeout=60) as c:
            return c.post("/api/v1/voter/ballots", json=body)

    def at_kiosk(api: Any) -> Any:
        with e.client() as c:
            try:
                return kiosk_cast(api, c, kiosk_voter.card, CHOICE)
            except KioskApiError as err:
                return err

    with cf.ThreadPoolExecutor(max_workers=n + len(kiosks)) as pool:
        internet_f = [pool.submit(send, b) for b in bodies]
        kiosk_f = [pool.submit(at_kiosk, k) for k in kiosks]
        internet = [f.result() for f in internet_f]
        kiosk = [f.result() for f in kiosk_f]
    assert all(a.status_code == 200 for a in internet), [a.text for a in internet]
    assert sorted(a.json()["seq"] for a in internet) == list(range(1, n + 1))
    refused = [a for a in kiosk if isinstance(a, KioskApiError)]
    assert len(kiosk) - len(refused) == 1
    assert all(a.status == 409 and a.code == "voter.kiosk_voted" for a in refused)
    (accepted,) = [a for a in kiosk if not isinstance(a, KioskApiError)]
    alias = _entry(e, accepted.leaf_index).payload["voter_alias"]
    with Session(e.service.engine) as s:  # the kiosk voter's first ballot wrote its state: kiosk_index set
        st = s.get(VoterState, (e.service.election_id, alias))
        assert st is not None
        assert (st.seq, st.kiosk_index, st.last_index) == (1, accepted.leaf_index, accepted.leaf_index)
    assert e.ledger_size() == before + n + 1
    # seq order equals ledger order for the voter
    by_index = sorted((a.json()["leaf_index"], a.json()["seq"]) for a in internet)
    assert [s for _, s in by_index] == list(range(1, n + 1))


def test_every_cast_carries_a_roll_proof_of_its_alias(election: DemoElection, kiosk: Any) -> None:
    """Internet and kiosk casts alike: each ``ballot.cast`` entry's roll_proof is the RFC 9162 inclusion
    proof of its voter alias in the published roll tree."""
    from ledger.merkle import inclusion_ranges, leaf_hash, verify_inclusion

    e = election
    r = e.residents[6]  # the other tests' ballots of resident 6 are refused before the kiosk rule
    with e.client() as c:
        assert c.cast_jpki(r.card, CHOICE).channel == "internet"
        assert kiosk_cast(kiosk, c, r.card, CHOICE).channel == "kiosk"
    entries = e.service.ledger.entries(0, e.ledger_size())
    (roll,) = [x.payload for x in entries if x.type == "roll.commitment"]
    casts = [x.payload for x in entries if x.type == "ballot.cast"]
    assert {p["channel"] for p in casts} == {"internet", "kiosk"}
    seen: dict[str, int] = {}
    for p in casts:
        rp = p["roll_proof"]
        assert set(rp) == {"index", "path"}
        assert len(rp["path"]) == len(inclusion_ranges(rp["index"], roll["size"]))
        verify_inclusion(
            leaf_hash(bytes.fromhex(p["voter_alias"])),
            rp["index"],
            roll["size"],
            [bytes.fromhex(h) for h in rp["path"]],
            bytes.fromhex(roll["root"]),
        )
        assert seen.setdefault(p["voter_alias"], rp["index"]) == rp["index"]  # one leaf per voter


def test_rate_limit_answers_429_and_changes_nothing(tmp_path: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    ca = JpkiTestCa.generate(now)
    residents = make_residents(1, ca, now)
    manifest = tsukuba_manifest(now, small=True, trustees=1, threshold=1)
    with start_election_on(None, tmp_path, residents, ca, manifest, rate_limit_per_address=3) as e:
        before = e.ledger_size()
        codes = [_post(e, "/challenge", None).status_code for _ in range(5)]
        assert codes[:3] == [200, 200, 200] and codes[3:] == [429, 429]
        resp = _post(e, "/ballots", {"ballot": {}, "auth": {}})
        assert resp.status_code == 429 and resp.json()["error"]["code"] == "rate_limited"
        assert e.ledger_size() == before


def test_closed_election_refuses_ballots(tmp_path: Path, database_url: str | None) -> None:
    now = dt.datetime.now(dt.UTC)
    ca = JpkiTestCa.generate(now)
    residents = make_residents(1, ca, now)
    manifest = tsukuba_manifest(now, small=True, trustees=1, threshold=1)
    with start_election_on(database_url, tmp_path, residents, ca, manifest) as e:
        body = _jpki_body(e, residents[0].card, _encrypt(e))
        e.close_early()
        before = e.ledger_size()
        resp = _post(e, "/ballots", body)
        assert resp.status_code == 409 and resp.json()["error"]["code"] == "voting.closed"
        resp = _post(e, "/challenge", None)
        assert resp.status_code == 409
        assert e.ledger_size() == before


def test_database_refuses_a_second_seq_kiosk_ballot_or_evidence_of_a_voter(
    tmp_path: Path, database_url: str | None
) -> None:
    """A voter's submissions are serialised by an in-process lock (one server process owns an election);
    the database's own unique keys refuse what a second process, or a bug, could otherwise record twice."""
    engine = make_engine(database_url or f"sqlite:///{tmp_path / 'keys.sqlite3'}")
    create_tables(engine)
    now = dt.datetime.now(dt.UTC)
    a, b = "a" * 64, "b" * 64

    def ballot(h: str, seq: int, channel: str, alias: str = a) -> IntakeBallot:
        return IntakeBallot(
            ballot_hash=h * 64,
            election_id="e",
            kind="cast",
            tracking_code=h,
            ledger_index=seq,
            voter_alias=alias,
            channel=channel,
            seq=seq,
            created_at=now,
        )

    def evidence(h: str) -> AuthEvidence:
        return AuthEvidence(
            evidence_hash=h * 64,
            election_id="e",
            voter_alias=a,
            ballot_hash="1" * 64,
            method="jpki",
            evidence="{}",
            created_at=now,
        )

    def insert(*rows: Any) -> None:
        with Session(engine) as s:
            s.add_all(rows)
            s.commit()

    try:
        insert(
            ballot("1", 1, "internet"), ballot("2", 2, "kiosk"), VoterState(election_id="e", voter_alias=a)
        )
        insert(evidence("e"))
        for name, row in (
            ("the same seq again", ballot("3", 2, "internet")),
            ("a second kiosk ballot", ballot("3", 3, "kiosk")),
            ("the same ballot hash again", ballot("1", 3, "internet")),
            ("a second voter state", VoterState(election_id="e", voter_alias=a, seq=5)),
            ("the same evidence again", evidence("e")),
        ):
            with pytest.raises(IntegrityError):
                insert(row)
                pytest.fail(f"recorded {name}")
        # the kiosk key is per voter and only on kiosk ballots
        insert(ballot("4", 1, "kiosk", alias=b), ballot("5", 3, "internet"))
        with Session(engine) as s:
            st = s.get(VoterState, ("e", a))
            assert st is not None and st.seq == 0
            assert len(list(s.exec(select(IntakeBallot)))) == 4
    finally:
        engine.dispose()


def test_ballot_encrypted_with_zero_randomness_is_refused(
    election: DemoElection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A device with broken randomness (r = 0 for one selection) produces a ballot whose proofs verify but
    whose pad is the identity, i.e. the vote in the clear: §9.5 refuses it (the one definition the verifier's
    V13 uses too), so the server never publishes it."""
    from crypto import encrypt_ballot, verify_ballot
    from crypto._errors import BallotError
    from crypto._group import Scalar

    real = Scalar.random_nonzero.__func__  # type: ignore[attr-defined]
    calls = {"n": 0}

    def broken(cls: type[Scalar], rng: Any = None) -> Scalar:
        calls["n"] += 1
        return Scalar(0) if calls["n"] == 1 else real(cls, rng)

    e = election
    monkeypatch.setattr(Scalar, "random_nonzero", classmethod(broken))
    # the device's own check (VoterClient.prepare verifies what it encrypted) would refuse it: bypass it
    ballot, _ = encrypt_ballot(e.intake.context(), CHOICE)
    monkeypatch.undo()
    with pytest.raises(BallotError) as info:  # every proof verifies: only the randomness is wrong
        verify_ballot(e.intake.context(), ballot)
    assert info.value.check == "selection-randomness"
    assert ballot.contests[0].selections[0].ciphertext.a.is_identity  # the device really was broken
    before = e.ledger_size()
    resp = _post(e, "/ballots", _jpki_body(e, e.residents[6].card, ballot))
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["code"] == "ballot.selection-randomness"
    assert e.ledger_size() == before


def test_oversized_bodies_are_refused_413_and_change_nothing(election: DemoElection) -> None:
    """A declared Content-Length over the limit and a streamed (chunked) body that crosses it are both
    refused before any route runs; a body under the limit still reaches the route."""
    from voting.api.voter import BODY_LIMITS

    e = election
    before = e.ledger_size()
    limit = BODY_LIMITS[("POST", "/voter/ballots")]  # what the route can accept (docs/api.md)
    big = b'{"ballot": "' + b"0" * (limit + 10) + b'"}'
    resp = e.http.post("/api/v1/voter/ballots", content=big, headers={"content-type": "application/json"})
    assert resp.status_code == 413 and resp.json()["error"]["code"] == "request.too_large"

    def chunks() -> Any:
        for _ in range(limit // 65536 + 2):
            yield b"0" * 65536

    json_ct = {"content-type": "application/json"}
    resp = e.http.post("/api/v1/voter/ballots", content=chunks(), headers=json_ct)
    assert resp.status_code == 413 and resp.json()["error"]["code"] == "request.too_large"
    # the commission's routes have a larger limit (the roll upload): the same size reaches the route
    resp = e.http.put(
        "/api/v1/admin/roll",
        content=b"x" * (1024 * 1024 + 10),
        headers={"content-type": "text/csv", "authorization": f"Bearer {e.admin_token}"},
    )
    assert resp.status_code != 413, resp.text
    assert e.ledger_size() == before


# ----------------------------------------------------------------------------- issue 9: uniqueness at intake
# The verifier's V15 rules (ledger.record.ballot_unique_values): ballot hash, ballot nonce and every
# ciphertext pad are unique across all cast and spoiled ballots. Each attack below is refused at the door,
# with its code, and leaves the ledger unchanged. Ballots are built with crypto's public recipes; whole
# contest and ciphertext dicts are copied, never inner proof fields.


def _fixed(e: DemoElection, choices: dict[str, list[str]], seed: int, nonce: bytes) -> EncryptedBallot:
    """A valid ballot from a fixed random stream: the same ``seed`` with another ``nonce`` gives another
    ballot (hash, proofs) with exactly the same ciphertexts, pad for pad."""
    ballot, _ = encrypt_ballot(e.intake.context(), choices, rng=random.Random(seed), ballot_nonce=nonce)
    return ballot


def _refused(e: DemoElection, path: str, body: Any, status: int, code: str) -> None:
    before = e.ledger_size()
    resp = _post(e, path, body)
    assert resp.status_code == status, resp.text
    assert resp.json()["error"]["code"] == code, resp.text
    assert e.ledger_size() == before


def _spoil_body(ballot: EncryptedBallot, secrets: Any) -> dict[str, Any]:
    return {"ballot": ballot.to_dict(), "revealed": reveal(ballot, secrets).to_dict()}


def test_copied_contest_with_the_victims_nonce_is_refused(election: DemoElection) -> None:
    """Issue 9, finding 2 (Cortier–Smyth): a voter copies the victim's contest (ciphertexts and proofs) with
    the victim's nonce, encrypts his other contests under it and casts it with his own card. Every proof
    verifies; the nonce (and the copied pads) were published: 409 ballot.duplicate_nonce."""
    e = election
    victim, attacker = e.residents[3], e.residents[4]
    vb = _encrypt(e, {"mayor": ["cand-1"], "referendum": ["yes"], "subsidy": []})
    assert _post(e, "/ballots", _jpki_body(e, victim.card, vb)).status_code == 200
    mine = {"mayor": ["cand-3"], "referendum": ["no"], "subsidy": []}
    own, _ = encrypt_ballot(e.intake.context(), mine, ballot_nonce=vb.ballot_nonce)
    forged = own.to_dict()
    forged["contests"][0] = vb.to_dict()["contests"][0]  # the victim's whole mayor contest
    fb = EncryptedBallot.from_dict(forged)
    verify_ballot(e.intake.context(), fb)  # a valid ballot: only uniqueness catches it
    _refused(e, "/ballots", _jpki_body(e, attacker.card, fb), 409, "ballot.duplicate_nonce")


def test_spoil_reusing_a_published_nonce_is_refused(election: DemoElection) -> None:
    """Issue 9, finding 1: an anonymous spoil of a fresh, valid ballot whose nonce is already on the ledger
    used to answer 200 and make the record fail V15 forever."""
    e = election
    cast = _encrypt(e)
    assert _post(e, "/ballots", _jpki_body(e, e.residents[3].card, cast)).status_code == 200
    fresh, secrets = encrypt_ballot(e.intake.context(), CHOICE, ballot_nonce=cast.ballot_nonce)
    _refused(e, "/spoil", _spoil_body(fresh, secrets), 409, "ballot.duplicate_nonce")
    # nor a spoiled ballot's nonce, by a cast or by another spoil
    with e.client() as c:
        challenged = c.prepare(CHOICE)
        c.challenge(challenged)
    again, secrets = encrypt_ballot(e.intake.context(), CHOICE, ballot_nonce=challenged.ballot.ballot_nonce)
    _refused(e, "/spoil", _spoil_body(again, secrets), 409, "ballot.duplicate_nonce")
    _refused(e, "/ballots", _jpki_body(e, e.residents[4].card, again), 409, "ballot.duplicate_nonce")


def test_a_reused_ciphertext_pad_is_refused_cast_or_spoiled(election: DemoElection) -> None:
    """Same randomness, another nonce: a valid ballot whose every pad was published is refused, whether the
    first was cast or spoiled and whether the second is cast or spoiled."""
    e = election
    first = _fixed(e, CHOICE, 11, b"\x01" * 32)
    assert _post(e, "/ballots", _jpki_body(e, e.residents[5].card, first)).status_code == 200
    second = _fixed(e, CHOICE, 11, b"\x02" * 32)
    assert second.ballot_hash() != first.ballot_hash()
    _refused(e, "/ballots", _jpki_body(e, e.residents[7].card, second), 409, "ballot.duplicate_ciphertext")
    _, secrets = encrypt_ballot(e.intake.context(), CHOICE, rng=random.Random(11), ballot_nonce=b"\x02" * 32)
    _refused(e, "/spoil", _spoil_body(second, secrets), 409, "ballot.duplicate_ciphertext")
    # one shared pad is enough: a spoiled ballot, then a ballot whose first selection alone was encrypted
    # with the same randomness (its first random draw), everything else fresh
    spoiled, secrets = encrypt_ballot(
        e.intake.context(), CHOICE, rng=random.Random(12), ballot_nonce=b"\x03" * 32
    )
    assert _post(e, "/spoil", _spoil_body(spoiled, secrets)).status_code == 200
    one, _ = encrypt_ballot(e.intake.context(), CHOICE, rng=_FirstDrawFrom(12, 13), ballot_nonce=b"\x04" * 32)
    shared = _pads(spoiled) & _pads(one)
    assert shared == {spoiled.contests[0].selections[0].ciphertext.a.hex()}, "one pad in common"
    _refused(e, "/ballots", _jpki_body(e, e.residents[7].card, one), 409, "ballot.duplicate_ciphertext")


class _FirstDrawFrom:
    """A random stream: its first draw from ``random.Random(first)``, the rest from ``Random(rest)``."""

    def __init__(self, first: int, rest: int) -> None:
        self._first, self._rest, self._drawn = random.Random(first), random.Random(rest), False

    def randbytes(self, n: int) -> bytes:
        if self._drawn:
            return self._rest.randbytes(n)
        self._drawn = True
        return self._first.randbytes(n)


def _pads(b: EncryptedBallot) -> set[str]:
    return {s.ciphertext.a.hex() for c in b.contests for s in c.selections}


def test_a_pad_repeated_within_one_ballot_is_refused(election: DemoElection) -> None:
    """A device whose randomness repeats (here: constant) makes selections share a pad; the proofs still
    verify, the ballot is refused (422 ballot.repeated_ciphertext), cast or spoiled."""

    class Stuck:
        def randbytes(self, n: int) -> bytes:
            return b"\x07" * n

    e = election
    b, secrets = encrypt_ballot(e.intake.context(), CHOICE, rng=Stuck())  # type: ignore[arg-type]
    verify_ballot(e.intake.context(), b)
    _refused(e, "/ballots", _jpki_body(e, e.residents[7].card, b), 422, "ballot.repeated_ciphertext")
    body = {"ballot": b.to_dict(), "revealed": reveal(b, secrets).to_dict()}
    _refused(e, "/spoil", body, 422, "ballot.repeated_ciphertext")


def test_spoiled_ballot_with_zero_randomness_is_refused(
    election: DemoElection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """r = 0 (the vote in the clear) is refused on the spoil route too: crypto's verification refuses it
    (protocol §9.5), so a published one would make the record invalid."""
    from crypto import encrypt_ballot
    from crypto._group import Scalar

    real = Scalar.random_nonzero.__func__  # type: ignore[attr-defined]
    calls = {"n": 0}

    def broken(cls: type[Scalar], rng: Any = None) -> Scalar:
        calls["n"] += 1
        return Scalar(0) if calls["n"] == 1 else real(cls, rng)

    e = election
    monkeypatch.setattr(Scalar, "random_nonzero", classmethod(broken))
    # the device's own check (VoterClient.prepare verifies what it encrypted) would refuse it: bypass it
    ballot, secrets = encrypt_ballot(e.intake.context(), CHOICE)
    monkeypatch.undo()
    assert ballot.contests[0].selections[0].ciphertext.a.is_identity
    before = e.ledger_size()
    body = {"ballot": ballot.to_dict(), "revealed": reveal(ballot, secrets).to_dict()}
    resp = _post(e, "/spoil", body)
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["code"] == "ballot.selection-randomness", resp.text
    assert e.ledger_size() == before


def test_database_refuses_a_repeated_unique_value(tmp_path: Path, database_url: str | None) -> None:
    """The unique key (election, value, kind) backs the rules whatever process records a ballot."""
    from voting._intake_db import BallotUniqueValue

    engine = make_engine(database_url or f"sqlite:///{tmp_path / 'unique.sqlite3'}")
    create_tables(engine)

    def row(kind: str, value: str, election: str = "e", ballot: str = "1") -> BallotUniqueValue:
        return BallotUniqueValue(
            election_id=election, kind=kind, value=value, ballot_hash=ballot * 64, ledger_index=1
        )

    def insert(*rows: Any) -> None:
        with Session(engine) as s:
            s.add_all(rows)
            s.commit()

    try:
        insert(row("ballot_nonce", "n" * 64), row("pad", "p" * 64))
        for kind, value in (("ballot_nonce", "n" * 64), ("pad", "p" * 64)):
            with pytest.raises(IntegrityError):
                insert(row(kind, value, ballot="2"))
        # the same value in another election, or as another kind, is another key
        insert(row("pad", "p" * 64, election="f"), row("ballot_nonce", "p" * 64))
    finally:
        engine.dispose()


def test_a_ballots_unique_values_go_in_one_statement_all_or_none(
    tmp_path: Path, database_url: str | None
) -> None:
    """A cast reserves its ballot's unique values in ONE multi-row INSERT: a value another ballot holds (on
    the ledger or reserved) refuses the whole statement, so none of the ballot's other values is left behind
    to block a later ballot; a ballot with no taken value is written whole, in order."""
    from sqlalchemy import event

    from ledger.record import UniqueValue
    from voting._intake_db import BallotUniqueValue
    from voting.service._intake_checks import RESERVED, _Ballot

    engine = make_engine(database_url or f"sqlite:///{tmp_path / 'unique.sqlite3'}")
    create_tables(engine)
    inserts: list[tuple[str, bool]] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _seen(_c: Any, _cur: Any, sql: str, _params: Any, _ctx: Any, many: bool) -> None:
        if sql.startswith("INSERT"):
            inserts.append((sql, many))

    def ballot(tag: str, *values: tuple[str, str]) -> _Ballot:
        unique = (UniqueValue("ballot_hash", tag * 64), *(UniqueValue(k, v) for k, v in values))  # type: ignore[arg-type]
        return _Ballot(b"", tag * 64, "", {}, unique)

    def rows(s: Session) -> dict[tuple[str, str], tuple[str, int]]:
        return {(r.kind, r.value): (r.ballot_hash, r.ledger_index) for r in s.exec(select(BallotUniqueValue))}

    try:
        pads = [("pad", f"{i:064x}") for i in range(15)]
        with Session(engine) as s:
            ballot("a", ("ballot_nonce", "n" * 64), *pads).insert_rows(s, "e", RESERVED)
            s.commit()
            [(sql, many)] = inserts  # 17 rows in one statement, not an executemany of 17
            assert not many and sql.count("), (") == 16
            written = rows(s)
            assert len(written) == 17 and set(written.values()) == {("a" * 64, RESERVED)}
        # a second ballot repeating ONE pad (the last) of the first: nothing of it is written
        with Session(engine) as s:
            with pytest.raises(IntegrityError):
                ballot("b", ("ballot_nonce", "m" * 64), ("pad", "f" * 64), pads[-1]).insert_rows(s, "e", 7)
            s.rollback()
            assert rows(s) == written
        # ... so its own values stay free for a fresh ballot
        with Session(engine) as s:
            ballot("c", ("ballot_nonce", "m" * 64), ("pad", "f" * 64)).insert_rows(s, "e", 8)
            s.commit()
            assert rows(s)[("ballot_nonce", "m" * 64)] == ("c" * 64, 8)
            assert len(rows(s)) == 20
    finally:
        engine.dispose()


def test_spoil_route_is_rate_limited_per_client_and_capped_per_election(tmp_path: Path) -> None:
    """The anonymous spoil route: a per-client token bucket (429 spoil.rate_limited with Retry-After, nothing
    appended) and a per-election cap (409 spoil.cap_reached); casting is not affected by either."""
    now = dt.datetime.now(dt.UTC)
    ca = JpkiTestCa.generate(now)
    residents = make_residents(1, ca, now)
    manifest = tsukuba_manifest(now, small=True, trustees=1, threshold=1)
    with start_election_on(
        None, tmp_path, residents, ca, manifest, spoil_rate_per_hour=60, spoil_burst=3, max_spoiled_ballots=2
    ) as e:
        with e.client() as c:
            c.challenge(c.prepare(CHOICE))
            c.challenge(c.prepare(CHOICE))
            third = c.prepare(CHOICE)
        body = {"ballot": third.ballot.to_dict(), "revealed": _revealed(third)}
        _refused(e, "/spoil", body, 409, "spoil.cap_reached")
        resp = _post(e, "/spoil", body)  # the bucket of 3 is empty now
        assert resp.status_code == 429 and resp.json()["error"]["code"] == "spoil.rate_limited"
        assert 1 <= int(resp.headers["retry-after"]) <= 60
        assert "127.0.0.1" not in resp.text
        # casting is bounded by neither
        with e.client() as c:
            assert c.cast_jpki(residents[0].card, CHOICE).seq == 1


def _revealed(p: Any) -> dict[str, Any]:
    return reveal(p.ballot, p.secrets).to_dict()


def test_deep_json_is_refused_before_parsing_and_json_never_gets_the_admin_limit(
    election: DemoElection,
) -> None:
    """The ASGI layer scans a JSON body's nesting before any decoder runs (the real server, in its own
    process, answers the issue's exact 200 KB body in tests/voting/test_intake_adversarial.py)."""
    e = election
    before = e.ledger_size()
    deep = b'{"ballot":' + b"[" * 70 + b"]" * 70 + b', "auth": {}}'
    for ct in ("application/json", "application/vnd.x+json; charset=utf-8", None):
        headers = {"content-type": ct} if ct else {}
        resp = e.http.post("/api/v1/voter/ballots", content=deep, headers=headers)
        assert resp.status_code == 400 and resp.json()["error"]["code"] == "request.too_deep", (ct, resp.text)
    # brackets inside strings are not nesting: this body reaches the route (and fails its schema)
    flat = json.dumps({"ballot": "[" * 5000, "auth": "{" * 5000}).encode()
    resp = e.http.post("/api/v1/voter/ballots", content=flat, headers={"content-type": "application/json"})
    assert resp.status_code == 422 and resp.json()["error"]["code"] == "request.invalid"
    # a CSV body is not JSON: not scanned (the roll route refuses it for its own reasons)
    admin = {"authorization": f"Bearer {e.admin_token}"}
    resp = e.http.put("/api/v1/admin/roll", content=b"[" * 100, headers={**admin, "content-type": "text/csv"})
    assert resp.json()["error"]["code"] != "request.too_deep"
    # a JSON body on an /admin/ route gets the default limit, not the roll upload's
    big = b'{"x": "' + b"0" * (1024 * 1024 + 10) + b'"}'
    resp = e.http.post(
        "/api/v1/admin/election", content=big, headers={**admin, "content-type": "application/json"}
    )
    assert resp.status_code == 413 and resp.json()["error"]["code"] == "request.too_large"
    assert e.ledger_size() == before
