"""Building CSV lists, sending them through UploadBatch, reading back what they stored.

Shared by the UploadBatch tests (tests/test_upload_*.py). Stored results are read back through
QueryService or straight from the dossier store, never from the report alone.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta

import sqlalchemy as sa

from dosis.v1 import dossier_status_pb2 as pb
from dosis.v1 import ingest_pb2, query_pb2
from services.ingest.csv_batch import COLUMNS
from tests.helpers import ENTERPRISE_A, UTC

NOW = datetime.now(UTC).replace(microsecond=0)
T0 = NOW - timedelta(days=10)  # a safe past status_time
UPSERT = ingest_pb2.BATCH_MODE_UPSERT
REPLACE = ingest_pb2.BATCH_MODE_REPLACE_PRODUCT


# --- building CSV files -----------------------------------------------------------------


def iso(value: datetime) -> str:
    return value.isoformat()


def row(
    dossier: str = "D-1",
    enterprise: str = ENTERPRISE_A,
    product: str = "1502",
    *,
    phase: str = "BEHANDELING_DOSSIER",
    status: str = "IN_BEHANDELING",
    detail: str = "",
    when: datetime | str | None = None,
    url: str = "https://www.vlaio.be/dossier",
    email: str = "",
    contact: str = "",
    roles: str = "Bedrijfsleider",
    public: str = "false",
    action_required: str = "false",
    action: str = "",
    visible_until: str = "",
) -> list[str]:
    """One CSV record in COLUMNS order; valid unless told otherwise."""
    when = T0 if when is None else when
    return [
        enterprise, product, dossier, phase, status, detail, when if isinstance(when, str) else iso(when),
        url, email, contact, roles, public, action_required, action, visible_until,
    ]


def csv_bytes(
    records: list[list[str]],
    *,
    header: list[str] | tuple[str, ...] = COLUMNS,
    delimiter: str = ",",
    bom: bool = False,
    line_end: str = "\r\n",
    encoding: str = "utf-8",
) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator=line_end)
    writer.writerow(header)
    writer.writerows(records)
    return (b"\xef\xbb\xbf" if bom else b"") + out.getvalue().encode(encoding)


def requests(data: bytes, *, mode=UPSERT, product: str = "", chunk_size: int = 64 * 1024, cuts=None):
    """The UploadBatch stream: the header (with size_bytes, as `dosis upload` sends it), then
    the file's bytes (in fixed-size chunks or cut at `cuts`)."""
    header = ingest_pb2.BatchHeader(mode=mode, product_id=product, file_name="t.csv", size_bytes=len(data))
    yield ingest_pb2.UploadBatchRequest(header=header)
    if cuts is not None:
        bounds = [0, *cuts, len(data)]
        for start, end in zip(bounds, bounds[1:]):
            yield ingest_pb2.UploadBatchRequest(chunk=data[start:end])
    else:
        for start in range(0, len(data), chunk_size):
            yield ingest_pb2.UploadBatchRequest(chunk=data[start : start + chunk_size])


def upload(stack, data: bytes, *, supplier="VLAIO", timeout: float = 60, **kwargs) -> ingest_pb2.BatchReport:
    metadata = stack.as_supplier(supplier)
    return stack.ingest.UploadBatch(requests(data, **kwargs), metadata=metadata, timeout=timeout)


def counts(report: ingest_pb2.BatchReport) -> dict[str, int]:
    names = ("rows_read", "created", "updated", "unchanged", "stale", "rejected", "deleted")
    return {name: getattr(report, name) for name in names}


def expect(**nonzero) -> dict[str, int]:
    """A full counts dict: the given values, zero for the rest."""
    base = dict.fromkeys(("rows_read", "created", "updated", "unchanged", "stale", "rejected", "deleted"), 0)
    base.update(nonzero)
    return base


def faults(report: ingest_pb2.BatchReport) -> list[tuple[int, str]]:
    return sorted((r.line, r.column) for r in report.rejected_rows)


# --- reading the store ------------------------------------------------------------------


def stored(stack) -> dict[tuple[str, str, str], dict]:
    """Every stored dossier by (supplier, product, dossier id)."""
    with stack.stores.dossiers.connect() as c:
        rows = c.execute(sa.text("SELECT * FROM dossiers")).mappings().all()
    return {(r["supplier_id"], r["product_id"], r["dossier_id"]): dict(r) for r in rows}


def stored_count(stack) -> int:
    with stack.stores.dossiers.connect() as c:
        return c.execute(sa.text("SELECT count(*) FROM dossiers")).scalar_one()


def roles_of(value) -> list[str]:
    """required_roles as stored (JSON: a list on PostgreSQL, maybe a string on SQLite)."""
    if isinstance(value, str):
        import json

        value = json.loads(value)
    return list(value)


def listed(stack, enterprise: str, *roles: str) -> list[pb.DossierStatus]:
    reply = stack.query.ListDossiers(
        query_pb2.ListDossiersRequest(enterprise_number=enterprise, page_size=500),
        metadata=stack.as_person(enterprise, *roles),
    )
    return list(reply.dossiers)
