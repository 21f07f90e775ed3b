"""Wiring of the query service: the dossier store (read side) and the catalog client."""

from __future__ import annotations

from dosis.v1 import query_pb2_grpc
from services.catalog.client import CatalogClient
from services.common.server import Service
from services.common.wiring import wire_service
from services.query.servicer import POLICIES, QueryServicer
from services.settings import Settings
from services.store.dossiers import DossierStore
from services.telemetry import Telemetry


def create(settings: Settings, engine=None, telemetry: Telemetry | None = None) -> Service:
    return wire_service(
        "query", settings, engine, telemetry,
        lambda engine, tel: QueryServicer(
            DossierStore(engine, tel.tracer), CatalogClient(settings.catalog_addr, tel), tel, settings.catalog_token
        ),
        query_pb2_grpc.add_QueryServiceServicer_to_server, POLICIES,
    )
