"""kiosk.card against a real SoftHSM2 token, through the same python-pkcs11 code path as OpenSC's module.

Needs SoftHSM2 (Debian: softhsm2); skips without it, unless ``TVOTE_REQUIRE_ALL=1`` (CI), where it fails."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pkcs11
import pytest
from cryptography import x509

import voting.auth as auth
from kiosk.card import (
    MESSAGES,
    CardAbsentError,
    CardError,
    CardLockedError,
    CardReader,
    CardReaderUnavailableError,
    CardRemovedError,
    DifferentCardError,
    NoSigningKeyError,
    PinFormatError,
    PinTryCounter,
    SignatureMismatchError,
    WrongPinError,
    check_pin_format,
)
from kiosk.testing import SoftHsm2, find_softhsm2_library
from voting.auth import CrlFileChecker, JpkiVerifier, RollKey
from voting.testing import JpkiTestCa, TestCard, TestResident

NOW = dt.datetime.now(dt.UTC)
PIN = "ABC123xyz"
BASE, BALLOT, CHALLENGE = b"\x01" * 32, b"\x02" * 32, b"\x03" * 32
ALICE = TestResident("筑波 花子", dt.date(1990, 4, 1), "茨城県つくば市研究学園一丁目1番地1", sex="2")
BOB = TestResident("土浦 太郎", dt.date(1985, 7, 7), "茨城県土浦市大和町1番1号", sex="1")


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
def ca() -> JpkiTestCa:
    return JpkiTestCa.generate(NOW - dt.timedelta(days=30))


@pytest.fixture(scope="module")
def alice(ca: JpkiTestCa) -> TestCard:
    return ca.issue_card(ALICE, NOW - dt.timedelta(days=10))


@pytest.fixture(scope="module")
def bob(ca: JpkiTestCa) -> TestCard:
    return ca.issue_card(BOB, NOW - dt.timedelta(days=10))


def make_hsm(tmp_path: Path, name: str, library: Path) -> SoftHsm2:
    return SoftHsm2(tmp_path / name, library)


@pytest.fixture
def alice_hsm(
    tmp_path: Path, softhsm_library: Path, alice: TestCard, monkeypatch: pytest.MonkeyPatch
) -> SoftHsm2:
    hsm = make_hsm(tmp_path, "alice", softhsm_library)
    hsm.add_card(PIN, alice.private_key, alice.certificate)
    monkeypatch.setenv("SOFTHSM2_CONF", str(hsm.conf))
    return hsm


@pytest.fixture
def reader(alice_hsm: SoftHsm2, tmp_path: Path) -> CardReader:
    return CardReader(alice_hsm.library, tmp_path / "state")


def verify(ca: JpkiTestCa, sub: auth.JpkiSubmission) -> auth.JpkiIdentity:
    crl = ca.build_crl([], NOW - dt.timedelta(hours=1), NOW + dt.timedelta(days=1))
    v = JpkiVerifier(
        [ca.certificate],
        CrlFileChecker([crl]),
        RollKey(b"\x42" * 32),
        accepted_policies=(auth.JPKI_TEST_SIGN_POLICY_OID,),
    )
    return v.verify(sub, election_base_hash=BASE, ballot_hash=BALLOT, challenge=CHALLENGE, now=NOW)


def state_file(reader: CardReader) -> dict[str, Any]:
    return json.loads(reader.counter.path.read_text()) if reader.counter.path.exists() else {}


# ------------------------------------------------------------------------------------------------ signing


def test_card_signature_passes_the_servers_jpki_check(
    reader: CardReader, ca: JpkiTestCa, alice: TestCard
) -> None:
    info = reader.read_card()
    assert info.certificate_der == alice.certificate_der
    assert info.fingerprint == auth.certificate_fingerprint(alice.certificate)
    assert "certificate" not in repr(info).lower().replace("cardinfo", "")
    sub = reader.sign_ballot(PIN, BASE, BALLOT, CHALLENGE, expected_fingerprint=info.fingerprint)
    assert sub.certificate_der == alice.certificate_der
    identity = verify(ca, sub)
    # the same identity as the software card's signature over the same ballot gives
    assert identity == verify(ca, alice.sign_ballot(BASE, BALLOT, CHALLENGE))
    # a signature over another ballot does not pass for this one
    other = reader.sign_ballot(PIN, BASE, b"\x09" * 32, CHALLENGE)
    with pytest.raises(auth.JpkiError, match=r"jpki\.signature"):
        verify(ca, other)


class DigestInfoOnly(CardReader):
    """A reader that signs as on a card without CKM_SHA256_RSA_PKCS: CKM_RSA_PKCS over our DigestInfo."""

    mechanisms = (pkcs11.Mechanism.RSA_PKCS,)


def test_raw_pkcs1_over_a_digest_info_gives_the_same_signature(
    alice_hsm: SoftHsm2, tmp_path: Path, ca: JpkiTestCa, alice: TestCard
) -> None:
    sub = DigestInfoOnly(alice_hsm.library, tmp_path / "state").sign_ballot(PIN, BASE, BALLOT, CHALLENGE)
    # RSASSA-PKCS1-v1_5 is deterministic: the same bytes as the software card's and the other mechanism's
    assert sub.signature == alice.sign_ballot(BASE, BALLOT, CHALLENGE).signature
    assert sub == CardReader(alice_hsm.library, tmp_path / "state").sign_ballot(PIN, BASE, BALLOT, CHALLENGE)
    verify(ca, sub)


def test_a_card_of_another_person_is_a_different_card(
    reader: CardReader, tmp_path: Path, softhsm_library: Path, bob: TestCard, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = reader.read_card()
    bob_hsm = make_hsm(tmp_path, "bob", softhsm_library)
    bob_hsm.add_card(PIN, bob.private_key, bob.certificate)
    monkeypatch.setenv("SOFTHSM2_CONF", str(bob_hsm.conf))  # Alice's card out, Bob's in
    second = reader.read_card()
    assert second.fingerprint == auth.certificate_fingerprint(bob.certificate) != first.fingerprint
    with pytest.raises(DifferentCardError) as e:
        reader.sign_ballot(PIN, BASE, BALLOT, CHALLENGE, expected_fingerprint=first.fingerprint)
    assert e.value.code == "card.different"
    # refused before the PIN was tried: neither card's counter moved
    with pytest.raises(DifferentCardError):
        reader.sign_ballot("WRONG999", BASE, BALLOT, CHALLENGE, expected_fingerprint=first.fingerprint)
    assert reader.tries_left(first) == reader.tries_left(second) == 5
    assert state_file(reader) == {}


def test_a_card_that_shows_its_signing_certificate_only_after_the_pin(
    tmp_path: Path, softhsm_library: Path, ca: JpkiTestCa, alice: TestCard, monkeypatch: pytest.MonkeyPatch
) -> None:
    """JPKI through OpenSC: the user-authentication certificate is public, the signing one private."""
    login_only = x509.KeyUsage(True, False, False, False, False, False, False, False, False)
    auth_cert = ca.issue_card(ALICE, NOW - dt.timedelta(days=10), key_usage=login_only).certificate
    hsm = make_hsm(tmp_path, "jpki-like", softhsm_library)
    hsm.add_card(
        PIN, alice.private_key, alice.certificate, extra_certificates=(auth_cert,), private_certificate=True
    )
    monkeypatch.setenv("SOFTHSM2_CONF", str(hsm.conf))
    r = CardReader(softhsm_library, tmp_path / "state")
    info = r.read_card()
    assert info.fingerprint == auth.certificate_fingerprint(auth_cert)
    assert info.certificate_der == b""  # not readable before the PIN
    with pytest.raises(WrongPinError) as e:
        r.sign_ballot("WRONG999", BASE, BALLOT, CHALLENGE, expected_fingerprint=info.fingerprint)
    assert e.value.tries_left == 4 == r.tries_left(info)
    sub = r.sign_ballot(PIN, BASE, BALLOT, CHALLENGE, expected_fingerprint=info.fingerprint)
    assert sub.certificate_der == alice.certificate_der
    verify(ca, sub)
    assert r.tries_left(info) == 5


# ---------------------------------------------------------------------------------------------------- PIN


def test_wrong_pins_count_down_then_lock_even_the_right_pin(reader: CardReader, alice: TestCard) -> None:
    fp = reader.read_card().fingerprint
    for left in (4, 3, 2, 1):
        with pytest.raises(WrongPinError) as e:
            reader.sign_ballot("WRONG999", BASE, BALLOT, CHALLENGE)
        assert e.value.tries_left == left == reader.tries_left(fp)
        assert e.value.code == "card.pin_wrong"
        assert f"残り{left}回" in e.value.message_ja and f"{left} tries left" in e.value.message_en
    with pytest.raises(CardLockedError):  # the 5th wrong PIN locks
        reader.sign_ballot("WRONG999", BASE, BALLOT, CHALLENGE)
    assert reader.tries_left(fp) == 0
    with pytest.raises(CardLockedError):  # refused without trying, even with the right PIN
        reader.sign_ballot(PIN, BASE, BALLOT, CHALLENGE)
    # the lock outlives the reader object (state dir), and is keyed by the certificate fingerprint
    again = CardReader(reader.module, reader.counter.path.parent)
    with pytest.raises(CardLockedError):
        again.sign_ballot(PIN, BASE, BALLOT, CHALLENGE)
    assert state_file(reader) == {fp: 5}


def test_a_right_pin_resets_the_count(reader: CardReader, ca: JpkiTestCa) -> None:
    for _ in range(3):
        with pytest.raises(WrongPinError):
            reader.sign_ballot("WRONG999", BASE, BALLOT, CHALLENGE)
    verify(ca, reader.sign_ballot(PIN, BASE, BALLOT, CHALLENGE))
    assert state_file(reader) == {}
    with pytest.raises(WrongPinError) as e:
        reader.sign_ballot("WRONG999", BASE, BALLOT, CHALLENGE)
    assert e.value.tries_left == 4


@pytest.mark.parametrize(
    "pin",
    ["", "12345", "A" * 17, "ABC 123", "ABC-123", "ＡＢＣ１２３", "ábc1234", "ABC123\n", None, b"ABC123"],
)
def test_bad_pin_format_never_reaches_the_card(pin: Any, tmp_path: Path) -> None:
    with pytest.raises(PinFormatError) as e:
        check_pin_format(pin)
    assert e.value.code == "card.pin_format"
    # a reader whose module does not even exist: the format check comes first
    with pytest.raises(PinFormatError):
        CardReader(tmp_path / "no-such-module.so", tmp_path / "state").sign_ballot(
            pin, BASE, BALLOT, CHALLENGE
        )
    assert not (tmp_path / "state").exists()


def test_bad_pin_format_does_not_count(reader: CardReader) -> None:
    with pytest.raises(PinFormatError):
        reader.sign_ballot("12345", BASE, BALLOT, CHALLENGE)
    assert reader.tries_left(reader.read_card()) == 5


@pytest.mark.parametrize("pin", ["123456", "A1B2C3D4E5F6G7H8", "abcdef"])
def test_good_pin_formats(pin: str) -> None:
    assert check_pin_format(pin) == pin


# ------------------------------------------------------------------------------------------ no card, ...


def test_no_token(tmp_path: Path, softhsm_library: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = make_hsm(tmp_path, "empty", softhsm_library)
    monkeypatch.setenv("SOFTHSM2_CONF", str(empty.conf))
    r = CardReader(softhsm_library, tmp_path / "state")
    with pytest.raises(CardAbsentError) as e:
        r.read_card()
    assert e.value.code == "card.absent"
    with pytest.raises(CardAbsentError):
        r.sign_ballot(PIN, BASE, BALLOT, CHALLENGE)


def test_a_token_with_another_label(
    tmp_path: Path, softhsm_library: Path, alice: TestCard, monkeypatch: pytest.MonkeyPatch
) -> None:
    hsm = make_hsm(tmp_path, "other", softhsm_library)
    hsm.add_card(PIN, alice.private_key, alice.certificate, label="NOT-JPKI")
    monkeypatch.setenv("SOFTHSM2_CONF", str(hsm.conf))
    with pytest.raises(CardAbsentError):
        CardReader(softhsm_library, tmp_path / "state").sign_ballot(PIN, BASE, BALLOT, CHALLENGE)
    # the label is configurable: the same token under its own label works
    sub = CardReader(softhsm_library, tmp_path / "state", token_label="NOT-JPKI").sign_ballot(
        PIN, BASE, BALLOT, CHALLENGE
    )
    assert sub.certificate_der == alice.certificate_der


def test_module_that_does_not_load(tmp_path: Path) -> None:
    with pytest.raises(CardReaderUnavailableError):
        CardReader(tmp_path / "no-such-module.so", tmp_path / "state").read_card()


class PulledOutMidSignature(CardReader):
    """The card leaves the reader after the login, before the signature: the session is gone."""

    def _sign_in_session(
        self, token: pkcs11.Token, session: pkcs11.Session, key_id: Any, message: bytes
    ) -> bytes:
        session.close()
        return super()._sign_in_session(token, session, key_id, message)


class ModuleGoneMidSignature(CardReader):
    """The reader's module is finalized (the device is gone) between the login and the signature."""

    def _sign_in_session(
        self, token: pkcs11.Token, session: pkcs11.Session, key_id: Any, message: bytes
    ) -> bytes:
        pkcs11.lib(self.module).finalize()  # the same process-wide module: every session is closed
        return super()._sign_in_session(token, session, key_id, message)


@pytest.mark.parametrize(
    ("cls", "pkcs11_error"),
    [(PulledOutMidSignature, "SessionHandleInvalid"), (ModuleGoneMidSignature, "PKCS11Error")],
)
@pytest.mark.filterwarnings(
    "ignore::pytest.PytestUnraisableExceptionWarning"
)  # pkcs11's search on the dead session
def test_card_removed_mid_signature(
    cls: type[CardReader], pkcs11_error: str, alice_hsm: SoftHsm2, tmp_path: Path
) -> None:
    r = cls(alice_hsm.library, tmp_path / "state")
    with pytest.raises(CardRemovedError) as e:
        r.sign_ballot(PIN, BASE, BALLOT, CHALLENGE)
    assert e.value.code == "card.removed"
    assert e.value.detail == f"the card went away while signing ({pkcs11_error})"  # the token's own error
    assert r.tries_left(r.read_card()) == 5  # the PIN was right: nothing counted
    # the card back in: signing works
    assert CardReader(alice_hsm.library, tmp_path / "state").sign_ballot(PIN, BASE, BALLOT, CHALLENGE)


def test_a_card_whose_key_does_not_match_its_certificate(
    tmp_path: Path, softhsm_library: Path, alice: TestCard, bob: TestCard, monkeypatch: pytest.MonkeyPatch
) -> None:
    hsm = make_hsm(tmp_path, "mixed", softhsm_library)
    hsm.add_card(PIN, bob.private_key, alice.certificate)
    monkeypatch.setenv("SOFTHSM2_CONF", str(hsm.conf))
    with pytest.raises(SignatureMismatchError) as e:
        CardReader(softhsm_library, tmp_path / "state").sign_ballot(PIN, BASE, BALLOT, CHALLENGE)
    assert e.value.code == "card.signature"


def test_a_card_without_a_signing_certificate(
    tmp_path: Path, softhsm_library: Path, ca: JpkiTestCa, monkeypatch: pytest.MonkeyPatch
) -> None:
    hsm = make_hsm(tmp_path, "ca-only", softhsm_library)
    hsm.add_card(PIN, ca.private_key, ca.certificate)  # a CA certificate: keyCertSign, no nonRepudiation
    monkeypatch.setenv("SOFTHSM2_CONF", str(hsm.conf))
    r = CardReader(softhsm_library, tmp_path / "state")
    with pytest.raises(NoSigningKeyError) as e:
        r.sign_ballot(PIN, BASE, BALLOT, CHALLENGE)
    assert e.value.code == "card.no_signing_key"
    with pytest.raises(NoSigningKeyError):
        r.read_card()


def test_every_error_has_a_message_in_both_languages() -> None:
    codes = {c.code for c in CardError.__subclasses__()}
    assert codes == set(MESSAGES)
    for en, ja in MESSAGES.values():
        assert en.isascii() and not ja.isascii()


# ------------------------------------------------------------------------------------------- the counter


def test_the_pin_try_file_is_replaced_atomically_and_checked(tmp_path: Path) -> None:
    c = PinTryCounter(tmp_path / "state")
    assert c.tries_left("aa") == 5 and not c.path.exists()
    assert c.record_failure("aa") == 4
    assert c.record_failure("bb") == 4
    assert c.record_failure("aa") == 3
    assert json.loads(c.path.read_text()) == {"aa": 2, "bb": 1}
    assert sorted(p.name for p in c.path.parent.iterdir()) == ["pin-tries.json"]  # no temporary file left
    c.reset("aa")
    assert json.loads(c.path.read_text()) == {"bb": 1}
    assert PinTryCounter(tmp_path / "state").tries_left("bb") == 4  # survives a restart
    for bad in ('{"aa": -1}', '{"aa": true}', '["aa"]', '{"aa": "1"}'):
        c.path.write_text(bad)
        with pytest.raises(ValueError, match="not a PIN-try file"):
            c.tries_left("aa")
    with pytest.raises(ValueError):
        PinTryCounter(tmp_path, max_tries=0)
