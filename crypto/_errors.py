"""The crypto package's one exception tree.

::

    CryptoError                    base of everything crypto/ raises
    ├── InvalidEncoding            bytes/hex that do not decode to a valid value (length, canonical form,
    │                              curve membership, subgroup, small order, range)
    ├── DecodingError              a bounded discrete log found no value within its bound (a tally or
    │                              plaintext larger than allowed, or a wrong decryption)
    └── VerificationError          a check over valid values failed: ``check`` names which one
        ├── ProofError             a zero-knowledge proof does not verify
        ├── BallotError            an encrypted ballot is malformed for its manifest, or a revealed
        │                          (challenged) ballot does not re-encrypt to what was published
        └── ThresholdError         trustee key generation, share or partial-decryption checks

``str(err)`` is for developers; ``err.operator_message`` is the one-line text meant for an operator or
auditor (it names the check and, where known, the object concerned).
"""

from __future__ import annotations

__all__ = [
    "BallotError",
    "CryptoError",
    "DecodingError",
    "InvalidEncoding",
    "ProofError",
    "ThresholdError",
    "VerificationError",
]


class CryptoError(Exception):
    """Base class of every error raised by :mod:`crypto`."""

    @property
    def operator_message(self) -> str:
        return str(self)


class InvalidEncoding(CryptoError, ValueError):
    """Input bytes or text do not encode a valid scalar, point or structure."""


class DecodingError(CryptoError):
    """A group element is not ``m·G`` for any ``m`` in the allowed range ``[0, bound]``."""


class VerificationError(CryptoError):
    """A check failed. ``check`` is a short stable identifier, ``subject`` what it concerned."""

    def __init__(self, check: str, message: str, *, subject: str | None = None) -> None:
        self.check = check
        self.subject = subject
        super().__init__(f"{check}: {message}" + (f" [{subject}]" if subject else ""))

    @property
    def operator_message(self) -> str:
        where = f" ({self.subject})" if self.subject else ""
        return f"check '{self.check}' failed{where}: {self.args[0]}"


class ProofError(VerificationError):
    """A zero-knowledge proof failed to verify."""


class BallotError(VerificationError):
    """An encrypted or revealed ballot is not well formed or does not match its proofs."""


class ThresholdError(VerificationError):
    """A trustee's commitment, share, proof or partial decryption failed its check."""
