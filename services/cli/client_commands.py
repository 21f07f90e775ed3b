"""What a supplier's or a loket's developer uses: development tokens, push, list, upload."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from datetime import datetime, timezone

import click
import grpc
from google.protobuf.message import Message

from dosis.client import bearer
from dosis.v1 import audit_pb2, audit_pb2_grpc, ingest_pb2, ingest_pb2_grpc, query_pb2, query_pb2_grpc
from dosis.v1 import dossier_status_pb2 as pb
from services.cli.failures import fail, rpc_failure
from services.common import labels
from services.common.auth import ADMIN_ROLES, mint_dev_token
from services.common.enterprise_number import InvalidEnterpriseNumber, canonical_enterprise_number
from services.common.rules import csv_delimiter
from services.common.timestamps import to_message
from services.settings import DEFAULT_ADDRS, Settings


def _setting(name: str):
    """A default taken from the settings `dosis` loaded (so DOSIS_INGEST_ADDR and the like apply)."""
    return lambda: getattr(click.get_current_context().find_root().obj, name)


def _addr_option(service: str):
    return click.option(
        "--addr", default=_setting(f"{service}_addr"),
        show_default=f"DOSIS_{service.upper()}_ADDR, else {DEFAULT_ADDRS[service]}",
    )


@click.group()
def token() -> None:
    """Print a token signed with the development key (never for production)."""


def _print_token(settings: Settings, claims: dict, ttl: int) -> None:
    try:
        click.echo(mint_dev_token(settings, claims, ttl))
    except FileNotFoundError as exc:
        fail(str(exc))


_ttl = click.option("--ttl", default=3600, show_default=True, help="seconds the token is valid")


@token.command("supplier")
@click.argument("supplier_id")
@_ttl
@click.pass_obj
def token_supplier(settings: Settings, supplier_id: str, ttl: int) -> None:
    """A supplier backend's token (claim dosis_supplier)."""
    _print_token(settings, {"sub": f"supplier:{supplier_id}", "dosis_supplier": supplier_id}, ttl)


@token.command("person")
@click.argument("enterprise_number")
@click.option("--role", "roles", multiple=True, help="a role the person holds (repeatable)")
@click.option("--sub", default="dev-person", show_default=True)
@_ttl
@click.pass_obj
def token_person(settings: Settings, enterprise_number: str, roles: tuple[str, ...], sub: str, ttl: int) -> None:
    """A loket token for a person acting for an enterprise."""
    try:
        enterprise = canonical_enterprise_number(enterprise_number)
    except InvalidEnterpriseNumber as exc:
        fail(f"enterprise number {exc}")
    _print_token(settings, {"sub": sub, "dosis_enterprise": enterprise, "dosis_roles": list(roles)}, ttl)


@token.command("admin")
@click.argument("roles", nargs=-1, required=True, type=click.Choice(ADMIN_ROLES))
@_ttl
@click.pass_obj
def token_admin(settings: Settings, roles: tuple[str, ...], ttl: int) -> None:
    """An operator's token (catalog-admin, auditor, key-admin: none implies another)."""
    _print_token(settings, {"sub": "dev-operator", "dosis_admin_roles": list(roles)}, ttl)


_token = click.option("--token", default=_setting("token"), help="bearer token [env DOSIS_TOKEN]")


def _need_token(value: str | None) -> str:
    if not value:
        fail("no token: set DOSIS_TOKEN (for example `export DOSIS_TOKEN=$(dosis token supplier VLAIO)`)")
    return value


def _enum(parse, value: str, what: str) -> int:
    number = parse(value)
    if number is None:
        raise click.BadParameter(f"unknown {what} {value!r} (enum name or Dutch label)")
    return number


@click.command()
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
@_addr_option("ingest")
@_token
def push(enterprise, product, dossier, phase, status_code, detail, status_time, roles, public, url, email, contact,
         action, addr, token) -> None:
    """Push one dossier status (PushStatus)."""
    when = datetime.fromisoformat(status_time) if status_time else datetime.now(timezone.utc)
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    status = pb.DossierStatus(
        enterprise_number=enterprise,
        product_id=product,
        dossier_id=dossier,
        phase=_enum(labels.parse_phase, phase, "phase"),
        status=_enum(labels.parse_status, status_code, "status"),
        detail_status=detail,
        status_time=to_message(when),
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
            rpc_failure(err)
    click.echo(ingest_pb2.PushOutcome.Name(reply.outcome).removeprefix("PUSH_OUTCOME_"))


UPLOAD_CHUNK = 256 * 1024


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--mode", type=click.Choice(["upsert", "replace"]), default="upsert", show_default=True,
              help="replace: the file is the complete list of your dossiers of --product")
@click.option("--product", default="", help="the product whose list the file is (with --mode replace)")
@_addr_option("ingest")
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
                rpc_failure(err)
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
        delimiter = csv_delimiter(first)
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


def _each(fetch: Callable[[str], Message], field: str) -> Iterator[Message]:
    """Every item of a List call, all pages: fetch(page_token) → a response whose `field`
    holds the items, until next_page_token is empty."""
    page_token = ""
    while True:
        try:
            reply = fetch(page_token)
        except grpc.RpcError as err:
            rpc_failure(err)
        yield from getattr(reply, field)
        if not (page_token := reply.next_page_token):
            return


def _echo_all(items: Iterator[Message], as_json: bool, line: Callable[[Message], str]) -> None:
    """One line per item: its canonical JSON (field names as in the .proto), or `line`'s text."""
    from google.protobuf.json_format import MessageToDict

    for item in items:
        if as_json:
            click.echo(json.dumps(MessageToDict(item, preserving_proto_field_name=True), ensure_ascii=False))
        else:
            click.echo(line(item))


def _dossier_line(d: pb.DossierStatus) -> str:
    when = d.status_time.ToDatetime(timezone.utc).strftime("%Y-%m-%d %H:%M")
    action = f"  ACTIE: {d.action}" if d.action_required else ""
    return (f"{when}  {d.supplier_id:<8} {d.product_name or d.product_id}  #{d.dossier_id}  "
            f"{labels.phase_labels()[d.phase]} / {labels.status_labels()[d.status]}{action}")


def _event_line(e: audit_pb2.AuditEvent) -> str:
    when = e.time.ToDatetime(timezone.utc).isoformat(timespec="seconds")
    return f"{when}  {e.outcome:<17} {e.rpc}  {e.subject or '-'}  {e.enterprise_number or '-'}  {e.result_count}"


@click.command("list")
@click.argument("enterprise_number")
@click.option("--public", is_flag=True, help="only public dossiers (no token needed)")
@click.option("--json", "as_json", is_flag=True, help="one JSON object per dossier")
@_addr_option("query")
@_token
def list_dossiers(enterprise_number, public, as_json, addr, token) -> None:
    """List what the person in the token may see of an enterprise's dossiers (all pages)."""
    with grpc.insecure_channel(addr) as channel:
        stub = query_pb2_grpc.QueryServiceStub(channel)
        if public:
            def fetch(page_token):
                return stub.ListPublicDossiers(
                    query_pb2.ListPublicDossiersRequest(enterprise_number=enterprise_number, page_token=page_token),
                    metadata=bearer(token) if token else (), timeout=10,
                )
        else:
            def fetch(page_token):
                return stub.ListDossiers(
                    query_pb2.ListDossiersRequest(enterprise_number=enterprise_number, page_token=page_token),
                    metadata=bearer(_need_token(token)), timeout=10,
                )
        _echo_all(_each(fetch, "dossiers"), as_json, _dossier_line)


def _when(text: str) -> datetime:
    when = datetime.fromisoformat(text)
    return when if when.tzinfo is not None else when.replace(tzinfo=timezone.utc)


@click.command("audit")
@click.option("--since", help="events at or after this time (ISO 8601; UTC if no zone)")
@click.option("--until", help="events before this time")
@click.option("--enterprise", default="", help="events of calls that named this enterprise number")
@click.option("--subject", default="", help="events of this caller (a person's sub, or a supplier id)")
@click.option("--rpc", default="", help="events of this method, e.g. /dosis.v1.QueryService/ListDossiers")
@click.option("--json", "as_json", is_flag=True, help="one JSON object per event")
@_addr_option("query")
@_token
def audit(since, until, enterprise, subject, rpc, as_json, addr, token) -> None:
    """The audit trail, oldest first (AuditService at the query address; an auditor's token)."""
    try:
        start, end = (to_message(_when(t)) if t else None for t in (since, until))
    except ValueError as exc:
        raise click.BadParameter(f"not an ISO 8601 time: {exc}") from None
    query = audit_pb2.AuditEventFilter(start_time=start, end_time=end, subject=subject,
                                       enterprise_number=enterprise, rpc=rpc)
    with grpc.insecure_channel(addr) as channel:
        stub = audit_pb2_grpc.AuditServiceStub(channel)

        def fetch(page_token):
            return stub.ListAuditEvents(
                audit_pb2.ListAuditEventsRequest(filter=query, page_size=500, page_token=page_token),
                metadata=bearer(_need_token(token)), timeout=30,
            )

        _echo_all(_each(fetch, "events"), as_json, _event_line)


COMMANDS = (token, push, upload, list_dossiers, audit)
