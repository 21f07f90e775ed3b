"""products table

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
        "products",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("competent_authority", sa.String(500), nullable=False),
        sa.Column("supplier_ids", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("update_time", UtcDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("products")
