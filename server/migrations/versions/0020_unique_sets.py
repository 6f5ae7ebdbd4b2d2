"""unique sets: the keyed digests of a batch's unique values, one sorted array a batch
(they were one row a value in unique_values, which stays for imports begun before)

Revision ID: 0020
Revises: 0019
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"  # 0019 ("dash") on merge
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "unique_sets",
        sa.Column("import_id", sa.String(length=40), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("digests", sa.LargeBinary(), nullable=False),
        sa.Column("first_rows", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["import_id"], ["imports.id"]),
        sa.PrimaryKeyConstraint("import_id", "seq"),
    )


def downgrade() -> None:
    op.drop_table("unique_sets")
