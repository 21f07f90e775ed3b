"""What an operator uses: run the services (up, serve), migrate the stores, the development
key pair, the catalog's product import, and the retention purge."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import replace

import click

from services.cli.failures import fail
from services.common.auth import ensure_dev_keys
from services.settings import Settings

DEFAULT_OTLP_ENDPOINT = "http://127.0.0.1:4317"


@click.command()
@click.option(
    "--trace", is_flag=True,
    help=f"export traces and metrics over OTLP (OTEL_EXPORTER_OTLP_ENDPOINT, default {DEFAULT_OTLP_ENDPOINT})",
)
@click.pass_obj
def up(settings: Settings, trace: bool) -> None:
    """Run ingest, query and catalog (SQLite in DOSIS_STATE_DIR unless configured otherwise)."""
    from services.runner import up as run_up

    if trace:
        settings = replace(settings, otel={"OTEL_EXPORTER_OTLP_ENDPOINT": DEFAULT_OTLP_ENDPOINT, **settings.otel})

    def ready(settings: Settings) -> None:
        from services.telemetry import exports

        endpoint = settings.otel.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        signals = " and ".join(name for name, signal in (("spans", "TRACES"), ("metrics", "METRICS"))
                               if exports(signal, settings.otel))
        if endpoint and signals:
            click.echo(
                f"""
Telemetry: {signals} go over OTLP/gRPC to {endpoint}
  (services dosis-ingest, dosis-query, dosis-catalog). No collector yet? Run one with a UI:
  docker compose up jaeger   then open http://localhost:16686 and pick service dosis-ingest."""
            )
        state = settings.state_dir
        click.echo(
            f"""
DOSIS is up.
  ingest   {settings.ingest_addr}
  query    {settings.query_addr}
  catalog  {settings.catalog_addr}
  state    {state}{"  (development signing key: never use it in production)" if settings.uses_dev_keys else ""}

Try it, in another terminal (with the same DOSIS_STATE_DIR):
  export DOSIS_TOKEN=$(dosis token supplier VLAIO)
  dosis push --enterprise 0316.380.841 --product 1502 --dossier KMO-1 --phase BEHANDELING_DOSSIER \\
             --status IN_BEHANDELING --role Bedrijfsleider --url https://www.vlaio.be/kmo-portefeuille
  export DOSIS_TOKEN=$(dosis token person 0316380841 --role Bedrijfsleider)
  dosis list 0316380841

Ctrl-C stops all three services.""",
            err=False,
        )

    sys.exit(run_up(settings, ready))


@click.command()
@click.argument("service", type=click.Choice(["ingest", "query", "catalog"]))
@click.pass_obj
def serve(settings: Settings, service: str) -> None:
    """Run one service in this process (as compose does)."""
    from services.runner import run_service

    run_service(service, settings)


@click.command()
@click.option(
    "--grant-to", "service_role", default="", metavar="ROLE",
    help="PostgreSQL: the services' own role, which gets read/write on dossiers and products and only "
         "INSERT/SELECT on the audit trail (run migrate as the owner role)",
)
@click.pass_obj
def migrate(settings: Settings, service_role: str) -> None:
    """Bring the stores to the newest schema (dossiers, catalog, audit trail)."""
    from services.runner import migrate_stores

    migrate_stores(settings, service_role)
    click.echo("the stores are at the newest schema" + (f"; {service_role} may use them" if service_role else ""))


@click.command()
@click.pass_obj
def keys(settings: Settings) -> None:
    """Create the development key pair in the state folder (if absent); print the JWKS path."""
    click.echo(ensure_dev_keys(settings.state_dir))


@click.group()
def catalog() -> None:
    """Manage the catalog's own store."""


@catalog.command("import")
@click.argument("source")
@click.option("--mapping", type=click.Path(exists=True, dir_okay=False), help="JSON {authority IRI: supplier id}")
@click.pass_obj
def catalog_import(settings: Settings, source: str, mapping: str | None) -> None:
    """Import products from an IPDC instance-snapshot feed (URL, first page file or folder)."""
    from services.catalog.ipdc_import import FeedError
    from services.catalog.service import import_feed
    from services.store.engine import make_engine, schema_error

    engine = make_engine(settings.catalog_database_url)
    try:
        # Migrating is `dosis migrate`'s job (and `dosis up`'s): an import never changes a schema.
        if (problem := schema_error(engine, "catalog")) is not None:
            fail(problem)
        count = import_feed(engine, source, mapping)
    except (FeedError, OSError, ValueError) as exc:
        fail(f"import failed, nothing stored: {exc}")
    finally:
        engine.dispose()
    click.echo(f"imported {count} products")


@click.command()
@click.pass_obj
def purge(settings: Settings) -> None:
    """Delete the dossiers whose visible_until has passed, now; print how many.

    The ingest service does the same every DOSIS_PURGE_INTERVAL seconds."""
    from services.ingest.purge import run_purge
    from services.store.audit import AuditStore
    from services.store.dossiers import DossierStore
    from services.store.engine import engine_for, make_engine, schema_error

    engine = make_engine(settings.database_url)
    audit_engine = engine_for(settings.audit_database_url, beside=engine)

    async def purge_once() -> int:
        audit = AuditStore(audit_engine)
        try:
            return await run_purge(DossierStore(engine), audit, settings.audit_retention_days, "dosis-cli")
        finally:
            await audit.close()

    try:
        for problem in (schema_error(engine, "store"), schema_error(audit_engine, "audit")):
            if problem is not None:
                fail(problem)
        count = asyncio.run(purge_once())
    finally:
        engine.dispose()
        audit_engine.dispose()
    click.echo(f"purged {count} expired dossiers")


COMMANDS = (up, serve, migrate, keys, catalog, purge)
