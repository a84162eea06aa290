"""spin-outs, licences and royalties: spin-outs, licences, revenue reports with their payouts

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 10:30:00
"""

import sqlalchemy as sa
from alembic import op

from kumiai.adapters.storage.schema import UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "spinouts",
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("founders_json", sa.Text(), nullable=False),
        sa.Column("theme", sa.String(length=63), nullable=True),
        sa.Column("project", sa.String(length=63), nullable=True),
        sa.Column("motion", sa.String(length=20), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["name"], ["members.name"]),
        sa.ForeignKeyConstraint(["project"], ["projects.name"]),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "licences",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("licensee", sa.String(length=63), nullable=False),
        sa.Column("model", sa.String(length=40), nullable=False),
        sa.Column("terms_json", sa.Text(), nullable=False),
        sa.Column("motion", sa.String(length=20), nullable=False),
        sa.Column("granted_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["licensee"], ["members.name"]),
        sa.ForeignKeyConstraint(["model"], ["model_versions.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "revenue_reports",
        sa.Column("licence", sa.String(length=40), nullable=False),
        sa.Column("period", sa.String(length=10), nullable=False),
        sa.Column("revenue_yen", sa.BigInteger(), nullable=False),
        sa.Column("royalty_yen", sa.BigInteger(), nullable=False),
        sa.Column("association_yen", sa.BigInteger(), nullable=False),
        sa.Column("payouts_json", sa.Text(), nullable=False),
        sa.Column("contributions_seq", sa.Integer(), nullable=False),
        sa.Column("reported_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["licence"], ["licences.id"]),
        sa.PrimaryKeyConstraint("licence", "period"),
    )


def downgrade() -> None:
    op.drop_table("revenue_reports")
    op.drop_table("licences")
    op.drop_table("spinouts")
