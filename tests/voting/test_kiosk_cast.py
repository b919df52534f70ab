"""Kiosk ballots (``ballot.cast`` with ``channel = "kiosk"`` and ``kiosk``): a kiosk ballot overrides the
voter's internet ballots and ends their voting; a second kiosk ballot is refused, at any kiosk; a ballot
whose kiosk signature does not verify, or that names a closed session or a revoked kiosk, is refused and
changes nothing; a revocation or a closing racing casts is ordered after every ballot it let through.
Against a real election behind uvicorn on loopback."""

from __future__ import annotations

import concurrent.futures as cf
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from _kiosk_util import CHOICE, body_bytes, kiosk_election, send, signed_headers
from _serve_util import kiosk_cast

from voting._kiosk_sign import ballot_digest
from voting.clients.kiosk import KioskApi, KioskApiError, KioskKey
from voting.clients.voter import ServerError
from voting.service import count_ballots
from voting.service._kiosk import verify_kiosk_signature
from voting.testing import DemoElection

pytestmark = pytest.mark.xdist_group("kiosk")

BALLOTS = "/api/v1/kiosk/ballots"


@pytest.fixture(scope="module")
def e(tmp_path_factory: pytest.TempPathFactory, module_database_url: str | None) -> Iterator[DemoElection]:
    """On SQLite and on a real PostgreSQL (``module_database_url``)."""
    with kiosk_election(tmp_path_factory.mktemp("kiosk-cast"), module_database_url, voters=16) as election:
        yield election


def _open(e: DemoElection, kiosk_id: str) -> tuple[KioskApi, str]:
    api, pin = e.enrol_kiosk(kiosk_id)
    api.open(1, pin)
    return api, pin


def _body(e: DemoElection, api: KioskApi, resident: Any, *, session: int = 1, sign: Any = None) -> bytes:
    """A kiosk-ballot body; ``sign(ballot_hash) -> signature`` replaces the kiosk's own ballot signature."""
    with e.client() as c:
        p = c.prepare(CHOICE)
    ch = api.challenge()
    sub = resident.card.sign_ballot(e.service.base_hash, p.ballot_hash, ch)
    if sign is None:
        sig = api.key.sign(ballot_digest(e.service.base_hash, api.kiosk_id, session, p.ballot_hash))
    else:
        sig = sign(p.ballot_hash)
    return body_bytes(
        {
            "ballot": p.ballot.to_dict(),
            "auth": {
                "method": "jpki",
                "certificate": sub.certificate_der.hex(),
                "intermediates": [],
                "signature": sub.signature.hex(),
                "challenge": ch.hex(),
            },
            "session": session,
            "kiosk_signature": sig.hex(),
        }
    )


def _post(e: DemoElection, api: KioskApi, body: bytes) -> Any:
    return send(e.http, "POST", BALLOTS, body, signed_headers(api.key, api.kiosk_id, "POST", BALLOTS, body,
                                                               e.service.base_hash))  # fmt: skip


def test_a_kiosk_ballot_overrides_the_internet_ballots_and_a_second_one_is_refused(e: DemoElection) -> None:
    a, _ = _open(e, "cast-a")
    b, _ = _open(e, "cast-b")
    voter = e.residents[0]
    with e.client() as c:
        first = c.cast_jpki(voter.card, CHOICE)
        c.cast_jpki(voter.card, {"mayor": ["cand-1"], "referendum": [], "subsidy": []})
        at_kiosk = kiosk_cast(a, c, voter.card, {"mayor": ["cand-3"], "referendum": ["yes"], "subsidy": []})
        assert (at_kiosk.channel, at_kiosk.seq) == ("kiosk", 3)
        c.verify_receipt(at_kiosk)
        entry = e.service.ledger.entry(at_kiosk.leaf_index)
        kiosk = entry.payload["kiosk"]
        assert set(kiosk) == {"kiosk_id", "session", "signature"}
        assert (kiosk["kiosk_id"], kiosk["session"]) == ("cast-a", 1)
        digest = ballot_digest(e.service.base_hash, "cast-a", 1, bytes.fromhex(entry.payload["ballot_hash"]))
        assert verify_kiosk_signature(a.key.public_key_hex, digest, kiosk["signature"])
        size = e.ledger_size()
        with pytest.raises(ServerError) as internet:  # internet voting ended for this voter
            c.cast_jpki(voter.card, CHOICE)
        assert internet.value.code == "voter.kiosk_voted"
        for api in (a, b):  # a second kiosk ballot, at the same kiosk or another one
            with pytest.raises(KioskApiError) as again:
                kiosk_cast(api, c, voter.card, CHOICE)
            assert (again.value.status, again.value.code) == (409, "voter.kiosk_voted")
        assert e.ledger_size() == size
    # the counting rule: the kiosk ballot counts, both internet ballots are overridden
    casts = [
        (x.index, x.payload["ballot_hash"], x.payload["voter_alias"], x.payload["channel"])
        for x in e.service.ledger.entries(0, e.ledger_size())
        if x.type == "ballot.cast" and x.payload["voter_alias"] == entry.payload["voter_alias"]
    ]
    counted = count_ballots(casts)
    assert counted.counted == [entry.payload["ballot_hash"]] and counted.overridden == 2
    assert first.channel == "internet" and "kiosk" not in e.service.ledger.entry(first.leaf_index).payload
    assert a.status()["ballots_cast"] == 1 and b.status()["ballots_cast"] == 0


def test_a_ballot_the_kiosk_did_not_sign_is_refused_and_changes_nothing(e: DemoElection) -> None:
    a, _ = _open(e, "cast-sig")
    other, _ = _open(e, "cast-sig-other")
    voter = e.residents[1]
    bh_ = e.service.base_hash
    thief = KioskKey.generate()
    cases = {
        "signed by another key": lambda h: thief.sign(ballot_digest(bh_, "cast-sig", 1, h)),
        "signed for another kiosk": lambda h: a.key.sign(ballot_digest(bh_, "cast-sig-other", 1, h)),
        "signed for another session": lambda h: a.key.sign(ballot_digest(bh_, "cast-sig", 2, h)),
        "signed for another ballot": lambda h: a.key.sign(ballot_digest(bh_, "cast-sig", 1, b"\x00" * 32)),
        "signed for another election": lambda h: a.key.sign(ballot_digest(b"\x02" * 32, "cast-sig", 1, h)),
        "the other kiosk's signature": lambda h: other.key.sign(ballot_digest(bh_, "cast-sig-other", 1, h)),
    }
    size = e.ledger_size()
    for name, sign in cases.items():
        r = _post(e, a, _body(e, a, voter, sign=sign))
        assert (r.status_code, r.json()["error"]["code"]) == (422, "kiosk.ballot_signature"), (name, r.text)
        assert e.ledger_size() == size, name
    assert a.status()["ballots_cast"] == 0
    with e.client() as c:  # the voter's ballot was never cast: they can vote, also at this kiosk
        assert kiosk_cast(a, c, voter.card, CHOICE).seq == 1


def test_a_closed_session_or_a_revoked_kiosk_casts_nothing(e: DemoElection) -> None:
    a, pin = _open(e, "cast-closed")
    voter = e.residents[2]
    body = _body(e, a, voter)  # prepared while the session was open
    a.close(1, 0, pin)
    size = e.ledger_size()
    r = _post(e, a, body)
    assert (r.status_code, r.json()["error"]["code"]) == (409, "kiosk.not_open")
    a.open(2, pin)
    r = _post(e, a, body)  # a ballot of session 1 in session 2
    assert (r.status_code, r.json()["error"]["code"]) == (409, "kiosk.session")
    assert e.ledger_size() == size + 1  # only the opening of session 2
    body = _body(e, a, voter, session=2)
    e.admin("/kiosks/cast-closed/revoke", json={"reason": "stolen"})
    r = _post(e, a, body)
    assert (r.status_code, r.json()["error"]["code"]) == (403, "kiosk.revoked")
    assert e.ledger_size() == size + 2  # and the revocation


def test_a_revocation_racing_casts_comes_after_every_ballot_it_let_through(e: DemoElection) -> None:
    """Several voters cast at one kiosk (in order, as a kiosk does) while the commission revokes it: every
    accepted ballot precedes the ``kiosk.revoked`` entry, every later one is refused, nothing half-done."""
    api, _ = _open(e, "cast-race")
    voters = e.residents[3:11]
    bodies = [_body(e, api, v) for v in voters]
    results: list[Any] = []
    started = threading.Event()

    def kiosk_line() -> None:
        for body in bodies:
            started.set()
            results.append(_post(e, api, body))

    with cf.ThreadPoolExecutor(max_workers=2) as pool:
        line = pool.submit(kiosk_line)
        started.wait(30)
        revoked = e.admin("/kiosks/cast-race/revoke", json={"reason": "reported stolen"})["ledger_index"]
        line.result()
    ok = [r.json()["leaf_index"] for r in results if r.status_code == 200]
    refused = [r.json()["error"]["code"] for r in results if r.status_code != 200]
    assert all(i < revoked for i in ok), (ok, revoked)
    assert set(refused) <= {"kiosk.revoked"} and len(ok) + len(refused) == len(bodies)
    entries = e.service.ledger.entries(0, e.ledger_size())
    mine = [x.index for x in entries if x.type == "ballot.cast" and x.payload.get("kiosk", {}).get("kiosk_id")
            == "cast-race"]  # fmt: skip
    assert mine == ok


def test_a_closing_racing_casts_counts_exactly_the_ballots_before_it(e: DemoElection) -> None:
    api, pin = _open(e, "cast-close-race")
    voters = e.residents[11:16]
    bodies = [_body(e, api, v) for v in voters]
    # the casts are sent in order, signed by hand; the closing through the kiosk's client meanwhile (their
    # clocks are separate, so one may be refused as a replay of the other: a real kiosk sends one at a time)
    results: list[Any] = []
    started = threading.Event()

    def kiosk_line() -> None:
        for body in bodies:
            started.set()
            results.append(_post(e, api, body))

    with cf.ThreadPoolExecutor(max_workers=2) as pool:
        line = pool.submit(kiosk_line)
        started.wait(30)
        closed = None
        while closed is None:
            try:
                closed = api.close(1, 0, pin)
            except KioskApiError as err:  # a cast signed just before may overtake the closing's time
                assert err.code == "kiosk.replay", err
        line.result()
    ok = [r.json()["leaf_index"] for r in results if r.status_code == 200]
    assert all(i < closed["ledger_index"] for i in ok)
    assert closed["entry"]["ballots_cast"] == len(ok)
    assert {r.json()["error"]["code"] for r in results if r.status_code != 200} <= {
        "kiosk.not_open",
        "kiosk.replay",
    }
