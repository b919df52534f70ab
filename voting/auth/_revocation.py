"""Revocation checking for JPKI signing certificates (pluggable; fails closed).

J-LIS grants CRL/OCSP access only to registered signature verifiers or platform operators, so the
source of revocation data is deployment-specific: :class:`RevocationChecker` is the interface, and
:class:`CrlFileChecker` the built-in implementation over CRL files fetched by the operator.

A checker's ``check`` returns ``None`` when the certificate is known good at ``at`` and raises
:class:`~voting.auth.RevocationError` otherwise: ``jpki.revoked`` when the serial is listed,
``jpki.revocation_unavailable`` when no valid, fresh revocation data exists for the issuer.
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol, runtime_checkable

from cryptography import x509

from ._errors import JpkiError, RevocationError

__all__ = ["CrlFileChecker", "RevocationChecker", "UnsafeNoRevocationCheck", "load_crl"]


@runtime_checkable
class RevocationChecker(Protocol):
    """Decides whether ``certificate`` (issued by ``issuer``) is unrevoked at time ``at``."""

    def check(self, certificate: x509.Certificate, issuer: x509.Certificate, at: dt.datetime) -> None:
        """Return if good; raise :class:`RevocationError` if revoked or unknown."""
        ...


def load_crl(data: bytes) -> x509.CertificateRevocationList:
    """Parse one CRL, PEM or DER."""
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_crl(data)
        return x509.load_der_x509_crl(data)
    except ValueError as e:
        raise JpkiError("jpki.malformed", f"CRL does not parse: {e}") from None


class CrlFileChecker:
    """Revocation from CRLs the operator loaded (files fetched from J-LIS or the test CA).

    For a certificate and its issuer, a CRL is *usable* when its issuer name equals the issuer's
    subject, its signature verifies under the issuer's public key (so a same-named CA of another
    generation cannot vouch), the issuer permits ``cRLSign`` (if it carries keyUsage), and it is fresh:
    ``thisUpdate <= at < nextUpdate`` (a CRL without nextUpdate is never fresh). The freshest usable CRL
    decides; none usable → ``jpki.revocation_unavailable``.
    """

    def __init__(self, crls: Iterable[x509.CertificateRevocationList]) -> None:
        self._crls: tuple[x509.CertificateRevocationList, ...] = tuple(crls)

    @classmethod
    def from_paths(cls, paths: Iterable[str | Path]) -> CrlFileChecker:
        """Load CRL files (PEM or DER); a directory contributes every regular file in it."""
        crls: list[x509.CertificateRevocationList] = []
        for p in map(Path, paths):
            files = sorted(f for f in p.iterdir() if f.is_file()) if p.is_dir() else [p]
            crls.extend(load_crl(f.read_bytes()) for f in files)
        return cls(crls)

    def check(self, certificate: x509.Certificate, issuer: x509.Certificate, at: dt.datetime) -> None:
        try:
            may_sign_crl = issuer.extensions.get_extension_for_class(x509.KeyUsage).value.crl_sign
        except x509.ExtensionNotFound:
            may_sign_crl = True
        if not may_sign_crl:
            raise RevocationError("jpki.revocation_unavailable", "issuer is not permitted to sign CRLs")
        usable = [
            crl
            for crl in self._crls
            if crl.issuer == issuer.subject
            and _signature_ok(crl, issuer)
            and crl.next_update_utc is not None
            and crl.last_update_utc <= at < crl.next_update_utc
        ]
        if not usable:
            raise RevocationError(
                "jpki.revocation_unavailable", "no validly signed, fresh CRL from the certificate's issuer"
            )
        crl = max(usable, key=lambda c: c.last_update_utc)
        if crl.get_revoked_certificate_by_serial_number(certificate.serial_number) is not None:
            raise RevocationError("jpki.revoked", "the signing certificate is listed on its issuer's CRL")


def _signature_ok(crl: x509.CertificateRevocationList, issuer: x509.Certificate) -> bool:
    try:
        return crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


class UnsafeNoRevocationCheck:
    """Accepts every certificate as unrevoked. For development only; warns when constructed."""

    def __init__(self) -> None:
        warnings.warn(
            "UnsafeNoRevocationCheck: JPKI revocation is NOT checked; never use this in an election",
            RuntimeWarning,
            stacklevel=2,
        )

    def check(self, certificate: x509.Certificate, issuer: x509.Certificate, at: dt.datetime) -> None:
        return None
