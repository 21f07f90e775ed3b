"""The forms of file and stream UploadBatch takes or refuses: BOM, delimiters, line ends, headers,
Dutch labels, chunk cuts, encoding, malformed CSV, the header message, the token."""

from __future__ import annotations

import grpc
import pytest

from dosis.v1 import dossier_status_pb2 as pb
from dosis.v1 import ingest_pb2
from services.ingest.csv_batch import COLUMNS
from tests.helpers import ENTERPRISE_A, ENTERPRISE_B, ENTERPRISE_D, rpc_error
from tests.upload_helpers import (
    T0, UPSERT, counts, csv_bytes, expect, faults, iso, requests, roles_of, row, stored, upload,
)


@pytest.mark.parametrize("delimiter", [",", ";"])
@pytest.mark.parametrize("bom", [False, True])
@pytest.mark.parametrize("line_end", ["\r\n", "\n"])
def test_bom_delimiters_and_line_ends(stack, delimiter, bom, line_end):
    records = [
        row("V-1", contact="Loket, Brussel; bus 1", url=""),
        row("V-2", ENTERPRISE_B, roles="A|B", contact="twee\nregels"),  # lines 3-4
        row("V-3", "3"),  # line 5: bad enterprise number
    ]
    report = upload(stack, csv_bytes(records, delimiter=delimiter, bom=bom, line_end=line_end))
    assert counts(report) == expect(rows_read=3, created=2, rejected=1)
    assert faults(report) == [(5, "enterprise_number")]
    rows = stored(stack)
    assert rows[("VLAIO", "1502", "V-1")]["reference_contact"] == "Loket, Brussel; bus 1"
    assert rows[("VLAIO", "1502", "V-1")]["enterprise_number"] == ENTERPRISE_A  # BOM not part of the first column
    assert sorted(roles_of(rows[("VLAIO", "1502", "V-2")]["required_roles"])) == ["A", "B"]
    assert rows[("VLAIO", "1502", "V-2")]["reference_contact"] == "twee\nregels"


def test_the_last_line_needs_no_line_end(stack):
    data = csv_bytes([row("LAST-1"), row("LAST-2", ENTERPRISE_B)]).rstrip(b"\r\n")
    assert counts(upload(stack, data)) == expect(rows_read=2, created=2)
    assert set(stored(stack)) == {("VLAIO", "1502", "LAST-1"), ("VLAIO", "1502", "LAST-2")}


@pytest.mark.parametrize("fault", ["unterminated quote", "huge field"])
def test_malformed_csv_is_reported_not_an_internal_error(stack, fault):
    """A stray quote (the rest of the file becomes one field) or one huge field is the
    supplier's mistake: a rejected row or INVALID_ARGUMENT, never INTERNAL."""
    head = csv_bytes([row("Q-1")])
    if fault == "unterminated quote":
        bad = b'0316380841,1502,"Q-2,BEHANDELING_DOSSIER\r\n'  # line 3
    else:
        bad = csv_bytes([row("Q-2", contact="x" * 200_000)]).split(b"\r\n", 1)[1]  # line 3
    tail = csv_bytes([row(f"T-{i}") for i in range(1500)]).split(b"\r\n", 1)[1]
    try:
        report = upload(stack, head + bad + tail)
    except grpc.RpcError as exc:
        from dosis.client import error_details

        details = error_details(exc)
        assert details.code == grpc.StatusCode.INVALID_ARGUMENT, details
    else:
        assert 3 in {r.line for r in report.rejected_rows}, list(report.rejected_rows)[:5]
        assert ("VLAIO", "1502", "Q-2") not in stored(stack)


def test_header_is_case_and_space_insensitive_and_optional_columns_may_be_absent(stack):
    header = [" Enterprise_Number", "PRODUCT_ID", "dossier_id ", "phase", "status", "status_time", "reference_email",
              "public"]
    records = [[ENTERPRISE_D, "1519", "H-1", "uitvoering", "betaald", iso(T0), "info@vlaio.be", "ja"]]
    report = upload(stack, csv_bytes(records, header=header))
    assert counts(report) == expect(rows_read=1, created=1)
    got = stored(stack)[("VLAIO", "1519", "H-1")]
    assert (got["enterprise_number"], got["phase"], got["status"], bool(got["public"])) == (
        ENTERPRISE_D, pb.STATUS_PHASE_UITVOERING, pb.STATUS_CODE_BETAALD, True,
    )


LABELS = [
    # (phase text, status text, phase, status)
    ("behandeling dossier", "in behandeling", pb.STATUS_PHASE_BEHANDELING_DOSSIER, pb.STATUS_CODE_IN_BEHANDELING),
    ("samenstelling aanvraag", "geïnitieerd", pb.STATUS_PHASE_SAMENSTELLING_AANVRAAG, pb.STATUS_CODE_GEINITIEERD),
    ("Samenstelling Aanvraag", "Geïnitieerd", pb.STATUS_PHASE_SAMENSTELLING_AANVRAAG, pb.STATUS_CODE_GEINITIEERD),
    ("beslissing definitief", "erkend/vergund", pb.STATUS_PHASE_BESLISSING_DEFINITIEF, pb.STATUS_CODE_ERKEND_VERGUND),
    ("STATUS_PHASE_UITVOERING", "STATUS_CODE_BETAALD", pb.STATUS_PHASE_UITVOERING, pb.STATUS_CODE_BETAALD),
    ("UITVOERING", "BETAALD", pb.STATUS_PHASE_UITVOERING, pb.STATUS_CODE_BETAALD),
    ("BESLISSING_DEFINITIEF", "ERKEND_VERGUND", pb.STATUS_PHASE_BESLISSING_DEFINITIEF, pb.STATUS_CODE_ERKEND_VERGUND),
    ("afgesloten", "klaar voor betaling", pb.STATUS_PHASE_AFGESLOTEN, pb.STATUS_CODE_KLAAR_VOOR_BETALING),
    ("  beroep ", " In Wacht", pb.STATUS_PHASE_BEROEP, pb.STATUS_CODE_IN_WACHT),
]


def test_dutch_labels_and_enum_names(stack):
    records = [row(f"L-{i}", phase=p, status=s) for i, (p, s, _, _) in enumerate(LABELS)]
    records.append(row("L-bad", phase="STATUS_PHASE_UNSPECIFIED", status="STATUS_CODE_UNSPECIFIED"))
    report = upload(stack, csv_bytes(records))
    assert counts(report) == expect(rows_read=len(LABELS) + 1, created=len(LABELS), rejected=1)
    assert faults(report)[0] == (len(LABELS) + 2, "phase")
    rows = stored(stack)
    for i, (_, _, phase, code) in enumerate(LABELS):
        got = rows[("VLAIO", "1502", f"L-{i}")]
        assert (got["phase"], got["status"]) == (phase, code), LABELS[i]


def test_chunks_cut_at_every_byte_give_the_same_result(stack):
    records = [
        row("C-1", phase="samenstelling aanvraag", status="Geïnitieerd", detail="één aanvraag — ü",
            contact="Loket; één\nBrussel, bus 2"),  # lines 2-3
        row("C-2", "0316380842", status="geïnitieerd"),  # line 4: rejected
    ]
    data = csv_bytes(records, bom=True)
    assert "ï".encode() in data and len(data) < 700
    first = upload(stack, data)
    assert counts(first) == expect(rows_read=2, created=1, rejected=1)
    assert faults(first) == [(4, "enterprise_number")]
    row_before = stored(stack)[("VLAIO", "1502", "C-1")]
    assert row_before["detail_status"] == "één aanvraag — ü"
    assert row_before["status"] == pb.STATUS_CODE_GEINITIEERD
    assert row_before["reference_contact"] == "Loket; één\nBrussel, bus 2"

    again = expect(rows_read=2, unchanged=1, rejected=1)
    inside_char = data.index("ï".encode()) + 1  # between the two bytes of "ï"
    positions = range(1, len(data))
    assert inside_char in positions
    for cut in positions:
        report = upload(stack, data, cuts=[cut])
        assert (counts(report), faults(report)) == (again, [(4, "enterprise_number")]), f"cut at byte {cut}"
    # Every byte its own chunk, and empty chunks in between.
    assert counts(upload(stack, data, chunk_size=1)) == again
    assert counts(upload(stack, data, cuts=[0, 0, 3, 3, len(data)])) == again
    assert stored(stack) == {("VLAIO", "1502", "C-1"): row_before}


def test_a_file_that_is_not_utf8_is_invalid_argument(stack):
    data = csv_bytes([row("E-1", status="geïnitieerd")], encoding="latin-1")
    details = rpc_error(upload, stack, data)
    assert details.code == grpc.StatusCode.INVALID_ARGUMENT
    assert details.reason == "INVALID_ENCODING"
    assert stored(stack) == {}


@pytest.mark.parametrize(
    ("header", "named"),
    [
        ((*COLUMNS, "kleur"), {"header.kleur"}),
        (tuple(c for c in COLUMNS if c != "status_time"), {"header.status_time"}),
        (tuple(c for c in COLUMNS if c not in ("product_id", "phase")) + ("fase",),
         {"header.product_id", "header.phase", "header.fase"}),
    ],
)
def test_a_bad_header_is_invalid_argument_naming_the_column(stack, header, named):
    record = dict(zip(COLUMNS, row("H-1")))
    data = csv_bytes([[record.get(c, "x") for c in header]], header=header)
    details = rpc_error(upload, stack, data)
    assert details.code == grpc.StatusCode.INVALID_ARGUMENT
    assert {v.field for v in details.violations} == named
    assert all(v.reason in {"UNKNOWN_COLUMN", "MISSING_COLUMN"} for v in details.violations)
    assert stored(stack) == {}


def test_an_empty_file_is_invalid_argument(stack):
    details = rpc_error(upload, stack, b"")
    assert details.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "header.enterprise_number" in details.fields()


def test_the_header_message_must_come_first(stack):
    data = csv_bytes([row("N-1")])
    meta = stack.as_supplier()
    only_chunks = iter([ingest_pb2.UploadBatchRequest(chunk=data)])
    details = rpc_error(stack.ingest.UploadBatch, only_chunks, metadata=meta)
    assert (details.code, details.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "MISSING_HEADER")

    details = rpc_error(stack.ingest.UploadBatch, iter([]), metadata=meta)
    assert (details.code, details.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "MISSING_HEADER")

    header = ingest_pb2.UploadBatchRequest(header=ingest_pb2.BatchHeader(mode=UPSERT))
    twice = iter([header, ingest_pb2.UploadBatchRequest(chunk=data), header])
    details = rpc_error(stack.ingest.UploadBatch, twice, metadata=meta)
    assert details.code == grpc.StatusCode.INVALID_ARGUMENT
    assert stored(stack) == {}


def test_upload_without_token_is_unauthenticated(stack):
    details = rpc_error(stack.ingest.UploadBatch, requests(csv_bytes([row("U-1")])))
    assert details.code == grpc.StatusCode.UNAUTHENTICATED
    assert stored(stack) == {}
