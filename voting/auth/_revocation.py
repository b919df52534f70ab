"""Revocation checking for JPKI signing certificates (pluggable; fails closed).

J-LIS grants CRL/OCSP access only to registered signature verifiers or platform operators, so the
source of revocation data is deployment-specific: :class:`RevocationChecker` is the interface, and
:class:`CrlFileChecker` the built-in implementation over CRL files fetched by the operator.

The interface
=============

``check(certificate, issuer, at)`` returns ``None`` when ``certificate`` (whose chain was already
validated, ``issuer`` being the certificate that signed it) is known good at ``at`` and raises
:class:`~voting.auth.RevocationError` otherwise. Codes:

* ``jpki.revoked`` — the certificate is listed (on a complete CRL, or on a delta CRL);
* ``jpki.revocation_unavailable`` — no validly signed, current revocation data of the issuer at all;
* ``jpki.crl_scope`` — current CRLs of the issuer exist, but none whose scope covers this certificate
  (its CRL distribution point and every revocation reason);
* ``jpki.crl_unsupported`` — the only revocation data in scope is of a kind this checker refuses
  (indirect CRLs, or a certificate whose distribution points name another CRL issuer).

A checker never returns on doubt; :class:`~voting.auth.JpkiVerifier` turns any other exception a
checker lets escape into ``jpki.revocation_unavailable``. Another implementation (for example OCSP
through a registered platform operator) implements the same one method, raises the same codes
(``jpki.revocation_unavailable`` when the responder cannot be reached or answers anything but a signed,
current ``good``/``revoked``), and is passed to :class:`~voting.auth.JpkiVerifier` in place of
:class:`CrlFileChecker`.

CRL scope (RFC 5280 §6.3.3)
===========================

:class:`CrlFileChecker` decides with the CRLs it holds, using ``cryptography``'s parsed extensions:

1. *Issuer and signature.* A CRL counts only if its issuer name equals the issuer's subject, its
   authorityKeyIdentifier (when both it and the issuer's subjectKeyIdentifier are present) names the
   issuer's key, its signature verifies under the issuer's key (so a same-named CA of another
   generation cannot vouch), and the issuer may sign CRLs (keyUsage ``cRLSign``, when present).
2. *Current.* ``thisUpdate <= at < nextUpdate``; a CRL without nextUpdate is never current.
3. *Usable.* A CRL with an unknown critical extension, or an entry with an unknown critical entry
   extension, is never used (§5.2, §5.3). Indirect CRLs (issuingDistributionPoint ``indirectCRL``, or a
   certificateIssuer entry extension) are refused.
4. *Scope* (§6.3.3 (b)). With no issuingDistributionPoint the CRL covers every certificate of the
   issuer. Otherwise: ``onlyContainsAttributeCerts`` never covers a certificate, ``onlyContainsCACerts``
   covers only CA certificates and ``onlyContainsUserCerts`` only end-entity ones; and when the IDP
   names a distribution point (full name, or a name relative to the CRL issuer), one of its names
   must equal one of the names of a distribution point in the certificate's cRLDistributionPoints
   (full name, or a name relative to the certificate issuer) — or, when the certificate has no
   cRLDistributionPoints, the certificate issuer's name. Names are compared exactly (a stricter
   comparison than RFC 4518 matching: a mismatch fails closed).
5. *Reasons* (§6.3.3 (d)). A CRL covers the reasons of its ``onlySomeReasons`` (all when absent),
   intersected with the ``reasons`` of the certificate's matching distribution point(s). The freshest
   in-scope complete CRL is consulted first, then older ones only for reasons still uncovered; the
   certificate is good only when every reason is covered and no consulted CRL lists it.
6. *Delta CRLs* (§5.2.4, §6.3.3 (c)). A CRL with a deltaCRLIndicator is never used as a complete CRL.
   It is applied on top of a complete CRL only when both are from the same issuer with the same
   issuingDistributionPoint, the complete CRL has a cRLNumber, and ``BaseCRLNumber <= base number <
   delta number``; the applicable delta with the highest number is used. An entry on the delta revokes
   (``removeFromCRL`` lifts only a ``certificateHold`` entry of the base). A current, in-scope delta that
   lists the certificate revokes it even when no base for it is loaded: a delta is evidence of
   revocation, never of good standing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Final, Protocol, TypeVar, runtime_checkable

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import CRLEntryExtensionOID, ExtensionOID

from ._errors import JpkiError, RevocationError

__all__ = ["ALL_REASONS", "CrlFileChecker", "RevocationChecker", "UnsafeNoRevocationCheck", "load_crl"]

#: Every revocation reason a CRL can be scoped to (``ReasonFlags`` of RFC 5280 §4.2.1.13).
ALL_REASONS: Final[frozenset[x509.ReasonFlags]] = frozenset(
    {
        x509.ReasonFlags.key_compromise,
        x509.ReasonFlags.ca_compromise,
        x509.ReasonFlags.affiliation_changed,
        x509.ReasonFlags.superseded,
        x509.ReasonFlags.cessation_of_operation,
        x509.ReasonFlags.certificate_hold,
        x509.ReasonFlags.privilege_withdrawn,
        x509.ReasonFlags.aa_compromise,
    }
)
_NO_REASONS: Final[frozenset[x509.ReasonFlags]] = frozenset()
_HOLD: Final = x509.ReasonFlags.certificate_hold
_REMOVE: Final = x509.ReasonFlags.remove_from_crl


def _firmness(reason: x509.ReasonFlags | None) -> int:
    """removeFromCRL < certificateHold < any other reason (a revocation for good)."""
    return 0 if reason is _REMOVE else 1 if reason is _HOLD else 2


#: CRL extensions this checker understands (a critical one outside this set makes the CRL unusable).
_KNOWN_CRL_EXTENSIONS: Final[frozenset[x509.ObjectIdentifier]] = frozenset(
    {
        ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
        ExtensionOID.ISSUER_ALTERNATIVE_NAME,
        ExtensionOID.CRL_NUMBER,
        ExtensionOID.DELTA_CRL_INDICATOR,
        ExtensionOID.ISSUING_DISTRIBUTION_POINT,
        ExtensionOID.FRESHEST_CRL,
        ExtensionOID.AUTHORITY_INFORMATION_ACCESS,
    }
)
_KNOWN_ENTRY_EXTENSIONS: Final[frozenset[x509.ObjectIdentifier]] = frozenset(
    {CRLEntryExtensionOID.CRL_REASON, CRLEntryExtensionOID.INVALIDITY_DATE}
)


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


@dataclass(frozen=True, slots=True, eq=False)
class _Crl:
    """One loaded CRL and what the checker needs of it, read once at load time."""

    crl: x509.CertificateRevocationList
    number: int | None
    base_number: int | None  # set: a delta CRL (the deltaCRLIndicator's BaseCRLNumber)
    idp: x509.IssuingDistributionPoint | None
    authority_key_id: bytes | None
    refused: str | None  # why the CRL is never used ("indirect", "critical extension", ...)
    #: serial → reason code of the entry (``None``: no reasonCode), read once so a check is a lookup
    revoked: Mapping[int, x509.ReasonFlags | None]

    @property
    def is_delta(self) -> bool:
        return self.base_number is not None

    @classmethod
    def read(cls, crl: x509.CertificateRevocationList) -> _Crl:
        try:
            exts = crl.extensions
            refused = None
            for ext in exts:
                if ext.critical and ext.oid not in _KNOWN_CRL_EXTENSIONS:
                    refused = "it carries an unknown critical extension"
            number = _ext_value(exts, x509.CRLNumber)
            delta = _ext_value(exts, x509.DeltaCRLIndicator)
            idp = _ext_value(exts, x509.IssuingDistributionPoint)
            aki = _ext_value(exts, x509.AuthorityKeyIdentifier)
            if idp is not None and idp.indirect_crl:
                refused = "indirect CRLs are not supported"
            revoked: dict[int, x509.ReasonFlags | None] = {}
            for entry in crl:
                reason = None
                for ext in entry.extensions:
                    if ext.oid == CRLEntryExtensionOID.CERTIFICATE_ISSUER:
                        refused = "indirect CRLs (certificateIssuer entries) are not supported"
                    elif isinstance(ext.value, x509.CRLReason):
                        reason = ext.value.reason
                    elif ext.critical and ext.oid not in _KNOWN_ENTRY_EXTENSIONS:
                        refused = refused or "an entry carries an unknown critical extension"
                serial = entry.serial_number
                # listed twice: keep the entry that revokes most firmly (fail closed)
                if serial not in revoked or _firmness(reason) > _firmness(revoked[serial]):
                    revoked[serial] = reason
        except ValueError as e:
            raise JpkiError("jpki.malformed", f"CRL extensions do not parse: {e}") from None
        return cls(
            crl=crl,
            number=None if number is None else number.crl_number,
            base_number=None if delta is None else delta.crl_number,
            idp=idp,
            authority_key_id=None if aki is None else aki.key_identifier,
            refused=refused,
            revoked=MappingProxyType(revoked),
        )


_E = TypeVar("_E", bound=x509.ExtensionType)


def _ext_value(exts: x509.Extensions, kind: type[_E]) -> _E | None:
    try:
        return exts.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


@dataclass(frozen=True, slots=True)
class _DistributionPoint:
    names: frozenset[x509.GeneralName]
    reasons: frozenset[x509.ReasonFlags]


def _cert_distribution_points(
    certificate: x509.Certificate, issuer_name: x509.Name
) -> tuple[list[_DistributionPoint] | None, bool]:
    """The certificate's direct distribution points (``None``: it has no cRLDistributionPoints) and
    whether it named any distribution point served by another CRL issuer (indirect)."""
    try:
        cdp = certificate.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except x509.ExtensionNotFound:
        return None, False
    own = x509.DirectoryName(issuer_name)
    out: list[_DistributionPoint] = []
    indirect = False
    for dp in cdp:
        if dp.crl_issuer is not None and own not in dp.crl_issuer:
            indirect = True
            continue
        names = _dp_names(dp.full_name, dp.relative_name, issuer_name)
        if names is None:
            continue  # a DP with only cRLIssuer/reasons names no CRL of this issuer by name
        out.append(_DistributionPoint(names, ALL_REASONS if dp.reasons is None else frozenset(dp.reasons)))
    return out, indirect


def _dp_names(
    full_name: Iterable[x509.GeneralName] | None,
    relative_name: x509.RelativeDistinguishedName | None,
    base: x509.Name,
) -> frozenset[x509.GeneralName] | None:
    if full_name is not None:
        return frozenset(full_name)
    if relative_name is not None:
        return frozenset({x509.DirectoryName(x509.Name([*base.rdns, relative_name]))})
    return None


def _is_ca(certificate: x509.Certificate) -> bool:
    bc = _ext_value(certificate.extensions, x509.BasicConstraints)
    return bc is not None and bc.ca


def _key_id(cert: x509.Certificate) -> bytes | None:
    ski = _ext_value(cert.extensions, x509.SubjectKeyIdentifier)
    return None if ski is None else ski.digest


class CrlFileChecker:
    """Revocation from CRLs the operator loaded (files fetched from J-LIS or the test CA), with RFC 5280
    §6.3.3 scope matching, delta CRLs applied to their base, and indirect CRLs refused (see the module
    docstring for the exact rules). Fails closed: no current in-scope CRL for every reason → refused."""

    def __init__(self, crls: Iterable[x509.CertificateRevocationList]) -> None:
        self._crls: tuple[_Crl, ...] = tuple(_Crl.read(c) for c in crls)
        self._sig_ok: dict[tuple[int, bytes], bool] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_paths(cls, paths: Iterable[str | Path]) -> CrlFileChecker:
        """Load CRL files (PEM or DER); a directory contributes every regular file in it."""
        crls: list[x509.CertificateRevocationList] = []
        for p in map(Path, paths):
            files = sorted(f for f in p.iterdir() if f.is_file()) if p.is_dir() else [p]
            crls.extend(load_crl(f.read_bytes()) for f in files)
        return cls(crls)

    # ----------------------------------------------------------------------------------------- check

    def check(self, certificate: x509.Certificate, issuer: x509.Certificate, at: dt.datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("at must be timezone-aware")
        ku = _ext_value(issuer.extensions, x509.KeyUsage)
        if ku is not None and not ku.crl_sign:
            raise RevocationError("jpki.revocation_unavailable", "issuer is not permitted to sign CRLs")
        issuer_key_id = _key_id(issuer)
        spki = issuer.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        issuer_key = hashlib.sha256(spki).digest()
        current = [
            c
            for c in self._crls
            if c.crl.issuer == issuer.subject
            and c.crl.next_update_utc is not None
            and c.crl.last_update_utc <= at < c.crl.next_update_utc
            and (c.authority_key_id is None or issuer_key_id is None or c.authority_key_id == issuer_key_id)
        ]
        dps, indirect_dp = _cert_distribution_points(certificate, issuer.subject)
        is_ca = _is_ca(certificate)
        serial = certificate.serial_number
        scoped: list[tuple[_Crl, frozenset[x509.ReasonFlags]]] = []
        refused_in_scope = False
        for c in current:
            reasons = _scope(c, issuer.subject, dps, is_ca)
            if not reasons or not self._signature_ok(c, issuer, issuer_key):
                continue
            if c.refused is not None:
                refused_in_scope = True
                continue
            scoped.append((c, reasons))
        if (
            not scoped
            and not refused_in_scope
            and not any(self._signature_ok(c, issuer, issuer_key) for c in current)
        ):
            raise RevocationError(
                "jpki.revocation_unavailable", "no validly signed, current CRL from the certificate's issuer"
            )
        if dps is not None and not dps and indirect_dp:
            raise RevocationError(
                "jpki.crl_unsupported",
                "the certificate's revocation is published only through another CRL issuer (indirect CRL)",
            )

        # a current in-scope delta that lists the certificate is evidence of revocation on its own
        for c, _ in scoped:
            if c.is_delta and serial in c.revoked and c.revoked[serial] is not _REMOVE:
                raise RevocationError("jpki.revoked", "the signing certificate is listed on a delta CRL")

        deltas = [c for c, _ in scoped if c.is_delta]
        complete = sorted(
            ((c, r) for c, r in scoped if not c.is_delta),
            key=lambda cr: (cr[0].crl.last_update_utc, cr[0].number or -1),
            reverse=True,
        )
        covered: frozenset[x509.ReasonFlags] = _NO_REASONS
        for base, reasons in complete:
            if reasons <= covered:
                continue
            if _listed(base, _applicable_delta(base, deltas), serial):
                raise RevocationError("jpki.revoked", "the signing certificate is listed on its issuer's CRL")
            covered |= reasons
            if covered >= ALL_REASONS:
                return
        if not complete and refused_in_scope:
            raise RevocationError(
                "jpki.crl_unsupported",
                "the only CRLs in scope are of a kind this checker refuses (indirect, or an unknown "
                "critical extension)",
            )
        if complete:
            raise RevocationError(
                "jpki.crl_scope", "the current CRLs in scope of the certificate do not cover every reason"
            )
        raise RevocationError(
            "jpki.crl_scope",
            "no current complete CRL of the issuer covers the certificate's CRL distribution point",
        )

    def _signature_ok(self, c: _Crl, issuer: x509.Certificate, issuer_key: bytes) -> bool:
        """Whether ``c`` is signed by ``issuer``'s key (cached per CRL and key)."""
        key = (id(c), issuer_key)
        with self._lock:
            known = self._sig_ok.get(key)
        if known is None:
            try:
                known = c.crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]
            except (TypeError, ValueError):
                known = False
            with self._lock:
                self._sig_ok[key] = known
        return known


def _scope(
    c: _Crl,
    issuer_name: x509.Name,
    dps: list[_DistributionPoint] | None,
    is_ca: bool,
) -> frozenset[x509.ReasonFlags]:
    """The reasons ``c`` covers for the certificate (RFC 5280 §6.3.3 (b), (d)); empty: out of scope."""
    idp = c.idp
    if idp is None:
        return ALL_REASONS
    if idp.only_contains_attribute_certs:
        return _NO_REASONS
    if (idp.only_contains_ca_certs and not is_ca) or (idp.only_contains_user_certs and is_ca):
        return _NO_REASONS
    reasons = ALL_REASONS if idp.only_some_reasons is None else frozenset(idp.only_some_reasons)
    idp_names = _dp_names(idp.full_name, idp.relative_name, c.crl.issuer)
    if idp_names is None:
        return reasons & ALL_REASONS
    if dps is None:  # no cRLDistributionPoints in the certificate: the IDP must name its issuer
        return reasons & ALL_REASONS if x509.DirectoryName(issuer_name) in idp_names else _NO_REASONS
    matched = [dp for dp in dps if dp.names & idp_names]
    dp_reasons = frozenset().union(*(dp.reasons for dp in matched))
    return reasons & dp_reasons & ALL_REASONS


def _same_scope(a: _Crl, b: _Crl) -> bool:
    return a.idp == b.idp


def _applicable_delta(base: _Crl, deltas: list[_Crl]) -> _Crl | None:
    """The delta to apply on ``base`` (§5.2.4): same scope, ``BaseCRLNumber <= base < delta`` numbers."""
    if base.number is None:
        return None
    usable = [
        d
        for d in deltas
        if _same_scope(d, base)
        and d.number is not None
        and d.base_number is not None
        and d.base_number <= base.number < d.number
    ]
    return max(usable, key=lambda d: d.number or 0, default=None)


def _listed(base: _Crl, delta: _Crl | None, serial: int) -> bool:
    """Whether ``serial`` is revoked by ``base`` with ``delta`` applied on top."""
    on_base = serial in base.revoked
    if delta is not None and serial in delta.revoked:
        if delta.revoked[serial] is not _REMOVE:
            return True
        # removeFromCRL releases a hold; it cannot un-revoke a permanent revocation
        return on_base and base.revoked[serial] is not _HOLD
    return on_base


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
