"""rejected MQTT messages

Revision ID: 7a3e51c0d2f8
Revises: dadcc8666c7e
Create Date: 2026-12-04 10:10:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import wecity.core.types

revision: str = '7a3e51c0d2f8'
down_revision: str | Sequence[str] | None = 'dadcc8666c7e'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('iot_rejected_messages',
    sa.Column('pk', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('topic', sa.String(length=512), nullable=False),
    sa.Column('payload', sa.LargeBinary(), nullable=False),
    sa.Column('error', sa.String(length=2000), nullable=False),
    sa.Column('received_at', wecity.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('pk', name=op.f('pk_iot_rejected_messages'))
    )


def downgrade() -> None:
    op.drop_table('iot_rejected_messages')
