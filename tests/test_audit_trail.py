"""The audit trail: one event per call that reads or changes dossiers or the catalog, denied
calls included, durable before the call is answered; read by auditors only; append-only in
the database itself; retention the only delete."""

from __future__ import annotations

import re
import uuid
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import grpc
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from dosis.v1 import audit_pb2, audit_pb2_grpc, catalog_pb2, ingest_pb2, query_pb2
from services.cli import main as dosis_cli
from services.common.server import build_server
from services.query import service as query_service
from services.runner import verifier_for
from services.store.audit import AuditRow, AuditStore, grant_service_role
from services.store.engine import make_engine, migrate
from tests.helpers import ENTERPRISE_A, ENTERPRISE_B, bearer, push_request, rpc_error, status
from tests.upload_helpers import csv_bytes, row, upload

UTC = timezone.utc
LIST = "/dosis.v1.QueryService/ListDossiers"
PUSH = "/dosis.v1.IngestService/PushStatus"


def audit_stub(stack) -> audit_pb2_grpc.AuditServiceStub:
    return audit_pb2_grpc.AuditServiceStub(stack.channels["query"])


def events(stack, page_size: int = 0, **filter_fields) -> list[audit_pb2.AuditEvent]:
    """Every event matching the filter, through AuditService, all pages."""
    found, token = [], ""
    while True:
        reply = audit_stub(stack).ListAuditEvents(
            audit_pb2.ListAuditEventsRequest(
                filter=audit_pb2.AuditEventFilter(**filter_fields), page_size=page_size, page_token=token
            ),
            metadata=bearer(stack.tokens.admin("auditor")),
        )
        found.extend(reply.events)
        if not (token := reply.next_page_token):
            return found


def since(moment: datetime):
    from services.common.timestamps import to_message

    return to_message(moment)


def person(stack, enterprise: str, *roles: str) -> tuple[str, tuple]:
    """A person with a subject of their own (the trail is shared by every test)."""
    subject = f"p-{uuid.uuid4().hex[:10]}"
    return subject, bearer(stack.tokens.person(enterprise, *roles, sub=subject))


def test_a_list_call_is_one_event_with_what_it_answered(stack):
    for dossier in ("A-1", "A-2"):
        push(stack, status(dossier=dossier))
    subject, metadata = person(stack, ENTERPRISE_A, "Bedrijfsleider")
    reply = stack.query.ListDossiers(query_pb2.ListDossiersRequest(enterprise_number="0316.380.841"), metadata=metadata)
    assert len(reply.dossiers) == 2
    [event] = events(stack, subject=subject, rpc=LIST)
    assert (event.service, event.rpc, event.outcome, event.enterprise_number, event.result_count, event.supplier_id) == (
        "dosis-query", LIST, "OK", ENTERPRISE_A, 2, ""
    )
    assert re.fullmatch(r"[0-9a-f]{32}", event.trace_id) or event.trace_id == ""
    assert re.fullmatch(r"[0-9a-f-]{36}", event.event_id)
    assert abs(event.time.ToDatetime(UTC) - datetime.now(UTC)) < timedelta(minutes=1)
    # The product names came from the catalog, asked with the person's token: recorded there.
    [names] = events(stack, subject=subject, rpc="/dosis.v1.CatalogService/GetProduct")
    assert (names.service, names.outcome, names.result_count) == ("dosis-catalog", "OK", 1)


def push(stack, message, supplier="VLAIO"):
    return stack.ingest.PushStatus(push_request(message), metadata=stack.as_supplier(supplier))


def test_denied_calls_are_recorded_with_who_asked(stack):
    subject, metadata = person(stack, ENTERPRISE_B, "Bedrijfsleider")
    error = rpc_error(stack.query.ListDossiers, query_pb2.ListDossiersRequest(enterprise_number=ENTERPRISE_A),
                      metadata=metadata)
    assert error.code == grpc.StatusCode.PERMISSION_DENIED
    [event] = events(stack, subject=subject)
    assert (event.rpc, event.outcome, event.enterprise_number, event.result_count) == (
        LIST, "PERMISSION_DENIED", ENTERPRISE_A, 0
    )

    started = datetime.now(UTC)
    error = rpc_error(stack.query.GetDossier, query_pb2.GetDossierRequest(enterprise_number=ENTERPRISE_A),
                      metadata=bearer("not-a-jwt"))
    assert error.code == grpc.StatusCode.UNAUTHENTICATED
    [event] = events(stack, rpc="/dosis.v1.QueryService/GetDossier", start_time=since(started))
    assert (event.outcome, event.subject, event.enterprise_number) == ("UNAUTHENTICATED", "", ENTERPRISE_A)


def test_writes_are_recorded_with_their_counts(stack):
    started = since(datetime.now(UTC))
    push(stack, status(enterprise="BE 0316 380 841", dossier="W-1"))
    [pushed] = events(stack, rpc=PUSH, start_time=started)
    assert (pushed.service, pushed.subject, pushed.supplier_id, pushed.enterprise_number, pushed.result_count) == (
        "dosis-ingest", "VLAIO", "VLAIO", ENTERPRISE_A, 1
    )

    items = [push_request(status(dossier=f"S-{i}")) for i in range(3)] + [push_request(status(dossier=""))]
    replies = list(stack.ingest.StreamStatuses(iter(items), metadata=stack.as_supplier()))
    assert [r.outcome for r in replies].count(ingest_pb2.PUSH_OUTCOME_REJECTED) == 1
    [streamed] = events(stack, rpc="/dosis.v1.IngestService/StreamStatuses", start_time=started)
    assert (streamed.outcome, streamed.result_count, streamed.enterprise_number) == ("OK", 3, "")

    report = upload(stack, csv_bytes([row("U-1"), row("U-2"), row("U-3", "0316380842")]))
    assert report.rejected == 1
    [uploaded] = events(stack, rpc="/dosis.v1.IngestService/UploadBatch", start_time=started)
    assert uploaded.result_count == 2

    stack.ingest.DeleteDossier(ingest_pb2.DeleteDossierRequest(product_id="1502", dossier_id="W-1"),
                               metadata=stack.as_supplier())
    [deleted] = events(stack, rpc="/dosis.v1.IngestService/DeleteDossier", start_time=started)
    assert (deleted.outcome, deleted.result_count) == ("OK", 1)

    product = stack.catalog.GetProduct(catalog_pb2.GetProductRequest(id="1502"), metadata=stack.as_supplier())
    stack.catalog.UpsertProduct(catalog_pb2.UpsertProductRequest(product=product),
                                metadata=bearer(stack.tokens.admin("catalog-admin")))
    [upserted] = events(stack, rpc="/dosis.v1.CatalogService/UpsertProduct", start_time=started)
    assert (upserted.service, upserted.subject, upserted.outcome, upserted.result_count) == (
        "dosis-catalog", "operator", "OK", 1
    )


def test_the_code_list_is_not_audited(stack):
    started = since(datetime.now(UTC))
    stack.catalog.ListStatusCodes(catalog_pb2.ListStatusCodesRequest(), metadata=stack.as_supplier())
    assert events(stack, rpc="/dosis.v1.CatalogService/ListStatusCodes", start_time=started) == []


def test_only_auditors_read_the_trail_and_their_reading_is_recorded(stack):
    request = audit_pb2.ListAuditEventsRequest()
    for token in (stack.tokens.admin("catalog-admin"), stack.tokens.person(ENTERPRISE_A, "Bedrijfsleider"),
                  stack.tokens.supplier("VLAIO")):
        assert rpc_error(audit_stub(stack).ListAuditEvents, request, metadata=bearer(token)).code == (
            grpc.StatusCode.PERMISSION_DENIED
        )
    assert rpc_error(audit_stub(stack).ListAuditEvents, request).code == grpc.StatusCode.UNAUTHENTICATED
    started = since(datetime.now(UTC))
    events(stack, subject="nobody-at-all")
    [read] = events(stack, rpc="/dosis.v1.AuditService/ListAuditEvents", start_time=started, subject="operator")
    assert (read.service, read.outcome) == ("dosis-query", "OK")


def test_the_trail_pages_oldest_first_and_filters(stack):
    subject, metadata = person(stack, ENTERPRISE_A, "Bedrijfsleider")
    for _ in range(5):
        stack.query.ListDossiers(query_pb2.ListDossiersRequest(enterprise_number=ENTERPRISE_A), metadata=metadata)
    whole = events(stack, subject=subject, rpc=LIST)
    paged = events(stack, page_size=2, subject=subject, rpc=LIST)
    assert len(whole) == 5 and [e.event_id for e in paged] == [e.event_id for e in whole]
    assert [e.time.ToDatetime() for e in whole] == sorted(e.time.ToDatetime() for e in whole)
    assert events(stack, subject=subject, enterprise_number="0316.380.841", rpc=LIST) == whole
    assert events(stack, subject=subject, enterprise_number=ENTERPRISE_B) == []
    assert events(stack, subject=subject, rpc=LIST, end_time=whole[0].time) == []
    assert len(events(stack, subject=subject, rpc=LIST, start_time=whole[2].time)) == 3

    stub, auditor = audit_stub(stack), bearer(stack.tokens.admin("auditor"))
    bad = audit_pb2.AuditEventFilter(enterprise_number="0316380842")
    error = rpc_error(stub.ListAuditEvents, audit_pb2.ListAuditEventsRequest(filter=bad), metadata=auditor)
    assert (error.code, error.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ENTERPRISE_NUMBER")
    backwards = audit_pb2.AuditEventFilter(start_time=whole[1].time, end_time=whole[0].time)
    error = rpc_error(stub.ListAuditEvents, audit_pb2.ListAuditEventsRequest(filter=backwards), metadata=auditor)
    assert error.fields() == {"filter.end_time"}


def _old_event(connection, days: int) -> str:
    event_id = str(uuid.uuid4())
    connection.execute(sa.insert(AuditRow.__table__).values(
        event_id=event_id, time=datetime.now(UTC) - timedelta(days=days), service="dosis-query", rpc=LIST,
        subject="old", supplier_id="", enterprise_number=ENTERPRISE_A, outcome="OK", result_count=0, trace_id="",
    ))
    return event_id


def _ids(engine) -> set[str]:
    with engine.connect() as connection:
        return set(connection.execute(sa.select(AuditRow.event_id)).scalars())


def test_events_are_append_only_and_only_retention_deletes(stack):
    engine = stack.stores.dossiers
    push(stack, status(dossier="R-1"))
    with engine.begin() as connection:
        old = _old_event(connection, days=400)
        kept = _old_event(connection, days=200)
    recent = events(stack, rpc=PUSH)[-1].event_id
    for statement in (
        sa.update(AuditRow.__table__).values(outcome="OK", subject="someone else"),
        sa.delete(AuditRow.__table__).where(AuditRow.event_id == recent),
    ):
        with pytest.raises(sa.exc.DBAPIError, match="append-only|are kept"):
            with engine.begin() as connection:
                connection.execute(statement)
    assert AuditStore(engine).prune(retention_days=396) >= 1
    remaining = _ids(engine)
    assert old not in remaining and {kept, recent} <= remaining


@pytest.mark.postgres
def test_the_services_role_may_add_and_read_events_only(postgres_database):
    """Database roles are PostgreSQL's: the services' own may add and read events, never
    change or delete one, and prune only through the retention function."""
    engine = make_engine(postgres_database)
    migrate(engine, "store")
    migrate(engine, "catalog")
    migrate(engine, "audit")
    role = f"dosis_app_{uuid.uuid4().hex[:8]}"
    with engine.begin() as connection:
        connection.execute(sa.text(f'CREATE ROLE "{role}"'))
    try:
        grant_service_role(engine, role)
        with engine.connect() as connection:
            connection.execute(sa.text(f'SET ROLE "{role}"'))
            _old_event(connection, days=500)
            assert connection.execute(sa.select(sa.func.count()).select_from(AuditRow.__table__)).scalar_one() >= 1
            assert connection.execute(sa.text("SELECT count(*) FROM dossiers")).scalar_one() >= 0
            for statement in ("UPDATE audit_events SET outcome = 'OK'", "DELETE FROM audit_events"):
                with pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
                    with connection.begin_nested():
                        connection.execute(sa.text(statement))
            assert connection.execute(sa.text("SELECT prune_audit_events(400)")).scalar_one() >= 1
            with pytest.raises(sa.exc.DBAPIError, match="at least 30 days"):
                with connection.begin_nested():
                    connection.execute(sa.text("SELECT prune_audit_events(1)"))
            connection.rollback()
    finally:
        with engine.begin() as connection:
            connection.execute(sa.text(f'DROP OWNED BY "{role}"'))
            connection.execute(sa.text(f'DROP ROLE "{role}"'))
        engine.dispose()


async def _serve(factory, settings, **stores):
    """One service in-process on the test loop (its catalog channel belongs to that loop)."""
    return await build_server(factory(settings, **stores), verifier_for(settings), "127.0.0.1:0")


def test_a_call_whose_event_cannot_be_stored_fails(stack, tmp_path, loop_thread):
    """No answer without its event: with the audit store broken, a list is refused."""
    audit_engine = make_engine(f"sqlite:///{tmp_path / 'audit.db'}")
    migrate(audit_engine, "audit")
    settings = replace(stack.settings, catalog_addr=stack.address("catalog"))
    server = loop_thread.run(_serve(query_service.create, settings, engine=stack.stores.dossiers,
                                    audit_engine=audit_engine))
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            from dosis.v1 import query_pb2_grpc

            query = query_pb2_grpc.QueryServiceStub(channel)
            request = query_pb2.ListDossiersRequest(enterprise_number=ENTERPRISE_A)
            metadata = stack.as_person(ENTERPRISE_A, "Bedrijfsleider")
            query.ListDossiers(request, metadata=metadata)
            with audit_engine.begin() as connection:
                connection.execute(sa.text("DROP TABLE audit_events"))
            error = rpc_error(query.ListDossiers, request, metadata=metadata)
            assert (error.code, error.reason) == (grpc.StatusCode.UNAVAILABLE, "AUDIT_UNAVAILABLE")
    finally:
        loop_thread.run(server.stop(grace=0.5))
        audit_engine.dispose()


def test_dosis_audit_prints_the_trail_for_an_auditor(stack, tmp_path):
    subject, metadata = person(stack, ENTERPRISE_A, "Bedrijfsleider")
    stack.query.ListDossiers(query_pb2.ListDossiersRequest(enterprise_number=ENTERPRISE_A), metadata=metadata)
    env = {"DOSIS_STATE_DIR": str(tmp_path), "DOSIS_QUERY_ADDR": stack.address("query"),
           "DOSIS_TOKEN": stack.tokens.admin("auditor")}
    runner = CliRunner()
    result = runner.invoke(dosis_cli, ["audit", "--subject", subject, "--enterprise", "0316.380.841", "--rpc", LIST], env=env)
    assert result.exit_code == 0, result.output
    [line] = result.stdout.splitlines()
    assert "OK" in line and LIST in line and subject in line and ENTERPRISE_A in line
    as_json = runner.invoke(dosis_cli, ["audit", "--subject", subject, "--rpc", LIST, "--json", "--since", "2020-01-01"], env=env)
    assert as_json.exit_code == 0 and '"rpc": "/dosis.v1.QueryService/ListDossiers"' in as_json.stdout
    refused = runner.invoke(dosis_cli, ["audit"], env={**env, "DOSIS_TOKEN": stack.tokens.admin("catalog-admin")})
    assert refused.exit_code == 1 and "PERMISSION_DENIED" in refused.stderr


def test_a_change_and_its_event_commit_together_or_not_at_all(stack, tmp_path, loop_thread):
    """The outbox: a push's (and a delete's) event is written in the change's own
    transaction, so a change whose event cannot be stored is not stored either."""
    from dosis.v1 import ingest_pb2_grpc
    from services.ingest import service as ingest_service

    engine = make_engine(f"sqlite:///{tmp_path / 'one.db'}")
    migrate(engine, "store")
    migrate(engine, "audit")
    settings = replace(stack.settings, catalog_addr=stack.address("catalog"))
    server = loop_thread.run(_serve(ingest_service.create, settings, engine=engine, audit_engine=engine))
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            ingest = ingest_pb2_grpc.IngestServiceStub(channel)
            ingest.PushStatus(push_request(status(dossier="T-1")), metadata=stack.as_supplier())
            with engine.connect() as connection:
                assert connection.execute(sa.text("SELECT count(*) FROM audit_events WHERE rpc = :r"),
                                          {"r": PUSH}).scalar_one() == 1
            with engine.begin() as connection:
                connection.execute(sa.text(
                    "CREATE TRIGGER refuse BEFORE INSERT ON audit_events BEGIN SELECT RAISE(ABORT, 'full'); END"
                ))
            error = rpc_error(ingest.PushStatus, push_request(status(dossier="T-2")), metadata=stack.as_supplier())
            assert error.code in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNAVAILABLE)
            delete = ingest_pb2.DeleteDossierRequest(product_id="1502", dossier_id="T-1")
            assert rpc_error(ingest.DeleteDossier, delete, metadata=stack.as_supplier()).code in (
                grpc.StatusCode.INTERNAL, grpc.StatusCode.UNAVAILABLE
            )
            with engine.connect() as connection:
                stored = set(connection.execute(sa.text("SELECT dossier_id FROM dossiers")).scalars())
            assert stored == {"T-1"}  # T-2 not stored without its event; T-1 not deleted without its
    finally:
        loop_thread.run(server.stop(grace=0.5))
        engine.dispose()
