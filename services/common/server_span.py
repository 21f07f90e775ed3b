"""The server span of every call, recorded with a fraction of the SDK span's work.

Every RPC gets a server span, so its cost is paid on every call, on the event loop that
serves all calls. The SDK's Span validates and locks on each step (a lock, bounded
attribute and event containers, each value cleaned as it is set, start and end hooks):
about 25 µs a call, most of what tracing at 100 % cost (benchmarks/tracing_overhead.py).
ServerSpans takes the same decisions through the provider's own sampler and id generator
and hands the same ReadableSpan as the SDK would to the span processor Telemetry installed
(the one it exports through) at the end; children (the store batch, the statements, the
catalog call) are ordinary SDK spans under it.

What it does not do, because the call wrapper (services.common.calls) never asks for it:
span processors' on_start (the batch and simple processors do nothing there) and exception
events (calls report failures through the status code, never a traceback on a span).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from time import time_ns

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags
from opentelemetry.trace.status import Status, StatusCode

log = logging.getLogger(__name__)

MAX_ATTRIBUTES = 128  # the SDK's default span limit
_PRIMITIVE = (str, bool, int, float)
_UNSET = Status(StatusCode.UNSET)


def _attribute_value(value):
    """A plain value, or a sequence of one plain type as a tuple; None (drop it) for
    anything else. Stricter than the SDK, which also keeps mappings: no server span needs them."""
    if isinstance(value, _PRIMITIVE):
        return value
    if isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
        items = tuple(value)
        if all(isinstance(item, _PRIMITIVE) for item in items) and len({type(item) for item in items}) <= 1:
            return items
    log.debug("span attribute of type %s dropped", type(value).__name__)
    return None


class ServerSpans:
    """Starts server spans for one service, under its TracerProvider's sampler, ids,
    resource and processors."""

    def __init__(self, provider: TracerProvider, processor: SpanProcessor, scope: InstrumentationScope):
        self._sampler = provider.sampler
        self._ids = provider.id_generator
        self._resource = provider.resource
        self._processor = processor
        self._scope = scope

    def start(self, name: str, parent: Context | None, attributes: Mapping[str, object]) -> trace.Span:
        """A span of kind SERVER: recording when sampled, else a non-recording one that
        still carries ids (for log correlation and for children's sampling decision)."""
        parent_context = trace.get_current_span(parent).get_span_context()
        if parent_context.is_valid:
            trace_id, random_id = parent_context.trace_id, parent_context.trace_flags.random_trace_id
        else:
            parent_context, trace_id = None, self._ids.generate_trace_id()
            random_id = self._ids.is_trace_id_random()
        result = self._sampler.should_sample(parent, trace_id, name, SpanKind.SERVER, attributes)
        flags = TraceFlags.SAMPLED if result.decision.is_sampled() else TraceFlags.DEFAULT
        if random_id:
            flags |= TraceFlags.RANDOM_TRACE_ID
        context = SpanContext(
            trace_id, self._ids.generate_span_id(), is_remote=False,
            trace_flags=TraceFlags(flags), trace_state=result.trace_state,
        )
        if not result.decision.is_recording():
            return NonRecordingSpan(context)
        span = _ServerSpan(name, context, parent_context, self)
        span.set_attributes(attributes)
        if result.attributes:
            span.set_attributes(result.attributes)
        return span

    def _finished(self, span: _ServerSpan) -> None:
        self._processor.on_end(
            ReadableSpan(
                name=span._name,
                context=span._context,
                parent=span._parent,
                resource=self._resource,
                attributes=span._attributes,
                events=tuple(span._events),
                links=tuple(span._links),
                kind=SpanKind.SERVER,
                status=span._status,
                start_time=span._start_time,
                end_time=span._end_time,
                instrumentation_scope=self._scope,
            )
        )


class _ServerSpan(trace.Span):
    """A recording span: plain fields, checked only where the API demands it."""

    __slots__ = (
        "_attributes",
        "_context",
        "_end_time",
        "_events",
        "_links",
        "_name",
        "_parent",
        "_spans",
        "_start_time",
        "_status",
    )

    def __init__(self, name: str, context: SpanContext, parent: SpanContext | None, spans: ServerSpans):
        self._name, self._context, self._parent, self._spans = name, context, parent, spans
        self._attributes: dict = {}
        self._events: list[Event] = []
        self._links: list[trace.Link] = []
        self._status = _UNSET
        self._start_time = time_ns()
        self._end_time: int | None = None

    def get_span_context(self) -> SpanContext:
        return self._context

    def is_recording(self) -> bool:
        return self._end_time is None

    def set_attribute(self, key: str, value) -> None:
        if self._end_time is not None or not key:
            return
        if key not in self._attributes and len(self._attributes) >= MAX_ATTRIBUTES:
            return
        if type(value) not in _PRIMITIVE:
            value = _attribute_value(value)
            if value is None:
                return
        self._attributes[key] = value

    def set_attributes(self, attributes: Mapping[str, object]) -> None:
        for key, value in attributes.items():
            self.set_attribute(key, value)

    def add_event(self, name: str, attributes=None, timestamp: int | None = None) -> None:
        if self._end_time is None:
            self._events.append(Event(name, dict(attributes or {}), timestamp or time_ns()))

    def add_link(self, context: SpanContext, attributes=None) -> None:
        if self._end_time is None and context.is_valid:
            self._links.append(trace.Link(context, dict(attributes or {})))

    def update_name(self, name: str) -> None:
        if self._end_time is None:
            self._name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        # As the SDK: OK is final, UNSET never overrides.
        if self._end_time is not None or self._status.status_code is StatusCode.OK:
            return
        if isinstance(status, StatusCode):
            status = Status(status, description)
        if status.status_code is not StatusCode.UNSET:
            self._status = status

    def record_exception(self, exception: BaseException, attributes=None, timestamp=None, escaped=False) -> None:
        # Only the type: a message or a traceback can quote the data being handled.
        self.add_event("exception", {"exception.type": type(exception).__name__, **(attributes or {})}, timestamp)

    def end(self, end_time: int | None = None) -> None:
        if self._end_time is not None:
            return
        self._end_time = end_time or time_ns()
        self._spans._finished(self)
