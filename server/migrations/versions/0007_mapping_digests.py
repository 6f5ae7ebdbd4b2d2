"""mapping memory keeps keyed digests only, one row per confirming address

The old rows hold readable header labels (the keys of `mapping`) and unkeyed digests of
every header: for a file without a header row those are cell values. They are dropped,
not converted: converting them would mean keeping what should never have been kept, and
their counts were not per address. Memories are learnt again (three distinct addresses
each).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # Freed pages are zeroed, not left in the file's free list with the labels on them.
        op.execute("PRAGMA secure_delete = ON")
    op.execute("DELETE FROM mapping_memories")
    op.drop_table("mapping_memories")
    op.create_table(
        "mapping_memories",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("template_id", sa.String(length=40), nullable=False),
        sa.Column("signature", sa.String(length=64), nullable=False),
        sa.Column("variant", sa.String(length=64), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("header_digests", sa.JSON(), nullable=False),
        sa.Column("mapping", sa.JSON(), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["template_id"], ["templates.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "template_id", "signature", "variant", "address", name="uq_mapping_memories_vote"
        ),
    )
    op.create_index("ix_mapping_memories_confirmed_at", "mapping_memories", ["confirmed_at"])


def downgrade() -> None:
    # The digests cannot be turned back into labels: the old table comes back empty.
    op.drop_index("ix_mapping_memories_confirmed_at", table_name="mapping_memories")
    op.drop_table("mapping_memories")
    op.create_table(
        "mapping_memories",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("template_id", sa.String(length=40), nullable=False),
        sa.Column("signature", sa.String(length=64), nullable=False),
        sa.Column("header_digests", sa.JSON(), nullable=False),
        sa.Column("mapping", sa.JSON(), nullable=False),
        sa.Column("uses", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["template_id"], ["templates.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("template_id", "signature"),
    )
