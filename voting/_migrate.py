"""Schema migrations of the service's database (Alembic; scripts in ``voting/_migrations``).

One database holds voting's tables and the ledger's (``ledger.log`` creates its own with ``create_all`` when
it opens a store; the migrations cover them too, since every schema change must reach existing databases).
At start-up :func:`migrate` brings the database to the code's schema:

* no table of the service yet (a fresh database, or one where only the ledger's store created its tables):
  ``create_all`` as before, then ``stamp head``;
* the service's tables but no ``alembic_version``: the database of the release before migrations
  (revision ``0001``): ``stamp 0001``, then ``upgrade head``;
* ``alembic_version`` present: ``upgrade head``; a revision this code does not know (a database written by
  a newer release) is refused with :class:`SchemaError`.

Two processes starting at once never both migrate, and a migration never runs beside a ledger creating its
tables: all of it runs under the database's one schema lock (:func:`ledger.log.schema_transaction`: on
PostgreSQL a transaction-level advisory lock, on SQLite ``flock`` of ``<database file>.migrate.lock``).
"""

from __future__ import annotations

import threading
import weakref
from importlib import resources
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Connection, Engine
from sqlmodel import SQLModel

from ledger.log import schema_transaction

from ._errors import ServiceError

__all__ = ["BASELINE", "SchemaError", "alembic_config", "migrate"]

#: the revision of the schema of the last release without migrations
BASELINE = "0001"
#: a table every release's service creates (its presence marks a database that is not fresh)
_MARKER_TABLE = "tv_election"


#: engines this process has migrated (start-up runs once per engine, not on every service object)
_migrated: weakref.WeakSet[Engine] = weakref.WeakSet()
_migrated_lock = threading.Lock()


class SchemaError(ServiceError):
    """The database's schema cannot be brought to this code's (e.g. it was written by a newer release);
    ``tvote`` reports it in one line (``database.schema_newer``), without a traceback."""

    status = 500
    default_code = "database.schema"


def alembic_config(connection: Connection | None = None, url: str | None = None) -> Config:
    """The project's Alembic configuration, in code (no ``alembic.ini``)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("voting") / "_migrations"))
    cfg.set_main_option("file_template", "v%%(rev)s_%%(slug)s")  # an importable module name
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", url)
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def migrate(engine: Engine) -> None:
    """Bring the database behind ``engine`` to this code's schema (see the module's docstring)."""
    import ledger.log  # noqa: F401  (the ledger's tables: the same database and metadata)

    from . import _db, _intake_db, _kiosk_db  # noqa: F401  (every table in the metadata)

    with _migrated_lock:
        if engine in _migrated:
            return
        with schema_transaction(engine) as conn:
            _migrate(conn)
        _migrated.add(engine)


def _migrate(conn: Connection) -> None:
    cfg = alembic_config(conn)
    script = ScriptDirectory.from_config(cfg)
    head = script.get_current_head()
    current: Any = MigrationContext.configure(conn).get_current_heads()
    if not current:
        if not inspect(conn).has_table(_MARKER_TABLE):
            SQLModel.metadata.create_all(conn)
            command.stamp(cfg, "head")
            return
        command.stamp(cfg, BASELINE)
    else:
        for rev in current:
            try:
                script.get_revision(rev)
            except Exception as e:  # alembic raises CommandError/ResolutionError for an unknown revision
                raise SchemaError(
                    "database.schema_newer",
                    f"the database's schema revision {rev!r} is unknown to this release "
                    f"(head {head!r}): it was written by a newer release; upgrade tvote",
                ) from e
    command.upgrade(cfg, "head")
