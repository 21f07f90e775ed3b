"""What the audit trail records of a call: the facts the interceptor (services.common.calls)
reads off the request and the answer, and the one recorder it hands them to.

Never a dossier's content or roles: the enterprise number a call named (canonical), how
many dossiers, statuses, rows or products it answered or stored, who called and how it
ended.
"""

from __future__ import annotations

import logging

from google.protobuf.message import Message
from opentelemetry import trace

from dosis.v1 import audit_pb2, catalog_pb2, dossier_status_pb2, ingest_pb2, query_pb2
from services.common.auth import Identity
from services.common.enterprise_number import InvalidEnterpriseNumber, canonical_enterprise_number
from services.store.audit import AuditEntry, AuditStore

log = logging.getLogger(__name__)

# Not about dossiers or the catalog: the fixed code list (no caller's data in it).
NOT_AUDITED = frozenset({"/dosis.v1.CatalogService/ListStatusCodes"})


def enterprise_of(request: object) -> str:
    """The canonical enterprise number a request names, or "" (none, several, or unreadable)."""
    if not isinstance(request, Message):
        return ""  # a request stream: many statuses, no one enterprise
    if isinstance(request, ingest_pb2.PushStatusRequest):
        text = request.status.enterprise_number
    else:
        text = getattr(request, "enterprise_number", "")
    try:
        return canonical_enterprise_number(text) if text else ""
    except InvalidEnterpriseNumber:
        return ""


def count_of(response: object) -> int:
    """Dossiers answered, statuses or rows stored, products answered or changed."""
    if isinstance(response, query_pb2.ListDossiersResponse):
        return len(response.dossiers)
    if isinstance(response, catalog_pb2.ListProductsResponse):
        return len(response.products)
    if isinstance(response, audit_pb2.ListAuditEventsResponse):
        return len(response.events)
    if isinstance(response, ingest_pb2.PushStatusResponse):
        return int(response.outcome != ingest_pb2.PUSH_OUTCOME_REJECTED)
    if isinstance(response, ingest_pb2.BatchReport):
        return response.created + response.updated + response.unchanged + response.stale + response.deleted
    if isinstance(response, catalog_pb2.CheckProductResponse):
        return int(response.exists)
    if isinstance(response, (dossier_status_pb2.DossierStatus, catalog_pb2.Product, ingest_pb2.DeleteDossierResponse)):
        return 1
    return 0


class CallRecorder:
    """Records one event per call of a service into the audit store."""

    def __init__(self, service: str, store: AuditStore):
        self.service = service  # dosis-ingest, dosis-query, dosis-catalog
        self._store = store

    def entry(self, rpc: str, identity: Identity, enterprise: str, outcome: str, count: int) -> AuditEntry:
        context = trace.get_current_span().get_span_context()
        return AuditEntry(
            service=self.service,
            rpc=rpc,
            subject=identity.supplier_id or identity.subject,
            supplier_id=identity.supplier_id,
            enterprise_number=enterprise,
            outcome=outcome,
            result_count=count,
            trace_id=format(context.trace_id, "032x") if context.is_valid else "",
        )

    async def record(self, rpc: str, identity: Identity, enterprise: str, outcome: str, count: int) -> None:
        """Returns once the event is durable; raises when it could not be stored."""
        await self._store.record(self.entry(rpc, identity, enterprise, outcome, count))
