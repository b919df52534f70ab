"""Indexes for casts serialised per voter (voting.service._intake): the ballot's unique values by ballot
hash (voting._intake_db.BallotUniqueValue: a cast reserves its values before its append, and an orphan's
reservation is deleted by its ballot hash) and the authentication evidence by status (the pending rows'
lower bound, from which reconciliation replays).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_intake_unique_value_ballot", "intake_unique_value", ["election_id", "ballot_hash"], unique=False
    )
    op.create_index(
        "ix_intake_evidence_status", "intake_auth_evidence", ["election_id", "status"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_intake_evidence_status", table_name="intake_auth_evidence")
    op.drop_index("ix_intake_unique_value_ballot", table_name="intake_unique_value")
