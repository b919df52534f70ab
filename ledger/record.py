"""The record-reading side of the ledger (no storage, no SQLAlchemy): what a verifier imports.

* entry format: :class:`Entry`, limits and constants;
* bounded JSON input: :func:`parse_json` (the strict reader of every JSON text from outside),
  :func:`check_json_bounds` (size and nesting, checked before any decoder runs), :func:`json_depth`,
  ``MAX_JSON_DEPTH``; they raise :class:`InvalidEntry`;
* checkpoints as C2SP signed notes: :class:`Checkpoint`, :class:`SignedCheckpoint`, :class:`LogKey`,
  :class:`LogSigner`, :func:`parse_signed_note`;
* witness cosignatures (BLS): :class:`WitnessKey`, :class:`WitnessSigner`, :class:`WitnessPolicy`,
  :class:`CosignatureBundle`, :func:`cosign_message`, :func:`verify_cosignature`,
  :func:`aggregate_cosignatures`;
* the uniqueness rules of ballots (hash, nonce, every ciphertext pad), for intake and verifier alike:
  :func:`ballot_unique_values`, :func:`repeats_within`, :class:`UniqueValue`;
* the manifest's display-text rule (no control, format or invisible characters; bounded length), for the
  server's manifest model and the verifier alike: :func:`check_display_text`, :class:`TextRuleError`,
  ``MAX_NAME_CHARS``;
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
    dumps_header,
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
    MAX_JSON_DEPTH,
    MAX_SAFE_INTEGER,
    ZERO_HASH,
    Entry,
    canonical_json,
    check_json_bounds,
    from_hex,
    json_depth,
    parse_json,
)
from ._errors import (
    ForkError,
    InvalidEncoding,
    InvalidEntry,
    LedgerError,
    ProofError,
    RecordError,
    RollbackError,
    SignatureError,
    VerificationError,
)
from ._note import Checkpoint, LogKey, LogSigner, SignedCheckpoint, parse_signed_note
from ._text import MAX_NAME_CHARS, TextRuleError, check_display_text
from ._unique import UNIQUE_KINDS, UniqueKind, UniqueValue, ballot_unique_values, repeats_within

__all__ = [
    "ARCHIVE_PREFIX",
    "ENTRY_VERSION",
    "MAX_ENTRY_BYTES",
    "MAX_JSON_DEPTH",
    "MAX_NAME_CHARS",
    "MAX_SAFE_INTEGER",
    "RECORD_FORMAT",
    "RECORD_VERSION",
    "UNIQUE_KINDS",
    "ZERO_HASH",
    "Checkpoint",
    "CheckpointRecord",
    "CosignatureBundle",
    "Entry",
    "ForkError",
    "InvalidEncoding",
    "InvalidEntry",
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
    "TextRuleError",
    "UniqueKind",
    "UniqueValue",
    "VerificationError",
    "WitnessKey",
    "WitnessPolicy",
    "WitnessSigner",
    "aggregate_cosignatures",
    "ballot_unique_values",
    "canonical_json",
    "check_display_text",
    "check_json_bounds",
    "check_record",
    "check_sequence",
    "cosign_message",
    "dumps_header",
    "from_hex",
    "json_depth",
    "parse_json",
    "parse_signed_note",
    "read_record",
    "repeats_within",
    "verify_cosignature",
]
