"""The commission's result-declaration signing key (PDF, PAdES), loaded from ``data_dir``.

Files (PEM): ``commission-signer.key`` (RSA private key, mode 0600), ``commission-signer.crt`` (its
certificate) and ``commission-chain.pem`` (the issuing chain up to the commission root, which auditors give
the verifier as the trust root). In production they must exist (issued by the commission's CA) and
:func:`commission_key_problems` checks them at start-up (:mod:`voting._startup`), so a missing or unusable
key stops the server before it listens instead of failing ``tvote admin publish`` after the result is on the
ledger. In ``development`` a missing set is generated at start-up, in ``test`` on first use, from a *test*
commission CA (:class:`CommissionTestCa`, names marked TEST) so the demo works out of the box.

The test commission CA lives here, not with the test scaffolding (:mod:`voting.testing`), because the
server itself needs it outside production; it issues nothing but the server's own result-signing key, and
:func:`ensure_test_commission_signer` refuses in production. The test CAs that issue voter credentials
(JPKI test cards) and the development OpenID provider stay out of the server's import graph.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from ledger.files import write_atomic

from ._db import make_private_dir
from ._errors import ConfigurationError
from ._settings import Settings

__all__ = [
    "CERT_FILE",
    "CHAIN_FILE",
    "KEY_FILE",
    "CommissionTestCa",
    "commission_key_problems",
    "ensure_test_commission_signer",
    "load_or_create_commission_signer",
]

KEY_FILE = "commission-signer.key"
CERT_FILE = "commission-signer.crt"
CHAIN_FILE = "commission-chain.pem"


def _new_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _name(*rdns: tuple[x509.ObjectIdentifier, str]) -> x509.Name:
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in rdns])


@dataclass(frozen=True, slots=True)
class CommissionTestCa:
    """A test election-commission root and its result-document signing certificate."""

    __test__ = False

    root_certificate: x509.Certificate
    signer_certificate: x509.Certificate
    signer_key: rsa.RSAPrivateKey = field(repr=False)

    @classmethod
    def generate(
        cls, now: dt.datetime, *, commission: str = "Tsukuba City Election Commission (TEST)"
    ) -> CommissionTestCa:
        root_key, signer_key = _new_rsa_key(), _new_rsa_key()
        root_name = _name(
            (NameOID.COUNTRY_NAME, "JP"),
            (NameOID.ORGANIZATION_NAME, commission),
            (NameOID.COMMON_NAME, "tvote commission root (TEST)"),
        )
        root = (
            x509.CertificateBuilder()
            .subject_name(root_name)
            .issuer_name(root_name)
            .public_key(root_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), False)
            .sign(root_key, hashes.SHA256())
        )
        signer = (
            x509.CertificateBuilder()
            .subject_name(
                _name(
                    (NameOID.COUNTRY_NAME, "JP"),
                    (NameOID.ORGANIZATION_NAME, commission),
                    (NameOID.COMMON_NAME, "tvote result declaration signer (TEST)"),
                )
            )
            .issuer_name(root_name)
            .public_key(signer_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=730))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, True, False, False, False, False, False, False, False), True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(signer_key.public_key()), False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), False)
            .sign(root_key, hashes.SHA256())
        )
        return cls(root, signer, signer_key)


def _paths(settings: Settings) -> tuple[Path, Path, Path]:
    d = settings.data_dir
    return d / KEY_FILE, d / CERT_FILE, d / CHAIN_FILE


def ensure_test_commission_signer(settings: Settings, now: dt.datetime | None = None) -> bool:
    """Outside production, generate a TEST commission CA and signer into ``data_dir`` if the key is missing.

    Returns whether it generated one. Never in production (there the key is issued by the commission's CA)."""
    key_p, cert_p, chain_p = _paths(settings)
    if settings.environment == "production" or key_p.exists():
        return False
    ca = CommissionTestCa.generate(now or dt.datetime.now(dt.UTC))
    make_private_dir(settings.data_dir)
    pem = serialization.Encoding.PEM
    # the key last: a crash before it leaves no key, so the next start generates the whole set again
    write_atomic(cert_p, ca.signer_certificate.public_bytes(pem), mode=0o644)
    write_atomic(chain_p, ca.root_certificate.public_bytes(pem), mode=0o644)
    write_atomic(
        key_p,
        ca.signer_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
        mode=0o600,
    )
    return True


def _load(settings: Settings) -> tuple[rsa.RSAPrivateKey, x509.Certificate, tuple[x509.Certificate, ...]]:
    key_p, cert_p, chain_p = _paths(settings)
    missing = [p.name for p in (key_p, cert_p, chain_p) if not p.is_file()]
    if missing:
        raise ConfigurationError(
            "config.commission_key",
            f"the commission signing key files are missing in the data directory {settings.data_dir}: "
            f"{', '.join(missing)} (issue them from the commission's CA; docs/operator-guide.md)",
        )
    try:
        key = serialization.load_pem_private_key(key_p.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as e:
        raise ConfigurationError(
            "config.commission_key", f"{KEY_FILE} is not an unencrypted PEM private key ({type(e).__name__})"
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigurationError("config.commission_key", f"{KEY_FILE}: the commission key must be RSA")
    try:
        cert = x509.load_pem_x509_certificate(cert_p.read_bytes())
    except (OSError, ValueError) as e:
        raise ConfigurationError(
            "config.commission_key", f"{CERT_FILE} is not a PEM certificate ({type(e).__name__})"
        ) from None
    try:
        chain = tuple(x509.load_pem_x509_certificates(chain_p.read_bytes()))
    except (OSError, ValueError) as e:
        raise ConfigurationError(
            "config.commission_key", f"{CHAIN_FILE} is not a list of PEM certificates ({type(e).__name__})"
        ) from None
    return key, cert, chain


def commission_key_problems(
    settings: Settings, at: dt.datetime, *, valid_until: dt.datetime | None = None
) -> list[str]:
    """What is wrong with the commission's signing key set in ``data_dir`` (empty: it can sign the result).

    The key, certificate and chain must load; the key must be the certificate's; the certificate must be
    valid at ``at`` and (when given: the end of voting) still at ``valid_until``; it must chain, signature by
    signature, to a self-signed root in ``commission-chain.pem`` (the root auditors give the verifier)."""
    try:
        key, cert, chain = _load(settings)
    except ConfigurationError as e:
        return [e.message]
    problems: list[str] = []
    if key.public_key().public_numbers() != _rsa_numbers(cert):
        problems.append(f"{KEY_FILE} is not the key of {CERT_FILE}")
    if not cert.not_valid_before_utc <= at <= cert.not_valid_after_utc:
        problems.append(
            f"{CERT_FILE} is not valid now (valid {cert.not_valid_before_utc:%Y-%m-%d} to "
            f"{cert.not_valid_after_utc:%Y-%m-%d})"
        )
    elif valid_until is not None and cert.not_valid_after_utc < valid_until:
        problems.append(
            f"{CERT_FILE} expires {cert.not_valid_after_utc:%Y-%m-%d}, before voting ends "
            f"({valid_until:%Y-%m-%d}): the result could not be signed"
        )
    if not chain:
        problems.append(f"{CHAIN_FILE} holds no certificate")
        return problems
    # walk up from the signer certificate through the chain to a self-signed root
    current, seen = cert, 0
    while True:
        issuer = next((c for c in chain if c.subject == current.issuer), None)
        if issuer is None:
            problems.append(f"{CHAIN_FILE} does not hold the issuer of {current.subject.rfc4514_string()}")
            break
        try:
            current.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature):
            problems.append(f"{current.subject.rfc4514_string()} is not signed by its issuer in {CHAIN_FILE}")
            break
        if issuer.subject == issuer.issuer:
            break
        current, seen = issuer, seen + 1
        if seen > len(chain):
            problems.append(f"{CHAIN_FILE} has an issuer loop")
            break
    return problems


def _rsa_numbers(cert: x509.Certificate) -> Any:
    pub = cert.public_key()
    return pub.public_numbers() if isinstance(pub, rsa.RSAPublicKey) else None


def load_or_create_commission_signer(settings: Settings) -> Any:
    """The :class:`voting._result_pdf.CommissionSigner` from ``data_dir`` (a TEST one is generated first
    outside production if the key is missing); :class:`ConfigurationError` if it cannot be loaded."""
    from ._result_pdf import CommissionSigner

    ensure_test_commission_signer(settings)
    key, cert, chain = _load(settings)
    return CommissionSigner(cert, key, chain)
