"""Shared fixtures. Keep small.

``postgres_url``: an SQLAlchemy URL to a fresh database on a real PostgreSQL server that the test
session starts itself (tests/_pg.py) and stops at the end. Without PostgreSQL installed the requesting
tests skip, unless ``TVOTE_REQUIRE_ALL=1``, in which case they fail.

``database_url``: parametrised over ``sqlite`` and ``postgres``, so a test that takes it runs on both
backends: ``None`` (the service's default SQLite file in its data directory) or a fresh PostgreSQL
database. ``module_database_url`` is the same for module-scoped fixtures (one database per module and
backend). The ``postgres`` variants carry the ``postgres`` mark (``-m "not postgres"`` deselects them).
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


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def _fresh_database(request: pytest.FixtureRequest, backend: str) -> str | None:
    if backend == "sqlite":
        return None
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.create_database()


@pytest.fixture(scope="module", params=BACKENDS)
def database_backend(request: pytest.FixtureRequest) -> str:
    """``"sqlite"`` or ``"postgres"`` (module scope, so module fixtures can follow it)."""
    return str(request.param)


@pytest.fixture
def database_url(request: pytest.FixtureRequest, database_backend: str) -> str | None:
    """``None`` (SQLite in the service's data directory) or a fresh PostgreSQL database URL."""
    return _fresh_database(request, database_backend)


@pytest.fixture(scope="module")
def module_database_url(request: pytest.FixtureRequest, database_backend: str) -> str | None:
    """Like ``database_url``, one database per test module and backend."""
    return _fresh_database(request, database_backend)
