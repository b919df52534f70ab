"""Intake's lookups get one plan each, whatever the statistics. PostgreSQL plans a table that has none yet
(the start of every election, until autovacuum's first ANALYZE) as if ``election_id = ?`` matched a few rows,
so it scanned any index that starts with ``election_id`` and filtered the rest: at each cast, a read of every
value (and every evidence row) of the election. Now:

* the ballot's unique values are keyed ``(value, election_id, kind)`` (was ``(election_id, value, kind)``)
  and indexed by ballot hash alone (was ``(election_id, ballot_hash)``): the lookup ``election_id = ? AND
  value IN (...)`` is one index probe per value;
* the authentication evidence loses its index on ``election_id`` alone (``ix_intake_evidence_status``
  starts with it): one index fewer written at every cast, and a voter's pending lookup is no longer planned
  on it; so do the accepted ballots (``ix_intake_ballot_kind`` and ``uq_intake_voter_seq`` start with it).

On SQLite the key keeps its order (rebuilding the table for it would gain nothing: SQLite plans the lookup
on both of the key's first columns either way); a new SQLite database is created with the new order.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _key(columns: list[str]) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint("intake_unique_value_pkey", "intake_unique_value", type_="primary")
        op.create_primary_key("intake_unique_value_pkey", "intake_unique_value", columns)


def upgrade() -> None:
    _key(["value", "election_id", "kind"])
    op.drop_index("ix_intake_unique_value_ballot", table_name="intake_unique_value")
    op.create_index("ix_intake_unique_value_ballot", "intake_unique_value", ["ballot_hash"], unique=False)
    op.drop_index("ix_intake_auth_evidence_election_id", table_name="intake_auth_evidence")
    op.drop_index("ix_intake_ballot_election_id", table_name="intake_ballot")


def downgrade() -> None:
    op.create_index("ix_intake_ballot_election_id", "intake_ballot", ["election_id"], unique=False)
    op.create_index(
        "ix_intake_auth_evidence_election_id", "intake_auth_evidence", ["election_id"], unique=False
    )
    op.drop_index("ix_intake_unique_value_ballot", table_name="intake_unique_value")
    op.create_index(
        "ix_intake_unique_value_ballot", "intake_unique_value", ["election_id", "ballot_hash"], unique=False
    )
    _key(["election_id", "value", "kind"])
