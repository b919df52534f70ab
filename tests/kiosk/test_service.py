"""The kiosk service (kiosk._service behind kiosk._app) in front of a real election server on loopback
(``voting.testing.start_election``: the app ``tvote serve`` runs), with SoftHSM2 cards read through
PKCS#11: card errors, server refusals, the local API's protection, the idle reset, and network trouble
through a TCP proxy that cuts the connection (docs/kiosk.md, "Network trouble").

Needs SoftHSM2; skips without it, unless ``TVOTE_REQUIRE_ALL=1`` (CI)."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from _kiosk_device import PIN, CutProxy, Kiosk, encrypt, new_state, now, pdf_qr_matrix, pdf_text, run_kiosk

from kiosk._printing import check_url, qr_matrix
from kiosk.testing import SoftHsm2, find_softhsm2_library
from voting.testing import (
    JpkiTestCa,
    Resident,
    RsaKeyPool,
    TestCard,
    make_residents,
    start_election,
    tsukuba_manifest,
)

CHOICES = {"mayor": ["cand-1"], "referendum": ["yes"], "subsidy": []}
_ids = itertools.count(1)


@pytest.fixture(scope="module")
def softhsm_library() -> Path:
    lib = find_softhsm2_library()
    if lib is None or shutil.which("softhsm2-util") is None:
        why = "SoftHSM2 (libsofthsm2.so and softhsm2-util; Debian: softhsm2) is not installed"
        if os.environ.get("TVOTE_REQUIRE_ALL") == "1":
            pytest.fail(f"required (TVOTE_REQUIRE_ALL=1): {why}")
        pytest.skip(why)
    return lib


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, softhsm_library: Path) -> Iterator[dict[str, Any]]:
    """An open election on a real server; residents 0..5 on the roll, resident 6 (a valid card) not, resident
    7 with a revoked card; an expired card of resident 0."""
    t = now()
    ca = JpkiTestCa.generate(t)
    residents = make_residents(8, ca, t, pool=RsaKeyPool(8))
    manifest = tsukuba_manifest(t, trustees=1, threshold=1)
    expired = ca.issue_card(
        residents[0].person, t, not_before=t - dt.timedelta(days=400), not_after=t - dt.timedelta(days=1)
    )
    with start_election(
        tmp_path_factory.mktemp("kiosk-election"), residents[:6], ca, manifest, revoked=[residents[7]]
    ) as e:
        yield {"election": e, "residents": residents, "library": softhsm_library, "expired": expired}


@pytest.fixture
def hsm(tmp_path: Path, world: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> SoftHsm2:
    h = SoftHsm2(tmp_path / "hsm", world["library"])
    monkeypatch.setenv("SOFTHSM2_CONF", str(h.conf))
    return h


def insert(hsm: SoftHsm2, resident: Resident | TestCard) -> None:
    """Put ``resident``'s card (or a card) in the reader (the one token labelled JPKI)."""
    card = resident if isinstance(resident, TestCard) else resident.card
    hsm.remove_tokens()
    hsm.add_card(PIN, card.private_key, card.certificate)


@pytest.fixture
def enrolled(tmp_path: Path, world: dict[str, Any]) -> tuple[Any, Any, str, str]:
    """A freshly enrolled kiosk: its state dir, key, id and poll-worker PIN."""
    e = world["election"]
    kiosk_id = f"test-kiosk-{next(_ids)}"
    state, key = new_state(tmp_path / "kiosk", kiosk_id, e.base_url)
    out = e.admin(
        "/kiosks",
        json={"kiosk_id": kiosk_id, "public_key": key.public_key_hex, "polling_place": "テスト投票所"},
    )
    return state, key, kiosk_id, str(out["poll_worker_pin"])


@pytest.fixture
def kiosk(world: dict[str, Any], enrolled: tuple[Any, Any, str, str], hsm: SoftHsm2) -> Iterator[Kiosk]:
    state, key, _, _ = enrolled
    with run_kiosk(state, key, world["election"].base_url, hsm) as k:
        yield k


def ledger_size(world: dict[str, Any]) -> int:
    return int(world["election"].ledger_size())


def voter_turn(k: Kiosk, pin: str) -> str:
    """A poll worker unlocks the kiosk for one voter; the voter session."""
    out = k.ok("unlock", {"pin": pin})
    assert out["state"] == "ready"
    return str(out["voter_session"])


# --------------------------------------------------------------------------------------- the whole turn


def test_open_cast_close_through_the_local_api(
    world: dict[str, Any], kiosk: Kiosk, enrolled: tuple[Any, Any, str, str], hsm: SoftHsm2
) -> None:
    _, _, kiosk_id, pw = enrolled
    e = world["election"]
    assert kiosk.state_now()["state"] == "closed"
    opened = kiosk.ok("open", {"pin": pw})
    assert (opened["state"], opened["session"]) == ("locked", 1)
    zero = Path(opened["report"]["path"])
    assert zero.parent == kiosk.state.reports and "Zero report" in pdf_text(zero)
    st = kiosk.state_now()
    assert (st["state"], st["session"], st["ballots_cast"], st["kiosk_id"]) == ("locked", 1, 0, kiosk_id)
    assert st["polling_place"] == "テスト投票所"

    insert(hsm, world["residents"][0])
    session = voter_turn(kiosk, pw)
    assert kiosk.ok("card", {"voter_session": session}) == {"present": True}
    assert kiosk.state_now()["card_present"] is True
    before = ledger_size(world)
    out = kiosk.ok(
        "cast", {"voter_session": session, "ballot": encrypt(e.base_url, CHOICES), "card_pin": PIN}
    )
    assert out["state"] == "locked"
    receipt = out["receipt"]
    assert receipt["channel"] == "kiosk" and ledger_size(world) == before + 1
    slip = Path(out["printed"]["path"])
    text = pdf_text(slip)
    assert receipt["tracking_code"] in text and str(receipt["ledger_index"]) in text
    assert pdf_qr_matrix(slip) == qr_matrix(check_url("https://vote.example.jp", receipt["tracking_code"]))
    # the slip names no person: none of the card's subject is on it
    subject = world["residents"][0].card.certificate.subject.rfc4514_string()
    assert subject not in text and world["residents"][0].resident_id not in text

    # the voter session is spent: a replay of the cast (or anything else) is refused
    err = kiosk.error(
        "cast", {"voter_session": session, "ballot": encrypt(e.base_url, CHOICES), "card_pin": PIN}
    )
    assert err["code"] == "kiosk.voter_session"
    assert ledger_size(world) == before + 1
    st = kiosk.state_now()
    assert (st["state"], st["ballots_cast"], st["card_present"]) == ("locked", 1, False)

    closed = kiosk.ok("close", {"pin": pw})
    assert (closed["state"], closed["kiosk_count"], closed["server_count"]) == ("closed", 1, 1)
    report = pdf_text(Path(closed["report"]["path"]))
    assert "Closing report" in report and kiosk_id in report


# ------------------------------------------------------------------------------------------- the card


def test_card_errors_are_clear_and_cast_nothing(
    world: dict[str, Any], kiosk: Kiosk, enrolled: tuple[Any, Any, str, str], hsm: SoftHsm2
) -> None:
    pw = enrolled[3]
    e = world["election"]
    kiosk.ok("open", {"pin": pw})
    alice, bob = world["residents"][1], world["residents"][2]
    before = ledger_size(world)

    # no card in the reader
    hsm.remove_tokens()
    session = voter_turn(kiosk, pw)
    assert kiosk.error("card", {"voter_session": session})["code"] == "card.absent"
    ballot = encrypt(e.base_url, CHOICES)
    assert kiosk.error("cast", {"voter_session": session, "ballot": ballot, "card_pin": PIN})["code"] == (
        "kiosk.no_card"
    )

    # a PIN that is not 6-16 letters and digits: refused before the card, not a try
    insert(hsm, alice)
    kiosk.ok("card", {"voter_session": session})
    err = kiosk.error("cast", {"voter_session": session, "ballot": ballot, "card_pin": "12"})
    assert err["code"] == "card.pin_format"

    # a wrong PIN, with the tries left
    err = kiosk.error("cast", {"voter_session": session, "ballot": ballot, "card_pin": "WRONG123"})
    assert (err["code"], err["tries_left"]) == ("card.pin_wrong", 4)
    assert "4" in err["message_ja"] and "4 tries left" in err["message_en"]

    # another person's card after this voter's was read
    insert(hsm, bob)
    assert kiosk.error("cast", {"voter_session": session, "ballot": ballot, "card_pin": PIN})["code"] == (
        "card.different"
    )

    # the card pulled out between reading it and the cast
    hsm.remove_tokens()
    err = kiosk.error("cast", {"voter_session": session, "ballot": ballot, "card_pin": PIN})
    assert err["code"] in ("card.absent", "card.removed")

    # the card locks after 5 wrong PINs, then even the right PIN is refused
    insert(hsm, alice)
    for left in (3, 2, 1):
        err = kiosk.error("cast", {"voter_session": session, "ballot": ballot, "card_pin": "WRONG123"})
        assert (err["code"], err["tries_left"]) == ("card.pin_wrong", left)
    assert kiosk.error("cast", {"voter_session": session, "ballot": ballot, "card_pin": "WRONG123"})[
        "code"
    ] == ("card.locked")
    assert kiosk.error("cast", {"voter_session": session, "ballot": ballot, "card_pin": PIN})["code"] == (
        "card.locked"
    )
    assert ledger_size(world) == before
    st = kiosk.state_now()
    assert (st["state"], st["ballots_cast"]) == ("ready", 0)  # the voter may call a poll worker
    # nothing personal in the kiosk's files: the PIN-try file holds fingerprints and counts only
    tries = json.loads((kiosk.state.root / "pin-tries.json").read_text())
    assert list(tries.values()) == [5]


def test_a_card_not_on_the_roll_and_a_bad_ballot_are_refused(
    world: dict[str, Any], kiosk: Kiosk, enrolled: tuple[Any, Any, str, str], hsm: SoftHsm2
) -> None:
    pw = enrolled[3]
    e = world["election"]
    kiosk.ok("open", {"pin": pw})
    before = ledger_size(world)
    insert(hsm, world["residents"][6])  # a valid card, not on this election's roll
    session = voter_turn(kiosk, pw)
    kiosk.ok("card", {"voter_session": session})
    ballot = encrypt(e.base_url, CHOICES)
    err = kiosk.error("cast", {"voter_session": session, "ballot": ballot, "card_pin": PIN})
    assert err["code"].startswith("voter."), err
    # an expired and a revoked signing certificate: the server's refusal, worded for the screen
    for card, code in ((world["expired"], "jpki.expired"), (world["residents"][7], "jpki.revoked")):
        insert(hsm, card)
        kiosk.ok("card", {"voter_session": session})
        err = kiosk.error("cast", {"voter_session": session, "ballot": ballot, "card_pin": PIN})
        assert err["code"] == code and "電子証明書" in err["message_ja"], err
    # a ballot whose proofs do not verify, and one for another election, never reach the card
    bad = json.loads(json.dumps(ballot))
    bad["contests"][0]["proof"]["responses"] = bad["contests"][1]["proof"]["responses"]
    assert kiosk.error("cast", {"voter_session": session, "ballot": bad, "card_pin": PIN})["code"] in (
        "kiosk.ballot_invalid"
    )
    other = dict(ballot, election_hash="00" * 32)
    assert kiosk.error("cast", {"voter_session": session, "ballot": other, "card_pin": PIN})["code"] in (
        "kiosk.ballot_election",
        "kiosk.ballot_invalid",
    )
    assert kiosk.error("cast", {"voter_session": session, "ballot": {"x": 1}, "card_pin": PIN})["code"] == (
        "kiosk.ballot_invalid"
    )
    assert ledger_size(world) == before


# -------------------------------------------------------------------------------- the poll worker PIN


def test_poll_worker_pin_local_checks_and_the_servers(
    kiosk: Kiosk, enrolled: tuple[Any, Any, str, str]
) -> None:
    pw = enrolled[3]
    err = kiosk.error("open", {"pin": "00000000"}, 403)
    assert err["code"] == "kiosk.poll_worker"
    assert kiosk.state_now()["state"] == "closed"
    assert kiosk.error("unlock", {"pin": pw})["code"] == "kiosk.state"  # polls not open
    kiosk.ok("open", {"pin": pw})
    err = kiosk.error("unlock", {"pin": "00000000"}, 403)
    assert (err["code"], err["tries_left"]) == ("kiosk.poll_worker", 4)
    session = voter_turn(kiosk, pw)
    assert kiosk.ok("lock", {"pin": pw}) == {"state": "locked"}
    assert kiosk.error("card", {"voter_session": session})["code"] == "kiosk.voter_session"
    # five wrong PINs in a row: the kiosk forgets the PIN; polls must be closed and opened again
    for _ in range(4):
        kiosk.error("unlock", {"pin": "00000000"})
    assert kiosk.error("unlock", {"pin": "00000000"})["code"] == "kiosk.poll_worker_unknown"
    assert kiosk.error("unlock", {"pin": pw})["code"] == "kiosk.poll_worker_unknown"
    assert kiosk.ok("close", {"pin": pw})["state"] == "closed"
    assert kiosk.ok("open", {"pin": pw})["session"] == 2
    voter_turn(kiosk, pw)


def test_idle_reset_forgets_the_voter(
    world: dict[str, Any], enrolled: tuple[Any, Any, str, str], hsm: SoftHsm2
) -> None:
    state, key, _, pw = enrolled
    with run_kiosk(state, key, world["election"].base_url, hsm, idle_seconds=1.0) as k:
        k.ok("open", {"pin": pw})
        insert(hsm, world["residents"][3])
        session = voter_turn(k, pw)
        k.ok("card", {"voter_session": session})
        assert k.state_now()["idle_seconds"] == 1.0
        # while the page reports the voter's touches the kiosk stays theirs
        for _ in range(6):
            time.sleep(0.4)
            assert k.ok("touch", {"voter_session": session}) == {"state": "ready", "idle_seconds": 1.0}
        deadline = time.monotonic() + 10
        while k.state_now()["state"] == "ready":
            assert time.monotonic() < deadline, "no idle reset"
            time.sleep(0.1)
        st = k.state_now()
        assert (st["state"], st["card_present"]) == ("locked", False)
        assert k.error("card", {"voter_session": session})["code"] == "kiosk.voter_session"
        assert k.error("touch", {"voter_session": session})["code"] == "kiosk.voter_session"


# ------------------------------------------------------------------------------- the local API's guard


def test_forged_local_requests_are_refused(
    world: dict[str, Any], kiosk: Kiosk, enrolled: tuple[Any, Any, str, str], hsm: SoftHsm2
) -> None:
    pw = enrolled[3]
    url = kiosk.url
    port = urlsplit(url).port
    assert kiosk.state_now()["state"] == "closed"

    def forbidden(r: httpx.Response) -> None:
        assert r.status_code == 403, r.text
        assert r.json()["error"]["code"] == "kiosk.forbidden"

    body = json.dumps({"pin": pw})
    json_type = {"Content-Type": "application/json"}
    # another site's page posting to the kiosk (wrong Origin), or no Origin at all
    forbidden(
        httpx.post(
            url + "/kiosk/api/open", content=body, headers={**json_type, "Origin": "https://evil.example"}
        )
    )
    forbidden(httpx.post(url + "/kiosk/api/open", content=body, headers=json_type))
    # DNS rebinding: the right origin's address under another Host
    forbidden(
        httpx.post(
            url + "/kiosk/api/open",
            content=body,
            headers={**json_type, "Origin": url, "Host": f"evil.example:{port}"},
        )
    )
    forbidden(httpx.get(url + "/kiosk/api/state", headers={"Host": f"evil.example:{port}"}))
    # a "simple" form post (no preflight in a browser)
    forbidden(
        httpx.post(
            url + "/kiosk/api/open",
            content="pin=" + pw,
            headers={"Origin": url, "Content-Type": "application/x-www-form-urlencoded"},
        )
    )
    assert kiosk.state_now()["state"] == "closed"  # none of them opened the polls

    kiosk.ok("open", {"pin": pw})
    insert(hsm, world["residents"][4])
    ballot = encrypt(world["election"].base_url, CHOICES)
    # no voter session, or a made-up one
    assert kiosk.error("card", {"voter_session": "x" * 43}, 403)["code"] == "kiosk.voter_session"
    assert kiosk.error("cast", {"voter_session": "guess", "ballot": ballot, "card_pin": PIN})["code"] == (
        "kiosk.voter_session"
    )
    assert kiosk.error("cast", {"ballot": ballot, "card_pin": PIN}, 422)["code"] == "kiosk.request"
    assert kiosk.error("unlock", {"pin": pw, "extra": 1}, 422)["code"] == "kiosk.request"
    # the headers every answer carries
    r = kiosk.local.get("/kiosk/api/state")
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert r.headers["cache-control"] == "no-store"
    # the booth libraries' read-only pass-through
    assert kiosk.local.get("/api/v1/election").json()["phase"] == "voting"
    assert "manifest" in kiosk.local.get("/api/v1/election/manifest").json()
    assert kiosk.local.post("/api/v1/election", json={}).status_code == 405


def test_a_revoked_kiosk_stops(
    world: dict[str, Any], kiosk: Kiosk, enrolled: tuple[Any, Any, str, str], hsm: SoftHsm2
) -> None:
    state, key, kiosk_id, pw = enrolled
    base = world["election"].base_url
    kiosk.ok("open", {"pin": pw})
    insert(hsm, world["residents"][4])
    session = voter_turn(kiosk, pw)
    kiosk.ok("card", {"voter_session": session})
    world["election"].admin(f"/kiosks/{kiosk_id}/revoke", json={"reason": "test: kiosk stolen"})
    before = ledger_size(world)
    ballot = encrypt(base, CHOICES)
    err = kiosk.error("cast", {"voter_session": session, "ballot": ballot, "card_pin": PIN}, 403)
    assert err["code"] == "kiosk.revoked" and "失効" in err["message_ja"]
    st = kiosk.state_now()
    assert (st["state"], st["card_present"], st["ballots_cast"]) == ("revoked", False, 0)
    assert kiosk.error("close", {"pin": pw})["code"] == "kiosk.state"
    assert ledger_size(world) == before
    # started again, it knows at once
    with run_kiosk(state, key, base, hsm) as again:
        assert again.state_now()["state"] == "revoked"
        assert again.error("open", {"pin": pw})["code"] == "kiosk.state"


# ---------------------------------------------------------------------------------- network trouble


@pytest.fixture
def proxied(
    world: dict[str, Any], enrolled: tuple[Any, Any, str, str], hsm: SoftHsm2
) -> Iterator[tuple[Kiosk, CutProxy]]:
    state, key, _, _ = enrolled
    proxy = CutProxy(int(urlsplit(world["election"].base_url).port or 0))
    try:
        with run_kiosk(state, key, proxy.url, hsm) as k:
            yield k, proxy
    finally:
        proxy.close()


def test_lost_answer_is_found_by_tracking_code(
    world: dict[str, Any], proxied: tuple[Kiosk, CutProxy], enrolled: tuple[Any, Any, str, str], hsm: SoftHsm2
) -> None:
    k, proxy = proxied
    pw = enrolled[3]
    k.ok("open", {"pin": pw})
    insert(hsm, world["residents"][5])
    session = voter_turn(k, pw)
    k.ok("card", {"voter_session": session})
    before = ledger_size(world)
    proxy.mode = "drop_cast_answer"
    out = k.ok(
        "cast",
        {"voter_session": session, "ballot": encrypt(world["election"].base_url, CHOICES), "card_pin": PIN},
    )
    assert proxy.casts_seen == 1
    assert ledger_size(world) == before + 1  # the server appended it; the kiosk found it and printed
    assert out["receipt"]["tracking_code"] in pdf_text(Path(out["printed"]["path"]))
    assert out["state"] == "locked" and k.state_now()["ballots_cast"] == 1
    proxy.mode = "forward"
    assert k.ok("close", {"pin": pw})["server_count"] == 1


def test_cut_network_is_unconfirmed_then_not_cast(
    world: dict[str, Any], proxied: tuple[Kiosk, CutProxy], enrolled: tuple[Any, Any, str, str], hsm: SoftHsm2
) -> None:
    k, proxy = proxied
    pw = enrolled[3]
    e = world["election"]
    k.ok("open", {"pin": pw})
    insert(hsm, world["residents"][3])
    before = ledger_size(world)

    # (b) no server at all: nothing is sent, nothing is cast
    session = voter_turn(k, pw)
    k.ok("card", {"voter_session": session})
    proxy.mode = "refuse"
    err = k.error(
        "cast", {"voter_session": session, "ballot": encrypt(e.base_url, CHOICES), "card_pin": PIN}, 503
    )
    assert err["code"] == "kiosk.not_cast"
    assert ledger_size(world) == before and k.state_now()["state"] == "ready"

    # the connection breaks as the cast is sent, and stays down: the kiosk cannot know -> unconfirmed
    proxy.mode = "cut_at_cast"
    ballot = encrypt(e.base_url, CHOICES)
    err = k.error("cast", {"voter_session": session, "ballot": ballot, "card_pin": PIN}, 503)
    assert err["code"] == "kiosk.unconfirmed" and err["tracking_code"]
    assert ledger_size(world) == before
    st = k.state_now()
    assert (st["state"], st["unconfirmed"], st["ballots_cast"]) == ("ready", err["tracking_code"], 0)
    # the voter cannot walk away from that screen; the idle reset leaves it too
    assert k.error("lock", {"voter_session": session})["code"] == "kiosk.unconfirmed"
    # the network is back: re-checking finds nothing on the ledger -> not cast; the voter may try again
    proxy.mode = "forward"
    err = k.error("recheck", {"pin": pw}, 503)
    assert (err["code"], err["reason"]) == ("kiosk.not_cast", "not_found")
    assert k.state_now()["unconfirmed"] is None
    out = k.ok("cast", {"voter_session": session, "ballot": ballot, "card_pin": PIN})
    assert ledger_size(world) == before + 1 and out["state"] == "locked"


def test_a_restarted_kiosk_keeps_its_count_but_not_the_pin(
    world: dict[str, Any], enrolled: tuple[Any, Any, str, str], hsm: SoftHsm2
) -> None:
    state, key, _, pw = enrolled
    base = world["election"].base_url
    with run_kiosk(state, key, base, hsm) as k:
        k.ok("open", {"pin": pw})
        insert(hsm, world["residents"][2])
        session = voter_turn(k, pw)
        k.ok("card", {"voter_session": session})
        k.ok("cast", {"voter_session": session, "ballot": encrypt(base, CHOICES), "card_pin": PIN})
    assert json.loads(state.session_path.read_text()) == {"count": 1, "open": True, "session": 1}
    with run_kiosk(state, key, base, hsm) as k:
        st = k.state_now()
        assert (st["state"], st["session"], st["ballots_cast"]) == ("locked", 1, 1)
        # the PIN's hash was in memory only: close and open again
        assert k.error("unlock", {"pin": pw}, 409)["code"] == "kiosk.poll_worker_unknown"
        closed = k.ok("close", {"pin": pw})
        assert (closed["kiosk_count"], closed["server_count"]) == (1, 1)
        assert k.ok("open", {"pin": pw})["session"] == 2
        assert k.state_now()["ballots_cast"] == 0
        voter_turn(k, pw)
    # the poll worker's PIN is nowhere in the kiosk's files (the reports' entry hashes could hold any 8
    # digits by chance: left out; the slips' text is checked)
    for f in state.root.rglob("*"):
        if f.is_file() and f.parent != state.reports:
            assert pw not in (pdf_text(f) if f.suffix == ".pdf" else f.read_bytes().decode("latin-1")), f
