"""The counting rule, re-derived from the ledger with bounded memory (V15 uniqueness, V17 counting rule).

``docs/events.md``, "The counting rule (``revote_rule = "last-internet-kiosk-overrides"``)":

    Per voter alias: if the voter has any ``ballot.cast`` with ``channel = "kiosk"``, the **first** kiosk
    ballot counts and every internet ballot of that voter is *overridden* (a second kiosk ballot is
    refused by the server); otherwise the internet ballot with the highest ledger index counts and the
    earlier ones are *superseded*. Spoiled ballots never count. A ``ballot_hash`` appears at most once
    among ``ballot.cast`` entries (a replay is an error).

A million-ballot record must not need a million Python objects, so :class:`BallotIndex` keeps one row
per ballot in a temporary SQLite file (the stdlib ``sqlite3`` module: no ORM) and derives the status of
every ballot with one window query. :func:`reference_statuses` is the slow, obviously correct
statement of the same rule; the tests cross-check both with Hypothesis.
"""

from __future__ import annotations

import itertools
import os
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

__all__ = [
    "REVOTE_RULE",
    "BallotIndex",
    "CastRow",
    "Status",
    "reference_statuses",
]

REVOTE_RULE: Final[str] = "last-internet-kiosk-overrides"
CHANNELS: Final[frozenset[str]] = frozenset({"internet", "kiosk"})


class Status(StrEnum):
    COUNTED = "counted"
    SUPERSEDED = "superseded"  # an earlier internet ballot of a voter who voted again
    OVERRIDDEN = "overridden"  # an internet ballot of a voter who voted at a kiosk
    EXTRA_KIOSK = "extra-kiosk"  # a second kiosk ballot: the server must have refused it


@dataclass(frozen=True, slots=True)
class CastRow:
    index: int
    ballot_hash: str
    alias: str
    channel: str
    seq: int


def reference_statuses(rows: Iterable[CastRow]) -> dict[int, Status]:
    """The counting rule stated plainly (slow, in memory): ledger index -> status."""
    by_voter: dict[str, list[CastRow]] = {}
    for r in sorted(rows, key=lambda r: r.index):
        by_voter.setdefault(r.alias, []).append(r)
    out: dict[int, Status] = {}
    for ballots in by_voter.values():
        kiosk = [r for r in ballots if r.channel == "kiosk"]
        if kiosk:
            first = kiosk[0].index
            for r in ballots:
                if r.channel == "kiosk":
                    out[r.index] = Status.COUNTED if r.index == first else Status.EXTRA_KIOSK
                else:
                    out[r.index] = Status.OVERRIDDEN
        else:
            last = ballots[-1].index
            for r in ballots:
                out[r.index] = Status.COUNTED if r.index == last else Status.SUPERSEDED
    return out


@dataclass(frozen=True, slots=True)
class Derived:
    """One cast ballot with its derived status and its expected per-voter ``seq``."""

    index: int
    ballot_hash: str
    status: Status
    seq: int
    expected_seq: int


class BallotIndex:
    """Per-ballot rows in a temporary SQLite database (deleted on :meth:`close`)."""

    def __init__(self, directory: str | None = None) -> None:
        fd, self._path = tempfile.mkstemp(prefix="tvote-verify-", suffix=".sqlite", dir=directory)
        os.close(fd)
        self._db = sqlite3.connect(self._path)
        self._db.executescript(
            """
            PRAGMA journal_mode = OFF;
            PRAGMA synchronous = OFF;
            PRAGMA cache_size = -16384;
            CREATE TABLE cast_ballot (idx INTEGER PRIMARY KEY, hash TEXT NOT NULL, alias TEXT NOT NULL,
                                      channel TEXT NOT NULL, seq INTEGER NOT NULL);
            CREATE TABLE seen (kind TEXT NOT NULL, value TEXT NOT NULL, idx INTEGER NOT NULL,
                               PRIMARY KEY (kind, value)) WITHOUT ROWID;
            CREATE TABLE line_at (idx INTEGER PRIMARY KEY, start INTEGER NOT NULL, end INTEGER NOT NULL);
            CREATE TABLE v15 (idx INTEGER NOT NULL, k INTEGER NOT NULL, at INTEGER NOT NULL,
                              text TEXT NOT NULL, replay INTEGER NOT NULL, spoiled INTEGER NOT NULL);
            CREATE TABLE evidence_group (grp INTEGER NOT NULL, idx INTEGER NOT NULL);
            """
        )
        self._pending: list[tuple[int, str, str, str, int]] = []
        self._groups = 0

    # ------------------------------------------------------------------ uniqueness (V15)
    def first_seen(self, kind: str, value: str, index: int) -> int | None:
        """Record ``value`` of ``kind`` at ``index``; return the earlier index if it was already seen."""
        cur = self._db.execute("INSERT OR IGNORE INTO seen VALUES (?, ?, ?)", (kind, value, index))
        if cur.rowcount:
            return None
        row = self._db.execute("SELECT idx FROM seen WHERE kind = ? AND value = ?", (kind, value)).fetchone()
        return int(row[0])

    # ------------------------------------------------------------------ uniqueness of a sliced run (V15)
    def add_problems(self, rows: Iterable[tuple[int, int, int, str, int, int]]) -> None:
        """Record ``(index, 0 within / 1 across ballots, position, text, replay, spoiled)`` rows
        (``verifier._shards.shard_repeats``)."""
        self._db.executemany("INSERT INTO v15 VALUES (?, ?, ?, ?, ?, ?)", rows)

    def add_evidence_groups(self, groups: Iterable[list[int]]) -> None:
        """Record the ledger indices of the cast ballots that share one evidence hash, a group each."""
        for g in groups:
            self._groups += 1
            self._db.executemany("INSERT INTO evidence_group VALUES (?, ?)", [(self._groups, i) for i in g])

    def problems(self) -> Iterator[tuple[int, list[str], bool, bool, int | None]]:
        """In ledger order, each ballot with a V15 problem: ``(index, problem texts in the order
        index_ballot finds them, replay, spoiled, the earlier entry of its evidence hash or None)``. A
        replay records no evidence, so the earlier use of an evidence hash is its first non-replay ballot."""
        cur = self._db.execute(
            """
            WITH ev AS (SELECT idx, MIN(idx) OVER (PARTITION BY grp) AS earlier FROM evidence_group
                        WHERE idx NOT IN (SELECT idx FROM v15 WHERE replay = 1))
            SELECT idx, k, at, text, replay, spoiled FROM v15
            UNION ALL SELECT idx, 2, 0, CAST(earlier AS TEXT), 0, 0 FROM ev WHERE idx != earlier
            ORDER BY 1, 2, 3
            """
        )
        for i, rows in itertools.groupby(cur, key=lambda r: int(r[0])):
            texts: list[str] = []
            replay = spoiled = False
            evidence = None
            for _, k, _, text, rp, sp in rows:
                if k == 2:
                    evidence = int(text)
                else:
                    texts.append(text)
                replay, spoiled = replay or bool(rp), spoiled or bool(sp)
            yield i, texts, replay, spoiled, evidence

    def drop_cast(self, indices: list[int]) -> None:
        """Remove the counting rows of ``indices`` (a replay; a ballot whose evidence was used before)."""
        self._flush()
        self._db.executemany("DELETE FROM cast_ballot WHERE idx = ?", [(i,) for i in indices])

    # ------------------------------------------------------------------ where a ballot's line is
    def add_lines(self, rows: list[tuple[int, int, int]]) -> None:
        """Record ``(index, start, end)``: the byte range of entry ``index``'s line in entries.jsonl (so V18
        re-reads the ballots that do not count without reading the record again)."""
        self._db.executemany("INSERT OR IGNORE INTO line_at VALUES (?, ?, ?)", rows)

    def line_at(self, index: int) -> tuple[int, int] | None:
        row = self._db.execute("SELECT start, end FROM line_at WHERE idx = ?", (index,)).fetchone()
        return None if row is None else (int(row[0]), int(row[1]))

    # ------------------------------------------------------------------ counting rule (V17)
    def add_cast(self, row: CastRow) -> None:
        self._pending.append((row.index, row.ballot_hash, row.alias, row.channel, row.seq))
        if len(self._pending) >= 10_000:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._db.executemany("INSERT OR IGNORE INTO cast_ballot VALUES (?, ?, ?, ?, ?)", self._pending)
            self._pending.clear()

    def derived(self) -> Iterator[Derived]:
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
                    st = Status.COUNTED if idx == first_kiosk else Status.EXTRA_KIOSK
                else:
                    st = Status.OVERRIDDEN
            else:
                st = Status.COUNTED if idx == last_net else Status.SUPERSEDED
            yield Derived(idx, h, st, seq, expected_seq)

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

    def __enter__(self) -> BallotIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
