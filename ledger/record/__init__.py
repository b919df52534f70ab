"""The election record's format, pure (no storage, no SQLAlchemy, no network): what a verifier imports.

* entry format: :class:`Entry`, limits and constants (``MAX_DEPTH``: how deep a payload may nest);
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
* the counting rule (``last-internet-kiosk-overrides``) on a temporary on-disk index, for the server's tally
  and the verifier alike: :class:`CountingIndex`, :class:`CastRow`, :class:`DerivedBallot`,
  :class:`BallotStatus`, :class:`CountedSet` (the counts and ``counted_root``), :func:`counted_leaf`,
  :func:`reference_statuses`, ``REVOTE_RULE``;
* the manifest's display-text rule (no control, format or invisible characters; bounded length), for the
  server's manifest model and the verifier alike: :func:`check_display_text`, :class:`TextRuleError`,
  ``MAX_NAME_CHARS``;
* the election record (format: docs/record.md): its files (``RECORD_FILE``, ``ENTRIES_FILE``,
  ``CHECKPOINTS_FILE``, ``RESULT_FILE``, ``RECORD_FILES``, ``EXTRA_FILES``), :class:`RecordHeader`,
  :class:`CheckpointRecord` (``_format``); the one writer :class:`RecordWriter`, :func:`seal_record`,
  :func:`archive_record` (``_seal``); the one reader :func:`open_record`, :class:`OpenedRecord`,
  :func:`read_record`, :class:`Record` (``_open``, with the archive rules); the check
  :func:`check_record`, :func:`check_sequence`, :class:`RecordSummary`, and its parts for a check spread over
  processes :func:`line_facts` (:func:`canonical_line_facts`), :class:`EntryStream`,
  :func:`cosignature_verdicts`, ``LineFacts``, ``READ_LIMIT`` (``_check``).

The record's names (event types, phases, payload keys) are :mod:`ledger.events`.
"""

from __future__ import annotations

from .._errors import (
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
from ._check import (
    EntryStream,
    LineFacts,
    RecordSummary,
    canonical_line_facts,
    check_record,
    check_sequence,
    cosignature_verdicts,
    line_facts,
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
from ._counting import (
    REVOTE_RULE,
    BallotStatus,
    CastRow,
    CountedSet,
    CountingIndex,
    DerivedBallot,
    counted_leaf,
    reference_statuses,
)
from ._entry import (
    ENTRY_VERSION,
    MAX_DEPTH,
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
from ._format import (
    ARCHIVE_PREFIX,
    CHECKPOINTS_FILE,
    ENTRIES_FILE,
    EXTRA_FILES,
    RECORD_FILE,
    RECORD_FILES,
    RECORD_FORMAT,
    RECORD_VERSION,
    RESULT_FILE,
    CheckpointRecord,
    RecordHeader,
    dumps_header,
)
from ._note import Checkpoint, LogKey, LogSigner, SignedCheckpoint, parse_signed_note
from ._open import READ_LIMIT, OpenedRecord, Record, open_record, read_record
from ._seal import RecordWriter, archive_record, seal_record
from ._text import MAX_NAME_CHARS, TextRuleError, check_display_text
from ._unique import UNIQUE_KINDS, UniqueKind, UniqueValue, ballot_unique_values, repeats_within

__all__ = [
    "ARCHIVE_PREFIX",
    "CHECKPOINTS_FILE",
    "ENTRIES_FILE",
    "ENTRY_VERSION",
    "EXTRA_FILES",
    "MAX_DEPTH",
    "MAX_ENTRY_BYTES",
    "MAX_JSON_DEPTH",
    "MAX_NAME_CHARS",
    "MAX_SAFE_INTEGER",
    "READ_LIMIT",
    "RECORD_FILE",
    "RECORD_FILES",
    "RECORD_FORMAT",
    "RECORD_VERSION",
    "RESULT_FILE",
    "REVOTE_RULE",
    "UNIQUE_KINDS",
    "ZERO_HASH",
    "BallotStatus",
    "CastRow",
    "Checkpoint",
    "CheckpointRecord",
    "CosignatureBundle",
    "CountedSet",
    "CountingIndex",
    "DerivedBallot",
    "Entry",
    "EntryStream",
    "ForkError",
    "InvalidEncoding",
    "InvalidEntry",
    "LedgerError",
    "LineFacts",
    "LogKey",
    "LogSigner",
    "OpenedRecord",
    "ProofError",
    "Record",
    "RecordError",
    "RecordHeader",
    "RecordSummary",
    "RecordWriter",
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
    "archive_record",
    "ballot_unique_values",
    "canonical_json",
    "canonical_line_facts",
    "check_display_text",
    "check_json_bounds",
    "check_record",
    "check_sequence",
    "cosign_message",
    "cosignature_verdicts",
    "counted_leaf",
    "dumps_header",
    "from_hex",
    "json_depth",
    "line_facts",
    "open_record",
    "parse_json",
    "parse_signed_note",
    "read_record",
    "reference_statuses",
    "repeats_within",
    "seal_record",
    "verify_cosignature",
]
