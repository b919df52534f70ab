"""The ledger package's one exception tree.

::

    LedgerError                      base of everything ledger/ raises
    ├── InvalidEncoding              bytes/hex/base64/note text from outside that do not decode to a valid
    │                                value (hash not 32 bytes, bad key, malformed note or record file)
    ├── InvalidEntry                 an append was refused: malformed JSON, wrong types, floats, oversized
    │                                entry, bad event type. Nothing was written.
    ├── NotFound                     an index, tree size or checkpoint the ledger does not have (yet)
    ├── StorageError                 the storage backend failed or holds something it must not; the append
    │                                or read was not acknowledged
    └── VerificationError            a check over well-formed values failed: ``check`` names which one
        ├── ProofError               a Merkle inclusion or consistency proof does not verify
        ├── SignatureError           a checkpoint signature or a witness (BLS) cosignature does not verify
        │   └── UnknownWitness       a cosignature names a witness the policy (the manifest) does not list
        ├── CosignatureConflict      a different cosignature by that witness of that checkpoint is stored
        ├── WitnessRefusal           a witness refuses to cosign
        │   ├── ForkError            the log shows a tree inconsistent with one the witness already signed
        │   └── RollbackError        the log shows a smaller tree than one the witness already signed
        └── RecordError              the election record (export or storage) fails its check; ``index`` is
                                     the first bad entry when one can be named

``str(err)`` is for developers; ``err.operator_message`` is the one-line text meant for an operator or
auditor (it names the check and, where known, the entry concerned).
"""

from __future__ import annotations

__all__ = [
    "CosignatureConflict",
    "ForkError",
    "InvalidEncoding",
    "InvalidEntry",
    "LedgerError",
    "NotFound",
    "ProofError",
    "RecordError",
    "RollbackError",
    "SignatureError",
    "StorageError",
    "UnknownWitness",
    "VerificationError",
    "WitnessRefusal",
]


class LedgerError(Exception):
    """Base class of every error raised by :mod:`ledger`."""

    @property
    def operator_message(self) -> str:
        return str(self)


class InvalidEncoding(LedgerError, ValueError):
    """Input bytes or text from outside do not encode a valid hash, key, signature, note or record."""


class InvalidEntry(LedgerError, ValueError):
    """An entry to append is refused (nothing was written)."""


class NotFound(LedgerError, LookupError):
    """The ledger has no such entry, tree size or checkpoint."""


class StorageError(LedgerError):
    """The storage backend failed; the operation was not acknowledged."""


class VerificationError(LedgerError):
    """A check failed. ``check`` is a short stable identifier; ``index`` the entry concerned, if any."""

    def __init__(self, check: str, message: str, *, index: int | None = None) -> None:
        self.check = check
        self.index = index
        self.message = message
        super().__init__(f"{check}: {message}" + (f" [entry {index}]" if index is not None else ""))

    @property
    def operator_message(self) -> str:
        where = f" (entry {self.index})" if self.index is not None else ""
        return f"check '{self.check}' failed{where}: {self.message}"


class ProofError(VerificationError):
    """A Merkle inclusion or consistency proof does not verify."""


class SignatureError(VerificationError):
    """A checkpoint signature or witness cosignature does not verify."""


class UnknownWitness(SignatureError):
    """A cosignature names a witness that is not configured (the manifest's witness list)."""


class CosignatureConflict(VerificationError):
    """The ledger already holds another cosignature by this witness of this checkpoint (BLS signatures are
    unique per key and message, so the stored, verified one is the only valid one)."""


class WitnessRefusal(VerificationError):
    """A witness refuses to cosign a checkpoint."""


class ForkError(WitnessRefusal):
    """The log presented a tree that does not extend the one the witness last signed."""


class RollbackError(WitnessRefusal):
    """The log showed a smaller tree, or an earlier signed time, than the witness last signed."""


class RecordError(VerificationError):
    """The election record fails its check (``index``: first bad entry, when one can be named)."""
