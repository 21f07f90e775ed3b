"""Wiring of the ingest service: the dossier store (write side), the catalog client, and the
periodic retention purge."""

from __future__ import annotations

from dataclasses import replace

from dosis.v1 import ingest_pb2_grpc
from services.catalog.client import CatalogClient
from services.common.server import Service
from services.common.wiring import wire_service
from services.ingest.purge import PeriodicPurge
from services.ingest.rate_limit import RateLimiter
from services.ingest.servicer import POLICIES, IngestServicer
from services.settings import Settings
from services.store.dossiers import DossierStore
from services.telemetry import Telemetry


def create(settings: Settings, engine=None, telemetry: Telemetry | None = None, audit_engine=None) -> Service:
    """The ingest service; called in the event loop that serves it (the purge task starts there)."""
    purging = PeriodicPurge(settings.purge_interval, settings.audit_retention_days)

    def servicer(engine, tel, audit):
        store = DossierStore(engine, tel.tracer, audit)
        purging.start(store, audit)
        return IngestServicer(
            store, CatalogClient(settings.catalog_addr, tel), tel, RateLimiter(settings.ingest_rate, settings.ingest_burst)
        )

    service = wire_service(
        "ingest", settings, engine, telemetry, servicer,
        ingest_pb2_grpc.add_IngestServiceServicer_to_server, POLICIES, audit_engine,
    )
    close = service.close

    async def stop_purging_then_close() -> None:
        await purging.stop()
        await close()

    return replace(service, close=stop_purging_then_close)
