"""spend attestation: each node's signed word on how far its spend log had grown

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 05:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("privacy_spend") as batch:
        batch.add_column(sa.Column("attestation", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("privacy_spend") as batch:
        batch.drop_column("attestation")
