"""The `dosis` command: run the services, mint development tokens, try the API by hand."""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import datetime, timezone

import click
import grpc
from google.protobuf import timestamp_pb2

from dosis.client import bearer, error_details
from dosis.v1 import dossier_status_pb2 as pb
from dosis.v1 import ingest_pb2, ingest_pb2_grpc, query_pb2, query_pb2_grpc
from services.common import labels
from services.common.auth import ADMIN_ROLES, ensure_dev_keys, mint_dev_token
from services.common.config import load_settings
from services.common.enterprise_number import InvalidEnterpriseNumber, canonical_enterprise_number


def _settings():
    return load_settings()


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def _rpc_failure(err: grpc.RpcError) -> None:
    details = error_details(err)
    click.echo(f"error: {details.code.name} {details.reason}: {details.message}", err=True)
    for v in details.violations:
        click.echo(f"  {v.field}: {v.description} ({v.reason})", err=True)
    sys.exit(1)


@click.group()
@click.option("--log-level", default="INFO", envvar="DOSIS_LOG_LEVEL", show_default=True)
def main(log_level: str) -> None:
    """DOSIS: dossier statuses from agencies to the e-loket."""
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)


@main.command()
@click.option(
    "--trace", is_flag=True,
    help="export traces and metrics over OTLP (OTEL_EXPORTER_OTLP_ENDPOINT, default http://127.0.0.1:4317)",
)
def up(trace: bool) -> None:
    """Run ingest, query and catalog (SQLite in DOSIS_STATE_DIR unless configured otherwise)."""
    from services.runner import up as run_up

    if trace:
        os.environ.setdefault("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")

    def ready(settings) -> None:
        from services.telemetry import exports

        endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        signals = " and ".join(name for name, signal in (("spans", "TRACES"), ("metrics", "METRICS"))
                               if exports(signal, dict(os.environ)))
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

    sys.exit(run_up(_settings(), ready))


@main.command()
@click.argument("service", type=click.Choice(["ingest", "query", "catalog"]))
def serve(service: str) -> None:
    """Run one service in this process (as compose does)."""
    from services.runner import run_service

    run_service(service, _settings())


@main.command()
def migrate() -> None:
    """Bring both stores to the newest schema."""
    from services.common.db import make_engine
    from services.common.db import migrate as run_migrate

    settings = _settings()
    for url, store in ((settings.database_url, "store"), (settings.catalog_database_url, "catalog")):
        engine = make_engine(url)
        run_migrate(engine, store)
        engine.dispose()
    click.echo("both stores are at the newest schema")


@main.command()
def keys() -> None:
    """Create the development key pair in the state folder (if absent); print the JWKS path."""
    click.echo(ensure_dev_keys(_settings().state_dir))


@main.group()
def token() -> None:
    """Print a token signed with the development key (never for production)."""


def _print_token(claims: dict, ttl: int) -> None:
    try:
        click.echo(mint_dev_token(_settings(), claims, ttl))
    except FileNotFoundError as exc:
        _fail(str(exc))


_ttl = click.option("--ttl", default=3600, show_default=True, help="seconds the token is valid")


@token.command("supplier")
@click.argument("supplier_id")
@_ttl
def token_supplier(supplier_id: str, ttl: int) -> None:
    """A supplier backend's token (claim dosis_supplier)."""
    _print_token({"sub": f"supplier:{supplier_id}", "dosis_supplier": supplier_id}, ttl)


@token.command("person")
@click.argument("enterprise_number")
@click.option("--role", "roles", multiple=True, help="a role the person holds (repeatable)")
@click.option("--sub", default="dev-person", show_default=True)
@_ttl
def token_person(enterprise_number: str, roles: tuple[str, ...], sub: str, ttl: int) -> None:
    """A loket token for a person acting for an enterprise."""
    try:
        enterprise = canonical_enterprise_number(enterprise_number)
    except InvalidEnterpriseNumber as exc:
        _fail(f"enterprise number {exc}")
    _print_token({"sub": sub, "dosis_enterprise": enterprise, "dosis_roles": list(roles)}, ttl)


@token.command("admin")
@click.argument("roles", nargs=-1, required=True, type=click.Choice(ADMIN_ROLES))
@_ttl
def token_admin(roles: tuple[str, ...], ttl: int) -> None:
    """An operator's token (catalog-admin, auditor)."""
    _print_token({"sub": "dev-operator", "dosis_admin_roles": list(roles)}, ttl)


_token = click.option("--token", envvar="DOSIS_TOKEN", help="bearer token [env DOSIS_TOKEN]")


def _need_token(value: str | None) -> str:
    if not value:
        _fail("no token: set DOSIS_TOKEN (for example `export DOSIS_TOKEN=$(dosis token supplier VLAIO)`)")
    return value


def _enum(parse, value: str, what: str) -> int:
    number = parse(value)
    if number is None:
        raise click.BadParameter(f"unknown {what} {value!r} (enum name or Dutch label)")
    return number


@main.command()
@click.option("--enterprise", required=True, help="enterprise number, any accepted form")
@click.option("--product", required=True, help="IPDC product id")
@click.option("--dossier", required=True, help="dossier id at the supplier")
@click.option("--phase", required=True, help="e.g. BEHANDELING_DOSSIER or 'behandeling dossier'")
@click.option("--status", "status_code", required=True, help="e.g. IN_BEHANDELING or 'in behandeling'")
@click.option("--detail", default="", help="the supplier's own status label")
@click.option("--time", "status_time", default=None, help="ISO 8601; default now")
@click.option("--role", "roles", multiple=True, help="a role that may see it (repeatable)")
@click.option("--public", is_flag=True)
@click.option("--url", default="", help="https reference")
@click.option("--email", default="")
@click.option("--contact", default="")
@click.option("--action", default="", help="what the holder must do (sets action_required)")
@click.option("--addr", envvar="DOSIS_INGEST_ADDR", default="127.0.0.1:50051", show_default=True)
@_token
def push(enterprise, product, dossier, phase, status_code, detail, status_time, roles, public, url, email, contact,
         action, addr, token) -> None:
    """Push one dossier status (PushStatus)."""
    when = datetime.fromisoformat(status_time) if status_time else datetime.now(timezone.utc)
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(when)
    status = pb.DossierStatus(
        enterprise_number=enterprise,
        product_id=product,
        dossier_id=dossier,
        phase=_enum(labels.parse_phase, phase, "phase"),
        status=_enum(labels.parse_status, status_code, "status"),
        detail_status=detail,
        status_time=ts,
        reference=pb.Reference(url=url, email=email, contact=contact),
        required_roles=list(roles),
        public=public,
        action_required=bool(action),
        action=action,
    )
    with grpc.insecure_channel(addr) as channel:
        try:
            reply = ingest_pb2_grpc.IngestServiceStub(channel).PushStatus(
                ingest_pb2.PushStatusRequest(status=status), metadata=bearer(_need_token(token)), timeout=10
            )
        except grpc.RpcError as err:
            _rpc_failure(err)
    click.echo(ingest_pb2.PushOutcome.Name(reply.outcome).removeprefix("PUSH_OUTCOME_"))


UPLOAD_CHUNK = 256 * 1024


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--mode", type=click.Choice(["upsert", "replace"]), default="upsert", show_default=True,
              help="replace: the file is the complete list of your dossiers of --product")
@click.option("--product", default="", help="the product whose list the file is (with --mode replace)")
@click.option("--addr", envvar="DOSIS_INGEST_ADDR", default="127.0.0.1:50051", show_default=True)
@_token
def upload(file, mode, product, addr, token) -> None:
    """Upload a CSV list of dossier statuses (UploadBatch); rejected rows go to FILE.rejected.csv."""
    import time
    from pathlib import Path

    if mode == "replace" and not product:
        raise click.BadParameter("--mode replace needs --product", param_hint="--product")
    path = Path(file)
    size = path.stat().st_size
    header = ingest_pb2.BatchHeader(
        mode=ingest_pb2.BATCH_MODE_REPLACE_PRODUCT if mode == "replace" else ingest_pb2.BATCH_MODE_UPSERT,
        product_id=product,
        file_name=path.name,
        size_bytes=size,
    )
    started = time.monotonic()
    with click.progressbar(length=size, label=f"uploading {path.name}", show_pos=True, file=sys.stderr) as bar:

        def requests():
            yield ingest_pb2.UploadBatchRequest(header=header)
            with path.open("rb") as fh:
                while chunk := fh.read(UPLOAD_CHUNK):
                    bar.update(len(chunk))
                    yield ingest_pb2.UploadBatchRequest(chunk=chunk)

        with grpc.insecure_channel(addr) as channel:
            try:
                report = ingest_pb2_grpc.IngestServiceStub(channel).UploadBatch(
                    requests(), metadata=bearer(_need_token(token))
                )
            except grpc.RpcError as err:
                _rpc_failure(err)
    seconds = max(time.monotonic() - started, 1e-6)
    click.echo(
        f"{report.rows_read} rows in {seconds:.1f} s ({report.rows_read / seconds:,.0f} rows/s): "
        f"{report.created} created, {report.updated} updated, {report.unchanged} unchanged, "
        f"{report.stale} stale, {report.rejected} rejected, {report.deleted} deleted"
    )
    if mode == "replace" and report.rejected:
        click.echo("nothing was deleted: the list had rejected rows, so it is not complete")
    if report.rejected_rows:
        rejected = path.with_name(path.stem + ".rejected.csv")
        _write_rejected(path, rejected, report.rejected_rows)
        more = f" (the first {len(report.rejected_rows)} faults)" if report.rejected > len(report.rejected_rows) else ""
        click.echo(f"rejected rows{more} with their reasons: {rejected}")
        sys.exit(2)


def _write_rejected(source, target, faults) -> None:
    """The rejected rows as they were in the file, with line, column and reason in front,
    so the agency can fix and resend them."""
    import csv

    by_line: dict[int, list] = {}
    for fault in faults:
        by_line.setdefault(fault.line, []).append(fault)
    with source.open(encoding="utf-8-sig", newline="") as fh:
        first = fh.readline()
        delimiter = ";" if first.count(";") > first.count(",") else ","
        fh.seek(0)
        if fh.read(1) != "\ufeff":
            fh.seek(0)
        reader = csv.reader(fh, delimiter=delimiter)
        header = next(reader)
        with target.open("w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out, delimiter=delimiter)
            writer.writerow(["line", "column", "reason", *header])
            next_start = 2
            for record in reader:
                line, next_start = next_start, reader.line_num + 1
                for fault in by_line.get(line, ()):
                    writer.writerow([line, fault.column, fault.reason, *record])


@main.command("list")
@click.argument("enterprise_number")
@click.option("--public", is_flag=True, help="only public dossiers (no token needed)")
@click.option("--json", "as_json", is_flag=True, help="one JSON object per dossier")
@click.option("--addr", envvar="DOSIS_QUERY_ADDR", default="127.0.0.1:50052", show_default=True)
@_token
def list_dossiers(enterprise_number, public, as_json, addr, token) -> None:
    """List what the person in the token may see of an enterprise's dossiers (all pages)."""
    from google.protobuf.json_format import MessageToDict

    metadata = bearer(token) if token else ()
    page_token = ""
    with grpc.insecure_channel(addr) as channel:
        stub = query_pb2_grpc.QueryServiceStub(channel)
        while True:
            try:
                if public:
                    reply = stub.ListPublicDossiers(
                        query_pb2.ListPublicDossiersRequest(enterprise_number=enterprise_number, page_token=page_token),
                        metadata=metadata, timeout=10,
                    )
                else:
                    reply = stub.ListDossiers(
                        query_pb2.ListDossiersRequest(enterprise_number=enterprise_number, page_token=page_token),
                        metadata=bearer(_need_token(token)), timeout=10,
                    )
            except grpc.RpcError as err:
                _rpc_failure(err)
            for d in reply.dossiers:
                if as_json:
                    click.echo(json.dumps(MessageToDict(d, preserving_proto_field_name=True), ensure_ascii=False))
                else:
                    when = d.status_time.ToDatetime(timezone.utc).strftime("%Y-%m-%d %H:%M")
                    action = f"  ACTIE: {d.action}" if d.action_required else ""
                    click.echo(
                        f"{when}  {d.supplier_id:<8} {d.product_name or d.product_id}  #{d.dossier_id}  "
                        f"{labels.phase_labels()[d.phase]} / {labels.status_labels()[d.status]}{action}"
                    )
            page_token = reply.next_page_token
            if not page_token:
                break


@main.group()
def catalog() -> None:
    """Manage the catalog's own store."""


@catalog.command("import")
@click.argument("source")
@click.option("--mapping", type=click.Path(exists=True, dir_okay=False), help="JSON {authority IRI: supplier id}")
def catalog_import(source: str, mapping: str | None) -> None:
    """Import products from an IPDC instance-snapshot feed (URL, first page file or folder)."""
    from services.catalog.ipdc_import import FeedError
    from services.catalog.service import import_feed
    from services.common.db import make_engine
    from services.common.db import migrate as run_migrate

    engine = make_engine(_settings().catalog_database_url)
    run_migrate(engine, "catalog")
    try:
        count = import_feed(engine, source, mapping)
    except (FeedError, OSError, ValueError) as exc:
        _fail(f"import failed, nothing stored: {exc}")
    finally:
        engine.dispose()
    click.echo(f"imported {count} products")


if __name__ == "__main__":
    main(prog_name=os.path.basename(sys.argv[0]))
