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
    def __init__(self, column: str, reason: str):
        super().__init__(reason)
        self.column, self.reason = column, reason


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


def _time(value: str, column: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise RowError(column, "must be an ISO 8601 date and time, e.g. 2026-03-01T10:00:00+01:00") from None
    if parsed.tzinfo is None:
        raise RowError(column, "needs a time zone (Z or an offset such as +01:00)")
    return parsed.astimezone(timezone.utc)


def _bool(value: str, column: str) -> bool:
    folded = value.strip().lower()
    if folded in _TRUE:
        return True
    if folded in _FALSE:
        return False
    raise RowError(column, "must be true or false")


def row_status(row: dict[str, str]) -> pb.DossierStatus:
    """A CSV row as the contract's message (then validated like any push)."""
    get = lambda name: (row.get(name) or "").strip()  # noqa: E731
    phase = labels.parse_phase(get("phase"))
    if phase is None:
        raise RowError("phase", "is not a phase (enum name or Dutch label)")
    code = labels.parse_status(get("status"))
    if code is None:
        raise RowError("status", "is not a status code (enum name or Dutch label)")
    if not get("status_time"):
        raise RowError("status_time", "is required")
    status = pb.DossierStatus(
        enterprise_number=get("enterprise_number"),
        product_id=get("product_id"),
        dossier_id=get("dossier_id"),
        phase=phase,
        status=code,
        detail_status=get("detail_status"),
        reference=pb.Reference(url=get("reference_url"), email=get("reference_email"), contact=get("reference_contact")),
        required_roles=[r.strip() for r in get("required_roles").split("|") if r.strip()],
        public=_bool(get("public"), "public"),
        action_required=_bool(get("action_required"), "action_required"),
        action=get("action"),
    )
    status.status_time.FromDatetime(_time(get("status_time"), "status_time"))
    if get("visible_until"):
        status.visible_until.FromDatetime(_time(get("visible_until"), "visible_until"))
    return status


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

    def run(self, lines: Iterator[str]) -> Report:
        first = next(lines, "")
        delimiter = ";" if first.count(";") > first.count(",") else ","
        header = self._header(first, delimiter)
        reader = csv.reader(lines, delimiter=delimiter)
        pending: list[tuple[int, dict]] = []
        next_start = 2  # the file line where the next record starts (the header is line 1)
        for record in reader:
            line, next_start = next_start, reader.line_num + 2
            if not any(value.strip() for value in record):
                continue  # a blank line
            self.report.rows_read += 1
            values = self._row(line, header, record)
            if values is not None:
                pending.append((line, values))
            if len(pending) >= CHUNK_ROWS:
                self._store(pending)
                pending = []
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
            values = validate_status(row_status(row), prefix="")
        except RowError as exc:
            self.report.reject(line, [(exc.column, exc.reason)])
            return None
        except errors.DosisError as exc:
            self.report.reject(line, [(_column_of(v.field), v.description) for v in exc.violations])
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
