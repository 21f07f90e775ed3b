"""AuditService: the audit trail for the controller's auditors, served beside QueryService."""

from __future__ import annotations

from datetime import timezone

from dosis.v1 import audit_pb2, audit_pb2_grpc
from services.common import errors, page_tokens
from services.common.auth import Policy
from services.common.enterprise_number import InvalidEnterpriseNumber, canonical_enterprise_number
from services.common.errors import Violation
from services.common.timestamps import to_message
from services.store.audit import AuditEntry, AuditQuery, AuditRow, AuditStore

_UTC = timezone.utc

POLICIES = {"ListAuditEvents": Policy.AUDITOR}


# The event's fields that go out as they are stored (all but the time).
_EVENT_FIELDS = ("event_id", *AuditEntry.__dataclass_fields__)


def event_message(row: AuditRow) -> audit_pb2.AuditEvent:
    return audit_pb2.AuditEvent(**{name: getattr(row, name) for name in _EVENT_FIELDS}, time=to_message(row.time))


def audit_query(f: audit_pb2.AuditEventFilter) -> AuditQuery:
    enterprise = ""
    if f.enterprise_number:
        try:
            enterprise = canonical_enterprise_number(f.enterprise_number)
        except InvalidEnterpriseNumber as exc:
            raise errors.invalid_argument(
                [Violation("filter.enterprise_number", "INVALID_ENTERPRISE_NUMBER", str(exc))]
            ) from None
    start = f.start_time.ToDatetime(tzinfo=_UTC) if f.HasField("start_time") else None
    end = f.end_time.ToDatetime(tzinfo=_UTC) if f.HasField("end_time") else None
    if start is not None and end is not None and end <= start:
        raise errors.invalid_argument(
            [Violation("filter.end_time", "INVALID_TIME_RANGE", "must be after filter.start_time")]
        )
    return AuditQuery(start, end, f.subject, enterprise, f.rpc)


def _after(position: dict) -> int:
    seq = position["s"]
    if not isinstance(seq, int) or not 0 < seq < 2**63:
        raise ValueError("bad position")
    return seq


class AuditServicer(audit_pb2_grpc.AuditServiceServicer):
    def __init__(self, store: AuditStore):
        self._store = store

    async def ListAuditEvents(self, request, context):
        size = page_tokens.page_size(request.page_size)
        query = audit_query(request.filter)
        fingerprint = page_tokens.fingerprint("audit", query)
        after = page_tokens.decode(request.page_token, fingerprint, _after)
        rows = await self._store.list(query, after, size + 1)
        token = page_tokens.encode({"s": rows[size - 1].seq}, fingerprint) if len(rows) > size else ""
        return audit_pb2.ListAuditEventsResponse(events=[event_message(r) for r in rows[:size]], next_page_token=token)
