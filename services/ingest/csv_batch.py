"""CSV lists (UploadBatch): parse a streamed file row by row, validate, store in chunks.

The file arrives as byte chunks; a bounded queue hands them to a loader thread that
decodes (UTF-8, BOM or not), parses (`,` or `;`, from the header) and validates each row
with the same rules as PushStatus, and stores good rows in transactions of CHUNK_ROWS:
memory stays flat whatever the file size, and a broken connection leaves every row either
fully stored or not at all. Re-sending a file is safe: rows already stored are UNCHANGED.
"""

from __future__ import annotations

import codecs
import csv
import logging
import operator
import os
import queue
import sqlite3
import tempfile
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import sqlalchemy as sa
from opentelemetry import context, trace
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session

from dosis.v1 import ingest_pb2
from services.common import errors, labels
from services.common.errors import Violation
from services.common.rules import csv_delimiter
from services.ingest.validation import Fault, check_values
from services.store import bulk
from services.store.models import Dossier
from services.store.repository import Outcome

log = logging.getLogger(__name__)

# Rows per transaction: each commit costs an fsync (about 25 ms here), so not too few;
# memory holds two chunks (one read, one stored), so not too many.
CHUNK_ROWS = 10_000
MAX_REPORTED = 1000
END = object()  # the client finished sending
ABORT = object()  # the client went away: store nothing more

COLUMNS = (
    "enterprise_number", "product_id", "dossier_id", "phase", "status", "detail_status", "status_time",
    "reference_url", "reference_email", "reference_contact", "required_roles", "public",
    "action_required", "action", "visible_until",
)
REQUIRED_COLUMNS = ("enterprise_number", "product_id", "dossier_id", "phase", "status", "status_time")
_TRUE = {"true", "1", "yes", "ja", "waar", "y", "j"}
_FALSE = {"false", "0", "no", "nee", "onwaar", "n", ""}
# Validation field paths (see validation.validate_status) → CSV column.
_FIELD_COLUMN = {
    "reference.url": "reference_url",
    "reference.email": "reference_email",
    "reference.contact": "reference_contact",
    "reference": "reference_url",
}


class RowError(ValueError):
    """A row's faults, each (column, reason)."""

    def __init__(self, faults: list[tuple[str, str]]):
        super().__init__("; ".join(f"{c}: {r}" for c, r in faults))
        self.faults = faults


@dataclass
class Report:
    rows_read: int = 0
    counts: dict = field(default_factory=lambda: {o: 0 for o in Outcome})
    rejected: int = 0
    deleted: int = 0
    rejected_rows: list = field(default_factory=list)

    def reject(self, line: int, faults: list[tuple[str, str]]) -> None:
        """One rejected row; each of its faults (column, reason) is listed."""
        self.rejected += 1
        for column, reason in faults:
            if len(self.rejected_rows) < MAX_REPORTED:
                self.rejected_rows.append(ingest_pb2.RejectedRow(line=line, column=column, reason=reason))

    def message(self) -> ingest_pb2.BatchReport:
        return ingest_pb2.BatchReport(
            rows_read=self.rows_read,
            created=self.counts[Outcome.CREATED],
            updated=self.counts[Outcome.UPDATED],
            unchanged=self.counts[Outcome.UNCHANGED],
            stale=self.counts[Outcome.STALE],
            rejected=self.rejected,
            deleted=self.deleted,
            rejected_rows=self.rejected_rows,
        )


def chunks_from(source: queue.Queue) -> Iterator[bytes]:
    while True:
        item = source.get()
        if item is END:
            return
        if item is ABORT:
            raise ConnectionAbortedError("the upload was cut off")
        yield item


def text_lines(chunks: Iterator[bytes]) -> Iterator[str]:
    """Decoded lines (with their line ends) from byte chunks cut anywhere."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    pending = ""
    offset = 0
    for chunk in chunks:
        try:
            pending += decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            raise errors.invalid_argument(
                [Violation("chunk", "INVALID_ENCODING", f"the file is not UTF-8 (byte {offset + exc.start})")]
            ) from None
        offset += len(chunk)
        *lines, pending = pending.split("\n")
        for line in lines:
            yield line + "\n"
    pending += decoder.decode(b"", final=True)
    if pending:
        yield pending


def _time(value: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("must be an ISO 8601 date and time, e.g. 2026-03-01T10:00:00+01:00") from None
    if parsed.tzinfo is None:
        raise ValueError("needs a time zone (Z or an offset such as +01:00)")
    try:
        return parsed.astimezone(timezone.utc)
    except OverflowError:  # e.g. 9999-12-31T23:00-05:00 is in the year 10000 in UTC
        raise ValueError("is out of range (years 1-9999 in UTC)") from None


class RowReader:
    """Reads the rows of one file (its header decides where each column is) into column
    values, judged by the rules of every push (validation.check_values)."""

    def __init__(self, header: list[str]):
        self.width = len(header)
        positions = {name: i for i, name in enumerate(header)}
        # An absent optional column reads the "" appended to every row.
        self._pick = operator.itemgetter(*(positions.get(name, self.width) for name in COLUMNS))

    def values(self, record: list[str], now: datetime) -> dict:
        """A row's column values, or RowError with every fault of the row: those of reading
        its text (enum labels, times, booleans) and those the push rules find."""
        cells = [cell.strip() for cell in record]
        cells.append("")
        (enterprise, product, dossier, phase, status, detail, status_time, url, email, contact,
         roles, public, action_required, action, visible_until) = self._pick(cells)
        faults: list[Fault] = []
        values = {
            "enterprise_number": enterprise,
            "product_id": product,
            "dossier_id": dossier,
            "phase": _enum(labels.parse_phase(phase), "phase", "a phase", faults),
            "status": _enum(labels.parse_status(status), "status", "a status code", faults),
            "detail_status": detail,
            "status_time": _read(_time, status_time, "status_time", faults),
            "reference_url": url,
            "reference_email": email,
            "reference_contact": contact,
            "required_roles": [role.strip() for role in roles.split("|") if role.strip()] if roles else [],
            # Unreadable flags fall back to what raises no second fault elsewhere.
            "public": _read(_bool, public, "public", faults, fallback=True),
            "action_required": _read(_bool, action_required, "action_required", faults, fallback=False),
            "action": action,
            "visible_until": _read(_time, visible_until, "visible_until", faults),
        }
        unreadable = len(faults)
        check_values(values, faults, now)
        if faults:
            # A column that could not be read is reported once, for that reason.
            read_faults = {_column_of(field) for field, _, _ in faults[:unreadable]}
            raise RowError([
                (_column_of(field), text)
                for i, (field, _, text) in enumerate(faults)
                if i < unreadable or _column_of(field) not in read_faults
            ])
        return values


def _enum(number: int | None, field: str, what: str, faults: list[Fault]) -> int:
    if number is None:
        faults.append((field, "UNKNOWN_VALUE", f"is not {what} (enum name or Dutch label)"))
        return 0
    return number


def _read(parse, text: str, field: str, faults: list[Fault], fallback=None):
    try:
        return parse(text)
    except ValueError as exc:
        faults.append((field, "UNREADABLE", str(exc)))
        return fallback


_BOOLEANS = {**dict.fromkeys(_TRUE, True), **dict.fromkeys(_FALSE, False)}


def _bool(value: str) -> bool:
    try:
        return _BOOLEANS[value.lower()]
    except KeyError:
        raise ValueError("must be true or false (ja/nee)") from None


def _column_of(field_path: str) -> str:
    base = field_path.split("[", 1)[0]
    return _FIELD_COLUMN.get(base, base)


class BatchLoader:
    """Everything UploadBatch does with the rows; runs in a worker thread."""

    def __init__(
        self,
        engine: Engine,
        supplier_id: str,
        header: ingest_pb2.BatchHeader,
        check_product: Callable[[str], errors.DosisError | None],
        tracer: trace.Tracer | None = None,
    ):
        self._engine = engine
        self._supplier = supplier_id
        self._replace = header.mode == ingest_pb2.BATCH_MODE_REPLACE_PRODUCT
        self._product = header.product_id
        self._check_product = check_product
        self._tracer = tracer or trace.NoOpTracer()
        self._product_errors: dict[str, errors.DosisError | None] = {}
        self._seen = _SeenIds() if self._replace else None  # REPLACE_PRODUCT: the ids the file names
        self.report = Report()
        self.complete = threading.Event()  # set by the caller once the stream has ended
        self.whole_file = False  # ... and whether it brought the whole file

    def run(self, lines: Iterator[str]) -> Report:
        try:
            return self._run(lines)
        finally:
            if self._seen is not None:
                self._seen.close()

    def _run(self, lines: Iterator[str]) -> Report:
        first = next(lines, "")
        delimiter = csv_delimiter(first)
        rows = RowReader(self._header(first, delimiter))
        reader = csv.reader(lines, delimiter=delimiter)
        parent = context.get_current()  # the UploadBatch span: parent of the chunk spans
        writer = _ChunkWriter(self._engine, self._supplier, self.report, self._tracer, parent)
        chunk = _Chunk(self._tracer, parent, self.report)
        next_start = 2  # the file line where the next record starts (the header is line 1)
        records = iter(reader)
        try:
            while True:
                line = next_start
                try:
                    record = next(records)
                except StopIteration:
                    break
                except csv.Error as exc:
                    # A stray quote swallows the rest of the file: say where, keep what was read.
                    self.report.reject(line, [("", f"the CSV cannot be read from here on ({exc}); a stray quote?")])
                    for _ in lines:  # drain the stream so the sender is not left waiting
                        pass
                    break
                next_start = reader.line_num + 2
                if not record or not "".join(record).strip():
                    continue  # a blank line
                self.report.rows_read += 1
                values = self._row(line, rows, record, chunk.now)
                if values is None:
                    continue
                if not chunk.add(values):
                    # The same dossier twice: its second status goes into the next chunk, so
                    # that it is judged against the first, as successive pushes would be.
                    writer.submit(chunk.close())
                    chunk = _Chunk(self._tracer, parent, self.report)
                    chunk.add(values)
                if len(chunk.rows) >= CHUNK_ROWS:
                    writer.submit(chunk.close())
                    chunk = _Chunk(self._tracer, parent, self.report)
            # The last rows and the delete step wait for the caller's word that the whole file
            # arrived: a stream that ended early must not complete a list.
            if not self.complete.wait() or not self.whole_file:
                raise ConnectionAbortedError("the upload did not arrive whole")
            if chunk.rows:
                writer.submit(chunk.close())
            writer.wait()
        finally:
            chunk.close()
            writer.close()
        if self._replace:
            self._delete_absent()
        return self.report

    def _header(self, first_line: str, delimiter: str) -> list[str]:
        names = [n.strip().lower() for n in next(csv.reader([first_line], delimiter=delimiter), [])]
        unknown = [n for n in names if n not in COLUMNS]
        missing = [n for n in REQUIRED_COLUMNS if n not in names]
        bad = [Violation(f"header.{n}", "UNKNOWN_COLUMN", "is not a column of the DOSIS CSV format") for n in unknown]
        bad += [Violation(f"header.{n}", "MISSING_COLUMN", "is a required column") for n in missing]
        if bad:
            raise errors.invalid_argument(bad)
        return names

    def _row(self, line: int, rows: RowReader, record: list[str], now: datetime) -> dict | None:
        if len(record) != rows.width:
            self.report.reject(line, [("", f"has {len(record)} fields, the header {rows.width}")])
            return None
        try:
            values = rows.values(record, now)
        except RowError as exc:
            self.report.reject(line, exc.faults)
            return None
        if self._replace and values["product_id"] != self._product:
            self.report.reject(line, [("product_id", f"must be {self._product}, the product being replaced")])
            return None
        product_error = self._product_error(values["product_id"])
        if product_error is not None:
            self.report.reject(line, [("product_id", product_error.message)])
            return None
        if self._replace:
            self._seen.add(values["dossier_id"])
        return values

    def _product_error(self, product_id: str) -> errors.DosisError | None:
        if product_id not in self._product_errors:
            self._product_errors[product_id] = self._check_product(product_id)
        return self._product_errors[product_id]

    def _delete_absent(self) -> None:
        """REPLACE_PRODUCT: remove the supplier's dossiers of the product that the file
        did not name, in one transaction; nothing at all when a row was rejected (the file
        is then not complete). The stored ids are read in batches along the identity index."""
        if self.report.rejected:
            return
        self._seen.flush()
        table = Dossier.__table__
        scope = sa.and_(table.c.supplier_id == self._supplier, table.c.product_id == self._product)
        deleted, after = 0, ""
        with Session(self._engine) as session, session.begin():
            while True:
                names = session.scalars(
                    sa.select(table.c.dossier_id).where(scope, table.c.dossier_id > after)
                    .order_by(table.c.dossier_id).limit(_DELETE_BATCH)
                ).all()
                if not names:
                    break
                after = names[-1]
                absent = self._seen.absent(names)
                if absent:
                    session.execute(sa.delete(table).where(scope, table.c.dossier_id.in_(absent)))
                    deleted += len(absent)
        self.report.deleted = deleted


_DELETE_BATCH = 1000


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
        if len(self._pending) >= CHUNK_ROWS:
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


_AS_ROW = operator.itemgetter(*bulk.COLUMNS)


class _Chunk:
    """The good rows of one chunk being read (each identity once), and its span."""

    def __init__(self, tracer: trace.Tracer, parent: context.Context, report: Report):
        self.rows: list[tuple] = []
        self._keys: set[tuple[str, str]] = set()
        self._report = report
        self._rejected_before = report.rejected
        self._span = tracer.start_span("read rows", context=parent)
        self._open = True
        self.now = datetime.now(timezone.utc)  # "not in the future" is judged against this

    def add(self, values: dict) -> bool:
        """False when the chunk already holds this dossier."""
        key = (values["product_id"], values["dossier_id"])
        if key in self._keys:
            return False
        self._keys.add(key)
        self.rows.append(_AS_ROW(values))
        return True

    def close(self) -> list[tuple]:
        """The rows; ends the span (once)."""
        if self._open:
            self._open = False
            if self._span.is_recording():
                self._span.set_attribute("dosis.batch.rows", len(self.rows))
                self._span.set_attribute("dosis.batch.rejected", self._report.rejected - self._rejected_before)
            self._span.end()
        return self.rows


class _ChunkWriter:
    """Stores chunks while the next one is read.

    A chunk is staged in the reading thread (the part with Python work per row), then
    written by a thread of its own in which only the database works (outside the GIL:
    SQLite's C code, PostgreSQL's own process). Two connections take turns, each with its
    own staging table, so that a chunk is staged while the one before it is written. One
    chunk is written at a time, in file order, each in one transaction; memory stays flat,
    and a failure stops the reading at the next chunk."""

    def __init__(self, engine: Engine, supplier_id: str, report: Report, tracer: trace.Tracer, parent):
        self._engine = engine
        self._supplier = supplier_id
        self._report = report
        self._tracer = tracer
        self._parent = parent
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="upload-store")
        self._in_flight: Future | None = None
        self._writing: Connection | None = None  # the connection of the chunk in flight
        self._spare: Connection | None = None  # the other one

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
        connections go back to the pool."""
        self._pool.shutdown(wait=True)
        for connection in (self._writing, self._spare):
            if connection is not None:
                connection.close()

    def _store(self, connection: Connection, rows: int) -> None:
        with self._tracer.start_as_current_span("store rows", context=self._parent) as span:
            now = datetime.now(timezone.utc)
            for attempt in range(3):
                try:
                    with connection.begin():
                        counts = bulk.store(connection, self._supplier, now)
                    break
                except sa.exc.IntegrityError:
                    # Another writer created one of these dossiers meanwhile: judge again.
                    if attempt == 2:
                        raise
            for outcome, count in counts.items():
                self._report.counts[outcome] += count
            if span.is_recording():
                span.set_attribute("dosis.batch.rows", rows)
                for outcome, count in counts.items():
                    span.set_attribute(f"dosis.outcomes.{outcome.name.lower()}", count)
