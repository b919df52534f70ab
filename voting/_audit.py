"""The observers' eligibility audit (``tvote audit-evidence``): is every cast ballot justified by evidence?

Needs only the exported election record, the sealed evidence export (``voting._oversight``) and the
observers' secret key, plus what the observers obtain out of band: the JPKI signing roots, the CRLs, and the
digital-ID provider's JWKS. Never the server. It re-uses intake's verification code (``voting.auth``), so
the audit and the intake cannot disagree on what a valid authentication is.

Checks (each problem names the ``ballot.cast`` entry, and the check in brackets)::

    A1 the record's hash chain and checkpoints (ledger.record.check_record)               [record]
    A2 the export is this election's (election id, base hash, the manifest's oversight key) and its
       SHA-256 is published by an evidence.exported entry of the record                  [export.*]
    A3 the sealed roll opens; its aliases rebuild the published roll commitment (size, root)  [roll.*]
    for every ballot.cast entry (counted or superseded):
    A4 a sealed item with the entry's evidence hash exists and opens                      [evidence.missing,
                                                                                           evidence.sealed]
    A5 the sealed item names this election, base hash, ballot hash, voter alias, hash and method
                                                                                          [evidence.binding]
       the evidence is of this election (its base hash)                          [evidence.other_election]
       and was verified while voting was open (voting.opened .. voting.closed)             [evidence.time]
    A6 JPKI: JpkiVerifier.verify at that time: chain to the given roots, policy, signature over
       (base hash, ballot hash, challenge), revocation by the given CRLs                  [jpki.*]
       digital ID: OidcRelyingParty.verify_id_token against the given JWKS at that time: signature, iss,
       aud, exp/iat, nonce = H(base hash, ballot hash, salt), acr, auth_time; the face decision is an
       accept and equals the public record's                                              [oidc.*, face.*]
       and the evidence recomputes to the published evidence hash                          [evidence.hash]
    A7 the roll match: the roll match key from the certificate (or verified claims), under the sealed roll
       key, is the roll entry of the ballot's voter alias                                  [voter.not_on_roll,
                                                                                           voter.alias]
    A8 no resident (roll match key), certificate or digital-ID account votes under two aliases
                                                                                          [resident.two_aliases]
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from cryptography import x509
from nacl.public import PrivateKey

from ledger.events import EventType
from ledger.record import check_record, parse_json, read_record
from voting.auth import (
    JPKI_SIGN_POLICY_OID,
    JPKI_TEST_SIGN_POLICY_OID,
    AuthError,
    CrlFileChecker,
    JpkiSubmission,
    JpkiVerifier,
    OidcProviderConfig,
    OidcRelyingParty,
    RollKey,
)

from ._oversight import (
    EVIDENCE_EXPORT_FORMAT,
    EXPORT_EVENT,
    SEALED_EVIDENCE_FORMAT,
    SEALED_ROLL_FORMAT,
    OversightKeyError,
    export_hash,
    open_sealed,
)
from ._roll import roll_root

__all__ = ["AUDIT_FORMAT", "AuditProblem", "AuditReport", "audit_evidence"]

AUDIT_FORMAT: Final[str] = "tvote-evidence-audit/1"
_MAX_EXPORT_BYTES: Final[int] = 4 * 1024 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class AuditProblem:
    """One ballot (or the export) the audit cannot justify: ``check`` names the failed check."""

    check: str
    message: str
    entry: int | None = None
    ballot_hash: str | None = None
    voter_alias: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            k: v
            for k, v in (
                ("entry", self.entry),
                ("check", self.check),
                ("message", self.message),
                ("ballot_hash", self.ballot_hash),
                ("voter_alias", self.voter_alias),
            )
            if v is not None
        }


@dataclass
class AuditReport:
    election_id: str | None = None
    ballots: int = 0
    justified: int = 0
    problems: list[AuditProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and self.election_id is not None

    def unjustified_entries(self) -> set[int]:
        return {p.entry for p in self.problems if p.entry is not None}

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": AUDIT_FORMAT,
            "election_id": self.election_id,
            "result": "PASS" if self.ok else "FAIL",
            "cast_ballots": self.ballots,
            "justified": self.justified,
            "problems": [p.to_dict() for p in self.problems],
        }

    def human(self) -> str:
        lines = [
            f"evidence audit of {self.election_id}: {self.justified} of {self.ballots} cast ballots "
            "justified by their sealed evidence"
        ]
        for p in self.problems:
            where = f"entry {p.entry}: " if p.entry is not None else ""
            lines.append(f"  UNJUSTIFIED {where}[{p.check}] {p.message}")
        lines.append("PASS" if self.ok else f"FAIL ({len(self.problems)} problems)")
        return "\n".join(lines)


def _time(text: Any) -> dt.datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        return None


class _Fail(Exception):
    def __init__(self, check: str, message: str) -> None:
        super().__init__(message)
        self.check, self.message = check, message


@dataclass
class _Ctx:
    eid: str
    base_hash: str
    opened: dt.datetime | None
    closed: dt.datetime | None
    roll: dict[str, str]  # match key -> alias
    jpki: JpkiVerifier | None
    oidc: OidcRelyingParty | None
    oidc_missing: str


def audit_evidence(
    record: str | Path,
    export: str | Path,
    key: PrivateKey,
    *,
    jpki_roots: Sequence[x509.Certificate] = (),
    crls: Iterable[x509.CertificateRevocationList] = (),
    oidc_jwks: Mapping[str, Any] | None = None,
    accept_test_policy: bool = False,
) -> AuditReport:
    """Run the audit (module docstring); every problem is collected, nothing raises for a bad ballot."""
    report = AuditReport()
    try:
        check_record(record)
    except Exception as e:  # any unreadable or inconsistent record: nothing else can be trusted
        report.problems.append(AuditProblem("record", f"the record does not check: {e}"))
        return report
    entries = [(e.index, e.type, e.payload) for e in read_record(record).entries()]
    if not entries or entries[0][1] != EventType.MANIFEST:
        report.problems.append(AuditProblem("record", "the record does not start with the manifest"))
        return report
    manifest = entries[0][2]["manifest"]
    eid, base_hash = manifest["election_id"], entries[0][2]["base_hash"]
    report.election_id = eid
    oversight = (manifest.get("oversight") or {}).get("x25519_public_key")
    if oversight is None:
        report.problems.append(AuditProblem("export.oversight_key", "the manifest names no oversight key"))
        return report
    if bytes(key.public_key).hex() != oversight:
        report.problems.append(
            AuditProblem("export.oversight_key", "the secret key given is not the manifest's oversight key")
        )
        return report
    try:
        exp = parse_json(Path(export).read_bytes(), max_bytes=_MAX_EXPORT_BYTES)
    except Exception as e:
        report.problems.append(AuditProblem("export.format", f"the evidence export does not parse: {e}"))
        return report
    if not isinstance(exp, dict) or exp.get("format") != EVIDENCE_EXPORT_FORMAT:
        report.problems.append(AuditProblem("export.format", f"not a {EVIDENCE_EXPORT_FORMAT} file"))
        return report
    if (exp.get("election_id"), exp.get("base_hash"), exp.get("oversight_key")) != (
        eid,
        base_hash,
        oversight,
    ):
        report.problems.append(
            AuditProblem(
                "export.election", "the export is not of this election (id, base hash, oversight key)"
            )
        )
        return report
    logged = {p.get("export_hash") for _, t, p in entries if t == EXPORT_EVENT}
    if export_hash(exp) not in logged:
        report.problems.append(
            AuditProblem(
                "export.not_logged", "no evidence.exported entry of the record publishes this export's hash"
            )
        )
    roll = _open_roll(report, key, exp, eid, entries)
    if roll is None:
        return report
    roll_key, by_match = roll
    opened = closed = None
    for _, t, p in entries:
        if t == EventType.VOTING_OPENED:
            opened = _time(p.get("opened_at"))
        elif t == EventType.VOTING_CLOSED:
            closed = _time(p.get("closed_at"))
    policies = (
        (JPKI_SIGN_POLICY_OID, JPKI_TEST_SIGN_POLICY_OID) if accept_test_policy else (JPKI_SIGN_POLICY_OID,)
    )
    jpki = (
        JpkiVerifier(jpki_roots, CrlFileChecker(crls), RollKey(roll_key), accepted_policies=policies)
        if jpki_roots
        else None
    )
    oidc, oidc_missing = None, "no JWKS of the digital-ID provider was given (--oidc-jwks)"
    cfg = exp.get("oidc")
    if oidc_jwks is not None and isinstance(cfg, dict):
        try:
            config = OidcProviderConfig(
                issuer=cfg["issuer"],
                client_id=cfg["client_id"],
                client_secret="",
                redirect_uri="",
                acr_values=tuple(cfg["acr_values"]),
                claims_source=cfg["claims_source"],
                trust_frameworks=tuple(cfg["trust_frameworks"]),
                verified_scope=cfg.get("verified_scope"),
                max_auth_age=cfg["max_auth_age"],
            )
            oidc = OidcRelyingParty(config, RollKey(roll_key), jwks=oidc_jwks)
        except (AuthError, KeyError, TypeError) as e:
            oidc_missing = f"the export's digital-ID configuration or the JWKS is unusable: {e}"
    elif oidc_jwks is not None:
        oidc_missing = "the export carries no digital-ID relying-party configuration"
    ctx = _Ctx(eid, base_hash, opened, closed, by_match, jpki, oidc, oidc_missing)
    sealed = {}
    for item in exp.get("evidence") or []:
        if isinstance(item, dict) and isinstance(item.get("evidence_hash"), str):
            sealed[item["evidence_hash"]] = item.get("sealed")
    identities: dict[tuple[str, str], set[str]] = defaultdict(set)
    who: dict[int, list[tuple[str, str]]] = {}
    casts: dict[int, tuple[str, str]] = {}
    for i, t, p in entries:
        if t != EventType.BALLOT_CAST:
            continue
        report.ballots += 1
        alias, bh = str(p.get("voter_alias")), str(p.get("ballot_hash"))
        casts[i] = (bh, alias)
        try:
            ids = _justify(ctx, key, p, sealed)
        except _Fail as f:
            report.problems.append(AuditProblem(f.check, f.message, i, bh, alias))
            continue
        who[i] = ids
        for ident in ids:
            identities[ident].add(alias)
    # A8: one resident, one card, one digital-ID account: one alias
    for i, ids in sorted(who.items()):
        many = [kind for kind in ids if len(identities[kind]) > 1]
        if many:
            bh, alias = casts[i]
            kinds = ", ".join(sorted({k for k, _ in many}))
            report.problems.append(
                AuditProblem(
                    "resident.two_aliases",
                    f"the same {kinds} votes under {len(identities[many[0]])} voter aliases",
                    i,
                    bh,
                    alias,
                )
            )
    report.justified = report.ballots - len(report.unjustified_entries())
    return report


def _open_roll(
    report: AuditReport,
    key: PrivateKey,
    exp: Mapping[str, Any],
    eid: str,
    entries: list[tuple[int, str, Any]],
) -> tuple[bytes, dict[str, str]] | None:
    """A3: the roll key and (alias, match key) pairs; their aliases must rebuild the published commitment."""
    try:
        roll = open_sealed(key, str(exp.get("roll")))
        if roll.get("format") != SEALED_ROLL_FORMAT or roll.get("election_id") != eid:
            raise OversightKeyError("the sealed roll is not this election's")
        roll_key = bytes.fromhex(roll["roll_key"])
        pairs = [(str(a), str(m)) for a, m in roll["entries"]]
    except (OversightKeyError, KeyError, TypeError, ValueError) as e:
        report.problems.append(AuditProblem("roll.sealed", f"the sealed roll cannot be used: {e}"))
        return None
    commitment = next((p for _, t, p in entries if t == EventType.ROLL_COMMITMENT), None)
    aliases = [bytes.fromhex(a) for a, _ in pairs]
    if (
        commitment is None
        or commitment.get("size") != len(aliases)
        or len(set(aliases)) != len(aliases)
        or roll_root(aliases).hex() != commitment.get("root")
    ):
        report.problems.append(
            AuditProblem(
                "roll.commitment", "the sealed roll's aliases do not rebuild the published roll commitment"
            )
        )
        return None
    by_match = {m: a for a, m in pairs}
    if len(by_match) != len(pairs) or len(roll_key) != 32:
        report.problems.append(AuditProblem("roll.sealed", "the sealed roll repeats a match key"))
        return None
    return roll_key, by_match


def _justify(
    ctx: _Ctx, key: PrivateKey, p: Mapping[str, Any], sealed: Mapping[str, Any]
) -> list[tuple[str, str]]:
    """A4-A7 for one ``ballot.cast`` payload: the identities it was cast by, or raise :class:`_Fail`."""
    raw_auth = p.get("auth")
    auth: Mapping[str, Any] = raw_auth if isinstance(raw_auth, dict) else {}
    evh, method = str(auth.get("evidence_hash")), auth.get("method")
    alias, bh = str(p.get("voter_alias")), str(p.get("ballot_hash"))
    if evh not in sealed:
        raise _Fail(
            "evidence.missing", f"no sealed evidence for the published evidence hash {str(evh)[:16]}…"
        )
    try:
        s = open_sealed(key, str(sealed[evh]))
    except OversightKeyError as e:
        raise _Fail("evidence.sealed", str(e)) from None
    want = {
        "format": SEALED_EVIDENCE_FORMAT,
        "election_id": ctx.eid,
        "base_hash": ctx.base_hash,
        "ballot_hash": bh,
        "voter_alias": alias,
        "evidence_hash": evh,
        "method": method,
    }
    wrong = sorted(k for k, v in want.items() if s.get(k) != v)
    if wrong:
        raise _Fail(
            "evidence.binding", f"the sealed evidence is not this ballot's ({', '.join(wrong)} differ)"
        )
    ev = s.get("evidence")
    if not isinstance(ev, dict):
        raise _Fail("evidence.binding", "the sealed evidence holds no evidence object")
    if ev.get("election_base_hash") != ctx.base_hash:
        raise _Fail("evidence.other_election", "the evidence authenticates a ballot of another election")
    if ev.get("ballot_hash") != bh:
        raise _Fail("evidence.binding", "the evidence authenticates another ballot")
    at = _time(s.get("verified_at"))
    if at is None or ctx.opened is None or at < ctx.opened or (ctx.closed is not None and at > ctx.closed):
        raise _Fail("evidence.time", "the evidence was not verified while voting was open")
    if method == "jpki":
        ids = _jpki(ctx, ev, evh, bh, at)
    elif method == "oidc+face":
        ids = _oidc(ctx, ev, evh, bh, at, auth)
    else:
        raise _Fail("evidence.binding", f"unknown authentication method {method!r}")
    match_key = ids[0][1]
    owner = ctx.roll.get(match_key)
    if owner is None:
        raise _Fail("voter.not_on_roll", "the authenticated resident is not on the roll")
    if owner != alias:
        raise _Fail("voter.alias", "the authenticated resident's roll entry is another voter alias")
    return ids


def _jpki(ctx: _Ctx, ev: Mapping[str, Any], evh: str, bh: str, at: dt.datetime) -> list[tuple[str, str]]:
    if ctx.jpki is None:
        raise _Fail("jpki.unavailable", "no JPKI signing roots were given (--jpki-roots)")
    try:
        sub = JpkiSubmission(
            bytes.fromhex(ev["certificate"]),
            bytes.fromhex(ev["signature"]),
            tuple(bytes.fromhex(d) for d in ev.get("intermediates", [])),
        )
        ident = ctx.jpki.verify(
            sub,
            election_base_hash=bytes.fromhex(ctx.base_hash),
            ballot_hash=bytes.fromhex(bh),
            challenge=bytes.fromhex(ev["challenge"]),
            now=at,
        )
    except AuthError as e:
        raise _Fail(e.code, e.operator_message) from None
    except (KeyError, TypeError, ValueError):
        raise _Fail("evidence.binding", "the JPKI evidence is malformed") from None
    if ident.evidence_hash.hex() != evh:
        raise _Fail("evidence.hash", "the evidence does not recompute to the published evidence hash")
    cert = hashlib.sha256(sub.certificate_der).hexdigest()
    return [("resident", ident.match_key.hex()), ("certificate", cert)]


def _oidc(
    ctx: _Ctx, ev: Mapping[str, Any], evh: str, bh: str, at: dt.datetime, auth: Mapping[str, Any]
) -> list[tuple[str, str]]:
    if ctx.oidc is None:
        raise _Fail("oidc.unavailable", ctx.oidc_missing)
    try:
        if ev.get("issuer") != ctx.oidc.config.issuer:
            raise _Fail("oidc.issuer", "the evidence names another digital-ID provider")
        ident = ctx.oidc.verify_id_token(
            ev["id_token"],
            election_base_hash=bytes.fromhex(ctx.base_hash),
            ballot_hash=bytes.fromhex(bh),
            nonce_salt=bytes.fromhex(ev["nonce_salt"]),
            now=at,
        )
    except AuthError as e:
        raise _Fail(e.code, e.operator_message) from None
    except (KeyError, TypeError, ValueError):
        raise _Fail("evidence.binding", "the digital-ID evidence is malformed") from None
    if ident.evidence_hash.hex() != evh:
        raise _Fail("evidence.hash", "the evidence does not recompute to the published evidence hash")
    face = ev.get("face")
    if not isinstance(face, dict) or face.get("decision") is not True:
        raise _Fail("face.no_match", "the sealed face-match answer is not an accept")
    if auth.get("face") != {"decision": True, "engine": face.get("engine_id")}:
        raise _Fail("face.record", "the public face entry differs from the sealed face-match answer")
    if ident.match_key is None:
        raise _Fail("voter.unmatched", "the ID token carries no verified name, birth date and address")
    return [("resident", ident.match_key.hex()), ("digital-ID account", f"{ident.issuer} {ident.subject}")]
