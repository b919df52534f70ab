"""What the verification run carries from entry to entry: the options, the state, the event handlers.

The engine (:mod:`verifier._engine`) streams the entries once; each event type other than a ballot is
handled by the module of its checks (:mod:`verifier._ceremony`, :mod:`verifier._phases`,
:mod:`verifier._tally`), which registers an :class:`Event` for it: the handler, and the check a payload
that does not decode fails.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from crypto import (
    Ciphertext,
    Complaint,
    ComplaintAnswer,
    EncryptedShare,
    JointKey,
    PartialDecryption,
    TrusteeCommitments,
)
from crypto.hazmat import IDENTITY
from ledger.events import BOUND_KEYS

from ._checks import fail
from ._manifest import ElectionInfo
from ._pins import OfficialPins
from ._report import Report

__all__ = [
    "BOUND",
    "HEX64",
    "ZERO",
    "Event",
    "Handler",
    "Kiosk",
    "Options",
    "ProgressFn",
    "State",
    "read_selection_map",
    "strip_binding",
]

ZERO: Final[Ciphertext] = Ciphertext(IDENTITY, IDENTITY)
HEX64: Final[re.Pattern[str]] = re.compile(r"[0-9a-f]{64}")
#: the keys binding every entry after the manifest to its election
BOUND: Final[frozenset[str]] = BOUND_KEYS  # every payload after the manifest (ledger.events)


@dataclass(frozen=True)
class Options:
    workers: int = 1
    scheduler: str | None = None
    dask_client: Any = None
    batch_size: int = 256
    #: the ballot engine (``--engine``): ``"auto"`` (native when installed), ``"python"`` or ``"native"``
    engine: str = "auto"
    #: accept a record that stops before the result (an audit during voting); default: fail closed
    partial: bool = False
    #: commission root certificates (``cryptography.x509.Certificate``) for the result PDF (V22)
    pdf_trust_roots: tuple[Any, ...] = ()
    pdf_path: Path | None = None
    #: auditor pins, obtained out of band: the log's verifier key (signed-note vkey) and the base hash
    log_key: str | None = None
    base_hash: str | None = None
    #: UNSAFE, development records only: a manifest with no witnesses (quorum 0) is noted as unwitnessed
    #: instead of failing V5 (``--unsafe-allow-unwitnessed``)
    unsafe_allow_unwitnessed: bool = False
    #: the official mode (V27): the pins file published out of band (``verifier._pins.load_pins``)
    pins: OfficialPins | None = None


ProgressFn = Callable[[int, int], None]


@dataclass
class Kiosk:
    """An enrolled polling-place kiosk, as the entries so far show it (V30, V31)."""

    #: its ``kiosk.enrolled`` entry and Ed25519 public key
    entry: int
    public_key: bytes
    #: its ``kiosk.revoked`` entry, once revoked
    revoked: int | None = None
    #: its last opened session (0 before the first) and that session's ``kiosk.opened`` entry while it is open
    session: int = 0
    open_entry: int | None = None
    #: kiosk ballots of the open session so far (``kiosk.closed.ballots_cast`` must equal it)
    ballots: int = 0


@dataclass
class State:
    info: ElectionInfo | None = None
    rank: int = -1
    seen_once: set[str] = field(default_factory=set)
    commitments: dict[int, TrusteeCommitments] = field(default_factory=dict)
    registered_entry: dict[int, int] = field(default_factory=dict)
    shares: dict[tuple[int, int], EncryptedShare] = field(default_factory=dict)
    complaints: list[tuple[int, Complaint]] = field(default_factory=list)
    answers: dict[tuple[int, int], ComplaintAnswer] = field(default_factory=dict)
    disqualified: dict[int, int] = field(default_factory=dict)
    joint_key: JointKey | None = None
    roll_size: int | None = None
    roll_root: bytes | None = None
    roll_entry: int | None = None
    cast: int = 0
    spoiled: int = 0
    sums: dict[tuple[str, str], Ciphertext] = field(default_factory=dict)
    tally_entry: int | None = None
    tally: dict[tuple[str, str], Ciphertext] | None = None
    published_counted_root: bytes | None = None
    partials: dict[int, tuple[int, dict[tuple[str, str], PartialDecryption]]] = field(default_factory=dict)
    excluded: dict[int, int] = field(default_factory=dict)
    result_entry: int | None = None
    result: dict[str, Any] | None = None
    declaration_entry: int | None = None
    declaration: dict[str, Any] | None = None
    entries: int = 0
    opened_at: dt.datetime | None = None
    #: the ``voting.opened`` entry (V8 sets it), and the ``booth.published`` entry and its digest (V29)
    opened_entry: int | None = None
    booth_entry: int | None = None
    booth_digest: str | None = None
    #: the end of voting in force: the manifest's ``closes``, moved by each ``voting.extended``
    voting_closes: dt.datetime | None = None
    #: the enrolled kiosks by id, the enrolled public keys (hex) with their kiosk, and whether the record
    #: holds any kiosk entry or kiosk ballot (else V30 and V31 are n/a)
    kiosks: dict[str, Kiosk] = field(default_factory=dict)
    kiosk_keys: dict[str, str] = field(default_factory=dict)
    kiosk_seen: bool = False


#: ``handler(report, state, entry index, event type, payload)``: records failures, raises ``CheckFailed``
#: where the entry cannot be taken further
Handler = Callable[[Report, State, int, str, dict[str, Any]], None]


@dataclass(frozen=True)
class Event:
    """How one event type is read: ``check`` is the check its payload fails when it does not decode."""

    check: str
    apply: Handler


def strip_binding(p: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in p.items() if k not in BOUND_KEYS}


def read_selection_map(
    obj: Any, info: ElectionInfo, parse: Callable[[Any], Any], check: str, i: int
) -> dict[tuple[str, str], Any]:
    if not isinstance(obj, dict) or set(obj) != {c.id for c in info.contests}:
        fail(check, "not exactly the manifest's contests", entry=i)
    out: dict[tuple[str, str], Any] = {}
    for c in info.contests:
        sel = obj[c.id]
        if not isinstance(sel, dict) or set(sel) != set(c.selections):
            fail(check, f"contest {c.id}: not exactly the manifest's selections", entry=i)
        for s in c.selections:
            out[(c.id, s)] = parse(sel[s])
    return out
