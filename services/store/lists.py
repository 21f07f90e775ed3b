"""Storing a CSV list of one supplier (UploadBatch): chunks, the ids a complete list names,
and REPLACE_PRODUCT's delete step. The ingest CSV module parses and reports; this module
writes.

A chunk is staged in the reading thread (the part with Python work per row, store.bulk),
then written by a thread of its own in which only the database works (outside the GIL:
SQLite's C code, PostgreSQL's own process). Two connections take turns, each with its own
staging table, so that a chunk is staged while the one before it is written. One chunk is
written at a time, in file order, each in one transaction; memory stays flat, and a
failure stops the reading at the next chunk.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import sqlalchemy as sa
from opentelemetry import context, trace
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session

from services.store import bulk
from services.store.models import Dossier
from services.store.outcomes import Outcome
from services.store.retry import retrying

SEEN_FLUSH = 10_000  # named ids held in memory before they go to the scratch file
DELETE_BATCH = 1000  # stored ids read (and compared) at a time by the delete step


class ListLoad:
    """One list's writes: `submit` chunks of row tuples (models.as_row, each identity once
    per chunk) in file order, `wait` for the last, then for a complete list of a product
    `delete_absent`; `close` always. Outcomes are added to `counts` as chunks commit."""

    def __init__(
        self,
        engine: Engine,
        supplier_id: str,
        counts: dict[Outcome, int],
        tracer: trace.Tracer,
        parent: context.Context,
        replace_product: str = "",
    ):
        self._engine = engine
        self._supplier = supplier_id
        self._counts = counts
        self._tracer = tracer
        self._parent = parent  # the UploadBatch span: parent of the "store rows" spans
        self._product = replace_product
        self._seen = _SeenIds() if replace_product else None  # REPLACE_PRODUCT: the ids the list names
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="upload-store")
        self._in_flight: Future | None = None
        self._writing: Connection | None = None  # the connection of the chunk in flight
        self._spare: Connection | None = None  # the other one

    def name(self, dossier_id: str) -> None:
        """REPLACE_PRODUCT: the list names this dossier of the product (it stays)."""
        self._seen.add(dossier_id)

    def submit(self, rows: list[tuple]) -> None:
        connection = self._spare = self._spare or self._engine.connect()  # not the one writing now
        bulk.stage(connection, rows)
        self.wait()
        self._spare, self._writing = self._writing, connection
        self._in_flight = self._pool.submit(self._store, connection, len(rows))

    def wait(self) -> None:
        """Until the chunk in flight is stored; its error, if any, is raised here."""
        in_flight, self._in_flight = self._in_flight, None
        if in_flight is not None:
            in_flight.result()

    def close(self) -> None:
        """A chunk in flight finishes (it commits whole or not at all); then the
        connections go back to the pool and the scratch file goes."""
        self._pool.shutdown(wait=True)
        for connection in (self._writing, self._spare):
            if connection is not None:
                connection.close()
        if self._seen is not None:
            self._seen.close()

    def _store(self, connection: Connection, rows: int) -> None:
        with self._tracer.start_as_current_span("store rows", context=self._parent) as span:
            now = datetime.now(timezone.utc)

            def transaction() -> dict[Outcome, int]:
                with connection.begin():
                    return bulk.store(connection, self._supplier, now)

            counts = retrying(transaction)  # another writer created one of these dossiers: judge again
            for outcome, count in counts.items():
                self._counts[outcome] += count
            if span.is_recording():
                span.set_attribute("dosis.batch.rows", rows)
                for outcome, count in counts.items():
                    span.set_attribute(f"dosis.outcomes.{outcome.name.lower()}", count)

    def delete_absent(self) -> int:
        """REPLACE_PRODUCT: remove the supplier's dossiers of the product that the list did
        not name, in one transaction; how many. The stored ids are read in batches along
        the identity index."""
        self._seen.flush()
        table = Dossier.__table__
        scope = sa.and_(table.c.supplier_id == self._supplier, table.c.product_id == self._product)
        deleted, after = 0, ""
        with Session(self._engine) as session, session.begin():
            while True:
                names = session.scalars(
                    sa.select(table.c.dossier_id).where(scope, table.c.dossier_id > after)
                    .order_by(table.c.dossier_id).limit(DELETE_BATCH)
                ).all()
                if not names:
                    break
                after = names[-1]
                absent = self._seen.absent(names)
                if absent:
                    session.execute(sa.delete(table).where(scope, table.c.dossier_id.in_(absent)))
                    deleted += len(absent)
        return deleted


class _SeenIds:
    """REPLACE_PRODUCT: the dossier ids a list names, kept in a scratch SQLite file of its
    own (whatever the store), so that memory stays flat however long the list; a set held
    about 70 bytes an id. The file goes when the upload ends."""

    def __init__(self):
        handle, self._path = tempfile.mkstemp(prefix="dosis-upload-", suffix=".db")
        os.close(handle)
        self._db = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=OFF")  # scratch: no crash safety needed
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute("CREATE TABLE seen (dossier_id TEXT PRIMARY KEY) WITHOUT ROWID")
        self._pending: list[tuple[str]] = []

    def add(self, dossier_id: str) -> None:
        self._pending.append((dossier_id,))
        if len(self._pending) >= SEEN_FLUSH:
            self.flush()

    def flush(self) -> None:
        self._db.execute("BEGIN")
        self._db.executemany("INSERT OR IGNORE INTO seen VALUES (?)", self._pending)
        self._db.execute("COMMIT")
        self._pending = []

    def absent(self, dossier_ids: list[str]) -> list[str]:
        marks = ", ".join("?" * len(dossier_ids))
        found = self._db.execute(f"SELECT dossier_id FROM seen WHERE dossier_id IN ({marks})", dossier_ids)
        present = {dossier_id for (dossier_id,) in found}
        return [d for d in dossier_ids if d not in present]

    def close(self) -> None:
        self._db.close()
        Path(self._path).unlink(missing_ok=True)
