"""The audit trail: its table, a batched writer, the read path and retention.

Append-only: nothing here updates an event, and only retention deletes (events older than
the configured retention). The database enforces it too (audit_migrations: triggers refuse
any UPDATE and any DELETE of an event younger than 30 days; on PostgreSQL the services' role
gets INSERT and SELECT only, see grant_service_role, and prunes through a SECURITY DEFINER
function).

A call that changes dossiers or products in one transaction (PushStatus, DeleteDossier,
UpsertProduct) has its event written in that same transaction when the audit trail shares
the store's database (a transactional outbox: insert_events, called by the store's write
paths), so the change and its event commit together or not at all. Every other event goes
through AuditStore.record: whatever events are waiting go in one transaction, and each
caller is answered once its event is committed, so an event costs a share of one commit,
not a commit of its own. A call is answered only after its event is durable
(services.common.calls).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Field, Session, SQLModel

from services.store.engine import UtcDateTime

UTC = timezone.utc
MAX_BATCH = 1024
MAX_WAITING = 10_000  # events queued for the writer before callers wait (bounded memory)


class AuditRow(SQLModel, table=True):
    __tablename__ = "audit_events"
    __table_args__ = (
        sa.Index("ix_audit_events_time", "time", postgresql_using="brin"),  # appended in time order: cheap to keep
        sa.Index("ix_audit_events_enterprise", "enterprise_number", "seq"),
        sa.Index("ix_audit_events_subject", "subject", "seq"),
    )

    seq: int | None = Field(
        default=None, sa_column=sa.Column(sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True)
    )
    event_id: str = Field(sa_column=sa.Column(sa.String(36), nullable=False))  # a uuid4: unique without an index
    time: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))
    service: str = Field(sa_column=sa.Column(sa.String(32), nullable=False))
    rpc: str = Field(sa_column=sa.Column(sa.String(128), nullable=False))
    subject: str = Field(sa_column=sa.Column(sa.String(256), nullable=False))
    supplier_id: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    enterprise_number: str = Field(sa_column=sa.Column(sa.String(10), nullable=False))
    outcome: str = Field(sa_column=sa.Column(sa.String(32), nullable=False))
    result_count: int = Field(sa_column=sa.Column(sa.BigInteger(), nullable=False))
    trace_id: str = Field(sa_column=sa.Column(sa.String(32), nullable=False))


@dataclass(frozen=True)
class AuditEntry:
    """One call as the interceptor saw it (the event id and time are added when recorded)."""

    service: str
    rpc: str
    subject: str
    supplier_id: str
    enterprise_number: str
    outcome: str
    result_count: int
    trace_id: str


@dataclass(frozen=True)
class AuditQuery:
    start_time: datetime | None = None
    end_time: datetime | None = None
    subject: str = ""
    enterprise_number: str = ""
    rpc: str = ""


_COLUMNS = ("event_id", "time", *AuditEntry.__dataclass_fields__)


def insert_events(connection: Connection, entries: list[AuditEntry]) -> None:
    """Append events inside the caller's transaction (the change they record, or a batch).

    Straight to the driver's executemany: an event is on the path of every call, and this
    costs about a third less than an ORM-level insert. The time goes in the form SQLAlchemy
    itself stores (the column type's bind processor), so both read alike."""
    if not entries:
        return
    dialect = connection.dialect
    time_type = AuditRow.__table__.c.time.type.dialect_impl(dialect)
    now = (time_type.bind_processor(dialect) or (lambda value: value))(datetime.now(UTC))
    marks = ", ".join(["?" if dialect.paramstyle == "qmark" else "%s"] * len(_COLUMNS))
    connection.exec_driver_sql(
        f"INSERT INTO audit_events ({', '.join(_COLUMNS)}) VALUES ({marks})",
        [(str(uuid.uuid4()), now, *entry.__dict__.values()) for entry in entries],
    )


class AuditStore:
    def __init__(self, engine: Engine):
        self.engine = engine
        self._queue: asyncio.Queue | None = None
        self._task: asyncio.Task | None = None
        # The writer's own thread and connection: a commit waiting for the disk holds none of
        # the shared worker threads the calls' reads run in, and a batch costs no pool
        # checkout (with its liveness ping) of its own.
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="audit-writer")
        self._connection: Connection | None = None
        self._closed = False

    def shares(self, engine: Engine) -> bool:
        """Whether the trail lives in this store's database: its write paths then add a
        change's event in the change's own transaction (the outbox)."""
        return engine is self.engine

    async def record(self, entry: AuditEntry) -> None:
        """Store one event; returns once it is committed (raises if it could not be)."""
        if self._task is None:
            self._queue = asyncio.Queue(MAX_WAITING)
            # A clean context: the writer must not inherit the first caller's trace.
            self._task = asyncio.get_running_loop().create_task(self._run(), context=contextvars.Context())
        future = asyncio.get_running_loop().create_future()
        await self._queue.put((entry, future))
        await future

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await asyncio.get_running_loop().run_in_executor(
                    self._thread, self._insert, [entry for entry, _ in batch]
                )
                error = None
            except Exception as exc:  # noqa: BLE001 - every waiting call fails with it
                error = exc
            for _, future in batch:
                if future.done():
                    continue
                if error is None:
                    future.set_result(None)
                else:
                    future.set_exception(error)

    def _insert(self, entries: list[AuditEntry]) -> None:
        """One batch in one transaction, on the writer's connection (opened again after any
        failure: the next batch must not meet a broken one)."""
        if self._connection is None:
            self._connection = self.engine.connect()
        try:
            with self._connection.begin():
                insert_events(self._connection, entries)
        except BaseException:
            self._connection.invalidate()
            self._connection.close()
            self._connection = None
            raise

    def _disconnect(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    async def close(self) -> None:
        """Stop the writer (events queued and not yet committed fail) and let its
        connection go; closing again does nothing."""
        if self._closed:
            return
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._thread.submit(self._disconnect)
        self._thread.shutdown(wait=True)

    async def list(self, query: AuditQuery, after_seq: int | None, limit: int) -> list[AuditRow]:
        """Up to `limit` events matching the query, oldest first, after the event `after_seq`."""
        return await asyncio.to_thread(self._list, query, after_seq, limit)

    def _list(self, query: AuditQuery, after_seq: int | None, limit: int) -> list[AuditRow]:
        select = sa.select(AuditRow).order_by(AuditRow.seq).limit(limit)
        if after_seq is not None:
            select = select.where(AuditRow.seq > after_seq)
        if query.start_time is not None:
            select = select.where(AuditRow.time >= query.start_time)
        if query.end_time is not None:
            select = select.where(AuditRow.time < query.end_time)
        for name in ("subject", "enterprise_number", "rpc"):
            if value := getattr(query, name):
                select = select.where(getattr(AuditRow, name) == value)
        with Session(self.engine) as session:
            return list(session.scalars(select))

    def prune(self, retention_days: int) -> int:
        """Retention: delete the events older than `retention_days`; how many."""
        with self.engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                return connection.execute(
                    sa.text("SELECT prune_audit_events(:days)"), {"days": retention_days}
                ).scalar_one()
            cutoff = datetime.now(UTC) - timedelta(days=retention_days)
            return connection.execute(sa.delete(AuditRow.__table__).where(AuditRow.time < cutoff)).rowcount


def grant_service_role(engine: Engine, role: str) -> None:
    """PostgreSQL: what the services' own database role may do — read and write dossiers and
    products, add and read audit events (never change or delete one), and prune through
    prune_audit_events. The owner role that runs `dosis migrate` grants it."""
    if engine.dialect.name != "postgresql":
        return
    quoted = engine.dialect.identifier_preparer.quote(role)
    with engine.begin() as connection:
        tables = set(sa.inspect(connection).get_table_names())
        for table in ("dossiers", "products"):
            if table in tables:
                connection.execute(sa.text(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {quoted}"))
        if "audit_events" in tables:
            connection.execute(sa.text(f"REVOKE ALL ON audit_events FROM {quoted}"))
            connection.execute(sa.text(f"GRANT SELECT, INSERT ON audit_events TO {quoted}"))
            connection.execute(sa.text(f"GRANT EXECUTE ON FUNCTION prune_audit_events(integer) TO {quoted}"))
        connection.execute(sa.text(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {quoted}"))
