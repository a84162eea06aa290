"""themes, funds, spend and milestones: the association's priorities and money

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29 09:30:00
"""

import sqlalchemy as sa
from alembic import op

from kumiai.adapters.storage.schema import UTCDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "themes",
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=63), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=True),
        sa.Column("ranked_by", sa.String(length=20), nullable=True),
        sa.ForeignKeyConstraint(["created_by"], ["members.name"]),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "project_themes",
        sa.Column("project", sa.String(length=63), nullable=False),
        sa.Column("theme", sa.String(length=63), nullable=False),
        sa.ForeignKeyConstraint(["project"], ["projects.name"]),
        sa.ForeignKeyConstraint(["theme"], ["themes.name"]),
        sa.PrimaryKeyConstraint("project"),
    )
    op.create_table(
        "fund_receipts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("source", sa.String(length=63), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("payer", sa.Text(), nullable=False),
        sa.Column("amount_yen", sa.BigInteger(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_fund_receipts_source", "fund_receipts", ["source"])
    op.create_table(
        "fund_allocations",
        sa.Column("motion", sa.String(length=20), nullable=False),
        sa.Column("project", sa.String(length=63), nullable=False),
        sa.Column("source", sa.String(length=63), nullable=False),
        sa.Column("amount_yen", sa.BigInteger(), nullable=False),
        sa.Column("site_rounds", sa.BigInteger(), nullable=True),
        sa.Column("allocated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["motion"], ["motions.id"]),
        sa.ForeignKeyConstraint(["project"], ["projects.name"]),
        sa.PrimaryKeyConstraint("motion"),
    )
    op.create_index("ix_fund_allocations_project", "fund_allocations", ["project"])
    op.create_index("ix_fund_allocations_source", "fund_allocations", ["source"])
    op.create_table(
        "spends",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("project", sa.String(length=63), nullable=False),
        sa.Column("category", sa.String(length=20), nullable=False),
        sa.Column("amount_yen", sa.BigInteger(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("spent_on", sa.String(length=10), nullable=False),
        sa.Column("recorded_by", sa.String(length=63), nullable=False),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["project"], ["projects.name"]),
        sa.ForeignKeyConstraint(["recorded_by"], ["members.name"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_spends_project", "spends", ["project"])
    op.create_table(
        "milestones",
        sa.Column("project", sa.String(length=63), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("due", sa.String(length=10), nullable=False),
        sa.Column("set_by", sa.String(length=63), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("decided_at", UTCDateTime(), nullable=True),
        sa.Column("motion", sa.String(length=20), nullable=True),
        sa.ForeignKeyConstraint(["project"], ["projects.name"]),
        sa.ForeignKeyConstraint(["set_by"], ["members.name"]),
        sa.PrimaryKeyConstraint("project", "name"),
    )
    op.create_table(
        "milestone_evidence",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("project", sa.String(length=63), nullable=False),
        sa.Column("milestone", sa.String(length=63), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("ref", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("added_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project", "milestone"], ["milestones.project", "milestones.name"]
        ),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("milestone_evidence")
    op.drop_table("milestones")
    op.drop_index("ix_spends_project", table_name="spends")
    op.drop_table("spends")
    op.drop_index("ix_fund_allocations_source", table_name="fund_allocations")
    op.drop_index("ix_fund_allocations_project", table_name="fund_allocations")
    op.drop_table("fund_allocations")
    op.drop_index("ix_fund_receipts_source", table_name="fund_receipts")
    op.drop_table("fund_receipts")
    op.drop_table("project_themes")
    op.drop_table("themes")
