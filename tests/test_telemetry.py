"""Traces, metrics and logs: one trace across the three services, and nothing personal in them."""

from __future__ import annotations

import io
import json
import logging
from dataclasses import replace

import pytest
from opentelemetry import propagate, trace
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from dosis.v1 import dossier_status_pb2 as pb
from dosis.v1 import ingest_pb2, query_pb2
from services.catalog import service as catalog_service
from services.store.engine import make_engine, migrate
from services.common.server import build_server
from services.ingest import service as ingest_service
from services.query import service as query_service
from services.runner import verifier_for
from services.telemetry import REDACTED, Telemetry, TraceContextFilter, configure_logging, scrub
from tests.helpers import bearer, push_request, status

ENTERPRISE = "0534669938"
ROLE = "Geheime-Rol-Xq7"
DOSSIER = "DOSSIER-Zz9-private"
URL = "https://private.example/dossier/Zz9"


class ServiceTelemetry:
    def __init__(self, name: str):
        self.spans = InMemorySpanExporter()
        self.metrics = InMemoryMetricReader()
        self.telemetry = Telemetry(name, self.spans, self.metrics, env={}, batch=False)


@pytest.fixture
def traced(tmp_path, settings, loop_thread):
    """The three services in-process, each with its own providers and its own engine."""
    dossier_url, catalog_url = f"sqlite:///{tmp_path / 'd.db'}", f"sqlite:///{tmp_path / 'c.db'}"
    for url, store in ((dossier_url, "store"), (catalog_url, "catalog"), (dossier_url, "audit")):
        engine = make_engine(url)
        migrate(engine, store)
        if store == "catalog":
            catalog_service.seed_demo_if_empty(engine)
        engine.dispose()
    tel = {name: ServiceTelemetry(name) for name in ("catalog", "ingest", "query")}
    verifier = verifier_for(settings)
    settings = replace(settings, audit_database_url=dossier_url)  # the audit trail beside the dossiers

    async def start():
        servers = {"catalog": await build_server(
            catalog_service.create(settings, make_engine(catalog_url), tel["catalog"].telemetry), verifier, "127.0.0.1:0"
        )}
        wired = replace(settings, catalog_addr=f"127.0.0.1:{servers['catalog'].port}")
        servers["ingest"] = await build_server(
            ingest_service.create(wired, make_engine(dossier_url), tel["ingest"].telemetry), verifier, "127.0.0.1:0"
        )
        servers["query"] = await build_server(
            query_service.create(wired, make_engine(dossier_url), tel["query"].telemetry), verifier, "127.0.0.1:0"
        )
        return servers

    servers = loop_thread.run(start())
    import grpc

    channels = {name: grpc.insecure_channel(f"127.0.0.1:{s.port}") for name, s in servers.items()}
    yield tel, channels
    for channel in channels.values():
        channel.close()
    for server in servers.values():
        loop_thread.run(server.stop(grace=0.2))
    for t in tel.values():
        t.telemetry.shutdown()


def client_tracer():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider.get_tracer("test-supplier"), exporter


def traced_metadata(token: str) -> list[tuple[str, str]]:
    carrier: dict[str, str] = {}
    propagate.inject(carrier)  # W3C traceparent of the current (client) span
    return [*bearer(token), *carrier.items()]


def all_spans(tel) -> list[tuple[str, object]]:
    return [(name, span) for name, t in tel.items() for span in t.spans.get_finished_spans()]


def test_a_push_is_one_trace_across_all_three_services(traced, tokens):
    tel, channels = traced
    from dosis.v1 import ingest_pb2_grpc

    stub = ingest_pb2_grpc.IngestServiceStub(channels["ingest"])
    tracer, client_spans = client_tracer()
    with tracer.start_as_current_span("supplier push", kind=trace.SpanKind.CLIENT) as root:
        reply = stub.PushStatus(push_request(status()), metadata=traced_metadata(tokens.supplier()))
    assert reply.outcome == ingest_pb2.PUSH_OUTCOME_CREATED
    trace_id = root.get_span_context().trace_id

    spans = all_spans(tel)
    in_trace = [(name, s) for name, s in spans if s.context.trace_id == trace_id]
    services = {s.resource.attributes["service.name"] for _, s in in_trace}
    assert services == {"dosis-ingest", "dosis-catalog"}

    by_id = {s.context.span_id: s for _, s in in_trace}
    ingest_server = next(s for _, s in in_trace if s.name == "/dosis.v1.IngestService/PushStatus")
    assert ingest_server.parent.span_id == root.get_span_context().span_id  # continues the caller's trace
    assert ingest_server.attributes["dosis.outcome"] == "PUSH_OUTCOME_CREATED"
    assert ingest_server.attributes["dosis.catalog.cache_hit"] is False
    catalog_server = next(s for _, s in in_trace if s.name == "/dosis.v1.CatalogService/CheckProduct")
    # catalog server ← ingest's client span ← ingest server
    client_span = by_id[catalog_server.parent.span_id]
    assert client_span.resource.attributes["service.name"] == "dosis-ingest"
    assert by_id[client_span.parent.span_id] is ingest_server
    db_spans = [s for _, s in in_trace if s.attributes.get("db.system") == "sqlite"]
    assert {s.resource.attributes["service.name"] for s in db_spans} == {"dosis-ingest", "dosis-catalog"}
    # A lone push: its group-commit batch, and the batch's statements, are in its trace.
    batch = next(s for _, s in in_trace if s.name == "store batch")
    assert by_id[batch.parent.span_id] is ingest_server
    assert batch.attributes["dosis.batch.size"] == 1
    assert any(by_id.get(s.parent.span_id) is batch for s in db_spans)

    # A second push of the same product is answered from the cache: no catalog call.
    for t in tel.values():
        t.spans.clear()
    with tracer.start_as_current_span("supplier push 2") as root2:
        stub.PushStatus(push_request(status(dossier="D-2")), metadata=traced_metadata(tokens.supplier()))
    spans = [s for _, s in all_spans(tel) if s.context.trace_id == root2.get_span_context().trace_id]
    server = next(s for s in spans if s.name == "/dosis.v1.IngestService/PushStatus")
    assert server.attributes["dosis.catalog.cache_hit"] is True
    assert not any(s.resource.attributes["service.name"] == "dosis-catalog" for s in spans)


def test_concurrent_pushes_share_a_batch_linked_to_each_trace(traced, tokens):
    tel, channels = traced
    from concurrent.futures import ThreadPoolExecutor

    from dosis.v1 import ingest_pb2_grpc

    stub = ingest_pb2_grpc.IngestServiceStub(channels["ingest"])
    tracer, _ = client_tracer()
    supplier = tokens.supplier()
    stub.PushStatus(push_request(status(dossier="warm")), metadata=bearer(supplier))  # fills the catalog cache

    def push(i: int) -> int:
        with tracer.start_as_current_span(f"push {i}") as span:
            stub.PushStatus(push_request(status(dossier=f"C-{i}")), metadata=traced_metadata(supplier))
            return span.get_span_context().trace_id

    for attempt in range(10):  # concurrency is up to the scheduler: retry until two pushes met
        tel["ingest"].spans.clear()
        with ThreadPoolExecutor(16) as pool:
            trace_ids = set(pool.map(push, range(attempt * 100, attempt * 100 + 32)))
        batches = [s for s in tel["ingest"].spans.get_finished_spans() if s.name == "store batch"]
        shared = [b for b in batches if b.attributes["dosis.batch.size"] > 1]
        if shared:
            break
    assert shared, "no two concurrent pushes were ever stored in one batch"
    assert sum(b.attributes["dosis.batch.size"] for b in batches) == 32
    for batch in shared:
        linked = {link.context.trace_id for link in batch.links} | {batch.context.trace_id}
        assert len(linked) == batch.attributes["dosis.batch.size"] and linked <= trace_ids


def test_a_list_is_one_trace_query_database_catalog(traced, tokens):
    tel, channels = traced
    from dosis.v1 import ingest_pb2_grpc, query_pb2_grpc

    ingest_pb2_grpc.IngestServiceStub(channels["ingest"]).PushStatus(
        push_request(status(ENTERPRISE)), metadata=bearer(tokens.supplier())
    )
    tracer, _ = client_tracer()
    with tracer.start_as_current_span("loket list") as root:
        reply = query_pb2_grpc.QueryServiceStub(channels["query"]).ListDossiers(
            query_pb2.ListDossiersRequest(enterprise_number=ENTERPRISE),
            metadata=traced_metadata(tokens.person(ENTERPRISE, "Bedrijfsleider")),
        )
    assert len(reply.dossiers) == 1
    spans = [s for _, s in all_spans(tel) if s.context.trace_id == root.get_span_context().trace_id]
    names = {(s.resource.attributes["service.name"], s.name) for s in spans}
    assert ("dosis-query", "/dosis.v1.QueryService/ListDossiers") in names
    assert ("dosis-catalog", "/dosis.v1.CatalogService/GetProduct") in names
    assert any(s.attributes.get("db.system") == "sqlite" and s.resource.attributes["service.name"] == "dosis-query"
               for s in spans)
    server = next(s for s in spans if s.name == "/dosis.v1.QueryService/ListDossiers")
    assert server.attributes["dosis.page_size"] == 1


def test_health_checks_are_not_traced(traced):
    tel, channels = traced
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    health_pb2_grpc.HealthStub(channels["ingest"]).Check(health_pb2.HealthCheckRequest())
    assert all("Health" not in s.name for _, s in all_spans(tel))


def test_metrics_rpc_durations_outcomes_cache_and_page_sizes(traced, tokens):
    tel, channels = traced
    from dosis.v1 import ingest_pb2_grpc, query_pb2_grpc

    stub = ingest_pb2_grpc.IngestServiceStub(channels["ingest"])
    requests = [push_request(status(dossier=f"M-{i}"), f"r{i}") for i in range(3)]
    requests.append(push_request(status(product="2031"), "bad"))  # VLAIO does not serve 2031
    replies = list(stub.StreamStatuses(iter(requests), metadata=bearer(tokens.supplier())))
    assert [r.outcome for r in replies][-1] == ingest_pb2.PUSH_OUTCOME_REJECTED
    query_pb2_grpc.QueryServiceStub(channels["query"]).ListDossiers(
        query_pb2.ListDossiersRequest(enterprise_number=status().enterprise_number),
        metadata=bearer(tokens.person(status().enterprise_number, "Bedrijfsleider")),
    )

    ingest = metric_points(tel["ingest"])
    outcomes = {(p["attributes"]["outcome"], p["attributes"]["supplier"]): p["value"] for p in ingest["dosis.ingest.outcomes"]}
    assert outcomes == {("created", "VLAIO"): 3, ("rejected", "VLAIO"): 1}
    cache = {p["attributes"]["result"]: p["value"] for p in ingest["dosis.catalog.cache.lookups"]}
    assert cache == {"miss": 2, "hit": 2}  # 1502 once, then cached; 2031 once
    durations = {p["attributes"]["rpc.method"]: p["count"] for p in ingest["rpc.server.duration"]}
    assert durations == {"StreamStatuses": 1}
    pages = metric_points(tel["query"])["dosis.query.page_size"]
    assert pages[0]["count"] == 1 and pages[0]["sum"] == 3

    stream_span = next(s for s in tel["ingest"].spans.get_finished_spans() if s.name.endswith("StreamStatuses"))
    assert stream_span.attributes["dosis.outcomes.created"] == 3
    assert stream_span.attributes["dosis.outcomes.rejected"] == 1


def metric_points(service: ServiceTelemetry) -> dict[str, list[dict]]:
    data = json.loads(service.metrics.get_metrics_data().to_json())
    out: dict[str, list[dict]] = {}
    for resource in data["resource_metrics"]:
        for scope in resource["scope_metrics"]:
            for metric in scope["metrics"]:
                out.setdefault(metric["name"], []).extend(metric["data"]["data_points"])
    return out


def test_nothing_personal_leaves_in_spans_metrics_or_logs(traced, tokens):
    tel, channels = traced
    from dosis.v1 import ingest_pb2_grpc, query_pb2_grpc

    log_stream = io.StringIO()
    handler = logging.StreamHandler(log_stream)
    handler.addFilter(TraceContextFilter("dosis-test"))
    logging.getLogger().addHandler(handler)
    try:
        ingest = ingest_pb2_grpc.IngestServiceStub(channels["ingest"])
        supplier = tokens.supplier()
        good = status(
            "BE 0534.669.938", dossier=DOSSIER, roles=(ROLE,), reference=pb.Reference(url=URL, email="x@private.example")
        )
        ingest.PushStatus(push_request(good), metadata=bearer(supplier))
        bad = status("0534.669.939", dossier=DOSSIER, roles=(ROLE,), reference=pb.Reference(url=URL.replace("https", "http")))
        list(ingest.StreamStatuses(iter([push_request(bad), push_request(good)]), metadata=bearer(supplier)))
        person = tokens.person(ENTERPRISE, ROLE)
        query = query_pb2_grpc.QueryServiceStub(channels["query"])
        query.ListDossiers(query_pb2.ListDossiersRequest(enterprise_number="0534.669.938"), metadata=bearer(person))
        query.GetDossier(
            query_pb2.GetDossierRequest(enterprise_number=ENTERPRISE, product_id="1502", dossier_id=DOSSIER),
            metadata=bearer(person),
        )
        # A careless library (or a future change) puts personal data on a span: it must not leave.
        with tel["ingest"].telemetry.tracer.start_as_current_span(f"lookup {ENTERPRISE}") as span:
            span.set_attribute("enduser.id", ENTERPRISE)
            span.set_attribute("dosis.note", f"enterprise {ENTERPRISE} role {ROLE} url {URL}")
            span.add_event("oops", {"dossier.id": DOSSIER, "exception.message": f"{ENTERPRISE} {ROLE}"})
            logging.getLogger("dosis.test").warning("looked up %s at %s", "0534.669.938", URL)
    finally:
        logging.getLogger().removeHandler(handler)

    exported = json.dumps(
        [json.loads(s.to_json()) for _, s in all_spans(tel)]
        + [json.loads(t.metrics.get_metrics_data().to_json()) for t in tel.values()]
    ) + log_stream.getvalue()
    assert all_spans(tel), "no spans were exported at all"
    for secret in (ENTERPRISE, "0534.669.938", "BE 0534", "0534669939", ROLE, DOSSIER, URL, "private.example"):
        assert secret not in exported, f"{secret!r} leaked"


def test_scrub_covers_the_written_forms():
    for text in ("0316380841", "0316.380.841", "BE0316380841", "be 0316 380 841", "https://x.be/a?b=c", "a@b.be"):
        assert scrub(f"before {text} after") == f"before {REDACTED} after"
    assert scrub("42 rows in 0.3 s, port 50051") == "42 rows in 0.3 s, port 50051"


def test_json_logs_carry_trace_and_span_ids(capsys):
    configure_logging("ingest", json_logs=True)
    tracer, _ = client_tracer()
    with tracer.start_as_current_span("work") as span:
        logging.getLogger("dosis.test").info("stored %d statuses", 3)
    record = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert record["message"] == "stored 3 statuses"
    assert record["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert record["span_id"] == format(span.get_span_context().span_id, "016x")
    assert record["service_name"] == "dosis-ingest" and record["level"] == "INFO"
    logging.getLogger().handlers.clear()


def test_a_csv_list_has_spans_per_chunk_phase_and_batch_metrics(traced, tokens):
    """UploadBatch: a span for reading (parse, validate) and one for storing each chunk, with
    row counts, under the call's span; the list's rate and its outcomes as metrics."""
    from dosis.v1 import ingest_pb2_grpc
    from tests.upload_helpers import csv_bytes, requests, row

    tel, channels = traced
    stub = ingest_pb2_grpc.IngestServiceStub(channels["ingest"])
    records = [row(f"C-{i}") for i in range(3)] + [row("C-bad", "0316.380.842")]  # wrong check digits
    tracer, _ = client_tracer()
    with tracer.start_as_current_span("supplier upload") as root:
        report = stub.UploadBatch(requests(csv_bytes(records)), metadata=traced_metadata(tokens.supplier()))
    assert (report.created, report.rejected) == (3, 1)

    spans = [s for s in tel["ingest"].spans.get_finished_spans() if s.context.trace_id == root.get_span_context().trace_id]
    call = next(s for s in spans if s.name == "/dosis.v1.IngestService/UploadBatch")
    read = [s for s in spans if s.name == "read rows"]
    stored = [s for s in spans if s.name == "store rows"]
    assert [(s.attributes["dosis.batch.rows"], s.attributes["dosis.batch.rejected"]) for s in read] == [(3, 1)]
    assert [(s.attributes["dosis.batch.rows"], s.attributes["dosis.outcomes.created"]) for s in stored] == [(3, 3)]
    assert all(s.parent.span_id == call.context.span_id for s in read + stored)
    assert any(s.attributes.get("db.system") == "sqlite" and s.parent.span_id == stored[0].context.span_id
               for s in spans)
    assert (call.attributes["dosis.batch.rows"], call.attributes["dosis.batch.rejected"]) == (4, 1)

    ingest = metric_points(tel["ingest"])
    rates = ingest["dosis.ingest.batch.rate"]
    assert rates[0]["count"] == 1 and rates[0]["sum"] > 0
    outcomes = {p["attributes"]["outcome"]: p["value"] for p in ingest["dosis.ingest.outcomes"]}
    assert outcomes == {"created": 3, "rejected": 1}


def test_telemetry_modules_use_only_one_another_s_public_names():
    """One rule in one place: privacy.py's functions are public, and no module of the
    package reaches into another's internals (as the encoder once did)."""
    import ast
    from pathlib import Path

    import services.telemetry

    package = Path(services.telemetry.__file__).parent
    private = []
    for module in sorted(package.glob("*.py")):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("services"):
                private += [f"{module.name}: {node.module}.{a.name}" for a in node.names if a.name.startswith("_")]
    assert len(list(package.glob("*.py"))) >= 6
    assert private == []
