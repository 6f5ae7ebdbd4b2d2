"""a batch's integrity digest is an HMAC under its import's key, no longer a bare SHA-256

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("batches") as batch_op:
        batch_op.alter_column("sha256", new_column_name="digest")


def downgrade() -> None:
    with op.batch_alter_table("batches") as batch_op:
        batch_op.alter_column("digest", new_column_name="sha256")
