"""Wiring one service: its store's engine (checked, instrumented), its servicer, and
closing both in order. The same for all three services; only the parts differ."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from services.common.auth import Policy
from services.common.server import SERVICE_NAMES, Service
from services.settings import Settings
from services.store.engine import Engine, make_engine, require_schema
from services.telemetry import Telemetry

# The store each service works on: the dossier store ("store") or the catalog's own.
STORES = {"ingest": "store", "query": "store", "catalog": "catalog"}


def wire_service(
    name: str,
    settings: Settings,
    engine: Engine | None,
    telemetry: Telemetry | None,
    make_servicer: Callable[[Engine, Telemetry], object],
    register: Callable,
    policies: Mapping[str, Policy],
) -> Service:
    """A Service over `engine` (tests hand one in and dispose of it themselves) or over a
    new engine of the configured database. The store must be migrated already (`dosis up`'s
    preparation or `dosis migrate`): a service never changes a schema."""
    telemetry = telemetry or Telemetry.disabled(name)
    store = STORES[name]
    owned = engine is None
    engine = engine or make_engine(settings.catalog_database_url if store == "catalog" else settings.database_url)
    require_schema(engine, store)
    telemetry.instrument_engine(engine)
    servicer = make_servicer(engine, telemetry)

    async def close():
        if hasattr(servicer, "close"):
            await servicer.close()
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
