"""Storage through SQLModel/SQLAlchemy (SQLite by default, PostgreSQL in production). Private.

Tables (all prefixed ``ledger_`` so the election service can share the database):

* ``ledger_entry(idx PK, hash, body)``: canonical entry bytes and their leaf hash;
* ``ledger_node(level, idx) PK, hash``: every complete subtree hash (level 0 = leaves), so a proof reads
  O(log n) rows;
* ``ledger_checkpoint(size PK, root, note, issued_at)``: signed checkpoints;
* ``ledger_cosignature(size, witness) PK, signature, received_at``: verified witness cosignatures.

Opening a store creates the tables it lacks under the database's schema lock (``_schema``), so several
processes may open one fresh database at once. Writes happen only in :meth:`Store.write_batch`, one
transaction per sequencer batch.

* **SQLite** (the single-process embedded default): the first batch takes the **sequencer lock**
  (:meth:`Store.acquire_writer`, an exclusive ``flock`` on ``<database file>.sequencer.lock``) and keeps it
  until :meth:`Store.close`; a second process (or a second ``Ledger`` in the same process) that tries to
  append to the same file gets a clear :class:`StorageError` instead of racing. The sequencer's in-memory
  tail is authoritative.
* **PostgreSQL** (any number of appending processes, on one machine or several): every batch's transaction
  first takes the **transaction-level** advisory lock ``pg_advisory_xact_lock`` on the ledger's key, then
  reads the stored tail (the highest index and its hash, :meth:`Store.tail`) and hands it, with a reader of
  tree nodes on the same connection, to the sequencer, which reloads its in-memory state when another
  process appended meanwhile, assigns the indices and returns the rows; the lock is released by the commit
  (or the rollback, or the death of the session). Checkpoints are inserted under the same lock
  (:meth:`Store.insert_checkpoint_after`), so several processes sign checkpoints of one tree whose sizes
  and times both grow.

Readers never take a lock; the operating system or the database server releases a lock when its holder
dies (``kill -9`` included).

SQLite runs in WAL mode with ``synchronous=FULL``: a committed transaction survives power loss and kill -9.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Callable, Iterator, Sequence
from typing import IO, Any

from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    TextClause,
    and_,
    bindparam,
    event,
    func,
    literal_column,
    or_,
    select,
    text,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlmodel import Field, SQLModel, create_engine

from .._errors import StorageError
from ..merkle import subtree_nodes
from ._pool import ping_when_idle, tune_postgres
from ._schema import schema_transaction

__all__ = ["BuildBatch", "Store"]

#: ``build(tail, read_nodes) -> (entries, nodes)`` of :meth:`Store.write_batch`
BuildBatch = Callable[
    [tuple[int, bytes | None] | None, Callable[[Sequence[tuple[int, int]]], dict[tuple[int, int], bytes]]],
    tuple[Sequence[tuple[int, bytes, bytes]], Sequence[tuple[int, int, bytes]]],
]

#: PostgreSQL advisory-lock key of the ledger's appends and checkpoints (the first 8 bytes of a fixed tag's
#: SHA-256, signed).
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
#: the newest entry, ``LIMIT 1`` written into the statement: with the limit a bound parameter, PostgreSQL
#: found no generic plan as cheap as a custom one and planned the prepared statement again at every
#: execution (one or two a cast)
_TAIL = select(_E.c.idx, _E.c.hash).order_by(_E.c.idx.desc()).limit(literal_column("1"))


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
    # liveness: a connection that sat idle is pinged before use (``_pool``), a busy one is not. All 16
    # connections stay open (no overflow, which was closed at check-in): a new connection costs PostgreSQL a
    # backend start, and its statements are parsed and planned anew until psycopg prepares them
    return tune_postgres(ping_when_idle(create_engine(url, pool_size=16, max_overflow=0)))


#: rows per multi-row INSERT of a batch (3 columns each: far below SQLite's and PostgreSQL's bound-parameter
#: limits; a batch holds up to ``LedgerConfig.max_batch`` entries and about as many new nodes)
_ROWS_PER_INSERT = 500


#: the multi-row INSERT of (table, number of rows), built on first use (see :func:`_insert_rows`)
_MULTI_INSERT: dict[tuple[str, int], TextClause] = {}


#: the columns a batch writes, in the order its rows give them
_ENTRY_COLUMNS: tuple[str, ...] = ("idx", "hash", "body")
_NODE_COLUMNS: tuple[str, ...] = ("level", "idx", "hash")


def _insert_sql(table: Table, columns: tuple[str, ...], count: int, prefix: str) -> tuple[str, list[Any]]:
    """A multi-row ``INSERT INTO table (columns) VALUES (...), ...`` of ``count`` rows as SQL text, and its
    parameters typed by the columns (named ``{prefix}{column}_{row}``)."""
    names = [[f"{prefix}{c}_{i}" for c in columns] for i in range(count)]
    values = ", ".join("(" + ", ".join(f":{n}" for n in row) + ")" for row in names)
    sql = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES {values}"  # noqa: S608 - names are ours
    binds = [bindparam(n, type_=table.c[c].type) for row in names for c, n in zip(columns, row, strict=True)]
    return sql, binds


def _insert_params(columns: tuple[str, ...], rows: Sequence[tuple[Any, ...]], prefix: str) -> dict[str, Any]:
    """The values of ``rows`` bound by the names :func:`_insert_sql` gives them."""
    return {f"{prefix}{c}_{i}": v for i, row in enumerate(rows) for c, v in zip(columns, row, strict=True)}


def _insert_rows(conn: Any, table: Table, columns: tuple[str, ...], rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert ``rows`` (values in ``columns``' order) into ``table`` with one multi-row ``INSERT ... VALUES``
    per :data:`_ROWS_PER_INSERT` rows, not an executemany (PostgreSQL got one statement per row).

    The statement is SQL text with typed parameters, kept per number of rows: SQLAlchemy cannot cache a Core
    multi-row ``insert().values([...])`` (it has no cache key), so it compiled that statement again for
    every batch; a text statement is compiled once (and bound through the columns' types all the same)."""
    for start in range(0, len(rows), _ROWS_PER_INSERT):
        part = rows[start : start + _ROWS_PER_INSERT]
        key = (table.name, len(part))
        stmt = _MULTI_INSERT.get(key)
        if stmt is None:
            sql, binds = _insert_sql(table, columns, len(part), "")
            stmt = _MULTI_INSERT[key] = text(sql).bindparams(*binds)
        conn.execute(stmt, _insert_params(columns, part, ""))


#: PostgreSQL: a batch's entries and nodes in ONE statement (the entries' INSERT a data-modifying ``WITH``)
#: when both fit these sizes (a live intake's batches: a few entries, about twice as many nodes); the
#: statement is kept per pair of sizes, so the sizes are bounded; larger batches insert table by table
_TOGETHER_MAX_ENTRIES = 16
_TOGETHER_MAX_NODES = 64
_TOGETHER: dict[tuple[int, int], TextClause] = {}


def _insert_batch(conn: Any, entries: Sequence[tuple[Any, ...]], nodes: Sequence[tuple[Any, ...]]) -> None:
    """PostgreSQL: insert a batch's ``entries`` and ``nodes``, where they fit (``_TOGETHER_MAX_*``) in ONE
    statement (one round trip; it runs in the batch's transaction all the same, whose lock is the
    sequencer's), else table by table (:func:`_insert_rows`)."""
    if not (0 < len(entries) <= _TOGETHER_MAX_ENTRIES and 0 < len(nodes) <= _TOGETHER_MAX_NODES):
        _insert_rows(conn, _E, _ENTRY_COLUMNS, entries)
        _insert_rows(conn, _N, _NODE_COLUMNS, nodes)
        return
    key = (len(entries), len(nodes))
    stmt = _TOGETHER.get(key)
    if stmt is None:
        into_entries, entry_binds = _insert_sql(_E, _ENTRY_COLUMNS, len(entries), "e_")
        into_nodes, node_binds = _insert_sql(_N, _NODE_COLUMNS, len(nodes), "n_")
        stmt = _TOGETHER[key] = text(f"WITH entries AS ({into_entries}) {into_nodes}").bindparams(
            *entry_binds, *node_binds
        )
    conn.execute(
        stmt, _insert_params(_ENTRY_COLUMNS, entries, "e_") | _insert_params(_NODE_COLUMNS, nodes, "n_")
    )


def _b(v: Any) -> bytes:
    """Column value as bytes (a tampered SQLite row may hold TEXT where BLOB belongs)."""
    return v.encode("utf-8", "surrogateescape") if isinstance(v, str) else bytes(v)


class Store:
    """Row access for the ledger. Every method raises StorageError on backend failure."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._lock_file: IO[bytes] | None = None
        try:
            self.engine = make_engine(url)
            # under the database's schema lock: processes opening one fresh database at once (``_schema``)
            with schema_transaction(self.engine) as conn:
                SQLModel.metadata.create_all(conn, tables=_TABLES)
        except SQLAlchemyError as e:
            raise StorageError(f"cannot open ledger storage: {type(e).__name__}") from e
        #: several processes may append (PostgreSQL: one transaction-level lock per batch); on SQLite one
        #: process holds the sequencer lock and its in-memory tail is the truth
        self.shared = self.engine.dialect.name != "sqlite"
        #: the single reads (:meth:`tail`, :meth:`_one`, :meth:`_all`): on PostgreSQL the same pool in
        #: autocommit, so a read sends no BEGIN and no ROLLBACK (one statement in READ COMMITTED sees one
        #: snapshot either way); :meth:`stored_state`'s several reads keep their REPEATABLE READ transaction
        self._reader = self.engine
        if self.shared:
            self._reader = self.engine.execution_options(isolation_level="AUTOCOMMIT")

    def close(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None
        self.engine.dispose()

    def acquire_writer(self) -> None:
        """SQLite: take the database file's sequencer lock (idempotent); raise StorageError if another
        process (or another ``Ledger``) holds it. PostgreSQL: nothing (each batch locks in its own
        transaction)."""
        if self._lock_file is not None or self.shared:
            return
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

    # -- the one write path for entries --------------------------------------------------------------

    def write_batch(self, build: BuildBatch) -> None:
        """Insert one sequencer batch in one committed transaction.

        ``build(tail, read_nodes)`` returns the entries ``(idx, hash, body)`` and tree nodes
        ``(level, idx, hash)`` to insert. On PostgreSQL it is called under the ledger's transaction-level
        advisory lock with the stored tail (:meth:`tail`) and a node reader on the locked connection, so the
        indices it assigns follow every batch another process committed; on SQLite (one sequencer process,
        :meth:`acquire_writer`) with ``None`` and the ordinary reader. An exception from ``build`` rolls the
        transaction back and propagates.
        """
        try:
            if not self.shared:
                self.acquire_writer()
            with self.engine.begin() as conn:
                if self.shared:
                    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_SEQUENCER_LOCK_KEY})")
                    entries, nodes = build(self._tail(conn), lambda keys: self._nodes(conn, keys))
                    _insert_batch(conn, entries, nodes)
                else:
                    entries, nodes = build(None, self.nodes)
                    _insert_rows(conn, _E, _ENTRY_COLUMNS, entries)
                    _insert_rows(conn, _N, _NODE_COLUMNS, nodes)
        except SQLAlchemyError as e:
            raise StorageError(f"append transaction failed: {type(e).__name__}: {e}") from e

    @staticmethod
    def _tail(conn: Any) -> tuple[int, bytes | None]:
        row = conn.execute(_TAIL).first()
        return (0, None) if row is None else (int(row[0]) + 1, _b(row[1]))

    def tail(self) -> tuple[int, bytes | None]:
        """The stored size (highest index + 1) and the last entry's hash (``None`` when empty): one indexed
        read, what a process compares with its in-memory tail to see other processes' appends."""
        try:
            with self._reader.connect() as conn:
                return self._tail(conn)
        except SQLAlchemyError as e:
            raise StorageError(f"read failed: {type(e).__name__}") from e

    # -- reads ----------------------------------------------------------------------------------------

    def _one(self, stmt: Any) -> Any:
        try:
            with self._reader.connect() as conn:
                return conn.execute(stmt).first()
        except SQLAlchemyError as e:
            raise StorageError(f"read failed: {type(e).__name__}") from e

    def _all(self, stmt: Any) -> list[Any]:
        try:
            with self._reader.connect() as conn:
                return list(conn.execute(stmt).all())
        except SQLAlchemyError as e:
            raise StorageError(f"read failed: {type(e).__name__}") from e

    def stored_state(self) -> tuple[int, int, dict[tuple[int, int], bytes], int, bytes | None]:
        """One consistent read of what the sequencer resumes from: ``(count, highest index, the nodes of
        [0, count), how many leaf nodes lie beyond count, the last entry's hash)`` (PostgreSQL: one
        REPEATABLE READ snapshot, so other processes' appends cannot tear it)."""
        try:
            with self.engine.connect() as conn:
                if self.shared:
                    conn = conn.execution_options(isolation_level="REPEATABLE READ")
                with conn.begin():
                    row = conn.execute(select(func.count(), func.max(_E.c.idx))).one()
                    count, top = int(row[0]), (-1 if row[1] is None else int(row[1]))
                    nodes = self._nodes(conn, subtree_nodes(0, count))
                    beyond = conn.execute(
                        select(func.count()).select_from(_N).where(_N.c.level == 0, _N.c.idx >= count)
                    ).scalar()
                    last = conn.execute(select(_E.c.hash).where(_E.c.idx == top)).scalar()
                    return count, top, nodes, int(beyond or 0), None if last is None else _b(last)
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

    def _nodes(self, conn: Any, keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        if not keys:
            return {}
        rows = conn.execute(self.node_query(keys)).all()
        return {(int(r[0]), int(r[1])): _b(r[2]) for r in rows}

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

    def insert_checkpoint_after(
        self, make: Callable[[tuple[int, bytes, str, int] | None], tuple[int, bytes, str, int] | None]
    ) -> None:
        """Store the checkpoint ``make(latest)`` returns for the newest stored one (``None``: nothing to do).

        On PostgreSQL under the ledger's transaction-level lock (the one appends take), so checkpoints
        written by several processes grow in size and time; a row of the same size written meanwhile (a
        race the lock rules out, or a retry) is not an error."""
        try:
            with self.engine.begin() as conn:
                if self.shared:
                    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_SEQUENCER_LOCK_KEY})")
                newest = select(_C.c.size, _C.c.root, _C.c.note, _C.c.issued_at).order_by(_C.c.size.desc())
                row = conn.execute(newest.limit(1)).first()
                latest = None if row is None else (int(row[0]), _b(row[1]), str(row[2]), int(row[3]))
                new = make(latest)
                if new is None:
                    return
                size, root, note, issued_at = new
                conn.execute(
                    _C.insert(), [{"size": size, "root": root, "note": note, "issued_at": issued_at}]
                )
        except IntegrityError:
            return
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
