"""publishable key rotation with a grace period: the key before the last rotation and
when it stops opening the importer; a template's draft (the editor's unsaved changes)
and the version it was begun on

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("templates") as batch:
        batch.add_column(sa.Column("draft", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("draft_base", sa.Integer(), nullable=True))
    with op.batch_alter_table("organisations") as batch:
        batch.add_column(sa.Column("previous_publishable_key", sa.String(64), nullable=True))
        batch.add_column(
            sa.Column("previous_key_expires_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch.create_unique_constraint(
            "uq_organisations_previous_publishable_key", ["previous_publishable_key"]
        )


def downgrade() -> None:
    with op.batch_alter_table("organisations") as batch:
        batch.drop_constraint("uq_organisations_previous_publishable_key", type_="unique")
        batch.drop_column("previous_key_expires_at")
        batch.drop_column("previous_publishable_key")
    with op.batch_alter_table("templates") as batch:
        batch.drop_column("draft_base")
        batch.drop_column("draft")
