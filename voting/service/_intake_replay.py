"""The replay of the intake's entries, ``ballot.cast`` and ``ballot.spoiled``: :class:`BallotReplay`
rebuilds the private writes of :meth:`IntakeService._commit_cast <voting.service.IntakeService>` and
:meth:`IntakeService.spoil <voting.service.IntakeService.spoil>` (:mod:`voting.service._intake`), registered
with the core's reconciliation (:func:`~voting.service._core.replays`) like every stage's applier.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, func, update
from sqlmodel import Session, col, select

from ledger.events import ELECTION_ID, EventType
from ledger.record import ballot_unique_values, repeats_within

from .._errors import ServiceUnavailable
from .._intake_db import (
    AuthEvidence,
    BallotUniqueValue,
    IntakeBallot,
    IntakeChallenge,
    OidcPending,
    OidcSubjectBinding,
    VoterState,
)
from ._core import Replay, ServiceCore, ledger_entries, replays
from ._intake_checks import RESERVED, drop_pending
from ._intake_replay_page import BallotPages
from ._kiosk import record_kiosk_ballot

__all__ = ["BallotReplay", "pending_floor", "settle_pending"]


def pending_floor(s: Session, election_id: str) -> int | None:
    """The smallest ledger index at which an entry of a pending cast may lie: a pending evidence row holds,
    until its cast is recorded, a size of the ledger known before its append (a lower bound of its entry's
    index).
    Casts of different voters record out of order, so ``ElectionRow.ledger_synced`` (a high-water mark) may
    already be past the entry of a cast whose process died between its append and its record: the
    reconciliation replays from here too. ``None``: no pending cast."""
    floor = s.exec(
        select(func.min(AuthEvidence.ledger_index))
        .where(AuthEvidence.election_id == election_id)
        .where(AuthEvidence.status == "pending")
    ).one()
    return None if floor is None else int(floor)


def settle_pending(
    s: Session, ledger: Any, election_id: str, rows: list[AuthEvidence], now: dt.datetime
) -> None:
    """Under the voter's lock (no attempt of this voter is in flight): settle the voter's pending evidence
    ``rows``, each of an attempt that ended without its record. One whose ``ballot.cast`` is on the ledger
    (searched from its lower bound) is replayed, as reconciliation would; the others never reached the
    ledger and are deleted with what they held (:func:`drop_pending`). In ``s``'s transaction."""
    want = {r.ballot_hash: r for r in rows}
    orphans = list(rows)
    floor = min((r.ledger_index for r in rows if r.ledger_index is not None), default=0)
    replay = BallotReplay(election_id, now)
    for index, etype, payload in ledger_entries(ledger, start=floor):
        if etype == EventType.BALLOT_CAST and payload.get("ballot_hash") in want:
            row = want.pop(str(payload["ballot_hash"]))
            orphans.remove(row)
            replay.apply(s, index, etype, payload)
            if not want:
                break
    drop_pending(s, orphans)
    s.flush()


class BallotReplay(BallotPages):
    """Rebuilds intake's private rows from ``ballot.cast`` / ``ballot.spoiled`` entries (idempotent).

    Used by ``ElectionService.reconcile`` in one session: :meth:`apply` per entry (``True`` if something was
    missing and is now recorded) — or, for consecutive ballot entries, :meth:`apply_page`, which answers and
    writes the same as :meth:`apply` of each, in a few statements (:mod:`._intake_replay_page`; :meth:`apply`
    is its reference) — then :meth:`finish`, which deletes orphan pending evidence and, after a full
    replay, compares the private tables with what the ledger holds (differences go to ``problems``).

    The unique values of every replayed ballot (:class:`BallotUniqueValue`) are rebuilt too. A value the
    ledger itself repeats (a record that fails V15, which this intake never appends) is not recorded twice:
    it is reported in ``problems``, naming both entries.
    """

    def __init__(self, election_id: str, now: dt.datetime) -> None:
        self.election_id = election_id
        self.now = now
        self.problems: list[str] = []
        self._max_seq: dict[str, int] = {}
        self._ballots = 0
        self._evidence = 0
        self._values = 0

    def apply(self, s: Session, index: int, etype: str, p: Mapping[str, Any]) -> bool:
        eid = self.election_id
        if p.get(ELECTION_ID) != eid:
            raise ServiceUnavailable("reconcile.foreign_entry", f"entry {index} is not of this election")
        bh = str(p["ballot_hash"])
        self._ballots += 1
        changed = False
        if s.get(IntakeBallot, bh) is None:
            cast = etype == EventType.BALLOT_CAST
            s.add(
                IntakeBallot(
                    ballot_hash=bh,
                    election_id=eid,
                    kind="cast" if cast else "spoiled",
                    tracking_code=p["tracking_code"],
                    ledger_index=index,
                    voter_alias=p["voter_alias"] if cast else None,
                    channel=p["channel"] if cast else None,
                    seq=p["seq"] if cast else None,
                    created_at=self.now,
                )
            )
            changed = True
        changed = self._unique_values(s, index, bh, p) or changed
        if etype != EventType.BALLOT_CAST:
            return changed
        alias, seq, channel = str(p["voter_alias"]), int(p["seq"]), p["channel"]
        self._max_seq[alias] = max(self._max_seq.get(alias, 0), seq)
        state = s.get(VoterState, (eid, alias)) or VoterState(election_id=eid, voter_alias=alias)
        moved = False
        if state.seq < seq:
            state.seq, moved = seq, True
        if state.last_index is None or state.last_index < index:
            state.last_index, moved = index, True
        if channel == "kiosk" and state.kiosk_index is None:
            state.kiosk_index, moved = index, True
        if isinstance(p.get("kiosk"), Mapping):  # which kiosk and session cast it (kiosk.closed counts them)
            changed = record_kiosk_ballot(s, eid, index, bh, p["kiosk"]) or changed
        if moved:
            s.add(state)
            changed = True
        evh = str(p["auth"]["evidence_hash"])
        evidence = s.get(AuthEvidence, evh)
        if evidence is None:
            self.problems.append(f"entry {index}: the authentication evidence {evh} was never stored")
            return changed
        self._evidence += 1
        if evidence.status != "final" or evidence.ledger_index != index:
            evidence.status, evidence.ledger_index = "final", index
            s.add(evidence)
            challenge = evidence.challenge
            if challenge is None and evidence.evidence:  # a row written before the challenge column
                challenge = json.loads(evidence.evidence).get("challenge")
            if challenge is not None:  # JPKI: the one-time challenge the signature covers is now used
                s.execute(
                    update(IntakeChallenge)
                    .where(col(IntakeChallenge.challenge) == challenge)
                    .where(IntakeChallenge.used_at.is_(None))  # type: ignore[union-attr]
                    .values(used_at=self.now)
                )
            s.execute(  # digital ID: the authorization bound to this ballot hash is now used
                update(OidcPending)
                .where(OidcPending.ballot_hash == bh)  # type: ignore[arg-type]
                .where(OidcPending.used_at.is_(None))  # type: ignore[union-attr]
                .values(used_at=self.now)
            )
            changed = True
        return changed

    def _unique_values(self, s: Session, index: int, bh: str, p: Mapping[str, Any]) -> bool:
        """Record the ballot's unique values that are missing (one query per entry); ``True`` if any was."""
        values = ballot_unique_values(bh, p.get("ballot"))
        for earlier, later in repeats_within(values):
            self.problems.append(f"entry {index}: the {later.describe()} repeats the {earlier.describe()}")
        have = {
            (r.kind, r.value): r
            for r in s.exec(  # autoflush: rows added for earlier entries of this replay are seen
                select(BallotUniqueValue)
                .where(BallotUniqueValue.election_id == self.election_id)
                .where(BallotUniqueValue.value.in_([v.value for v in values]))  # type: ignore[attr-defined]
            )
        }
        changed = False
        for v in {(v.kind, v.value): v for v in values}.values():  # each value once
            key = (v.kind, v.value)
            row = have.get(key)
            if row is None:
                row = BallotUniqueValue(
                    election_id=self.election_id,
                    kind=v.kind,
                    value=v.value,
                    ballot_hash=bh,
                    ledger_index=index,
                )
                s.add(row)
                have[key] = row
                changed = True
            elif row.ballot_hash == bh and row.ledger_index == RESERVED:  # reserved before the append
                row.ledger_index = index
                s.add(row)
                changed = True
            elif row.ballot_hash != bh:
                self.problems.append(
                    f"entry {index}: the {v.describe()} was already published at entry {row.ledger_index} "
                    "(the record fails V15 ballot.unique)"
                )
                continue
            self._values += 1
        return changed

    def finish(self, s: Session, *, full: bool, min_age: dt.timedelta | None = None) -> int:
        """Delete orphan pending evidence (returns how many); after a full replay compare the tables.

        Called under the election's mutation lock, where every pending row belongs to an attempt that ended
        without its append; with ``min_age``, only rows created at least that long before ``now``."""
        eid = self.election_id
        stmt = (
            select(AuthEvidence)
            .where(AuthEvidence.election_id == eid)
            .where(AuthEvidence.status == "pending")
        )
        if min_age is not None:
            stmt = stmt.where(AuthEvidence.created_at <= self.now - min_age)
        # with its reserved unique values, its binding and the one-time challenge it consumed
        orphans = drop_pending(s, list(s.exec(stmt)))
        s.execute(  # a digital-ID binding lives and dies with the evidence of its first ballot
            delete(OidcSubjectBinding)
            .where(OidcSubjectBinding.election_id == eid)  # type: ignore[arg-type]
            .where(
                OidcSubjectBinding.evidence_hash.not_in(  # type: ignore[attr-defined]
                    select(AuthEvidence.evidence_hash).where(AuthEvidence.election_id == eid)
                )
            )
        )
        if not full:
            return int(orphans or 0)
        s.flush()
        rows = s.exec(
            select(func.count()).select_from(IntakeBallot).where(IntakeBallot.election_id == eid)
        ).one()
        if rows != self._ballots:
            self.problems.append(f"{rows} ballot rows, the ledger holds {self._ballots} ballots")
        final = s.exec(
            select(func.count()).select_from(AuthEvidence).where(AuthEvidence.election_id == eid)
        ).one()
        if final != self._evidence:
            self.problems.append(f"{final} evidence rows, the ledger's ballots name {self._evidence}")
        values = s.exec(
            select(func.count())
            .select_from(BallotUniqueValue)
            .where(BallotUniqueValue.election_id == eid)
            .where(BallotUniqueValue.ledger_index != RESERVED)
        ).one()
        if values != self._values:
            self.problems.append(f"{values} unique-value rows, the ledger's ballots hold {self._values}")
        voters = s.exec(select(VoterState).where(VoterState.election_id == eid))
        states = {v.voter_alias: v.seq for v in voters}
        if states != self._max_seq:
            bad = sorted(set(states.items()) ^ set(self._max_seq.items()))[:3]
            self.problems.append(f"voter seq counters differ from the ledger's (e.g. {bad})")
        return int(orphans or 0)


def _replay_ballots(
    service: ServiceCore, r: Replay, entries: list[tuple[int, str, dict[str, Any]]]
) -> list[bool]:
    """The intake's :meth:`BallotReplay.apply_page` (which checks the entries' ``election_id`` itself)."""
    return r.ballots.apply_page(r.s, entries)


@replays(EventType.BALLOT_CAST, EventType.BALLOT_SPOILED, own_check=True, page=_replay_ballots)
def _replay_ballot(service: ServiceCore, r: Replay, index: int, etype: str, p: dict[str, Any]) -> bool:
    """The intake's :meth:`BallotReplay.apply` (which checks the entry's ``election_id`` itself)."""
    return r.ballots.apply(r.s, index, etype, p)
