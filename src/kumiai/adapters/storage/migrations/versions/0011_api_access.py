"""the coordinator's write API: request nonces, access grants, invitations

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29 12:30:00
"""

import sqlalchemy as sa
from alembic import op

from kumiai.adapters.storage.schema import UTCDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "request_nonces",
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("keyid", sa.String(length=16), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("nonce"),
    )
    op.create_index("ix_request_nonces_expires_at", "request_nonces", ["expires_at"])
    op.create_table(
        "access_grants",
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("public_key", sa.String(length=64), nullable=False),
        sa.Column("key_fingerprint", sa.String(length=16), nullable=False),
        sa.Column("granted_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
        sa.UniqueConstraint("key_fingerprint"),
    )
    op.create_table(
        "invitations",
        sa.Column("id", sa.String(length=20), nullable=False),
        sa.Column("member", sa.String(length=63), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("secret_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("used_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("invitations")
    op.drop_table("access_grants")
    op.drop_index("ix_request_nonces_expires_at", table_name="request_nonces")
    op.drop_table("request_nonces")
