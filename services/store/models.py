"""Table of the dossier store (exactly the contract's fields, the latest status only) and
the one list of a status's fields."""

from __future__ import annotations

import operator
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from services.store.engine import UtcDateTime


class Dossier(SQLModel, table=True):
    __tablename__ = "dossiers"
    __table_args__ = (
        # The dossier's identity: the write path looks it up by this first.
        sa.UniqueConstraint("supplier_id", "product_id", "dossier_id", name="uq_dossiers_identity"),
        # Read path: every query is scoped to one enterprise, newest status_time first
        # (keyset on status_time, id). Lead with the lookup column, later a blind index.
        sa.Index("ix_dossiers_enterprise_status_time", "enterprise_number", "status_time", "id"),
        sa.Index("ix_dossiers_enterprise_update_time", "enterprise_number", "update_time"),
    )

    id: int | None = Field(
        default=None, sa_column=sa.Column(sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True)
    )
    supplier_id: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    product_id: str = Field(sa_column=sa.Column(sa.String(128), nullable=False))
    dossier_id: str = Field(sa_column=sa.Column(sa.String(128), nullable=False))
    enterprise_number: str = Field(sa_column=sa.Column(sa.String(10), nullable=False))
    phase: int = Field(sa_column=sa.Column(sa.SmallInteger(), nullable=False))
    status: int = Field(sa_column=sa.Column(sa.SmallInteger(), nullable=False))
    detail_status: str = Field(default="", sa_column=sa.Column(sa.String(200), nullable=False))
    status_time: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))
    reference_url: str = Field(default="", sa_column=sa.Column(sa.String(2048), nullable=False))
    reference_email: str = Field(default="", sa_column=sa.Column(sa.String(254), nullable=False))
    reference_contact: str = Field(default="", sa_column=sa.Column(sa.String(500), nullable=False))
    required_roles: list[str] = Field(default_factory=list, sa_column=sa.Column(sa.JSON(), nullable=False))
    public: bool = Field(default=False, sa_column=sa.Column(sa.Boolean(), nullable=False))
    action_required: bool = Field(default=False, sa_column=sa.Column(sa.Boolean(), nullable=False))
    action: str = Field(default="", sa_column=sa.Column(sa.String(200), nullable=False))
    visible_until: datetime | None = Field(default=None, sa_column=sa.Column(UtcDateTime(), nullable=True))
    update_time: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))


# A status as the store takes it: these fields as plain values (validation builds them
# from a pushed DossierStatus or a CSV row), in the order of the contract's CSV columns.
# The one column list: CSV lists, staging tables and every write path use it.
FIELDS = (
    "enterprise_number",
    "product_id",
    "dossier_id",
    "phase",
    "status",
    "detail_status",
    "status_time",
    "reference_url",
    "reference_email",
    "reference_contact",
    "required_roles",
    "public",
    "action_required",
    "action",
    "visible_until",
)
# Fields a push supplies besides the identity; equal values in all of them make a push UNCHANGED.
CONTENT_FIELDS = tuple(name for name in FIELDS if name not in ("product_id", "dossier_id"))
# The one row mapping: a status's values as a tuple in FIELDS order (staging, bulk writes).
as_row = operator.itemgetter(*FIELDS)
