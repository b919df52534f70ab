"""Baseline: the schema of the last release without migrations (27ac27b): voting's and the ledger's tables.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql import sqltypes

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "intake_auth_evidence",
        sa.Column("evidence_hash", sqltypes.AutoString(length=64), nullable=False),
        sa.Column("election_id", sqltypes.AutoString(length=128), nullable=False),
        sa.Column("voter_alias", sqltypes.AutoString(length=64), nullable=False),
        sa.Column("ballot_hash", sqltypes.AutoString(length=64), nullable=False),
        sa.Column("method", sqltypes.AutoString(length=16), nullable=False),
        sa.Column("evidence", sqltypes.AutoString(), nullable=False),
        sa.Column("sealed", sqltypes.AutoString(), nullable=True),
        sa.Column("challenge", sqltypes.AutoString(length=64), nullable=True),
        sa.Column("created_at", sqltypes.UTCDateTime(), nullable=False),
        sa.Column("status", sqltypes.AutoString(length=8), nullable=False),
        sa.Column("ledger_index", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("evidence_hash"),
    )
    op.create_index(
        op.f("ix_intake_auth_evidence_election_id"), "intake_auth_evidence", ["election_id"], unique=False
    )
    op.create_index(
        op.f("ix_intake_auth_evidence_voter_alias"), "intake_auth_evidence", ["voter_alias"], unique=False
    )
    op.create_table(
        "intake_ballot",
        sa.Column("ballot_hash", sqltypes.AutoString(length=64), nullable=False),
        sa.Column("election_id", sqltypes.AutoString(length=128), nullable=False),
        sa.Column("kind", sqltypes.AutoString(length=8), nullable=False),
        sa.Column("tracking_code", sqltypes.AutoString(length=128), nullable=False),
        sa.Column("ledger_index", sa.Integer(), nullable=False),
        sa.Column("voter_alias", sqltypes.AutoString(length=64), nullable=True),
        sa.Column("channel", sqltypes.AutoString(length=16), nullable=True),
        sa.Column("seq", sa.Integer(), nullable=True),
        sa.Column("created_at", sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("ballot_hash"),
        sa.UniqueConstraint("election_id", "voter_alias", "seq", name="uq_intake_voter_seq"),
    )
    op.create_index(op.f("ix_intake_ballot_election_id"), "intake_ballot", ["election_id"], unique=False)
    op.create_index("ix_intake_ballot_kind", "intake_ballot", ["election_id", "kind"], unique=False)
    op.create_index(op.f("ix_intake_ballot_tracking_code"), "intake_ballot", ["tracking_code"], unique=False)
    op.create_index(
        "uq_intake_voter_kiosk",
        "intake_ballot",
        ["election_id", "voter_alias"],
        unique=True,
        sqlite_where=sa.text("channel = 'kiosk'"),
        postgresql_where=sa.text("channel = 'kiosk'"),
    )
    op.create_table(
        "intake_challenge",
        sa.Column("challenge", sqltypes.AutoString(length=64), nullable=False),
        sa.Column("election_id", sqltypes.AutoString(length=128), nullable=False),
        sa.Column("issued_at", sqltypes.UTCDateTime(), nullable=False),
        sa.Column("expires_at", sqltypes.UTCDateTime(), nullable=False),
        sa.Column("used_at", sqltypes.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("challenge"),
    )
    op.create_index(
        op.f("ix_intake_challenge_election_id"), "intake_challenge", ["election_id"], unique=False
    )
    op.create_table(
        "intake_dapp_transaction",
        sa.Column("handle", sqltypes.AutoString(length=64), nullable=False),
        sa.Column("election_id", sqltypes.AutoString(length=128), nullable=False),
        sa.Column("app_transaction_id", sqltypes.AutoString(length=64), nullable=False),
        sa.Column("ballot_hash", sqltypes.AutoString(length=64), nullable=False),
        sa.Column("challenge", sqltypes.AutoString(length=64), nullable=False),
        sa.Column("digest_info", sqltypes.AutoString(length=128), nullable=False),
        sa.Column("issued_at", sqltypes.UTCDateTime(), nullable=False),
        sa.Column("expires_at", sqltypes.UTCDateTime(), nullable=False),
        sa.Column("used_at", sqltypes.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("handle"),
        sa.UniqueConstraint("app_transaction_id"),
        sa.UniqueConstraint("challenge"),
    )
    op.create_index(
        op.f("ix_intake_dapp_transaction_election_id"),
        "intake_dapp_transaction",
        ["election_id"],
        unique=False,
    )
    op.create_table(
        "intake_oidc_binding",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("election_id", sqltypes.AutoString(length=128), nullable=False),
        sa.Column("subject_key", sqltypes.AutoString(length=64), nullable=False),
        sa.Column("voter_alias", sqltypes.AutoString(length=64), nullable=False),
        sa.Column("issuer", sqltypes.AutoString(length=512), nullable=False),
        sa.Column("evidence_hash", sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("election_id", "subject_key", name="uq_oidc_binding_subject"),
        sa.UniqueConstraint("election_id", "voter_alias", name="uq_oidc_binding_alias"),
    )
    op.create_index(
        op.f("ix_intake_oidc_binding_evidence_hash"), "intake_oidc_binding", ["evidence_hash"], unique=False
    )
    op.create_table(
        "intake_oidc_pending",
        sa.Column("state", sqltypes.AutoString(length=128), nullable=False),
        sa.Column("election_id", sqltypes.AutoString(length=128), nullable=False),
        sa.Column("ballot_hash", sqltypes.AutoString(length=64), nullable=False),
        sa.Column("code_verifier", sqltypes.AutoString(length=128), nullable=False),
        sa.Column("nonce_salt", sqltypes.AutoString(length=64), nullable=False),
        sa.Column("channel", sqltypes.AutoString(length=16), nullable=False),
        sa.Column("issued_at", sqltypes.UTCDateTime(), nullable=False),
        sa.Column("expires_at", sqltypes.UTCDateTime(), nullable=False),
        sa.Column("used_at", sqltypes.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("state"),
    )
    op.create_index(
        op.f("ix_intake_oidc_pending_election_id"), "intake_oidc_pending", ["election_id"], unique=False
    )
    op.create_table(
        "intake_unique_value",
        sa.Column("election_id", sqltypes.AutoString(length=128), nullable=False),
        sa.Column("value", sqltypes.AutoString(length=64), nullable=False),
        sa.Column("kind", sqltypes.AutoString(length=16), nullable=False),
        sa.Column("ballot_hash", sqltypes.AutoString(length=64), nullable=False),
        sa.Column("ledger_index", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("election_id", "value", "kind"),
    )
    op.create_table(
        "intake_voter_state",
        sa.Column("election_id", sqltypes.AutoString(length=128), nullable=False),
        sa.Column("voter_alias", sqltypes.AutoString(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kiosk_index", sa.Integer(), nullable=True),
        sa.Column("last_index", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("election_id", "voter_alias"),
    )
    op.create_table(
        "ledger_checkpoint",
        sa.Column("size", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("root", sa.LargeBinary(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("issued_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("size"),
    )
    op.create_table(
        "ledger_cosignature",
        sa.Column("size", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("witness", sa.String(length=64), nullable=False),
        sa.Column("signature", sa.LargeBinary(), nullable=False),
        sa.Column("received_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("size", "witness"),
    )
    op.create_table(
        "ledger_entry",
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.LargeBinary(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("idx"),
    )
    op.create_table(
        "ledger_node",
        sa.Column("level", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("level", "idx"),
    )
    op.create_table(
        "tv_election",
        sa.Column("election_id", sqltypes.AutoString(length=64), nullable=False),
        sa.Column("manifest_json", sqltypes.AutoString(), nullable=False),
        sa.Column("base_hash", sqltypes.AutoString(length=64), nullable=False),
        sa.Column("phase", sqltypes.AutoString(length=16), nullable=False),
        sa.Column("roll_key_hex", sqltypes.AutoString(length=64), nullable=False),
        sa.Column("roll_size", sa.Integer(), nullable=True),
        sa.Column("roll_root", sqltypes.AutoString(length=64), nullable=True),
        sa.Column("roll_committed", sa.Boolean(), nullable=False),
        sa.Column("joint_key_json", sqltypes.AutoString(), nullable=True),
        sa.Column("tally_json", sqltypes.AutoString(), nullable=True),
        sa.Column("created_at", sqltypes.UTCDateTime(), nullable=False),
        sa.Column("opened_at", sqltypes.UTCDateTime(), nullable=True),
        sa.Column("closed_at", sqltypes.UTCDateTime(), nullable=True),
        sa.Column("closes_at", sqltypes.UTCDateTime(), nullable=True),
        sa.Column("result_json", sqltypes.AutoString(), nullable=True),
        sa.Column("ledger_synced", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("election_id"),
    )
    op.create_table(
        "tv_ballot_check",
        sa.Column("election_id", sqltypes.AutoString(length=64), nullable=False),
        sa.Column("ballot_key", sqltypes.AutoString(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["election_id"],
            ["tv_election.election_id"],
        ),
        sa.PrimaryKeyConstraint("election_id", "ballot_key"),
    )
    op.create_table(
        "tv_booth",
        sa.Column("election_id", sqltypes.AutoString(length=64), nullable=False),
        sa.Column("digest", sqltypes.AutoString(length=64), nullable=False),
        sa.Column("ledger_index", sa.BigInteger(), nullable=False),
        sa.Column("assets_json", sqltypes.AutoString(), nullable=False),
        sa.ForeignKeyConstraint(
            ["election_id"],
            ["tv_election.election_id"],
        ),
        sa.PrimaryKeyConstraint("election_id"),
    )
    op.create_table(
        "tv_complaint",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("election_id", sqltypes.AutoString(length=64), nullable=False),
        sa.Column("complainant", sa.Integer(), nullable=False),
        sa.Column("dealer", sa.Integer(), nullable=False),
        sa.Column("complaint_json", sqltypes.AutoString(), nullable=False),
        sa.Column("answer_json", sqltypes.AutoString(), nullable=True),
        sa.Column("status", sqltypes.AutoString(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["election_id"],
            ["tv_election.election_id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("election_id", "complainant", "dealer"),
    )
    op.create_index(op.f("ix_tv_complaint_election_id"), "tv_complaint", ["election_id"], unique=False)
    op.create_table(
        "tv_partial",
        sa.Column("election_id", sqltypes.AutoString(length=64), nullable=False),
        sa.Column("trustee", sa.Integer(), nullable=False),
        sa.Column("partials_json", sqltypes.AutoString(), nullable=False),
        sa.Column("status", sqltypes.AutoString(length=16), nullable=False),
        sa.Column("reason", sqltypes.AutoString(), nullable=True),
        sa.ForeignKeyConstraint(
            ["election_id"],
            ["tv_election.election_id"],
        ),
        sa.PrimaryKeyConstraint("election_id", "trustee"),
    )
    op.create_table(
        "tv_roll_entry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("election_id", sqltypes.AutoString(length=64), nullable=False),
        sa.Column("alias", sqltypes.AutoString(length=64), nullable=False),
        sa.Column("match_key", sqltypes.AutoString(length=64), nullable=False),
        sa.Column("leaf_index", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["election_id"],
            ["tv_election.election_id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("election_id", "alias"),
    )
    op.create_index(op.f("ix_tv_roll_entry_election_id"), "tv_roll_entry", ["election_id"], unique=False)
    op.create_index(op.f("ix_tv_roll_entry_match_key"), "tv_roll_entry", ["match_key"], unique=False)
    op.create_table(
        "tv_roll_node",
        sa.Column("election_id", sa.String(length=64), nullable=False),
        sa.Column("level", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["election_id"],
            ["tv_election.election_id"],
        ),
        sa.PrimaryKeyConstraint("election_id", "level", "idx"),
    )
    op.create_table(
        "tv_share",
        sa.Column("election_id", sqltypes.AutoString(length=64), nullable=False),
        sa.Column("sender", sa.Integer(), nullable=False),
        sa.Column("recipient", sa.Integer(), nullable=False),
        sa.Column("ciphertext", sqltypes.AutoString(), nullable=False),
        sa.ForeignKeyConstraint(
            ["election_id"],
            ["tv_election.election_id"],
        ),
        sa.PrimaryKeyConstraint("election_id", "sender", "recipient"),
    )
    op.create_table(
        "tv_trustee",
        sa.Column("election_id", sqltypes.AutoString(length=64), nullable=False),
        sa.Column("index", sa.Integer(), nullable=False),
        sa.Column("invite_hash", sqltypes.AutoString(length=64), nullable=False),
        sa.Column("token_hash", sqltypes.AutoString(length=64), nullable=True),
        sa.Column("status", sqltypes.AutoString(length=16), nullable=False),
        sa.Column("name", sqltypes.AutoString(length=200), nullable=True),
        sa.Column("x25519_public_key", sqltypes.AutoString(length=64), nullable=True),
        sa.Column("commitments_json", sqltypes.AutoString(), nullable=True),
        sa.Column("shares_dealt", sa.Boolean(), nullable=False),
        sa.Column("registered_at", sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["election_id"],
            ["tv_election.election_id"],
        ),
        sa.PrimaryKeyConstraint("election_id", "index"),
    )
    op.create_index(op.f("ix_tv_trustee_token_hash"), "tv_trustee", ["token_hash"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_tv_trustee_token_hash"), table_name="tv_trustee")
    op.drop_table("tv_trustee")
    op.drop_table("tv_share")
    op.drop_table("tv_roll_node")
    op.drop_index(op.f("ix_tv_roll_entry_match_key"), table_name="tv_roll_entry")
    op.drop_index(op.f("ix_tv_roll_entry_election_id"), table_name="tv_roll_entry")
    op.drop_table("tv_roll_entry")
    op.drop_table("tv_partial")
    op.drop_index(op.f("ix_tv_complaint_election_id"), table_name="tv_complaint")
    op.drop_table("tv_complaint")
    op.drop_table("tv_booth")
    op.drop_table("tv_ballot_check")
    op.drop_table("tv_election")
    op.drop_table("ledger_node")
    op.drop_table("ledger_entry")
    op.drop_table("ledger_cosignature")
    op.drop_table("ledger_checkpoint")
    op.drop_table("intake_voter_state")
    op.drop_table("intake_unique_value")
    op.drop_index(op.f("ix_intake_oidc_pending_election_id"), table_name="intake_oidc_pending")
    op.drop_table("intake_oidc_pending")
    op.drop_index(op.f("ix_intake_oidc_binding_evidence_hash"), table_name="intake_oidc_binding")
    op.drop_table("intake_oidc_binding")
    op.drop_index(op.f("ix_intake_dapp_transaction_election_id"), table_name="intake_dapp_transaction")
    op.drop_table("intake_dapp_transaction")
    op.drop_index(op.f("ix_intake_challenge_election_id"), table_name="intake_challenge")
    op.drop_table("intake_challenge")
    op.drop_index(
        "uq_intake_voter_kiosk",
        table_name="intake_ballot",
        sqlite_where=sa.text("channel = 'kiosk'"),
        postgresql_where=sa.text("channel = 'kiosk'"),
    )
    op.drop_index(op.f("ix_intake_ballot_tracking_code"), table_name="intake_ballot")
    op.drop_index("ix_intake_ballot_kind", table_name="intake_ballot")
    op.drop_index(op.f("ix_intake_ballot_election_id"), table_name="intake_ballot")
    op.drop_table("intake_ballot")
    op.drop_index(op.f("ix_intake_auth_evidence_voter_alias"), table_name="intake_auth_evidence")
    op.drop_index(op.f("ix_intake_auth_evidence_election_id"), table_name="intake_auth_evidence")
    op.drop_table("intake_auth_evidence")
