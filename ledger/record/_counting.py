"""The counting rule of an election: one definition for the server's tally and the verifier (V17).

``docs/events.md``, "The counting rule (``revote_rule = "last-internet-kiosk-overrides"``)":

    Per voter alias: if the voter has any ``ballot.cast`` with ``channel = "kiosk"``, the **first** kiosk
    ballot counts and every internet ballot of that voter is *overridden* (a second kiosk ballot is
    refused by the server); otherwise the internet ballot with the highest ledger index counts and the
    earlier ones are *superseded*. Spoiled ballots never count. A ``ballot_hash`` appears at most once
    among ``ballot.cast`` entries (a replay is an error).

``tally.encrypted`` commits to the counted set by ``counted_root``: the RFC 9162 Merkle root over the leaves
``leaf_hash(bytes.fromhex(ballot_hash))`` of the counted ballots in ledger order (``docs/events.md`` row 13).

A million-ballot election must not need a million Python objects, in the server or in the verifier:
:class:`CountingIndex` keeps one row per cast ballot in a temporary SQLite file (the stdlib ``sqlite3``
module: no ORM) and derives the status of every ballot with one window query, streamed in ledger order;
:class:`CountedSet` folds those statuses into the counts and ``counted_root`` with a Merkle compact range
(O(log n) hashes). :func:`reference_statuses` is the slow, obviously correct statement of the same rule;
the tests cross-check both with Hypothesis (and the server's in-memory ``voting.service.count_ballots``).
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, Self

from ..merkle import CompactRange, leaf_hash

__all__ = [
    "REVOTE_RULE",
    "BallotStatus",
    "CastRow",
    "CountedSet",
    "CountingIndex",
    "DerivedBallot",
    "counted_leaf",
    "reference_statuses",
]

REVOTE_RULE: Final[str] = "last-internet-kiosk-overrides"
#: rows an index buffers before it writes them to its file (about 1 MB of Python objects)
INSERT_BUFFER: Final[int] = 10_000
#: SQLite's page cache of an index, in KiB (its default). The rule's queries read the rows in order: a
#: million rows are inserted, checked for a repeated hash and derived in about 12 s on one core of the
#: benchmark machine with this cache as with 16 MiB, which is 30 MB more resident memory at a million rows
CACHE_KIB: Final[int] = 2048


class BallotStatus(StrEnum):
    COUNTED = "counted"
    SUPERSEDED = "superseded"  # an earlier internet ballot of a voter who voted again
    OVERRIDDEN = "overridden"  # an internet ballot of a voter who voted at a kiosk
    EXTRA_KIOSK = "extra-kiosk"  # a second kiosk ballot: the server must have refused it


@dataclass(frozen=True, slots=True)
class CastRow:
    """What the rule reads of one ``ballot.cast`` entry: its ledger index and four payload fields."""

    index: int
    ballot_hash: str
    alias: str
    channel: str
    seq: int


@dataclass(frozen=True, slots=True)
class DerivedBallot:
    """One cast ballot with its derived status and its expected per-voter ``seq`` (1, 2, ... in ledger
    order)."""

    index: int
    ballot_hash: str
    status: BallotStatus
    seq: int
    expected_seq: int


def reference_statuses(rows: Iterable[CastRow]) -> dict[int, BallotStatus]:
    """The counting rule stated plainly (slow, in memory): ledger index -> status."""
    by_voter: dict[str, list[CastRow]] = {}
    for r in sorted(rows, key=lambda r: r.index):
        by_voter.setdefault(r.alias, []).append(r)
    out: dict[int, BallotStatus] = {}
    for ballots in by_voter.values():
        kiosk = [r for r in ballots if r.channel == "kiosk"]
        if kiosk:
            first = kiosk[0].index
            for r in ballots:
                if r.channel == "kiosk":
                    out[r.index] = BallotStatus.COUNTED if r.index == first else BallotStatus.EXTRA_KIOSK
                else:
                    out[r.index] = BallotStatus.OVERRIDDEN
        else:
            last = ballots[-1].index
            for r in ballots:
                out[r.index] = BallotStatus.COUNTED if r.index == last else BallotStatus.SUPERSEDED
    return out


class CountingIndex:
    """One row per cast ballot in a temporary SQLite file (deleted on :meth:`close`).

    ``schema``: SQL creating the caller's own tables in the same file (the verifier's V15 index), which it
    reaches through :attr:`db`. The file is in ``directory`` (default: the system's temporary directory).
    SQLite's page cache (and with it the memory its sorter uses before it spills to temporary files) is
    :data:`CACHE_KIB`, so memory does not grow with the rows."""

    def __init__(
        self, directory: str | None = None, *, prefix: str = "tvote-count-", schema: str = ""
    ) -> None:
        fd, self._path = tempfile.mkstemp(prefix=prefix, suffix=".sqlite", dir=directory)
        os.close(fd)
        self._db = sqlite3.connect(self._path)
        self._db.executescript(
            f"""
            PRAGMA journal_mode = OFF;
            PRAGMA synchronous = OFF;
            PRAGMA cache_size = -{CACHE_KIB};
            CREATE TABLE cast_ballot (idx INTEGER PRIMARY KEY, hash TEXT NOT NULL, alias TEXT NOT NULL,
                                      channel TEXT NOT NULL, seq INTEGER NOT NULL);
            """
            + schema
        )
        self._pending: list[tuple[int, str, str, str, int]] = []

    @property
    def db(self) -> sqlite3.Connection:
        return self._db

    def add_cast(self, row: CastRow) -> None:
        """Add a cast ballot's row (a second row with the same ledger index is ignored)."""
        self._pending.append((row.index, row.ballot_hash, row.alias, row.channel, row.seq))
        if len(self._pending) >= INSERT_BUFFER:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._db.executemany("INSERT OR IGNORE INTO cast_ballot VALUES (?, ?, ?, ?, ?)", self._pending)
            self._pending.clear()

    def drop_cast(self, indices: Iterable[int]) -> None:
        """Remove the rows of ``indices`` (the verifier drops a replay, a ballot whose evidence was used)."""
        self._flush()
        self._db.executemany("DELETE FROM cast_ballot WHERE idx = ?", [(i,) for i in indices])

    def repeated_hash(self) -> tuple[int, str] | None:
        """``(ledger index, ballot hash)`` of the first row whose ballot hash an earlier row has (a replay),
        or None."""
        self._flush()
        row = self._db.execute(
            """
            SELECT MIN(idx), hash FROM (SELECT idx, hash, ROW_NUMBER() OVER (PARTITION BY hash ORDER BY idx)
                                        AS k FROM cast_ballot) WHERE k = 2
            """
        ).fetchone()
        return None if row is None or row[0] is None else (int(row[0]), str(row[1]))

    def derived(self) -> Iterator[DerivedBallot]:
        """Every cast ballot in ledger order with its status under :data:`REVOTE_RULE`."""
        self._flush()
        self._db.execute("CREATE INDEX IF NOT EXISTS by_alias ON cast_ballot (alias, idx)")
        cur = self._db.execute(
            """
            SELECT idx, hash, channel, seq,
                   MIN(CASE WHEN channel = 'kiosk' THEN idx END) OVER w AS first_kiosk,
                   MAX(CASE WHEN channel = 'internet' THEN idx END) OVER w AS last_net,
                   ROW_NUMBER() OVER (PARTITION BY alias ORDER BY idx) AS expected_seq
            FROM cast_ballot
            WINDOW w AS (PARTITION BY alias)
            ORDER BY idx
            """
        )
        for idx, h, channel, seq, first_kiosk, last_net, expected_seq in cur:
            if first_kiosk is not None:
                if channel == "kiosk":
                    st = BallotStatus.COUNTED if idx == first_kiosk else BallotStatus.EXTRA_KIOSK
                else:
                    st = BallotStatus.OVERRIDDEN
            else:
                st = BallotStatus.COUNTED if idx == last_net else BallotStatus.SUPERSEDED
            yield DerivedBallot(idx, h, st, seq, expected_seq)

    def distinct_voters(self) -> int:
        self._flush()
        return int(self._db.execute("SELECT COUNT(DISTINCT alias) FROM cast_ballot").fetchone()[0])

    def close(self) -> None:
        try:
            self._db.close()
        finally:
            try:
                os.unlink(self._path)
            except OSError:
                pass

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def counted_leaf(ballot_hash: str) -> bytes:
    """The leaf of a counted ballot in ``counted_root``: ``leaf_hash(bytes.fromhex(ballot_hash))``; a hash
    that is not hex (which V14 reports) gives the leaf of its UTF-8 bytes, so no published root matches."""
    try:
        return leaf_hash(bytes.fromhex(ballot_hash))
    except ValueError:
        return leaf_hash(ballot_hash.encode())


class CountedSet:
    """The derived statuses folded in ledger order (:meth:`add`): the counts of ``tally.result`` and
    ``counted_root`` (:meth:`root`), in O(log n) hashes. A second kiosk ballot is cast but in no count."""

    __slots__ = ("_counts", "_tree")

    def __init__(self) -> None:
        self._tree = CompactRange()
        self._counts = dict.fromkeys(("cast", *BallotStatus), 0)

    def add(self, d: DerivedBallot) -> None:
        self._counts["cast"] += 1
        self._counts[d.status] += 1
        if d.status is BallotStatus.COUNTED:
            self._tree.append(counted_leaf(d.ballot_hash))

    def root(self) -> bytes:
        """``counted_root`` of the ballots added so far."""
        return self._tree.root()

    def count(self, what: str) -> int:
        """``"cast"`` or a :class:`BallotStatus` value: how many of the ballots added so far."""
        return self._counts[what]

    def summary(self, spoiled: int) -> dict[str, int]:
        """The counts ``tally.result`` publishes: cast, counted, superseded, overridden and ``spoiled``."""
        c = self._counts
        return {
            "cast": c["cast"],
            "counted": c[BallotStatus.COUNTED],
            "superseded": c[BallotStatus.SUPERSEDED],
            "overridden": c[BallotStatus.OVERRIDDEN],
            "spoiled": spoiled,
        }
