"""Cases placed from an address: the gazetteer's point for an address in words, never merged by place.

Revision ID: e10779a67401
Revises: 2e5dc38dacba
Create Date: 2026-12-05 08:36:17.259226
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'e10779a67401'
down_revision: str | Sequence[str] | None = '2e5dc38dacba'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('place_from_address', sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_column('place_from_address')

