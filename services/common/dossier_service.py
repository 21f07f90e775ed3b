"""Wiring shared by the two services over the dossier store (ingest writes, query reads):
the store's engine (migrated, instrumented), a catalog client, and closing them in order."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from services.common.auth import Policy
from services.common.catalog_client import CatalogClient
from services.common.config import Settings
from services.common.db import make_engine, migrate
from services.common.server import SERVICE_NAMES, Service
from services.telemetry import Telemetry


def create_dossier_service(
    name: str,
    settings: Settings,
    engine,
    telemetry: Telemetry | None,
    make_servicer: Callable[[object, CatalogClient, Telemetry], object],
    register: Callable,
    policies: Mapping[str, Policy],
) -> Service:
    telemetry = telemetry or Telemetry.disabled(name)
    owned = engine is None  # an engine handed in (tests) belongs to the caller
    engine = engine or make_engine(settings.database_url)
    migrate(engine, "store")
    telemetry.instrument_engine(engine)
    catalog = CatalogClient(settings.catalog_addr, telemetry)
    servicer = make_servicer(engine, catalog, telemetry)

    async def close():
        if hasattr(servicer, "close"):
            await servicer.close()
        await catalog.close()
        if owned:
            engine.dispose()

    return Service(
        full_name=SERVICE_NAMES[name],
        servicer=servicer,
        register=register,
        policies=policies,
        telemetry=telemetry,
        close=close,
    )
