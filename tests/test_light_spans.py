"""The light spans (services/telemetry/light_spans.py) export what SDK spans would, take the
same sampling decisions, and parent and are parented by SDK spans as SDK spans are."""

from __future__ import annotations

import random

import pytest
from opentelemetry import propagate, trace
from opentelemetry.sdk.trace.sampling import TraceIdRatioBased
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags

import services
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from services.telemetry import Telemetry, exports
from services.telemetry.light_spans import ParentBasedRatio
from services.telemetry.otlp_export import PrivateSpanEncoder

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


def sdk_tracer(tel: Telemetry):
    return tel.tracer_provider.get_tracer("dosis", services.__version__)


def test_a_server_span_exports_what_the_sdk_span_exports(telemetry):
    tel, exporter = telemetry()
    light = tel.tracer.start_span(NAME, None, SpanKind.SERVER, ATTRIBUTES)
    sdk = sdk_tracer(tel).start_span(NAME, kind=SpanKind.SERVER, attributes=ATTRIBUTES)
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
    span = tel.tracer.start_span(NAME, caller(sampled=True), SpanKind.SERVER, ATTRIBUTES)
    with use(span), tel.tracer.start_as_current_span("store batch") as batch_span:
        assert batch_span.is_recording()
        with sdk_tracer(tel).start_as_current_span("catalog call"), tel.tracer.start_as_current_span("statement"):
            pass
    span.end()
    statement, call, batch, server = exporter.get_finished_spans()
    assert format(server.context.trace_id, "032x") == CALLER_TRACE
    assert format(server.parent.span_id, "016x") == CALLER_SPAN and server.parent.is_remote
    assert {s.context.trace_id for s in (statement, call, batch)} == {server.context.trace_id}
    assert batch.parent.span_id == server.context.span_id and not batch.parent.is_remote
    assert call.parent.span_id == batch.context.span_id  # an SDK span under a light one
    assert statement.parent.span_id == call.context.span_id  # and a light one under an SDK span


@pytest.mark.parametrize(("ratio", "parent"), [("1.0", caller(sampled=False)), ("0.0", None)])
def test_an_unsampled_call_records_nothing_but_keeps_its_ids(telemetry, ratio, parent):
    tel, exporter = telemetry(ratio)
    span = tel.tracer.start_span(NAME, parent, SpanKind.SERVER, ATTRIBUTES)
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
    span = tel.tracer.start_span(NAME, None, SpanKind.SERVER, ATTRIBUTES)
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


def test_a_batch_span_with_links_exports_what_the_sdk_span_exports(telemetry):
    tel, exporter = telemetry()
    calls = [tel.tracer.start_span(f"call {i}", kind=SpanKind.SERVER) for i in range(3)]
    links = [trace.Link(call.get_span_context()) for call in calls[1:]]
    links.append(trace.Link(trace.INVALID_SPAN_CONTEXT))  # leads nowhere: dropped, as by the SDK
    parent = trace.set_span_in_context(calls[0])
    for tracer in (tel.tracer, sdk_tracer(tel)):
        with tracer.start_as_current_span("store batch", context=parent, links=links) as span:
            span.set_attribute("dosis.batch.size", 3)
    ours, theirs = exporter.get_finished_spans()
    assert ours.kind == theirs.kind == SpanKind.INTERNAL
    assert ours.parent == theirs.parent == calls[0].get_span_context()
    assert [link.context for link in ours.links] == [link.context for link in theirs.links] == [
        call.get_span_context() for call in calls[1:]
    ]
    assert dict(ours.attributes) == dict(theirs.attributes) == {"dosis.batch.size": 3}
    assert ours.instrumentation_scope == theirs.instrumentation_scope
    many = [trace.Link(tel.tracer.start_span("call").get_span_context()) for _ in range(200)]
    tel.tracer.start_span("big batch", links=many).end()
    assert len(exporter.get_finished_spans()[-1].links) == 128  # the SDK's limit


def test_a_failure_inside_a_current_span_is_recorded_by_type_only(telemetry):
    tel, exporter = telemetry()
    with pytest.raises(ValueError), tel.tracer.start_as_current_span("store batch") as span:
        assert trace.get_current_span() is span
        raise ValueError("duplicate key (0316380841, B-1)")
    assert trace.get_current_span() is not span  # detached again
    (exported,) = exporter.get_finished_spans()
    assert (exported.status.status_code, exported.status.description) == (StatusCode.ERROR, "ValueError")
    assert [(e.name, dict(e.attributes)) for e in exported.events] == [("exception", {"exception.type": "ValueError"})]


@pytest.mark.parametrize("rate", [0.0, 0.1, 0.5, 1.0])
def test_the_default_samplers_quick_rule_decides_as_the_sampler_does(rate):
    sampler = ParentBasedRatio(rate)
    rng = random.Random(rate)
    bound = TraceIdRatioBased.get_bound_for_rate(rate)
    # Random ids, and ids just either side of the bound (the high 64 bits do not count).
    trace_ids = [rng.getrandbits(128) or 1 for _ in range(2000)]
    trace_ids += [(rng.getrandbits(64) << 64) | max(1, bound + d) for d in (-1, 0, 1)]
    parents = [None] + [
        SpanContext(rng.getrandbits(128), rng.getrandbits(64), is_remote=remote, trace_flags=TraceFlags(flags))
        for remote in (False, True)
        for flags in (TraceFlags.DEFAULT, TraceFlags.SAMPLED)
    ]
    for trace_id in trace_ids:
        for parent in parents:
            context = None if parent is None else trace.set_span_in_context(NonRecordingSpan(parent))
            expected = sampler.should_sample(context, trace_id if parent is None else parent.trace_id, NAME)
            assert sampler.sampled(parent, trace_id) == expected.decision.is_sampled(), (trace_id, parent)


@pytest.mark.parametrize(("name", "caller_sampled", "recorded"), [("always_off", True, False), ("always_on", False, True)])
def test_another_sampler_named_in_the_environment_decides(monkeypatch, name, caller_sampled, recorded):
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", name)  # read by the SDK itself
    exporter = InMemorySpanExporter()
    tel = Telemetry("ingest", exporter, env={"OTEL_TRACES_SAMPLER": name}, batch=False)
    try:
        assert not isinstance(tel.tracer_provider.sampler, ParentBasedRatio)
        span = tel.tracer.start_span(NAME, caller(caller_sampled), SpanKind.SERVER, ATTRIBUTES)
        assert span.is_recording() is recorded
        span.end()
        assert len(exporter.get_finished_spans()) == int(recorded)
    finally:
        tel.shutdown()


def test_span_limits_from_the_environment_apply_as_to_sdk_spans(monkeypatch, telemetry):
    for name, value in (("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "8"), ("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "3"),
                        ("OTEL_SPAN_EVENT_COUNT_LIMIT", "2"), ("OTEL_SPAN_LINK_COUNT_LIMIT", "1")):
        monkeypatch.setenv(name, value)
    exporter = _Unfiltered()  # the spans as the processor gets them (a filtered copy counts no drops)
    tel = Telemetry("ingest", exporter, env={}, batch=False)
    others = [tel.tracer.start_span(f"call {i}").get_span_context() for i in range(3)]
    for tracer in (tel.tracer, sdk_tracer(tel)):
        with tracer.start_span("SELECT") as span:
            span.set_attribute("db.statement", "SELECT * FROM dossier")
            span.set_attribute("db.system", ["sqlite", "a long second value"])
    ours, theirs = exporter.get_finished_spans()[-2:]
    assert ours.attributes["db.statement"] == theirs.attributes["db.statement"] == "SELECT *"
    assert ours.attributes["db.system"] == theirs.attributes["db.system"] == ("sqlite", "a long s")
    for tracer in (tel.tracer, sdk_tracer(tel)):
        with tracer.start_span("store batch", links=[trace.Link(c) for c in others]) as span:
            for i in range(4):
                span.set_attribute(f"dosis.count_{'abcd'[i]}", i)
                span.add_event(f"event {i}", {"exception.type": "ValueErrorWithALongName"})
    ours, theirs = exporter.get_finished_spans()[-2:]
    # Past the count limits the SDK evicts the oldest and a light span drops the latest;
    # both keep as many and count what they dropped.
    for counted in ("attributes", "events", "links"):
        assert len(getattr(ours, counted)) == len(getattr(theirs, counted)), counted
        assert getattr(ours, f"dropped_{counted}") == getattr(theirs, f"dropped_{counted}") > 0, counted
    assert ours.events[0].attributes["exception.type"] == "ValueErr"
    encoded = ExportTraceServiceRequest.FromString(PrivateSpanEncoder().encode([ours]))
    exported = encoded.resource_spans[0].scope_spans[0].spans[0]
    assert (exported.dropped_attributes_count, exported.dropped_events_count, exported.dropped_links_count) == (
        ours.dropped_attributes, ours.dropped_events, ours.dropped_links)
    tel.shutdown()


class _Unfiltered(InMemorySpanExporter):
    applies_privacy = True  # Telemetry puts no PrivacyFilter in front


def test_what_the_sdk_refuses_a_light_span_refuses_too(telemetry):
    tel, exporter = telemetry()
    span = tel.tracer.start_span("x")
    span.set_attribute(5, 1)  # not a string key
    roles = ["Bedrijfsleider"]
    span.add_event("e", {"dosis.roles": roles, 7: "x"})
    roles.append("changed later")  # the span keeps what it was given
    span.add_link(trace.INVALID_SPAN_CONTEXT, {"dosis.kind": "BATCH"})  # leads nowhere but says something: kept
    span.add_link(trace.INVALID_SPAN_CONTEXT)  # says nothing: dropped
    span.end()
    (exported,) = exporter.get_finished_spans()
    assert 5 not in exported.attributes
    assert dict(exported.events[0].attributes) == {}  # dosis.* strings never leave; the int key is gone
    assert len(exported.links) == 1


def test_a_failure_in_a_span_used_as_a_context_manager_is_recorded_by_type_only(telemetry):
    import sqlalchemy.exc

    tel, exporter = telemetry()
    with pytest.raises(sqlalchemy.exc.IntegrityError), tel.tracer.start_span("store batch"):
        raise sqlalchemy.exc.IntegrityError("INSERT … 'B-1'", {}, Exception("duplicate key B-1"))
    (exported,) = exporter.get_finished_spans()
    assert exported.status.description == "sqlalchemy.exc.IntegrityError"  # as the SDK names the type
    assert [dict(e.attributes) for e in exported.events] == [{"exception.type": "sqlalchemy.exc.IntegrityError"}]


def test_traces_and_metrics_switch_on_separately():
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", "OTEL_TRACES_EXPORTER": "none"}
    assert (exports("TRACES", env), exports("METRICS", env)) == (False, True)  # also what `dosis up` says
    assert not exports("METRICS", {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:9"})
    tel = Telemetry.from_env("ingest", env)
    try:
        assert tel.metrics and not tel.tracing
        assert not tel.tracer.start_span("x").is_recording()  # no provider records to drop
    finally:
        tel.shutdown()
    tel = Telemetry.from_env("ingest", {**env, "OTEL_TRACES_EXPORTER": "otlp", "OTEL_METRICS_EXPORTER": "none"})
    try:
        assert tel.tracing and not tel.metrics
    finally:
        tel.shutdown()
