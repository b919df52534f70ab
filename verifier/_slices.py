"""Slices of ``entries.jsonl``: the workers read and decode the ballots, the main process does not.

The main process cuts the rest of ``entries.jsonl`` (after the first ballot) into byte ranges that end at a
line boundary (:func:`plan_slices`: it seeks, reads the bytes and counts their newlines, which gives each
slice the ledger index of its first line; it never decodes a line) and ships each slice's **bytes** to a
worker, so a worker (a local process or a Dask worker) needs no copy of the record. The worker
(:func:`verify_slice`) splits the bytes into lines exactly as :meth:`RecordSource.lines` does, decodes each
line once, and returns

- each line's structure facts (``ledger.record.line_facts``: its parse, canonical form and hash; the decoded
  entry serves the semantic checks too), which the main process's ``verifier._ledger.StructureCheck`` feeds
  in order to the ledger's streaming check (V1-V6: chain, Merkle roots, checkpoints), so no process reads
  the whole file for them;
- every entry that is not a ballot (or that does not decode) as its raw line: the main process handles it
  as before (they are few: the ceremony, the kiosks, the phases, the tally);
- for each ballot entry only what the main process's cross-ballot checks need (:class:`BallotFacts`: flags,
  the counting row, a kiosk ballot's kiosk reference, the kiosk key the worker used and the failures of
  V12-V14, V16, V23 and V31 that the worker found);
- the slice's V15 values, packed into shards (:mod:`verifier._shards`);
- the homomorphic sum of the slice's cast ballots, already reduced (one ciphertext per selection).

The worker checks the ballots with the ballot context and the enrolled kiosk keys as they stood at the
first ballot (the *snapshot*). The main process replays the entries in ledger order; where its own state
at a ballot differs from the snapshot (a roll commitment or a kiosk enrolment after the first ballot: a
V8 or V31 failure in any sound record), it verifies that ballot again itself with the right context and
takes the worker's contribution out of the sum, so the report is exactly the one of a serial run.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Final, NamedTuple

from crypto import select_engine
from ledger.events import BASE_HASH, ELECTION_ID, EventType
from ledger.record import (
    MAX_DEPTH,
    READ_LIMIT,
    LineFacts,
    ballot_unique_values,
    canonical_line_facts,
    line_facts,
)

from . import _ballots
from ._errors import CheckFailed
from ._kiosk import kiosk_ref
from ._ledger import entry_of, parse_entry
from ._phases import BALLOT_TYPES
from ._shards import pack_ballot
from ._source import _MAX_LINE, load_json

__all__ = ["BallotFacts", "SliceResult", "is_ballot_line", "plan_slices", "slice_lines", "verify_slice"]

MAX_LINE: Final[int] = _MAX_LINE
MIN_SLICE: Final[int] = 64 * 1024
MAX_SLICE: Final[int] = 8 * 1024 * 1024


class BallotFacts(NamedTuple):
    """What the main process needs of one ballot entry (see the module docstring). A named tuple of flags,
    ints and the few strings the counting rule needs: it crosses a process boundary per ballot, and a tuple
    is the cheapest to unpickle."""

    entry_index: int  # the ledger index
    start: int  # byte offset of the line in entries.jsonl (to re-read it if the snapshot does not apply)
    end: int  # byte offset after the line
    etype: str
    bound: bool  # V7: the payload names this election's id and base hash
    hash_ok: bool  # its ballot_hash is a string (else V14 fails and the ballot is not indexed)
    #: a cast ballot's counting row ``(ballot_hash, voter_alias, channel, seq)``; None if it lacks one
    counting: tuple[str, str, str, int] | None
    #: V31: a cast ballot's ``channel`` and ``kiosk`` if it names either as a kiosk ballot, else None
    kiosk: dict[str, Any] | None
    kiosk_key: bytes | None
    failures: tuple[dict[str, Any], ...]
    summed: bool


@dataclass
class SliceResult:
    start: int  # the slice's bytes in entries.jsonl
    end: int
    #: in ledger order: ``(index, end offset, raw line)`` of an entry the main process handles itself, or the
    #: :class:`BallotFacts` of a ballot
    items: list[tuple[int, int, bytes] | BallotFacts] = field(default_factory=list)
    sums: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    #: V1-V6: each line's ``ledger.record.line_facts`` (hash, prev, index, or why it is no canonical entry),
    #: for the main process's ``verifier._ledger.StructureCheck``
    facts: list[LineFacts] = field(default_factory=list)
    #: V15: the slice's unique values, packed and partitioned into shards (``verifier._shards``)
    shards: list[bytes] = field(default_factory=list)


def is_ballot_line(line: bytes) -> bool:
    """Whether ``line`` decodes to a ballot entry (the main process asks it of the entries before the first
    ballot only: a few)."""
    try:
        obj = load_json(line)
    except ValueError:
        return False
    return isinstance(obj, dict) and obj.get("type") in BALLOT_TYPES


def slice_lines(data: bytes, start: int) -> Iterator[tuple[int, int, bytes]]:
    """``(start offset, end offset, line)`` for every line of ``data`` (which begins at byte ``start`` of the
    file and ends at a line boundary or the end of the file), cut as :meth:`RecordSource.lines` cuts them:
    a line is read up to ``_MAX_LINE`` bytes (a longer one yields its head)."""
    pos, n = 0, len(data)
    while pos < n:
        nl = data.find(b"\n", pos)
        end = n if nl < 0 else nl + 1
        line = data[pos : end if nl < 0 else nl]
        yield start + pos, start + end, line[:_MAX_LINE] if len(line) > _MAX_LINE else line
        pos = end


def plan_slices(
    f: BinaryIO, start: int, first_index: int, total: int, workers: int
) -> Iterator[tuple[int, int, bytes]]:
    """``(first ledger index, start offset, bytes)`` of consecutive slices of ``f`` from ``start`` to its
    end, each ending at a line boundary. Only seeks, reads and counts newlines."""
    size = max(MIN_SLICE, min(MAX_SLICE, (total - start) // max(1, 4 * workers) + 1))
    f.seek(start)
    pos, index = start, first_index
    while True:
        data = f.read(size)
        if not data:
            return
        if not data.endswith(b"\n"):
            data += f.readline()
        yield index, pos, data
        index += data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
        pos += len(data)


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


@_gc_paused()
def verify_slice(
    ctx: _ballots.BallotContext,
    kiosk_keys: Mapping[str, bytes],
    first_index: int,
    start: int,
    data: bytes,
    batch_size: int,
    shards: int,
) -> SliceResult:
    """The worker's part of a slice (module docstring): ``kiosk_keys`` are the enrolled keys by kiosk id at
    the snapshot; ``shards``: how many V15 shards (:func:`verifier._shards.shard_count`).

    Python's cyclic garbage collector is paused meanwhile: a slice decodes hundreds of thousands of JSON
    containers (no cycles; reference counting frees them), which would otherwise set it off again and again
    to scan the entries the slice still holds."""
    out = SliceResult(start, start + len(data))
    parts = [bytearray() for _ in range(shards)]
    pending: list[tuple[int, int, int, str, dict[str, Any], Any, bytes, bytes | None]] = []
    acc: dict[tuple[str, str], Any] = {}

    def verify() -> None:
        if not pending:
            return
        keys = {b[0]: b[7] for b in pending if b[7] is not None}
        r = _ballots.verify_batch(ctx, [(b[0], b[6]) for b in pending], keys, [b[5] for b in pending])
        found: dict[int, list[dict[str, Any]]] = {}
        for fl in r.failures:
            found.setdefault(int(fl["entry"]), []).append(fl)
        summed = set(r.summed)
        for i, s, e, etype, p, _, _, key in pending:
            out.items.append(_facts(ctx, parts, i, s, e, etype, p, key, tuple(found.get(i, ())), i in summed))
        for k, v in r.sums.items():
            prev = acc.get(k)
            acc[k] = v if prev is None else _add_hex(prev, v)
        pending.clear()

    lines = list(slice_lines(data, start))
    # the engine vouches for the canonical texts among the whole lines (the line and its newline, not cut
    # short): their leaf hashes; any other line, and one whose envelope is refused, is ledger.record's
    leaves = select_engine(ctx.engine).canonical_leaf_hashes(
        [line if e - s == len(line) + 1 else b"" for s, e, line in lines], MAX_DEPTH
    )
    for n, (s, e, line) in enumerate(lines):
        i = first_index + n
        leaf = None if leaves is None else leaves[n]
        vouched = None if leaf is None else canonical_line_facts(line, leaf)
        # else the line as the ledger's reader yields it (with its newline; a longer one's first piece)
        facts, obj = vouched or line_facts(data[s - start : min(e - start, s - start + READ_LIMIT)])
        out.facts.append(facts)
        try:
            # a canonical entry is decoded once, for both: load_json would give the same object
            etype, p = parse_entry(line, i) if obj is None else entry_of(obj, i)
            entry = {"type": etype, "payload": p}
        except CheckFailed:
            etype = ""
        if etype not in BALLOT_TYPES:
            verify()
            out.items.append((i, e, line))
            continue
        key = None
        if etype == EventType.BALLOT_CAST and p.get("channel") == "kiosk":
            ref = kiosk_ref(p.get("kiosk"))
            key = None if ref is None else kiosk_keys.get(ref[0])
        pending.append((i, s, e, etype, p, entry, line, key))
        if len(pending) >= batch_size:
            verify()
    verify()
    out.sums = acc
    out.shards = [bytes(b) for b in parts]
    return out


def _facts(
    ctx: _ballots.BallotContext,
    parts: list[bytearray],
    i: int,
    s: int,
    e: int,
    etype: str,
    p: dict[str, Any],
    key: bytes | None,
    failures: tuple[dict[str, Any], ...],
    summed: bool,
) -> BallotFacts:
    """One ballot's :class:`BallotFacts`; its V15 rows go to ``parts`` (what :func:`index_ballot` would
    record: nothing without a ballot_hash, the evidence hash of a cast ballot only)."""
    bh = p.get("ballot_hash")
    cast = etype == EventType.BALLOT_CAST
    counting: tuple[str, str, str, int] | None = None
    kiosk: dict[str, Any] | None = None
    if isinstance(bh, str):
        ev = None
        if cast:
            auth = p.get("auth")
            ev = auth.get("evidence_hash") if isinstance(auth, dict) else None
        pack_ballot(
            parts, i, not cast, ballot_unique_values(bh, p.get("ballot")), ev if isinstance(ev, str) else None
        )
    if cast:
        alias, channel, seq = p.get("voter_alias"), p.get("channel"), p.get("seq")
        if (
            isinstance(bh, str)
            and isinstance(alias, str)
            and channel in ("internet", "kiosk")
            and isinstance(seq, int)
        ):
            counting = (bh, alias, channel, seq) if isinstance(bh, str) else None
        if "kiosk" in p or channel == "kiosk":
            kiosk = {k: p[k] for k in ("channel", "kiosk") if k in p}
    bound = p.get(ELECTION_ID) == ctx.election_id and p.get(BASE_HASH) == ctx.election.base_hash.hex()
    return BallotFacts(i, s, e, etype, bound, isinstance(bh, str), counting, kiosk, key, failures, summed)


def _add_hex(x: tuple[str, str], y: tuple[str, str]) -> tuple[str, str]:
    from crypto import Point

    return (
        (Point.from_hex(x[0]) + Point.from_hex(y[0])).hex(),
        (Point.from_hex(x[1]) + Point.from_hex(y[1])).hex(),
    )
