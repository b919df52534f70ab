"""SQLModel tables for the election service's *private* state, and the engine factory.

The public record lives in the ledger (:mod:`ledger`); these tables hold what the service needs to run and
must never publish: the roll key, roll entries (voter alias + match key only: never a name, a birth date or a
My Number), hashed trustee credentials. Ballot intake keeps its own private tables (challenges, voter state,
authentication evidence) in ``voting._intake_db`` on the same metadata and engine.
API response models are separate pydantic models (``voting/api/*``), so no private column can leak
through a route.

Engines: SQLite (the default) runs in WAL mode with ``synchronous=FULL`` and foreign keys on, so an
acknowledged write survives a crash; PostgreSQL is selected by a ``postgresql://`` URL and uses psycopg 3.

Files: the data directory is created ``0700`` (:func:`make_private_dir`) and the SQLite file ``0600``
before SQLite opens it; SQLite gives its ``-wal`` and ``-shm`` files the database file's mode, so they are
``0600`` too (``tvote serve`` also sets the umask to ``077``).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import BigInteger, Column, ForeignKey, Integer, LargeBinary, String, UniqueConstraint, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError
from sqlmodel import Field, SQLModel, create_engine

from ledger.log import ping_when_idle, tune_postgres

__all__ = [
    "BallotCheckRow",
    "BoothRow",
    "ComplaintRow",
    "ElectionRow",
    "PartialRow",
    "RollEntryRow",
    "RollNodeRow",
    "ShareRow",
    "TrusteeRow",
    "create_tables",
    "make_engine",
    "make_private_dir",
    "normalise_database_url",
    "once_more_if_disconnected",
    "utcnow",
]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class ElectionRow(SQLModel, table=True):
    """The one election this server runs (phase, roll key, cached public facts)."""

    __tablename__ = "tv_election"

    election_id: str = Field(primary_key=True, max_length=64)
    manifest_json: str
    base_hash: str = Field(max_length=64)
    #: creating → setup → voting → closed → tallied → decrypted → declared. ``creating``: the row was written
    #: before ``election.manifest`` was appended; reconciliation makes it ``setup`` (the manifest is on the
    #: ledger) or deletes it (it is not).
    phase: str = Field(default="setup", max_length=16)
    #: 32-byte secret (hex) keying voter aliases and roll match keys. PRIVATE.
    roll_key_hex: str = Field(max_length=64)
    roll_size: int | None = None
    roll_root: str | None = Field(default=None, max_length=64)
    roll_committed: bool = False
    #: the published JointKey object (``crypto.JointKey.to_dict``), once the ceremony ended
    joint_key_json: str | None = None
    #: the ``tally.encrypted`` payload, once computed
    tally_json: str | None = None
    created_at: dt.datetime = Field(default_factory=utcnow)
    opened_at: dt.datetime | None = None
    closed_at: dt.datetime | None = None
    #: the end of voting as moved by the last ``voting.extended`` entry; ``None``: the manifest's
    #: ``voting_period.closes``
    closes_at: dt.datetime | None = None
    result_json: str | None = None
    #: How many ledger entries the private state has recorded: every private write after an append sets it
    #: to the appended index + 1 in the same transaction. Entries at or above it are reconciled on start-up
    #: (``ElectionService.reconcile``).
    ledger_synced: int = 0


class RollEntryRow(SQLModel, table=True):
    """One eligible voter: alias (HMAC of the resident id) and match key (HMAC of matching data)."""

    __tablename__ = "tv_roll_entry"
    __table_args__ = (UniqueConstraint("election_id", "alias"),)

    id: int | None = Field(default=None, primary_key=True)
    election_id: str = Field(foreign_key="tv_election.election_id", index=True, max_length=64)
    alias: str = Field(max_length=64)
    match_key: str = Field(index=True, max_length=64)
    #: the alias's rank among the roll's aliases: its leaf index in the roll tree (not secret; see _roll)
    leaf_index: int | None = None


class RollNodeRow(SQLModel, table=True):
    """One complete subtree of the roll's Merkle tree: ``hash`` = MTH(leaves [idx·2^level, (idx+1)·2^level)).

    Written with the roll (:func:`voting._roll.roll_tree`: every leaf and interior node, about 2n rows), so
    the inclusion proof that each ``ballot.cast`` carries reads O(log n) rows by primary key. Public data
    (it derives from the aliases only), kept here because it belongs to the roll.
    """

    __tablename__ = "tv_roll_node"

    election_id: str = Field(
        sa_column=Column(String(64), ForeignKey("tv_election.election_id"), primary_key=True)
    )
    level: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    idx: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    hash: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class TrusteeRow(SQLModel, table=True):
    """A trustee slot: invited (code hash) → registered (token hash, public keys) → maybe disqualified."""

    __tablename__ = "tv_trustee"

    election_id: str = Field(foreign_key="tv_election.election_id", primary_key=True, max_length=64)
    index: int = Field(primary_key=True)
    invite_hash: str = Field(max_length=64)
    token_hash: str | None = Field(default=None, index=True, max_length=64)
    status: str = Field(default="invited", max_length=16)  # invited | registered | disqualified
    name: str | None = Field(default=None, max_length=200)
    x25519_public_key: str | None = Field(default=None, max_length=64)
    commitments_json: str | None = None
    shares_dealt: bool = False
    registered_at: dt.datetime | None = None


class ShareRow(SQLModel, table=True):
    """One encrypted share, dealer → recipient (also public on the ledger in ``trustee.shares``)."""

    __tablename__ = "tv_share"

    election_id: str = Field(foreign_key="tv_election.election_id", primary_key=True, max_length=64)
    sender: int = Field(primary_key=True)
    recipient: int = Field(primary_key=True)
    ciphertext: str


class ComplaintRow(SQLModel, table=True):
    __tablename__ = "tv_complaint"
    __table_args__ = (UniqueConstraint("election_id", "complainant", "dealer"),)

    id: int | None = Field(default=None, primary_key=True)
    election_id: str = Field(foreign_key="tv_election.election_id", index=True, max_length=64)
    complainant: int
    dealer: int
    complaint_json: str
    answer_json: str | None = None
    #: open | upheld (dealer disqualified) | rejected (answer showed the share was good)
    status: str = Field(default="open", max_length=16)


class PartialRow(SQLModel, table=True):
    """A trustee's partial decryption of the tally, accepted or excluded (both are on the ledger)."""

    __tablename__ = "tv_partial"

    election_id: str = Field(foreign_key="tv_election.election_id", primary_key=True, max_length=64)
    trustee: int = Field(primary_key=True)
    partials_json: str
    status: str = Field(max_length=16)  # accepted | excluded
    reason: str | None = None


class BoothRow(SQLModel, table=True):
    """The booth as published on the ledger (``booth.published``): its digest and entry. Public data, kept
    here so that opening voting and ``GET /election/booth`` need not scan the ledger."""

    __tablename__ = "tv_booth"

    election_id: str = Field(foreign_key="tv_election.election_id", primary_key=True, max_length=64)
    digest: str = Field(max_length=64)
    ledger_index: int = Field(sa_column=Column(BigInteger, nullable=False))
    assets_json: str


class BallotCheckRow(SQLModel, table=True):
    """One cast ballot that someone looked up (Check my ballot), as a keyed hash of its ballot hash only: no
    time, no address, no tracking code, nothing that links a lookup to a person or to a ballot without the
    key (``data_dir/booth-checks.key``). Only their number is ever shown. PRIVATE."""

    __tablename__ = "tv_ballot_check"

    election_id: str = Field(foreign_key="tv_election.election_id", primary_key=True, max_length=64)
    ballot_key: str = Field(primary_key=True, max_length=64)


def normalise_database_url(url: str) -> str:
    """Map ``postgres://`` and ``postgresql://`` to the psycopg 3 driver; leave others alone."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def make_private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) with the leaf directory ``0700``; an existing one is left as it
    is (production refuses to start on a group- or world-accessible one: :mod:`voting._startup`)."""
    path = Path(path)
    if not path.is_dir():
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(path, 0o700)  # mkdir's mode is reduced by the umask; never widened
    return path


def _create_private_sqlite_file(url: str) -> None:
    """Create the SQLite database file ``0600`` before SQLite does (it would use the umask, usually 0644).
    SQLite creates the ``-wal`` and ``-shm`` files with the database file's permissions."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    if path.exists():
        return
    make_private_dir(path.parent)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:  # created meanwhile by another process: leave it
        pass


def make_engine(url: str) -> Engine:
    """An engine for ``url``: SQLite with WAL + ``synchronous=FULL`` (file created ``0600``), or PostgreSQL
    via psycopg."""
    url = normalise_database_url(url)
    if url.startswith("sqlite"):
        _create_private_sqlite_file(url)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # liveness: a connection that sat idle is pinged before use (``ledger.log.ping_when_idle``), a busy one
    # is not (``pool_pre_ping`` pinged at every checkout: one round trip per transaction). The pool keeps all
    # its 15 connections open (no overflow): an overflow connection was closed at every check-in beyond the
    # fifth idle one, so under a few concurrent casts PostgreSQL started a backend every few casts and no
    # statement ran often enough on one connection for psycopg to prepare it (``prepare_threshold`` 5).
    # ``tune_postgres``: lz4 for out-of-line values; a statement marked ``UNPREPARED`` planned at each run
    return tune_postgres(ping_when_idle(create_engine(url, pool_size=15, max_overflow=0)))


_T = TypeVar("_T")


def once_more_if_disconnected(transaction: Callable[[], _T]) -> _T:
    """Run ``transaction`` (one session: its statements and its commit) and, if it failed because its
    connection was dead (SQLAlchemy invalidated it: the database restarted, or dropped the connection, while
    it sat in the pool; a connection is only pinged after sitting idle, ``ledger.log.ping_when_idle``), run it
    once more on a fresh connection. Nothing of the failed attempt was committed, unless the connection
    died during the COMMIT itself: then the second attempt meets the first one's rows (a unique key refuses
    them, and the caller's handling of a failed transaction applies, as for any other error)."""
    try:
        return transaction()
    except DBAPIError as e:
        if not e.connection_invalidated:
            raise
    return transaction()


def create_tables(engine: Engine) -> None:
    """Bring the database to this code's schema: create every table of a fresh one, migrate an older one
    (Alembic, :mod:`voting._migrate`); idempotent, once per engine and process."""
    from . import _migrate

    _migrate.migrate(engine)
