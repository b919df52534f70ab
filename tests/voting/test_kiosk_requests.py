"""The stolen-token test (issue 14): a kiosk request that is not signed by an enrolled, unrevoked kiosk key is
refused, before anything else, and changes nothing.

Against a real election behind uvicorn on loopback. Every case sends what an attacker could: no signature,
a bearer token, malformed headers, an unknown kiosk id, the right id with another key, another kiosk's id
with this kiosk's key, a revoked kiosk, a copied (replayed) request, a tampered body, a request signed for
another path or another election, a stale or future clock. Each is refused with its code (``docs/kiosk.md``)
and leaves the ledger, the kiosk's private row (last accepted time, session, PIN count) and the voter's
ability to vote exactly as they were; the kiosk's own next request still works.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _kiosk_util import (
    CHOICE,
    body_bytes,
    error_of,
    kiosk_election,
    kiosk_row,
    now_ms,
    send,
    signed_headers,
    state_of,
)

from voting._errors import ServiceError
from voting.clients.kiosk import KioskApi, KioskKey
from voting.service import ElectionService
from voting.testing import DemoElection

pytestmark = pytest.mark.xdist_group("kiosk")

BALLOTS = "/api/v1/kiosk/ballots"
STATUS = "/api/v1/kiosk/status"


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory, module_database_url: str | None
) -> Iterator[dict[str, Any]]:
    """On SQLite and on a real PostgreSQL (``module_database_url``)."""
    with kiosk_election(tmp_path_factory.mktemp("kiosk-requests"), module_database_url) as e:
        a, pin_a = e.enrol_kiosk("hall-a")
        b, pin_b = e.enrol_kiosk("hall-b")
        a.open(1, pin_a)
        b.open(1, pin_b)
        yield {"e": e, "a": a, "b": b}


def _cast_body(e: DemoElection, api: KioskApi, resident: Any, session: int = 1) -> bytes:
    """A complete, valid kiosk-ballot body of ``resident`` at ``api`` (card- and kiosk-signed)."""
    from voting._kiosk_sign import ballot_digest

    with e.client() as c:
        p = c.prepare(CHOICE)
    ch = api.challenge()
    sub = resident.card.sign_ballot(e.service.base_hash, p.ballot_hash, ch)
    sig = api.key.sign(ballot_digest(e.service.base_hash, api.kiosk_id, session, p.ballot_hash))
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


def test_a_request_not_signed_by_an_enrolled_unrevoked_kiosk_is_refused_and_changes_nothing(
    world: dict[str, Any],
) -> None:
    e: DemoElection = world["e"]
    a: KioskApi = world["a"]
    bh = e.service.base_hash
    voter = e.residents[0]
    body = _cast_body(e, a, voter)
    thief = KioskKey.generate()
    good = signed_headers(a.key, "hall-a", "POST", BALLOTS, body, bh)

    def headers(**kw: Any) -> dict[str, str]:
        args: dict[str, Any] = {"key": a.key, "kiosk_id": "hall-a", "method": "POST", "path": BALLOTS}
        args.update(kw)
        return signed_headers(args["key"], args["kiosk_id"], args["method"], args["path"], body, bh,
                              args.get("time_ms"))  # fmt: skip

    cases: list[tuple[str, dict[str, str], bytes, int, str]] = [
        ("no signature at all", {}, body, 401, "kiosk.required"),
        ("a bearer token instead", {"Authorization": "Bearer stolen-token"}, body, 401, "kiosk.required"),
        ("the signature missing", {k: v for k, v in good.items() if k != "Tvote-Kiosk-Signature"}, body, 401,
         "kiosk.required"),
        ("a malformed time", {**good, "Tvote-Kiosk-Time": "soon"}, body, 401, "kiosk.required"),
        ("a short signature", {**good, "Tvote-Kiosk-Signature": "ab" * 32}, body, 401, "kiosk.required"),
        ("an id that is no kiosk id", headers(kiosk_id="Hall A"), body, 401, "kiosk.required"),
        ("an unknown kiosk", headers(kiosk_id="hall-z", key=thief), body, 401, "kiosk.unknown"),
        ("this kiosk's id, another key", headers(key=thief), body, 401, "kiosk.signature"),
        ("another kiosk's id, this kiosk's key", headers(kiosk_id="hall-b"), body, 401, "kiosk.signature"),
        ("a tampered body", good, body.replace(b'"session":1', b'"session":2'), 401, "kiosk.signature"),
        ("signed for another route", headers(path="/api/v1/kiosk/open"), body, 401, "kiosk.signature"),
        ("signed for GET", headers(method="GET"), body, 401, "kiosk.signature"),
        ("a stale clock (320 s behind)", headers(time_ms=now_ms() - 320_000), body, 401, "kiosk.clock"),
        ("a clock 320 s ahead", headers(time_ms=now_ms() + 320_000), body, 401, "kiosk.clock"),
    ]  # fmt: skip
    other_election = signed_headers(a.key, "hall-a", "POST", BALLOTS, body, b"\x01" * 32)
    cases.append(("signed for another election", other_election, body, 401, "kiosk.signature"))
    before = state_of(e, "hall-a")
    for name, h, b, status, code in cases:
        r = send(e.http, "POST", BALLOTS, b, h)
        assert error_of(r) == (status, code), (name, r.text)
        assert state_of(e, "hall-a") == before, name
    # the real kiosk's request, signed just now, still goes through; the voter's ballot was never cast
    r = send(e.http, "POST", BALLOTS, body, good)
    assert r.status_code == 200, r.text
    assert r.json()["channel"] == "kiosk" and e.ledger_size() == before[0] + 1
    # a copy of that request, sent again, is refused: the time is not later than the last accepted
    after = state_of(e, "hall-a")
    r = send(e.http, "POST", BALLOTS, body, good)
    assert error_of(r) == (401, "kiosk.replay")
    assert state_of(e, "hall-a") == after
    # so is an older request signed earlier and held back (a captured request replayed out of order)
    held = signed_headers(a.key, "hall-a", "GET", STATUS, b"", bh, time_ms=int(good["Tvote-Kiosk-Time"]) - 5)
    assert error_of(send(e.http, "GET", STATUS, b"", held)) == (401, "kiosk.replay")
    assert a.status()["ballots_cast"] == 1


def test_a_replayed_request_is_refused_after_a_restart(world: dict[str, Any]) -> None:
    """The last accepted time is in the database, not in the process: a new service on the same database
    (what a restart starts) refuses the copy too."""
    e: DemoElection = world["e"]
    b: KioskApi = world["b"]
    h = signed_headers(b.key, "hall-b", "GET", STATUS, b"", e.service.base_hash)
    assert send(e.http, "GET", STATUS, b"", h).status_code == 200
    restarted = ElectionService.from_settings(e.service.settings)
    try:
        with pytest.raises(ServiceError) as refused:
            restarted.authenticate_kiosk(
                h["Tvote-Kiosk-Id"], h["Tvote-Kiosk-Time"], h["Tvote-Kiosk-Signature"], "GET", STATUS, b""
            )
        assert (refused.value.status, refused.value.code) == (401, "kiosk.replay")
    finally:
        restarted.close()
    assert kiosk_row(e, "hall-b").last_request_ms == int(h["Tvote-Kiosk-Time"])


def test_a_revoked_kiosk_is_refused_whatever_it_sends(world: dict[str, Any], tmp_path: Path) -> None:
    e: DemoElection = world["e"]
    api, pin = e.enrol_kiosk("hall-revoked")
    api.open(1, pin)
    body = _cast_body(e, api, e.residents[1])
    index = e.admin("/kiosks/hall-revoked/revoke", json={"reason": "stolen from the polling place"})[
        "ledger_index"
    ]
    assert e.service.ledger.entry(index).payload["reason"] == "stolen from the polling place"
    before = state_of(e, "hall-revoked")
    for method, path, b in (
        ("GET", STATUS, b""),
        ("POST", BALLOTS, body),
        ("POST", "/api/v1/kiosk/close", b"{}"),
    ):
        h = signed_headers(api.key, "hall-revoked", method, path, b, e.service.base_hash)
        assert error_of(send(e.http, method, path, b, h)) == (403, "kiosk.revoked"), path
    assert state_of(e, "hall-revoked") == before
    # its PIN cannot be renewed, it cannot be revoked twice, and its id and key are never enrolled again
    assert error_of(e.http.post("/api/v1/admin/kiosks/hall-revoked/poll-worker-pin", headers=_admin(e))) == (
        409,
        "kiosk.revoked",
    )
    r = e.http.post("/api/v1/admin/kiosks/hall-revoked/revoke", json={"reason": "again"}, headers=_admin(e))
    assert error_of(r) == (409, "kiosk.revoked")
    again = {
        "kiosk_id": "hall-revoked",
        "public_key": KioskKey.generate().public_key_hex,
        "polling_place": "x",
    }
    assert error_of(e.http.post("/api/v1/admin/kiosks", json=again, headers=_admin(e))) == (
        409,
        "kiosk.exists",
    )
    same_key = {"kiosk_id": "hall-new", "public_key": api.key.public_key_hex, "polling_place": "x"}
    r = e.http.post("/api/v1/admin/kiosks", json=same_key, headers=_admin(e))
    assert error_of(r) == (409, "kiosk.public_key_used")
    # the voter whose ballot the revoked kiosk held can still vote (nothing was cast, the challenge is unused)
    with e.client() as c:
        assert c.cast_jpki(e.residents[1].card, CHOICE).seq == 1


def test_the_commission_kiosk_routes_need_the_admin_token(world: dict[str, Any]) -> None:
    e: DemoElection = world["e"]
    enrol = {"kiosk_id": "hall-x", "public_key": KioskKey.generate().public_key_hex, "polling_place": "x"}
    for method, path, body in (
        ("POST", "/api/v1/admin/kiosks", enrol),
        ("GET", "/api/v1/admin/kiosks", None),
        ("POST", "/api/v1/admin/kiosks/hall-a/revoke", {"reason": "x"}),
        ("POST", "/api/v1/admin/kiosks/hall-a/poll-worker-pin", None),
    ):
        r = e.http.request(method, path, json=body, headers={"Authorization": "Bearer not-the-admin"})
        assert error_of(r) == (401, "auth.invalid"), path
    assert kiosk_row(e, "hall-a").revoked_index is None


def _admin(e: DemoElection) -> dict[str, str]:
    return {"Authorization": f"Bearer {e.admin_token}"}
