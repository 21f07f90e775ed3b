"""Builders shared by the tests: valid statuses, tokens, error reading."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import grpc
import pytest
from google.protobuf import timestamp_pb2

from dosis.client import ErrorDetails, bearer, error_details
from dosis.v1 import dossier_status_pb2 as pb
from dosis.v1 import ingest_pb2

UTC = timezone.utc

# Valid enterprise numbers (mod-97 check digits).
ENTERPRISE_A = "0316380841"
ENTERPRISE_B = "0534669938"
ENTERPRISE_C = "0687655467"
ENTERPRISE_D = "0203201340"


def ts(value: datetime) -> timestamp_pb2.Timestamp:
    out = timestamp_pb2.Timestamp()
    out.FromDatetime(value)
    return out


def status(
    enterprise: str = ENTERPRISE_A,
    product: str = "1502",
    dossier: str = "D-1",
    *,
    phase: int = pb.STATUS_PHASE_BEHANDELING_DOSSIER,
    code: int = pb.STATUS_CODE_IN_BEHANDELING,
    when: datetime | None = None,
    roles: tuple[str, ...] = ("Bedrijfsleider",),
    public: bool = False,
    **fields,
) -> pb.DossierStatus:
    """A valid DossierStatus for product 1502 (served by VLAIO in the demo catalog)."""
    message = pb.DossierStatus(
        enterprise_number=enterprise,
        product_id=product,
        dossier_id=dossier,
        phase=phase,
        status=code,
        status_time=ts(when or datetime.now(UTC) - timedelta(minutes=1)),
        reference=pb.Reference(url="https://www.vlaio.be/dossier"),
        required_roles=list(roles),
        public=public,
    )
    for name, value in fields.items():
        if name == "reference":
            message.reference.CopyFrom(value)
        elif isinstance(value, datetime):
            getattr(message, name).CopyFrom(ts(value))
        else:
            setattr(message, name, value)
    return message


def push_request(message: pb.DossierStatus, request_id: str = "") -> ingest_pb2.PushStatusRequest:
    return ingest_pb2.PushStatusRequest(status=message, request_id=request_id)


def rpc_error(call, *args, **kwargs) -> ErrorDetails:
    """Call and expect failure; the error's details."""
    with pytest.raises(grpc.RpcError) as info:
        call(*args, **kwargs)
    return error_details(info.value)


def wait_until(condition, timeout: float = 10.0, interval: float = 0.05) -> bool:
    """Poll `condition` until it holds or `timeout` seconds have passed; whether it holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


__all__ = ["bearer", "rpc_error", "status", "push_request", "ts", "UTC"]
