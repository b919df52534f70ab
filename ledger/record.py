"""The record-reading side of the ledger (no storage, no SQLAlchemy): what a verifier imports.

* entry format: :class:`Entry`, :func:`parse_json`, limits and constants;
* checkpoints as C2SP signed notes: :class:`Checkpoint`, :class:`SignedCheckpoint`, :class:`LogKey`,
  :class:`LogSigner`, :func:`parse_signed_note`;
* witness cosignatures (BLS): :class:`WitnessKey`, :class:`WitnessSigner`, :class:`WitnessPolicy`,
  :class:`CosignatureBundle`, :func:`cosign_message`, :func:`verify_cosignature`,
  :func:`aggregate_cosignatures`;
* the election record: :func:`read_record`, :func:`check_record`, :func:`check_sequence`,
  :class:`RecordHeader`, :class:`CheckpointRecord`, :class:`RecordSummary` (format: docs/record.md).
"""

from __future__ import annotations

from ._check import (
    ARCHIVE_PREFIX,
    RECORD_FORMAT,
    RECORD_VERSION,
    CheckpointRecord,
    Record,
    RecordHeader,
    RecordSummary,
    check_record,
    check_sequence,
    read_record,
)
from ._cosign import (
    CosignatureBundle,
    WitnessKey,
    WitnessPolicy,
    WitnessSigner,
    aggregate_cosignatures,
    cosign_message,
    verify_cosignature,
)
from ._entry import (
    ENTRY_VERSION,
    MAX_ENTRY_BYTES,
    MAX_SAFE_INTEGER,
    ZERO_HASH,
    Entry,
    canonical_json,
    parse_json,
)
from ._errors import (
    ForkError,
    InvalidEncoding,
    LedgerError,
    ProofError,
    RecordError,
    RollbackError,
    SignatureError,
    VerificationError,
)
from ._note import Checkpoint, LogKey, LogSigner, SignedCheckpoint, parse_signed_note

__all__ = [
    "ARCHIVE_PREFIX",
    "ENTRY_VERSION",
    "MAX_ENTRY_BYTES",
    "MAX_SAFE_INTEGER",
    "RECORD_FORMAT",
    "RECORD_VERSION",
    "ZERO_HASH",
    "Checkpoint",
    "CheckpointRecord",
    "CosignatureBundle",
    "Entry",
    "ForkError",
    "InvalidEncoding",
    "LedgerError",
    "LogKey",
    "LogSigner",
    "ProofError",
    "Record",
    "RecordError",
    "RecordHeader",
    "RecordSummary",
    "RollbackError",
    "SignatureError",
    "SignedCheckpoint",
    "VerificationError",
    "WitnessKey",
    "WitnessPolicy",
    "WitnessSigner",
    "aggregate_cosignatures",
    "canonical_json",
    "check_record",
    "check_sequence",
    "cosign_message",
    "parse_json",
    "parse_signed_note",
    "read_record",
    "verify_cosignature",
]
