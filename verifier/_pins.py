"""V27 record.pins: the official mode (``tvote-verify RECORD --pins FILE``).

The pins file (``docs/verifier.md``, "Official mode") is a small JSON document the commission publishes out
of band (gazette, web site, the witnesses, read out at the key ceremony)::

    {"format": "tvote-pins/1",
     "election_id": "<id>",
     "base_hash": "<64 hex>",                       # optional: pins the whole manifest
     "pins": {<the manifest's pins block>},         # optional
     "witnesses": {"quorum": q, "keys": [...]}}     # optional

At least one of ``base_hash`` and ``pins`` is required. Everything given must equal the record's manifest;
the record's log key (the key every checkpoint signature is checked against, V4) must be the pinned log key,
and the result PDF must be signed under the pinned commission root (checked in V22).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import rfc8785

from ._errors import CheckFailed, RecordUnreadable
from ._manifest import ElectionInfo
from ._report import Report

__all__ = ["PINS_FORMAT", "OfficialPins", "check_official_pins", "load_pins"]

PINS_FORMAT: Final[str] = "tvote-pins/1"
_KEYS: Final[frozenset[str]] = frozenset({"format", "election_id", "base_hash", "pins", "witnesses"})
_MAX_BYTES: Final[int] = 1_000_000


@dataclass(frozen=True, slots=True)
class OfficialPins:
    """A validated pins file."""

    election_id: str
    base_hash: str | None
    pins: dict[str, Any] | None
    witnesses: dict[str, Any] | None

    @property
    def log_key(self) -> str | None:
        return None if self.pins is None else str(self.pins["log_key"])

    @property
    def commission_root_sha256(self) -> str | None:
        return None if self.pins is None else str(self.pins["commission_root_sha256"])


def load_pins(path: str | Path) -> OfficialPins:
    """Read and validate a pins file; :class:`RecordUnreadable` (exit status 2) if it is not one."""
    p = Path(path)

    def bad(msg: str) -> RecordUnreadable:
        return RecordUnreadable(f"the pins file {p.name} {msg}", path=str(p))

    try:
        raw = p.read_bytes()
    except OSError as e:
        raise bad(f"cannot be read: {e.strerror}") from None
    if len(raw) > _MAX_BYTES:
        raise bad("is too large to be a pins file")
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise bad("is not JSON") from None
    if not isinstance(doc, dict) or doc.get("format") != PINS_FORMAT:
        raise bad(f"is not a {PINS_FORMAT} document")
    if set(doc) - _KEYS:
        raise bad(f"has unknown keys {sorted(set(doc) - _KEYS)}")
    eid, bh, pins, wit = doc.get("election_id"), doc.get("base_hash"), doc.get("pins"), doc.get("witnesses")
    if not isinstance(eid, str) or not eid:
        raise bad("names no election_id")
    if bh is None and pins is None:
        raise bad("pins neither base_hash nor pins")
    if bh is not None and not (isinstance(bh, str) and re.fullmatch(r"[0-9a-f]{64}", bh)):
        raise bad("has a base_hash that is not 64 lowercase hex digits")
    if pins is not None and not (
        isinstance(pins, dict)
        and isinstance(pins.get("log_key"), str)
        and isinstance(pins.get("commission_root_sha256"), str)
    ):
        raise bad("has a pins object without log_key and commission_root_sha256")
    if wit is not None and not isinstance(wit, dict):
        raise bad("has a witnesses value that is not an object")
    return OfficialPins(eid, bh, pins, wit)


def _same(a: Any, b: Any) -> bool:
    return bool(rfc8785.dumps(a) == rfc8785.dumps(b))


def check_official_pins(
    pins: OfficialPins, info: ElectionInfo, record_log_key: str | None, report: Report
) -> None:
    """V27 record.pins: "The pins file obtained out of band names this election; the manifest's base hash,
    pins and witnesses equal the file's; the log key named in the record ... and the result PDF's signing
    root (V22) are the pinned ones." (the PDF root is checked with V22, by :func:`verifier._ledger`)."""

    def bad(msg: str, entry: int | None = 0) -> None:
        report.add(CheckFailed(27, "record.pins", msg, entry=entry))

    if pins.election_id != info.election_id:
        bad(f"the record is of election {info.election_id!r}, the pins file of {pins.election_id!r}")
    if pins.base_hash is not None and pins.base_hash != info.base_hash.hex():
        bad("the manifest's base hash differs from the pinned base hash")
    if pins.pins is not None:
        if info.pins is None:
            bad("the manifest pins nothing, the pins file does")
        else:
            for name in sorted(set(pins.pins) | set(info.pins)):
                if not _same(pins.pins.get(name), info.pins.get(name)):
                    bad(f"the manifest's pins.{name} differs from the pinned one")
    if pins.witnesses is not None:
        manifest_witnesses = info.manifest.get("witnesses", {"quorum": 0, "keys": []})
        if not _same(pins.witnesses, manifest_witnesses):
            bad("the manifest's witnesses or quorum differ from the pinned ones")
    if pins.log_key is not None and record_log_key != pins.log_key:
        bad(
            "the record's log key (record.json, which every checkpoint signature is checked against) is not "
            "the pinned log key",
            entry=None,
        )
    report.passed("record.pins")
