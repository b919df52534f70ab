"""The running log (storage through SQLModel, an HTTP witness client): what the election service runs.

* :class:`Ledger` (``_sequencer``): one sequencer thread per process with group commit (on PostgreSQL any
  number of processes append to one ledger, each batch under a transaction-level lock), signed
  checkpoints, inclusion and consistency proofs, witness cosignatures, the export of the election record
  (through ``ledger.record``'s one writer) and the storage check;
* :class:`LedgerConfig`, :class:`Appended`, :class:`InclusionProof`, :class:`ConsistencyProof`,
  :class:`StoredCheckpoint` (``_types``);
* the SQL store (``_store``: SQLite, one appending process; or PostgreSQL, several), private to the
  sequencer;
* :class:`Witness` (``_witness``): the witness service's core, which cosigns checkpoints and refuses a
  fork or a rollback; its HTTP client is injected;
* :func:`ping_when_idle` (``_pool``): a PostgreSQL engine's pool pings only a connection that sat idle;
  :func:`tune_postgres` gives its connections lz4 compression of out-of-line values and runs a statement
  marked :data:`UNPREPARED` unprepared (the ledger's engine and the election service's both use them);
* :func:`schema_transaction` (``_schema``): the database's schema lock, under which the store creates its
  tables and the election service migrates the database it shares with the ledger, so processes starting
  at once on one fresh database do not collide.

Built on :mod:`ledger.record` (the pure format) and :mod:`ledger.merkle`; ``ledger.record`` never imports
this package, so a verifier never loads SQLAlchemy.
"""

from __future__ import annotations

from ._pool import UNPREPARED, ping_when_idle, tune_postgres
from ._schema import schema_transaction
from ._sequencer import Ledger
from ._types import Appended, ConsistencyProof, InclusionProof, LedgerConfig, StoredCheckpoint
from ._witness import Witness

__all__ = [
    "UNPREPARED",
    "Appended",
    "ConsistencyProof",
    "InclusionProof",
    "Ledger",
    "LedgerConfig",
    "StoredCheckpoint",
    "Witness",
    "ping_when_idle",
    "schema_transaction",
    "tune_postgres",
]
