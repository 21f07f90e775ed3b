"""CSV lists (UploadBatch): parse a streamed file row by row, validate, store in chunks.

The file arrives as byte chunks; a bounded queue hands them to a loader thread that
decodes (UTF-8, BOM or not), parses (`,` or `;`, from the header) and validates each row
with the same rules as PushStatus, and stores good rows in transactions of CHUNK_ROWS:
memory stays flat whatever the file size, and a broken connection leaves every row either
fully stored or not at all. Re-sending a file is safe: rows already stored are UNCHANGED.
"""

from __future__ import annotations

import asyncio
import codecs
import csv
import logging
import operator
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone

from opentelemetry import context, trace

from dosis.v1 import ingest_pb2
from services.common import errors, labels
from services.common.errors import Violation
from services.common.rules import csv_delimiter
from services.ingest.validation import Fault, check_values
from services.store.dossiers import DossierStore
from services.store.models import FIELDS, as_row
from services.store.outcomes import Outcome

log = logging.getLogger(__name__)

# Rows per transaction: each commit costs an fsync (about 25 ms here), so not too few;
# memory holds two chunks (one read, one stored), so not too many.
CHUNK_ROWS = 10_000
MAX_REPORTED = 1000
END = object()  # the client finished sending
ABORT = object()  # the client went away: store nothing more

COLUMNS = FIELDS  # the contract's CSV columns are a status's fields, by name
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

    def decode(chunk: bytes, final: bool = False) -> str:
        try:
            return decoder.decode(chunk, final)
        except UnicodeDecodeError as exc:
            raise errors.invalid_argument(
                [Violation("chunk", "INVALID_ENCODING", f"the file is not UTF-8 (byte {offset + exc.start})")]
            ) from None

    for chunk in chunks:
        pending += decode(chunk)
        offset += len(chunk)
        *lines, pending = pending.split("\n")
        for line in lines:
            yield line + "\n"
    pending += decode(b"", final=True)  # a file cut inside a character ends here
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
        store: DossierStore,
        supplier_id: str,
        header: ingest_pb2.BatchHeader,
        check_product: Callable[[str], errors.DosisError | None],
        tracer: trace.Tracer | None = None,
    ):
        self._store = store
        self._supplier = supplier_id
        self._replace = header.mode == ingest_pb2.BATCH_MODE_REPLACE_PRODUCT
        self._product = header.product_id
        self._check_product = check_product
        self._tracer = tracer or trace.NoOpTracer()
        self._product_errors: dict[str, errors.DosisError | None] = {}
        self.report = Report()
        self.complete = threading.Event()  # set by the caller once the stream has ended
        self.whole_file = False  # ... and whether it brought the whole file

    def run(self, lines: Iterator[str]) -> Report:
        parent = context.get_current()  # the UploadBatch span: parent of the chunk spans
        self._load = self._store.list_load(
            self._supplier, self.report.counts, parent,
            replace_product=self._product if self._replace else "",
        )
        try:
            return self._run(lines, parent)
        finally:
            self._load.close()

    def _run(self, lines: Iterator[str], parent: context.Context) -> Report:
        first = next(lines, "")
        delimiter = csv_delimiter(first)
        rows = RowReader(self._header(first, delimiter))
        reader = csv.reader(lines, delimiter=delimiter)
        writer = self._load
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
        # REPLACE_PRODUCT deletes the unnamed dossiers only when no row was rejected: the
        # file is otherwise not the complete list.
        if self._replace and not self.report.rejected:
            self.report.deleted = writer.delete_absent()
        return self.report

    def _header(self, first_line: str, delimiter: str) -> list[str]:
        try:
            names = [n.strip().lower() for n in next(csv.reader([first_line], delimiter=delimiter), [])]
        except csv.Error as exc:  # e.g. a lone carriage return: lines must end in \n or \r\n
            raise errors.invalid_argument([Violation("header", "UNREADABLE_HEADER", f"cannot be read: {exc}")]) from None
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
            self._load.name(values["dossier_id"])
        return values

    def _product_error(self, product_id: str) -> errors.DosisError | None:
        if product_id not in self._product_errors:
            self._product_errors[product_id] = self._check_product(product_id)
        return self._product_errors[product_id]

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
        self.rows.append(as_row(values))
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


class Upload:
    """One UploadBatch file on its way from the call to the loader thread: the servicer
    sends the chunks as they come, then says how the stream ended (`finish` or `abort`)."""

    def __init__(self, loader: BatchLoader, queued_chunks: int = 16):
        self._loader = loader
        self._chunks: queue.Queue = queue.Queue(maxsize=queued_chunks)  # bounded: a fast sender waits
        self._work = asyncio.ensure_future(asyncio.to_thread(loader.run, text_lines(chunks_from(self._chunks))))

    async def send(self, chunk: bytes) -> bool:
        """Hand a chunk to the loader without blocking the event loop; False when the loader
        has already stopped (a bad header: its error is then the answer)."""
        return await self._offer(chunk)

    async def end_of_stream(self) -> None:
        await self._offer(END)

    async def finish(self) -> Report:
        """The whole file arrived: the last rows (and a complete list's delete step) are stored."""
        self._loader.whole_file = True
        self._loader.complete.set()
        return await self._work

    def abort(self) -> None:
        """The upload broke off: the loader stores nothing more (rows of committed chunks stay)."""
        self._loader.complete.set()  # whole_file stays False
        self._work.add_done_callback(lambda f: f.cancelled() or f.exception())
        with self._chunks.mutex:
            self._chunks.queue.clear()  # what was not parsed yet is dropped with the rest
        self._chunks.put_nowait(ABORT)

    async def _offer(self, item: object) -> bool:
        while not self._work.done():
            try:
                self._chunks.put_nowait(item)
                return True
            except queue.Full:
                await asyncio.sleep(0.002)
        return False
