"""Alembic environment: the service's metadata (voting's and the ledger's tables, one database).

Configured in code (``voting._migrate.alembic_config``): no ``alembic.ini`` is needed. Online only; the
connection is passed in ``config.attributes["connection"]`` (the caller holds the database's schema lock,
``voting._migrate.migrate``) or made from ``sqlalchemy.url`` (then this takes the lock:
:func:`ledger.log.schema_transaction`).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

import ledger.log  # the schema lock; registers the ledger's ledger_* tables (one database, one metadata)
from voting import _db, _intake_db, _kiosk_db  # noqa: F401  (register voting's tables)

target_metadata = SQLModel.metadata


def _run(connection: Connection) -> None:
    # sqlmodel's column types (AutoString, UTCDateTime) render as ``sqltypes.X`` (script.py.mako imports it)
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        user_module_prefix="sqltypes.",
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    engine = create_engine(context.config.get_main_option("sqlalchemy.url") or "")
    with ledger.log.schema_transaction(engine) as conn:
        _run(conn)
    engine.dispose()
