"""Bad input over the wire: random bytes as the request frames of every RPC (with a token the
method accepts), and forged or unfit tokens. Each call ends in a clean status within its
deadline, never INTERNAL or UNKNOWN; the stored data is unchanged; the servers keep serving.
"""

from __future__ import annotations

import base64
import random
from collections import Counter

import grpc
import pytest
import sqlalchemy as sa
from google.protobuf import message_factory
from google.protobuf.message import DecodeError

from dosis.v1 import catalog_pb2, query_pb2
from tests.helpers import ENTERPRISE_A, status
from tests.ingest_helpers import get_dossier, push, stored_rows
from tests.rpc_helpers import ADDRESS, TABLE, call, full_name, metadata_for, methods, row_of

# Codes that would mean the server failed (or hung) rather than refused the input.
NOT_CLEAN = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DEADLINE_EXCEEDED}
PREFERRED_CALLERS = ("supplier", "person", "catalog-admin", "auditor", "no-token")


def caller_for(method) -> str:
    allowed = row_of(method).allowed
    return next(c for c in PREFERRED_CALLERS if c in allowed)


def garbage_frames(rng: random.Random) -> list[bytes]:
    """Random bytes, and a few shapes that strain a protobuf parser."""
    frames = [rng.randbytes(rng.randint(1, 300)) for _ in range(12)]
    frames += [
        b"\xff" * 12,  # a varint that never ends
        b"\x0a\xff\xff\xff\xff\x0f",  # field 1, length-delimited, 4 GB long
        b"\x7b" * 5000,  # field 15 start-group, nested 5000 deep
        b"\x0a\x02\x0a",  # field 1 claims two bytes, has one
        bytes([0x08, 0x80]),  # a truncated varint
        b"\x12\x03\xff\xfe\xfd",  # a string field with invalid UTF-8
    ]
    return frames


def parses(method, frame: bytes) -> bool:
    try:
        message_factory.GetMessageClass(method.input_type).FromString(frame)
    except DecodeError:
        return False
    return True


def _products(stack) -> list[tuple]:
    with stack.stores.catalog.connect() as c:
        return [tuple(r) for r in c.execute(sa.text("SELECT id, name, active FROM products ORDER BY id"))]


@pytest.mark.parametrize("stores", ["sqlite"], indirect=True)
def test_random_frames_on_every_rpc_end_cleanly_and_change_nothing(stack):
    push(stack, status(dossier="D-kept"))
    dossiers, products = stored_rows(stack), _products(stack)
    rng = random.Random(21)
    unclean: list[str] = []
    outcomes: Counter[str] = Counter()
    for method in methods():
        channel = stack.channels[ADDRESS[method.containing_service.full_name]]
        metadata = metadata_for(stack.settings, caller_for(method))
        frames = garbage_frames(rng)
        batches = [frames[i : i + 3] for i in range(0, len(frames), 3)] if method.client_streaming else [[f] for f in frames]
        for batch in batches:
            code, details = call(channel, method, batch, metadata, timeout=10)
            where = f"{full_name(method)} {batch[0][:16]!r}…: {code.name} {details and details.message}"
            if code in NOT_CLEAN or (code != grpc.StatusCode.OK and not details.reason):
                unclean.append(where)  # a failure, or an error without DOSIS's ErrorInfo
            elif not parses(method, batch[0]) and (code, details.reason) != (
                grpc.StatusCode.INVALID_ARGUMENT, "UNREADABLE_REQUEST"
            ):
                unclean.append(f"unreadable, expected INVALID_ARGUMENT UNREADABLE_REQUEST: {where}")
            outcomes[code.name] += 1
    assert not unclean, "\n".join(unclean)
    assert outcomes["INVALID_ARGUMENT"] > len(methods()) * 3, outcomes
    assert stored_rows(stack) == dossiers
    assert _products(stack) == products
    # Still serving, every service.
    assert get_dossier(stack, dossier="D-kept").dossier_id == "D-kept"
    assert push(stack, status(dossier="D-after")).outcome
    reply = stack.catalog.ListStatusCodes(catalog_pb2.ListStatusCodesRequest(), metadata=stack.as_supplier())
    assert len(reply.status_codes) == 23


@pytest.mark.parametrize("stores", ["sqlite"], indirect=True)
def test_every_method_is_fuzzed(stack):
    """Each method reaches its handler with the chosen token (a valid request is not refused
    for who calls), so the garbage above is judged by the method, not by authorization."""
    for method in methods():
        channel = stack.channels[ADDRESS[method.containing_service.full_name]]
        frames = [m.SerializeToString() for m in TABLE[full_name(method)].request()]
        code, details = call(channel, method, frames, metadata_for(stack.settings, caller_for(method)))
        assert code in (grpc.StatusCode.OK, grpc.StatusCode.NOT_FOUND), (full_name(method), code, details)


def test_a_deeply_nested_page_token_is_invalid_argument_over_grpc(stack):
    token = base64.urlsafe_b64encode(b"[" * 3000).decode()
    with pytest.raises(grpc.RpcError) as info:
        stack.query.ListPublicDossiers(query_pb2.ListPublicDossiersRequest(enterprise_number=ENTERPRISE_A, page_token=token))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
