"""The dossier store as ingest and query use it: the one door to the dossiers table.

Blocking database work runs in worker threads (asyncio.to_thread), so the grpc.aio event
loop never waits on I/O. Pushes go through the group-commit writer; reads, deletes and CSV
lists through the repository and store.lists; the retention purge through store.purge.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

from opentelemetry import context, trace
from sqlalchemy.engine import Engine
from sqlmodel import Session

from services.store import purge, repository
from services.store.audit import AuditEntry, AuditStore, insert_events
from services.store.lists import ListLoad
from services.store.models import Dossier
from services.store.outcomes import Outcome
from services.store.repository import ListFilter, Position, Viewer
from services.store.writer import GroupWriter


class DossierStore:
    def __init__(self, engine: Engine, tracer: trace.Tracer | None = None, audit: AuditStore | None = None):
        self._engine = engine
        self._tracer = tracer or trace.NoOpTracer()
        self._writer = GroupWriter(engine, self._tracer)
        # The audit trail shares this database: a change's event is written in its own
        # transaction (store.audit: the outbox).
        self.writes_audit = audit is not None and audit.shares(engine)
        # ... and on PostgreSQL a read's event too: the read's transaction commits with its
        # event instead of rolling back, which costs less than a transaction of its own. Not
        # on SQLite, where every transaction holds the one write lock (BEGIN IMMEDIATE):
        # reads committing through a disk flush each would queue behind one another.
        self.reads_record_events = self.writes_audit and engine.dialect.name == "postgresql"

    async def submit(
        self, supplier_id: str, values: dict, event: AuditEntry | None = None
    ) -> asyncio.Future[Outcome]:
        """Queue one validated status (validation's column values) for the next group
        commit, with its call's audit event when writes_audit, waiting while the writer's
        bounded queue is full (backpressure); the future resolves to its outcome once it is
        durable. Statuses are stored in the order they were submitted."""
        return await self._writer.submit(supplier_id, values, event if self.writes_audit else None)

    async def delete(self, supplier_id: str, product_id: str, dossier_id: str, event: AuditEntry | None = None) -> bool:
        """Remove one dossier of this supplier (with its call's audit event when
        writes_audit); whether there was one."""
        events = [event] if event is not None and self.writes_audit else []

        def delete() -> bool:
            with Session(self._engine) as session:
                return repository.delete_dossier(session, supplier_id, product_id, dossier_id, events)

        return await asyncio.to_thread(delete)

    async def purge_expired(self, now: datetime) -> int:
        """Delete the dossiers whose visible_until is at or before `now` (store.purge: short
        transactions, each in a worker thread); how many. Cancelled, it stops after the
        transaction under way."""
        batches = purge.purge_batches(self._engine, now)
        purged = 0
        while (deleted := await asyncio.to_thread(next, batches, None)) is not None:
            purged += deleted
        return purged

    async def list_visible(
        self,
        enterprise_number: str,
        viewer: Viewer,
        filters: ListFilter,
        after: Position | None,
        limit: int,
        event: Callable[[list[Dossier]], AuditEntry | None] | None = None,
    ) -> list[Dossier]:
        """Up to `limit` dossiers of the enterprise the viewer may see, newest status_time
        first, after the position `after`; with `event` (when reads_record_events), the
        call's audit event for what was read is committed with the read."""
        return await asyncio.to_thread(
            self._read, event, repository.list_visible, enterprise_number, viewer, filters, after, limit
        )

    async def get_visible(
        self,
        enterprise_number: str,
        viewer: Viewer,
        product_id: str,
        dossier_id: str,
        supplier_id: str = "",
        event: Callable[[Dossier | None], AuditEntry | None] | None = None,
    ) -> Dossier | None:
        return await asyncio.to_thread(
            self._read, event, repository.get_visible, enterprise_number, viewer, product_id, dossier_id, supplier_id
        )

    def _read(self, event, read, *args):
        with Session(self._engine) as session:
            found = read(session, *args)
            if event is not None and self.reads_record_events and (entry := event(found)) is not None:
                insert_events(session.connection(), [entry])
                session.commit()
            return found

    def list_load(
        self,
        supplier_id: str,
        counts: dict[Outcome, int],
        parent: context.Context,
        replace_product: str = "",
    ) -> ListLoad:
        """The writes of one CSV list (see store.lists); called from the list's loader thread."""
        return ListLoad(self._engine, supplier_id, counts, self._tracer, parent, replace_product)

    async def close(self) -> None:
        await self._writer.close()
