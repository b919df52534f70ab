"""tvote ledger: the append-only, hash-chained public bulletin board (built on crypto/ only).

Public modules: :mod:`ledger.merkle` (RFC 9162 trees and proofs), :mod:`ledger.record` (entry format,
checkpoints, cosignatures, the election record and ``check_record``), :mod:`ledger.files` (the atomic,
durable file write that every package uses for keys, state and output files) and this package, whose
:class:`Ledger` (storage through SQLModel), :class:`StoredCheckpoint` and :class:`Witness` (the witness
service) are imported lazily so that ``import ledger.record`` never
loads SQLAlchemy. The exception tree is in ``ledger._errors`` (re-exported here).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._errors import (
    CosignatureConflict,
    ForkError,
    InvalidEncoding,
    InvalidEntry,
    LedgerError,
    NotFound,
    ProofError,
    RecordError,
    RollbackError,
    SignatureError,
    StorageError,
    UnknownWitness,
    VerificationError,
    WitnessRefusal,
)

if TYPE_CHECKING:
    from ._ledger import Appended, ConsistencyProof, InclusionProof, Ledger, LedgerConfig, StoredCheckpoint
    from ._witness import Witness

__all__ = [
    "Appended",
    "ConsistencyProof",
    "CosignatureConflict",
    "ForkError",
    "InclusionProof",
    "InvalidEncoding",
    "InvalidEntry",
    "Ledger",
    "LedgerConfig",
    "LedgerError",
    "NotFound",
    "ProofError",
    "RecordError",
    "RollbackError",
    "SignatureError",
    "StorageError",
    "StoredCheckpoint",
    "UnknownWitness",
    "VerificationError",
    "Witness",
    "WitnessRefusal",
]

_LAZY = {"Appended", "ConsistencyProof", "InclusionProof", "Ledger", "LedgerConfig", "StoredCheckpoint"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from . import _ledger

        return getattr(_ledger, name)
    if name == "Witness":  # the witness service's client (HTTP): loaded only when asked for
        from . import _witness

        return _witness.Witness
    raise AttributeError(f"module 'ledger' has no attribute {name!r}")
