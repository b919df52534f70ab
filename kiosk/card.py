"""My Number card access through PKCS#11 (``python-pkcs11``): read the signing certificate, sign the
protocol's JPKI ballot message, and enforce the JPKI signing-PIN rules in the app.

In production the PKCS#11 module is OpenSC's ``opensc-pkcs11.so`` (token label ``JPKI``); tests drive a
SoftHSM2 token through the same code (:mod:`kiosk.testing`). A card is never identified by its token
serial (a dummy on JPKI): it is identified by the SHA-256 fingerprint of its signing certificate.

Each operation loads the module, finds the one token with the configured label, works and finalizes the
module again, so a card swapped between two operations is seen as the new card.

PIN rules (the app's own, since a token such as SoftHSM2 has no JPKI retry counter): the signing PIN is
6–16 ASCII letters and digits, refused before the card is touched; after 5 wrong PINs the card is locked
and refused without trying; each wrong PIN says how many tries remain; a right PIN resets the count.
The counts live in ``<state_dir>/pin-tries.json`` keyed by certificate fingerprint (atomic writes).

Every failure is a :class:`CardError` with a stable :attr:`CardError.code` and an English and Japanese
message (:data:`MESSAGES`); none of them changes anything but the PIN counter.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

import pkcs11
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11 import exceptions as p11e
from pkcs11.types import SignMixin

from ledger.files import write_atomic
from voting.auth import JpkiSubmission, certificate_fingerprint, sha256_digest_info, signed_message

__all__ = [
    "DEFAULT_TOKEN_LABEL",
    "MAX_PIN_TRIES",
    "MESSAGES",
    "OPENSC_MODULE",
    "CardAbsentError",
    "CardError",
    "CardInfo",
    "CardLockedError",
    "CardReader",
    "CardReaderUnavailableError",
    "CardRemovedError",
    "CardSignature",
    "DifferentCardError",
    "NoSigningKeyError",
    "PinFormatError",
    "PinTryCounter",
    "SignatureMismatchError",
    "WrongPinError",
    "check_pin_format",
]

DEFAULT_TOKEN_LABEL: Final[str] = "JPKI"  # noqa: S105 (a token label, not a password)
OPENSC_MODULE: Final[str] = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so"
MAX_PIN_TRIES: Final[int] = 5
_PIN_RE: Final[re.Pattern[str]] = re.compile(r"[A-Za-z0-9]{6,16}")

#: code -> (English, Japanese): what a kiosk screen may show. Stable: screens and tests key on the code.
MESSAGES: Final[Mapping[str, tuple[str, str]]] = MappingProxyType(
    {
        "card.reader_unavailable": (
            "The card reader is not available. Please ask a poll worker.",
            "カードリーダーが使用できません。係員にお声がけください。",
        ),
        "card.absent": (
            "No My Number card was found. Please insert your card.",
            "マイナンバーカードが見つかりません。カードを挿入してください。",
        ),
        "card.removed": (
            "The card was removed or stopped responding. Nothing was signed; please insert it again.",
            "カードが取り外されたか応答しません。署名は行われていません。もう一度挿入してください。",
        ),
        "card.pin_format": (
            "The signing password is 6 to 16 letters and digits.",
            "署名用電子証明書の暗証番号は英数字6～16文字です。",
        ),
        "card.pin_wrong": (
            "The signing password is wrong.",
            "署名用電子証明書の暗証番号が違います。",
        ),
        "card.locked": (
            "The signing password is locked on this card. Please have it reset at your municipal office.",
            "署名用電子証明書の暗証番号がロックされています。市区町村の窓口で初期化してください。",
        ),
        "card.no_signing_key": (
            "This card has no usable signing key or certificate.",
            "このカードには利用できる署名用の鍵または証明書がありません。",
        ),
        "card.signature": (
            "The card's signature could not be verified. Nothing was cast.",
            "カードの署名を確認できませんでした。投票は行われていません。",
        ),
        "card.different": (
            "This is not the card that started this ballot.",
            "この投票を始めたカードとは別のカードです。",
        ),
    }
)


class CardError(Exception):
    """A card failure a kiosk screen can show: :attr:`code` is stable, :attr:`message_ja` for the screen."""

    code: str = "card.error"

    def __init__(self, detail: str | None = None) -> None:
        self.detail = detail or self.message_en
        super().__init__(f"[{self.code}] {self.detail}")

    @property
    def message_en(self) -> str:
        return MESSAGES[self.code][0]

    @property
    def message_ja(self) -> str:
        return MESSAGES[self.code][1]


class CardReaderUnavailableError(CardError):
    code = "card.reader_unavailable"


class CardAbsentError(CardError):
    code = "card.absent"


class CardRemovedError(CardError):
    code = "card.removed"


class PinFormatError(CardError):
    code = "card.pin_format"


class WrongPinError(CardError):
    code = "card.pin_wrong"

    def __init__(self, tries_left: int) -> None:
        self.tries_left = tries_left
        super().__init__(f"the signing PIN is wrong; {tries_left} tries left before the card locks")

    @property
    def message_en(self) -> str:
        return f"{MESSAGES[self.code][0]} {self.tries_left} tries left."

    @property
    def message_ja(self) -> str:
        return f"{MESSAGES[self.code][1]}残り{self.tries_left}回です。"


class CardLockedError(CardError):
    code = "card.locked"


class NoSigningKeyError(CardError):
    code = "card.no_signing_key"


class SignatureMismatchError(CardError):
    code = "card.signature"


class DifferentCardError(CardError):
    code = "card.different"


def check_pin_format(pin: object) -> str:
    """Return ``pin`` if it is 6–16 ASCII letters and digits, else raise :class:`PinFormatError`."""
    if not isinstance(pin, str) or not pin.isascii() or _PIN_RE.fullmatch(pin) is None:
        raise PinFormatError()
    return pin


class PinTryCounter:
    """Wrong-PIN counts per card (certificate fingerprint) in ``<state_dir>/pin-tries.json``.

    Only cards with at least one wrong try since their last right PIN are stored; each write replaces the
    file atomically (temporary file, fsync, rename)."""

    def __init__(self, state_dir: str | Path, max_tries: int = MAX_PIN_TRIES) -> None:
        if max_tries < 1:
            raise ValueError("max_tries must be positive")
        self.path = Path(state_dir) / "pin-tries.json"
        self.max_tries = max_tries

    def _load(self) -> dict[str, int]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        if not isinstance(data, dict) or not all(
            isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v >= 0
            for k, v in data.items()
        ):
            raise ValueError(f"{self.path} is not a PIN-try file")
        return data

    def _store(self, data: dict[str, int]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path, json.dumps(data, sort_keys=True))  # fsynced, replaced, directory fsynced

    def failures(self, fingerprint: str) -> int:
        return self._load().get(fingerprint, 0)

    def tries_left(self, fingerprint: str) -> int:
        return max(0, self.max_tries - self.failures(fingerprint))

    def record_failure(self, fingerprint: str) -> int:
        """Count one wrong PIN; return the tries left."""
        data = self._load()
        data[fingerprint] = min(self.max_tries, data.get(fingerprint, 0) + 1)
        self._store(data)
        return self.max_tries - data[fingerprint]

    def lock(self, fingerprint: str) -> None:
        data = self._load()
        data[fingerprint] = self.max_tries
        self._store(data)

    def reset(self, fingerprint: str) -> None:
        data = self._load()
        if data.pop(fingerprint, None) is not None:
            self._store(data)


@dataclass(frozen=True, slots=True)
class CardInfo:
    """The card in the reader. ``fingerprint`` (the card's identity, lowercase hex SHA-256) is that of its
    signing certificate, or, on a card that shows that certificate only after the PIN (JPKI through
    OpenSC), of its public user-authentication certificate. ``certificate_der`` is the signing
    certificate (empty from :meth:`CardReader.read_card` on such a card)."""

    fingerprint: str
    certificate_der: bytes

    def __repr__(self) -> str:  # the certificate holds personal data: never in a log line
        return f"CardInfo(fingerprint={self.fingerprint})"


@dataclass(frozen=True, slots=True)
class CardSignature:
    """A checked card signature over one message (RSASSA-PKCS1-v1_5 / SHA-256)."""

    card: CardInfo
    signature: bytes


# PKCS#11 failures that mean the card (or its session) went away in the middle of an operation
_GONE: Final[tuple[type[Exception], ...]] = (
    p11e.DeviceRemoved,
    p11e.DeviceError,
    p11e.DeviceMemory,
    p11e.TokenNotPresent,
    p11e.TokenNotRecognised,
    p11e.SessionClosed,
    p11e.SessionHandleInvalid,
    p11e.FunctionFailed,
    p11e.FunctionCancelled,
    p11e.OperationNotInitialized,
    p11e.UserNotLoggedIn,
    p11e.ObjectHandleInvalid,
    p11e.KeyHandleInvalid,
)


def _is_signing_certificate(cert: x509.Certificate) -> bool:
    try:
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return False
    return bool(ku.digital_signature and ku.content_commitment and not ku.key_cert_sign)


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


class CardReader:
    """A card reader behind a PKCS#11 module: ``module`` is the module's path (production:
    :data:`OPENSC_MODULE`), ``token_label`` the card's token label, ``state_dir`` the kiosk's state
    directory (PIN-try counts)."""

    def __init__(
        self,
        module: str | Path,
        state_dir: str | Path,
        *,
        token_label: str = DEFAULT_TOKEN_LABEL,
        max_tries: int = MAX_PIN_TRIES,
    ) -> None:
        self.module = str(module)
        self.token_label = token_label
        self.counter = PinTryCounter(state_dir, max_tries)

    #: the signing mechanisms in order of preference (these two only); the first the token offers is used
    mechanisms: tuple[Mechanism, ...] = (Mechanism.SHA256_RSA_PKCS, Mechanism.RSA_PKCS)

    # -------------------------------------------------------------------------------------------- access

    @contextlib.contextmanager
    def _token(self) -> Iterator[pkcs11.Token]:
        try:
            lib = pkcs11.lib(self.module)
        except (p11e.PKCS11Error, OSError) as e:
            raise CardReaderUnavailableError(
                f"the PKCS#11 module does not load ({type(e).__name__})"
            ) from None
        try:
            try:
                token = lib.get_token(token_label=self.token_label)
            except p11e.NoSuchToken:
                raise CardAbsentError(f"no token labelled {self.token_label!r}") from None
            except p11e.MultipleTokensReturned:
                raise CardAbsentError(f"more than one token labelled {self.token_label!r}") from None
            except _GONE as e:
                raise CardAbsentError(f"the reader reports no card ({type(e).__name__})") from None
            yield token
        finally:
            with contextlib.suppress(p11e.PKCS11Error):
                lib.finalize()

    @staticmethod
    def _certificates(session: pkcs11.Session) -> list[tuple[x509.Certificate, Any]]:
        """Every X.509 certificate the session can see, with its CKA_ID (``None`` when it has none)."""
        found: list[tuple[x509.Certificate, Any]] = []
        for obj in session.get_objects({Attribute.CLASS: ObjectClass.CERTIFICATE}):
            try:
                cert = x509.load_der_x509_certificate(bytes(obj[Attribute.VALUE]))
            except ValueError:
                continue
            try:
                key_id = obj[Attribute.ID]
            except (p11e.AttributeTypeInvalid, p11e.AttributeSensitive):
                key_id = None
            found.append((cert, key_id))
        return found

    @staticmethod
    def _signing_certificate(
        certs: list[tuple[x509.Certificate, Any]],
    ) -> tuple[x509.Certificate, Any] | None:
        signing = [(c, i) for c, i in certs if _is_signing_certificate(c)]
        if len(signing) > 1:
            raise NoSigningKeyError("more than one signing certificate on the card")
        return signing[0] if signing else None

    def _identify(self, session: pkcs11.Session) -> tuple[str, tuple[x509.Certificate, Any] | None]:
        """The card's identity before the PIN: the SHA-256 fingerprint of its signing certificate, or,
        when the card shows that certificate only after the PIN (JPKI through OpenSC: a private object),
        of its user-authentication certificate (the card's one public end-entity certificate)."""
        certs = self._certificates(session)
        signing = self._signing_certificate(certs)
        if signing is not None:
            return certificate_fingerprint(signing[0]), signing
        public_ee = sorted(
            certificate_fingerprint(c)
            for c, _ in certs
            if not _is_ca(c) and isinstance(c.public_key(), rsa.RSAPublicKey)
        )
        if len(public_ee) != 1:
            raise NoSigningKeyError("no certificate identifies the card before the PIN")
        return public_ee[0], None

    def _identify_token(self, token: pkcs11.Token) -> tuple[str, tuple[x509.Certificate, Any] | None]:
        """:meth:`_identify` in a session of its own, without a PIN."""
        try:
            with token.open() as session:
                return self._identify(session)
        except _GONE as e:
            raise CardRemovedError(f"the card went away while reading ({type(e).__name__})") from None

    def read_card(self) -> CardInfo:
        """Identify the card in the reader (no PIN). ``certificate_der`` is empty when the card shows its
        signing certificate only after the PIN."""
        with self._token() as token:
            fingerprint, signing = self._identify_token(token)
        der = signing[0].public_bytes(Encoding.DER) if signing else b""
        return CardInfo(fingerprint, der)

    def tries_left(self, card: CardInfo | str) -> int:
        """Signing-PIN tries left on ``card`` (a :class:`CardInfo` or a fingerprint)."""
        return self.counter.tries_left(card if isinstance(card, str) else card.fingerprint)

    # --------------------------------------------------------------------------------------------- sign

    def sign(self, pin: str, message: bytes, *, expected_fingerprint: str | None = None) -> CardSignature:
        """Sign ``message`` with the card's signing key after logging in with the signing ``pin``.

        With ``expected_fingerprint``, a card other than that one is refused before the PIN is tried.
        The signature is verified against the card's certificate before it is returned."""
        check_pin_format(pin)
        with self._token() as token:
            fingerprint, seen = self._identify_token(token)
            if expected_fingerprint is not None and fingerprint != expected_fingerprint:
                raise DifferentCardError()
            if self.counter.tries_left(fingerprint) <= 0:
                raise CardLockedError()
            try:
                session = token.open(user_pin=pin)
            except p11e.PinIncorrect:
                left = self.counter.record_failure(fingerprint)
                if left <= 0:
                    raise CardLockedError() from None
                raise WrongPinError(left) from None
            except p11e.PinLocked:
                self.counter.lock(fingerprint)
                raise CardLockedError() from None
            except (p11e.PinInvalid, p11e.PinLenRange):
                raise PinFormatError("the card refused the PIN's format") from None
            except _GONE as e:
                raise CardRemovedError(f"the card went away at login ({type(e).__name__})") from None
            self.counter.reset(fingerprint)
            try:
                # logged in, the card shows its signing certificate even when it is a private object
                signing = self._signing_certificate(self._certificates(session))
                if signing is None:
                    raise NoSigningKeyError("no signing certificate on the card")
                cert, key_id = signing
                if seen is not None and seen[0] != cert:
                    raise CardRemovedError("the card was swapped between identification and login")
                if not isinstance(cert.public_key(), rsa.RSAPublicKey):
                    raise NoSigningKeyError("the signing certificate's key is not RSA")
                signature = self._sign_in_session(token, session, key_id, message)
            except p11e.PKCS11Error as e:  # any PKCS#11 failure after a good login: the card went away
                raise CardRemovedError(f"the card went away while signing ({type(e).__name__})") from None
            finally:
                with contextlib.suppress(p11e.PKCS11Error):
                    session.close()
        card = CardInfo(fingerprint, cert.public_bytes(Encoding.DER))
        pub = cert.public_key()
        assert isinstance(pub, rsa.RSAPublicKey)  # checked when read
        try:
            pub.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            raise SignatureMismatchError() from None
        return CardSignature(card, signature)

    def _sign_in_session(
        self, token: pkcs11.Token, session: pkcs11.Session, key_id: Any, message: bytes
    ) -> bytes:
        """Sign in a logged-in session: ``CKM_SHA256_RSA_PKCS`` when the token has it, else ``CKM_RSA_PKCS``
        over the DigestInfo built here."""
        attrs: dict[Attribute, Any] = {
            Attribute.CLASS: ObjectClass.PRIVATE_KEY,
            Attribute.KEY_TYPE: KeyType.RSA,
        }
        if key_id is not None:
            attrs[Attribute.ID] = key_id
        keys = list(session.get_objects(attrs))
        if len(keys) != 1:
            raise NoSigningKeyError("no (or more than one) signing key matches the certificate")
        key = keys[0]
        if not isinstance(key, SignMixin):
            raise NoSigningKeyError("the signing key object cannot sign")
        offered = token.slot.get_mechanisms()
        for mechanism in self.mechanisms:
            if mechanism in offered:
                # CKM_SHA256_RSA_PKCS hashes on the card; CKM_RSA_PKCS pads what it is given: the DigestInfo
                data = message if mechanism == Mechanism.SHA256_RSA_PKCS else sha256_digest_info(message)
                return bytes(key.sign(data, mechanism=mechanism))
        raise NoSigningKeyError("the card offers neither CKM_SHA256_RSA_PKCS nor CKM_RSA_PKCS")

    def sign_ballot(
        self,
        pin: str,
        election_base_hash: bytes,
        ballot_hash: bytes,
        challenge: bytes,
        *,
        expected_fingerprint: str | None = None,
    ) -> JpkiSubmission:
        """Sign the protocol's JPKI ballot message (:func:`voting.auth.signed_message`); return what the
        server's JPKI check takes."""
        message = signed_message(election_base_hash, ballot_hash, challenge)
        s = self.sign(pin, message, expected_fingerprint=expected_fingerprint)
        return JpkiSubmission(s.card.certificate_der, s.signature)
