"""UploadBatch in REPLACE_PRODUCT mode: a clean list deletes the supplier's dossiers it does not
name; a rejected row, another product or a product not served deletes nothing."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import grpc

from dosis.v1 import catalog_pb2
from tests.helpers import ENTERPRISE_B, ENTERPRISE_C, bearer, rpc_error
from tests.upload_helpers import REPLACE, T0, counts, csv_bytes, expect, faults, listed, row, stored, upload


def _replace_setup(stack) -> None:
    """VLAIO: R-1..R-3 of 1502 and H-1 of 1519; OMGEVING (also a supplier of 1502 here):
    O-1 of 1502 and O-2 of 2031."""
    admin = bearer(stack.tokens.admin("catalog-admin"))
    product = stack.catalog.GetProduct(catalog_pb2.GetProductRequest(id="1502"), metadata=admin)
    product.supplier_ids.append("OMGEVING")
    stack.catalog.UpsertProduct(catalog_pb2.UpsertProductRequest(product=product), metadata=admin)
    vlaio = [row("R-1"), row("R-2"), row("R-3", ENTERPRISE_B), row("H-1", product="1519")]
    assert upload(stack, csv_bytes(vlaio)).created == 4
    site = "https://omgeving.vlaanderen.be"
    omgeving = [row("O-1", url=site), row("O-2", product="2031", url=site)]
    assert upload(stack, csv_bytes(omgeving), supplier="OMGEVING").created == 2


def test_replace_product_deletes_the_dossiers_absent_from_a_clean_file(stack):
    _replace_setup(stack)
    records = [
        row("R-1", when=T0 - timedelta(days=1)),  # stale, but named: kept
        row("R-4", ENTERPRISE_C),  # new
    ]
    report = upload(stack, csv_bytes(records), mode=REPLACE, product="1502")
    assert counts(report) == expect(rows_read=2, created=1, stale=1, deleted=2)
    assert set(stored(stack)) == {
        ("VLAIO", "1502", "R-1"), ("VLAIO", "1502", "R-4"), ("VLAIO", "1519", "H-1"),
        ("OMGEVING", "1502", "O-1"), ("OMGEVING", "2031", "O-2"),
    }
    assert [d.dossier_id for d in listed(stack, ENTERPRISE_B, "Bedrijfsleider")] == []

    # The same list again: nothing more to delete.
    again = upload(stack, csv_bytes(records), mode=REPLACE, product="1502")
    assert counts(again) == expect(rows_read=2, unchanged=1, stale=1)

    # A header-only file is an empty list: every VLAIO 1502 dossier goes, nothing else.
    empty = upload(stack, csv_bytes([]), mode=REPLACE, product="1502")
    assert counts(empty) == expect(deleted=2)
    assert set(stored(stack)) == {
        ("VLAIO", "1519", "H-1"), ("OMGEVING", "1502", "O-1"), ("OMGEVING", "2031", "O-2"),
    }


def test_replace_product_reads_the_stored_ids_in_batches_and_leaves_no_scratch_file(stack, monkeypatch):
    """The named ids wait in a scratch file, the stored ones are read batch by batch: across
    batch edges exactly the unnamed dossiers go."""
    import tempfile

    from services.store import lists

    monkeypatch.setattr(lists, "DELETE_BATCH", 7)
    scratch = set(Path(tempfile.gettempdir()).glob("dosis-upload-*.db"))
    assert counts(upload(stack, csv_bytes([row(f"K-{i:03d}") for i in range(40)]))) == expect(rows_read=40, created=40)
    kept = [row(f"K-{i:03d}") for i in range(40) if i % 3 == 0] + [row("K-new")]
    report = upload(stack, csv_bytes(kept), mode=REPLACE, product="1502")
    assert counts(report) == expect(rows_read=15, unchanged=14, created=1, deleted=26)
    assert sorted(d for _, _, d in stored(stack)) == sorted([f"K-{i:03d}" for i in range(0, 40, 3)] + ["K-new"])
    assert set(Path(tempfile.gettempdir()).glob("dosis-upload-*.db")) == scratch


def test_replace_product_with_a_rejected_row_deletes_nothing(stack):
    _replace_setup(stack)
    before = set(stored(stack))
    records = [row("R-1"), row("R-4", ENTERPRISE_C), row("R-5", "0316380842")]  # line 4 rejected
    report = upload(stack, csv_bytes(records), mode=REPLACE, product="1502")
    assert counts(report) == expect(rows_read=3, created=1, unchanged=1, rejected=1)
    assert faults(report) == [(4, "enterprise_number")]
    assert set(stored(stack)) == before | {("VLAIO", "1502", "R-4")}  # the good rows loaded, nothing deleted


def test_replace_product_rejects_rows_of_another_product(stack):
    _replace_setup(stack)
    before = set(stored(stack))
    records = [row("R-1"), row("H-2", product="1519")]  # line 3: not the product being replaced
    report = upload(stack, csv_bytes(records), mode=REPLACE, product="1502")
    assert counts(report) == expect(rows_read=2, unchanged=1, rejected=1)
    assert faults(report) == [(3, "product_id")]
    assert "1502" in report.rejected_rows[0].reason
    assert set(stored(stack)) == before


def test_replace_product_needs_a_product_the_supplier_serves(stack):
    _replace_setup(stack)
    before = stored(stack)
    data = csv_bytes([row("R-1")])

    details = rpc_error(upload, stack, data, mode=REPLACE)
    assert details.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "product_id" in details.fields()

    details = rpc_error(upload, stack, csv_bytes([row("Z-1", product="2031")]), mode=REPLACE, product="2031")
    assert (details.code, details.reason) == (grpc.StatusCode.PERMISSION_DENIED, "SUPPLIER_NOT_ALLOWED")

    details = rpc_error(upload, stack, csv_bytes([row("Z-1", product="1001")]), mode=REPLACE, product="1001")
    assert (details.code, details.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "PRODUCT_INACTIVE")

    details = rpc_error(upload, stack, csv_bytes([row("Z-1", product="9999")]), mode=REPLACE, product="9999")
    assert (details.code, details.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "UNKNOWN_PRODUCT")
    assert stored(stack) == before
