"""A DosisError's status on the wire and back, on real calls (sync and asyncio channels):
the server aborts with grpcio-status, dosis.client reads it back with grpcio-status.

The dosis services' own errors are checked call by call in the ingest tests (expect_error in
tests/ingest_helpers.py); here a bare server sends exactly the status under test, including
ones DOSIS never sends.
"""

from __future__ import annotations

import grpc
import pytest
from google.rpc import status_pb2
from grpc import aio

from dosis.client import ErrorDetails, FieldViolation, error_details
from services.common import errors
from services.common.errors import Violation

DETAILS_KEY = "grpc-status-details-bin"
METHOD = "/dosis.test.Errors/Fail"

# Non-ASCII on purpose: grpc-message is percent-encoded on the wire and must come back equal.
INVALID = errors.invalid_argument(
    [
        Violation("status.product_id", "INVALID_PRODUCT_ID", "is required"),
        Violation("status.detail_status", "FIELD_TOO_LONG", "mag ten hoogste 200 tekens tellen (é, ✓)"),
    ]
)


@pytest.fixture
def server(loop_thread):
    """A grpc.aio server whose one method aborts with whatever the test put in `fail`."""
    fail = {}

    async def handler(request: bytes, context: aio.ServicerContext) -> bytes:
        await fail["with"](context)
        return b""

    async def start():
        srv = aio.server()
        methods = {"Fail": grpc.unary_unary_rpc_method_handler(handler)}
        srv.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("dosis.test.Errors", methods)])
        port = srv.add_insecure_port("127.0.0.1:0")
        await srv.start()
        return srv, port

    srv, port = loop_thread.run(start())
    yield fail, f"127.0.0.1:{port}"
    loop_thread.run(srv.stop(None))


def _sync_error(address: str) -> grpc.RpcError:
    with grpc.insecure_channel(address) as channel, pytest.raises(grpc.RpcError) as info:
        channel.unary_unary(METHOD)(b"")
    return info.value


def _aio_error(address: str, loop_thread) -> grpc.RpcError:
    async def call():
        async with aio.insecure_channel(address) as channel:
            try:
                await channel.unary_unary(METHOD)(b"")
            except aio.AioRpcError as exc:
                return exc
        raise AssertionError("the call did not fail")

    return loop_thread.run(call())


@pytest.mark.parametrize("kind", ["sync", "asyncio"])
def test_a_dosis_error_reaches_the_client_whole(server, loop_thread, kind):
    fail, address = server

    async def abort(context):
        await context.abort_with_status(INVALID.grpc_status())

    fail["with"] = abort
    error = _sync_error(address) if kind == "sync" else _aio_error(address, loop_thread)
    # The call's own status is the error's, and the trailer carries exactly its google.rpc.Status.
    assert (error.code(), error.details()) == (grpc.StatusCode.INVALID_ARGUMENT, INVALID.message)
    trailer = dict(error.trailing_metadata())[DETAILS_KEY]
    assert status_pb2.Status.FromString(trailer) == INVALID.to_status()
    assert error_details(error) == ErrorDetails(
        grpc.StatusCode.INVALID_ARGUMENT,
        INVALID.message,
        "INVALID_PRODUCT_ID",
        {"fields": "status.product_id,status.detail_status"},
        (
            FieldViolation("status.product_id", "INVALID_PRODUCT_ID", "is required"),
            FieldViolation("status.detail_status", "FIELD_TOO_LONG", INVALID.violations[1].description),
        ),
    )


def test_details_that_disagree_with_the_call_are_not_believed(server):
    """Say a proxy replaced the status but passed the trailer on: the call's own code and
    message are what happened, so no reason is read from a status about something else."""
    fail, address = server
    for code, message in ((grpc.StatusCode.UNAVAILABLE, INVALID.message), (INVALID.code, "something else")):

        async def abort(context, code=code, message=message):
            trailer = ((DETAILS_KEY, INVALID.to_status().SerializeToString()),)
            await context.abort(code, message, trailing_metadata=trailer)

        fail["with"] = abort
        assert error_details(_sync_error(address)) == ErrorDetails(code, message)


def test_an_error_without_details_gives_its_code_and_message(server):
    fail, address = server

    async def abort(context):
        await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "too many calls")

    fail["with"] = abort
    details = error_details(_sync_error(address))
    assert details == ErrorDetails(grpc.StatusCode.RESOURCE_EXHAUSTED, "too many calls")
