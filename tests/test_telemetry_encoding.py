"""The cheap paths of telemetry do what the SDK's slow ones do: the OTLP encoder with the
privacy rules built in, and database spans only inside recording traces."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common._internal.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanKind, Status, StatusCode

from services.telemetry import REDACTED, Telemetry
from services.telemetry.light_spans import LightTracer
from services.telemetry.otlp_export import PrivateSpanEncoder
from services.telemetry.privacy import DROP, private_description, private_span, private_value

ENTERPRISE = "0316380841"


def provider(service: str, ratio: float = 1.0) -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider(
        resource=Resource.create({"service.name": service}), sampler=ParentBased(TraceIdRatioBased(ratio))
    )
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    return tracer_provider, exporter


def varied_spans(light: bool = False) -> list[ReadableSpan]:
    """Spans of two services and two scopes, with what the privacy rules must remove; ours
    SDK spans or light ones (services/telemetry/light_spans.py)."""
    spans = []
    for service in ("dosis-ingest", "dosis-query"):
        tracer_provider, exporter = provider(service)
        ours, library = tracer_provider.get_tracer("dosis", "1.0"), tracer_provider.get_tracer("sqlalchemy")
        if light:
            processor = SimpleSpanProcessor(exporter)
            ours = LightTracer(tracer_provider, processor, InstrumentationScope("dosis", "1.0"))
            library = LightTracer(tracer_provider, processor, InstrumentationScope("sqlalchemy", ""))
        for i in range(3):
            with ours.start_as_current_span(
                "/dosis.v1.IngestService/PushStatus", kind=SpanKind.SERVER,
                attributes={"rpc.system": "grpc", "rpc.method": "PushStatus", "dosis.catalog.cache_hit": i == 1},
            ) as server:
                server.set_attribute("dosis.outcome", "PUSH_OUTCOME_CREATED")
                server.set_attribute("rpc.grpc.status_code", 0)
                server.set_attribute("dosis.batch.size", 1)  # an int 1, next to a bool True: not confused
                link = trace.Link(server.get_span_context(), {"dosis.count": 2, "enterprise": ENTERPRISE})
                with ours.start_as_current_span("store batch", links=[link, trace.Link(server.get_span_context())]):
                    with library.start_as_current_span(
                        f"SELECT {ENTERPRISE}", kind=SpanKind.CLIENT,
                        attributes={"db.system": "sqlite", "db.statement": f"SELECT 1 WHERE e = '{ENTERPRISE}'"},
                    ):
                        pass
                if i == 2:
                    server.set_attribute("dosis.role", "Geheime rol")  # free text in our namespace
                    server.set_attribute("enterprise.number", ENTERPRISE)  # a key not allowed
                    server.set_attribute("net.peer.name", ("a", "https://private.example/x"))
                    server.set_attribute("rpc.service", 1.5)
                    try:
                        raise ValueError(f"no dossier for {ENTERPRISE}")
                    except ValueError as exc:
                        server.record_exception(exc)
                    server.set_status(Status(StatusCode.ERROR, "see https://private.example/q"))
        spans += exporter.get_finished_spans()
    return spans


@pytest.mark.parametrize("light", [False, True], ids=["sdk spans", "light spans"])
def test_the_encoder_sends_what_the_sdk_sends_of_the_private_spans(light):
    spans = varied_spans(light)
    assert len(spans) == 18  # 2 services × 3 pushes × (server, batch, statement)
    expected = encode_spans([private_span(s) for s in spans])
    encoder = PrivateSpanEncoder()
    for _ in range(2):  # the second time from its caches
        assert ExportTraceServiceRequest.FromString(encoder.encode(spans)) == expected
    sent = encoder.encode(spans)
    for secret in (ENTERPRISE.encode(), b"private.example", b"Geheime"):
        assert secret not in sent
    assert REDACTED.encode() in sent


def test_the_encoder_sends_the_same_once_its_memos_are_full(monkeypatch):
    from services.telemetry import otlp_export

    monkeypatch.setattr(otlp_export, "_MAX_CACHED", 2)  # most names, values and statuses evicted
    spans = varied_spans(light=True)
    expected = encode_spans([private_span(s) for s in spans])
    encoder = PrivateSpanEncoder()
    for _ in range(2):
        assert ExportTraceServiceRequest.FromString(encoder.encode(spans)) == expected
    assert encoder._attribute.cache_info().currsize == 2


def test_only_plain_values_and_codes_leave():
    # Mappings and bytes would leave unread; a non-string key is no attribute.
    assert private_value("dosis.detail", {"dossier": "DOSSIER-Zz9"}) is DROP
    assert private_value("db.statement", f"BE{ENTERPRISE}".encode()) is DROP
    assert private_value("db.system", ("sqlite", {"dossier": "DOSSIER-Zz9"})) is DROP
    assert private_value(5, 1) is DROP
    assert private_value("rpc.grpc.status_code", 13) == 13
    assert private_value("dosis.batch.size", 3) == 3
    # Status descriptions: codes and type names stay; messages (which quote rows) go.
    assert private_description("UNKNOWN_PRODUCT") == "UNKNOWN_PRODUCT"
    assert private_description("sqlalchemy.exc.IntegrityError") == "sqlalchemy.exc.IntegrityError"
    assert private_description("IntegrityError: duplicate key DOSSIER-Zz9") == "IntegrityError"
    detail = '(psycopg.errors.UniqueViolation) duplicate key\nDETAIL:  Key (dossier_id)=(DOSSIER-Zz9) already exists.'
    assert private_description(detail) == REDACTED
    tracer_provider, exporter = provider("dosis-ingest")
    with tracer_provider.get_tracer("sqlalchemy").start_as_current_span("INSERT", kind=SpanKind.CLIENT) as span:
        span.set_status(Status(StatusCode.ERROR, detail))  # as the SQLAlchemy instrumentation does
    (exported,) = exporter.get_finished_spans()
    sent = PrivateSpanEncoder().encode([exported])
    assert b"DOSSIER-Zz9" not in sent and REDACTED.encode() in sent
    assert private_span(exported).status.description == REDACTED


def test_private_span_cleans_links_and_keeps_span_attributes_next_to_events():
    span = next(s for s in varied_spans() if s.events)
    private = private_span(span)
    assert private.attributes["dosis.outcome"] == "PUSH_OUTCOME_CREATED"  # not the event's attributes
    assert [e.attributes for e in private.events] == [{"exception.type": "ValueError"}]
    batch = next(s for s in varied_spans() if s.name == "store batch")
    assert [dict(link.attributes) for link in private_span(batch).links] == [{"dosis.count": 2}, {}]


def test_telemetry_puts_no_second_filter_in_front_of_the_private_exporter(monkeypatch):
    from services.telemetry import otlp_export

    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", "OTEL_EXPORTER_OTLP_INSECURE": "true"}
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")
    telemetry = Telemetry.from_env("ingest", env)
    try:
        processor = telemetry.tracer_provider._active_span_processor._span_processors[0]
        assert isinstance(processor.span_exporter, otlp_export.PrivateOTLPSpanExporter)
    finally:
        telemetry.shutdown()


def database_spans(ratio: float) -> list[ReadableSpan]:
    exporter = InMemorySpanExporter()
    telemetry = Telemetry("ingest", exporter, env={"OTEL_TRACES_SAMPLER_ARG": str(ratio)}, batch=False)
    engine = sa.create_engine("sqlite://")
    telemetry.instrument_engine(engine)
    with engine.connect() as connection:
        connection.execute(sa.text("SELECT 1"))  # outside any trace: no span
        with telemetry.tracer.start_as_current_span("store batch"):
            for _ in range(2):
                connection.execute(sa.text("SELECT 1"))
    telemetry.shutdown()
    return [s for s in exporter.get_finished_spans() if s.name != "store batch"]


def test_statements_are_traced_inside_sampled_traces_only():
    spans = database_spans(1.0)
    assert len(spans) == 2
    for span in spans:
        assert span.kind == SpanKind.CLIENT and span.name == "SELECT"
        assert span.attributes["db.system"] == "sqlite" and span.attributes["db.statement"] == "SELECT 1"
        assert span.parent is not None
        assert span.instrumentation_scope.name == "opentelemetry.instrumentation.sqlalchemy"
    assert database_spans(0.0) == []


def test_statements_are_named_alike_once_their_descriptions_are_evicted(monkeypatch):
    from services.telemetry.statements import StatementTracer

    monkeypatch.setattr(StatementTracer, "_MAX_STATEMENTS", 1)
    exporter = InMemorySpanExporter()
    telemetry = Telemetry("ingest", exporter, env={}, batch=False)
    engine = sa.create_engine("sqlite://")
    telemetry.instrument_engine(engine)
    statements = ["SELECT 1", "VALUES (2)", "SELECT 1"]
    with engine.connect() as connection, telemetry.tracer.start_as_current_span("store batch"):
        for statement in statements:
            connection.execute(sa.text(statement))
    telemetry.shutdown()
    spans = [s for s in exporter.get_finished_spans() if s.name != "store batch"]
    assert [(s.name, s.attributes["db.statement"]) for s in spans] == [
        ("SELECT", "SELECT 1"), ("VALUES", "VALUES (2)"), ("SELECT", "SELECT 1"),
    ]


def test_a_batch_is_the_child_of_its_first_sampled_push():
    from services.store.writer import GroupWriter, _Pending

    tracer_provider, exporter = provider("dosis-ingest")
    tracer = tracer_provider.get_tracer("dosis")
    unsampled = trace.NonRecordingSpan(trace.SpanContext(1, 2, is_remote=True))  # a caller's unsampled trace
    a, b = tracer.start_span("push A"), tracer.start_span("push B")  # open: their callers wait for the batch
    writer = GroupWriter(engine=None, tracer=tracer)
    writer._store_batch = lambda batch: [None] * len(batch)
    writer._store([_Pending("S", {}, span, None) for span in (unsampled, a, b)])
    batch = next(s for s in exporter.get_finished_spans() if s.name == "store batch")
    assert batch.parent.span_id == a.get_span_context().span_id
    # The other sampled push is linked; the unsampled call's span exists nowhere to link to.
    assert [link.context.span_id for link in batch.links] == [b.get_span_context().span_id]
    assert batch.attributes["dosis.batch.size"] == 3

    exporter.clear()
    writer._store([_Pending("S", {}, unsampled, None)])
    assert exporter.get_finished_spans() == ()  # nothing sampled: nothing recorded


def test_a_batch_links_each_other_call_once():
    from services.store.writer import MAX_LINKS, GroupWriter, _Pending

    tracer_provider, exporter = provider("dosis-ingest")
    tracer = tracer_provider.get_tracer("dosis")
    stream, other = tracer.start_span("stream"), tracer.start_span("push")
    writer = GroupWriter(engine=None, tracer=tracer)
    writer._store_batch = lambda batch: [None] * len(batch)
    # A stream's statuses share its span; a push of another caller sits among them.
    writer._store([_Pending("S", {}, span, None) for span in [stream] * 500 + [other] + [stream] * 500])
    (batch,) = [s for s in exporter.get_finished_spans() if s.name == "store batch"]
    assert batch.parent.span_id == stream.get_span_context().span_id
    assert [link.context.span_id for link in batch.links] == [other.get_span_context().span_id]

    exporter.clear()
    pushes = [tracer.start_span(f"push {i}") for i in range(MAX_LINKS + 10)]
    writer._store([_Pending("S", {}, span, None) for span in pushes])
    (batch,) = [s for s in exporter.get_finished_spans() if s.name == "store batch"]
    assert len(batch.links) == MAX_LINKS and batch.attributes["dosis.batch.size"] == MAX_LINKS + 10
