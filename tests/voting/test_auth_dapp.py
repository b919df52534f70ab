"""My Number card on the phone: the Digital Authentication App's signing transaction, over real HTTP against a
real server and the real emulator (``voting.testing.DappEmulator``) with test cards of the JPKI test CA.

The happy path is a JPKI cast in every respect (the entry, the evidence; ``tvote-verify`` and the observers'
audit pass on the record); then the attacks: a transaction reused for a second ballot or used for another
ballot, an expired or refused one, an app answer that signs another digest, carries a certificate of another
CA or a revoked one, is malformed or oversized, an app that is down, and a wrong PIN until the card locks.
Every refusal appends nothing."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from verifier import Options, verify_record
from voting._audit import audit_evidence
from voting._errors import ConfigurationError
from voting._oversight import generate_oversight_key
from voting._settings import Settings
from voting._startup import run_checks
from voting.auth import DappConfig, DappError, DigitalAuthAppClient, load_crl, sha256_digest_info
from voting.testing import (
    DAPP_TEST_PIN,
    DEMO_WITNESSES,
    DemoElection,
    JpkiTestCa,
    RsaKeyPool,
    make_residents,
    new_rsa_key,
    start_election,
    tsukuba_manifest,
)

pytestmark = pytest.mark.xdist_group("auth-dapp")

CHOICE = {"mayor": ["cand-1"], "referendum": ["yes"], "subsidy": ["proj-2"]}
OTHER = {"mayor": ["cand-2"], "referendum": ["no"], "subsidy": []}


class _World:
    def __init__(self, e: DemoElection, data_dir: Path, key: Any, revoked: Any) -> None:
        self.e, self.data_dir, self.key, self.revoked = e, data_dir, key, revoked
        assert e.dapp is not None
        self.dapp = e.dapp
        self.next = 0

    def resident(self) -> Any:
        """A roll resident who has not voted in this module yet (each test takes its own)."""
        r = self.e.residents[self.next]
        self.next += 1
        return r

    def card_id(self, r: Any) -> str:
        return self.e.dapp_cards[r.resident_id]

    def prepare(self, choices: dict[str, list[str]] = CHOICE) -> Any:
        with self.e.client() as c:
            return c.prepare(choices)

    def start(self, p: Any) -> dict[str, Any]:
        ch = self.e.http.post("/api/v1/voter/challenge").json()["challenge"]
        r = self.e.http.post(
            "/api/v1/voter/jpki-app/start", json={"ballot_hash": p.ballot_hash.hex(), "challenge": ch}
        )
        assert r.status_code == 200, r.text
        started: dict[str, Any] = r.json()
        return started

    def status(self, tx: str) -> str:
        r = self.e.http.get(f"/api/v1/voter/jpki-app/{tx}")
        assert r.status_code == 200, r.text
        return str(r.json()["status"])

    def cast(self, p: Any, tx: str) -> httpx.Response:
        body = {"ballot": p.ballot.to_dict(), "auth": {"method": "jpki-app", "transaction": tx}}
        return self.e.http.post("/api/v1/voter/ballots", json=body)

    def refused(self, p: Any, tx: str, status: int, code: str) -> None:
        before = self.e.ledger_size()
        r = self.cast(p, tx)
        assert r.status_code == status, r.text
        assert r.json()["error"]["code"] == code
        assert self.e.ledger_size() == before  # nothing appended

    def approved(self, r: Any, p: Any) -> dict[str, Any]:
        started = self.start(p)
        assert self.dapp.approve(started["app_url"], self.card_id(r)) == {"status": "approved"}
        assert self.status(started["transaction"]) == "approved"
        return started


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_World]:
    now = dt.datetime.now(dt.UTC)
    ca = JpkiTestCa.generate(now)
    residents = make_residents(16, ca, now, pool=RsaKeyPool(3))
    key = generate_oversight_key()
    manifest = tsukuba_manifest(now, small=True, trustees=1, threshold=1)
    manifest["auth_methods"] = ["jpki"]
    manifest["oversight"] = {"x25519_public_key": bytes(key.public_key).hex()}
    data_dir = tmp_path_factory.mktemp("dapp")
    revoked = residents[-1]
    with start_election(
        data_dir,
        residents,
        ca,
        manifest,
        now=now,
        revoked=[revoked],
        witnesses=DEMO_WITNESSES,
        signing_app=True,
    ) as e:
        yield _World(e, data_dir, key, revoked)


# ------------------------------------------------------------------------------------------- happy path


def test_a_ballot_signed_on_the_phone_is_a_jpki_cast_and_the_record_verifies(
    world: _World, tmp_path: Path
) -> None:
    e, r = world.e, world.resident()
    seen: list[str] = []

    def phone(app_url: str) -> None:  # the resident opens the app at the booth's link and approves
        seen.append(app_url)
        q = parse_qs(urlsplit(app_url).query)
        assert q["scope"] == ["openid sign"] and q["response_type"] == ["code"]
        assert app_url.startswith(world.dapp.url + "/api/realms/main/protocol/openid-connect/auth?")
        assert world.dapp.approve(app_url, world.card_id(r)) == {"status": "approved"}

    with e.client() as c:
        receipt = c.cast_jpki_app(CHOICE, approve=phone)
        receipt = c.complete_receipt(receipt)
        e.cosign()  # the witnesses' round: the receipt's checkpoint gets its cosignatures
        c.verify_receipt(receipt)
    assert len(seen) == 1
    entry = e.service.ledger.entry(receipt.leaf_index)
    assert entry.payload["auth"]["method"] == "jpki"  # exactly a JPKI cast: same public record
    assert set(entry.payload["auth"]) == {"method", "evidence_hash"}
    assert r.person.name not in entry.canonical.decode()

    # the record verifies, and the observers' audit re-checks the card signature from the sealed evidence
    export = e.admin("/evidence/export")
    (tmp_path / "evidence.json").write_text(json.dumps(export), encoding="utf-8")
    e.service.ledger.checkpoint()
    e.cosign()
    e.service.ledger.export(tmp_path / "record")
    assert verify_record(tmp_path / "record", Options(partial=True)).ok
    crls = [load_crl(f.read_bytes()) for f in sorted((world.data_dir / "jpki-crls").iterdir())]
    report = audit_evidence(
        tmp_path / "record",
        tmp_path / "evidence.json",
        world.key,
        jpki_roots=[e.ca.certificate],
        crls=crls,
        oidc_jwks={"keys": []},
        accept_test_policy=True,
    )
    assert report.ok, report.human()
    assert report.justified >= 1


def test_the_phone_page_approves_through_its_html_form(world: _World) -> None:
    """What the booth's link or QR code opens: a page (no script) where the card and its PIN are entered."""
    r, p = world.resident(), world.prepare()
    started = world.start(p)
    assert started["transaction"] not in started["app_url"]  # the booth's handle never shows in the QR code
    page = httpx.get(started["app_url"])
    assert page.status_code == 200 and 'action="/phone/approve"' in page.text and "EMULATOR" in page.text
    form = {
        "sign_transaction_id": world.dapp.transaction_of(started["app_url"]),
        "redirect_uri": world.e.base_url + "/vote",
        "state": parse_qs(urlsplit(started["app_url"]).query)["state"][0],
        "card": world.card_id(r),
        "pin": DAPP_TEST_PIN,
        "action": "approve",
    }
    done = httpx.post(world.dapp.url + "/phone/approve", data=form)
    assert done.status_code == 200 and "Signed." in done.text and "Return to the service" in done.text
    assert world.status(started["transaction"]) == "approved"
    assert world.cast(p, started["transaction"]).status_code == 200


def test_an_ejected_card_is_offered_no_more_and_its_approved_signature_still_casts(world: _World) -> None:
    """``tvote demo --serve`` ejects every card but the person's: the phone page lists the rest only, an
    ejected card cannot approve, and a transaction it approved before ejection still casts (the certificate
    was kept with the signature). A card inserted afterwards never takes an ejected card's id."""
    r, p = world.resident(), world.prepare()
    other = world.resident()
    started = world.approved(r, p)
    world.dapp.eject_card(world.card_id(r))
    assert world.cast(p, started["transaction"]).status_code == 200
    p2 = world.prepare(OTHER)
    started2 = world.start(p2)
    assert world.dapp.approve(started2["app_url"], world.card_id(r)) == {"error": "card.unknown"}
    page = httpx.get(started2["app_url"]).text
    assert f'value="{world.card_id(r)}"' not in page and f'value="{world.card_id(other)}"' in page
    new_id = world.dapp.insert_card(r.card)
    assert new_id not in world.e.dapp_cards.values()
    with pytest.raises(KeyError):
        world.dapp.eject_card(world.card_id(r))


# ------------------------------------------------------------------------------------------------ attacks


def test_a_transaction_is_used_once(world: _World) -> None:
    r, p = world.resident(), world.prepare()
    started = world.approved(r, p)
    assert world.cast(p, started["transaction"]).status_code == 200
    assert world.status(started["transaction"]) == "used"
    world.refused(world.prepare(OTHER), started["transaction"], 401, "dapp.used")


def test_a_transaction_started_for_another_ballot_is_refused(world: _World) -> None:
    r, p, other = world.resident(), world.prepare(), world.prepare(OTHER)
    started = world.approved(r, p)
    world.refused(other, started["transaction"], 401, "dapp.ballot_mismatch")
    assert world.cast(p, started["transaction"]).status_code == 200  # its own ballot still goes in


def test_a_challenge_binds_one_transaction_and_unknown_handles_are_refused(world: _World) -> None:
    p = world.prepare()
    ch = world.e.http.post("/api/v1/voter/challenge").json()["challenge"]
    body = {"ballot_hash": p.ballot_hash.hex(), "challenge": ch}
    assert world.e.http.post("/api/v1/voter/jpki-app/start", json=body).status_code == 200
    again = world.e.http.post("/api/v1/voter/jpki-app/start", json=body)
    assert again.status_code == 409 and again.json()["error"]["code"] == "challenge.used"
    unknown = world.e.http.post(
        "/api/v1/voter/jpki-app/start", json={"ballot_hash": p.ballot_hash.hex(), "challenge": "00" * 32}
    )
    assert unknown.status_code == 401 and unknown.json()["error"]["code"] == "challenge.unknown"
    world.refused(p, "A" * 43, 401, "dapp.unknown")
    assert world.e.http.get("/api/v1/voter/jpki-app/not-a-handle").status_code == 400
    big = world.e.http.post("/api/v1/voter/jpki-app/start", content=b"{" + b" " * 10_000 + b"}")
    assert big.status_code == 413


def test_an_expired_or_refused_transaction_casts_nothing(world: _World) -> None:
    r, p = world.resident(), world.prepare()
    started = world.start(p)
    world.dapp.advance(dt.timedelta(minutes=6))  # the emulator's transactions wait 5 minutes
    try:
        assert world.status(started["transaction"]) == "expired"
        late = world.dapp.approve(started["app_url"], world.card_id(r))
        assert late == {"error": "transaction.expired"}
        world.refused(p, started["transaction"], 401, "dapp.expired")
    finally:
        world.dapp.advance(dt.timedelta(minutes=-6))
    started = world.start(p)
    assert world.dapp.refuse(started["app_url"]) == {"status": "refused"}
    assert world.status(started["transaction"]) == "refused"
    world.refused(p, started["transaction"], 401, "dapp.refused")
    pending = world.start(p)
    world.refused(p, pending["transaction"], 409, "dapp.pending")


@contextmanager
def _override(world: _World, change: Any) -> Iterator[None]:
    world.dapp.result_override = change
    try:
        yield
    finally:
        world.dapp.result_override = None


def test_an_answer_signing_another_digest_is_refused(world: _World) -> None:
    r, p = world.resident(), world.prepare()
    started = world.approved(r, p)
    other = sha256_digest_info(b"a message of the attacker's choosing")
    sig = r.card.private_key.sign(other[19:], padding.PKCS1v15(), Prehashed(hashes.SHA256()))

    def swapped(a: dict[str, Any]) -> dict[str, Any]:  # the app (or a man in the middle) swaps the digest
        return {
            **a,
            "digest_info": base64.b64encode(other).decode(),
            "signature": base64.b64encode(sig).decode(),
        }

    def resigned(a: dict[str, Any]) -> dict[str, Any]:  # echoes our digest but signs the other one
        return {**a, "signature": base64.b64encode(sig).decode()}

    for change, code in ((swapped, "dapp.digest_mismatch"), (resigned, "jpki.signature")):
        with _override(world, change):
            world.refused(p, started["transaction"], 401, code)
    assert world.cast(p, started["transaction"]).status_code == 200  # the honest answer still works


def test_a_certificate_of_another_ca_or_a_revoked_card_is_refused(world: _World) -> None:
    r = world.resident()
    now = dt.datetime.now(dt.UTC)
    rogue_ca = JpkiTestCa.generate(now, organization="NOT-JPKI")
    rogue = rogue_ca.issue_card(r.person, now, key=r.card.private_key)  # same person, same key, wrong CA
    rogue_id = world.dapp.insert_card(rogue, label="rogue")
    p = world.prepare()
    started = world.start(p)
    assert world.dapp.approve(started["app_url"], rogue_id) == {"status": "approved"}
    world.refused(p, started["transaction"], 401, "jpki.chain")

    p = world.prepare()
    started = world.start(p)
    assert world.dapp.approve(started["app_url"], world.card_id(world.revoked)) == {"status": "approved"}
    world.refused(p, started["transaction"], 401, "jpki.revoked")

    # a certificate swapped into an honest answer: the signature no longer matches its key
    p = world.prepare()
    started = world.approved(r, p)
    # the pool shares keys between residents: take a valid card whose key is not r's
    mine = r.card.certificate.public_key().public_numbers()
    other_cert = next(
        o.card.certificate_der
        for o in world.e.residents[:-1]
        if o.card.certificate.public_key().public_numbers() != mine
    )

    def swapped(a: dict[str, Any]) -> dict[str, Any]:
        return {**a, "certificate": base64.b64encode(other_cert).decode()}

    with _override(world, swapped):
        world.refused(p, started["transaction"], 401, "jpki.signature")


@pytest.mark.parametrize(
    "answer",
    [
        b"not json",
        b"[]",
        json.dumps({"sign_transaction_id": "x"}).encode(),
        b'{"padding": "' + b"A" * 100_000 + b'"}',
    ],
    ids=["not-json", "not-object", "missing-members", "oversized"],
)
def test_a_malformed_or_oversized_answer_is_a_502(world: _World, answer: bytes) -> None:
    r, p = world.resident(), world.prepare()
    started = world.approved(r, p)
    with _override(world, lambda _a: answer):
        world.refused(p, started["transaction"], 502, "dapp.response")
    with _override(world, lambda a: {**a, "certificate": "%%%"}):
        world.refused(p, started["transaction"], 502, "dapp.response")
    with _override(world, lambda a: {**a, "intermediates": ["AA=="] * 5}):
        world.refused(p, started["transaction"], 502, "dapp.response")
    world.next -= 1  # nothing was cast: the resident can serve the next case


def test_an_app_that_is_down_is_a_503_and_casts_nothing(world: _World) -> None:
    r, p = world.resident(), world.prepare()
    started = world.approved(r, p)
    world.dapp.stop()
    try:
        world.refused(p, started["transaction"], 503, "dapp.unavailable")
        ch = world.e.http.post("/api/v1/voter/challenge").json()["challenge"]
        r2 = world.e.http.post(
            "/api/v1/voter/jpki-app/start",
            json={"ballot_hash": world.prepare(OTHER).ballot_hash.hex(), "challenge": ch},
        )
        assert r2.status_code == 503 and r2.json()["error"]["code"] == "dapp.unavailable"
    finally:
        world.dapp.start()  # back on the same address
    assert world.cast(p, started["transaction"]).status_code == 200


def test_a_wrong_pin_counts_down_and_locks_the_card(world: _World) -> None:
    r, p = world.resident(), world.prepare()
    started = world.start(p)
    card = world.card_id(r)
    assert world.dapp.approve(started["app_url"], card, "12") == {"error": "pin.format", "tries_left": 5}
    for left in (4, 3, 2, 1):
        assert world.dapp.approve(started["app_url"], card, "WRONG1") == {
            "error": "pin.wrong",
            "tries_left": left,
        }
    assert world.dapp.approve(started["app_url"], card, "WRONG1") == {"error": "card.locked", "tries_left": 0}
    assert world.dapp.approve(started["app_url"], card, DAPP_TEST_PIN) == {
        "error": "card.locked",
        "tries_left": 0,
    }
    assert world.dapp.tries_left(card) == 0
    assert world.status(started["transaction"]) == "pending"
    world.refused(p, started["transaction"], 409, "dapp.pending")


def test_the_client_authenticates_with_its_registered_key_and_renews_a_revoked_token(world: _World) -> None:
    r, p = world.resident(), world.prepare()
    started = world.approved(r, p)
    world.dapp.revoke_tokens()  # the app revokes the server's access token early: a new one is fetched
    assert world.cast(p, started["transaction"]).status_code == 200
    # a client assertion signed with another key (not the one registered for the client id) gets no token
    other = new_rsa_key().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    impostor = DigitalAuthAppClient(DappConfig(world.dapp.url, "tvotedemo", other, "http://127.0.0.1/vote"))
    with pytest.raises(DappError) as e:
        impostor.start(sha256_digest_info(b"x"), state="s")
    assert e.value.code == "dapp.response"


# ----------------------------------------------------------------------------------------------- settings


def test_settings_refuse_an_emulator_in_production_and_half_a_configuration(tmp_path: Path) -> None:
    token = "x" * 40
    key = tmp_path / "k.pem"
    common = {"admin_token": token, "jpki_trust_anchors": tmp_path, "jpki_crl_dir": tmp_path}
    with pytest.raises(ConfigurationError) as e:
        Settings(dapp_base_url="https://app.example.jp", dapp_client_id="RP1", **common)
    assert e.value.code == "config.dapp"
    for url in ("http://127.0.0.1:9999", "https://localhost:9999", "http://app.example.jp"):
        with pytest.raises(ConfigurationError) as e:
            Settings(dapp_base_url=url, dapp_client_id="RP1", dapp_client_key_file=key, **common)
        assert e.value.code == "config.dapp_base_url"
    with pytest.raises(ConfigurationError) as e:  # the card's signature is JPKI: it needs the anchors
        Settings(
            environment="test",
            admin_token=token,
            dapp_base_url="http://127.0.0.1:1",
            dapp_client_id="RP1",
            dapp_client_key_file=key,
        )
    assert e.value.code == "config.dapp"
    ok = Settings(
        environment="test",
        dapp_base_url="http://127.0.0.1:1",
        dapp_client_id="RP1",
        dapp_client_key_file=key,
        **common,
    )
    assert ok.effective_dapp_redirect_uri == "http://127.0.0.1:8000/vote"


def test_the_start_up_check_loads_the_client_key_and_wants_it_private(tmp_path: Path) -> None:
    key = tmp_path / "dapp-client-key.pem"
    common: dict[str, Any] = {
        "admin_token": "x" * 40,
        "data_dir": tmp_path,
        "jpki_trust_anchors": tmp_path,
        "jpki_crl_dir": tmp_path,
        "dapp_client_id": "RP00000001",
        "dapp_client_key_file": key,
    }
    test_env = Settings(environment="test", dapp_base_url="http://127.0.0.1:1", **common)
    key.write_text("not a key")
    problems = [p for p in run_checks(test_env) if p.check == "dapp"]
    assert len(problems) == 1 and "unusable" in problems[0].message
    key.write_bytes(
        new_rsa_key().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    key.chmod(0o644)
    assert [p for p in run_checks(test_env) if p.check == "dapp"] == []
    prod = Settings(dapp_base_url="https://app.example.jp", **common)
    problems = [p for p in run_checks(prod) if p.check == "dapp"]
    assert len(problems) == 1 and "chmod 600" in problems[0].message
    key.chmod(0o600)
    assert [p for p in run_checks(prod) if p.check == "dapp"] == []


def test_the_digest_info_makes_the_standard_signature() -> None:
    """The card signs the DigestInfo with PKCS#1 v1.5 padding: that is RSASSA-PKCS1-v1_5 / SHA-256 over the
    JPKI message, the signature ``JpkiVerifier`` checks."""
    now = dt.datetime.now(dt.UTC)
    ca = JpkiTestCa.generate(now)
    card = make_residents(1, ca, now, pool=RsaKeyPool(1))[0].card
    message = b"tvote/2/jpki-ballot\n" + bytes(96)
    di = sha256_digest_info(message)
    assert len(di) == 51 and di[19:] == hashlib.sha256(message).digest()
    sig = card.private_key.sign(di[19:], padding.PKCS1v15(), Prehashed(hashes.SHA256()))
    card.certificate.public_key().verify(sig, message, padding.PKCS1v15(), hashes.SHA256())  # type: ignore[union-attr]
    assert isinstance(card.certificate, x509.Certificate)
