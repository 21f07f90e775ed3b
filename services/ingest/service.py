"""Wiring of the ingest service: the dossier store and the catalog client."""

from __future__ import annotations

from dosis.v1 import ingest_pb2_grpc
from services.common.catalog_client import CatalogClient
from services.common.config import Settings
from services.common.db import make_engine, migrate
from services.common.server import SERVICE_NAMES, Service
from services.common.telemetry import Telemetry
from services.ingest.servicer import POLICIES, IngestServicer


def create(settings: Settings, engine=None, telemetry: Telemetry | None = None) -> Service:
    telemetry = telemetry or Telemetry.disabled("ingest")
    owned = engine is None
    engine = engine or make_engine(settings.database_url)
    migrate(engine, "store")
    telemetry.instrument_engine(engine)
    catalog = CatalogClient(settings.catalog_addr, telemetry)

    servicer = IngestServicer(engine, catalog, telemetry)

    async def close():
        await servicer.close()
        await catalog.close()
        if owned:
            engine.dispose()

    return Service(
        full_name=SERVICE_NAMES["ingest"],
        servicer=servicer,
        register=ingest_pb2_grpc.add_IngestServiceServicer_to_server,
        policies=POLICIES,
        telemetry=telemetry,
        close=close,
    )
