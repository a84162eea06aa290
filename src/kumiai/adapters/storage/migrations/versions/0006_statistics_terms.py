"""statistics terms: what aggregate statistics a request asks a steward to let leave

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 14:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("data_requests") as batch:
        batch.add_column(
            sa.Column(
                "aggregate_statistics", sa.String(12), nullable=False, server_default="allowed"
            )
        )
        batch.add_column(sa.Column("min_cohort", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("data_requests") as batch:
        batch.drop_column("min_cohort")
        batch.drop_column("aggregate_statistics")
