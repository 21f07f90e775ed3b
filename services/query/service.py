"""Wiring of the query service: the dossier store (read side) and the catalog client."""

from __future__ import annotations

from dosis.v1 import query_pb2_grpc
from services.common.config import Settings
from services.common.dossier_service import create_dossier_service
from services.common.server import Service
from services.telemetry import Telemetry
from services.query.servicer import POLICIES, QueryServicer


def create(settings: Settings, engine=None, telemetry: Telemetry | None = None) -> Service:
    return create_dossier_service(
        "query", settings, engine, telemetry,
        lambda engine, catalog, tel: QueryServicer(engine, catalog, tel, settings.catalog_token),
        query_pb2_grpc.add_QueryServiceServicer_to_server, POLICIES,
    )
