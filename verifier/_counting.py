"""The verifier's on-disk index: the counting rule's rows (V17) and the uniqueness values (V15).

The counting rule itself (its rows, its window query, its reference and the counted set) is
``ledger.record``'s (:class:`ledger.record.CountingIndex`), one definition for the server's tally and the
verifier. :class:`BallotIndex` adds the verifier's own tables to the same temporary SQLite file: the values
V15 has seen, the byte range of each ballot's line (V18 re-reads the ballots that do not count), and the
V15 problems and evidence groups of a sliced run (:mod:`verifier._shards`). Nothing per ballot stays in
Python memory.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from typing import Final

from ledger.record import CountingIndex

__all__ = ["BallotIndex"]

_SCHEMA: Final[str] = """
    CREATE TABLE seen (kind TEXT NOT NULL, value TEXT NOT NULL, idx INTEGER NOT NULL,
                       PRIMARY KEY (kind, value)) WITHOUT ROWID;
    CREATE TABLE line_at (idx INTEGER PRIMARY KEY, start INTEGER NOT NULL, end INTEGER NOT NULL);
    CREATE TABLE v15 (idx INTEGER NOT NULL, k INTEGER NOT NULL, at INTEGER NOT NULL,
                      text TEXT NOT NULL, replay INTEGER NOT NULL, spoiled INTEGER NOT NULL);
    CREATE TABLE evidence_group (grp INTEGER NOT NULL, idx INTEGER NOT NULL);
    CREATE TABLE not_counted (idx INTEGER PRIMARY KEY);
"""


class BallotIndex(CountingIndex):
    """Per-ballot rows in a temporary SQLite database (deleted on :meth:`close`): the counting rule's
    (:class:`ledger.record.CountingIndex`) and the verifier's own."""

    def __init__(self, directory: str | None = None) -> None:
        super().__init__(directory, prefix="tvote-verify-", schema=_SCHEMA)
        self._groups = 0

    # ------------------------------------------------------------------ uniqueness (V15)
    def first_seen(self, kind: str, value: str, index: int) -> int | None:
        """Record ``value`` of ``kind`` at ``index``; return the earlier index if it was already seen."""
        cur = self.db.execute("INSERT OR IGNORE INTO seen VALUES (?, ?, ?)", (kind, value, index))
        if cur.rowcount:
            return None
        row = self.db.execute("SELECT idx FROM seen WHERE kind = ? AND value = ?", (kind, value)).fetchone()
        return int(row[0])

    # ------------------------------------------------------------------ uniqueness of a sliced run (V15)
    def add_problems(self, rows: Iterable[tuple[int, int, int, str, int, int]]) -> None:
        """Record ``(index, 0 within / 1 across ballots, position, text, replay, spoiled)`` rows
        (``verifier._shards.shard_repeats``)."""
        self.db.executemany("INSERT INTO v15 VALUES (?, ?, ?, ?, ?, ?)", rows)

    def add_evidence_groups(self, groups: Iterable[list[int]]) -> None:
        """Record the ledger indices of the cast ballots that share one evidence hash, a group each."""
        for g in groups:
            self._groups += 1
            self.db.executemany("INSERT INTO evidence_group VALUES (?, ?)", [(self._groups, i) for i in g])

    def problems(self) -> Iterator[tuple[int, list[str], bool, bool, int | None]]:
        """In ledger order, each ballot with a V15 problem: ``(index, problem texts in the order
        index_ballot finds them, replay, spoiled, the earlier entry of its evidence hash or None)``. A
        replay records no evidence, so the earlier use of an evidence hash is its first non-replay ballot."""
        cur = self.db.execute(
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

    # ------------------------------------------------------------------ where a ballot's line is
    def add_lines(self, rows: list[tuple[int, int, int]]) -> None:
        """Record ``(index, start, end)``: the byte range of entry ``index``'s line in entries.jsonl (so V18
        re-reads the ballots that do not count without reading the record again)."""
        self.db.executemany("INSERT OR IGNORE INTO line_at VALUES (?, ?, ?)", rows)

    def add_not_counted(self, indices: Iterable[int]) -> None:
        """Record the ledger indices of cast ballots the counting rule does not count (V17 finds them, V18
        subtracts them)."""
        self.db.executemany("INSERT OR IGNORE INTO not_counted VALUES (?)", ((i,) for i in indices))

    def not_counted_lines(self) -> Iterator[tuple[int, tuple[int, int] | None]]:
        """Each recorded not-counted ballot in ledger order, with its line's byte range if recorded
        (:meth:`add_lines`), in one query."""
        cur = self.db.execute(
            "SELECT n.idx, l.start, l.end FROM not_counted n LEFT JOIN line_at l ON l.idx = n.idx"
            " ORDER BY n.idx"
        )
        for idx, start, end in cur:
            yield int(idx), None if start is None else (int(start), int(end))
