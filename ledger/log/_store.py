"""Storage through SQLModel/SQLAlchemy (SQLite by default, PostgreSQL in production). Private.

Tables (all prefixed ``ledger_`` so the election service can share the database):

* ``ledger_entry(idx PK, hash, body)``: canonical entry bytes and their leaf hash;
* ``ledger_node(level, idx) PK, hash``: every complete subtree hash (level 0 = leaves), so a proof reads
  O(log n) rows;
* ``ledger_checkpoint(size PK, root, note, issued_at)``: signed checkpoints;
* ``ledger_cosignature(size, witness) PK, signature, received_at``: verified witness cosignatures.

Writes happen only in :meth:`Store.write_batch`, one transaction per sequencer batch. The first batch takes
the **sequencer lock** (:meth:`Store.acquire_writer`) and keeps it until :meth:`Store.close`: an exclusive
``flock`` on ``<database file>.sequencer.lock`` for SQLite, a session-level ``pg_try_advisory_lock`` for
PostgreSQL. A second process (or a second ``Ledger`` in the same process) that tries to append to the same
database gets a clear :class:`StorageError` instead of racing; readers never take the lock, and the
operating system or the database server releases it when the holder dies (``kill -9`` included).

SQLite runs in WAL mode with ``synchronous=FULL``: a committed transaction survives power loss and kill -9.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Iterator, Sequence
from typing import IO, Any

from sqlalchemy import BigInteger, Column, Integer, LargeBinary, String, Text, and_, event, func, or_, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlmodel import Field, SQLModel, create_engine

from .._errors import StorageError

__all__ = ["Store"]

#: PostgreSQL advisory-lock key of the sequencer (the first 8 bytes of a fixed tag's SHA-256, signed).
_SEQUENCER_LOCK_KEY = int.from_bytes(
    hashlib.sha256(b"tvote/ledger-sequencer").digest()[:8], "big", signed=True
)


class LedgerEntry(SQLModel, table=True):
    __tablename__ = "ledger_entry"
    idx: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    hash: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    body: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class LedgerNode(SQLModel, table=True):
    __tablename__ = "ledger_node"
    level: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    idx: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    hash: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class LedgerCheckpoint(SQLModel, table=True):
    __tablename__ = "ledger_checkpoint"
    size: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    root: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    note: str = Field(sa_column=Column(Text, nullable=False))
    issued_at: int = Field(sa_column=Column(BigInteger, nullable=False))


class LedgerCosignature(SQLModel, table=True):
    __tablename__ = "ledger_cosignature"
    size: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    witness: str = Field(sa_column=Column(String(64), primary_key=True))
    signature: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    received_at: int = Field(sa_column=Column(BigInteger, nullable=False))


_E = LedgerEntry.__table__  # type: ignore[attr-defined]
_N = LedgerNode.__table__  # type: ignore[attr-defined]
_C = LedgerCheckpoint.__table__  # type: ignore[attr-defined]
_S = LedgerCosignature.__table__  # type: ignore[attr-defined]
_TABLES = [_E, _N, _C, _S]


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        if url in ("sqlite://", "sqlite:///:memory:"):
            raise StorageError("an in-memory SQLite database is not durable; give a file path")
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=8, max_overflow=8)


def _b(v: Any) -> bytes:
    """Column value as bytes (a tampered SQLite row may hold TEXT where BLOB belongs)."""
    return v.encode("utf-8", "surrogateescape") if isinstance(v, str) else bytes(v)


class Store:
    """Row access for the ledger. Every method raises StorageError on backend failure."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._lock_file: IO[bytes] | None = None
        self._lock_conn: Any = None
        try:
            self.engine = make_engine(url)
            SQLModel.metadata.create_all(self.engine, tables=_TABLES)
        except SQLAlchemyError as e:
            raise StorageError(f"cannot open ledger storage: {type(e).__name__}") from e

    def close(self) -> None:
        if self._lock_conn is not None:
            try:  # unlock explicitly: a pooled session would otherwise keep the lock until it ends
                self._lock_conn.exec_driver_sql(f"SELECT pg_advisory_unlock({_SEQUENCER_LOCK_KEY})")
                self._lock_conn.commit()
            except SQLAlchemyError:
                pass  # the session is gone, and the lock with it
            self._lock_conn.invalidate()  # never hand this session back to the pool
            self._lock_conn.close()
            self._lock_conn = None
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None
        self.engine.dispose()

    def acquire_writer(self) -> None:
        """Take this database's sequencer lock (idempotent); raise StorageError if someone else holds it."""
        if self._lock_file is not None or self._lock_conn is not None:
            return
        if self.engine.dialect.name == "sqlite":
            path = f"{self.engine.url.database}.sequencer.lock"
            f = open(path, "ab")  # held open for the life of the store
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.close()
                raise StorageError(
                    f"another sequencer appends to this ledger (lock {os.path.basename(path)} is held)"
                ) from None
            self._lock_file = f
            return
        try:
            conn = self.engine.connect()
            got = conn.exec_driver_sql(f"SELECT pg_try_advisory_lock({_SEQUENCER_LOCK_KEY})").scalar()
            conn.commit()
        except SQLAlchemyError as e:
            raise StorageError(f"cannot take the sequencer lock: {type(e).__name__}") from e
        if not got:
            conn.close()
            raise StorageError("another sequencer appends to this ledger (advisory lock is held)")
        self._lock_conn = conn

    # -- the one write path for entries --------------------------------------------------------------

    def write_batch(
        self, entries: Sequence[tuple[int, bytes, bytes]], nodes: Sequence[tuple[int, int, bytes]]
    ) -> None:
        """Insert entries (idx, hash, body) and nodes (level, idx, hash) in one committed transaction."""
        try:
            with self.engine.begin() as conn:
                conn.execute(_E.insert(), [{"idx": i, "hash": h, "body": b} for i, h, b in entries])
                conn.execute(_N.insert(), [{"level": lv, "idx": i, "hash": h} for lv, i, h in nodes])
        except SQLAlchemyError as e:
            raise StorageError(f"append transaction failed: {type(e).__name__}: {e}") from e

    # -- reads ----------------------------------------------------------------------------------------

    def _one(self, stmt: Any) -> Any:
        try:
            with self.engine.connect() as conn:
                return conn.execute(stmt).first()
        except SQLAlchemyError as e:
            raise StorageError(f"read failed: {type(e).__name__}") from e

    def _all(self, stmt: Any) -> list[Any]:
        try:
            with self.engine.connect() as conn:
                return list(conn.execute(stmt).all())
        except SQLAlchemyError as e:
            raise StorageError(f"read failed: {type(e).__name__}") from e

    def entry_count_and_max(self) -> tuple[int, int]:
        row = self._one(select(func.count(), func.max(_E.c.idx)))
        return int(row[0]), (-1 if row[1] is None else int(row[1]))

    def node_query(self, keys: Sequence[tuple[int, int]]) -> Any:
        """One SELECT of the given (level, idx) rows, as OR of primary-key equalities (index lookups)."""
        conds = [and_(_N.c.level == lv, _N.c.idx == i) for lv, i in sorted(set(keys))]
        return select(_N.c.level, _N.c.idx, _N.c.hash).where(or_(*conds))

    def nodes(self, keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        if not keys:
            return {}
        rows = self._all(self.node_query(keys))
        return {(int(r[0]), int(r[1])): _b(r[2]) for r in rows}

    def node_count_beyond(self, size: int) -> int:
        row = self._one(select(func.count()).select_from(_N).where(_N.c.level == 0, _N.c.idx >= size))
        return int(row[0])

    def entries(self, start: int, stop: int) -> list[tuple[int, bytes, bytes]]:
        rows = self._all(
            select(_E.c.idx, _E.c.hash, _E.c.body)
            .where(_E.c.idx >= start, _E.c.idx < stop)
            .order_by(_E.c.idx)
        )
        return [(int(r[0]), _b(r[1]), _b(r[2])) for r in rows]

    def iter_entries(self, stop: int, chunk: int = 5000) -> Iterator[tuple[int, bytes, bytes]]:
        """All rows with idx < stop in idx order, in chunks (positions come from the rows, gaps show)."""
        last = -1
        while True:
            rows = self._all(
                select(_E.c.idx, _E.c.hash, _E.c.body)
                .where(_E.c.idx > last, _E.c.idx < stop)
                .order_by(_E.c.idx)
                .limit(chunk)
            )
            if not rows:
                return
            for r in rows:
                yield int(r[0]), _b(r[1]), _b(r[2])
            last = int(rows[-1][0])

    def iter_nodes(self, level: int, stop: int, chunk: int = 5000) -> Iterator[tuple[int, bytes]]:
        last = -1
        while True:
            rows = self._all(
                select(_N.c.idx, _N.c.hash)
                .where(_N.c.level == level, _N.c.idx > last, _N.c.idx < stop)
                .order_by(_N.c.idx)
                .limit(chunk)
            )
            if not rows:
                return
            for r in rows:
                yield int(r[0]), _b(r[1])
            last = int(rows[-1][0])

    # -- checkpoints and cosignatures ---------------------------------------------------------------------

    def insert_checkpoint(self, size: int, root: bytes, note: str, issued_at: int) -> bool:
        """Store a checkpoint; False if one of that size exists already."""
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    _C.insert(), [{"size": size, "root": root, "note": note, "issued_at": issued_at}]
                )
            return True
        except IntegrityError:
            return False
        except SQLAlchemyError as e:
            raise StorageError(f"checkpoint write failed: {type(e).__name__}") from e

    def checkpoint(self, size: int | None = None) -> tuple[int, bytes, str, int] | None:
        stmt = select(_C.c.size, _C.c.root, _C.c.note, _C.c.issued_at)
        stmt = stmt.order_by(_C.c.size.desc()).limit(1) if size is None else stmt.where(_C.c.size == size)
        row = self._one(stmt)
        return None if row is None else (int(row[0]), bytes(row[1]), str(row[2]), int(row[3]))

    def checkpoints(self, max_size: int) -> list[tuple[int, bytes, str, int]]:
        rows = self._all(
            select(_C.c.size, _C.c.root, _C.c.note, _C.c.issued_at)
            .where(_C.c.size <= max_size)
            .order_by(_C.c.size)
        )
        return [(int(r[0]), _b(r[1]), str(r[2]), int(r[3])) for r in rows]

    def add_cosignature(self, size: int, witness: str, signature: bytes, received_at: int) -> None:
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    _S.insert(),
                    [{"size": size, "witness": witness, "signature": signature, "received_at": received_at}],
                )
        except IntegrityError:
            return  # already stored (BLS signatures are deterministic)
        except SQLAlchemyError as e:
            raise StorageError(f"cosignature write failed: {type(e).__name__}") from e

    def witnessed_size(self, witnesses: list[str], quorum: int) -> int | None:
        """The largest checkpoint size with cosignatures of at least ``quorum`` of ``witnesses``, if any."""
        if quorum < 1 or not witnesses:
            return None
        row = self._one(
            select(_S.c.size)
            .where(_S.c.witness.in_(witnesses))
            .group_by(_S.c.size)
            .having(func.count() >= quorum)
            .order_by(_S.c.size.desc())
            .limit(1)
        )
        return None if row is None else int(row[0])

    def cosignatures(self, size: int) -> dict[str, bytes]:
        rows = self._all(select(_S.c.witness, _S.c.signature).where(_S.c.size == size))
        return {str(r[0]): _b(r[1]) for r in rows}
