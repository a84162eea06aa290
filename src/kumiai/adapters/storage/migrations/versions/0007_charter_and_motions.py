"""charter and motions: the board's charter versions, founders' signatures, motions, votes

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 06:00:00
"""

import sqlalchemy as sa
from alembic import op

from kumiai.adapters.storage.schema import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "charters",
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("proposed_by", sa.String(length=63), nullable=False),
        sa.Column("proposed_at", UTCDateTime(), nullable=False),
        sa.Column("adopted_at", UTCDateTime(), nullable=True),
        sa.Column("motion", sa.String(length=20), nullable=True),
        sa.PrimaryKeyConstraint("version"),
    )
    op.create_table(
        "charter_signatures",
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("member", sa.String(length=63), nullable=False),
        sa.Column("signed_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["version"], ["charters.version"]),
        sa.ForeignKeyConstraint(["member"], ["members.name"]),
        sa.PrimaryKeyConstraint("version", "member"),
    )
    op.create_table(
        "motions",
        sa.Column("id", sa.String(length=20), nullable=False),
        sa.Column("decision", sa.String(length=30), nullable=False),
        sa.Column("payload_json", sa.Text(), nullable=False),
        sa.Column("proposer", sa.String(length=63), nullable=False),
        sa.Column("charter_version", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("proposed_at", UTCDateTime(), nullable=False),
        sa.Column("closes_at", UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
        sa.Column("tally_json", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["proposer"], ["members.name"]),
        sa.ForeignKeyConstraint(["charter_version"], ["charters.version"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "votes",
        sa.Column("motion", sa.String(length=20), nullable=False),
        sa.Column("member", sa.String(length=63), nullable=False),
        sa.Column("choice", sa.String(length=10), nullable=False),
        sa.Column("cast_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["motion"], ["motions.id"]),
        sa.ForeignKeyConstraint(["member"], ["members.name"]),
        sa.PrimaryKeyConstraint("motion", "member"),
    )


def downgrade() -> None:
    op.drop_table("votes")
    op.drop_table("motions")
    op.drop_table("charter_signatures")
    op.drop_table("charters")
