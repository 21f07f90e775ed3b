"""Table of the catalog's own store: IPDC products."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from services.common.db import UtcDateTime


class ProductRow(SQLModel, table=True):
    __tablename__ = "products"

    id: str = Field(sa_column=sa.Column(sa.String(128), primary_key=True))
    name: str = Field(sa_column=sa.Column(sa.String(500), nullable=False))
    description: str = Field(default="", sa_column=sa.Column(sa.Text(), nullable=False))
    competent_authority: str = Field(default="", sa_column=sa.Column(sa.String(500), nullable=False))
    supplier_ids: list[str] = Field(default_factory=list, sa_column=sa.Column(sa.JSON(), nullable=False))
    active: bool = Field(default=True, sa_column=sa.Column(sa.Boolean(), nullable=False))
    url: str = Field(default="", sa_column=sa.Column(sa.String(2048), nullable=False))
    update_time: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))
