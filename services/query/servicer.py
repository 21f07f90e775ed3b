"""QueryService: visibility, filters, keyset pages, product names."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timezone

from opentelemetry import trace

from dosis.v1 import dossier_status_pb2 as pb
from dosis.v1 import query_pb2, query_pb2_grpc
from services.catalog.client import CatalogClient
from services.common import errors, page_tokens
from services.common.auth import Identity, Policy
from services.common.calls import change_event, change_recorded, current_identity
from services.common.enterprise_number import InvalidEnterpriseNumber, canonical_enterprise_number
from services.common.errors import Violation
from services.common.rules import PHASES, STATUS_CODES
from services.common.timestamps import to_message
from services.store import repository
from services.store.dossiers import DossierStore
from services.store.models import Dossier
from services.telemetry import Telemetry

POLICIES = {
    "ListDossiers": Policy.PERSON,
    "GetDossier": Policy.PERSON,
    "ListPublicDossiers": Policy.NONE,
}


def dossier_message(row: Dossier, product_name: str) -> pb.DossierStatus:
    """The wire form of a stored dossier. required_roles is never copied out."""
    return pb.DossierStatus(
        enterprise_number=row.enterprise_number,
        product_id=row.product_id,
        dossier_id=row.dossier_id,
        phase=row.phase,
        status=row.status,
        detail_status=row.detail_status,
        status_time=to_message(row.status_time),
        reference=pb.Reference(url=row.reference_url, email=row.reference_email, contact=row.reference_contact),
        public=row.public,
        supplier_id=row.supplier_id,
        action_required=row.action_required,
        action=row.action,
        visible_until=to_message(row.visible_until),
        product_name=product_name,
        update_time=to_message(row.update_time),
    )


def _enterprise(text: str) -> str:
    try:
        return canonical_enterprise_number(text)
    except InvalidEnterpriseNumber as exc:
        raise errors.invalid_argument([Violation("enterprise_number", "INVALID_ENTERPRISE_NUMBER", str(exc))])


def _own_enterprise(text: str, identity: Identity) -> str:
    enterprise = _enterprise(text)
    try:
        own = canonical_enterprise_number(identity.enterprise_number)
    except InvalidEnterpriseNumber:
        own = None
    if enterprise != own:
        raise errors.permission_denied(
            "ENTERPRISE_MISMATCH", "the token's dosis_enterprise is not the enterprise asked for"
        )
    return enterprise


def _position(data: dict) -> repository.Position:
    time, row_id = datetime.fromisoformat(data["t"]), data["i"]
    if time.tzinfo is None or not isinstance(row_id, int) or not 0 < row_id < 2**63:
        raise ValueError("bad position")
    return time, row_id


def _filters(request: query_pb2.ListDossiersRequest) -> repository.ListFilter:
    f = request.filter
    bad = []
    if any(p not in PHASES for p in f.phases):
        bad.append(Violation("filter.phases", "INVALID_PHASE", "must be StatusPhase values, not UNSPECIFIED"))
    if any(s not in STATUS_CODES for s in f.statuses):
        bad.append(Violation("filter.statuses", "INVALID_STATUS", "must be StatusCode values, not UNSPECIFIED"))
    if any(not p or len(p) > 128 or not p.isprintable() for p in f.product_ids):
        bad.append(Violation("filter.product_ids", "INVALID_PRODUCT_ID", "must be 1-128 printable characters each"))
    if bad:
        raise errors.invalid_argument(bad)
    return repository.ListFilter(
        phases=tuple(sorted(set(f.phases))),
        statuses=tuple(sorted(set(f.statuses))),
        product_ids=tuple(sorted(set(f.product_ids))),
        changed_since=f.changed_since.ToDatetime(timezone.utc) if f.HasField("changed_since") else None,
    )


def _read_event(store: DossierStore, enterprise: str, count: Callable[[object], int | None]):
    """The read's audit event, for the store to commit with the read (reads_record_events):
    what the read found → the event with its count, or None for no event."""
    if not store.reads_record_events or (template := change_event(enterprise, 0)) is None:
        return None

    def event(found):
        n = count(found)
        return None if n is None else replace(template, result_count=n)

    return event


class QueryServicer(query_pb2_grpc.QueryServiceServicer):
    def __init__(self, store: DossierStore, catalog: CatalogClient, telemetry: Telemetry, catalog_token: str = ""):
        self._store = store
        self._catalog = catalog
        self._telemetry = telemetry
        self._catalog_token = catalog_token

    async def _page(self, enterprise, viewer, filters, page_size, page_token, kind) -> query_pb2.ListDossiersResponse:
        size = page_tokens.page_size(page_size)
        query = page_tokens.fingerprint(kind, enterprise, filters)
        after = page_tokens.decode(page_token, query, _position)
        event = _read_event(self._store, enterprise, lambda found: min(len(found), size))
        rows = await self._store.list_visible(enterprise, viewer, filters, after, size + 1, event)
        if event is not None:
            change_recorded()
        token = ""
        if len(rows) > size:
            last = rows[size - 1]
            token = page_tokens.encode({"t": last.status_time.isoformat(), "i": last.id}, query)
        rows = rows[:size]
        self._telemetry.page_sizes.record(len(rows), {"rpc.method": kind})
        trace.get_current_span().set_attribute("dosis.page_size", len(rows))
        names = await self._names({r.product_id for r in rows})
        return query_pb2.ListDossiersResponse(
            dossiers=[dossier_message(r, names.get(r.product_id, "")) for r in rows], next_page_token=token
        )

    async def _names(self, product_ids: set[str]) -> dict[str, str]:
        token = current_identity().token or self._catalog_token
        if not product_ids or not token:
            return {}
        return await self._catalog.product_names(product_ids, token)

    async def ListDossiers(self, request, context):
        identity = current_identity()
        enterprise = _own_enterprise(request.enterprise_number, identity)
        viewer = repository.Viewer(roles=identity.roles)
        return await self._page(
            enterprise, viewer, _filters(request), request.page_size, request.page_token, "ListDossiers"
        )

    async def ListPublicDossiers(self, request, context):
        enterprise = _enterprise(request.enterprise_number)
        viewer = repository.Viewer(public_only=True)
        return await self._page(
            enterprise, viewer, repository.ListFilter(), request.page_size, request.page_token, "ListPublicDossiers"
        )

    async def GetDossier(self, request, context):
        identity = current_identity()
        enterprise = _own_enterprise(request.enterprise_number, identity)
        errors.require(request, "product_id", "dossier_id")
        viewer = repository.Viewer(roles=identity.roles)
        # A dossier not found is NOT_FOUND: its event is the interceptor's, not the read's.
        event = _read_event(self._store, enterprise, lambda found: 1 if found is not None else None)
        row = await self._store.get_visible(
            enterprise, viewer, request.product_id, request.dossier_id, request.supplier_id, event
        )
        if row is None:
            raise errors.not_found("DOSSIER_NOT_FOUND", "no such dossier, or not visible to this person")
        if event is not None:
            change_recorded()
        names = await self._names({row.product_id})
        return dossier_message(row, names.get(row.product_id, ""))

    async def close(self) -> None:
        await self._store.close()
        await self._catalog.close()
