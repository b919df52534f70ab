"""Shared fixtures. Keep small.

``postgres_url``: an SQLAlchemy URL to a fresh database on a real PostgreSQL server that the test
session starts itself (tests/_pg.py) and stops at the end. Without PostgreSQL installed the requesting
tests skip, unless ``TVOTE_REQUIRE_ALL=1``, in which case they fail.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from _pg import PostgresServer, find_bindir  # tests/ is on sys.path (rootdir conftest)


def _unavailable(why: str) -> None:
    if os.environ.get("TVOTE_REQUIRE_ALL") == "1":
        pytest.fail(f"PostgreSQL required (TVOTE_REQUIRE_ALL=1): {why}")
    pytest.skip(why)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    bindir = find_bindir()
    if bindir is None:
        _unavailable("PostgreSQL server binaries not installed")
    assert bindir is not None
    server = PostgresServer(bindir)
    try:
        server.start()
    except Exception as e:  # pragma: no cover - environment-dependent
        _unavailable(f"PostgreSQL did not start: {e}")
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A fresh, empty database on the session's PostgreSQL server."""
    return postgres_server.create_database()
