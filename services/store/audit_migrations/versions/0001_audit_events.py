"""audit_events table, append-only

Revision ID: 0001
Revises:
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

from services.store.engine import UtcDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Below this age an event cannot be deleted, by any role (retention is months; this floor
# keeps a compromised service from erasing its recent tracks through retention).
MIN_AGE_DAYS = 30


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("time", UtcDateTime(), nullable=False),
        sa.Column("service", sa.String(32), nullable=False),
        sa.Column("rpc", sa.String(128), nullable=False),
        sa.Column("subject", sa.String(256), nullable=False),
        sa.Column("supplier_id", sa.String(64), nullable=False),
        sa.Column("enterprise_number", sa.String(10), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("result_count", sa.BigInteger(), nullable=False),
        sa.Column("trace_id", sa.String(32), nullable=False),
    )
    # Events arrive in time order: a BRIN index answers time ranges and costs an insert
    # next to nothing on PostgreSQL (SQLite ignores the option: a b-tree there).
    op.create_index("ix_audit_events_time", "audit_events", ["time"], postgresql_using="brin")
    op.create_index("ix_audit_events_enterprise", "audit_events", ["enterprise_number", "seq"])
    op.create_index("ix_audit_events_subject", "audit_events", ["subject", "seq"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"""
            CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              IF TG_OP = 'UPDATE' THEN
                RAISE EXCEPTION 'audit events are append-only';
              END IF;
              IF OLD.time > now() - interval '{MIN_AGE_DAYS} days' THEN
                RAISE EXCEPTION 'audit events younger than {MIN_AGE_DAYS} days are kept';
              END IF;
              RETURN OLD;
            END $$""")
        op.execute("""
            CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
            FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()""")
        # Retention for the services' role, which may not DELETE: runs as the owner.
        op.execute(f"""
            CREATE FUNCTION prune_audit_events(retention_days integer) RETURNS bigint
            LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
            DECLARE removed bigint;
            BEGIN
              IF retention_days < {MIN_AGE_DAYS} THEN
                RAISE EXCEPTION 'audit retention must be at least {MIN_AGE_DAYS} days';
              END IF;
              DELETE FROM public.audit_events WHERE time < now() - make_interval(days => retention_days);
              GET DIAGNOSTICS removed = ROW_COUNT;
              RETURN removed;
            END $$""")
        op.execute("REVOKE ALL ON FUNCTION prune_audit_events(integer) FROM PUBLIC")
    else:
        op.execute("""
            CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
            BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END""")
        op.execute(f"""
            CREATE TRIGGER audit_events_keep_recent BEFORE DELETE ON audit_events
            WHEN old.time > datetime('now', '-{MIN_AGE_DAYS} days')
            BEGIN SELECT RAISE(ABORT, 'audit events younger than {MIN_AGE_DAYS} days are kept'); END""")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS prune_audit_events(integer)")
        op.execute("DROP TRIGGER IF EXISTS audit_events_append_only ON audit_events")
        op.execute("DROP FUNCTION IF EXISTS audit_events_append_only()")
    op.drop_table("audit_events")
