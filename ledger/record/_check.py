"""Checking an election record: :func:`check_sequence` (entries against signed checkpoints, streamed in
O(log n) memory) and :func:`check_record` (a whole record directory or archive).

See ``docs/record.md`` §6 for what is checked, in which order. This module never imports the storage layer.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._errors import InvalidEncoding, LedgerError, ProofError, RecordError
from ..merkle import CompactRange, fold, verify_consistency
from ._entry import ZERO_HASH, Entry
from ._format import CheckpointRecord, RecordHeader
from ._note import SignedCheckpoint
from ._open import read_record

__all__ = [
    "EntryStream",
    "LineFacts",
    "RecordSummary",
    "check_record",
    "check_sequence",
    "cosignature_verdicts",
    "line_facts",
]

#: What :class:`EntryStream` needs of one line: the entry's ``(hash, prev, index)``, or why the line is not a
#: canonical entry (the message of the ``entry-format`` error it then raises).
LineFacts = tuple[bytes, bytes, int] | str


@dataclass(frozen=True, slots=True)
class RecordSummary:
    """What a successful check established."""

    origin: str
    size: int
    root: bytes
    checkpoints: int
    witnessed_size: int
    signers: tuple[str, ...]


# --- the check ------------------------------------------------------------------------------------


def _fail(check: str, message: str, index: int | None = None) -> RecordError:
    return RecordError(check, message, index=index)


@dataclass(frozen=True, slots=True)
class _Pos:
    """What the first-bad-entry rule needs of one line: its hash, prev and index (None if malformed)."""

    hash: bytes
    prev: bytes
    index: int


def line_facts(line: bytes) -> tuple[LineFacts, dict[str, Any] | None]:
    """The per-line part of :func:`check_sequence`, which needs no other line: ``line`` as
    :meth:`Record.entry_lines` yields it (its canonical entry and ``\\n``; at most ``READ_LIMIT`` bytes) is
    parsed and re-serialised once (:meth:`Entry.parse`). Returns its :data:`LineFacts` and, for a canonical
    entry, the decoded entry object (for a reader that needs its payload too).

    A verifier may compute these for slices of the record in other processes and feed them, in order, to one
    :class:`EntryStream`: the check is then exactly :func:`check_sequence`'s (:func:`canonical_line_facts`
    for a line whose text the caller has found canonical already)."""
    try:
        if not line.endswith(b"\n"):
            raise InvalidEncoding("line does not end with a newline")
        e, obj = Entry.parse(line[:-1])
    except LedgerError as err:
        return str(err), None
    return (e.hash, e.prev, e.index), obj


def canonical_line_facts(text: bytes, leaf: bytes) -> tuple[LineFacts, dict[str, Any]] | None:
    """:func:`line_facts` of the line ``text`` + ``\\n`` when the caller has found ``text`` canonical, with
    ``leaf`` its leaf hash (:meth:`Entry.parse_canonical`, whose precondition the caller vouches for: a
    native engine's ``crypto.BallotEngine.canonical_leaf_hashes``): only the entry's envelope is checked.
    None if the envelope is refused: :func:`line_facts` then words why."""
    try:
        e, obj = Entry.parse_canonical(text, leaf)
    except LedgerError:
        return None
    return (e.hash, e.prev, e.index), obj


class EntryStream:
    """One pass over the entry lines keeping O(log n) state: a sliding window of four positions for the
    first-bad-entry rule (docs/record.md §6) and the Merkle compact range (right border of complete
    subtrees) from which the root at every checkpoint size is taken as the stream passes it.

    :meth:`push` takes each line's :func:`line_facts` in order and raises :class:`RecordError` at the first
    bad entry; :meth:`summary` then checks the checkpoints (:func:`check_sequence` is this with each line's
    facts computed as it goes)."""

    def __init__(self, want_roots: Iterable[int]) -> None:
        self.want = set(want_roots)
        self.roots: dict[int, bytes] = {}
        self.tree = CompactRange()
        self.window: list[_Pos | None] = []  # positions n-4 .. n-1 (fewer at the start)
        self.n = 0
        self.why = ""
        if 0 in self.want:
            self.roots[0] = fold([])

    def _at(self, i: int) -> _Pos | None:
        return self.window[i - self.n + len(self.window)]

    def _hash_before(self, i: int) -> bytes:  # the hash the entry at i must name as prev
        if i == 0:
            return ZERO_HASH
        before = self._at(i - 1)
        assert before is not None  # position i-1 was judged good before i is judged
        return before.hash

    def _judge(self, i: int) -> None:
        """Raise if position ``i`` is the first bad entry. Needs positions i-2 .. i+1 (i+1 if read)."""
        cur = self._at(i)
        if cur is None:
            raise _fail("entry-format", self.why, i)
        if cur.index != i:
            before = self._at(i - 1) if i >= 1 else None
            if before is not None and before.hash == cur.hash:
                raise _fail("entry-duplicate", "entry repeats the previous entry", i)
            if i >= 1 and cur.index == i - 1 and cur.prev == self._hash_before(i - 1):
                raise _fail("entry-inserted", "the next entry chains to the entry before this one", i - 1)
            raise _fail("entry-index", f"entry at position {i} carries index {cur.index}", i)
        if cur.prev != self._hash_before(i):
            if i == 0:
                raise _fail("entry-chain", "entry 0 must name the all-zero hash as prev", 0)
            nxt = self._at(i + 1) if i + 1 < self.n else None
            if nxt is not None and nxt.index == i + 1 and nxt.prev == cur.hash:
                raise _fail("entry-chain", "entry does not hash to the prev its successor names", i - 1)
            if i + 1 < self.n:
                raise _fail("entry-chain", "entry's prev does not name the previous entry", i)
            raise _fail("entry-chain", "entry does not hash to the prev its successor names", i - 1)

    def push(self, facts: LineFacts) -> None:
        pos: _Pos | None
        if isinstance(facts, str):
            pos, self.why = None, facts
        else:
            pos = _Pos(*facts)
        self.window.append(pos)
        if len(self.window) > 4:
            del self.window[0]
        self.n += 1
        if self.n >= 2:
            self._judge(self.n - 2)
        if pos is None:
            self._judge(self.n - 1)  # raises: nothing after a malformed line matters
            return
        self.tree.append(pos.hash)
        if self.n in self.want:
            self.roots[self.n] = self.tree.root()

    def extend(self, facts: Iterable[LineFacts]) -> None:
        """:meth:`push` of each of ``facts`` in turn (the same state, the same error), quicker for a run of
        sound entries: an entry that names the one before as prev and the next index after a sound one is
        judged sound without the window (what :meth:`_judge` would find), so only its hash is folded in."""
        run: list[tuple[bytes, bytes, int]] = []  # appended by the quick path, not yet in the window
        last: tuple[bytes, bytes, int] | None = None  # the last entry in, if it is known to be judged sound
        try:
            for f in facts:
                if last is not None and type(f) is tuple and f[1] == last[0] and f[2] == last[2] + 1:
                    self.n += 1
                    self.tree.append(f[0])
                    if self.n in self.want:
                        self.roots[self.n] = self.tree.root()
                    run.append(f)
                    last = f
                    continue
                if run:
                    self._settle(run)
                self.push(f)
                last = None
                if type(f) is tuple:  # sound if at its position and chained to the entry before
                    before = self._at(self.n - 2) if self.n >= 2 else None
                    want = ZERO_HASH if self.n == 1 else None if before is None else before.hash
                    if f[2] == self.n - 1 and f[1] == want:
                        last = f
        finally:
            if run:
                self._settle(run)

    def _settle(self, run: list[tuple[bytes, bytes, int]]) -> None:
        self.window = (self.window + [_Pos(*f) for f in run[-4:]])[-4:]
        run.clear()

    def finish(self) -> None:
        if self.n:
            self._judge(self.n - 1)

    def summary(
        self,
        header: RecordHeader,
        checkpoints: Sequence[CheckpointRecord],
        *,
        live: bool = False,
        cosignatures: Sequence[str | None] | None = None,
    ) -> RecordSummary:
        """After the last line: the rest of :func:`check_sequence` (the last entry judged, the count, every
        checkpoint); ``checkpoints`` are those whose sizes the stream was made with. ``cosignatures``: their
        :func:`cosignature_verdicts`, if another process computed them already."""
        return _summary(self, header, checkpoints, live, cosignatures)


def cosignature_verdicts(header: RecordHeader, checkpoints: Sequence[CheckpointRecord]) -> list[str | None]:
    """Each checkpoint's witness cosignature check (BLS pairings: the costly part of the checkpoint checks,
    and independent of the entries, so another process can run it beside the pass): ``None`` if it
    verifies (or there is none), else the error's text. A checkpoint whose own signature fails gets
    ``None``: the check stops at its signature first."""
    out: list[str | None] = []
    for cp in checkpoints:
        try:
            signed = SignedCheckpoint.verify(cp.note, header.log_key)
        except LedgerError:
            out.append(None)
            continue
        try:
            if cp.cosignatures is not None:
                cp.cosignatures.verify(signed.body, header.policy)
        except LedgerError as e:
            out.append(str(e))
            continue
        out.append(None)
    return out


def check_sequence(
    header: RecordHeader,
    lines: Iterable[bytes],
    checkpoints: Sequence[CheckpointRecord],
    *,
    live: bool = False,
) -> RecordSummary:
    """Check entries (one canonical entry + ``\\n`` per item, in order) against signed checkpoints.

    ``lines`` is consumed once, keeping O(log n) hashes (memory does not grow with the number of
    entries): each line is parsed and re-serialised once, chained to the previous one, and folded into
    the Merkle compact range, from which the root at each checkpoint's size is taken as the stream
    passes it. ``live=True`` is the storage check of a running log: entries after the newest checkpoint
    are allowed (they are checked for format and chain only) and the newest checkpoint need not be
    witnessed yet.
    """
    stream = EntryStream(cp.size for cp in checkpoints)
    for line in lines:
        stream.push(line_facts(line)[0])
    return stream.summary(header, checkpoints, live=live)


def _summary(
    stream: EntryStream,
    header: RecordHeader,
    checkpoints: Sequence[CheckpointRecord],
    live: bool,
    cosignatures: Sequence[str | None] | None = None,
) -> RecordSummary:
    if cosignatures is not None and len(cosignatures) != len(checkpoints):
        raise ValueError("one cosignature verdict per checkpoint")
    stream.finish()
    n = stream.n
    if n != header.entry_count:
        raise _fail(
            "entry-count",
            f"record.json announces {header.entry_count} entries, found {n}",
            min(n, header.entry_count),
        )
    if not checkpoints and live:
        return RecordSummary(header.origin, n, b"", 0, 0, ())
    if not checkpoints:
        raise _fail("checkpoint-missing", "the record has no signed checkpoint", 0 if n else None)
    if len(checkpoints) != header.checkpoint_count:
        raise _fail("checkpoint-count", "record.json announces a different number of checkpoints")

    good_size = 0
    prev: CheckpointRecord | None = None
    prev_time = 0
    for j, cp in enumerate(checkpoints):
        where = f"checkpoint #{j} (size {cp.size})"
        try:
            signed = SignedCheckpoint.verify(cp.note, header.log_key)
        except LedgerError as e:
            raise _fail("checkpoint-signature", f"{where}: {e}") from e
        c = signed.checkpoint
        if (c.size, c.root) != (cp.size, cp.root):
            raise _fail("checkpoint-fields", f"{where}: size/root differ from the signed note")
        if c.time != cp.issued_at:
            raise _fail("checkpoint-fields", f"{where}: issued_at differs from the signed time {c.time}")
        if prev is not None and cp.size <= prev.size:
            raise _fail("checkpoint-order", f"{where}: sizes must strictly increase")
        if c.time < prev_time:
            raise _fail("checkpoint-order", f"{where}: signed time {c.time} precedes {prev_time}")
        if cp.size > n:
            raise _fail("entry-missing", f"{where} covers entries missing from the record", n)
        if stream.roots[cp.size] != cp.root:
            culprit = cp.size - 1 if cp.size == n else good_size
            raise _fail("entry-root", f"{where}: entries do not hash to the signed root", culprit)
        if prev is not None:
            if cp.consistency_from != prev.size:
                raise _fail("checkpoint-consistency", f"{where}: no consistency proof from size {prev.size}")
            try:
                verify_consistency(prev.size, cp.size, prev.root, cp.root, cp.consistency_proof)
            except (ProofError, InvalidEncoding) as e:
                raise _fail("checkpoint-consistency", f"{where}: {e}") from e
        elif cp.consistency_from is not None:
            raise _fail("checkpoint-consistency", f"{where}: the first checkpoint has no predecessor")
        if cp.cosignatures is not None and cosignatures is not None:
            if cosignatures[j] is not None:
                raise _fail("checkpoint-cosignature", f"{where}: {cosignatures[j]}")
        elif cp.cosignatures is not None:
            try:
                cp.cosignatures.verify(signed.body, header.policy)
            except LedgerError as e:
                raise _fail("checkpoint-cosignature", f"{where}: {e}") from e
        good_size, prev, prev_time = cp.size, cp, c.time
    assert prev is not None
    if live:
        return RecordSummary(
            header.origin,
            prev.size,
            prev.root,
            len(checkpoints),
            0,
            prev.cosignatures.signers if prev.cosignatures else (),
        )
    if prev.size != n:
        raise _fail(
            "entry-unsigned", f"entries from {prev.size} on are not covered by a checkpoint", prev.size
        )
    signers = prev.cosignatures.signers if prev.cosignatures is not None else ()
    if len(signers) < header.policy.quorum:
        raise _fail(
            "checkpoint-witnessed",
            f"the final checkpoint has {len(signers)} of {header.policy.quorum} witness cosignatures",
        )
    witnessed = max(
        (
            c.size
            for c in checkpoints
            if c.cosignatures is not None and len(c.cosignatures.signers) >= header.policy.quorum
        ),
        default=0,
    )
    return RecordSummary(header.origin, n, prev.root, len(checkpoints), witnessed, signers)


def check_record(path: str | Path) -> RecordSummary:
    """Re-check a whole record; raise RecordError (with ``index`` of the first bad entry) or return a summary.

    Checks: every entry's format and canonical form, index and hash chain; the Merkle root of every
    checkpoint recomputed from the entries; every checkpoint's Ed25519 note signature; consistency proofs
    between successive checkpoints; every cosignature bundle against the witness keys; the last
    checkpoint covers every entry and reaches the witness quorum.
    """
    try:
        rec = read_record(path)
    except InvalidEncoding as e:
        raise RecordError("record-format", str(e)) from e
    return check_sequence(rec.header, rec.entry_lines(), rec.checkpoints)
