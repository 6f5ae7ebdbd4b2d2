"""end-user identity: secret keys keep a sealed copy to verify signed identities; an import
records the identity it was made under

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("secret_keys") as batch:
        batch.add_column(sa.Column("sealed_secret", sa.LargeBinary(), nullable=True))
    with op.batch_alter_table("imports") as batch:
        batch.add_column(sa.Column("identity", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("imports") as batch:
        batch.drop_column("identity")
    with op.batch_alter_table("secret_keys") as batch:
        batch.drop_column("sealed_secret")
