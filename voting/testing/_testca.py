"""Test certificate authorities for tests and the demo. NEVER for a real election.

* :class:`JpkiTestCa` — a JPKI-shaped signing CA (``C=JP, O=JPKI-TEST, OU=JPKI for digital signature
  (TEST)``, RSA-2048, sha256WithRSA) that issues :class:`TestCard` s: RSA-2048 end-entity certificates
  with keyUsage digitalSignature + nonRepudiation (critical), the JPKI *test* signing policy
  ``1.2.392.200149.8.5.1.0.20`` (critical, as on real cards), subject ``C=JP, L=<city>, CN=<opaque id>``
  and the basic four items as subjectAltName otherName UTF8Strings under ``1.2.392.200149.8.5.5``
  (``.1`` name, ``.3`` sex, ``.4`` birth date ``EYYYYMMDD``, ``.5`` address), and, like real JPKI, a
  cRLDistributionPoints extension whose distribution point is a *directory name per municipality*
  (:meth:`JpkiTestCa.distribution_point`, modelled on J-LIS's layout, not a copy of it). It builds CRLs:
  complete CRLs of the whole CA or of one municipality's partition (issuingDistributionPoint), delta
  CRLs (deltaCRLIndicator), CRLs scoped to some reasons, and indirect CRLs (to test that they are refused).
* :class:`voting.testing.CommissionTestCa` (the test commission root and result-document signer) lives with
  the server's commission key (:mod:`voting._commission_key`), which generates one in development.

Speed: RSA-2048 key generation costs ~50 ms. Tests generate fresh keys; the demo's 200 synthetic
residents draw keys from an :class:`RsaKeyPool` (default 16 keys, generated lazily), so several test
cards share one key pair. That is harmless for a demo (every certificate is still distinct) but means a
signature of one pooled card also verifies under another card's certificate with the same key: never
use pooled keys in a test about signatures.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

from asn1crypto import core as asn1  # type: ignore[import-untyped]
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from voting.auth._jpki import (
    JPKI_TEST_SIGN_POLICY_OID,
    OID_JPKI_ADDRESS,
    OID_JPKI_BIRTH_DATE,
    OID_JPKI_NAME,
    OID_JPKI_SEX,
    JpkiSubmission,
    signed_message,
)

__all__ = [
    "CRL_DISTRIBUTION_POINTS_UNIT",
    "JpkiTestCa",
    "RsaKeyPool",
    "TestCard",
    "TestResident",
    "encode_jpki_birth_date",
    "new_rsa_key",
]

_ERAS: Final[tuple[tuple[dt.date, int], ...]] = (
    (dt.date(2019, 5, 1), 5),  # Reiwa
    (dt.date(1989, 1, 8), 4),  # Heisei
    (dt.date(1926, 12, 25), 3),  # Showa
    (dt.date(1912, 7, 30), 2),  # Taisho
    (dt.date(1868, 1, 1), 1),  # Meiji
)


#: the organisational unit under which the test CA names its per-municipality CRL distribution points
CRL_DISTRIBUTION_POINTS_UNIT: Final[str] = "CRL Distribution Points"


def encode_jpki_birth_date(d: dt.date) -> str:
    """``EYYYYMMDD``: the Japanese era digit (1 Meiji … 5 Reiwa) then the Gregorian date."""
    era = next(e for start, e in _ERAS if d >= start)
    return f"{era}{d:%Y%m%d}"


def new_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class RsaKeyPool:
    """A small lazily generated pool of RSA-2048 keys; ``key(i)`` returns key ``i mod size``."""

    def __init__(self, size: int = 16) -> None:
        if size < 1:
            raise ValueError("pool size must be positive")
        self._keys: list[rsa.RSAPrivateKey | None] = [None] * size

    def key(self, index: int) -> rsa.RSAPrivateKey:
        i = index % len(self._keys)
        k = self._keys[i]
        if k is None:
            k = self._keys[i] = new_rsa_key()
        return k


@dataclass(frozen=True, slots=True)
class TestResident:
    """Synthetic basic-four data (never real people)."""

    __test__ = False  # not a pytest class

    name: str
    birth_date: dt.date
    address: str
    sex: str = "9"
    city: str = "Tsukuba-shi"


def _utf8_other_name(oid: str, value: str) -> x509.OtherName:
    return x509.OtherName(x509.ObjectIdentifier(oid), asn1.UTF8String(value).dump())


@dataclass(frozen=True, slots=True)
class TestCard:
    """A software stand-in for a My Number card's signing key and certificate."""

    __test__ = False

    certificate: x509.Certificate
    private_key: rsa.RSAPrivateKey = field(repr=False)

    @property
    def certificate_der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    def sign(self, message: bytes) -> bytes:
        """RSASSA-PKCS1-v1_5 / SHA-256, as the card does."""
        return self.private_key.sign(message, padding.PKCS1v15(), hashes.SHA256())

    def sign_ballot(
        self,
        election_base_hash: bytes,
        ballot_hash: bytes,
        challenge: bytes,
        intermediates_der: tuple[bytes, ...] = (),
    ) -> JpkiSubmission:
        sig = self.sign(signed_message(election_base_hash, ballot_hash, challenge))
        return JpkiSubmission(self.certificate_der, sig, intermediates_der)


def _name(*rdns: tuple[x509.ObjectIdentifier, str]) -> x509.Name:
    return x509.Name([x509.NameAttribute(oid, v) for oid, v in rdns])


@dataclass(frozen=True, slots=True)
class JpkiTestCa:
    """A JPKI-shaped test signing CA (self-signed root that issues card certificates directly)."""

    __test__ = False

    certificate: x509.Certificate
    private_key: rsa.RSAPrivateKey = field(repr=False)

    @classmethod
    def generate(
        cls,
        now: dt.datetime,
        *,
        organization: str = "JPKI-TEST",
        unit: str = "JPKI for digital signature (TEST)",
        key: rsa.RSAPrivateKey | None = None,
        validity: dt.timedelta = dt.timedelta(days=3650),
    ) -> JpkiTestCa:
        key = key or new_rsa_key()
        subject = _name(
            (NameOID.COUNTRY_NAME, "JP"),
            (NameOID.ORGANIZATION_NAME, organization),
            (NameOID.ORGANIZATIONAL_UNIT_NAME, unit),
            (NameOID.ORGANIZATIONAL_UNIT_NAME, "Japan Agency for Local Authority Information Systems"),
        )
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + validity)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(cert, key)

    def issue_card(
        self,
        resident: TestResident,
        now: dt.datetime,
        *,
        key: rsa.RSAPrivateKey | None = None,
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
        key_usage: x509.KeyUsage | None = None,
        policy_oid: str | Sequence[str] = JPKI_TEST_SIGN_POLICY_OID,
        crl_distribution_points: Sequence[x509.DistributionPoint] | None = None,
    ) -> TestCard:
        """Issue a signing certificate for ``resident``; the keyword arguments exist to make bad cards.

        ``crl_distribution_points`` defaults to one distribution point, the directory name of the
        resident's municipality (:meth:`distribution_point`); ``()`` leaves the extension out."""
        key = key or new_rsa_key()
        policies = [policy_oid] if isinstance(policy_oid, str) else list(policy_oid)
        if crl_distribution_points is None:
            crl_distribution_points = [
                x509.DistributionPoint(
                    [x509.DirectoryName(self.distribution_point(resident.city))], None, None, None
                )
            ]
        ku = key_usage or x509.KeyUsage(True, True, False, False, False, False, False, False, False)
        san = x509.SubjectAlternativeName(
            [
                _utf8_other_name(OID_JPKI_NAME, resident.name),
                _utf8_other_name(OID_JPKI_SEX, resident.sex),
                _utf8_other_name(OID_JPKI_BIRTH_DATE, encode_jpki_birth_date(resident.birth_date)),
                _utf8_other_name(OID_JPKI_ADDRESS, resident.address),
            ]
        )
        builder = (
            x509.CertificateBuilder()
            .subject_name(
                _name(
                    (NameOID.COUNTRY_NAME, "JP"),
                    (NameOID.LOCALITY_NAME, resident.city),
                    (NameOID.COMMON_NAME, secrets.token_hex(12).upper()),
                )
            )
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before or now - dt.timedelta(days=1))
            .not_valid_after(not_after or now + dt.timedelta(days=5 * 365))
            .add_extension(ku, critical=True)
            .add_extension(
                x509.CertificatePolicies(
                    [x509.PolicyInformation(x509.ObjectIdentifier(p), None) for p in policies]
                ),
                critical=True,
            )
            .add_extension(san, critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.private_key.public_key()),
                critical=False,
            )
        )
        if crl_distribution_points:
            builder = builder.add_extension(
                x509.CRLDistributionPoints(crl_distribution_points), critical=False
            )
        return TestCard(builder.sign(self.private_key, hashes.SHA256()), key)

    def distribution_point(self, city: str) -> x509.Name:
        """The CRL distribution point (a directory name) of ``city``'s partition of this CA's CRLs."""
        return x509.Name(
            [
                *self.certificate.subject.rdns[:3],
                x509.RelativeDistinguishedName(
                    [x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, CRL_DISTRIBUTION_POINTS_UNIT)]
                ),
                x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COMMON_NAME, f"{city} CRLDP")]),
            ]
        )

    def build_crl(
        self,
        revoked_serials: Iterable[int | tuple[int, x509.ReasonFlags]],
        this_update: dt.datetime,
        next_update: dt.datetime,
        *,
        city: str | None = None,
        distribution_point: x509.IssuingDistributionPoint | None = None,
        crl_number: int | None = None,
        delta_of: int | None = None,
        certificate_issuer: x509.Name | None = None,
        extra_extensions: Sequence[tuple[x509.ExtensionType, bool]] = (),
    ) -> x509.CertificateRevocationList:
        """A CRL signed by this CA listing ``revoked_serials`` (a serial, or ``(serial, reason)``).

        * ``city``: the complete CRL of that municipality's partition (an issuingDistributionPoint whose
          full name is :meth:`distribution_point`); ``distribution_point`` sets any issuingDistributionPoint
          (reasons, user/CA-only, indirect, relative names). Neither: the CRL of the whole CA.
        * ``crl_number`` defaults to ``this_update`` in seconds (so later CRLs have higher numbers);
          ``delta_of=N`` makes a delta CRL on the base CRL number ``N`` (deltaCRLIndicator, critical).
        * ``certificate_issuer`` puts a certificateIssuer entry extension on every entry (an indirect CRL).
        * ``extra_extensions``: more ``(extension, critical)`` pairs, to build CRLs a checker must refuse.
        """
        if city is not None:
            if distribution_point is not None:
                raise ValueError("give city or distribution_point, not both")
            distribution_point = x509.IssuingDistributionPoint(
                [x509.DirectoryName(self.distribution_point(city))], None, False, False, None, False, False
            )
        number = int(this_update.timestamp()) if crl_number is None else crl_number
        b = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.certificate.subject)
            .last_update(this_update)
            .next_update(next_update)
            .add_extension(x509.CRLNumber(number), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.private_key.public_key()),
                critical=False,
            )
        )
        if distribution_point is not None:
            b = b.add_extension(distribution_point, critical=True)
        if delta_of is not None:
            b = b.add_extension(x509.DeltaCRLIndicator(delta_of), critical=True)
        for ext, critical in extra_extensions:
            b = b.add_extension(ext, critical=critical)
        for item in revoked_serials:
            serial, reason = item if isinstance(item, tuple) else (item, None)
            rb = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(this_update)
            if reason is not None:
                rb = rb.add_extension(x509.CRLReason(reason), critical=False)
            if certificate_issuer is not None:
                rb = rb.add_extension(
                    x509.CertificateIssuer([x509.DirectoryName(certificate_issuer)]), critical=True
                )
            b = b.add_revoked_certificate(rb.build())
        return b.sign(self.private_key, hashes.SHA256())

    def partition_crls(
        self,
        now: dt.datetime,
        cities: Iterable[str],
        revoked: Iterable[tuple[str, int]] = (),
        *,
        valid_for: dt.timedelta = dt.timedelta(days=2),
    ) -> list[tuple[str, x509.CertificateRevocationList]]:
        """The CRL files of ``cities`` as J-LIS publishes them: per municipality, the complete CRL of its
        partition (``<city>.crl``, listing its ``revoked`` cards, given as ``(city, serial)``) and an empty
        delta CRL on it (``<city>-delta.crl``). The base is valid ``valid_for`` from an hour ago, the delta
        half as long. What ``tvote serve`` reads from ``jpki_crl_dir`` (the demo and the rehearsal kit)."""
        revoked = list(revoked)
        out: list[tuple[str, x509.CertificateRevocationList]] = []
        for city in sorted({*cities, *(c for c, _ in revoked)}):
            base_number = int(now.timestamp())
            base = self.build_crl(
                [serial for c, serial in revoked if c == city],
                now - dt.timedelta(hours=1),
                now + valid_for,
                city=city,
                crl_number=base_number,
            )
            delta = self.build_crl(
                [],
                now - dt.timedelta(minutes=10),
                now + valid_for / 2,
                city=city,
                crl_number=base_number + 1,
                delta_of=base_number,
            )
            out += [(f"{city}.crl", base), (f"{city}-delta.crl", delta)]
        return out
