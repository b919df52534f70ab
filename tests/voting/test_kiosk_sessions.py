"""Kiosk enrolment, opening and closing (``kiosk.enrolled``, ``kiosk.opened``, ``kiosk.closed``): the
session rules, the poll-worker PIN and its lock, the reports' times and signatures, the server's count, and
what the record holds (never the PIN). Against a real election behind uvicorn on loopback."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nacl.pwhash
import pytest
from _kiosk_util import CHOICE, kiosk_election, kiosk_row, state_of
from _serve_util import kiosk_cast

from voting._kiosk_sign import closed_digest, format_time, opened_digest
from voting.clients.kiosk import KioskApi, KioskApiError, KioskKey
from voting.service._kiosk import verify_kiosk_signature
from voting.testing import DemoElection

pytestmark = pytest.mark.xdist_group("kiosk")


@pytest.fixture(scope="module")
def e(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoElection]:
    with kiosk_election(tmp_path_factory.mktemp("kiosk-sessions")) as election:
        yield election


def _admin(e: DemoElection) -> dict[str, str]:
    return {"Authorization": f"Bearer {e.admin_token}"}


def _refused(call: Any, status: int, code: str) -> KioskApiError:
    with pytest.raises(KioskApiError) as err:
        call()
    assert (err.value.status, err.value.code) == (status, code), err.value
    return err.value


def test_enrolment_is_on_the_record_and_the_pin_is_not(e: DemoElection) -> None:
    key = KioskKey.generate()
    body = {"kiosk_id": "tsukuba-city-hall-1", "public_key": key.public_key_hex.upper(), "polling_place":
            " つくば市役所 1階 期日前投票所 "}  # fmt: skip
    r = e.http.post("/api/v1/admin/kiosks", json=body, headers=_admin(e))
    assert r.status_code == 201, r.text
    out = r.json()
    pin, index = out["poll_worker_pin"], out["ledger_index"]
    assert len(pin) == 8 and pin.isdigit() and out["fingerprint"] == key.fingerprint
    entry = e.service.ledger.entry(index)
    assert entry.type == "kiosk.enrolled"
    assert entry.payload == {
        "election_id": e.service.election_id,
        "base_hash": e.service.base_hash.hex(),
        "kiosk_id": "tsukuba-city-hall-1",
        "public_key": key.public_key_hex,  # lowercase, as published
        "polling_place": "つくば市役所 1階 期日前投票所",  # stripped
    }
    row = kiosk_row(e, "tsukuba-city-hall-1")
    assert row.pin_hash is not None and row.pin_hash.startswith("$argon2id$") and pin not in row.pin_hash
    assert nacl.pwhash.verify(row.pin_hash.encode(), pin.encode())
    record = "".join(str(x.payload) for x in e.service.ledger.entries(0, e.ledger_size()))
    assert pin not in record and row.pin_hash not in record
    listed = e.http.get("/api/v1/admin/kiosks", headers=_admin(e)).json()["kiosks"]
    (mine,) = [k for k in listed if k["kiosk_id"] == "tsukuba-city-hall-1"]
    assert (
        mine["poll_worker_pin"] == "issued" and mine["state"] == "closed" and mine["enrolled_index"] == index
    )
    assert pin not in str(listed) and row.pin_hash not in str(listed)


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"kiosk_id": "-starts-with-dash"}, 422, "request.invalid"),
        ({"kiosk_id": "UPPER"}, 422, "request.invalid"),
        ({"kiosk_id": "x" * 64}, 422, "request.invalid"),
        ({"public_key": "00" * 32}, 400, "kiosk.public_key"),  # a small-order point, not a key
        ({"public_key": "zz" * 32}, 400, "kiosk.public_key"),
        ({"public_key": "ab" * 31}, 422, "request.invalid"),
        ({"polling_place": "hall\u202e1"}, 400, "kiosk.polling_place"),  # a bidi control
        ({"polling_place": "hall\n1"}, 400, "kiosk.polling_place"),
        ({"polling_place": "x" * 201}, 400, "kiosk.polling_place"),
        ({"polling_place": "\u3000"}, 400, "kiosk.polling_place"),  # only an ideographic space
        ({"extra": 1}, 422, "request.invalid"),
    ],
)
def test_enrolment_refuses_bad_input_and_appends_nothing(
    e: DemoElection, change: dict[str, Any], status: int, code: str
) -> None:
    body = {
        "kiosk_id": "bad-input",
        "public_key": KioskKey.generate().public_key_hex,
        "polling_place": "hall",
    }
    size = e.ledger_size()
    r = e.http.post("/api/v1/admin/kiosks", json=body | change, headers=_admin(e))
    assert (r.status_code, r.json()["error"]["code"]) == (status, code), r.text
    assert e.ledger_size() == size


def test_sessions_open_and_close_in_turn_and_the_server_counts_the_ballots(e: DemoElection) -> None:
    api, pin = e.enrol_kiosk("hall-sessions")
    before = state_of(e, "hall-sessions")
    _refused(lambda: api.open(2, pin), 409, "kiosk.session")  # not the next session
    _refused(lambda: api.open(0, pin), 422, "request.invalid")
    _refused(lambda: api.close(1, 0, pin), 409, "kiosk.session")  # nothing open
    with e.client() as c:
        _refused(lambda: kiosk_cast(api, c, e.residents[2].card, CHOICE), 409, "kiosk.not_open")
    assert state_of(e, "hall-sessions")[0] == before[0]  # nothing appended
    at = format_time(dt.datetime.now(dt.UTC))
    opened = api.open(1, pin, opened_at=at)
    entry = e.service.ledger.entry(opened["ledger_index"])
    assert entry.type == "kiosk.opened" and entry.payload == opened["entry"]
    proof = e.service.ledger.inclusion_proof(opened["ledger_index"], opened["ledger_index"] + 1)
    assert opened["entry_hash"] == bytes(proof.leaf_hash).hex()
    p = entry.payload
    assert (p["kiosk_id"], p["session"], p["opened_at"]) == ("hall-sessions", 1, at)
    digest = opened_digest(e.service.base_hash, "hall-sessions", 1, at)
    assert verify_kiosk_signature(api.key.public_key_hex, digest, p["kiosk_signature"])
    assert api.status()["state"] == "open"
    _refused(lambda: api.open(2, pin), 409, "kiosk.session")  # session 1 is open
    _refused(lambda: api.close(2, 0, pin), 409, "kiosk.session")  # not the open one
    with e.client() as c:
        _refused(lambda: kiosk_cast(api, c, e.residents[2].card, CHOICE, session=2), 409, "kiosk.session")
        kiosk_cast(api, c, e.residents[2].card, CHOICE)
        kiosk_cast(api, c, e.residents[3].card, CHOICE)
    assert api.status() | {"base_hash": ""} == {
        "kiosk_id": "hall-sessions",
        "polling_place": "つくば市役所 1階 期日前投票所",
        "election_id": e.service.election_id,
        "base_hash": "",
        "state": "open",
        "session": 1,
        "ballots_cast": 2,
    }
    # the kiosk lost one acknowledgement: its own count is 1, the server's 2; both are recorded, signed
    closed = api.close(1, 1, pin)
    p = closed["entry"]
    assert (p["session"], p["ballots_cast"], p["kiosk_count"]) == (1, 2, 1)
    assert e.service.ledger.entry(closed["ledger_index"]).payload == p
    digest = closed_digest(e.service.base_hash, "hall-sessions", 1, p["closed_at"], 1)
    assert verify_kiosk_signature(api.key.public_key_hex, digest, p["kiosk_signature"])
    assert api.status()["state"] == "closed"
    _refused(lambda: api.close(1, 2, pin), 409, "kiosk.session")  # closed already
    with e.client() as c:
        _refused(lambda: kiosk_cast(api, c, e.residents[4].card, CHOICE), 409, "kiosk.not_open")
    # the next session counts from zero
    api.open(2, pin)
    assert api.status()["ballots_cast"] == 0 and api.status()["session"] == 2
    assert api.close(2, 0, pin)["entry"]["ballots_cast"] == 0


def test_the_reports_time_and_signature_are_checked(e: DemoElection) -> None:
    api, pin = e.enrol_kiosk("hall-reports")
    size = e.ledger_size()
    now = dt.datetime.now(dt.UTC)
    for at in ("2027-04-18T09:00:00+09:00", "2027-04-18 09:00:00Z", "2027-04-18T09:00:00.5Z", "yesterday"):
        _refused(lambda at=at: api.open(1, pin, opened_at=at), 422, "kiosk.opened_at")
    # beyond the 300 s allowed, with a margin for the time the request takes on a loaded machine (the time
    # is written to the second and the server reads its clock later)
    for off in (-320, 320):
        at = format_time(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=off))
        _refused(lambda at=at: api.open(1, pin, opened_at=at), 422, "kiosk.opened_at")
    # a report signed by another key (the thief has the kiosk's id and the PIN, not its key)
    thief = KioskApi(api.http, KioskKey.generate(), "hall-reports")
    thief._base_hash = api.base_hash
    _refused(lambda: thief.open(1, pin), 401, "kiosk.signature")
    # the kiosk's request signature is right but the report is signed over another session
    at = format_time(now)
    bad = api.key.sign(opened_digest(api.base_hash, "hall-reports", 2, at)).hex()
    with pytest.raises(KioskApiError) as err:
        api._signed(
            "POST",
            "/kiosk/open",
            {"session": 1, "opened_at": at, "poll_worker_pin": pin, "kiosk_signature": bad},
        )
    assert (err.value.status, err.value.code) == (422, "kiosk.report_signature")
    assert e.ledger_size() == size and kiosk_row(e, "hall-reports").pin_failures == 0  # no PIN try counted
    api.open(1, pin)
    with pytest.raises(KioskApiError) as err:
        api._signed(
            "POST",
            "/kiosk/close",
            {"session": 1, "closed_at": at, "kiosk_count": 0, "poll_worker_pin": pin,
             "kiosk_signature": api.key.sign(closed_digest(api.base_hash, "hall-reports", 1, at, 5)).hex()},
        )  # fmt: skip
    assert (err.value.status, err.value.code) == (422, "kiosk.report_signature")
    for at in ("2027-04-18T09:00:00", format_time(now - dt.timedelta(seconds=400))):
        _refused(lambda at=at: api.close(1, 0, pin, closed_at=at), 422, "kiosk.closed_at")
    api.close(1, 0, pin)


def test_five_wrong_pins_in_a_row_lock_the_kiosk_until_a_new_pin(e: DemoElection) -> None:
    api, pin = e.enrol_kiosk("hall-pin")
    wrong = "12345678" if pin != "12345678" else "87654321"
    size = e.ledger_size()
    assert _refused(lambda: api.open(1, wrong), 403, "kiosk.poll_worker").details == {"tries_left": 4}
    assert _refused(lambda: api.open(1, "not-a-pin"), 403, "kiosk.poll_worker").details == {"tries_left": 3}
    api.open(1, pin)  # a right PIN resets the count
    assert kiosk_row(e, "hall-pin").pin_failures == 0
    for left in (4, 3, 2, 1):
        assert _refused(lambda: api.close(1, 0, wrong), 403, "kiosk.poll_worker").details == {
            "tries_left": left
        }
    _refused(lambda: api.close(1, 0, wrong), 403, "kiosk.poll_worker_locked")  # the fifth
    _refused(lambda: api.close(1, 0, pin), 403, "kiosk.poll_worker_locked")  # even the right one now
    assert e.ledger_size() == size + 1  # only the opening
    listed = e.http.get("/api/v1/admin/kiosks", headers=_admin(e)).json()["kiosks"]
    assert [k["poll_worker_pin"] for k in listed if k["kiosk_id"] == "hall-pin"] == ["locked"]
    # the commission issues a new PIN: the lock is cleared, the old PIN no longer works
    r = e.http.post("/api/v1/admin/kiosks/hall-pin/poll-worker-pin", headers=_admin(e))
    assert r.status_code == 200, r.text
    new = r.json()["poll_worker_pin"]
    assert len(new) == 8 and new.isdigit()
    if new != pin:
        assert _refused(lambda: api.close(1, 0, pin), 403, "kiosk.poll_worker").details == {"tries_left": 4}
    assert api.close(1, 0, new)["entry"]["session"] == 1
    assert kiosk_row(e, "hall-pin").pin_failures == 0
    r = e.http.post("/api/v1/admin/kiosks/no-such-kiosk/poll-worker-pin", headers=_admin(e))
    assert (r.status_code, r.json()["error"]["code"]) == (404, "kiosk.unknown")
    r = e.http.post("/api/v1/admin/kiosks/no-such-kiosk/revoke", json={"reason": "x"}, headers=_admin(e))
    assert (r.status_code, r.json()["error"]["code"]) == (404, "kiosk.unknown")
    r = e.http.post("/api/v1/admin/kiosks/hall-pin/revoke", json={"reason": "a\u0000b"}, headers=_admin(e))
    assert (r.status_code, r.json()["error"]["code"]) == (400, "kiosk.reason")


def test_parallel_pin_tries_cannot_exceed_five(e: DemoElection, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each try is counted before the (slow) PIN check: ten wrong PINs sent at once check at most five."""
    import concurrent.futures as cf

    from voting._errors import ServiceError
    from voting.service import _kiosk_sessions

    api, pin = e.enrol_kiosk("hall-parallel")
    checked: list[str] = []
    real = _kiosk_sessions._pin_matches

    def counting(pin_hash: str, tried: str) -> bool:
        checked.append(tried)
        return real(pin_hash, tried)

    monkeypatch.setattr(_kiosk_sessions, "_pin_matches", counting)
    at = format_time(dt.datetime.now(dt.UTC))
    sig = api.key.sign(opened_digest(api.base_hash, "hall-parallel", 1, at)).hex()
    wrong = [f"{i:08d}" for i in range(10) if f"{i:08d}" != pin]

    def try_open(tried: str) -> str:
        try:
            e.service.open_kiosk("hall-parallel", 1, at, tried, sig)
        except ServiceError as err:
            return err.code
        return "opened"

    with cf.ThreadPoolExecutor(max_workers=len(wrong)) as pool:
        codes = list(pool.map(try_open, wrong))
    assert len(checked) == 5 and kiosk_row(e, "hall-parallel").pin_failures == 5
    assert codes.count("kiosk.poll_worker") <= 4 and set(codes) <= {
        "kiosk.poll_worker",
        "kiosk.poll_worker_locked",
    }
    assert (
        try_open(pin) == "kiosk.poll_worker_locked" and len(checked) == 5
    )  # the right PIN is not even tried


def test_after_voting_closes_a_kiosk_closes_but_none_opens_or_enrols(tmp_path: Path) -> None:
    """Its own election: it closes voting."""
    with kiosk_election(tmp_path, voters=6) as e:
        api, pin = e.enrol_kiosk("hall-late")
        other, other_pin = e.enrol_kiosk("hall-late-2")
        api.open(1, pin)
        e.close_early()
        _refused(lambda: other.open(1, other_pin), 409, "voting.closed")
        with e.client() as c:
            _refused(lambda: kiosk_cast(api, c, e.residents[5].card, CHOICE), 409, "voting.closed")
        assert api.close(1, 0, pin)["entry"]["ballots_cast"] == 0  # closing after voting closed is allowed
        late = {
            "kiosk_id": "hall-later",
            "public_key": KioskKey.generate().public_key_hex,
            "polling_place": "x",
        }
        r = e.http.post("/api/v1/admin/kiosks", json=late, headers=_admin(e))
        assert (r.status_code, r.json()["error"]["code"]) == (409, "election.phase")
        # revocation stays possible (a kiosk stolen after the polls closed)
        r = e.http.post(
            "/api/v1/admin/kiosks/hall-late-2/revoke", json={"reason": "stolen"}, headers=_admin(e)
        )
        assert r.status_code == 200, r.text
