"""API key scopes and tenant

Revision ID: c7f3a9e1b2d4
Revises: b3d1e07a5c42
Create Date: 2026-12-04 10:20:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'c7f3a9e1b2d4'
down_revision: str | Sequence[str] | None = 'b3d1e07a5c42'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Keys made before scopes keep what they could do (file Open311 requests, read and write NGSI-LD in any
    # tenant), so an upgrade breaks no integration; `wecity apikey list` shows them, to be replaced by
    # narrower keys.
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('scopes', sa.String(length=500), nullable=False,
                                      server_default='open311:write ngsild:read ngsild:write'))
        batch_op.add_column(sa.Column('tenant', sa.String(length=64), nullable=False, server_default='*'))


def downgrade() -> None:
    # Before scopes every key could do everything, and an upgrade gives a key without them full access: a
    # key narrowed since (fewer scopes, one tenant) is revoked here rather than come back wider.
    from datetime import UTC, datetime

    from wecity.core.types import UTCDateTime

    keys = sa.table('api_keys', sa.column('revoked_at', UTCDateTime), sa.column('scopes', sa.String),
                    sa.column('tenant', sa.String))
    every = sa.or_(keys.c.scopes.contains('admin'), sa.and_(*(keys.c.scopes.contains(scope) for scope in (
        'open311:write', 'ngsild:read', 'ngsild:write'))))
    op.execute(keys.update().where(keys.c.revoked_at.is_(None), sa.not_(sa.and_(keys.c.tenant == '*', every)))
               .values(revoked_at=datetime.now(UTC)))
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.drop_column('tenant')
        batch_op.drop_column('scopes')
