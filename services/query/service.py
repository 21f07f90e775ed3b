"""Wiring of the query service: the dossier store (read side), the catalog client, and the
audit trail's AuditService at the same address."""

from __future__ import annotations

from dosis.v1 import audit_pb2_grpc, query_pb2_grpc
from services.catalog.client import CatalogClient
from services.common.server import Hosted, Service
from services.common.wiring import wire_service
from services.query.audit_servicer import POLICIES as AUDIT_POLICIES
from services.query.audit_servicer import AuditServicer
from services.query.servicer import POLICIES, QueryServicer
from services.settings import Settings
from services.store.dossiers import DossierStore
from services.telemetry import Telemetry


def create(settings: Settings, engine=None, telemetry: Telemetry | None = None, audit_engine=None) -> Service:
    return wire_service(
        "query", settings, engine, telemetry,
        lambda engine, tel, audit: QueryServicer(
            DossierStore(engine, tel.tracer), CatalogClient(settings.catalog_addr, tel), tel, settings.catalog_token
        ),
        query_pb2_grpc.add_QueryServiceServicer_to_server, POLICIES, audit_engine,
        also=lambda audit: [Hosted(
            "dosis.v1.AuditService", AuditServicer(audit), audit_pb2_grpc.add_AuditServiceServicer_to_server,
            AUDIT_POLICIES,
        )],
    )
