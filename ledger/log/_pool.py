"""Connection-pool liveness for the PostgreSQL engines (the ledger's and the election service's). Private;
:func:`ping_when_idle` is exported by :mod:`ledger.log`.

SQLAlchemy's ``pool_pre_ping`` pings the server on EVERY checkout: one round trip per transaction, about a
tenth of a busy server's statements. A connection that was just handed back is as alive as it was a moment
ago; the ones worth a ping are those that sat idle long enough to have gone stale (the database restarted,
an idle timeout or a firewall dropped them). So: the pool's ``checkin`` records when a connection came back
(in its record's ``info``, which the pool clears with the connection), and ``checkout`` pings only one idle
for :data:`IDLE_PING_SECONDS` or longer, raising :class:`sqlalchemy.exc.DisconnectionError` when the ping
fails, which makes the pool drop it and hand out a fresh connection instead (SQLAlchemy's documented
"pessimistic" disconnect handling with pool events). A connection that dies while busy fails its statement,
as it does with ``pool_pre_ping`` too.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Final

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError

__all__ = ["IDLE_PING_SECONDS", "ping_when_idle"]

#: a pooled connection back in the pool for at least this long is pinged before it is handed out again
IDLE_PING_SECONDS: Final[float] = 10.0

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
