"""contribution consent: a data-use request asks for the contribution_analysis term

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("data_requests") as batch_op:
        batch_op.add_column(
            sa.Column(
                "contribution_analysis", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("data_requests") as batch_op:
        batch_op.drop_column("contribution_analysis")
