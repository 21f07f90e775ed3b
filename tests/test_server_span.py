"""The light server span (services/common/server_span.py) exports what an SDK span would,
takes the same sampling decisions, and is a proper parent for the SDK spans under it."""

from __future__ import annotations

import pytest
from opentelemetry import propagate, trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from services.common.telemetry import Telemetry, exports

NAME = "/dosis.v1.IngestService/PushStatus"
ATTRIBUTES = {"rpc.system": "grpc", "rpc.service": "dosis.v1.IngestService", "rpc.method": "PushStatus"}
CALLER_TRACE, CALLER_SPAN = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"


@pytest.fixture
def telemetry():
    def make(ratio: str = "1.0") -> tuple[Telemetry, InMemorySpanExporter]:
        exporter = InMemorySpanExporter()
        made = Telemetry("ingest", exporter, env={"OTEL_TRACES_SAMPLER_ARG": ratio}, batch=False)
        created.append(made)
        return made, exporter

    created: list[Telemetry] = []
    yield make
    for made in created:
        made.shutdown()


def caller(sampled: bool):
    return propagate.extract({"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-{'01' if sampled else '00'}"})


def use(span):
    return trace.use_span(span, end_on_exit=False)


def test_a_server_span_exports_what_the_sdk_span_exports(telemetry):
    tel, exporter = telemetry()
    light = tel.server_spans.start(NAME, None, ATTRIBUTES)
    sdk = tel.tracer.start_span(NAME, kind=SpanKind.SERVER, attributes=ATTRIBUTES)
    for span in (light, sdk):
        assert span.is_recording()
        span.set_attribute("dosis.outcome", "PUSH_OUTCOME_CREATED")
        span.set_attribute("dosis.catalog.cache_hit", True)
        span.set_attribute("rpc.grpc.status_code", 13)
        span.set_status(Status(StatusCode.ERROR, "INTERNAL"))
        span.end()
        assert not span.is_recording()
    ours, theirs = exporter.get_finished_spans()
    assert ours.name == theirs.name and ours.kind == theirs.kind == SpanKind.SERVER
    assert dict(ours.attributes) == dict(theirs.attributes)
    assert (ours.status.status_code, ours.status.description) == (StatusCode.ERROR, "INTERNAL")
    assert ours.resource is theirs.resource
    assert ours.resource.attributes["service.name"] == "dosis-ingest"
    scope, their_scope = ours.instrumentation_scope, theirs.instrumentation_scope
    assert (scope.name, scope.version) == (their_scope.name, their_scope.version)
    assert ours.parent is None and ours.start_time <= ours.end_time
    context, their_context = ours.get_span_context(), theirs.get_span_context()
    assert context.trace_flags == their_context.trace_flags and context.trace_flags.sampled
    assert context.trace_id != their_context.trace_id  # each a new trace
    assert (ours.events, ours.links) == ((), ())


def test_it_continues_the_callers_trace_and_parents_the_spans_under_it(telemetry):
    tel, exporter = telemetry(ratio="0.0")  # the caller's decision counts, not the ratio
    span = tel.server_spans.start(NAME, caller(sampled=True), ATTRIBUTES)
    with use(span), tel.tracer.start_as_current_span("store batch"):
        pass
    span.end()
    batch, server = exporter.get_finished_spans()
    assert format(server.context.trace_id, "032x") == CALLER_TRACE
    assert format(server.parent.span_id, "016x") == CALLER_SPAN and server.parent.is_remote
    assert batch.context.trace_id == server.context.trace_id
    assert batch.parent.span_id == server.context.span_id


@pytest.mark.parametrize(("ratio", "parent"), [("1.0", caller(sampled=False)), ("0.0", None)])
def test_an_unsampled_call_records_nothing_but_keeps_its_ids(telemetry, ratio, parent):
    tel, exporter = telemetry(ratio)
    span = tel.server_spans.start(NAME, parent, ATTRIBUTES)
    assert not span.is_recording()
    context = span.get_span_context()
    assert context.is_valid and not context.trace_flags.sampled  # logs still correlate
    if parent is not None:
        assert format(context.trace_id, "032x") == CALLER_TRACE
    with use(span), tel.tracer.start_as_current_span("store batch") as child:
        assert not child.is_recording()  # the sampler follows the call's decision
    span.end()
    assert exporter.get_finished_spans() == ()


def test_attribute_and_status_rules(telemetry):
    """Plain values and sequences of one plain type are kept; anything else is dropped
    (stricter than the SDK, and never needed on a server span). Status as the SDK: OK is final."""
    tel, exporter = telemetry()
    span = tel.server_spans.start(NAME, None, ATTRIBUTES)
    span.set_attribute("dosis.sizes", [1, 2])  # a sequence is kept as a tuple
    span.set_attribute("dosis.mixed", [1, 2.5])  # mixed types: dropped
    span.set_attribute("dosis.mapping", {"a": 1})  # not an attribute value: dropped
    span.set_attribute("", 1)  # no key: dropped
    span.set_status(StatusCode.OK)
    span.set_status(Status(StatusCode.ERROR, "later"))  # OK is final
    span.update_name("renamed")
    try:
        raise ValueError("the message can quote data 0316380841")
    except ValueError as exc:
        span.record_exception(exc)
    span.end()
    span.set_attribute("dosis.after_end", 1)  # ignored
    span.end()  # a second end exports nothing more
    (exported,) = exporter.get_finished_spans()
    assert exported.name == "renamed"
    assert {k: v for k, v in exported.attributes.items() if k.startswith("dosis.")} == {"dosis.sizes": (1, 2)}
    assert exported.status.status_code == StatusCode.OK
    (event,) = exported.events
    assert event.name == "exception" and dict(event.attributes) == {"exception.type": "ValueError"}


def test_traces_and_metrics_switch_on_separately():
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", "OTEL_TRACES_EXPORTER": "none"}
    assert (exports("TRACES", env), exports("METRICS", env)) == (False, True)  # also what `dosis up` says
    assert not exports("METRICS", {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:9"})
    tel = Telemetry.from_env("ingest", env)
    try:
        assert tel.metrics and not tel.tracing
        assert tel.server_spans is None
        assert not tel.tracer.start_span("x").is_recording()  # no provider records to drop
    finally:
        tel.shutdown()
    tel = Telemetry.from_env("ingest", {**env, "OTEL_TRACES_EXPORTER": "otlp", "OTEL_METRICS_EXPORTER": "none"})
    try:
        assert tel.tracing and not tel.metrics
    finally:
        tel.shutdown()
