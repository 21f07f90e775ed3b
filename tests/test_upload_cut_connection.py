"""UploadBatch cut off mid-file: whole chunks stay, a cut or short REPLACE_PRODUCT list deletes
nothing; two senders of the same new rows both succeed."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import grpc
import pytest

from dosis.v1 import ingest_pb2, ingest_pb2_grpc
from services.ingest.csv_batch import CHUNK_ROWS
from tests.helpers import ENTERPRISE_A, ENTERPRISE_B, ENTERPRISE_C, ENTERPRISE_D
from tests.upload_helpers import REPLACE, T0, UPSERT, counts, csv_bytes, row, stored, stored_count, upload


def _many_rows(count: int, prefix: str) -> list[list[str]]:
    enterprises = (ENTERPRISE_A, ENTERPRISE_B, ENTERPRISE_C, ENTERPRISE_D)
    return [row(f"{prefix}-{i:06d}", enterprises[i % 4], when=T0 + timedelta(seconds=i)) for i in range(count)]


def _cut_upload(stack, header: ingest_pb2.BatchHeader, sent: bytes, *, wait_for: int = 0, cut: bool = True):
    """Send the header and `sent`, wait until `wait_for` rows are stored, then either fail
    in the request iterator (the client library cancels the call) or end the stream early."""

    def stream():
        yield ingest_pb2.UploadBatchRequest(header=header)
        for start in range(0, len(sent), 32 * 1024):
            yield ingest_pb2.UploadBatchRequest(chunk=sent[start : start + 32 * 1024])
        deadline = time.monotonic() + 60
        while stored_count(stack) < wait_for and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)
        if cut:
            raise ConnectionResetError("the client's network went away")

    with grpc.insecure_channel(stack.address("ingest")) as channel:
        stub = ingest_pb2_grpc.IngestServiceStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            stub.UploadBatch(stream(), metadata=stack.as_supplier(), timeout=90)
    return info.value


def _settled_count(stack, seconds: float = 1.0) -> int:
    """The stored row count once it stopped moving; every observation a whole number of chunks."""
    seen, stable_since = stored_count(stack), time.monotonic()
    while time.monotonic() - stable_since < seconds:
        time.sleep(0.1)
        now = stored_count(stack)
        assert now % CHUNK_ROWS == 0, f"{now} rows stored: a partial chunk was stored"
        if now != seen:
            seen, stable_since = now, time.monotonic()
    return seen


def test_a_cut_connection_leaves_whole_chunks_only(stack):
    total = 3 * CHUNK_ROWS
    data = csv_bytes(_many_rows(total, "K"))
    lines = data.split(b"\r\n")
    # The header, 2.5 chunks of rows, then half of the next line.
    sent_rows = 2 * CHUNK_ROWS + CHUNK_ROWS // 2
    sent = b"\r\n".join(lines[: 1 + sent_rows]) + b"\r\n" + lines[1 + sent_rows][:40]
    committed = 2 * CHUNK_ROWS
    # The size in the header, as `dosis upload` sends it.
    header = ingest_pb2.BatchHeader(mode=UPSERT, file_name="cut.csv", size_bytes=len(data))

    error = _cut_upload(stack, header, sent, wait_for=committed)
    # The client library cancels the call when its request iterator fails (UNKNOWN locally).
    assert error.code() in (grpc.StatusCode.CANCELLED, grpc.StatusCode.UNKNOWN), error
    seen = _settled_count(stack)
    assert seen == committed, f"{seen} rows stored after the cut, expected the {committed} of the whole chunks"

    # Re-sending the full file afterwards completes it.
    report = upload(stack, data, timeout=120)
    assert report.rejected == 0
    assert report.created + report.unchanged == total
    assert (report.created, report.unchanged) == (total - committed, committed)
    assert stored_count(stack) == total


def test_a_cut_replace_upload_deletes_nothing(stack):
    """A REPLACE_PRODUCT list cut off after a few whole lines is not the complete list:
    the dossiers it did not reach yet must stay."""
    existing = [row(f"P-{i:03d}") for i in range(100)]
    assert upload(stack, csv_bytes(existing)).created == 100
    data = csv_bytes(existing, line_end="\n")
    sent = b"".join(data.splitlines(keepends=True)[:11])  # the header and 10 whole rows
    header = ingest_pb2.BatchHeader(mode=REPLACE, product_id="1502", file_name="cut.csv", size_bytes=len(data))
    _cut_upload(stack, header, sent)
    time.sleep(0.5)  # whatever the server still does with the cut stream
    assert stored_count(stack) == 100, "a cut REPLACE_PRODUCT upload deleted dossiers it never reached"


@pytest.mark.parametrize("mode", [UPSERT, REPLACE])
def test_a_stream_ending_short_of_size_bytes_is_a_truncated_upload(stack, mode):
    """A sender that stops early (size_bytes says more was coming): the whole chunks stay,
    the rows after the last one are not stored, REPLACE_PRODUCT deletes nothing."""
    total = CHUNK_ROWS + 500
    older = [row(f"P-{i:04d}", when=T0 - timedelta(days=2)) for i in range(CHUNK_ROWS, total)]
    assert upload(stack, csv_bytes(older)).created == 500
    before = stored(stack)
    data = csv_bytes([row(f"P-{i:04d}", when=T0 - timedelta(days=1)) for i in range(total)], line_end="\n")
    sent = b"".join(data.splitlines(keepends=True)[: 1 + CHUNK_ROWS + 100])  # header, a chunk, 100 more rows
    header = ingest_pb2.BatchHeader(mode=mode, product_id="1502", file_name="short.csv", size_bytes=len(data))

    error = _cut_upload(stack, header, sent, wait_for=500 + CHUNK_ROWS, cut=False)
    from dosis.client import error_details

    details = error_details(error)
    assert (details.code, details.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "TRUNCATED_UPLOAD"), details
    assert "header.size_bytes" in details.fields()
    time.sleep(0.3)
    after = stored(stack)
    assert {key[2] for key in after} == {f"P-{i:04d}" for i in range(total)}  # nothing deleted
    for key, row_before in before.items():  # P-2000.. P-2099 arrived after the last whole chunk: not applied
        assert after[key]["status_time"] == row_before["status_time"], key


def test_a_cut_replace_upload_without_size_bytes_deletes_nothing(stack):
    """The contract's BatchHeader has no size: a client that follows it and loses its
    connection must not have its list completed (and the rest deleted) either.
    (grpc.aio ends the request iteration normally when the client cancels; whether the
    server then completes the cut file is a race, so several attempts.)"""
    existing = [row(f"P-{i:03d}") for i in range(100)]
    data = csv_bytes(existing, line_end="\n")
    sent = b"".join(data.splitlines(keepends=True)[:11])  # the header and 10 whole rows
    header = ingest_pb2.BatchHeader(mode=REPLACE, product_id="1502", file_name="cut.csv")
    for attempt in range(8):
        restored = upload(stack, csv_bytes(existing))
        assert restored.created + restored.unchanged == 100
        _cut_upload(stack, header, sent)
        time.sleep(0.3)
        assert stored_count(stack) == 100, f"attempt {attempt + 1}: a cut REPLACE_PRODUCT upload deleted dossiers"


def test_concurrent_uploads_of_the_same_new_dossiers_both_succeed(stack):
    """Two senders (or a retry racing the first attempt) with the same new rows: one creates
    them, the other finds them; neither fails."""
    for round_ in range(2):
        data = csv_bytes([row(f"CC{round_}-{i:04d}") for i in range(600)])
        results: list = []
        barrier = threading.Barrier(2)

        def send():
            barrier.wait()
            try:
                results.append(counts(upload(stack, data)))
            except grpc.RpcError as exc:
                results.append((exc.code(), exc.details()))

        threads = [threading.Thread(target=send) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert all(isinstance(r, dict) for r in results), results
        assert sorted(r["created"] for r in results)[1] + sorted(r["created"] for r in results)[0] == 600
        assert all(r["created"] + r["unchanged"] == 600 for r in results), results
    assert stored_count(stack) == 1200
