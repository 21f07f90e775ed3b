"""Wiring of the ingest service: the dossier store (write side) and the catalog client."""

from __future__ import annotations

from dosis.v1 import ingest_pb2_grpc
from services.catalog.client import CatalogClient
from services.common.server import Service
from services.common.wiring import wire_service
from services.ingest.rate_limit import RateLimiter
from services.ingest.servicer import POLICIES, IngestServicer
from services.settings import Settings
from services.store.dossiers import DossierStore
from services.telemetry import Telemetry


def create(settings: Settings, engine=None, telemetry: Telemetry | None = None) -> Service:
    return wire_service(
        "ingest", settings, engine, telemetry,
        lambda engine, tel: IngestServicer(
            DossierStore(engine, tel.tracer), CatalogClient(settings.catalog_addr, tel), tel,
            RateLimiter(settings.ingest_rate, settings.ingest_burst),
        ),
        ingest_pb2_grpc.add_IngestServiceServicer_to_server, POLICIES,
    )
