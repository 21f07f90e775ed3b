"""DOSIS's own spans, recorded with a fraction of the SDK span's work.

Every RPC gets a server span, and every group commit a batch span and its statements'
spans, so their cost is paid on every call: on the event loop that serves all calls, or on
the writer thread that holds the GIL meanwhile. The SDK's Span validates and locks on each
step (a lock, bounded attribute, event and link containers, each value cleaned as it is set,
start and end hooks): about 25 µs a span, three times this one's. LightTracer takes the
same decisions through the provider's own sampler and id generator and hands the same
ReadableSpan (the span itself, as the SDK's Span does) to the span processor Telemetry
installed (the one it exports through) when a span ends. Spans of other libraries (the gRPC client) stay SDK spans.

What it does not do, because nothing here asks for it: span processors' on_start (the batch
and simple processors do nothing there), and locking: each span is used by one thread at a
time. Exceptions are recorded by type only and set an ERROR status named by the type: a
message or traceback can quote the data being handled.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator, Mapping, Sequence
from time import time_ns

from opentelemetry import trace
from opentelemetry.context import Context, attach, detach
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanLimits, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.sampling import ParentBasedTraceIdRatio, TraceIdRatioBased
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags
from opentelemetry.trace.status import Status, StatusCode

log = logging.getLogger(__name__)

_PRIMITIVE = (str, bool, int, float)
UNSET_STATUS = Status(StatusCode.UNSET)  # shared by every span whose status is never set


def _attribute_value(value, max_length: int | None):
    """A plain value, or a sequence of one plain type as a tuple, strings cut to max_length
    (OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT) as the SDK cuts them; None (drop it) for anything
    else. Stricter than the SDK, which also keeps mappings and bytes: no span here needs
    them, and they would pass the privacy rules unread."""
    if isinstance(value, _PRIMITIVE):
        return value[:max_length] if max_length is not None and isinstance(value, str) else value
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes, bytearray)):
        items = tuple(value)
        if all(isinstance(item, _PRIMITIVE) for item in items) and len({type(item) for item in items}) <= 1:
            if max_length is not None and items and isinstance(items[0], str):
                items = tuple(item[:max_length] for item in items)
            return items
    log.debug("span attribute of type %s dropped", type(value).__name__)
    return None


def _plain_attributes(attributes, max_count: int | None, max_length: int | None) -> dict:
    """An event's or a link's attributes, checked as a span's are."""
    plain: dict = {}
    for key, value in (attributes or {}).items():
        if type(key) is str and key and (max_count is None or len(plain) < max_count):
            value = _attribute_value(value, max_length)
            if value is not None:
                plain[key] = value
    return plain


def exception_type(exception: BaseException) -> str:
    """The exception's type as the SDK names it (module and qualified name)."""
    kind = type(exception)
    return kind.__qualname__ if kind.__module__ in (None, "builtins") else f"{kind.__module__}.{kind.__qualname__}"


_FLAGS = {
    (sampled, random): TraceFlags(
        (TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT) | (TraceFlags.RANDOM_TRACE_ID if random else 0)
    )
    for sampled in (False, True)
    for random in (False, True)
}


class ParentBasedRatio(ParentBasedTraceIdRatio):
    """The SDK's parent-based ratio sampler (the default here), with its rule also as a plain
    function: asking the sampler builds a SamplingResult and looks the parent up twice, a
    third of a span's start. tests/test_light_spans.py holds the two to the same decisions."""

    def __init__(self, rate: float):
        super().__init__(rate)
        self._bound = TraceIdRatioBased.get_bound_for_rate(rate)

    def sampled(self, parent: SpanContext | None, trace_id: int) -> bool:
        if parent is None:
            return trace_id & TraceIdRatioBased.TRACE_ID_LIMIT < self._bound
        return parent.trace_flags.sampled  # the delegates: ALWAYS_ON if the parent is sampled, else ALWAYS_OFF


class LightTracer(trace.Tracer):
    """A tracer of one instrumentation scope, under a TracerProvider's sampler, ids,
    resource and the given processor."""

    def __init__(self, provider: TracerProvider, processor: SpanProcessor, scope: InstrumentationScope):
        self._sampler = provider.sampler
        # The default sampler's rule as a plain function; any other sampler is asked as is.
        self._decide = provider.sampler.sampled if isinstance(provider.sampler, ParentBasedRatio) else None
        self._ids = provider.id_generator
        self._random_ids = self._ids.is_trace_id_random()
        self._resource = provider.resource
        self._processor = processor
        self._scope = scope
        # The limits the provider's own spans get (SpanLimits reads the OTEL_*_LIMIT variables),
        # the two of set_attribute at hand: it runs several times for every span.
        self.limits = limits = SpanLimits()
        self.max_attributes = sys.maxsize if limits.max_span_attributes is None else limits.max_span_attributes
        self.max_length = limits.max_span_attribute_length

    def start_span(
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Mapping[str, object] | None = None,
        links: Sequence[trace.Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> trace.Span:
        """Recording when sampled, else a non-recording span that still carries ids (for
        log correlation and for its children's sampling decision)."""
        parent_context = trace.get_current_span(context).get_span_context()
        if parent_context.is_valid:
            trace_id, random_id = parent_context.trace_id, parent_context.trace_flags.random_trace_id
            trace_state = parent_context.trace_state
        else:
            parent_context, trace_id, random_id, trace_state = None, self._ids.generate_trace_id(), self._random_ids, None
        extra = None
        if self._decide is not None:
            sampled = recording = self._decide(parent_context, trace_id)
        else:
            result = self._sampler.should_sample(context, trace_id, name, kind, attributes, links)
            sampled, recording = result.decision.is_sampled(), result.decision.is_recording()
            trace_state, extra = result.trace_state, result.attributes
        span_context = SpanContext(
            trace_id, self._ids.generate_span_id(), is_remote=False,
            trace_flags=_FLAGS[sampled, random_id], trace_state=trace_state,
        )
        if not recording:
            return NonRecordingSpan(span_context)
        span = _LightSpan(name, span_context, parent_context, kind, self, start_time)
        # As the SDK: the sampler's attributes when it was asked (ours return the span's own).
        if extra is None and attributes:
            span.set_attributes(attributes)
        elif extra:
            span.set_attributes(extra)
        if links:
            span._add_links(links)
        return span

    @contextlib.contextmanager
    def start_as_current_span(
        self,
        name: str,
        *args,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
        **kwargs,
    ) -> Iterator[trace.Span]:
        """The API's start_as_current_span: start_span's parameters (context, kind,
        attributes, links, start_time: by position or by name), and the span is current
        until the block ends. The failure options are taken by name."""
        span = self.start_span(name, *args, **kwargs)
        token = attach(trace.set_span_in_context(span))
        try:
            yield span
        except Exception as exc:  # as the SDK's use_span: not BaseException (cancellation)
            span._failed(exc, record_exception, set_status_on_exception)
            raise
        finally:
            detach(token)
            if end_on_exit:
                span.end()

    def _finished(self, span: _LightSpan) -> None:
        self._processor.on_end(span)


class _LightSpan(trace.Span, ReadableSpan):
    """A recording span: plain fields, checked only where the API demands it. Like the SDK's
    Span it is its own ReadableSpan, handed to the processor as it ends (nothing changes it
    after that). Past a count limit, later attributes, events and links are dropped and
    counted (the SDK evicts the oldest instead); DOSIS's own spans stay far below them."""

    def __init__(
        self, name: str, context: SpanContext, parent: SpanContext | None, kind: SpanKind, tracer: LightTracer,
        start_time: int | None = None,
    ):
        # ReadableSpan's fields, set here rather than through its __init__ (keyword-heavy).
        self._name, self._context, self._parent, self._kind, self._tracer = name, context, parent, kind, tracer
        self._resource, self._instrumentation_scope, self._instrumentation_info = tracer._resource, tracer._scope, None
        self._attributes: dict = {}
        self._events: list[Event] = []
        self._links: list[trace.Link] = []
        self._dropped = [0, 0, 0]  # attributes, events, links
        self._status = UNSET_STATUS
        self._start_time = time_ns() if start_time is None else start_time
        self._end_time: int | None = None

    @property
    def dropped_attributes(self) -> int:
        return self._dropped[0]

    @property
    def dropped_events(self) -> int:
        return self._dropped[1]

    @property
    def dropped_links(self) -> int:
        return self._dropped[2]

    def get_span_context(self) -> SpanContext:
        return self._context

    def is_recording(self) -> bool:
        return self._end_time is None

    def set_attribute(self, key: str, value) -> None:
        if self._end_time is not None or type(key) is not str or not key:
            return
        tracer, attributes = self._tracer, self._attributes
        if key not in attributes and len(attributes) >= tracer.max_attributes:
            self._dropped[0] += 1
            return
        if type(value) not in _PRIMITIVE or (tracer.max_length is not None and type(value) is str):
            value = _attribute_value(value, tracer.max_length)
            if value is None:
                return
        attributes[key] = value

    def set_attributes(self, attributes: Mapping[str, object]) -> None:
        for key, value in attributes.items():
            self.set_attribute(key, value)

    def add_event(self, name: str, attributes=None, timestamp: int | None = None) -> None:
        if self._end_time is not None:
            return
        limits = self._tracer.limits
        if not self._full(self._events, limits.max_events, 1):
            plain = _plain_attributes(attributes, limits.max_event_attributes, limits.max_attribute_length)
            self._events.append(Event(name, plain, time_ns() if timestamp is None else timestamp))

    def add_link(self, context: SpanContext, attributes=None) -> None:
        # As the SDK, a link leads somewhere or carries something (attributes, trace state).
        if self._end_time is not None or not (context and (context.is_valid or attributes or context.trace_state)):
            return
        limits = self._tracer.limits
        if not self._full(self._links, limits.max_links, 2):
            plain = _plain_attributes(attributes, limits.max_link_attributes, limits.max_attribute_length)
            self._links.append(trace.Link(context, plain or None))

    def _full(self, held: list, limit: int | None, dropped: int) -> bool:
        """Whether events or links are at their limit; a refused one is counted as dropped."""
        if limit is not None and len(held) >= limit:
            self._dropped[dropped] += 1
            return True
        return False

    def _add_links(self, links: Sequence[trace.Link]) -> None:
        max_links = self._tracer.limits.max_links
        for link in links:
            # A link that leads somewhere and carries nothing needs no copy (a batch's links).
            if link.context.is_valid and not link.attributes and (max_links is None or len(self._links) < max_links):
                self._links.append(link)
            else:
                self.add_link(link.context, link.attributes)

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
        self.add_event("exception", {"exception.type": exception_type(exception), **(attributes or {})}, timestamp)

    def _failed(self, exception: BaseException, record: bool = True, set_status: bool = True) -> None:
        """An exception left the span's block: an ERROR named by the type only."""
        if self.is_recording():
            if record:
                self.record_exception(exception)
            if set_status:
                self.set_status(Status(StatusCode.ERROR, exception_type(exception)))

    def __exit__(self, exc_type, exc, tb) -> None:
        # `with tracer.start_span(...) as span:` records a failure as the SDK's span does.
        if isinstance(exc, Exception):
            self._failed(exc)
        self.end()

    def end(self, end_time: int | None = None) -> None:
        if self._end_time is not None:
            return
        self._end_time = time_ns() if end_time is None else end_time
        self._tracer._finished(self)
