"""Pushing statuses and reading them back, shared by the IngestService tests.

Stored state is read back through the QueryService (with a person token holding the dossier's
role) or, where the query service cannot tell (nothing stored, identity columns), straight from
the dossier store's engine. expect_error also checks the grpc-status-details-bin trailer.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import grpc
import pytest
import sqlalchemy as sa
from google.rpc import error_details_pb2, status_pb2

from dosis.client import ErrorDetails, error_details
from dosis.v1 import dossier_status_pb2 as pb
from dosis.v1 import ingest_pb2, query_pb2
from tests.helpers import ENTERPRISE_A, UTC, push_request

ROLE = "Bedrijfsleider"
UPPER_SNAKE = re.compile(r"^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$")
DETAILS_KEY = "grpc-status-details-bin"

CREATED = ingest_pb2.PUSH_OUTCOME_CREATED
UPDATED = ingest_pb2.PUSH_OUTCOME_UPDATED
UNCHANGED = ingest_pb2.PUSH_OUTCOME_UNCHANGED
STALE = ingest_pb2.PUSH_OUTCOME_STALE
REJECTED = ingest_pb2.PUSH_OUTCOME_REJECTED


def minutes_ago(n: float) -> datetime:
    return (datetime.now(UTC) - timedelta(minutes=n)).replace(microsecond=123456)


def push(stack, message: pb.DossierStatus, request_id: str = "", supplier: str = "VLAIO"):
    return stack.ingest.PushStatus(push_request(message, request_id), metadata=stack.as_supplier(supplier))


def check_rpc_status(raw: status_pb2.Status, code: grpc.StatusCode, reason: str | None) -> str:
    """The google.rpc.Status carries exactly one ErrorInfo, domain dosis, UPPER_SNAKE reason."""
    assert raw.code == code.value[0], (raw.code, raw.message)
    infos = []
    for detail in raw.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            infos.append(info)
    assert len(infos) == 1, f"expected exactly one ErrorInfo, got {infos}"
    assert infos[0].domain == "dosis"
    assert UPPER_SNAKE.match(infos[0].reason), infos[0].reason
    if reason is not None:
        assert infos[0].reason == reason, (infos[0].reason, raw.message)
    return infos[0].reason


def expect_error(
    call, request, *, code: grpc.StatusCode, reason: str | None = None, **kwargs
) -> ErrorDetails:
    """Call, expect failure with `code`; check the grpc-status-details-bin trailer; the details."""
    with pytest.raises(grpc.RpcError) as info:
        result = call(request, **kwargs)
        if hasattr(result, "__iter__") and not hasattr(result, "SerializeToString"):
            list(result)  # a response stream fails while it is read
    error = info.value
    assert error.code() == code, (error.code(), error.details())
    trailers = dict(error.trailing_metadata() or ())
    assert DETAILS_KEY in trailers, f"no {DETAILS_KEY} trailer: {error.details()}"
    raw = status_pb2.Status.FromString(trailers[DETAILS_KEY])
    check_rpc_status(raw, code, reason)
    details = error_details(error)
    assert details.code == code
    return details


def get_dossier(
    stack, enterprise=ENTERPRISE_A, product="1502", dossier="D-1", roles=(ROLE,)
) -> pb.DossierStatus:
    return stack.query.GetDossier(
        query_pb2.GetDossierRequest(enterprise_number=enterprise, product_id=product, dossier_id=dossier),
        metadata=stack.as_person(enterprise, *roles),
    )


def list_dossiers(stack, enterprise=ENTERPRISE_A, roles=(ROLE,)) -> list[pb.DossierStatus]:
    reply = stack.query.ListDossiers(
        query_pb2.ListDossiersRequest(enterprise_number=enterprise),
        metadata=stack.as_person(enterprise, *roles),
    )
    return list(reply.dossiers)


def stored_rows(stack) -> list[dict]:
    """Every row of the dossier store, straight from the database."""
    with stack.stores.dossiers.connect() as c:
        rows = c.execute(
            sa.text(
                "SELECT supplier_id, product_id, dossier_id, enterprise_number FROM dossiers "
                "ORDER BY supplier_id, product_id, dossier_id"
            )
        )
        return [dict(r._mapping) for r in rows]


def assert_nothing_stored(stack) -> None:
    assert stored_rows(stack) == []
    assert list_dossiers(stack) == []
