"""JPKI (My Number card) ballot signatures: what the card signs and how the server checks it.

Signed message (exactly 116 bytes)::

    b"tvote/2/jpki-ballot\\n" || election_base_hash (32) || ballot_hash (32) || server_challenge (32)

The card signs it with its signing key: RSASSA-PKCS1-v1_5 with SHA-256 (the card pads a DigestInfo;
the result is the standard signature). All three inputs are fixed-length, so the layout is unambiguous.

:meth:`JpkiVerifier.verify` checks, in this order, each failure raising :class:`JpkiError` with the code
in brackets: parsing [jpki.malformed]; input lengths [jpki.message]; the leaf's validity period at the
injected time [jpki.expired / jpki.not_yet_valid]; RSA >= 2048 [jpki.key]; the chain to a configured
trust anchor with ``cryptography.x509.verification`` — issuers are selected by key identifier and
signature, never by name alone [jpki.chain]; keyUsage digitalSignature + nonRepudiation and not a CA
[jpki.key_usage]; an accepted certificate policy, and never the JPKI test policy unless it is accepted
explicitly [jpki.policy]; the signature [jpki.signature]; the
basic-four subjectAltName entries [jpki.attributes]; revocation by the pluggable checker
[jpki.revoked / jpki.revocation_unavailable / jpki.crl_scope / jpki.crl_unsupported].

Trust anchors in production are pinned: :func:`check_anchor_pins` refuses any anchor whose SHA-256
fingerprint is not pinned (default :data:`JLIS_SIGNING_ROOT_SHA256`, the J-LIS signing roots) and any
J-LIS user-authentication root [jpki.anchor_not_pinned]. The server calls it at start-up.

The result, :class:`JpkiIdentity`, holds only the roll match key (a keyed hash), the evidence hash and
the trust anchor's key id. Name, birth date and address live only inside :meth:`verify` and are never
logged, returned or stored; the sex entry (``.3``) is never read; the 12-digit My Number is not in the
certificate and is never touched.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Final

from asn1crypto import core as asn1  # type: ignore[import-untyped]
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509 import verification as xv

from crypto import PROTOCOL_VERSION
from crypto.hazmat import encode_transcript

from ._errors import AuthError, JpkiError, RevocationError, RollError
from ._revocation import RevocationChecker
from ._roll import RollKey, RollMatchKey, roll_match_key

__all__ = [
    "JLIS_AUTHENTICATION_ROOT_SHA256",
    "JLIS_SIGNING_ROOT_SHA256",
    "JPKI_SIGN_POLICY_OID",
    "JPKI_TEST_SIGN_POLICY_OID",
    "OID_JPKI_ADDRESS",
    "OID_JPKI_BIRTH_DATE",
    "OID_JPKI_NAME",
    "OID_JPKI_SEX",
    "SIGNED_MESSAGE_PREFIX",
    "JpkiEvidence",
    "JpkiIdentity",
    "JpkiSubmission",
    "JpkiVerifier",
    "anchor_pin_problems",
    "certificate_fingerprint",
    "check_anchor_pins",
    "load_trust_anchors",
    "new_challenge",
    "signed_message",
]

SIGNED_MESSAGE_PREFIX: Final[bytes] = f"tvote/{PROTOCOL_VERSION}/jpki-ballot\n".encode()
JPKI_SIGN_POLICY_OID: Final[str] = "1.2.392.200149.8.5.1.1.20"
JPKI_TEST_SIGN_POLICY_OID: Final[str] = "1.2.392.200149.8.5.1.0.20"
OID_JPKI_NAME: Final[str] = "1.2.392.200149.8.5.5.1"
OID_JPKI_SEX: Final[str] = "1.2.392.200149.8.5.5.3"  # never read
OID_JPKI_BIRTH_DATE: Final[str] = "1.2.392.200149.8.5.5.4"
OID_JPKI_ADDRESS: Final[str] = "1.2.392.200149.8.5.5.5"
#: SHA-256 fingerprints (lowercase hex, of the DER certificate) of the J-LIS *signing* roots
#: (``C=JP, O=JPKI, OU=JPKI for digital signature, OU=Japan Agency for Local Authority Information
#: Systems``), computed from the public certificates (copies in ``tests/data/jlis-roots``): the production pin
#: list when none is configured.
JLIS_SIGNING_ROOT_SHA256: Final[Mapping[str, str]] = MappingProxyType(
    {
        "19645405a1fe14377434bd55957628ac4038557c542403a2243f21c706fc9355": (
            "J-LIS signing root 2015 (serial 01, valid to 2025-10-19)"
        ),
        "79679c33e4cc9319440f1ad120a597ff1844e2ef217063adb176966fd5e6fbeb": (
            "J-LIS signing root 2019 (serial 0132C4AB, valid to 2029-09-14)"
        ),
        "d227f6cde11d35c5252178f106f843d24651944975413b539fa2fb68dbfa365f": (
            "J-LIS signing root 2023 (serial 067C6A21, valid to 2033-07-15)"
        ),
    }
)
#: SHA-256 fingerprints of the J-LIS *user-authentication* roots: they certify login keys (no personal
#: data, 4-digit PIN), never signing keys, and are refused as ballot-signing anchors even when pinned.
JLIS_AUTHENTICATION_ROOT_SHA256: Final[Mapping[str, str]] = MappingProxyType(
    {
        "4dcfc4ca0aaf9fb2a3081b3f0c991c320b3acc008667a341eeaec5af1d58ca7d": (
            "J-LIS user-authentication root 2015 (serial 01, valid to 2025-10-19)"
        ),
        "64114f29620c24ed2631d46476a040e7ee740d956089c00b036a6a8118c322b5": (
            "J-LIS user-authentication root 2023 (serial 06D18006, valid to 2033-07-15)"
        ),
    }
)
_HASH_LEN: Final[int] = 32
_MIN_RSA_BITS: Final[int] = 2048
_TEST_POLICY: Final[x509.ObjectIdentifier] = x509.ObjectIdentifier(JPKI_TEST_SIGN_POLICY_OID)
_BIRTH_RE: Final[re.Pattern[str]] = re.compile(r"[1-5](\d{4})(\d{2})(\d{2})")


def signed_message(election_base_hash: bytes, ballot_hash: bytes, challenge: bytes) -> bytes:
    """The exact bytes the card signs (see the module docstring)."""
    for label, b in (
        ("election base hash", election_base_hash),
        ("ballot hash", ballot_hash),
        ("challenge", challenge),
    ):
        if not isinstance(b, bytes) or len(b) != _HASH_LEN:
            raise JpkiError("jpki.message", f"{label} must be {_HASH_LEN} bytes")
    return SIGNED_MESSAGE_PREFIX + election_base_hash + ballot_hash + challenge


def new_challenge(randbytes: Callable[[int], bytes] = secrets.token_bytes) -> bytes:
    """A fresh 32-byte server challenge. The service must issue it, bind it to one session and accept
    it once; it is never published (it keeps the evidence hash unlinkable to the certificate)."""
    c = randbytes(_HASH_LEN)
    if len(c) != _HASH_LEN:
        raise ValueError("randomness source returned the wrong length")
    return c


@dataclass(frozen=True, slots=True)
class JpkiSubmission:
    """What the client sends: the signing certificate, any intermediates (DER) and the signature."""

    certificate_der: bytes
    signature: bytes
    intermediates_der: tuple[bytes, ...] = ()

    def auth_body(self, challenge: bytes) -> dict[str, object]:
        """The ``auth`` object of a JPKI cast request (``docs/api.md``) for this submission and the server
        challenge it signed."""
        return {
            "method": "jpki",
            "certificate": self.certificate_der.hex(),
            "intermediates": [i.hex() for i in self.intermediates_der],
            "signature": self.signature.hex(),
            "challenge": challenge.hex(),
        }


@dataclass(frozen=True, slots=True)
class JpkiEvidence:
    """The authentication evidence kept (access-controlled) for auditors.

    ``to_bytes()`` is the transcript ``encode_transcript("jpki-evidence", [base_hash, ballot_hash,
    challenge, signature, certificate_der, *intermediates_der])`` (``crypto._hash``: domain
    ``tvote/2/jpki-evidence``, every item u32be length-prefixed) and :attr:`digest` its SHA-256, the
    value that enters the public record. It contains personal data (the certificate): never publish it.
    """

    election_base_hash: bytes
    ballot_hash: bytes
    challenge: bytes
    signature: bytes
    certificate_der: bytes
    intermediates_der: tuple[bytes, ...] = ()

    def to_bytes(self) -> bytes:
        items = [
            self.election_base_hash,
            self.ballot_hash,
            self.challenge,
            self.signature,
            self.certificate_der,
            *self.intermediates_der,
        ]
        return encode_transcript("jpki-evidence", items)

    @property
    def digest(self) -> bytes:
        return hashlib.sha256(self.to_bytes()).digest()


@dataclass(frozen=True, slots=True)
class JpkiIdentity:
    """The outcome of a successful check: only what the roll match and the record need."""

    match_key: RollMatchKey
    evidence_hash: bytes
    trust_anchor_key_id: str  # hex SHA-1 key identifier of the anchor the chain ended in

    def __repr__(self) -> str:
        return f"JpkiIdentity(evidence_hash={self.evidence_hash.hex()}, anchor={self.trust_anchor_key_id})"


def _load_certs(data: bytes) -> list[x509.Certificate]:
    if data.lstrip().startswith(b"-----BEGIN"):
        return x509.load_pem_x509_certificates(data)
    return [x509.load_der_x509_certificate(data)]


def load_trust_anchors(source: str | Path | Iterable[str | Path]) -> list[x509.Certificate]:
    """Load trust anchors from a file, a directory (every ``*.pem``, ``*.crt``, ``*.cer``, ``*.der``)
    or several of those. PEM files may hold several certificates; DER files hold one."""
    sources = [source] if isinstance(source, str | Path) else list(source)
    out: list[x509.Certificate] = []
    for p in map(Path, sources):
        files = (
            sorted(f for f in p.iterdir() if f.suffix.lower() in {".pem", ".crt", ".cer", ".der"})
            if p.is_dir()
            else [p]
        )
        for f in files:
            try:
                out.extend(_load_certs(f.read_bytes()))
            except ValueError as e:
                raise JpkiError("jpki.malformed", f"trust anchor {f.name} does not parse: {e}") from None
    if not out:
        raise JpkiError("jpki.chain", "no trust anchors found")
    return out


def certificate_fingerprint(cert: x509.Certificate) -> str:
    """The SHA-256 fingerprint of ``cert`` (of its DER encoding), lowercase hex."""
    return cert.fingerprint(hashes.SHA256()).hex()


def anchor_pin_problems(
    anchors: Iterable[x509.Certificate], pins: Iterable[str] = JLIS_SIGNING_ROOT_SHA256
) -> list[str]:
    """One line per anchor that may not be a ballot-signing anchor: its SHA-256 fingerprint is not in
    ``pins`` (hex, any case, colons allowed), or it is a J-LIS user-authentication root. Empty: all pinned.
    Lines name the anchor by subject and fingerprint (roots are public: nothing personal)."""
    pinned = frozenset(p.replace(":", "").strip().lower() for p in pins)
    problems = []
    for a in anchors:
        fp = certificate_fingerprint(a)
        if fp in JLIS_AUTHENTICATION_ROOT_SHA256:
            problems.append(f"{JLIS_AUTHENTICATION_ROOT_SHA256[fp]} is not a signing root (SHA-256 {fp})")
        elif fp not in pinned:
            problems.append(f"trust anchor {a.subject.rfc4514_string()} (SHA-256 {fp}) is not pinned")
    return problems


def check_anchor_pins(
    anchors: Iterable[x509.Certificate], pins: Iterable[str] = JLIS_SIGNING_ROOT_SHA256
) -> None:
    """Raise ``jpki.anchor_not_pinned`` unless every anchor passes :func:`anchor_pin_problems` (and there
    is at least one). The server runs this in production at start-up, so a test CA or any other unpinned
    root never becomes a ballot-signing anchor."""
    anchors = list(anchors)
    if not anchors:
        raise JpkiError("jpki.anchor_not_pinned", "no trust anchors to check")
    problems = anchor_pin_problems(anchors, pins)
    if problems:
        raise JpkiError("jpki.anchor_not_pinned", "trust anchor refused: " + "; ".join(problems))


def _key_id(cert: x509.Certificate) -> str:
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest.hex()
    except x509.ExtensionNotFound:
        return x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest.hex()


def _accept_any(_policy: object, _cert: object, _ext: object) -> None:
    return None


class JpkiVerifier:
    """Checks JPKI ballot signatures against configured trust anchors, revocation and roll key.

    ``accepted_policies`` defaults to the production signing policy; tests and the demo pass
    ``{JPKI_TEST_SIGN_POLICY_OID}`` explicitly (there is no switch that accepts both silently). A card
    that carries the test policy is refused unless the test policy is accepted, even when it also
    carries an accepted one (production never accepts the test policy).
    """

    def __init__(
        self,
        trust_anchors: Sequence[x509.Certificate],
        revocation: RevocationChecker,
        roll_key: RollKey,
        *,
        accepted_policies: Iterable[str] = (JPKI_SIGN_POLICY_OID,),
    ) -> None:
        if not trust_anchors:
            raise JpkiError("jpki.chain", "no trust anchors configured")
        self._store = xv.Store(list(trust_anchors))
        self._revocation = revocation
        self._roll_key = roll_key
        self._policies = frozenset(x509.ObjectIdentifier(p) for p in accepted_policies)
        if not self._policies:
            raise JpkiError("jpki.policy", "no accepted certificate policy configured")
        # The EE profile is checked explicitly below (JPKI is not the Web PKI; certificatePolicies is
        # critical on JPKI certificates and must be "accounted for"). CAs get the Web PKI CA profile.
        self._ee_policy = xv.ExtensionPolicy.permit_all().may_be_present(
            x509.CertificatePolicies, xv.Criticality.AGNOSTIC, _accept_any
        )

    def verify(
        self,
        submission: JpkiSubmission,
        *,
        election_base_hash: bytes,
        ballot_hash: bytes,
        challenge: bytes,
        now: dt.datetime,
    ) -> JpkiIdentity:
        """Check ``submission`` at time ``now`` (timezone-aware); return the identity or raise."""
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        try:
            leaf = x509.load_der_x509_certificate(submission.certificate_der)
            intermediates = [x509.load_der_x509_certificate(d) for d in submission.intermediates_der]
        except ValueError:
            raise JpkiError("jpki.malformed", "certificate bytes are not a DER X.509 certificate") from None
        message = signed_message(election_base_hash, ballot_hash, challenge)

        if now < leaf.not_valid_before_utc:
            raise JpkiError("jpki.not_yet_valid", "the signing certificate is not yet valid")
        if now >= leaf.not_valid_after_utc:
            raise JpkiError("jpki.expired", "the signing certificate has expired")
        pub = leaf.public_key()
        if not isinstance(pub, rsa.RSAPublicKey) or pub.key_size < _MIN_RSA_BITS:
            raise JpkiError("jpki.key", "the signing key is not RSA >= 2048 bits")

        anchor, issuer = self._chain(leaf, intermediates, now)
        self._check_key_usage(leaf)
        self._check_policy(leaf)

        if len(submission.signature) != (pub.key_size + 7) // 8:
            raise JpkiError("jpki.signature", "signature length does not match the key")
        try:
            pub.verify(submission.signature, message, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            raise JpkiError("jpki.signature", "the card signature does not verify over this ballot") from None

        match_key = self._match_key(leaf)
        try:
            self._revocation.check(leaf, issuer, now)
        except AuthError:
            raise
        except Exception as e:  # a pluggable checker (OCSP client, ...) that failed: fail closed
            raise RevocationError(
                "jpki.revocation_unavailable", f"the revocation checker failed ({type(e).__name__})"
            ) from None

        evidence = JpkiEvidence(
            election_base_hash,
            ballot_hash,
            challenge,
            submission.signature,
            submission.certificate_der,
            tuple(submission.intermediates_der),
        )
        return JpkiIdentity(
            match_key=match_key, evidence_hash=evidence.digest, trust_anchor_key_id=_key_id(anchor)
        )

    def _chain(
        self, leaf: x509.Certificate, intermediates: list[x509.Certificate], now: dt.datetime
    ) -> tuple[x509.Certificate, x509.Certificate]:
        verifier = (
            xv.PolicyBuilder()
            .store(self._store)
            .time(now)
            .extension_policies(ca_policy=xv.ExtensionPolicy.webpki_defaults_ca(), ee_policy=self._ee_policy)
            .build_client_verifier()
        )
        try:
            chain = verifier.verify(leaf, intermediates).chain
        except xv.VerificationError:
            raise JpkiError("jpki.chain", "certificate does not chain to a configured JPKI root") from None
        if len(chain) < 2:
            raise JpkiError("jpki.chain", "a trust anchor cannot itself sign ballots")
        return chain[-1], chain[1]

    @staticmethod
    def _check_key_usage(leaf: x509.Certificate) -> None:
        try:
            ku = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
        except x509.ExtensionNotFound:
            raise JpkiError("jpki.key_usage", "the certificate has no keyUsage extension") from None
        if not (ku.digital_signature and ku.content_commitment) or ku.key_cert_sign:
            raise JpkiError("jpki.key_usage", "keyUsage must be digitalSignature + nonRepudiation")
        try:
            if leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
                raise JpkiError("jpki.key_usage", "a CA certificate cannot sign ballots")
        except x509.ExtensionNotFound:
            pass

    def _check_policy(self, leaf: x509.Certificate) -> None:
        try:
            pols = leaf.extensions.get_extension_for_class(x509.CertificatePolicies).value
        except x509.ExtensionNotFound:
            raise JpkiError("jpki.policy", "the certificate carries no certificate policy") from None
        carried = {p.policy_identifier for p in pols}
        if _TEST_POLICY in carried and _TEST_POLICY not in self._policies:
            raise JpkiError(
                "jpki.policy", "the certificate carries the JPKI test policy, which is not accepted"
            )
        if not carried & self._policies:
            raise JpkiError("jpki.policy", "the certificate policy is not an accepted JPKI signing policy")

    def _match_key(self, leaf: x509.Certificate) -> RollMatchKey:
        try:
            san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            raise JpkiError("jpki.attributes", "the certificate has no subjectAltName") from None
        wanted = {OID_JPKI_NAME, OID_JPKI_BIRTH_DATE, OID_JPKI_ADDRESS}
        found: dict[str, str] = {}
        for other in san.get_values_for_type(x509.OtherName):
            oid = other.type_id.dotted_string
            if oid not in wanted:
                continue  # the sex entry and the substitute-character flags are never decoded
            if oid in found:
                raise JpkiError("jpki.attributes", "a basic-four entry appears twice")
            try:
                found[oid] = str(asn1.UTF8String.load(other.value, strict=True).native)
            except ValueError:
                raise JpkiError("jpki.attributes", "a basic-four entry is not a UTF8String") from None
        if found.keys() != wanted:
            raise JpkiError("jpki.attributes", "the certificate lacks name, birth date or address")
        m = _BIRTH_RE.fullmatch(found[OID_JPKI_BIRTH_DATE])
        if m is None:
            raise JpkiError("jpki.attributes", "the birth date entry is not EYYYYMMDD")
        try:
            birth = dt.date(int(m[1]), int(m[2]), int(m[3]))
        except ValueError:
            raise JpkiError("jpki.attributes", "the birth date entry is not a calendar date") from None
        try:
            return roll_match_key(self._roll_key, found[OID_JPKI_NAME], birth, found[OID_JPKI_ADDRESS])
        except RollError:
            raise JpkiError("jpki.attributes", "the name or address entry is empty") from None
