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
        ├── ThresholdError         trustee key generation, share or partial-decryption checks
        └── BatchError             a batch check found bad items: ``failures`` lists each one's index
                                   and the error its own (single) verification raises

``str(err)`` is for developers; ``err.operator_message`` is the one-line text meant for an operator or
auditor (it names the check and, where known, the object concerned).
"""

from __future__ import annotations

__all__ = [
    "BallotError",
    "BatchError",
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


class BatchError(VerificationError):
    """A batch verification found bad items.

    ``failures`` is a tuple of ``(index, error)`` in ascending index order, where ``error`` is exactly the
    :class:`VerificationError` (or :class:`InvalidEncoding`) that verifying that item alone raises, so a
    batch reports the same check names as one-by-one verification.
    """

    def __init__(self, failures: tuple[tuple[int, CryptoError], ...]) -> None:
        self.failures = failures
        first = ", ".join(f"#{i}: {e}" for i, e in failures[:3])
        more = f" (and {len(failures) - 3} more)" if len(failures) > 3 else ""
        super().__init__("batch", f"{len(failures)} item(s) failed: {first}{more}")
