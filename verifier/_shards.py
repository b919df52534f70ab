"""V15 ``ballot.unique`` of a sliced run without a per-ballot index in the main process.

A serial run (the main process reads every entry itself) checks V15 ballot by ballot against the on-disk
index (:func:`verifier._unique.index_ballot`, :meth:`BallotIndex.first_seen`): the reference. When the
workers read the record by slices (:mod:`verifier._slices`), the main process does nothing per value:

1. each worker packs every ballot's V15 values (``ledger.record.ballot_unique_values``, then a cast
   ballot's authentication-evidence hash) into rows (:func:`pack_ballot`: ledger index, kind, position in
   the ballot, spoiled or cast, the value and where it sits) and partitions them into ``K`` shards by a
   CRC-32 of the value (a fixed function: every worker puts a value in the same shard), one ``bytes`` per
   shard and slice;
2. the main process appends each slice's shard blobs to the shard's temporary file (:class:`Shards`:
   ``K`` writes a slice, nothing per ballot), in ledger order;
3. after the pass each shard's bytes go to a worker (:func:`shard_repeats`; a Dask worker too: the bytes
   are the job, no shared filesystem), which finds the values that occur more than once and returns, for
   each later use, the problem text :func:`index_ballot` gives it; the evidence hashes used more than once
   come back as groups of ledger indices, because whether a ballot records its evidence depends on
   whether it is a replay, which another shard may say;
4. :meth:`Shards.finish` stores those problems in the index's ``v15`` table (few in a sound record; on
   disk in any), drops from the evidence groups the replays, and reports the failures in ledger order as
   a serial run reports them, with the same effects on the counting (a replay is not counted; a replay or
   a ballot that reuses evidence is not a counting row).

A shard holds about ``1/K`` of the values; ``K`` grows with the size of ``entries.jsonl``
(:func:`shard_count`), so each shard stays small enough for a worker's memory and the main process's
memory does not grow with the number of ballots.
"""

from __future__ import annotations

import os
import shutil
import struct
import tempfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Final

from ledger.record import UNIQUE_KINDS, UniqueValue

from ._checks import failure
from ._counting import BallotIndex
from ._exec import BatchExecutor
from ._report import Report
from ._state import State

__all__ = ["ShardRepeats", "Shards", "pack_ballot", "shard_count", "shard_repeats"]

#: kind codes of a row: the three of ``ledger.record.UNIQUE_KINDS``, then the evidence hash
KINDS: Final[tuple[str, ...]] = (*UNIQUE_KINDS, "evidence")
EVIDENCE: Final[int] = 3
_CODE: Final[dict[str, int]] = {kind: code for code, kind in enumerate(KINDS)}
#: a row: ledger index, position in the ballot's values, kind code, spoiled (1) or cast (0), then the
#: lengths of the value and of where it sits (UTF-8), followed by both
_ROW: Final[struct.Struct] = struct.Struct("<IIBBII")
SHARD_BYTES: Final[int] = 16 * 1024 * 1024  # of entries.jsonl per shard
MAX_SHARDS: Final[int] = 256


def shard_count(entries_size: int) -> int:
    """``K`` for an ``entries.jsonl`` of ``entries_size`` bytes (its values are a fraction of it)."""
    return max(1, min(MAX_SHARDS, entries_size // SHARD_BYTES + 1))


def pack_ballot(
    parts: list[bytearray], index: int, spoiled: bool, values: Sequence[UniqueValue], evidence: str | None
) -> None:
    """Append one ballot's rows to ``parts`` (one per shard): ``values`` in their order, then ``evidence``
    (a cast ballot's evidence hash, if its ``ballot_hash`` is a string: :func:`index_ballot` checks it only
    then)."""
    k = len(parts)
    sp = 1 if spoiled else 0
    rows: list[tuple[str, str, str]] = [(v.kind, v.value, v.where) for v in values]
    if evidence is not None:
        rows.append(("evidence", evidence, ""))
    for pos, (kind, value, where) in enumerate(rows):
        vb = value.encode("utf-8", "surrogatepass")
        wb = where.encode("utf-8", "surrogatepass")
        parts[zlib.crc32(vb) % k] += _ROW.pack(index, pos, _CODE[kind], sp, len(vb), len(wb)) + vb + wb


@dataclass
class ShardRepeats:
    """What a shard says: ``problems`` as ``(index, 0 within the ballot / 1 an earlier ballot, position,
    text, replay, spoiled)``; ``evidence``: the ledger indices (ascending) of each evidence hash used more
    than once."""

    problems: list[tuple[int, int, int, str, int, int]] = field(default_factory=list)
    evidence: list[list[int]] = field(default_factory=list)


def _describe(kind: int, where: bytes) -> str:
    return UniqueValue(UNIQUE_KINDS[kind], "", where.decode("utf-8", "surrogatepass")).describe()


def shard_repeats(blob: bytes) -> ShardRepeats:
    """The repeated values of one shard (module docstring, step 3): the worker's job."""
    first: dict[tuple[int, bytes], tuple[int, int, int, bytes]] = {}
    groups: dict[tuple[int, bytes], list[tuple[int, int, int, bytes]]] = {}
    pos, n, size = 0, len(blob), _ROW.size
    while pos < n:
        index, at, kind, sp, lv, lw = _ROW.unpack_from(blob, pos)
        pos += size
        value = blob[pos : pos + lv]
        where = blob[pos + lv : pos + lv + lw]
        pos += lv + lw
        row = (index, at, sp, where)
        prev = first.setdefault((kind, value), row)
        if prev is not row:
            groups.setdefault((kind, value), [prev]).append(row)
    out = ShardRepeats()
    for (kind, _), rows in groups.items():
        rows.sort()
        if kind == EVIDENCE:
            out.evidence.append(sorted({r[0] for r in rows}))
            continue
        earliest = rows[0][0]
        first_in: dict[int, tuple[int, int, int, bytes]] = {}
        for row in rows:
            index, at, sp, where = row
            mine = first_in.setdefault(index, row)
            if mine is not row:  # index_ballot's repeats_within
                text = f"{_describe(kind, where)} repeats the {_describe(kind, mine[3])} within this ballot"
                out.problems.append((index, 0, at, text, 0, sp))
            if index != earliest:  # index_ballot's first_seen names the earliest use
                if kind == 0:
                    text = f"ballot_hash already published at entry {earliest} (replay)"
                else:
                    text = f"{_describe(kind, where)} already used at entry {earliest}"
                out.problems.append((index, 1, at, text, 1 if kind == 0 else 0, sp))
    return out


class Shards:
    """The main process's side (module docstring, steps 2 and 4): ``count`` temporary shard files."""

    def __init__(self, count: int) -> None:
        self.count = count
        self._dir = tempfile.mkdtemp(prefix="tvote-verify-v15-")
        self._files = [open(os.path.join(self._dir, f"{k}.bin"), "wb") for k in range(count)]

    def add(self, parts: Sequence[bytes]) -> None:
        """Append one slice's shard blobs (``count`` of them, in ledger order)."""
        for f, blob in zip(self._files, parts, strict=True):
            if blob:
                f.write(blob)

    def _blobs(self) -> Iterator[bytes]:
        for k, f in enumerate(self._files):
            f.close()
            path = os.path.join(self._dir, f"{k}.bin")
            with open(path, "rb") as r:
                blob = r.read()
            os.unlink(path)
            yield blob

    def finish(self, report: Report, st: State, index: BallotIndex, ex: BatchExecutor) -> None:
        """Steps 3 and 4: the shards checked by the workers, the failures reported in ledger order."""

        def take(results: Iterator[ShardRepeats]) -> None:
            for r in results:
                index.add_problems(r.problems)
                index.add_evidence_groups(r.evidence)

        for blob in self._blobs():
            take(ex.submit(shard_repeats, blob))
        take(ex.drain())
        drop: list[int] = []
        for i, problems, replay, spoiled, evidence in index.problems():
            if problems:
                more = f"; and {len(problems) - 3} more" if len(problems) > 3 else ""
                report.add(failure("ballot.unique", "; ".join(problems[:3]) + more, entry=i))
            if replay:  # index_ballot stops at a replay: not counted, evidence not looked at
                if spoiled:
                    st.spoiled -= 1
                else:
                    st.cast -= 1
                    drop.append(i)
                continue
            if evidence is not None:
                why = f"authentication evidence already used at entry {evidence}"
                report.add(failure("ballot.unique", why, entry=i))
                drop.append(i)
        index.drop_cast(drop)

    def close(self) -> None:
        for f in self._files:
            f.close()
        shutil.rmtree(self._dir, ignore_errors=True)
