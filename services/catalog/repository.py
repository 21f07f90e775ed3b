"""Catalog store access: small functions taking a session."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import sqlalchemy as sa
from sqlmodel import Session

from services.catalog.models import ProductRow


@dataclass(frozen=True)
class ProductData:
    id: str
    name: str
    description: str = ""
    competent_authority: str = ""
    supplier_ids: tuple[str, ...] = ()
    active: bool = True
    url: str = ""


def get_product(session: Session, product_id: str) -> ProductRow | None:
    return session.get(ProductRow, product_id)


def list_products(session: Session, after_id: str | None, limit: int) -> list[ProductRow]:
    query = sa.select(ProductRow).order_by(ProductRow.id).limit(limit)
    if after_id is not None:
        query = query.where(ProductRow.id > after_id)
    return list(session.scalars(query))


def upsert_product(session: Session, data: ProductData, now: datetime | None = None) -> ProductRow:
    """Create or replace a product; update_time moves only when something changed."""
    now = now or datetime.now(timezone.utc)
    values = {
        "name": data.name,
        "description": data.description,
        "competent_authority": data.competent_authority,
        "supplier_ids": sorted(set(data.supplier_ids)),
        "active": data.active,
        "url": data.url,
    }
    row = session.get(ProductRow, data.id)
    if row is None:
        row = ProductRow(id=data.id, update_time=now, **values)
        session.add(row)
    elif any(getattr(row, k) != v for k, v in values.items()):
        for key, value in values.items():
            setattr(row, key, value)
        row.update_time = now
    session.flush()
    return row


def count_products(session: Session) -> int:
    return session.scalar(sa.select(sa.func.count()).select_from(ProductRow)) or 0
