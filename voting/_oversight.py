"""The independent observers' oversight key and the sealed authentication evidence.

The election's independent observers (not the commission, not the operator) hold an X25519 key pair; its
public half is pinned in the manifest (``oversight.x25519_public_key``, so in the base hash). At intake the
server verifies a ballot's authentication as always, then keeps the private evidence (JPKI certificate,
signature, challenge; digital-ID token, nonce salt, face-match answer) only as a PyNaCl
:class:`~nacl.public.SealedBox` to that key: the server can write it but never read it back.

Sealed plaintext (``tvote-sealed-evidence/1``), RFC 8785 canonical JSON::

    {"format": "tvote-sealed-evidence/1", "election_id", "base_hash", "ballot_hash", "voter_alias",
     "evidence_hash", "method", "verified_at" (the intake clock when it verified, RFC 3339 UTC),
     "evidence": {...}}

``evidence`` is intake's evidence object (``docs/authentication.md``). ``evidence_hash`` is the value the
``ballot.cast`` entry publishes, and the observers recompute it from ``evidence`` (``JpkiEvidence`` /
``OidcEvidence`` transcripts), so a sealed box is bound to exactly one published ballot.

Export (``tvote-evidence-export/1``), a JSON object the commission hands the observers::

    {"format", "election_id", "base_hash", "oversight_key",
     "roll": hex(SealedBox({"format": "tvote-sealed-roll/1", "election_id", "roll_key",
                            "entries": [[alias, match_key], ...]})),
     "oidc": {issuer, client_id, acr_values, trust_frameworks, claims_source, verified_scope,
              max_auth_age} | null,
     "evidence": [{"evidence_hash", "ledger_index", "sealed": hex}, ...]}

Producing it appends ``evidence.exported`` (``election_id``, ``base_hash``, ``oversight_key``,
``evidence_count``, ``export_hash`` = SHA-256 of the RFC 8785 form of the export) to the ledger: every
access to the evidence is on the public record. The observers' secret key is kept in a passphrase-protected
file in the trustee secret-file format (:mod:`voting.clients._secret_file`), state
``tvote-oversight-secret/1``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import nacl.exceptions
import rfc8785
from nacl.public import PrivateKey, PublicKey, SealedBox

__all__ = [
    "EVIDENCE_EXPORT_FORMAT",
    "EXPORT_EVENT",
    "OVERSIGHT_SECRET_FORMAT",
    "SEALED_EVIDENCE_FORMAT",
    "SEALED_ROLL_FORMAT",
    "OversightKeyError",
    "export_hash",
    "generate_oversight_key",
    "load_oversight_secret",
    "open_sealed",
    "parse_public_key",
    "save_oversight_secret",
    "seal",
    "sealed_evidence",
    "sealed_roll",
]

SEALED_EVIDENCE_FORMAT: Final[str] = "tvote-sealed-evidence/1"
SEALED_ROLL_FORMAT: Final[str] = "tvote-sealed-roll/1"
EVIDENCE_EXPORT_FORMAT: Final[str] = "tvote-evidence-export/1"
OVERSIGHT_SECRET_FORMAT: Final[str] = "tvote-oversight-secret/1"  # noqa: S105 - a format name
#: the ledger event that logs an export of the sealed evidence
EXPORT_EVENT: Final[str] = "evidence.exported"
_HEX64: Final[re.Pattern[str]] = re.compile(r"[0-9a-f]{64}")


class OversightKeyError(ValueError):
    """An oversight key, secret file or sealed box that cannot be used (the message says why)."""


def parse_public_key(text: str) -> PublicKey:
    """The observers' X25519 public key from its 64 lowercase hex digits."""
    if not isinstance(text, str) or not _HEX64.fullmatch(text):
        raise OversightKeyError("an oversight public key is 64 lowercase hex digits (X25519)")
    return PublicKey(bytes.fromhex(text))


def generate_oversight_key() -> PrivateKey:
    return PrivateKey.generate()


def save_oversight_secret(path: str | Path, key: PrivateKey, passphrase: str, limits: Any = None) -> None:
    """Write the observers' secret key, passphrase-protected, mode 0600 (the trustee secret-file code)."""
    from .clients._secret_file import write_secret_file

    state = {
        "format": OVERSIGHT_SECRET_FORMAT,
        "x25519_secret_key": bytes(key).hex(),
        "x25519_public_key": bytes(key.public_key).hex(),
    }
    write_secret_file(path, state, passphrase, limits)


def load_oversight_secret(path: str | Path, passphrase: str) -> PrivateKey:
    """Read the observers' secret key (``TrusteeFileError`` on a wrong passphrase or a tampered file)."""
    from .clients._secret_file import read_secret_file

    state = read_secret_file(path, passphrase)
    if state.get("format") != OVERSIGHT_SECRET_FORMAT:
        raise OversightKeyError("not an observers' (oversight) secret file")
    try:
        key = PrivateKey(bytes.fromhex(state["x25519_secret_key"]))
    except (KeyError, TypeError, ValueError, nacl.exceptions.CryptoError) as e:
        raise OversightKeyError("the oversight secret file is malformed") from e
    if bytes(key.public_key).hex() != state.get("x25519_public_key"):
        raise OversightKeyError("the oversight secret file is inconsistent")
    return key


def seal(public_key: str, obj: Mapping[str, Any]) -> str:
    """``hex(SealedBox(public_key).encrypt(rfc8785(obj)))``."""
    return bytes(SealedBox(parse_public_key(public_key)).encrypt(rfc8785.dumps(dict(obj)))).hex()


def open_sealed(key: PrivateKey, sealed_hex: str) -> dict[str, Any]:
    """Open one sealed box (hex) with the observers' key; raise :class:`OversightKeyError` if it does not open
    or is not a JSON object."""
    import json

    try:
        plain = SealedBox(key).decrypt(bytes.fromhex(sealed_hex))
    except (TypeError, ValueError, nacl.exceptions.CryptoError) as e:
        raise OversightKeyError("the sealed box does not open with the observers' key") from e
    try:
        obj = json.loads(plain.decode("utf-8"))
    except ValueError as e:
        raise OversightKeyError("the sealed box does not hold a JSON object") from e
    if not isinstance(obj, dict):
        raise OversightKeyError("the sealed box does not hold a JSON object")
    return obj


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def sealed_evidence(
    public_key: str,
    *,
    election_id: str,
    base_hash: bytes,
    ballot_hash: str,
    voter_alias: str,
    evidence_hash: str,
    method: str,
    verified_at: dt.datetime,
    evidence: Mapping[str, Any],
) -> str:
    """The sealed box (hex) intake stores for one cast ballot (see the module docstring)."""
    return seal(
        public_key,
        {
            "format": SEALED_EVIDENCE_FORMAT,
            "election_id": election_id,
            "base_hash": base_hash.hex(),
            "ballot_hash": ballot_hash,
            "voter_alias": voter_alias,
            "evidence_hash": evidence_hash,
            "method": method,
            "verified_at": _iso(verified_at),
            "evidence": dict(evidence),
        },
    )


def sealed_roll(
    public_key: str, *, election_id: str, roll_key: bytes, entries: Sequence[tuple[str, str]]
) -> str:
    """The roll key and the roll's ``(alias, match_key)`` pairs, sealed to the observers (hex)."""
    return seal(
        public_key,
        {
            "format": SEALED_ROLL_FORMAT,
            "election_id": election_id,
            "roll_key": roll_key.hex(),
            "entries": [[a, m] for a, m in sorted(entries)],
        },
    )


def export_hash(export: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the RFC 8785 form of an evidence export (what ``evidence.exported`` publishes)."""
    return hashlib.sha256(rfc8785.dumps(dict(export))).hexdigest()
