"""Connection-pool liveness and per-connection settings for the PostgreSQL engines (the ledger's and the
election service's). Private; :func:`ping_when_idle`, :func:`tune_postgres` and :data:`UNPREPARED` are
exported by :mod:`ledger.log`.

SQLAlchemy's ``pool_pre_ping`` pings the server on EVERY checkout: one round trip per transaction, about a
tenth of a busy server's statements. A connection that was just handed back is as alive as it was a moment
ago; the ones worth a ping are those that sat idle long enough to have gone stale (the database restarted,
an idle timeout or a firewall dropped them). So: the pool's ``checkin`` records when a connection came back
(in its record's ``info``, which the pool clears with the connection), and ``checkout`` pings only one idle
for :data:`IDLE_PING_SECONDS` or longer, raising :class:`sqlalchemy.exc.DisconnectionError` when the ping
fails, which makes the pool drop it and hand out a fresh connection instead (SQLAlchemy's documented
"pessimistic" disconnect handling with pool events). A connection that dies while busy fails its statement,
as it does with ``pool_pre_ping`` too.

:func:`tune_postgres` sets what every connection of the two engines shares:

* ``default_toast_compression = lz4`` (PostgreSQL 14 and later, where the server was built with lz4): a
  ledger entry's body and a cast's sealed evidence are a few kB each, compressed out of line (TOAST) at every
  insert; pglz, the default, took about 5 % of PostgreSQL's CPU per cast, lz4 takes a fraction of that.
  Reading a value compressed either way is transparent; a server without lz4 keeps pglz.
* a statement executed with the execution option :data:`UNPREPARED` is never a prepared statement: psycopg
  prepares a statement on the server after it ran ``prepare_threshold`` (5) times on a connection, and
  PostgreSQL may then keep one *generic* plan for it as long as the connection lives. A generic plan made
  while a table was nearly empty (an election's first casts, before autovacuum analyzed it) can be a
  sequential scan that stays in use as the table grows to millions of rows: a cast's uniqueness lookup of
  its 16 values scanned the whole table (1-2 ms at a few thousand rows, growing with every cast). Unprepared,
  the statement is planned for the table as it is at every execution (a few tens of microseconds).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Final

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError

__all__ = ["IDLE_PING_SECONDS", "UNPREPARED", "ping_when_idle", "tune_postgres"]

#: a pooled connection back in the pool for at least this long is pinged before it is handed out again
IDLE_PING_SECONDS: Final[float] = 10.0

#: execution option (``statement.execution_options(**{UNPREPARED: True})``): on an engine tuned by
#: :func:`tune_postgres`, run the statement unprepared, planned for its parameters and the table's current
#: size at every execution; elsewhere (SQLite) it changes nothing
UNPREPARED: Final[str] = "tvote_unprepared"

#: the key of the check-in time (the clock's reading) in a pooled connection record's ``info``
_CHECKED_IN: Final[str] = "tvote.checked_in"


def ping_when_idle(
    engine: Engine, *, idle: float = IDLE_PING_SECONDS, clock: Callable[[], float] = time.monotonic
) -> Engine:
    """Make ``engine``'s pool ping a connection on checkout only if it sat idle ``idle`` seconds or more
    (by ``clock``); a failed ping makes the pool replace the connection before the caller sees it. A new
    connection is not pinged (it was just opened). For an engine made without ``pool_pre_ping``; returns
    ``engine``."""
    dialect = engine.dialect

    def checkin(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info[_CHECKED_IN] = clock()

    def checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.pop(_CHECKED_IN, None)
        if since is None or clock() - since < idle:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as e:  # the pool invalidates this connection and checks out a fresh one
            raise DisconnectionError(f"an idle pooled connection failed its ping: {type(e).__name__}") from e

    event.listen(engine, "checkin", checkin)
    event.listen(engine, "checkout", checkout)
    return engine


def tune_postgres(engine: Engine) -> Engine:
    """Give every connection of the PostgreSQL ``engine`` lz4 compression of out-of-line values (where the
    server has it) and run statements marked :data:`UNPREPARED` unprepared (see the module's docstring).
    Returns ``engine``."""

    def connect(dbapi_connection: Any, _record: Any) -> None:
        if int(dbapi_connection.info.server_version) < 140000:  # no per-value compression methods before 14
            return
        try:
            dbapi_connection.execute("SET default_toast_compression = lz4")
            dbapi_connection.commit()
        except Exception:  # a server built without lz4 refuses the value: pglz stays, nothing else changes
            dbapi_connection.rollback()

    def do_execute(cursor: Any, statement: str, parameters: Any, context: Any) -> bool | None:
        if context is None or not context.execution_options.get(UNPREPARED):
            return None  # SQLAlchemy executes it as usual
        cursor.execute(statement, parameters, prepare=False)
        return True

    event.listen(engine, "connect", connect)
    event.listen(engine, "do_execute", do_execute)
    return engine
