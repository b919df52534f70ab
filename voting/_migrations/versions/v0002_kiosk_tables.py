"""The polling-place kiosks' private tables (voting._kiosk_db).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql import sqltypes

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "kiosk",
        sa.Column("election_id", sqltypes.AutoString(length=128), nullable=False),
        sa.Column("kiosk_id", sqltypes.AutoString(length=63), nullable=False),
        sa.Column("public_key", sqltypes.AutoString(length=64), nullable=False),
        sa.Column("polling_place", sqltypes.AutoString(length=1024), nullable=False),
        sa.Column("enrolled_index", sa.Integer(), nullable=False),
        sa.Column("revoked_index", sa.Integer(), nullable=True),
        sa.Column("session", sa.BigInteger(), nullable=False),
        sa.Column("session_open", sa.Boolean(), nullable=False),
        sa.Column("opened_index", sa.Integer(), nullable=True),
        sa.Column("last_request_ms", sa.BigInteger(), nullable=False),
        sa.Column("pin_hash", sqltypes.AutoString(length=256), nullable=True),
        sa.Column("pin_failures", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("election_id", "kiosk_id"),
        sa.UniqueConstraint("election_id", "public_key", name="uq_kiosk_public_key"),
    )
    op.create_table(
        "kiosk_ballot",
        sa.Column("ballot_hash", sqltypes.AutoString(length=64), nullable=False),
        sa.Column("election_id", sqltypes.AutoString(length=128), nullable=False),
        sa.Column("kiosk_id", sqltypes.AutoString(length=63), nullable=False),
        sa.Column("session", sa.BigInteger(), nullable=False),
        sa.Column("ledger_index", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("ballot_hash"),
    )
    op.create_index(
        "ix_kiosk_ballot_session", "kiosk_ballot", ["election_id", "kiosk_id", "session"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_kiosk_ballot_session", table_name="kiosk_ballot")
    op.drop_table("kiosk_ballot")
    op.drop_table("kiosk")
