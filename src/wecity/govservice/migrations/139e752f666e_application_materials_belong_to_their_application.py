"""application materials belong to their application

Revision ID: 139e752f666e
Revises: 8c67b749cd37
Create Date: 2026-12-05 18:00:00.000000
"""
import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '139e752f666e'
down_revision: str | Sequence[str] | None = '8c67b749cd37'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = '1094ce5d01a5'  # media: the media table and its ref

_CLAIM = sa.text("UPDATE media SET ref = :ref WHERE ref IS NULL AND id IN :ids").bindparams(
    sa.bindparam("ids", expanding=True))


def upgrade() -> None:
    # Files uploaded as materials before they were marked as their application's (media.ref), so that
    # /media/{id} serves them only to whom may see the application: each is claimed by the first
    # application that lists it.
    conn = op.get_bind()
    for app_id, materials in conn.execute(sa.text("SELECT id, materials FROM applications ORDER BY id")).all():
        stated = json.loads(materials) if isinstance(materials, str) else (materials or {})
        ids = sorted({str(m) for state in stated.values() for m in (state.get("media") or [])})
        if ids:
            conn.execute(_CLAIM, {"ref": f"application:{app_id}", "ids": ids})


def downgrade() -> None:
    op.execute("UPDATE media SET ref = NULL WHERE ref LIKE 'application:%'")
