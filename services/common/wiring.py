"""Wiring one service: its store's engine and the audit store (checked, instrumented), its
servicer, and closing them in order. The same for all three services; only the parts differ."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from services.common.auth import Policy
from services.common.server import SERVICE_NAMES, Hosted, Service
from services.settings import Settings
from services.store.audit import AuditStore
from services.store.engine import Engine, engine_for, make_engine, require_schema
from services.telemetry import Telemetry

# The store each service works on: the dossier store ("store") or the catalog's own.
STORES = {"ingest": "store", "query": "store", "catalog": "catalog"}


def wire_service(
    name: str,
    settings: Settings,
    engine: Engine | None,
    telemetry: Telemetry | None,
    make_servicer: Callable[[Engine, Telemetry, AuditStore], object],
    register: Callable,
    policies: Mapping[str, Policy],
    audit_engine: Engine | None = None,
    also: Callable[[AuditStore], list[Hosted]] = lambda audit: [],
) -> Service:
    """A Service over `engine` (tests hand one in and dispose of it themselves) or over a
    new engine of the configured database, recording its calls in the audit store
    (`audit_engine`, or the configured one: the service's own engine when the URLs agree).
    The stores must be migrated already (`dosis up`'s preparation or `dosis migrate`): a
    service never changes a schema. `also`: more gRPC services on the same server."""
    telemetry = telemetry or Telemetry.disabled(name)
    store = STORES[name]
    owned = []  # engines made here, disposed of here
    if engine is None:
        engine = make_engine(settings.catalog_database_url if store == "catalog" else settings.database_url)
        owned.append(engine)
    require_schema(engine, store)
    telemetry.instrument_engine(engine)
    if audit_engine is None:
        audit_engine = engine_for(settings.audit_database_url, beside=engine)
        if audit_engine is not engine:
            owned.append(audit_engine)
            telemetry.instrument_engine(audit_engine)
    require_schema(audit_engine, "audit")
    audit = AuditStore(audit_engine)
    servicer = make_servicer(engine, telemetry, audit)

    async def close():
        if hasattr(servicer, "close"):
            await servicer.close()
        await audit.close()
        for one in owned:
            one.dispose()

    return Service(
        label=f"dosis-{name}",
        hosted=[Hosted(SERVICE_NAMES[name], servicer, register, policies), *also(audit)],
        telemetry=telemetry,
        audit=audit,
        close=close,
    )
