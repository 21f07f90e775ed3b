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
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from dosis.v1 import dossier_status_pb2 as pb
from dosis.v1 import ingest_pb2
from services.common import errors, labels
from services.common.errors import Violation
from services.ingest.validation import validate_status
from services.store import repository
from services.store.models import Dossier
from services.store.repository import Outcome

log = logging.getLogger(__name__)

CHUNK_ROWS = 2000
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


def _time(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("must be an ISO 8601 date and time, e.g. 2026-03-01T10:00:00+01:00") from None
    if parsed.tzinfo is None:
        raise ValueError("needs a time zone (Z or an offset such as +01:00)")
    return parsed.astimezone(timezone.utc)


def _bool(value: str) -> bool:
    folded = value.lower()
    if folded in _TRUE:
        return True
    if folded in _FALSE:
        return False
    raise ValueError("must be true or false (ja/nee)")


def row_values(row: dict[str, str]) -> dict:
    """A CSV row's column values, validated with the rules of every push.

    Every fault of the row is reported at once: those of reading its text (enum labels,
    times, booleans) and those the push validation finds in the other fields."""
    get = lambda name: (row.get(name) or "").strip()  # noqa: E731
    faults: list[tuple[str, str]] = []

    def parsed(column: str, parse, fallback):
        try:
            return parse(get(column))
        except ValueError as exc:
            faults.append((column, str(exc)))
            return fallback

    def enum(parse, what: str):
        def read(text: str) -> int:
            number = parse(text)
            if number is None:
                raise ValueError(f"is not a {what} (enum name or Dutch label)")
            return number

        return read

    status = pb.DossierStatus(
        enterprise_number=get("enterprise_number"),
        product_id=get("product_id"),
        dossier_id=get("dossier_id"),
        phase=parsed("phase", enum(labels.parse_phase, "phase"), 1),
        status=parsed("status", enum(labels.parse_status, "status code"), 1),
        detail_status=get("detail_status"),
        reference=pb.Reference(url=get("reference_url"), email=get("reference_email"), contact=get("reference_contact")),
        required_roles=[r.strip() for r in get("required_roles").split("|") if r.strip()],
        public=parsed("public", _bool, True),
        action_required=parsed("action_required", _bool, False),
        action=get("action"),
    )
    if get("status_time"):
        when = parsed("status_time", _time, None)
        if when is not None:
            status.status_time.FromDatetime(when)
    if get("visible_until"):
        until = parsed("visible_until", _time, None)
        if until is not None:
            status.visible_until.FromDatetime(until)
    try:
        values = validate_status(status, prefix="")
    except errors.DosisError as exc:
        seen = {column for column, _ in faults}
        faults += [(_column_of(v.field), v.description) for v in exc.violations if _column_of(v.field) not in seen]
        raise RowError(faults) from None
    if faults:
        raise RowError(faults)
    return values


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
    ):
        self._engine = engine
        self._supplier = supplier_id
        self._replace = header.mode == ingest_pb2.BATCH_MODE_REPLACE_PRODUCT
        self._product = header.product_id
        self._check_product = check_product
        self._product_errors: dict[str, errors.DosisError | None] = {}
        self._seen: set[str] = set()  # REPLACE_PRODUCT: the dossier ids the file names
        self.report = Report()
        self.complete = threading.Event()  # set by the caller once the stream has ended
        self.whole_file = False  # ... and whether it brought the whole file

    def run(self, lines: Iterator[str]) -> Report:
        first = next(lines, "")
        delimiter = ";" if first.count(";") > first.count(",") else ","
        header = self._header(first, delimiter)
        reader = csv.reader(lines, delimiter=delimiter)
        pending: list[tuple[int, dict]] = []
        next_start = 2  # the file line where the next record starts (the header is line 1)
        records = iter(reader)
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
            if not any(value.strip() for value in record):
                continue  # a blank line
            self.report.rows_read += 1
            values = self._row(line, header, record)
            if values is not None:
                pending.append((line, values))
            if len(pending) >= CHUNK_ROWS:
                self._store(pending)
                pending = []
        # The last rows and the delete step wait for the caller's word that the whole file
        # arrived: a stream that ended early must not complete a list.
        if not self.complete.wait() or not self.whole_file:
            raise ConnectionAbortedError("the upload did not arrive whole")
        if pending:
            self._store(pending)
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

    def _row(self, line: int, header: list[str], record: list[str]) -> dict | None:
        if len(record) != len(header):
            self.report.reject(line, [("", f"has {len(record)} fields, the header {len(header)}")])
            return None
        row = dict(zip(header, record))
        try:
            values = row_values(row)
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

    def _store(self, rows: list[tuple[int, dict]]) -> None:
        now = datetime.now(timezone.utc)
        items = [(self._supplier, values) for _, values in rows]
        for attempt in range(3):
            try:
                with Session(self._engine) as session, session.begin():
                    outcomes = repository.upsert_many(session, items, now)
                break
            except sa.exc.IntegrityError:
                if attempt == 2:
                    raise
        for outcome in outcomes:
            self.report.counts[outcome] += 1

    def _delete_absent(self) -> None:
        """REPLACE_PRODUCT: remove the supplier's dossiers of the product that the file
        did not name; nothing at all when a row was rejected (the file is then not complete)."""
        if self.report.rejected:
            return
        table = Dossier.__table__
        scope = sa.and_(table.c.supplier_id == self._supplier, table.c.product_id == self._product)
        with Session(self._engine) as session, session.begin():
            stored = session.execute(sa.select(table.c.id, table.c.dossier_id).where(scope)).all()
            absent = [row_id for row_id, dossier_id in stored if dossier_id not in self._seen]
            for i in range(0, len(absent), 1000):
                session.execute(sa.delete(table).where(table.c.id.in_(absent[i : i + 1000])))
        self.report.deleted = len(absent)
