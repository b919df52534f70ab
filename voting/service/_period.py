"""Stage 4, the voting period: open voting (``voting.opened``), extend it (``voting.extended``), close it
(``voting.closed``), by the manifest's period (:meth:`PeriodStage.enforce_period`) or by a recorded override.

Ballots themselves are the intake's (:mod:`voting.service._intake`); it asks
:meth:`PeriodStage.require_voting`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlmodel import Session, select

from ledger.events import EventType

from .._db import BoothRow, ElectionRow
from .._errors import Conflict, InvalidRequest, NotFound
from ._booth import BoothStage
from ._core import Replay, replays

__all__ = ["MAX_REASON_CHARS", "PeriodStage"]


def _rfc3339(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_rfc3339(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)


def _aware(t: dt.datetime) -> dt.datetime:
    """A stored time as UTC (SQLite hands back naive datetimes)."""
    return t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t.astimezone(dt.UTC)


#: :meth:`PeriodStage.require_voting`'s read, built once (building a statement costs more than running it)
_PHASE = select(ElectionRow.phase, ElectionRow.closes_at)

#: the longest override reason (code points); it is published, so it obeys the manifest's text rule
MAX_REASON_CHARS = 500


def _check_reason(reason: object) -> str:
    from ledger.record import TextRuleError, check_display_text

    text = reason.strip() if isinstance(reason, str) else reason
    try:
        return check_display_text(text, max_chars=MAX_REASON_CHARS)
    except TextRuleError as e:
        raise InvalidRequest("voting.override_reason", f"the override reason {e}") from e


class PeriodStage(BoothStage):
    """Open, extend and close the voting period (opening publishes the booth first if nobody has)."""

    def voting_window(self) -> tuple[dt.datetime, dt.datetime]:
        """``(opens, closes)``: the manifest's voting period, ``closes`` moved by any ``voting.extended``."""
        period = self.manifest.voting_period
        closes = self.election().closes_at
        return period.opens, period.closes if closes is None else _aware(closes)

    def require_voting(self, s: Session | None = None, *, held: Any = None) -> None:
        """Ballots are accepted now: the phase is ``voting`` and the (extended) period has not ended.
        Read in ``s`` (a caller's open session: no session of its own), or a read-only session of its own;
        not read when ``held`` gives them (``phase``, ``closes_at``: what :meth:`casting` read under the
        election's lock, which they cannot change under).

        Raises 409 ``voting.not_open`` before voting opens and ``voting.closed`` once the period's end has
        passed (even before the ``voting.closed`` entry is appended) or voting was closed."""
        if held is not None:
            row = held
        elif s is None:
            with self._read_session() as own:
                return self.require_voting(own)
        else:
            row = s.connection().execute(_PHASE).first()  # a prebuilt read of the two columns
        if row is None:
            raise NotFound("election.none", "no election has been created on this server")
        phase, closes_at = row.phase, row.closes_at
        period = self.manifest.voting_period
        if phase in ("creating", "setup"):
            raise Conflict(
                "voting.not_open", f"voting has not opened (the voting period opens {_rfc3339(period.opens)})"
            )
        if phase != "voting":
            raise Conflict("voting.closed", "voting has closed")
        closes = self._voting_end(closes_at)
        if self._clock() >= closes:
            raise Conflict("voting.closed", f"voting closed at {_rfc3339(closes)}")

    def _voting_end(self, closes_at: dt.datetime | None) -> dt.datetime:
        """When voting ends: the manifest's ``voting_period.closes``, or the end of the last extension
        (``ElectionRow.closes_at``)."""
        return self.manifest.voting_period.closes if closes_at is None else _aware(closes_at)

    @staticmethod
    def _override(reason: str | None, needed: bool, what: str) -> dict[str, Any]:
        """The ``override`` payload member, present exactly when the manifest's period is departed from."""
        if reason is None:
            return {}
        if not needed:
            raise InvalidRequest(
                "voting.override_unneeded",
                f"{what} follows the voting period: no override is needed, none is recorded",
            )
        return {"override": {"reason": _check_reason(reason)}}

    def open_voting(self, *, override_reason: str | None = None) -> int:
        """Append ``voting.opened`` (needs the joint key and the roll commitment on the ledger).

        If the booth is not yet published, ``booth.published`` (what the server serves now,
        :meth:`BoothStage.publish_booth`) is appended first, in the same ledger transaction: voting never
        opens without it.

        Voting opens at the manifest's ``voting_period.opens`` (:meth:`enforce_period` does it by itself);
        opening earlier needs ``override_reason``, recorded in the entry (``override.reason``). Voting never
        opens once the period has ended (``voting.period_over``)."""
        with self.appending(), self._session() as s, s.no_autoflush:
            row = self._row(s)
            if row.phase != "setup":
                raise Conflict("election.phase", f"voting cannot open in phase '{row.phase}'")
            if row.joint_key_json is None:
                raise Conflict("election.no_joint_key", "the key ceremony has not finished")
            if not row.roll_committed:
                raise Conflict("roll.not_committed", "publish the roll commitment before opening voting")
            now = self._clock().replace(microsecond=0)
            period = self.manifest.voting_period
            if now >= period.closes:
                raise Conflict(
                    "voting.period_over",
                    f"the voting period ended at {_rfc3339(period.closes)}; voting cannot open",
                )
            early = now < period.opens
            if early and override_reason is None:
                raise Conflict(
                    "voting.too_early",
                    f"the voting period opens {_rfc3339(period.opens)}; opening earlier needs an override "
                    "with its reason (recorded on the ledger)",
                )
            extra = self._override(override_reason, early, "opening now")
            booth = None if s.get(BoothRow, row.election_id) else self._booth_entry(s, row)[1]
            opened = self._payload(opened_at=_rfc3339(now), **extra)
            row.phase, row.opened_at = "voting", now
            s.add(row)
            if booth is None:
                index = self._append(EventType.VOTING_OPENED, opened, row)
            else:
                items = [(EventType.BOOTH_PUBLISHED.value, booth), (EventType.VOTING_OPENED.value, opened)]
                index = self._append_many(items, row)
                s.add(self._booth_row(row.election_id, index - 1, booth))
            s.commit()
        return index

    def extend_voting(self, closes: dt.datetime, reason: str) -> int:
        """Append ``voting.extended``: voting now closes at ``closes`` (later than the current end), for
        ``reason``. Only while voting is open and before the current end (a late close is decided in time
        and on the record, never after the fact)."""
        if closes.tzinfo is None or closes.microsecond:
            raise InvalidRequest("voting.extend_time", "the new end is a whole-second time with a time zone")
        closes = closes.astimezone(dt.UTC)
        text = _check_reason(reason)
        with self.appending(), self._session() as s, s.no_autoflush:
            row = self._row(s)
            if row.phase != "voting":
                raise Conflict("election.phase", f"voting cannot be extended in phase '{row.phase}'")
            current = self._voting_end(row.closes_at)
            if self._clock() >= current:
                raise Conflict(
                    "voting.closed", f"voting closed at {_rfc3339(current)}; it cannot be extended"
                )
            if closes <= current:
                raise InvalidRequest(
                    "voting.extend_time", f"the new end must be after the current end {_rfc3339(current)}"
                )
            row.closes_at = closes
            s.add(row)
            index = self._append(
                EventType.VOTING_EXTENDED, self._payload(closes=_rfc3339(closes), reason=text), row
            )
            s.commit()
        return index

    def close_voting(self, *, override_reason: str | None = None) -> int:
        """Append ``voting.closed``; no ballot is accepted afterwards.

        Voting closes at the end of the (extended) period (:meth:`enforce_period` does it by itself, and the
        intake refuses ballots from that instant on), and ``closed_at`` is then that end. Closing earlier
        needs ``override_reason``, recorded in the entry, and ``closed_at`` is the time of closing."""
        with self.appending(), self._session() as s, s.no_autoflush:
            row = self._row(s)
            if row.phase != "voting":
                raise Conflict("election.phase", f"voting cannot close in phase '{row.phase}'")
            now = self._clock().replace(microsecond=0)
            end = self._voting_end(row.closes_at)
            early = now < end
            if early and override_reason is None:
                raise Conflict(
                    "voting.too_early",
                    f"the voting period closes {_rfc3339(end)}; closing earlier needs an override with its "
                    "reason (recorded on the ledger)",
                )
            extra = self._override(override_reason, early, "closing now")
            closed_at = now if early else end
            row.phase, row.closed_at = "closed", closed_at
            s.add(row)
            index = self._append(
                EventType.VOTING_CLOSED, self._payload(closed_at=_rfc3339(closed_at), **extra), row
            )
            s.commit()
        return index

    def enforce_period(self) -> str | None:
        """Open or close voting if the voting period says so now; what the server's period keeper runs.

        Opens (``voting.opened``) once ``opens`` has come, if the key ceremony and the roll commitment are
        done; closes (``voting.closed``) once the (extended) end has come. Returns ``"opened"``,
        ``"closed"`` or ``None``; safe to call at any time, from any thread (idempotent under the lock).
        The decision is read first without the lock (every server process runs a keeper, and the lock is
        the database's on PostgreSQL), and again under it before anything is appended."""
        if self._period_action() is None:
            return None
        with self.appending():
            action = self._period_action()
            if action == "open":
                self.open_voting()
                return "opened"
            if action == "close":
                self.close_voting()
                return "closed"
        return None

    def _period_action(self) -> str | None:
        """``"open"``, ``"close"`` or ``None``: what the voting period asks of the stored phase now."""
        if not self.has_election():
            return None
        row = self.election()
        now = self._clock()
        opens, closes = self.voting_window()
        if row.phase == "setup" and opens <= now < closes:
            if row.joint_key_json is None or not row.roll_committed:
                return None
            return "open"
        if row.phase == "voting" and now >= closes:
            return "close"
        return None

    @replays(EventType.VOTING_EXTENDED)
    def _replay_extended(self, r: Replay, index: int, etype: str, p: dict[str, Any]) -> bool:
        row = r.row
        closes = _parse_rfc3339(p["closes"])
        if row.closes_at is not None and _aware(row.closes_at) >= closes:
            return False
        row.closes_at = closes
        return True

    @replays(EventType.VOTING_OPENED, EventType.VOTING_CLOSED)
    def _replay_opened_closed(self, r: Replay, index: int, etype: str, p: dict[str, Any]) -> bool:
        row = r.row
        phase, column, field = (
            ("voting", "opened_at", "opened_at")
            if etype == EventType.VOTING_OPENED
            else ("closed", "closed_at", "closed_at")
        )
        changed = self._advance(row, phase)
        if getattr(row, column) is None:
            setattr(row, column, _parse_rfc3339(p[field]))
            changed = True
        return changed
