"""Trustee enrolment: a trustee's registration signed by the Ed25519 key enrolled (pinned) for it.

Before the election exists, each trustee draws an Ed25519 *enrolment key* on their own machine and reads its
fingerprint out at the public ceremony step; the commission pins the public keys in the manifest
(``pins.trustee_enrolment_keys``, position ``i - 1`` for trustee ``i``), so they enter the base hash. The
registration (``trustee.registered``) then carries the enrolment public key and a signature over::

    digest = tagged_sha256("trustee-enrolment", base_hash, trustee, name, rfc8785(commitments))

(``docs/protocol.md`` T3.0): the election, the trustee's index, its public role name and its
Feldman commitments with their proofs and X25519 key. The server refuses a registration not signed by the
key pinned for that index; the verifier re-checks every registration (V28), so the commission alone cannot
register keys of its own in a trustee's place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import nacl.exceptions
import rfc8785
from nacl.signing import SigningKey, VerifyKey

from ._dkg import TrusteeCommitments
from ._errors import InvalidEncoding, ThresholdError
from ._hash import tagged_sha256

__all__ = ["ENROLMENT_PURPOSE", "TrusteeEnrolment", "enrolment_digest"]

ENROLMENT_PURPOSE: Final[str] = "trustee-enrolment"


def enrolment_digest(base_hash: bytes, trustee: int, name: str, commitments: TrusteeCommitments) -> bytes:
    """The 32 bytes an enrolment key signs for one registration."""
    return tagged_sha256(ENROLMENT_PURPOSE, base_hash, trustee, name, rfc8785.dumps(commitments.to_dict()))


def _hex(value: Any, size: int, what: str) -> bytes:
    if not isinstance(value, str) or len(value) != 2 * size:
        raise InvalidEncoding(f"{what} is {2 * size} hex digits")
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise InvalidEncoding(f"{what} is {2 * size} hex digits") from None
    if raw.hex() != value:
        raise InvalidEncoding(f"{what} is lowercase hex")
    return raw


@dataclass(frozen=True, slots=True)
class TrusteeEnrolment:
    """An enrolment key's signature over one registration (``{"public_key", "signature"}``, hex)."""

    public_key: bytes
    signature: bytes

    def __post_init__(self) -> None:
        if len(self.public_key) != 32 or len(self.signature) != 64:
            raise InvalidEncoding("an enrolment is a 32-byte Ed25519 key and a 64-byte signature")

    @classmethod
    def sign(
        cls, seed: bytes, *, base_hash: bytes, trustee: int, name: str, commitments: TrusteeCommitments
    ) -> TrusteeEnrolment:
        """Sign with the enrolment key whose 32-byte Ed25519 seed is ``seed``."""
        key = SigningKey(seed)
        sig = key.sign(enrolment_digest(base_hash, trustee, name, commitments)).signature
        return cls(bytes(key.verify_key), bytes(sig))

    def verify(
        self,
        *,
        pinned_key: bytes,
        base_hash: bytes,
        trustee: int,
        name: str,
        commitments: TrusteeCommitments,
    ) -> None:
        """Raise :class:`ThresholdError` (``trustee.enrolment``) unless this is ``pinned_key``'s valid
        signature over the registration."""
        subject = f"trustee {trustee}"
        if self.public_key != pinned_key:
            raise ThresholdError(
                "trustee.enrolment", "not the enrolment key pinned for this trustee", subject=subject
            )
        try:
            VerifyKey(self.public_key).verify(
                enrolment_digest(base_hash, trustee, name, commitments), self.signature
            )
        except (nacl.exceptions.BadSignatureError, nacl.exceptions.CryptoError, ValueError):
            raise ThresholdError(
                "trustee.enrolment", "the enrolment signature does not verify", subject=subject
            ) from None

    def to_dict(self) -> dict[str, str]:
        return {"public_key": self.public_key.hex(), "signature": self.signature.hex()}

    @classmethod
    def from_dict(cls, d: Any) -> TrusteeEnrolment:
        if not isinstance(d, dict) or set(d) != {"public_key", "signature"}:
            raise InvalidEncoding("an enrolment is {public_key, signature}")
        return cls(_hex(d["public_key"], 32, "enrolment public_key"), _hex(d["signature"], 64, "signature"))
