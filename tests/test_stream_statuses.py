"""StreamStatuses: one answer per item, in order, interleaved with the requests; a bad item
does not end the stream."""

from __future__ import annotations

import threading

import grpc

from dosis.client import status_details
from dosis.v1 import dossier_status_pb2 as pb
from dosis.v1 import ingest_pb2
from tests.helpers import push_request, status, ts
from tests.ingest_helpers import (
    CREATED, REJECTED, STALE, UNCHANGED, check_rpc_status, get_dossier, minutes_ago, stored_rows,
)


def test_stream_answers_every_item_in_order_and_goes_on(stack):
    t1, t0 = minutes_ago(10), minutes_ago(20)
    requests = [
        push_request(status(dossier="D-1", when=t1), "good-1"),
        push_request(
            status("0316380842", dossier="D-9", reference=pb.Reference(url="http://x.be")), "bad-fields"
        ),
        push_request(status(product="2031", dossier="D-8"), "bad-supplier"),
        ingest_pb2.PushStatusRequest(request_id="bad-missing"),
        push_request(status(product="9999", dossier="D-7"), "bad-product"),
        push_request(status(product="1001", dossier="D-6"), "bad-inactive"),
        push_request(status(dossier="D-2", when=t1), "good-2"),
        push_request(status(dossier="D-1", when=t1), "same-1"),
        push_request(status(dossier="D-1", when=t0), "old-1"),
        push_request(status(dossier="D-3", when=t1, public=True, roles=()), "good-3"),
    ]
    replies = list(stack.ingest.StreamStatuses(iter(requests), metadata=stack.as_supplier()))

    assert [r.request_id for r in replies] == [r.request_id for r in requests]
    assert [r.outcome for r in replies] == [
        CREATED, REJECTED, REJECTED, REJECTED, REJECTED, REJECTED, CREATED, UNCHANGED, STALE, CREATED
    ]  # fmt: skip
    for reply in replies:
        assert reply.HasField("error") == (reply.outcome == REJECTED), reply.request_id

    by_id = {r.request_id: r for r in replies}
    fields = status_details(by_id["bad-fields"].error)
    assert fields.code == grpc.StatusCode.INVALID_ARGUMENT
    assert {(v.field, v.reason) for v in fields.violations} == {
        ("status.enterprise_number", "INVALID_ENTERPRISE_NUMBER"),
        ("status.reference.url", "INVALID_REFERENCE_URL"),
    }
    check_rpc_status(by_id["bad-fields"].error, grpc.StatusCode.INVALID_ARGUMENT, None)
    check_rpc_status(by_id["bad-supplier"].error, grpc.StatusCode.PERMISSION_DENIED, "SUPPLIER_NOT_ALLOWED")
    check_rpc_status(by_id["bad-missing"].error, grpc.StatusCode.INVALID_ARGUMENT, "MISSING_STATUS")
    assert status_details(by_id["bad-missing"].error).fields() == {"status"}
    check_rpc_status(by_id["bad-product"].error, grpc.StatusCode.FAILED_PRECONDITION, "UNKNOWN_PRODUCT")
    check_rpc_status(by_id["bad-inactive"].error, grpc.StatusCode.FAILED_PRECONDITION, "PRODUCT_INACTIVE")
    assert status_details(by_id["bad-supplier"].error).reason == "SUPPLIER_NOT_ALLOWED"

    assert [(r["product_id"], r["dossier_id"]) for r in stored_rows(stack)] == [
        ("1502", "D-1"),
        ("1502", "D-2"),
        ("1502", "D-3"),
    ]
    assert get_dossier(stack, dossier="D-1").status_time == ts(t1)


def test_stream_interleaves_answers_with_requests(stack):
    """Each answer comes before the next request is sent: a true bidi stream, not a batch."""
    answered = threading.Event()
    seen: list[str] = []

    def requests():
        yield push_request(status(dossier="D-1"), "first")
        assert answered.wait(5), "no answer to the first item before the second was sent"
        yield push_request(status("bad"), "second")
        yield push_request(status(dossier="D-2"), "third")

    for reply in stack.ingest.StreamStatuses(requests(), metadata=stack.as_supplier()):
        seen.append(reply.request_id)
        answered.set()
    assert seen == ["first", "second", "third"]
    assert len(stored_rows(stack)) == 2


def _stream_replies(stack, requests) -> tuple[list[ingest_pb2.PushStatusResponse], grpc.RpcError | None]:
    """All answers of one stream, and the error that ended it early, if any."""
    replies = []
    try:
        for reply in stack.ingest.StreamStatuses(iter(requests), metadata=stack.as_supplier()):
            replies.append(reply)
    except grpc.RpcError as error:
        return replies, error
    return replies, None


def test_stream_goes_on_after_an_out_of_range_timestamp(stack):
    """A Timestamp past year 9999 is one bad item (REJECTED), not the end of the stream."""
    odd = status(dossier="D-9")
    odd.status_time.seconds = 253_402_300_800  # 10000-01-01T00:00:00Z
    requests = [
        push_request(status(dossier="D-1"), "good-1"),
        push_request(odd, "year-10000"),
        push_request(status(dossier="D-2"), "good-2"),
    ]
    replies, error = _stream_replies(stack, requests)
    assert error is None, f"stream ended after {len(replies)} answers: {error.code()} {error.details()}"
    assert [(r.request_id, r.outcome) for r in replies] == [
        ("good-1", CREATED),
        ("year-10000", REJECTED),
        ("good-2", CREATED),
    ]
    details = status_details(replies[1].error)
    assert details.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "status.status_time" in details.fields()
    assert [r["dossier_id"] for r in stored_rows(stack)] == ["D-1", "D-2"]


def test_stream_goes_on_after_a_nul_character(stack):
    """A NUL in a text field is one item's problem on both backends, not the end of the stream."""
    requests = [
        push_request(status(dossier="D-1"), "good-1"),
        push_request(status(dossier="D-9", detail_status="voor\x00na"), "nul"),
        push_request(status(dossier="D-2"), "good-2"),
    ]
    replies, error = _stream_replies(stack, requests)
    assert error is None, f"stream ended after {len(replies)} answers: {error.code()} {error.details()}"
    assert [r.request_id for r in replies] == ["good-1", "nul", "good-2"]
    assert replies[0].outcome == CREATED and replies[2].outcome == CREATED
    if replies[1].outcome == REJECTED:
        nul = status_details(replies[1].error)
        assert nul.code == grpc.StatusCode.INVALID_ARGUMENT
        assert "status.detail_status" in nul.fields()
    else:
        assert replies[1].outcome == CREATED
    assert {"D-1", "D-2"} <= {r["dossier_id"] for r in stored_rows(stack)}
