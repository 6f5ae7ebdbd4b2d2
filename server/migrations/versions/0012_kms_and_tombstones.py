"""customer-managed keys (organisations.kms_key_arn) and organisation tombstones

Revision ID: 0012
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("organisations") as batch:
        batch.add_column(sa.Column("kms_key_arn", sa.String(length=2048), nullable=True))
    op.create_table(
        "organisation_tombstones",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=120), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("organisation_tombstones")
    with op.batch_alter_table("organisations") as batch:
        batch.drop_column("kms_key_arn")
