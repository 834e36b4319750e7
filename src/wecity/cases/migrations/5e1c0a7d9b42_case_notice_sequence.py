"""case notice sequence

Revision ID: 5e1c0a7d9b42
Revises: 13659bc46794
Create Date: 2026-12-04 10:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '5e1c0a7d9b42'
down_revision: str | Sequence[str] | None = '13659bc46794'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The number of the last webhook notice sent about each case, so receivers can put them in order.
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('notice_seq', sa.Integer(), nullable=False, server_default='0'))


def downgrade() -> None:
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_column('notice_seq')
