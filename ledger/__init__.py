"""tvote ledger: the append-only, hash-chained public bulletin board (built on crypto/ only).

Two subpackages, and what both build on:

* :mod:`ledger.record`: the election record's format, pure (no storage, no network): entries, signed
  checkpoints, cosignatures, the bounded JSON reader, the record's one writer (``RecordWriter``,
  ``seal_record``, ``archive_record``), its one reader (``open_record``, ``read_record``) and
  ``check_record``; with :mod:`ledger.events` (the record's names: event types, phases, payload keys);
* :mod:`ledger.log`: the running log: :class:`Ledger` (the sequencer, on SQLModel storage),
  :class:`StoredCheckpoint`, :class:`Witness` (the witness service, HTTP);
* :mod:`ledger.merkle` (RFC 9162 trees and proofs) and :mod:`ledger.files` (the atomic, durable file write
  that every package uses for keys, state and output files).

This package re-exports the running log's names lazily (``ledger.Ledger`` is ``ledger.log.Ledger``), so
that ``import ledger.record`` never loads SQLAlchemy. The exception tree is in ``ledger._errors``
(re-exported here).
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
    from .log import (
        Appended,
        ConsistencyProof,
        InclusionProof,
        Ledger,
        LedgerConfig,
        StoredCheckpoint,
        Witness,
    )

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

#: the running log's names, loaded from :mod:`ledger.log` when first asked for
_LAZY = frozenset(
    {
        "Appended",
        "ConsistencyProof",
        "InclusionProof",
        "Ledger",
        "LedgerConfig",
        "StoredCheckpoint",
        "Witness",
    }
)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from . import log

        return getattr(log, name)
    raise AttributeError(f"module 'ledger' has no attribute {name!r}")
