"""destination concurrency: how many attempts may send to one destination at once

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("destinations") as batch:
        batch.add_column(
            sa.Column("max_concurrency", sa.Integer(), nullable=False, server_default="4")
        )


def downgrade() -> None:
    with op.batch_alter_table("destinations") as batch:
        batch.drop_column("max_concurrency")
