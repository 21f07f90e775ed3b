"""Domain errors and their one mapping to gRPC status.

Code anywhere raises a DosisError; the call wrapper in services.common.calls turns it into
a google.rpc.Status carrying one ErrorInfo (domain "dosis", an UPPER_SNAKE reason),
for invalid input one BadRequest that names every bad field, and for a caller that should
come back later (a rate limit) one RetryInfo with the delay to wait. grpcio-status carries that
Status in the grpc-status-details-bin trailer, with its code and message as the call's own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

DOMAIN = "dosis"


@dataclass(frozen=True)
class Violation:
    field: str
    reason: str
    description: str


class DosisError(Exception):
    def __init__(
        self,
        code: grpc.StatusCode,
        reason: str,
        message: str,
        violations: list[Violation] | None = None,
        metadata: dict[str, str] | None = None,
        retry_delay: float | None = None,
    ):
        """retry_delay: seconds the caller should wait before trying again (a RetryInfo)."""
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.violations = list(violations or [])
        self.metadata = dict(metadata or {})
        self.retry_delay = retry_delay

    def to_status(self) -> status_pb2.Status:
        details = []
        info = any_pb2.Any()
        info.Pack(error_details_pb2.ErrorInfo(reason=self.reason, domain=DOMAIN, metadata=self.metadata))
        details.append(info)
        if self.violations:
            bad = any_pb2.Any()
            bad.Pack(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(
                            field=v.field, reason=v.reason, description=v.description
                        )
                        for v in self.violations
                    ]
                )
            )
            details.append(bad)
        if self.retry_delay is not None:
            delay = duration_pb2.Duration()
            # Whole milliseconds, rounded up: a caller that waits this long is not refused again.
            delay.FromMilliseconds(max(1, math.ceil(self.retry_delay * 1000)))
            retry = any_pb2.Any()
            retry.Pack(error_details_pb2.RetryInfo(retry_delay=delay))
            details.append(retry)
        return status_pb2.Status(code=self.code.value[0], message=self.message, details=details)

    def grpc_status(self) -> grpc.Status:
        """What a servicer context aborts with (abort_with_status)."""
        return rpc_status.to_status(self.to_status())


def invalid_argument(violations: list[Violation]) -> DosisError:
    """One INVALID_ARGUMENT for every bad field; the reason is the first field's."""
    fields = ", ".join(f"{v.field} ({v.description})" for v in violations)
    return DosisError(
        grpc.StatusCode.INVALID_ARGUMENT,
        violations[0].reason,
        f"invalid request: {fields}",
        violations,
        {"fields": ",".join(v.field for v in violations)},
    )


def require(message, *names: str) -> None:
    """INVALID_ARGUMENT naming every given request field that is empty, over 128
    characters or not printable (identifiers used to look something up)."""
    bad = []
    for name in names:
        value = getattr(message, name)
        if not value:
            bad.append(Violation(name, "REQUIRED", "is required"))
        elif len(value) > 128 or not value.isprintable():
            bad.append(Violation(name, "INVALID_IDENTIFIER", "must be 1-128 printable characters"))
    if bad:
        raise invalid_argument(bad)


def unauthenticated(reason: str, message: str) -> DosisError:
    return DosisError(grpc.StatusCode.UNAUTHENTICATED, reason, message)


def permission_denied(reason: str, message: str) -> DosisError:
    return DosisError(grpc.StatusCode.PERMISSION_DENIED, reason, message)


def not_found(reason: str, message: str) -> DosisError:
    return DosisError(grpc.StatusCode.NOT_FOUND, reason, message)


def failed_precondition(reason: str, message: str) -> DosisError:
    return DosisError(grpc.StatusCode.FAILED_PRECONDITION, reason, message)


def unavailable(reason: str, message: str) -> DosisError:
    return DosisError(grpc.StatusCode.UNAVAILABLE, reason, message)


def rate_limited(supplier_id: str, retry_delay: float) -> DosisError:
    """RESOURCE_EXHAUSTED, reason RATE_LIMITED, with a RetryInfo of `retry_delay` seconds."""
    return DosisError(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "RATE_LIMITED",
        f"supplier {supplier_id} is over its ingest rate limit; retry after the RetryInfo delay",
        retry_delay=retry_delay,
    )


def internal() -> DosisError:
    return DosisError(grpc.StatusCode.INTERNAL, "INTERNAL", "internal error; the operators have the details")
