"""The replay of many ballot entries at once: :class:`BallotPages`, what
:class:`~voting.service._intake_replay.BallotReplay` does for a *page* of consecutive ``ballot.cast`` /
``ballot.spoiled`` entries.

:meth:`BallotReplay.apply <voting.service._intake_replay.BallotReplay.apply>` is the reference: one entry,
ORM objects, a lookup per row. Replaying a whole lagging ledger that way (a restored backup, a bench's
ballots appended straight to the ledger) costs milliseconds per ballot, nearly all of it in building,
loading and flushing ORM objects. :meth:`BallotPages.apply_page` gives the same rows, the same problems in
the same order and the same answer per entry, with a handful of statements per page:

1. one ``SELECT ... IN`` per table for everything the page's entries look up (ballot rows, unique values,
   voter states, evidence, kiosk ballots), on the session's connection, after flushing the session;
2. the reference's per-entry decisions, taken in ledger order on those rows held in plain dictionaries,
   which each entry updates as the reference's identity map would, so that a voter's re-vote, a value
   repeated or a ballot hash published twice within the page are seen by the entries after them;
3. the writes, prebuilt statements each executed once with every row (``executemany``): the missing rows
   inserted, the changed ones updated with their final values.

A page is replayed inside the reconciliation's one transaction: an error (a foreign entry, a unique key the
database refuses) aborts the whole reconciliation, as with the reference.
``tests/voting/test_replay_pages.py`` replays the same ledgers and private states both ways and compares
every row.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import bindparam, insert, update
from sqlmodel import Session, col, select

from ledger.events import ELECTION_ID, EventType
from ledger.record import UniqueValue, ballot_unique_values, repeats_within

from .._errors import ServiceUnavailable
from .._intake_db import (
    EVIDENCE_FINAL,
    AuthEvidence,
    BallotUniqueValue,
    IntakeBallot,
    IntakeChallenge,
    OidcPending,
    VoterState,
)
from .._kiosk_db import KioskBallot
from ._intake_checks import RESERVED

__all__ = ["BallotPages"]

#: values per ``IN (...)`` list: well under SQLite's and PostgreSQL's bound-parameter limits
_IN_CHUNK = 5000

_UV = BallotUniqueValue
_BALLOTS_HAVE = select(IntakeBallot.ballot_hash).where(
    col(IntakeBallot.ballot_hash).in_(bindparam("keys", expanding=True))
)
_VALUES_HAVE = (
    select(_UV.kind, _UV.value, _UV.ballot_hash, _UV.ledger_index)
    .where(col(_UV.election_id) == bindparam("eid"))
    .where(col(_UV.value).in_(bindparam("keys", expanding=True)))
)
_VOTERS_HAVE = (
    select(VoterState.voter_alias, VoterState.seq, VoterState.kiosk_index, VoterState.last_index)
    .where(col(VoterState.election_id) == bindparam("eid"))
    .where(col(VoterState.voter_alias).in_(bindparam("keys", expanding=True)))
)
_EVIDENCE_HAVE = select(
    AuthEvidence.evidence_hash, AuthEvidence.status, AuthEvidence.ledger_index, AuthEvidence.challenge
).where(col(AuthEvidence.evidence_hash).in_(bindparam("keys", expanding=True)))
_EVIDENCE_BODY = select(AuthEvidence.evidence).where(col(AuthEvidence.evidence_hash) == bindparam("evh"))
_KIOSK_HAVE = select(KioskBallot.ballot_hash).where(
    col(KioskBallot.ballot_hash).in_(bindparam("keys", expanding=True))
)
_VALUE_INDEX = (
    update(_UV)
    .where(col(_UV.election_id) == bindparam("eid"))
    .where(col(_UV.value) == bindparam("v"))
    .where(col(_UV.kind) == bindparam("k"))
    .values(ledger_index=bindparam("index"))
)
_VOTER_UPDATE = (
    update(VoterState)
    .where(col(VoterState.election_id) == bindparam("eid"))
    .where(col(VoterState.voter_alias) == bindparam("alias"))
    .values(seq=bindparam("s"), last_index=bindparam("last"), kiosk_index=bindparam("kiosk"))
)
_CHALLENGE_USED = (
    update(IntakeChallenge)
    .where(col(IntakeChallenge.challenge) == bindparam("c"))
    .where(col(IntakeChallenge.used_at).is_(None))
    .values(used_at=bindparam("now"))
)
_INSERT_BALLOTS = insert(IntakeBallot)
_INSERT_VALUES = insert(BallotUniqueValue)
_INSERT_VOTERS = insert(VoterState)
_INSERT_KIOSK = insert(KioskBallot)
_OIDC_USED = (
    update(OidcPending)
    .where(col(OidcPending.ballot_hash) == bindparam("bh"))
    .where(col(OidcPending.used_at).is_(None))
    .values(used_at=bindparam("now"))
)


def _rows(c: Any, stmt: Any, keys: Sequence[str], **params: Any) -> list[Any]:
    """``stmt``'s rows for every key of ``keys`` (deduplicated), in ``IN`` lists of :data:`_IN_CHUNK`."""
    unique = list(dict.fromkeys(keys))
    out: list[Any] = []
    for i in range(0, len(unique), _IN_CHUNK):
        out.extend(c.execute(stmt, {**params, "keys": unique[i : i + _IN_CHUNK]}))
    return out


class BallotPages:
    """:meth:`apply_page`, for :class:`~voting.service._intake_replay.BallotReplay` (its state is declared
    here: the reference and the pages count and report into the same fields)."""

    election_id: str
    now: dt.datetime
    problems: list[str]
    _max_seq: dict[str, int]
    _ballots: int
    _evidence: int
    _values: int

    def apply_page(self, s: Session, entries: Sequence[tuple[int, str, Mapping[str, Any]]]) -> list[bool]:
        """Replay consecutive ballot entries ``(index, type, payload)`` in ledger order, as many calls of the
        reference ``apply`` would; returns its answer per entry (``True``: something was missing)."""
        eid = self.election_id
        for index, _, p in entries:  # the reference refuses a foreign entry before it writes anything
            if p.get(ELECTION_ID) != eid:
                raise ServiceUnavailable("reconcile.foreign_entry", f"entry {index} is not of this election")
        s.flush()  # what the session holds is in the database before it is read past the ORM
        c = s.connection()
        casts = [(i, p) for i, t, p in entries if t == EventType.BALLOT_CAST]
        unique = [ballot_unique_values(str(p["ballot_hash"]), p.get("ballot")) for _, _, p in entries]
        ballots = {r[0] for r in _rows(c, _BALLOTS_HAVE, [str(p["ballot_hash"]) for _, _, p in entries])}
        values = {
            (r.kind, r.value): [r.ballot_hash, r.ledger_index]
            for r in _rows(c, _VALUES_HAVE, [v.value for vs in unique for v in vs], eid=eid)
        }
        voters: dict[str, list[Any]] = {
            r.voter_alias: [r.seq, r.kiosk_index, r.last_index]
            for r in _rows(c, _VOTERS_HAVE, [str(p["voter_alias"]) for _, p in casts], eid=eid)
        }
        evidence = {
            r.evidence_hash: [r.status, r.ledger_index, r.challenge]
            for r in _rows(c, _EVIDENCE_HAVE, [str(p["auth"]["evidence_hash"]) for _, p in casts])
        }
        kiosk_cast = [str(p["ballot_hash"]) for _, p in casts if isinstance(p.get("kiosk"), Mapping)]
        kiosk = {r[0] for r in _rows(c, _KIOSK_HAVE, kiosk_cast)} if kiosk_cast else set()
        w = _Writes(voters)
        changed = [
            self._entry(c, w, index, etype, p, vs, ballots, values, evidence, kiosk)
            for (index, etype, p), vs in zip(entries, unique, strict=True)
        ]
        w.execute(c, eid, self.now)
        return changed

    def _entry(
        self,
        c: Any,
        w: _Writes,
        index: int,
        etype: str,
        p: Mapping[str, Any],
        unique: tuple[UniqueValue, ...],
        ballots: set[str],
        values: dict[tuple[str, str], list[Any]],
        evidence: dict[str, list[Any]],
        kiosk: set[str],
    ) -> bool:
        """The reference's ``apply`` of one entry, on the page's rows (kept in step for the entries after)."""
        eid = self.election_id
        bh = str(p["ballot_hash"])
        self._ballots += 1
        changed = False
        cast = etype == EventType.BALLOT_CAST
        if bh not in ballots:
            w.ballots.append(
                {
                    "ballot_hash": bh,
                    "election_id": eid,
                    "kind": "cast" if cast else "spoiled",
                    "tracking_code": p["tracking_code"],
                    "ledger_index": index,
                    "voter_alias": p["voter_alias"] if cast else None,
                    "channel": p["channel"] if cast else None,
                    "seq": p["seq"] if cast else None,
                    "created_at": self.now,
                }
            )
            ballots.add(bh)
            changed = True
        changed = self._values_of(w, index, bh, unique, values) or changed
        if not cast:
            return changed
        alias, seq, channel = str(p["voter_alias"]), int(p["seq"]), p["channel"]
        self._max_seq[alias] = max(self._max_seq.get(alias, 0), seq)
        changed = w.voter(alias, seq, index, channel == "kiosk") or changed
        if isinstance(p.get("kiosk"), Mapping) and bh not in kiosk:
            w.kiosk.append(
                {
                    "ballot_hash": bh,
                    "election_id": eid,
                    "kiosk_id": str(p["kiosk"]["kiosk_id"]),
                    "session": int(p["kiosk"]["session"]),
                    "ledger_index": index,
                }
            )
            kiosk.add(bh)
            changed = True
        evh = str(p["auth"]["evidence_hash"])
        ev = evidence.get(evh)
        if ev is None:
            self.problems.append(f"entry {index}: the authentication evidence {evh} was never stored")
            return changed
        self._evidence += 1
        if ev[0] != "final" or ev[1] != index:
            ev[0], ev[1] = "final", index
            w.evidence.append({"evh": evh, "index": index})
            challenge = ev[2]
            if challenge is None:  # a row written before the challenge column: from its evidence, if plain
                body = c.execute(_EVIDENCE_BODY, {"evh": evh}).scalar_one()
                challenge = json.loads(body).get("challenge") if body else None
            if challenge is not None:
                w.challenges.append({"c": challenge})
            w.oidc.append({"bh": bh})
            changed = True
        return changed

    def _values_of(
        self,
        w: _Writes,
        index: int,
        bh: str,
        unique: tuple[UniqueValue, ...],
        values: dict[tuple[str, str], list[Any]],
    ) -> bool:
        """The reference's ``_unique_values`` of one entry, on the page's rows."""
        for earlier, later in repeats_within(unique):
            self.problems.append(f"entry {index}: the {later.describe()} repeats the {earlier.describe()}")
        changed = False
        for v in {(v.kind, v.value): v for v in unique}.values():  # each value once
            key = (v.kind, v.value)
            row = values.get(key)
            if row is None:
                values[key] = [bh, index]
                w.values.append(
                    {"election_id": self.election_id, "kind": v.kind, "value": v.value}
                    | {"ballot_hash": bh, "ledger_index": index}
                )
                changed = True
            elif row[0] == bh and row[1] == RESERVED:  # reserved before the append
                row[1] = index
                w.finalised.append({"v": v.value, "k": v.kind, "index": index})
                changed = True
            elif row[0] != bh:
                self.problems.append(
                    f"entry {index}: the {v.describe()} was already published at entry {row[1]} "
                    "(the record fails V15 ballot.unique)"
                )
                continue
            self._values += 1
        return changed


class _Writes:
    """What a page writes: rows to insert, and the final values of the rows it changed."""

    def __init__(self, voters: dict[str, list[Any]]) -> None:
        #: ``alias -> [seq, kiosk_index, last_index]`` of every stored voter of the page, then as replayed
        self.voters = voters
        self.stored = set(voters)
        self.moved: set[str] = set()
        self.ballots: list[dict[str, Any]] = []
        self.values: list[dict[str, Any]] = []
        self.finalised: list[dict[str, Any]] = []
        self.kiosk: list[dict[str, Any]] = []
        self.evidence: list[dict[str, Any]] = []
        self.challenges: list[dict[str, Any]] = []
        self.oidc: list[dict[str, Any]] = []

    def voter(self, alias: str, seq: int, index: int, kiosk: bool) -> bool:
        """The reference's voter-state step: ``True`` if the state moved (a new voter's first cast does)."""
        state = self.voters.get(alias) or [0, None, None]
        moved = False
        if state[0] < seq:
            state[0], moved = seq, True
        if state[2] is None or state[2] < index:
            state[2], moved = index, True
        if kiosk and state[1] is None:
            state[1], moved = index, True
        if moved:
            self.voters[alias] = state
            self.moved.add(alias)
        return moved

    def execute(self, c: Any, eid: str, now: dt.datetime) -> None:
        """Each prebuilt statement once, with all its rows (nothing runs for an empty list)."""
        voters = [(a, self.voters[a]) for a in sorted(self.moved)]
        new = [
            {"election_id": eid, "voter_alias": a, "seq": v[0], "kiosk_index": v[1], "last_index": v[2]}
            for a, v in voters
            if a not in self.stored
        ]
        moved = [
            {"eid": eid, "alias": a, "s": v[0], "kiosk": v[1], "last": v[2]}
            for a, v in voters
            if a in self.stored
        ]
        for stmt, rows in (
            (_INSERT_BALLOTS, self.ballots),
            (_INSERT_VALUES, self.values),
            (_VALUE_INDEX, [{"eid": eid, **r} for r in self.finalised]),
            (_INSERT_VOTERS, new),
            (_VOTER_UPDATE, moved),
            (_INSERT_KIOSK, self.kiosk),
            (EVIDENCE_FINAL, self.evidence),
            (_CHALLENGE_USED, [{**r, "now": now} for r in self.challenges]),
            (_OIDC_USED, [{**r, "now": now} for r in self.oidc]),
        ):
            if rows:
                c.execute(stmt, rows)
