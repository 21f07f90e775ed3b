"""Group commit: concurrent pushes are stored together, one transaction per batch.

A commit costs a disk flush; one per push caps a store at a few hundred pushes a second
(SQLite: a few dozen on slow disks). The writer task takes whatever pushes are waiting,
stores them in one transaction through the repository's locked upsert, and answers each
caller only after the commit: an acknowledged push is durable.

The batch is stored set-based (repository.upsert_many: one locked read, one INSERT, one
UPDATE). A batch that fails is retried (store.retry: a concurrent writer may have created
the same dossier); one that keeps failing is split into single-item transactions so one bad item
never takes others down with it.

The queue in front of the writer is bounded (MAX_QUEUED): when the database is slow and the
queue is full, submit() waits for room, so callers slow down (backpressure) instead of
growing memory; a stream then stops reading its items and gRPC flow control slows its sender.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from dataclasses import dataclass
from datetime import datetime, timezone

from opentelemetry import trace
from sqlalchemy.engine import Engine
from sqlmodel import Session

from services.store import bulk, repository
from services.store.audit import AuditEntry, insert_events
from services.store.models import as_row
from services.store.outcomes import Outcome
from services.store.retry import retrying

log = logging.getLogger(__name__)

# As many as one stream's window (ingest.servicer.STREAM_WINDOW): a stream's items share a
# commit (an fsync) instead of waiting for one each.
MAX_BATCH = 1024
# Statuses waiting for the writer, at most: four full batches (a few MB). Past it, submit()
# waits for the writer to take a batch.
MAX_QUEUED = 4 * MAX_BATCH
LINGER = 0.005  # seconds a loaded writer waits for more statuses before a batch
# Statuses of one supplier in a batch from which store.bulk costs less CPU than upsert_many
# (measured: on SQLite at any size; on PostgreSQL from about 16, though each batch then
# waits a round trip more).
SET_BASED_FROM = {"sqlite": 8, "postgresql": 16}


def _one_supplier_distinct(batch: list[_Pending], dialect: str) -> bool:
    """Whether store.bulk can take the batch: one supplier, each dossier once, and enough."""
    if len(batch) < SET_BASED_FROM.get(dialect, 64) or any(p.supplier_id != batch[0].supplier_id for p in batch):
        return False
    return len({(p.values["product_id"], p.values["dossier_id"]) for p in batch}) == len(batch)


@dataclass
class _Pending:
    supplier_id: str
    values: dict
    span: trace.Span  # the caller's (its server span): the batch's parent or a link
    future: asyncio.Future
    event: AuditEntry | None = None  # the call's audit event, committed with its status


# The SDK's default span limit (OTEL_SPAN_LINK_COUNT_LIMIT): it would drop links past it.
MAX_LINKS = 128


def _links(batch: list[_Pending], first: _Pending) -> list[trace.Link]:
    """One link per other sampled call in the batch: a stream's statuses share its span
    (1,024 links to one span would say no more than one does), and an unsampled call's
    span is recorded nowhere, so a link to it would lead nowhere."""
    seen = {first.span.get_span_context().span_id}
    links = []
    for pending in batch:
        context = pending.span.get_span_context()
        if context.trace_flags.sampled and context.span_id not in seen:
            seen.add(context.span_id)
            links.append(trace.Link(context))
            if len(links) == MAX_LINKS:
                break
    return links


class GroupWriter:
    def __init__(
        self, engine: Engine, tracer: trace.Tracer, max_batch: int = MAX_BATCH, max_queued: int = MAX_QUEUED
    ):
        self._engine = engine
        self._tracer = tracer
        self._max_batch = max_batch
        self.max_queued = max_queued
        self._queue: asyncio.Queue[_Pending] | None = None
        self._task: asyncio.Task | None = None

    @property
    def queued(self) -> int:
        """Statuses waiting for the writer now (never more than max_queued)."""
        return 0 if self._queue is None else self._queue.qsize()

    async def submit(self, supplier_id: str, values: dict, event: AuditEntry | None = None) -> asyncio.Future:
        """Queue one validated status (and its call's audit event, written in the same
        transaction), waiting while the queue is full; the future resolves once it is
        committed. Statuses are stored in the order they were submitted."""
        if self._task is None:
            self._queue = asyncio.Queue(maxsize=self.max_queued)
            # A clean context: the writer must not inherit the first caller's trace.
            self._task = asyncio.get_running_loop().create_task(self._run(), context=contextvars.Context())
        future = asyncio.get_running_loop().create_future()
        await self._queue.put(_Pending(supplier_id, values, trace.get_current_span(), future, event))
        return future

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        loaded = False  # statuses were waiting when the last batch was done
        while True:
            batch = [await self._queue.get()]
            if loaded:
                # Under load (a stream, many callers) a moment's wait fills the batch: one
                # commit then serves many statuses. An idle writer stores a lone push at once.
                await asyncio.sleep(LINGER)
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            batch = [p for p in batch if not p.future.cancelled()]
            if not batch:
                continue
            try:
                results = await asyncio.to_thread(self._store, batch)
                loaded = not self._queue.empty()
            except Exception as exc:  # noqa: BLE001 - answer every waiting caller
                results = [exc] * len(batch)
            for pending, result in zip(batch, results):
                if pending.future.done():
                    continue
                if isinstance(result, Exception):
                    pending.future.set_exception(result)
                else:
                    pending.future.set_result(result)

    def _store(self, batch: list[_Pending]) -> list[Outcome | Exception]:
        # One span per batch: a child of the first sampled push it carries (so a lone push
        # is one trace down to its statements, and so is every sampled push of a batch,
        # whichever came first) and linked to the other sampled ones. A batch of unsampled
        # pushes is not recorded.
        first = next((p for p in batch if p.span.is_recording()), None)
        if first is None:
            with self._tracer.start_as_current_span("store batch", context=trace.set_span_in_context(batch[0].span)):
                return self._store_batch(batch)
        links = _links(batch, first)
        parent = trace.set_span_in_context(first.span)
        with self._tracer.start_as_current_span("store batch", context=parent, links=links) as span:
            span.set_attribute("dosis.batch.size", len(batch))
            return self._store_batch(batch)

    def _store_batch(self, batch: list[_Pending]) -> list[Outcome | Exception]:
        now = datetime.now(timezone.utc)
        items = [(p.supplier_id, p.values) for p in batch]
        events = [p.event for p in batch if p.event is not None]
        set_based = _one_supplier_distinct(batch, self._engine.dialect.name)

        def transaction() -> list[Outcome]:
            if set_based:
                return self._store_set_based(batch[0].supplier_id, [as_row(p.values) for p in batch], now, events)
            with Session(self._engine) as session, session.begin():
                outcomes = repository.upsert_many(session, items, now)
                insert_events(session.connection(), events)
                return outcomes

        try:
            return retrying(transaction)
        except Exception:  # noqa: BLE001 - races lost every time, or an item at fault: find it below
            return [self._store_one(p, now) for p in batch]

    def _store_set_based(
        self, supplier_id: str, rows: list[tuple], now: datetime, events: list[AuditEntry]
    ) -> list[Outcome]:
        """A large batch of one supplier (a stream, mostly) the way CSV lists are stored:
        staged, then judged and written by the database in a few statements."""
        with self._engine.connect() as connection:
            bulk.stage(connection, rows)
            with connection.begin():
                outcomes = bulk.store_each(connection, supplier_id, now)
                insert_events(connection, events)
                return outcomes

    def _store_one(self, pending: _Pending, now: datetime) -> Outcome | Exception:
        try:
            with Session(self._engine) as session:
                return repository.upsert_status(
                    session, pending.supplier_id, pending.values, now, [pending.event] if pending.event else []
                )
        except Exception as exc:  # noqa: BLE001 - this caller gets the error, the others their outcome
            return exc
