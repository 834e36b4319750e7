"""audit log append-only and hash-chained

Revision ID: b3d1e07a5c42
Revises: 8a7489ae683a
Create Date: 2026-12-01 10:00:00.000000

Entries written before this revision are chained in id order, then triggers make the table refuse UPDATE
and DELETE (and TRUNCATE on PostgreSQL): from here on the platform can only append (wecity.identity.audit).
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import wecity.core.types
from wecity.identity.audit import chain_existing

revision: str = 'b3d1e07a5c42'
down_revision: str | Sequence[str] | None = '8a7489ae683a'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REFUSAL = "audit_log is append-only: its entries cannot be changed or removed"

# The table as this revision knows it, with the types that read its values back as record_audit wrote them.
_audit_log = sa.table(
    "audit_log",
    sa.column("id", sa.Integer), sa.column("at", wecity.core.types.UTCDateTime()),
    sa.column("actor", sa.String), sa.column("action", sa.String), sa.column("target", sa.String),
    sa.column("outcome", sa.String), sa.column("source_address", sa.String), sa.column("detail", sa.JSON),
    sa.column("entry_hash", sa.String),
)


def upgrade() -> None:
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.add_column(sa.Column('entry_hash', sa.String(length=64), nullable=True))
    chain_existing(op.get_bind(), _audit_log)
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.alter_column('entry_hash', existing_type=sa.String(length=64), nullable=False)

    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"""
            CREATE FUNCTION audit_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION '{REFUSAL} (% refused)', TG_OP;
            END $$""")
        op.execute("CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log "
                   "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change()")
    else:
        for event in ("UPDATE", "DELETE"):
            op.execute(f"CREATE TRIGGER audit_log_no_{event.lower()} BEFORE {event} ON audit_log "
                       f"BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_log_append_only ON audit_log")
        op.execute("DROP FUNCTION audit_log_refuse_change()")
    else:
        op.execute("DROP TRIGGER audit_log_no_update")
        op.execute("DROP TRIGGER audit_log_no_delete")
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_column('entry_hash')
