"""Small typed helpers for calling DOSIS from Python.

The stubs in dosis.v1 are enough to call DOSIS; these helpers add the two things every
caller needs: the bearer-token metadata, and reading DOSIS's error details (every error
carries a google.rpc.ErrorInfo with domain "dosis" and a reason to branch on, and
invalid input a google.rpc.BadRequest naming each bad field, and a rate-limited call a
google.rpc.RetryInfo with how long to wait).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

ERROR_DOMAIN = "dosis"


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    """Call metadata that authenticates with a DOSIS JWT."""
    return (("authorization", f"Bearer {token}"),)


@dataclass(frozen=True)
class FieldViolation:
    field: str
    reason: str
    description: str


@dataclass(frozen=True)
class ErrorDetails:
    """The parts of a DOSIS error a caller branches on."""

    code: grpc.StatusCode
    message: str
    reason: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    violations: tuple[FieldViolation, ...] = ()
    # From a google.rpc.RetryInfo (RESOURCE_EXHAUSTED, reason RATE_LIMITED): wait this long
    # before trying again. None when the error carries no RetryInfo.
    retry_delay: timedelta | None = None

    def fields(self) -> set[str]:
        return {v.field for v in self.violations}


def status_details(status: status_pb2.Status) -> ErrorDetails:
    """Read the details of a google.rpc.Status (also how stream items report REJECTED)."""
    reason, metadata, violations, retry_delay = "", {}, [], None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            if info.domain == ERROR_DOMAIN:
                reason, metadata = info.reason, dict(info.metadata)
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            violations.extend(
                FieldViolation(v.field, v.reason, v.description) for v in bad.field_violations
            )
        elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            retry = error_details_pb2.RetryInfo()
            detail.Unpack(retry)
            retry_delay = retry.retry_delay.ToTimedelta()
    code = _CODES.get(status.code, grpc.StatusCode.UNKNOWN)
    return ErrorDetails(code, status.message, reason, metadata, tuple(violations), retry_delay)


def error_details(error: grpc.RpcError) -> ErrorDetails:
    """Read the details of a failed call (sync or asyncio: both errors answer synchronously)."""
    try:
        status = rpc_status.from_call(error)
    except ValueError:
        # The details disagree with the call's own code or message (say a proxy replaced the
        # status): the call's status is what happened, the details are not about it.
        status = None
    if status is None:
        return ErrorDetails(error.code(), error.details() or "")
    return status_details(status)


_CODES = {code.value[0]: code for code in grpc.StatusCode}
