"""Wiring of the query service: the dossier store (read side) and the catalog client."""

from __future__ import annotations

from dosis.v1 import query_pb2_grpc
from services.common.catalog_client import CatalogClient
from services.common.config import Settings
from services.common.db import make_engine, migrate
from services.common.server import SERVICE_NAMES, Service
from services.common.telemetry import Telemetry
from services.query.servicer import POLICIES, QueryServicer


def create(settings: Settings, engine=None, telemetry: Telemetry | None = None) -> Service:
    telemetry = telemetry or Telemetry.disabled("query")
    owned = engine is None
    engine = engine or make_engine(settings.database_url)
    migrate(engine, "store")
    telemetry.instrument_engine(engine)
    catalog = CatalogClient(settings.catalog_addr, telemetry)

    async def close():
        await catalog.close()
        if owned:
            engine.dispose()

    return Service(
        full_name=SERVICE_NAMES["query"],
        servicer=QueryServicer(engine, catalog, telemetry, settings.catalog_token),
        register=query_pb2_grpc.add_QueryServiceServicer_to_server,
        policies=POLICIES,
        telemetry=telemetry,
        close=close,
    )
