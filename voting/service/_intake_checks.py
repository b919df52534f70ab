"""The intake's ground: its settings and the checks a submission passes before the locks (steps 1 to 3).

:class:`IntakeChecks` holds the fields of :class:`~voting.service.IntakeService` (documented there) and the
checks its forward path (:mod:`voting.service._intake`) runs first: voting is open and the method allowed,
the ballot decodes strictly and its proofs verify (:func:`crypto.verify_ballot`), it repeats no pad, its
values were never accepted before (the uniqueness rules, ``ledger.record.ballot_unique_values``), and a
digital-ID account is bound to one resident (first binding wins). Step 6 repeats the uniqueness and binding
checks under the voter's lock and the election's mutation lock.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from sqlalchemy import CursorResult, Delete, TextClause, Update, bindparam, delete, func, text, update
from sqlmodel import Session, col, select

from crypto import (
    CheckedBallot,
    CryptoError,
    ElectionContext,
    EncryptedBallot,
    InvalidEncoding,
    VerificationError,
    select_engine,
    tracking_code_from_hash,
)
from ledger.log import UNPREPARED
from ledger.record import UniqueValue, ballot_unique_values, repeats_within
from voting.auth import FaceMatcher, JpkiVerifier, OidcRelyingParty, ReferencePhotoSource, SigningApp

from .._db import utcnow
from .._errors import Conflict, Forbidden, RejectedSubmission
from .._intake_db import (
    AuthEvidence,
    BallotUniqueValue,
    DappTransaction,
    IntakeBallot,
    IntakeChallenge,
    OidcPending,
    OidcSubjectBinding,
)

__all__ = [
    "ALIAS_BOUND",
    "CHALLENGE_TTL",
    "DUPLICATE_CODES",
    "MAX_SPOILED",
    "RESERVED",
    "SUBJECT_BOUND",
    "Channel",
    "IntakeChecks",
    "drop_pending",
]

_log = logging.getLogger("tvote.intake")


def _rowcount(s: Session, statement: Update | Delete) -> int:
    """How many rows an UPDATE or DELETE matched. SQLAlchemy answers DML with a CursorResult; sqlmodel's
    ``Session.execute`` is typed as returning a plain Result, which has no ``rowcount``."""
    result = s.execute(statement)
    if not isinstance(result, CursorResult):  # pragma: no cover - SQLAlchemy's answer to every DML statement
        raise TypeError(f"{type(result).__name__} for a DML statement")
    return result.rowcount


Channel = Literal["internet", "kiosk"]
CHALLENGE_TTL: Final[dt.timedelta] = dt.timedelta(minutes=10)
#: default per-election cap on spoiled (challenged) ballots (``Settings.max_spoiled_ballots``)
MAX_SPOILED: Final[int] = 50_000
#: the error code (409) for a ballot that repeats a value of an accepted ballot, per uniqueness rule
DUPLICATE_CODES: Final[dict[str, str]] = {
    "ballot_hash": "ballot.duplicate",
    "ballot_nonce": "ballot.duplicate_nonce",
    "pad": "ballot.duplicate_ciphertext",
}
#: ``BallotUniqueValue.ledger_index`` of a value *reserved* by a cast between its pending commit and its
#: append (the ballot is not on the ledger yet): the database already refuses the value to any other ballot,
#: so two voters racing the same value cannot both be appended; the commit after the append (or the replay
#: of the entry) sets the index, and the orphan clean-up deletes the reservation with its pending evidence
RESERVED: Final[int] = -1
#: 409: this digital-ID account already voted as another resident of the roll (first binding wins)
SUBJECT_BOUND: Final[str] = "oidc.subject_bound"
#: 409: this roll resident already voted with another digital-ID account (first binding wins)
ALIAS_BOUND: Final[str] = "oidc.alias_bound"

#: The statements of a cast's checks and of its unique values, built once and bound by name at each execution:
#: building one costs SQLAlchemy more CPU than executing it once compiled (and cached), and a cast runs each.
#: They run on the session's connection, so they do not flush the session first: where they run, it holds no
#: pending ORM change (``settle_pending`` flushes its own).
_BALLOT_KIND = select(IntakeBallot.kind).where(col(IntakeBallot.ballot_hash) == bindparam("bh"))
#: Unprepared on PostgreSQL (``ledger.log.UNPREPARED``): a generic plan kept from an election's first casts,
#: when the table was nearly empty, scanned the whole table at every later cast.
_USED_VALUES = (
    select(BallotUniqueValue.kind, BallotUniqueValue.value, BallotUniqueValue.ledger_index)
    .where(col(BallotUniqueValue.election_id) == bindparam("eid"))
    .where(col(BallotUniqueValue.value).in_(bindparam("values", expanding=True)))
    .execution_options(**{UNPREPARED: True})
)
#: one multi-row ``INSERT ... VALUES (...), (...)`` per number of rows (a manifest's ballots all have the same
#: number of unique values), built on first use: one statement for the database, where an executemany sent
#: one per row. Written as SQL text: SQLAlchemy cannot cache a Core multi-row ``insert().values([...])`` (it
#: has no cache key), so it compiled that statement again at every cast; a text statement is compiled once.
_INSERT_UNIQUE: dict[int, TextClause] = {}
_UNIQUE_TABLE: Final[str] = str(BallotUniqueValue.__tablename__)


def _insert_unique(rows: int) -> TextClause:
    stmt = _INSERT_UNIQUE.get(rows)
    if stmt is None:
        values = ", ".join(f"(:eid, :v{i}, :k{i}, :bh, :at)" for i in range(rows))
        columns = "election_id, value, kind, ballot_hash, ledger_index"
        stmt = text(f"INSERT INTO {_UNIQUE_TABLE} ({columns}) VALUES {values}")  # noqa: S608 - no input in it
        _INSERT_UNIQUE[rows] = stmt
    return stmt


_FINALISE_UNIQUE = (
    update(BallotUniqueValue)
    .where(col(BallotUniqueValue.ballot_hash) == bindparam("ballot"))
    .where(col(BallotUniqueValue.election_id) == bindparam("eid"))
    .where(col(BallotUniqueValue.ledger_index) == RESERVED)
    .values(ledger_index=bindparam("index"))
)


def drop_pending(s: Session, rows: Sequence[AuthEvidence]) -> int:
    """Delete pending evidence of attempts that never reached the ledger, each with what it held: its
    ballot's reserved unique values, the digital-ID binding written with it, and the one-time JPKI challenge,
    digital-ID authorization or signing transaction it consumed (released again: its ballot was never
    appended, so the booth may retry with them). In ``s``'s transaction; returns how many rows went."""
    for ev in rows:
        eid, bh = ev.election_id, ev.ballot_hash
        s.execute(
            delete(BallotUniqueValue)
            .where(BallotUniqueValue.election_id == eid)  # type: ignore[arg-type]
            .where(BallotUniqueValue.ballot_hash == bh)  # type: ignore[arg-type]
            .where(BallotUniqueValue.ledger_index == RESERVED)  # type: ignore[arg-type]
        )
        s.execute(
            delete(OidcSubjectBinding).where(
                OidcSubjectBinding.evidence_hash == ev.evidence_hash  # type: ignore[arg-type]
            )
        )
        if ev.challenge is not None:
            s.execute(
                update(IntakeChallenge)
                .where(IntakeChallenge.challenge == ev.challenge)  # type: ignore[arg-type]
                .values(used_at=None)
            )
        s.execute(
            update(OidcPending)
            .where(OidcPending.election_id == eid)  # type: ignore[arg-type]
            .where(OidcPending.ballot_hash == bh)  # type: ignore[arg-type]
            .values(used_at=None)
        )
        s.execute(
            update(DappTransaction)
            .where(DappTransaction.election_id == eid)  # type: ignore[arg-type]
            .where(DappTransaction.ballot_hash == bh)  # type: ignore[arg-type]
            .values(used_at=None)
        )
        s.execute(
            delete(AuthEvidence)
            .where(AuthEvidence.evidence_hash == ev.evidence_hash)  # type: ignore[arg-type]
            .where(AuthEvidence.status == "pending")  # type: ignore[arg-type]
        )
    return len(rows)


class _KeyedLocks:
    """One :class:`threading.Lock` per key, created on demand and dropped when nobody holds or waits."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[tuple[str, str], list[Any]] = {}

    @contextmanager
    def hold(self, key: tuple[str, str]) -> Iterator[None]:
        with self._guard:
            slot = self._locks.setdefault(key, [threading.Lock(), 0])
            slot[1] += 1
        try:
            with slot[0]:
                yield
        finally:
            with self._guard:
                slot[1] -= 1
                if slot[1] == 0:
                    del self._locks[key]


@dataclass(frozen=True, slots=True)
class _Ballot:
    """A checked ballot's hash, tracking code, record form and the values the uniqueness rules make unique,
    computed once (from its record and hash: the ballot is decoded once, by the engine that checks it)."""

    hash: bytes
    hex: str
    tracking_code: str
    record: dict[str, Any]
    unique: tuple[UniqueValue, ...]

    @classmethod
    def of(cls, record: dict[str, Any], h: bytes) -> _Ballot:
        """From the ballot's record (``EncryptedBallot.to_dict()``) and its ballot hash ``h``."""
        return cls(h, h.hex(), tracking_code_from_hash(h), record, ballot_unique_values(h.hex(), record))

    def check_shape(self) -> None:
        """What one ballot must not repeat by itself: a pad used twice (422 ``ballot.repeated_ciphertext``).
        Zero randomness (a pad that is the identity) is refused before, by ``verify_ballot`` (protocol
        §9.5 ``selection-randomness``, the verifier's V13: one definition for both)."""
        for earlier, later in repeats_within(self.unique):
            raise RejectedSubmission(
                "ballot.repeated_ciphertext",
                f"the {later.describe()} repeats the {earlier.describe()}: every selection is encrypted "
                "with fresh randomness; the device must encrypt again",
            )

    def insert_rows(self, s: Session, election_id: str, ledger_index: int) -> None:
        """Insert this ballot's :class:`BallotUniqueValue` rows in ``s``'s transaction: ONE multi-row
        ``INSERT ... VALUES`` statement of plain values (a cast has about 16; building an ORM object per row
        cost more CPU than the rest of the private commit, and an executemany sent one statement per row).
        The primary key refuses a value another ballot holds, on the ledger or reserved (``ledger_index``
        :data:`RESERVED`, what a cast inserts before its append); the one statement then inserts none."""
        params: dict[str, Any] = {"eid": election_id, "bh": self.hex, "at": ledger_index}
        for i, v in enumerate(self.unique):
            params[f"k{i}"], params[f"v{i}"] = v.kind, v.value
        s.connection().execute(_insert_unique(len(self.unique)), params)

    def finalise_rows(self, s: Session, election_id: str, ledger_index: int) -> None:
        """The cast's entry is ``ledger_index``: its reserved :class:`BallotUniqueValue` rows now name it
        (one prebuilt ``UPDATE`` through the index on the ballot hash: every row a ballot reserves carries
        its hash)."""
        s.connection().execute(
            _FINALISE_UNIQUE, {"eid": election_id, "ballot": self.hex, "index": ledger_index}
        )


@contextmanager
def _rejecting(what: str) -> Iterator[None]:
    """Map a ballot's decoding or verification failure to a :class:`RejectedSubmission` (``ballot.*``)."""
    try:
        yield
    except VerificationError as e:
        raise RejectedSubmission(f"ballot.{e.check}", e.operator_message) from e
    except (InvalidEncoding, ValueError, TypeError) as e:
        raise RejectedSubmission("ballot.encoding", f"{what} does not decode: {e}") from e
    except CryptoError as e:  # pragma: no cover - every crypto error is one of the above
        raise RejectedSubmission("ballot.invalid", str(e)) from e


def check_with_engine(ctx: ElectionContext, ballot: Mapping[str, Any]) -> CheckedBallot:
    """Decode ``ballot`` strictly and check it (:func:`crypto.verify_ballot`) by the ballot engine
    (:meth:`crypto.BallotEngine.check_ballot`): the native one (``tvote_native``: the ballot decoded once,
    in Rust, its proofs checked with one multiscalar multiplication, its record and hash given back without
    the Python objects) when it is installed, else the reference (``EncryptedBallot.from_dict``, then
    ``verify_ballot``). The ballots accepted and the errors are the reference's either way (the native
    engine's refusal is decided again by the reference, which raises its own error), so the rejection's
    code and message do not depend on the engine."""
    return select_engine("auto").check_ballot(ctx, dict(ballot))


@dataclass
class IntakeChecks:
    """The intake's settings (the fields of :class:`~voting.service.IntakeService`, documented there) and the
    checks every submission passes."""

    election: Any
    jpki: JpkiVerifier | None = None
    oidc: OidcRelyingParty | None = None
    face: FaceMatcher | None = None
    face_reference: ReferencePhotoSource | None = None
    #: the Digital Authentication App (My Number card on the phone), around a JPKI cast
    dapp: SigningApp | None = None
    clock: Callable[[], dt.datetime] = utcnow
    randbytes: Callable[[int], bytes] = secrets.token_bytes
    challenge_ttl: dt.timedelta = CHALLENGE_TTL
    #: at most this many spoiled (challenged) ballots per election
    max_spoiled: int = MAX_SPOILED
    checkpoint_per_receipt: bool = True
    _voter_locks: _KeyedLocks = field(default_factory=_KeyedLocks, init=False, repr=False)
    _ctx: ElectionContext | None = field(default=None, init=False, repr=False)

    # ---------------------------------------------------------------------------------------- helpers

    @property
    def engine(self) -> Any:
        return self.election.engine

    @property
    def ledger(self) -> Any:
        return self.election.ledger

    @property
    def election_id(self) -> str:
        return str(self.election.election_id)

    def _session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def _read_session(self) -> Session:
        """For the checks before the locks, which only read (the service's ``_read_session``: on PostgreSQL
        in autocommit, no BEGIN/ROLLBACK round trips)."""
        session: Session = self.election._read_session()
        return session

    def _autocommit_one(self, statement: Any, params: Mapping[str, Any]) -> None:
        """PostgreSQL: run ONE writing ``statement`` as its own transaction (autocommit: all of it or none,
        without the BEGIN and COMMIT round trips of a transaction around it)."""
        assert self.election._shared, "SQLite runs its writes in a session's transaction"
        with self.election._reader.connect() as c:
            c.execute(statement, params)

    def context(self) -> ElectionContext:
        """The :class:`ElectionContext` ballots are checked against (needs the joint key)."""
        if self._ctx is None:
            self._ctx = ElectionContext(
                base_hash=self.election.base_hash,
                public_key=self.election.joint_key().public_key,
                contests=tuple(self.election.manifest.contest_specs()),
            )
        return self._ctx

    def _require_voting(self, s: Session | None = None, held: Any = None) -> None:
        # the phase and the voting period (``voting.not_open`` / ``voting.closed``), by the service's clock;
        # as ``held`` gives them (read under the election's lock), else read in ``s`` when given (a session
        # the caller has open), else in a session of its own
        self.election.require_voting(s, held=held)

    def _require_method(self, method: str) -> None:
        if method not in self.election.manifest.auth_methods:
            raise Forbidden(
                "auth.method_not_allowed", f"this election does not accept '{method}' authentication"
            )

    # ---------------------------------------------------------------------- the ballot: steps 2 and 3

    @staticmethod
    def _decode_ballot(ballot: Mapping[str, Any]) -> EncryptedBallot:
        """Decode ``ballot`` strictly, without checking it (:meth:`spoil` checks it via the opening)."""
        with _rejecting("the ballot"):
            return EncryptedBallot.from_dict(dict(ballot))

    def _parse_ballot(self, ballot: Mapping[str, Any]) -> _Ballot:
        """Decode ``ballot`` and check it (:func:`check_with_engine`), then its shape."""
        with _rejecting("the ballot"):
            checked = check_with_engine(self.context(), ballot)
        b = _Ballot.of(checked.record, checked.ballot_hash)
        b.check_shape()
        return b

    def _check_unused(self, s: Session, ballot_hash: str) -> None:
        kind = s.connection().execute(_BALLOT_KIND, {"bh": ballot_hash}).scalar()
        if kind is not None:
            what = "cast" if kind == "cast" else "spoiled (challenged)"
            raise Conflict("ballot.duplicate", f"this ballot was already {what}; encrypt a fresh one")

    def _check_unique(self, s: Session, b: _Ballot) -> None:
        """The uniqueness rules (``ledger.record.ballot_unique_values``; the verifier's V15): no value of
        ``b`` was published by an accepted ballot, cast or spoiled. Raises 409 with the rule's code.

        One read: every accepted ballot's hash is one of its unique values, written in the transaction that
        writes its :class:`IntakeBallot` row (reserved before, by a cast), so the ballot's own row is read
        only to refuse a ballot whose hash is taken, for the message that says whether it was cast or
        spoiled."""
        used = {
            (kind, value): index
            for kind, value, index in s.connection().execute(
                _USED_VALUES, {"eid": self.election_id, "values": [v.value for v in b.unique]}
            )
        }
        for v in b.unique:  # in rule order: hash, nonce, then the pads in ballot order
            ledger_index = used.get((v.kind, v.value))
            if ledger_index is None:
                continue
            if v.kind == "ballot_hash" and ledger_index != RESERVED:
                self._check_unused(s, b.hex)  # the friendlier message for the whole ballot
            if v.kind == "ballot_nonce":
                why = "a ballot nonce is used once (a contest moved with its nonce is a copied ballot)"
            else:
                why = "a copied or re-used ciphertext is refused"
            where = (
                "another submission being cast"
                if ledger_index == RESERVED
                else f"ledger entry {ledger_index}"
            )
            raise Conflict(
                DUPLICATE_CODES[v.kind],
                f"the {v.describe()} was already published ({where}): {why}; encrypt a fresh ballot",
            )

    # ---------------------------------------------------------------- the digital-ID binding (step 5)

    def _check_binding_of(self, s: Session, subject: bytes, alias: bytes) -> OidcSubjectBinding | None:
        """First binding wins: refuse the account if it is bound to another alias (``oidc.subject_bound``)
        and the alias if another account is bound to it (``oidc.alias_bound``); return the existing
        binding of this account and alias, or ``None`` if there is none yet. Logs only keyed hashes."""
        rows = s.exec(
            select(OidcSubjectBinding)
            .where(OidcSubjectBinding.election_id == self.election_id)
            .where(
                (OidcSubjectBinding.subject_key == subject.hex())
                | (OidcSubjectBinding.voter_alias == alias.hex())
            )
        ).all()
        for row in rows:
            if row.subject_key == subject.hex() and row.voter_alias != alias.hex():
                _log.warning(
                    "refused %s: digital-ID account %s is bound to voter alias %s, not %s",
                    SUBJECT_BOUND,
                    subject.hex()[:16],
                    row.voter_alias[:16],
                    alias.hex()[:16],
                )
                raise Conflict(
                    SUBJECT_BOUND,
                    "this digital-ID account already voted as another resident of this election's roll",
                )
            if row.voter_alias == alias.hex() and row.subject_key != subject.hex():
                _log.warning(
                    "refused %s: voter alias %s is bound to digital-ID account %s, not %s",
                    ALIAS_BOUND,
                    alias.hex()[:16],
                    row.subject_key[:16],
                    subject.hex()[:16],
                )
                raise Conflict(
                    ALIAS_BOUND,
                    "this resident already voted with another digital-ID account in this election",
                )
        return rows[0] if rows else None

    # ------------------------------------------------------------------------------- spoiling's bound

    def _check_spoil_cap(self, s: Session) -> None:
        spoiled = s.exec(
            select(func.count())
            .select_from(IntakeBallot)
            .where(IntakeBallot.election_id == self.election_id)
            .where(IntakeBallot.kind == "spoiled")
        ).one()
        if spoiled >= self.max_spoiled:
            raise Conflict(
                "spoil.cap_reached",
                f"this election already holds {self.max_spoiled} challenged ballots, its limit; a ballot "
                "can still be cast",
            )
