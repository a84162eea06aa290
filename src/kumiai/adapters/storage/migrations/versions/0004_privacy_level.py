"""privacy spend level: record-level DP-SGD or client-level DP-FedAvg

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 00:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Jobs before this revision could only be record-level.
    with op.batch_alter_table("privacy_spend") as batch:
        batch.add_column(
            sa.Column("level", sa.String(length=10), nullable=False, server_default="record")
        )


def downgrade() -> None:
    with op.batch_alter_table("privacy_spend") as batch:
        batch.drop_column("level")
