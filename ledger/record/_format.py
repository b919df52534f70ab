"""The election record's format: its files, ``record.json`` (:class:`RecordHeader`) and the lines of
``checkpoints.jsonl`` (:class:`CheckpointRecord`), each with its canonical rendering and its strict parse.

See ``docs/record.md`` for the normative format. The one writer is :mod:`ledger.record._seal`, the one
reader :mod:`ledger.record._open`, the check :mod:`ledger.record._check`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Final

from .._errors import InvalidEncoding, InvalidEntry
from ._cosign import CosignatureBundle, WitnessKey, WitnessPolicy
from ._entry import canonical_json, from_hex, parse_json
from ._note import LogKey

__all__ = [
    "ARCHIVE_PREFIX",
    "CHECKPOINTS_FILE",
    "ENTRIES_FILE",
    "EXTRA_FILES",
    "RECORD_FILE",
    "RECORD_FILES",
    "RECORD_FORMAT",
    "RECORD_VERSION",
    "RESULT_FILE",
    "CheckpointRecord",
    "RecordHeader",
    "dumps_header",
    "parse_checkpoints",
    "parse_header",
]

RECORD_FORMAT: Final[str] = "tvote-election-record"
RECORD_VERSION: Final[int] = 3  # 2: issued_at is the note's signed time line; 3: protocol v2 (ristretto255)
ARCHIVE_PREFIX: Final[str] = "tvote-record"
RECORD_FILE: Final[str] = "record.json"
ENTRIES_FILE: Final[str] = "entries.jsonl"
CHECKPOINTS_FILE: Final[str] = "checkpoints.jsonl"
#: the signed result declaration (``result.declaration``, docs/events.md), beside the ledger's three files
RESULT_FILE: Final[str] = "result.pdf"
#: the files of every record, in the order the archive holds them (docs/record.md §1)
RECORD_FILES: Final[tuple[str, ...]] = (RECORD_FILE, CHECKPOINTS_FILE, ENTRIES_FILE)
#: the files a record may hold besides them (checked by the verifier, not by this format)
EXTRA_FILES: Final[tuple[str, ...]] = (RESULT_FILE,)
MAX_HEADER_BYTES: Final[int] = 1 << 20
MAX_CHECKPOINT_LINE: Final[int] = 1 << 20


def _strict_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        obj = parse_json(raw)
    except InvalidEntry as e:
        raise InvalidEncoding(f"{what}: {e}") from None
    if not isinstance(obj, dict):
        raise InvalidEncoding(f"{what} must be a JSON object")
    return obj


def _int(v: Any, what: str) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise InvalidEncoding(f"{what} must be a non-negative integer")
    return v


@dataclass(frozen=True, slots=True)
class RecordHeader:
    """``record.json``: what is needed to check everything else."""

    log_key: LogKey
    policy: WitnessPolicy
    entry_count: int
    checkpoint_count: int

    @property
    def origin(self) -> str:
        return self.log_key.name

    def to_json(self) -> dict[str, Any]:
        return {
            "checkpoint_count": self.checkpoint_count,
            "entry_count": self.entry_count,
            "entry_version": 1,
            "format": RECORD_FORMAT,
            "hash": "sha256",
            "log_key": self.log_key.vkey,
            "origin": self.origin,
            "quorum": self.policy.quorum,
            "version": RECORD_VERSION,
            "witnesses": [w.to_json() for w in self.policy.witnesses],
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> RecordHeader:
        want = {
            "checkpoint_count",
            "entry_count",
            "entry_version",
            "format",
            "hash",
            "log_key",
            "origin",
            "quorum",
            "version",
            "witnesses",
        }
        if obj.get("format") != RECORD_FORMAT:
            raise InvalidEncoding("not a tvote election record")
        if obj.get("version") != RECORD_VERSION:
            raise InvalidEncoding(f"unsupported record version {obj.get('version')!r}")
        if set(obj) != want or obj["hash"] != "sha256" or obj["entry_version"] != 1:
            raise InvalidEncoding("record.json has missing, unknown or unsupported fields")
        key = LogKey.from_vkey(obj["log_key"])
        if obj["origin"] != key.name:
            raise InvalidEncoding("record origin does not match the log key name")
        if not isinstance(obj["witnesses"], list):
            raise InvalidEncoding("witnesses must be a list")
        policy = WitnessPolicy(tuple(WitnessKey.from_json(w) for w in obj["witnesses"]), obj["quorum"])
        return cls(
            key,
            policy,
            _int(obj["entry_count"], "entry_count"),
            _int(obj["checkpoint_count"], "checkpoint_count"),
        )


@dataclass(frozen=True, slots=True)
class CheckpointRecord:
    """One line of ``checkpoints.jsonl`` (parsed, not yet verified)."""

    size: int
    root: bytes
    note: str
    issued_at: int
    consistency_from: int | None = None
    consistency_proof: tuple[bytes, ...] = field(default=(), repr=False)
    cosignatures: CosignatureBundle | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "consistency": None
            if self.consistency_from is None
            else {
                "from_size": self.consistency_from,
                "proof": [p.hex() for p in self.consistency_proof],
            },
            "cosignatures": None if self.cosignatures is None else self.cosignatures.to_json(),
            "issued_at": self.issued_at,
            "note": self.note,
            "root": self.root.hex(),
            "size": self.size,
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> CheckpointRecord:
        if set(obj) != {"consistency", "cosignatures", "issued_at", "note", "root", "size"}:
            raise InvalidEncoding("checkpoint line has missing or unknown fields")
        cons = obj["consistency"]
        cfrom: int | None = None
        proof: tuple[bytes, ...] = ()
        if cons is not None:
            if not isinstance(cons, dict) or set(cons) != {"from_size", "proof"}:
                raise InvalidEncoding("consistency must have exactly from_size and proof")
            if not isinstance(cons["proof"], list) or len(cons["proof"]) > 128:
                raise InvalidEncoding("consistency proof must be a list of at most 128 hashes")
            cfrom = _int(cons["from_size"], "from_size")
            proof = tuple(from_hex(p, 32, "consistency proof hash") for p in cons["proof"])
        if not isinstance(obj["note"], str):
            raise InvalidEncoding("note must be text")
        bundle = None if obj["cosignatures"] is None else CosignatureBundle.from_json(obj["cosignatures"])
        return cls(
            _int(obj["size"], "size"),
            from_hex(obj["root"], 32, "root"),
            obj["note"],
            _int(obj["issued_at"], "issued_at"),
            cfrom,
            proof,
            bundle,
        )

    def line(self) -> bytes:
        return canonical_json(self.to_json()) + b"\n"


def dumps_header(header: RecordHeader) -> bytes:
    """``record.json``'s bytes: pretty-printed, sorted keys, ASCII (the verifier requires exactly these)."""
    return json.dumps(header.to_json(), indent=2, sort_keys=True, ensure_ascii=True).encode() + b"\n"


def parse_header(raw: bytes) -> RecordHeader:
    """Parse ``record.json`` (bounded, strict); raise :class:`InvalidEncoding`."""
    if len(raw) > MAX_HEADER_BYTES:
        raise InvalidEncoding("record.json too large")
    return RecordHeader.from_json(_strict_object(raw, "record.json"))


def parse_checkpoints(raw: bytes) -> tuple[CheckpointRecord, ...]:
    """Parse ``checkpoints.jsonl``: every line bounded, strictly parsed and canonical; raise
    :class:`InvalidEncoding`."""
    cps: list[CheckpointRecord] = []
    for k, line in enumerate(raw.split(b"\n")[:-1] if raw else []):
        if len(line) > MAX_CHECKPOINT_LINE:
            raise InvalidEncoding(f"checkpoints.jsonl line {k} too large")
        cp = CheckpointRecord.from_json(_strict_object(line, f"checkpoints.jsonl line {k}"))
        if cp.line() != line + b"\n":
            raise InvalidEncoding(f"checkpoints.jsonl line {k} is not canonical JSON")
        cps.append(cp)
    if raw and not raw.endswith(b"\n"):
        raise InvalidEncoding("checkpoints.jsonl must end with a newline")
    return tuple(cps)
