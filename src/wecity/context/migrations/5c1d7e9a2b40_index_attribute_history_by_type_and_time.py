"""index attribute history by type and time

Revision ID: 5c1d7e9a2b40
Revises: 203e023db48a
Create Date: 2026-12-05 19:00:00.000000
"""
from collections.abc import Sequence

from alembic import op


revision: str = '5c1d7e9a2b40'
down_revision: str | Sequence[str] | None = '203e023db48a'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # An entity type's history, oldest first (the data platform's `<Type>/history` datasets, read by anyone
    # when open): without it every page sorted the type's whole history.
    with op.batch_alter_table('ngsild_attribute_history', schema=None) as batch_op:
        batch_op.create_index('ix_ngsild_attribute_history_type_ts', ['tenant', 'entity_type', 'ts', 'pk'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('ngsild_attribute_history', schema=None) as batch_op:
        batch_op.drop_index('ix_ngsild_attribute_history_type_ts')
