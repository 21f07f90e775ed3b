"""The catalog's own store: the IPDC products table, the functions that read and write it,
and CatalogStore, the one door the catalog service and its import use."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel

from services.store.audit import AuditEntry, AuditStore, insert_events
from services.store.engine import UtcDateTime


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


class CatalogStore:
    """Products for the catalog service (async: the work runs in worker threads) and for
    imports (sync). Rows come back detached with their values loaded."""

    def __init__(self, engine: Engine, audit: AuditStore | None = None):
        self._engine = engine
        # The audit trail shares this database: a change's event goes in its transaction.
        self.writes_audit = audit is not None and audit.shares(engine)

    def _session(self) -> Session:
        return Session(self._engine, expire_on_commit=False)

    def _read(self, fn, *args):
        def work():
            with self._session() as session:
                return fn(session, *args)

        return asyncio.to_thread(work)

    async def get(self, product_id: str) -> ProductRow | None:
        return await self._read(get_product, product_id)

    async def list(self, after_id: str | None, limit: int) -> list[ProductRow]:
        return await self._read(list_products, after_id, limit)

    async def upsert(self, data: ProductData, event: AuditEntry | None = None) -> ProductRow:
        """Create or replace a product, with its call's audit event when writes_audit."""
        events = [event] if event is not None and self.writes_audit else []
        return await asyncio.to_thread(self.upsert_all, [data], events)

    def upsert_all(self, products: Iterable[ProductData], events: list[AuditEntry] = ()) -> ProductRow | None:
        """Create or replace products in one transaction (with the audit events of the call
        that changes them); the last one's row."""
        row = None
        with self._session() as session, session.begin():
            for data in products:
                row = upsert_product(session, data)
            insert_events(session.connection(), list(events))
        return row

    def count(self) -> int:
        with self._session() as session:
            return count_products(session)
