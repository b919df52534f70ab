"""The service's core: the engine and ledger, the mutation lock and the append, the phase, and crash replay.

Every stage module (:mod:`voting.service._setup`, ``_roll``, ``_ceremony``, ``_joint_key``, ``_period``,
``_tally``, ``_publish``, and the intake's ``_intake``) builds on :class:`ServiceCore` or appends through it
and follows its one pattern: check everything, append the one ledger entry (:meth:`ServiceCore._append`
inside :meth:`ServiceCore.appending`), then commit the private state. Each stage also registers, with
:func:`replays`, the idempotent applier that rebuilds the private effect of its entries;
:meth:`ServiceCore.reconcile` dispatches every unrecorded entry to the applier registered for its type
(:data:`APPLIERS`, one per :class:`ledger.events.EventType`).

Length: a little over 500 lines because the core's append lock (in-process and, on PostgreSQL, across
processes) and the reconciliation it guards are one protocol: kept together, every path that takes the lock
is visible next to the replay that depends on it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Self, TypeVar

from sqlalchemy import bindparam, delete, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from crypto import JointKey, TrusteeCommitments
from ledger.events import BASE_HASH, ELECTION_ID, EventType
from ledger.files import write_atomic

from .._db import (
    ElectionRow,
    RollEntryRow,
    RollNodeRow,
    TrusteeRow,
    create_tables,
    make_engine,
    make_private_dir,
    normalise_database_url,
    utcnow,
)
from .._errors import Conflict, NotFound, ServiceError, ServiceUnavailable
from .._manifest import Manifest, parse_manifest
from .._settings import Settings
from ._election_lock import ElectionLock

if TYPE_CHECKING:
    from ._intake_replay import BallotReplay

__all__ = [
    "APPLIERS",
    "ELECTION_LOCK_KEY",
    "ORPHAN_MIN_AGE",
    "PHASES",
    "ReconcileReport",
    "Replay",
    "ServiceCore",
    "ledger_entries",
    "log_signer",
    "open_ledger",
    "replays",
    "witness_policy",
]


PHASES = ("setup", "voting", "closed", "tallied", "decrypted", "declared")

#: PostgreSQL advisory-lock key of the election's mutation lock (:meth:`ServiceCore.appending`; one election
#: per database), distinct from the ledger's own key (``ledger.log``), which its appends take inside it
ELECTION_LOCK_KEY = int.from_bytes(
    hashlib.sha256(b"tvote/election-mutation").digest()[:8], "big", signed=True
)

_DIVERGED = (
    "a ledger entry was appended but the private state was not recorded; fix the storage and restart the "
    "server (the ledger is the truth)"
)


def _voter_lock_key(election_id: str, voter: str) -> int:
    """PostgreSQL advisory-lock key of one voter's casts (:meth:`ServiceCore.casting`)."""
    tag = b"tvote/voter\0" + election_id.encode() + b"\0" + voter.encode()
    return int.from_bytes(hashlib.sha256(tag).digest()[:8], "big", signed=True)


#: how many casts of one process run step 6 at once (:meth:`ServiceCore.casting`): at most two pool
#: connections each, leaving the rest of the service's pool to the other requests
CAST_SLOTS = 4

#: pending evidence younger than this survives a reconciliation that another server may run beside this one
#: (start-up, catch-up): a cast holds it for well under a second between its two commits
ORPHAN_MIN_AGE = dt.timedelta(minutes=2)

#: what :meth:`ServiceCore.casting` reads under the locks (every cast on PostgreSQL), built once: the phase
#: and the voting period's end (the cast's step 6 checks them: they cannot change while the lock is held
#: shared) and the private state's high-water mark (:meth:`ServiceCore._lifecycle_unrecorded`)
_SYNC_STATE = select(ElectionRow.phase, ElectionRow.ledger_synced, ElectionRow.closes_at)
#: :meth:`ServiceCore.record_synced`'s UPDATE, built once and bound by name at each execution (a cast runs it:
#: building a statement costs SQLAlchemy more CPU than executing a compiled one)
_RECORD_SYNCED = (
    update(ElectionRow)
    .where(col(ElectionRow.election_id) == bindparam("eid"))
    .where(col(ElectionRow.ledger_synced) <= bindparam("index"))
    .values(ledger_synced=bindparam("synced"))
)


class _RecentIndices:
    """The last :data:`_RECENT` ledger indices added (thread-safe): a bounded memory of entries' types."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._order: deque[int] = deque()
        self._set: set[int] = set()

    def add(self, index: int) -> None:
        with self._lock:
            if index in self._set:
                return
            self._order.append(index)
            self._set.add(index)
            if len(self._order) > _RECENT:
                self._set.discard(self._order.popleft())

    def __contains__(self, index: object) -> bool:
        with self._lock:
            return index in self._set


#: how many indices :class:`_RecentIndices` keeps (a few seconds of casts at the target rate)
_RECENT = 4096


def _hash_secret(s: str) -> str:
    return hashlib.sha256(s.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    """What :meth:`ElectionService.reconcile` did.

    ``start``/``ledger_size``: the ledger range it replayed; ``repaired``: ``(index, type)`` of every entry
    whose private effect was missing and is now recorded; ``orphans_removed``: private rows written before an
    append that never happened (pending evidence, an unpublished election); ``problems``: differences it
    could not repair (e.g. evidence that was never stored), one operator-readable line each.
    """

    start: int
    ledger_size: int
    repaired: tuple[tuple[int, str], ...] = ()
    orphans_removed: int = 0
    problems: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "ledger_size": self.ledger_size,
            "repaired": [{"index": i, "type": t} for i, t in self.repaired],
            "orphans_removed": self.orphans_removed,
            "problems": list(self.problems),
        }


# ----------------------------------------------------------------------------------------------- ledger


def log_signer(settings: Settings, election_id: str) -> Any:
    """The ledger's Ed25519 checkpoint key, kept in ``data_dir/ledger-signing.key`` (created on first use).

    The log origin is ``settings.log_origin`` or ``tvote/<election_id>``. Every server process of the
    election signs checkpoints with this one key: processes sharing a data directory read the same file (two
    creating it at once: the second reads the first's, the file is never replaced); a second machine needs a
    copy of it (docs/operator-guide.md, "Scaling and operations").
    """
    from ledger.record import LogSigner

    origin = settings.log_origin or f"tvote/{election_id}"
    path = settings.data_dir / "ledger-signing.key"
    if not path.exists():
        make_private_dir(path.parent)
        try:
            write_atomic(path, LogSigner.generate(origin).skey + "\n", mode=0o600, overwrite=False)
        except FileExistsError:
            pass  # another process of this election created it first: use that one
    signer = LogSigner.from_skey(path.read_text(encoding="ascii"))
    if signer.name != origin:
        raise Conflict("ledger.key", f"{path.name} is the key of another log ({signer.name!r})")
    return signer


def witness_policy(manifest: Manifest) -> Any:
    """The ledger's witness policy from the manifest's witness keys and quorum."""
    from ledger.record import WitnessKey, WitnessPolicy

    keys = tuple(
        WitnessKey(k.name, bytes.fromhex(k.bls_public_key), bytes.fromhex(k.pop))
        for k in manifest.witnesses.keys
    )
    return WitnessPolicy(keys, manifest.witnesses.quorum)


def open_ledger(settings: Settings, manifest: Manifest) -> Any:
    """The election's :class:`ledger.Ledger` on the service's database (its own tables and engine)."""
    from ledger import Ledger, LedgerConfig

    config = LedgerConfig(signer=log_signer(settings, manifest.election_id), policy=witness_policy(manifest))
    return Ledger(normalise_database_url(settings.effective_database_url), config)


def ledger_entries(
    ledger: Any, chunk: int = 2000, *, start: int = 0, stop: int | None = None
) -> Iterator[tuple[int, str, dict[str, Any]]]:
    """Iterate ``(index, type, payload)`` over the committed ledger entries ``[start, stop)``, in order
    (``stop`` defaults to the ledger's size when called)."""
    size = ledger.size if stop is None else stop
    for first in range(start, size, chunk):
        yield from ledger.payloads(first, min(size, first + chunk))


def _event_type(type_: str) -> str:
    """The service writes only the record's event types (``ledger.events.EventType``): an unknown one is a
    bug, refused before it reaches the append-only ledger."""
    return EventType(type_).value


# ------------------------------------------------------------------------------------- replay registry


@dataclass(slots=True)
class Replay:
    """One reconciliation's state, handed to every applier: its session, the election row (committed by the
    driver after the last entry), the intake's ballot replay, and the problems found so far."""

    s: Session
    row: ElectionRow
    ballots: BallotReplay
    problems: list[str] = field(default_factory=list)


#: ``applier(service, replay, index, type, payload) -> bool``: record the private effect of entry ``index`` if
#: it is missing; ``True`` if it was. Idempotent: an entry whose effect is recorded changes nothing.
Applier = Callable[[Any, Replay, int, str, dict[str, Any]], bool]
#: ``page(service, replay, entries) -> [bool]``: the applier of each of the consecutive ``(index, type,
#: payload)`` ``entries``, in order, in fewer statements; its answers and writes are exactly the applier's
PageApplier = Callable[[Any, Replay, list[tuple[int, str, dict[str, Any]]]], list[bool]]
_A = TypeVar("_A", bound=Callable[..., bool])
#: at most this many consecutive entries of a type with a page applier are replayed as one page
REPLAY_PAGE = 500


@dataclass(frozen=True, slots=True)
class _Registered:
    apply: Applier
    #: the applier itself checks that the entry is this election's (else the driver compares ``base_hash``)
    own_check: bool
    #: the same, for a page of entries (:data:`PageApplier`), for types replayed in bulk
    page: PageApplier | None = None


#: the replay applier of every event type, registered by the stage that writes it (:func:`replays`)
APPLIERS: dict[str, _Registered] = {}


def replays(
    *types: EventType, own_check: bool = False, page: PageApplier | None = None
) -> Callable[[_A], _A]:
    """Register the decorated function (a stage method, or a function of the service) as the replay applier
    of ``types``; every event type has exactly one. Unless ``own_check``, the driver first refuses an entry
    whose ``base_hash`` is not this election's (``reconcile.foreign_entry``). With ``page`` (which must
    check the entries itself: ``own_check``), runs of consecutive entries of ``types`` are replayed by it,
    up to :data:`REPLAY_PAGE` at a time, instead of one call of the applier each."""
    if page is not None and not own_check:
        raise RuntimeError("a page applier checks its entries' election itself (own_check)")

    def register(fn: _A) -> _A:
        for t in types:
            if t in APPLIERS:
                raise RuntimeError(f"two replay appliers for {t}")
            APPLIERS[t] = _Registered(fn, own_check, page)
        return fn

    return register


# ------------------------------------------------------------------------------------------------ core


class ServiceCore:
    """The engine, the ledger, the lock, the append and the phase; the stages build on it."""

    def __init__(
        self,
        engine: Engine,
        ledger: Any | None = None,
        *,
        settings: Settings | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.engine = engine
        self._ledger = ledger
        self.settings = settings or Settings(environment="development")
        self._clock = clock
        self._elock = ElectionLock()  # exclusive: appending(), reconcile(); shared: casting()
        # casts in step 6 at once in this process: each holds a lock connection and a session connection of
        # the service's pool (15, ``voting._db.make_engine``), so without a bound 15 concurrent casts would
        # each hold a lock connection and wait for a session connection that never comes (the pool's 30 s
        # timeout)
        self._cast_slots = threading.BoundedSemaphore(CAST_SLOTS)
        self._open_lock = threading.Lock()  # opening the ledger
        #: several processes share this database (PostgreSQL): appending() also takes the database lock
        self._shared = engine.dialect.name != "sqlite"
        #: what :meth:`_read_session` binds: on PostgreSQL the same pool in autocommit, so a read-only session
        #: sends no BEGIN and no ROLLBACK (READ COMMITTED gives each statement its own snapshot either way)
        self._reader = engine.execution_options(isolation_level="AUTOCOMMIT") if self._shared else engine
        self._appended = 0  # appends made by this process (to detect an append whose record failed)
        self._local = threading.local()  # .appended: appends made by this thread (casts run side by side)
        self._diverged: str | None = None
        self._cache: dict[str, Any] = {}
        #: indices of ``ballot.cast`` entries this process appended or read lately (an entry never changes):
        #: what :meth:`_lifecycle_unrecorded` finds at ``ledger_synced`` while other casts are recording
        self._casts = _RecentIndices()
        create_tables(engine)

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Callable[[], dt.datetime] = utcnow) -> Self:
        make_private_dir(settings.data_dir)
        engine = make_engine(settings.effective_database_url)
        create_tables(engine)
        return cls(engine, settings=settings, clock=clock)

    @property
    def clock(self) -> Callable[[], dt.datetime]:
        """The service's time source (injected; the voting period is enforced against it)."""
        return self._clock

    @property
    def ledger(self) -> Any:
        """The election's :class:`ledger.Ledger` (opened on first use, once the election exists)."""
        if self._ledger is None:
            with self._open_lock:
                if self._ledger is None:
                    self._ledger = open_ledger(self.settings, self.manifest)
        return self._ledger

    def close(self) -> None:
        """Stop the ledger's sequencer and dispose of the engine."""
        if self._ledger is not None:
            self._ledger.close()
            self._ledger = None
        self.engine.dispose()

    # ------------------------------------------------------------------------------------ reading state

    def _session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def _read_session(self) -> Session:
        """A session for reads only (a cast's checks before its locks): on PostgreSQL each statement commits
        by itself, which saves the transaction's BEGIN and ROLLBACK round trips and is what READ COMMITTED
        reads see anyway (a snapshot per statement); on SQLite an ordinary session. Never write in it: there
        is no transaction to roll back."""
        return Session(self._reader, expire_on_commit=False)

    def _row(self, s: Session) -> ElectionRow:
        row = s.exec(select(ElectionRow)).first()
        if row is None:
            raise NotFound("election.none", "no election has been created on this server")
        return row

    def election(self) -> ElectionRow:
        """A detached copy of the election row (private columns included: never return it from a route).
        One read, in a read session (no transaction on PostgreSQL)."""
        with self._read_session() as s:
            return self._row(s)

    def has_election(self) -> bool:
        """Whether an election was created here: one read in a read session (the keepers ask every tick)."""
        with self._read_session() as s:
            return s.exec(select(ElectionRow)).first() is not None

    @property
    def manifest(self) -> Manifest:
        m = self._cache.get("manifest")
        if m is None:
            row = self.election()
            m = parse_manifest(json.loads(row.manifest_json))
            if row.phase != "creating":  # published: immutable (a 'creating' row may be an orphan)
                self._cache["manifest"] = m
        return m

    @property
    def election_id(self) -> str:
        return self.manifest.election_id

    @property
    def base_hash(self) -> bytes:
        return self.manifest.base_hash

    @property
    def phase(self) -> str:
        return self.election().phase

    @property
    def roll_key(self) -> bytes:
        """The election's 32-byte roll key (keys voter aliases and roll match keys). SECRET."""
        return bytes.fromhex(self.election().roll_key_hex)

    def joint_key(self) -> JointKey:
        jk = self._cache.get("joint_key")
        if jk is None:
            with self._session() as s:
                row = self._row(s)
                if row.joint_key_json is None:
                    raise Conflict("election.no_joint_key", "the key ceremony has not finished")
                jk = JointKey.from_dict(json.loads(row.joint_key_json))
            self._cache["joint_key"] = jk
        return jk

    def require_phase(self, *phases: str) -> ElectionRow:
        row = self.election()
        if row.phase not in phases:
            raise Conflict(
                "election.phase", f"not allowed in phase '{row.phase}' (needs {' or '.join(phases)})"
            )
        return row

    def _payload(self, **fields: Any) -> dict[str, Any]:
        return {ELECTION_ID: self.election_id, BASE_HASH: self.base_hash.hex(), **fields}

    @contextmanager
    def appending(self) -> Iterator[None]:
        """Hold the election's mutation lock for a check → append → record sequence (public API).

        Every ledger append of this election but a ballot cast (lifecycle steps here, kiosk commands, spoils,
        the evidence export) runs inside ``with service.appending():``, which holds the lock *exclusive*:
        it serialises them against each other and waits for the casts under way (which hold it shared,
        :meth:`casting`) while keeping new ones out, so a phase change is wholly before or after every cast
        (re-entrant: a holder may nest it). The caller's rule (docs/operator-guide.md): read and check
        first with no write pending in any session, append, then write the private state (advancing
        ``ElectionRow.ledger_synced``). If the private write fails after an append, the ledger is ahead of
        the private state: the service then refuses every further mutation (``service.diverged``, 503)
        rather than act on stale state, until :meth:`reconcile` has rebuilt it from the ledger.

        The lock is an in-process reader-writer lock (``_election_lock``) and, on PostgreSQL, also the
        database's **transaction-level advisory lock** of the election (:data:`ELECTION_LOCK_KEY`, taken by
        the outermost holder on a dedicated connection of the service's pool whose transaction stays open
        until the block ends; the database releases it if the process or its session dies). So any number of
        server processes, on one machine or several, serialise their mutations on the one database: what a
        holder reads inside the block (phase, voter ``seq``, kiosk sessions, spoiled count, unique values)
        was committed by whichever process held the lock before. On taking it, the outermost holder also
        compares ``ElectionRow.ledger_synced`` and the lower bound of the pending casts' entries with the
        stored ledger's size: a smaller value means another process appended and died before recording, and
        the missing private state is replayed first
        (:meth:`reconcile`, under this lock; pending evidence younger than :data:`ORPHAN_MIN_AGE` is kept).
        SQLite serves one process (``tvote serve`` refuses ``--workers`` > 1 on it): the in-process lock is
        all there is.
        """
        with self._elock.exclusive():
            outer = self._elock.depth == 1
            conn = self._lock_database() if outer else None
            try:
                if self._diverged is not None:
                    raise ServiceUnavailable("service.diverged", self._diverged)
                if outer and self._shared:
                    self._catch_up()
                before = self._appended
                try:
                    yield
                except BaseException:
                    if self._appended != before:
                        self._diverged = _DIVERGED
                    raise
            finally:
                if conn is not None:
                    self._unlock_database(conn)

    @contextmanager
    def casting(self, voter: str) -> Iterator[Any]:
        """Hold the election's mutation lock *shared* and the lock of voter alias ``voter`` (hex) for one
        ballot cast's check → pending commit → append → record sequence (the intake's step 6).

        Casts of different voters run side by side, in this process and in every other one on the database;
        casts of one voter are serialised (the intake holds its in-process voter lock around this; on
        PostgreSQL this takes the database's transaction-level advisory lock of the voter, then the
        election's lock in shared mode, on one dedicated connection). Every :meth:`appending` holder (a
        phase change, a kiosk command, a spoil, reconciliation) excludes them all: a cast is wholly before
        or wholly after it. The uniqueness of values across voters is the database's (the cast reserves its
        values with its pending evidence, ``voting.service._intake``).

        On PostgreSQL, before the caller checks anything, an entry that a lifecycle step appended in a
        process that died before recording it (the entry at ``ElectionRow.ledger_synced`` is not a
        ``ballot.cast``) is replayed first, under the exclusive lock, so no cast acts on a phase the ledger
        has left. A cast's own unrecorded entry is covered by its pending evidence (the voter's next cast
        or reconciliation replays it). If this thread appended and its private write failed, the service
        refuses further mutations (``service.diverged``) as :meth:`appending` does.

        Yields the election row's ``phase`` and ``closes_at`` as read under the locks on PostgreSQL (they
        cannot change until the block ends: every change takes the lock exclusive), so the caller checks
        them without reading them again; ``None`` on SQLite or inside :meth:`appending` (read them).
        """
        if self._elock.depth:  # inside appending(): already exclusive
            yield None
            return
        caught_up = False
        while True:
            behind = False
            with self._cast_slots, self._elock.shared():
                conn = self._lock_shared(voter)
                try:
                    if self._diverged is not None:
                        raise ServiceUnavailable("service.diverged", self._diverged)
                    state = None if conn is None else conn.execute(_SYNC_STATE).first()
                    behind = state is not None and not caught_up and self._lifecycle_unrecorded(state)
                    if not behind:
                        before = getattr(self._local, "appended", 0)
                        try:
                            yield state
                        except BaseException:
                            if getattr(self._local, "appended", 0) != before:
                                self._diverged = _DIVERGED
                            raise
                        return
                finally:
                    if conn is not None:
                        self._unlock_database(conn)
            with self.appending():  # the outermost holder catches up (another process died mid-step)
                caught_up = True

    def _lock_shared(self, voter: str) -> Any:
        """PostgreSQL: a dedicated connection in a transaction holding the voter's advisory lock, then the
        election's in shared mode (the same order everywhere: no lock cycle). SQLite: ``None``."""
        if not self._shared:
            return None
        key = _voter_lock_key(self.election_id, voter)
        conn = self.engine.connect()
        try:
            # one statement, one round trip; its target list is evaluated in order: the voter's lock first
            conn.exec_driver_sql(
                f"SELECT pg_advisory_xact_lock({key}), pg_advisory_xact_lock_shared({ELECTION_LOCK_KEY})"
            )
        except BaseException:
            conn.invalidate()
            conn.close()
            raise
        return conn

    def _lifecycle_unrecorded(self, row: Any) -> bool:
        """Under the shared lock: whether the first entry the private state has not recorded is not a cast
        (a lifecycle step's, whose process died between its append and its record). ``row`` is the
        election's :data:`_SYNC_STATE`, read on the lock's own connection (every cast on PostgreSQL asks:
        no second connection, three columns). The
        ledger is asked only what this process does not know: its stored size when ``ledger_synced`` is
        not below :attr:`ledger.log.Ledger.known_size`, and the entry at ``ledger_synced`` unless it is a
        cast this process appended or read lately (while other casts record, it usually is)."""
        if row is None or row.phase == "creating":
            return False
        synced = int(row.ledger_synced)
        ledger = self.ledger
        # an entry at ``synced`` exists if this process knows of it (no read); else the stored size tells
        if synced >= ledger.known_size and synced >= ledger.size:
            return False
        if synced in self._casts:  # a cast this process appended or read: no read of the (large) entry
            return False
        for index, etype, _payload in ledger_entries(ledger, start=synced, stop=synced + 1):
            if etype == EventType.BALLOT_CAST:
                self._casts.add(index)
                return False
            return True
        return False  # pragma: no cover - the entry exists (the size said so)

    def _lock_database(self) -> Any:
        """PostgreSQL: a dedicated connection in a transaction holding the election's advisory lock (waits
        for the holder in another process). SQLite: ``None`` (one process)."""
        if not self._shared:
            return None
        conn = self.engine.connect()
        try:
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({ELECTION_LOCK_KEY})")
        except BaseException:
            conn.invalidate()
            conn.close()
            raise
        return conn

    @staticmethod
    def _unlock_database(conn: Any) -> None:
        """End the lock connection's transaction: the database releases its transaction-level locks. It
        only locked and read, so it is committed: psycopg forgets every statement it prepared on the
        connection at a ROLLBACK (and sends ``DEALLOCATE ALL``), and the pooled connection's next reads would
        be parsed and planned anew until prepared again."""
        try:
            conn.commit()
        except Exception:  # the session is gone, and the lock with it
            conn.invalidate()
        conn.close()

    def _catch_up(self) -> None:
        """Under the database lock: replay what another process appended but did not record (it died
        between its append and its commit), so that this holder never acts on state behind the ledger."""
        from ._intake_replay import pending_floor

        with self._session() as s:
            row = s.exec(select(ElectionRow)).first()
            floor = pending_floor(s, row.election_id) if row is not None else None
        if row is None or row.phase == "creating":
            return
        size = self.ledger.size
        if row.ledger_synced >= size and (floor is None or floor >= size):
            return
        try:
            self._reconcile(False, orphan_min_age=ORPHAN_MIN_AGE)
        except ServiceError as e:
            self._diverged = f"reconciliation failed: {e.message}"
            raise
        self._cache.clear()

    def _append(self, type_: str, payload: Mapping[str, Any], row: ElectionRow) -> int:
        """Append one entry. Called inside :meth:`appending` with no write pending in any session (SQLite has
        one writer: the ledger's own transaction must not wait on ours), after every check; the private
        state is written afterwards, in the transaction that commits ``row`` (whose ``ledger_synced`` this
        advances past the new entry)."""
        appended = self.ledger.append(_event_type(type_), dict(payload))
        self._count_append()
        index = int(appended.index)
        row.ledger_synced = max(row.ledger_synced, index + 1)
        return index

    def _append_many(self, items: Sequence[tuple[str, dict[str, Any]]], row: ElectionRow) -> int:
        """Append several entries atomically (one ledger transaction); returns the last index."""
        appended = self.ledger.append_many([(_event_type(t), p) for t, p in items])
        self._count_append()
        index = int(appended[-1].index)
        row.ledger_synced = max(row.ledger_synced, index + 1)
        return index

    def record_synced(self, s: Session, index: int) -> None:
        """For a collaborator's private write after :meth:`append_entry` (same session, same transaction):
        the private state now covers ledger entry ``index`` (docs/operator-guide.md, reconciliation).
        A prebuilt UPDATE on the session's connection: an :class:`ElectionRow` loaded in ``s`` is not
        refreshed (the callers load none in that session)."""
        s.connection().execute(_RECORD_SYNCED, {"eid": self.election_id, "index": index, "synced": index + 1})

    def append_entry(self, type_: str, payload: Mapping[str, Any]) -> Any:
        """Append one entry for a collaborator (ballot intake); call it inside :meth:`appending`.
        Returns the ledger's ``Appended`` (index and entry hash)."""
        appended = self.ledger.append(_event_type(type_), dict(payload))
        self._count_append()
        if type_ == EventType.BALLOT_CAST:
            self._casts.add(int(appended.index))
        return appended

    def _count_append(self) -> None:
        self._appended += 1  # exclusive holders: no other thread appends meanwhile
        self._local.appended = getattr(self._local, "appended", 0) + 1

    # ---------------------------------------------------------------------------------- reconciliation

    def reconcile(self, *, full: bool = False, orphan_min_age: dt.timedelta | None = None) -> ReconcileReport:
        """Bring the private state up to the ledger (the truth); afterwards the service accepts changes again.

        Replays, through idempotent appliers, every entry the private state has not recorded
        (``ElectionRow.ledger_synced`` up to the ledger's size) — with ``full``, every entry, which also
        compares the whole private state with the ledger and reports what differs — then deletes orphans
        (pending evidence whose ballot was never appended; an election row whose manifest never was) and
        stores the new high-water mark, all in one transaction. Runs at start-up
        (:func:`voting.app.create_app`) and on ``POST /api/v1/admin/reconcile`` (``tvote admin reconcile``);
        clears ``service.diverged``.

        Raises :class:`ServiceUnavailable` (``reconcile.*``) if the private state contradicts the ledger in a
        way it cannot repair (e.g. the ledger holds fewer entries than were recorded, or a stored roll differs
        from its published commitment); the service then stays diverged (503) until an operator intervenes.

        It runs under the election's mutation lock (:meth:`appending`'s, the database's advisory lock on
        PostgreSQL), so no process is between its pending-evidence commit and its append while orphans are
        detected: a pending row seen under the lock belongs to an attempt that ended. ``orphan_min_age``
        additionally keeps pending rows younger than that (what a server starting beside running ones
        passes, :data:`ORPHAN_MIN_AGE`: a guard should a holder's database session be lost mid-cast).
        """
        with self._elock.exclusive():
            conn = self._lock_database() if self._elock.depth == 1 else None
            try:
                report = self._reconcile(full, orphan_min_age=orphan_min_age)
            except ServiceError as e:
                self._diverged = f"reconciliation failed: {e.message}"
                raise
            except Exception as e:
                self._diverged = f"reconciliation failed: {type(e).__name__} (fix the storage and retry)"
                raise
            finally:
                if conn is not None:
                    self._unlock_database(conn)
            self._diverged = None
            self._cache.clear()
            return report

    @property
    def diverged(self) -> str | None:
        """Why mutations are refused (``service.diverged``), or ``None``."""
        return self._diverged

    def _reconcile(self, full: bool, *, orphan_min_age: dt.timedelta | None = None) -> ReconcileReport:
        from ._intake_replay import BallotReplay

        with self._session() as s:
            first = s.exec(select(ElectionRow)).first()
        if first is None:
            return ReconcileReport(0, 0)
        self._cache.clear()
        ledger = self.ledger
        size = int(ledger.size)
        if first.phase == "creating" and size == 0:  # the manifest was never appended: not an election
            with self._session() as s:
                self._delete_election_rows(s, first.election_id)
            self._ledger = None
            ledger.close()
            self._cache.clear()
            return ReconcileReport(0, 0, orphans_removed=1)
        if first.ledger_synced > size:
            raise ServiceUnavailable(
                "reconcile.ledger_behind",
                f"the private state recorded {first.ledger_synced} ledger entries but the ledger holds "
                f"{size}; restore the ledger, do not accept changes",
            )
        start = 0 if full else first.ledger_synced
        if not full:  # a cast's entry may lie below the high-water mark: from its pending evidence's bound
            from ._intake_replay import pending_floor

            with self._session() as s:
                floor = pending_floor(s, first.election_id)
            if floor is not None:
                start = max(0, min(start, floor))
        repaired: list[tuple[int, str]] = []
        ballots = BallotReplay(first.election_id, self._clock())
        with self._session() as s:
            row = self._row(s)
            replay = Replay(s, row, ballots)
            problems = replay.problems
            page: list[tuple[int, str, dict[str, Any]]] = []  # consecutive entries of one page applier
            paged: PageApplier | None = None
            for index, etype, payload in ledger_entries(ledger, start=start, stop=size):
                registered = APPLIERS.get(etype)
                by_page = registered.page if registered is not None else None
                if page and (by_page is not paged or len(page) >= REPLAY_PAGE):
                    self._replay_page(replay, paged, page, repaired)
                if by_page is not None:
                    paged = by_page
                    page.append((index, etype, payload))
                elif self._replay(replay, index, etype, payload):
                    repaired.append((index, etype))
            self._replay_page(replay, paged, page, repaired)
            orphans = ballots.finish(s, full=full, min_age=orphan_min_age)
            problems.extend(ballots.problems)
            if full and row.phase == "creating":  # pragma: no cover - a manifest entry always precedes
                problems.append("the election row is still 'creating' although the ledger holds entries")
            row.ledger_synced = size
            s.add(row)
            s.commit()
        return ReconcileReport(start, size, tuple(repaired), orphans, tuple(problems))

    @staticmethod
    def _advance(row: ElectionRow, phase: str) -> bool:
        order = ("creating", *PHASES)
        if order.index(row.phase) < order.index(phase):
            row.phase = phase
            return True
        return False

    def _replay(self, r: Replay, index: int, etype: str, p: dict[str, Any]) -> bool:
        """Record the private effect of entry ``index`` if it is missing (the applier registered for its type,
        :data:`APPLIERS`); ``True`` if it was."""
        registered = APPLIERS.get(etype)
        if (registered is None or not registered.own_check) and p.get(BASE_HASH) != r.row.base_hash:
            raise ServiceUnavailable("reconcile.foreign_entry", f"entry {index} is not of this election")
        if registered is None:
            raise ServiceUnavailable("reconcile.unknown_entry", f"entry {index}: unknown entry type")
        return registered.apply(self, r, index, etype, p)

    def _replay_page(
        self,
        r: Replay,
        by: PageApplier | None,
        page: list[tuple[int, str, dict[str, Any]]],
        repaired: list[tuple[int, str]],
    ) -> None:
        """Replay the consecutive ``page`` of entries by their page applier ``by`` (as :meth:`_replay` would
        each, in order), note the repaired ones and empty ``page``."""
        if page:
            assert by is not None
            changed = by(self, r, list(page))
            repaired.extend((index, etype) for (index, etype, _), c in zip(page, changed, strict=True) if c)
            page.clear()

    # ------------------------------------------------------------------------------- rows shared by stages

    def _trustees(self, s: Session) -> dict[int, TrusteeRow]:
        return {r.index: r for r in s.exec(select(TrusteeRow).order_by(TrusteeRow.index))}  # type: ignore[arg-type]

    def _commitments(self, s: Session) -> dict[int, TrusteeCommitments]:
        return {
            i: TrusteeCommitments.from_dict(json.loads(r.commitments_json))
            for i, r in self._trustees(s).items()
            if r.commitments_json is not None
        }

    @staticmethod
    def _delete_election_rows(s: Session, election_id: str) -> None:
        s.rollback()
        s.execute(delete(TrusteeRow).where(TrusteeRow.election_id == election_id))  # type: ignore[arg-type]
        s.execute(delete(RollEntryRow).where(RollEntryRow.election_id == election_id))  # type: ignore[arg-type]
        s.execute(delete(RollNodeRow).where(RollNodeRow.election_id == election_id))  # type: ignore[arg-type]
        s.execute(delete(ElectionRow).where(ElectionRow.election_id == election_id))  # type: ignore[arg-type]
        s.commit()
