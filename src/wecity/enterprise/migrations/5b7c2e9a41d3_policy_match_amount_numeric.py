"""policy match amount numeric

Revision ID: 5b7c2e9a41d3
Revises: 11f3ddfd3564
Create Date: 2026-12-05 19:30:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '5b7c2e9a41d3'
down_revision: str | Sequence[str] | None = '11f3ddfd3564'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A benefit's amount is money: kept to the fen exactly (NUMERIC), not as a binary float.
    with op.batch_alter_table('policy_matches', schema=None) as batch_op:
        batch_op.alter_column('amount', existing_type=sa.Float(), type_=sa.Numeric(precision=14, scale=2),
                              existing_nullable=True)


def downgrade() -> None:
    with op.batch_alter_table('policy_matches', schema=None) as batch_op:
        batch_op.alter_column('amount', existing_type=sa.Numeric(precision=14, scale=2), type_=sa.Float(),
                              existing_nullable=True)
