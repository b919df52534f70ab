"""Pooled PostgreSQL connections are pinged only after they sat idle (``ledger.log.ping_when_idle``).

An operator's failures: the database restarted, or an idle timeout or a firewall cut connections that sat in
the pool; the next request must get a working connection, not an error. A busy server must not pay a ping per
transaction (what ``pool_pre_ping`` did). Both engines (the ledger's and the election service's) are built
this way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine

from ledger.log import ping_when_idle
from ledger.log._pool import _CHECKED_IN
from ledger.log._store import make_engine as ledger_engine
from voting._db import make_engine as voting_engine

pytestmark = pytest.mark.postgres


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _pid(engine: Engine) -> int:
    with engine.connect() as c:
        return int(c.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _kill(url: str, pid: int) -> None:
    """Terminate backend ``pid`` from a connection outside the engine under test."""
    other = create_engine(url)
    try:
        with other.connect() as c:
            assert c.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar_one() is True
    finally:
        other.dispose()


def _count_pings(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real: Callable[[Any], bool] = engine.dialect.do_ping

    def counted(dbapi_connection: Any) -> bool:
        calls.append(1)
        return real(dbapi_connection)

    monkeypatch.setattr(engine.dialect, "do_ping", counted)
    return calls


def test_an_idle_connection_killed_by_the_server_is_replaced_before_use(postgres_url: str) -> None:
    clock = _Clock()
    engine = ping_when_idle(create_engine(postgres_url, pool_size=1, max_overflow=0), clock=clock)
    try:
        first = _pid(engine)
        _kill(postgres_url, first)  # a restart, an idle timeout, a firewall: the pooled connection is dead
        clock.now += 11.0  # ... and it sat idle past the limit
        assert _pid(engine) != first  # pinged, found dead, replaced: no error reaches the caller
        assert _pid(engine) == _pid(engine)  # the replacement is pooled as usual
    finally:
        engine.dispose()


def test_a_busy_connection_is_not_pinged(postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = _Clock()
    engine = ping_when_idle(create_engine(postgres_url, pool_size=1, max_overflow=0), clock=clock)
    pings = _count_pings(engine, monkeypatch)
    try:
        pids = {_pid(engine) for _ in range(20)}
        clock.now += 9.9  # idle, but not long enough
        pids.add(_pid(engine))
        assert len(pids) == 1 and pings == []  # one connection reused, never pinged
        clock.now += 10.0
        pids.add(_pid(engine))
        assert len(pids) == 1 and len(pings) == 1  # alive after its idle spell: pinged once, kept
    finally:
        engine.dispose()


def test_a_failed_ping_of_any_kind_replaces_the_connection(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = _Clock()
    engine = ping_when_idle(create_engine(postgres_url, pool_size=1, max_overflow=0), clock=clock)

    def broken(_dbapi_connection: Any) -> bool:
        raise OSError("connection reset by peer")

    try:
        first = _pid(engine)
        monkeypatch.setattr(engine.dialect, "do_ping", broken)
        clock.now += 60.0
        with engine.connect() as c:  # the fresh connection is new: not pinged
            assert int(c.execute(text("SELECT pg_backend_pid()")).scalar_one()) != first
    finally:
        engine.dispose()


@pytest.mark.parametrize("make", [ledger_engine, voting_engine], ids=["ledger", "voting"])
def test_both_engines_ping_only_idle_connections(
    make: Callable[[str], Engine], postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make(postgres_url)
    pings = _count_pings(engine, monkeypatch)
    aged = [False]

    @event.listens_for(engine, "checkin")
    def _age(_dbapi_connection: Any, record: Any) -> None:  # runs after the engine's own check-in stamp
        if aged[0] and record is not None:
            record.info[_CHECKED_IN] -= 60.0  # as if the connection had sat idle for a minute

    try:
        assert not engine.pool._pre_ping  # type: ignore[attr-defined]  # no ping per checkout
        first = _pid(engine)
        assert _pid(engine) == first and pings == []  # busy: reused, not pinged
        aged[0] = True
        _pid(engine)  # checked in "a minute ago"
        _kill(postgres_url, first)
        assert _pid(engine) != first  # pinged, found dead, replaced
        assert len(pings) == 1
    finally:
        engine.dispose()
