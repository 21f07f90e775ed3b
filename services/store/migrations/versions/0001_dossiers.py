"""dossiers table

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

from services.store.engine import UtcDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dossiers",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("supplier_id", sa.String(64), nullable=False),
        sa.Column("product_id", sa.String(128), nullable=False),
        sa.Column("dossier_id", sa.String(128), nullable=False),
        sa.Column("enterprise_number", sa.String(10), nullable=False),
        sa.Column("phase", sa.SmallInteger(), nullable=False),
        sa.Column("status", sa.SmallInteger(), nullable=False),
        sa.Column("detail_status", sa.String(200), nullable=False),
        sa.Column("status_time", UtcDateTime(), nullable=False),
        sa.Column("reference_url", sa.String(2048), nullable=False),
        sa.Column("reference_email", sa.String(254), nullable=False),
        sa.Column("reference_contact", sa.String(500), nullable=False),
        sa.Column("required_roles", sa.JSON(), nullable=False),
        sa.Column("public", sa.Boolean(), nullable=False),
        sa.Column("action_required", sa.Boolean(), nullable=False),
        sa.Column("action", sa.String(200), nullable=False),
        sa.Column("visible_until", UtcDateTime(), nullable=True),
        sa.Column("update_time", UtcDateTime(), nullable=False),
        sa.UniqueConstraint("supplier_id", "product_id", "dossier_id", name="uq_dossiers_identity"),
    )
    op.create_index("ix_dossiers_enterprise_status_time", "dossiers", ["enterprise_number", "status_time", "id"])
    op.create_index("ix_dossiers_enterprise_update_time", "dossiers", ["enterprise_number", "update_time"])


def downgrade() -> None:
    op.drop_table("dossiers")
