"""The database's schema lock: tables are created or migrated at start-up by one process at a time. Private;
:func:`schema_transaction` is exported by :mod:`ledger.log`.

Several processes may start on one fresh database at the same moment (two servers, ``tvote serve
--workers``, ``tvote ledger`` beside a starting server), and each creates the tables it lacks: SQLAlchemy's
``create_all`` checks for a table, then issues ``CREATE TABLE``. Neither backend makes that pair atomic:
PostgreSQL's concurrent ``CREATE TABLE`` of one name fails with a duplicate key in ``pg_type`` (``IF NOT
EXISTS`` included), SQLite's with "table ... already exists". So every schema change at start-up, the
ledger's ``create_all`` (``_store``) and the election service's migrations (``voting._migrate``) alike, runs
in :func:`schema_transaction`, under the database's one schema lock:

* **PostgreSQL**: the transaction-level advisory lock on :data:`_SCHEMA_LOCK_KEY`, the transaction's first
  statement; the commit or the rollback releases it (or the death of the session: it can never be left
  held on a pooled connection). The transaction runs in READ COMMITTED whatever the server's default, so
  each statement after the wait sees the tables the previous holder committed (in REPEATABLE READ the
  snapshot would be the one taken before the wait, which sees none of them).
* **SQLite**: an exclusive ``flock`` on ``<database file>.migrate.lock``, held around the transaction.

The key is the one ``voting._migrate`` used before the ledger took the lock too, so a process of the
previous release migrating at the same moment is still serialised with this one.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
from collections.abc import Iterator

from sqlalchemy.engine import Connection, Engine

__all__ = ["schema_transaction"]

#: PostgreSQL advisory-lock key of the database's schema (the first 8 bytes of a fixed tag's SHA-256,
#: signed)
_SCHEMA_LOCK_KEY = int.from_bytes(hashlib.sha256(b"tvote/schema-migration").digest()[:8], "big", signed=True)


@contextlib.contextmanager
def _file_lock(engine: Engine) -> Iterator[None]:
    database = engine.url.database
    if not database or database == ":memory:":  # a private in-memory database: no other process sees it
        yield
        return
    with open(f"{database}.migrate.lock", "ab") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)  # blocks until another process has created or migrated
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


@contextlib.contextmanager
def schema_transaction(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction that holds the database's schema lock (see the module's docstring):
    create or migrate tables on it. Committed when the block ends, rolled back if it raises; the lock is
    released either way. Blocks while another process (or another engine of this one) holds the lock."""
    if engine.dialect.name == "sqlite":
        with _file_lock(engine), engine.begin() as conn:
            yield conn
        return
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            # this connection only: the pool restores the default when it is returned
            conn.execution_options(isolation_level="READ COMMITTED")
        with conn.begin():
            if engine.dialect.name == "postgresql":
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_SCHEMA_LOCK_KEY})")
            yield conn
