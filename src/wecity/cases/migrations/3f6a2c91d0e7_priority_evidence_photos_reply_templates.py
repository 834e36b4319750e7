"""case priority, several evidence photos, reply templates

Revision ID: 3f6a2c91d0e7
Revises: 54b4fd890194
Create Date: 2026-12-04 23:20:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import wecity.core.types

revision: str = '3f6a2c91d0e7'
down_revision: str | Sequence[str] | None = '54b4fd890194'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('evidence_media_ids', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('priority', sa.String(length=10), nullable=False, server_default='normal'))
    op.create_table(
        'reply_templates',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('locale', sa.String(length=10), nullable=False),
        sa.Column('use', sa.String(length=12), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=True),
        sa.Column('category_code', sa.String(length=64), nullable=True),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('updated_at', wecity.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column('updated_by', sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(['category_code'], ['categories.code'], ),
        sa.PrimaryKeyConstraint('id'),
    )


def downgrade() -> None:
    op.drop_table('reply_templates')
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_column('priority')
        batch_op.drop_column('evidence_media_ids')
