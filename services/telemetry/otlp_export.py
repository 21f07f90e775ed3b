"""OTLP/gRPC span export with the privacy rules applied while encoding.

The SDK's encoder builds a protobuf object per span, attribute and value (about 35 µs a
span), and the PrivacyFilter a cleaned copy of each span before it (about 10 µs); both run
on the exporter thread and so compete for the GIL with the calls being served. Almost
everything in our spans repeats: names, attribute keys and values (method names, SQL
statements, enum names, flags), resources and scopes. PrivateSpanEncoder writes the OTLP
wire format directly and keeps each repeating part already cleaned and encoded, so a span
costs a few byte concatenations. What may leave is decided by privacy.py's functions, the
ones the PrivacyFilter applies; the encoder only remembers their answers.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Sequence

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.exporter.otlp.proto.common._internal import (
    _encode_attributes,
    _encode_instrumentation_scope,
    _encode_resource,
)
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PB2Span
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode
from opentelemetry.trace.span import DEFAULT_TRACE_STATE

from services.telemetry.light_spans import UNSET_STATUS
from services.telemetry.privacy import DROP, private_description, private_event, private_value, scrub

_MAX_CACHED = 8192  # distinct names, attribute values and statuses kept encoded, the most recently used

_HAS_IS_REMOTE, _IS_REMOTE = 0x100, 0x200  # SpanFlags masks
_FLAGS = {False: struct.pack("<I", _HAS_IS_REMOTE), True: struct.pack("<I", _HAS_IS_REMOTE | _IS_REMOTE)}
_pack_q = struct.Struct("<Q").pack


def _varint(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field: tag, length, payload."""
    return tag + _varint(len(payload)) + payload


# Wire tags (field number << 3 | wire type) of the OTLP messages used here.
_T_TRACE_ID, _T_SPAN_ID, _T_TRACE_STATE, _T_PARENT = b"\x0a", b"\x12", b"\x1a", b"\x22"
_T_NAME, _T_KIND, _T_START, _T_END = b"\x2a", b"\x30", b"\x39", b"\x41"
_T_ATTR, _T_DROPPED_ATTRS, _T_EVENT, _T_DROPPED_EVENTS = b"\x4a", b"\x50", b"\x5a", b"\x60"
_T_LINK, _T_DROPPED_LINKS, _T_STATUS, _T_FLAGS = b"\x6a", b"\x70", b"\x7a", b"\x85\x01"
_T_LINK_ATTR, _T_LINK_DROPPED, _T_LINK_FLAGS = b"\x22", b"\x28", b"\x35"

# Keyed by the members' ids: an Enum member hashes through a Python-level __hash__, and
# members are singletons.
_KIND = {
    id(kind): _T_KIND + bytes((value,))
    for kind, value in (
        (SpanKind.INTERNAL, PB2Span.SPAN_KIND_INTERNAL),
        (SpanKind.SERVER, PB2Span.SPAN_KIND_SERVER),
        (SpanKind.CLIENT, PB2Span.SPAN_KIND_CLIENT),
        (SpanKind.PRODUCER, PB2Span.SPAN_KIND_PRODUCER),
        (SpanKind.CONSUMER, PB2Span.SPAN_KIND_CONSUMER),
    )
}


_UNSET = _T_STATUS + b"\x00"  # an empty Status message: code UNSET, no description


class PrivateSpanEncoder:
    """ReadableSpans → serialized ExportTraceServiceRequest, privacy rules applied.

    The memos (names, attributes, statuses: asked several times a span) are
    functools.lru_cache: C code, a third of a cachetools cache's lookup, and thread-safe.
    """

    def __init__(self):
        # (key, type, value) → encoded field, b"" if dropped; the type keeps True and 1 apart.
        self._attribute = functools.lru_cache(maxsize=_MAX_CACHED)(_attribute_field)
        self._name = functools.lru_cache(maxsize=_MAX_CACHED)(_name_field)
        self._status = functools.lru_cache(maxsize=_MAX_CACHED)(_status_field)
        self._resources: dict[int, tuple[object, bytes]] = {}  # id → (object kept alive, encoded)
        self._scopes: dict[int, tuple[object, bytes]] = {}

    def encode(self, spans: Sequence[ReadableSpan]) -> bytes:
        # Resource → scope → spans, in order of first appearance (as the SDK's encoder).
        # Equal scopes share one ScopeSpans as in the SDK's encoder (the server spans and the
        # SDK spans of the "dosis" tracer carry equal scopes, not the same object); a service
        # has one resource object, so resources are grouped by identity (their hash is costly).
        grouped: dict[int, tuple[object, dict[object, tuple[object, list[bytes]]]]] = {}
        last = (None, None, None)  # resource, scope, their list: most spans follow one of the same
        for span in spans:
            resource, scope = span._resource, span._instrumentation_scope  # noqa: SLF001 - no property calls
            if resource is not last[0] or scope is not last[1]:
                scopes = grouped.get(id(resource))
                if scopes is None:
                    scopes = grouped[id(resource)] = (resource, {})
                entry = scopes[1].get(scope)  # equal scopes: a hash computed in Python, so once per run
                if entry is None:
                    entry = scopes[1][scope] = (scope, [])
                last = (resource, scope, entry[1])
            last[2].append(self.span(span))
        out = []
        for resource, scopes in grouped.values():
            body = [self._resource(resource)]
            for scope, encoded in scopes.values():
                scope_body = self._scope(scope) + b"".join(encoded)
                if scope is not None and scope.schema_url:
                    scope_body += _field(b"\x1a", scope.schema_url.encode())
                body.append(_field(b"\x12", scope_body))  # ResourceSpans.scope_spans
            if resource.schema_url:
                body.append(_field(b"\x1a", resource.schema_url.encode()))
            out.append(_field(b"\x0a", b"".join(body)))  # ExportTraceServiceRequest.resource_spans
        return b"".join(out)

    def span(self, span: ReadableSpan) -> bytes:
        """One Span, as a ScopeSpans.spans field."""
        # The fields, not the properties (a Python call each); a ReadableSpan has them all.
        context, parent, name = span._context, span._parent, span._name  # noqa: SLF001
        parts = [
            b"\x0a\x10", context.trace_id.to_bytes(16, "big"),
            b"\x12\x08", context.span_id.to_bytes(8, "big"),
        ]
        trace_state = context.trace_state
        if trace_state is not DEFAULT_TRACE_STATE and trace_state:  # its len() is Python code
            parts.append(_field(_T_TRACE_STATE, trace_state.to_header().encode()))
        if parent is not None:
            parts += (b"\x22\x08", parent.span_id.to_bytes(8, "big"))
        parts += (self._name(name), _KIND[id(span._kind)], _T_START, _pack_q(span._start_time or 0),  # noqa: SLF001
                  _T_END, _pack_q(span._end_time or 0))  # noqa: SLF001
        events, links = span._events, span._links  # noqa: SLF001 - the properties copy them
        dropped = getattr(span, "_dropped", None)  # a light span's counts: attributes, events, links
        attribute = self._attribute
        attributes, dropped_attributes = span._attributes, 0  # noqa: SLF001
        if type(attributes) is not dict:  # a light span's are a plain dict, its drops counted apart
            attributes, dropped_attributes = _plain(attributes)
        for key, value in attributes.items():
            try:
                encoded = attribute(key, type(value), value)
            except TypeError:  # an unhashable value (a list in a hand-made span): not kept
                encoded = _key_values({key: value}, _T_ATTR)
            parts.append(encoded)
        if dropped is None:
            # An SDK span's properties; a tuple (a cleaned copy) drops nothing, and asking
            # it costs an ABC isinstance check.
            dropped = (
                dropped_attributes,
                span.dropped_events if type(events) is not tuple else 0,
                span.dropped_links if type(links) is not tuple else 0,
            )
        if dropped[0]:
            parts += (_T_DROPPED_ATTRS, _varint(dropped[0]))
        for event in events:
            parts.append(_field(_T_EVENT, _event(event)))
        if dropped[1]:
            parts += (_T_DROPPED_EVENTS, _varint(dropped[1]))
        for link in links:
            parts.append(_field(_T_LINK, _link(link)))
        if dropped[2]:
            parts += (_T_DROPPED_LINKS, _varint(dropped[2]))
        status = span._status  # noqa: SLF001
        if status is UNSET_STATUS:
            parts.append(_UNSET)
        else:  # an SDK span's status is its own object: keyed by the code's id (see _KIND)
            parts.append(self._status(id(status.status_code), status.description))
        parts += (_T_FLAGS, _FLAGS[parent is not None and parent.is_remote])
        return _field(b"\x12", b"".join(parts))

    def _resource(self, resource) -> bytes:
        cached = self._resources.get(id(resource))
        if cached is None or cached[0] is not resource:
            cached = self._resources[id(resource)] = (resource, _field(b"\x0a", _encode_resource(resource).SerializeToString()))
        return cached[1]

    def _scope(self, scope) -> bytes:
        cached = self._scopes.get(id(scope))
        if cached is None or cached[0] is not scope:
            encoded = _encode_instrumentation_scope(scope).SerializeToString()
            cached = self._scopes[id(scope)] = (scope, _field(b"\x0a", encoded))
        return cached[1]


def _attribute_field(key: str, kind: type, value) -> bytes:
    """An attribute as a Span.attributes field, b"" if it may not leave (kind: see the memo)."""
    return _key_values({key: value}, _T_ATTR)


def _name_field(name: str) -> bytes:
    return _field(_T_NAME, scrub(name).encode())


_STATUS_CODES = {id(code): code for code in StatusCode}


def _status_field(code_id: int, description: str | None) -> bytes:
    body = b""
    if description:
        body += _field(b"\x12", private_description(description).encode())
    code = _STATUS_CODES[code_id]
    if code.value:
        body += b"\x18" + _varint(code.value)
    return _field(_T_STATUS, body)


def _plain(attributes) -> tuple[dict, int]:
    """An SDK span's attributes as a dict and how many were dropped, without the read-only
    proxy and the Mapping ABC's slow iteration over BoundedAttributes (a third of the
    encoding time otherwise)."""
    if isinstance(attributes, BoundedAttributes):
        return attributes._dict, attributes.dropped  # noqa: SLF001
    return dict(attributes or {}), 0


def _key_values(attributes, tag: bytes) -> bytes:
    """The allowed attributes, cleaned, each as a KeyValue field with the given tag."""
    out = []
    for key, value in attributes.items():
        value = private_value(key, value)
        if value is not DROP:
            out += [_field(tag, kv.SerializeToString()) for kv in _encode_attributes({key: value})]
    return b"".join(out)


def _event(event) -> bytes:
    # Rare (exceptions): encoded through the SDK's message types.
    private = private_event(event)
    return PB2Span.Event(
        name=private.name,
        time_unix_nano=event.timestamp,
        attributes=_encode_attributes(private.attributes),
        dropped_attributes_count=event.dropped_attributes,
    ).SerializeToString()


def _link(link) -> bytes:
    context = link.context
    parts = [b"\x0a\x10", context.trace_id.to_bytes(16, "big"), b"\x12\x08", context.span_id.to_bytes(8, "big")]
    if context.trace_state:
        parts.append(_field(_T_TRACE_STATE, context.trace_state.to_header().encode()))
    if link.attributes:
        parts.append(_key_values(link.attributes, _T_LINK_ATTR))
    if link.dropped_attributes:
        parts += (_T_LINK_DROPPED, _varint(link.dropped_attributes))
    parts += (_T_LINK_FLAGS, _FLAGS[bool(context.is_remote)])
    return b"".join(parts)


class _BytesTraceStub:
    """TraceService's Export taking the request already serialized."""

    def __init__(self, channel):
        self.Export = channel.unary_unary(
            "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            request_serializer=None,  # bytes as they are
            response_deserializer=ExportTraceServiceResponse.FromString,
        )


class PrivateOTLPSpanExporter(OTLPSpanExporter):
    """The SDK's OTLP/gRPC span exporter (endpoint, credentials, retries, OTEL_* settings),
    encoding with PrivateSpanEncoder: what it sends has passed the privacy rules, so it
    needs no PrivacyFilter in front."""

    applies_privacy = True  # Telemetry puts no PrivacyFilter in front of it

    def __init__(self, *args, **kwargs):
        self._encoder = PrivateSpanEncoder()
        super().__init__(*args, **kwargs)

    def _initialize_channel_and_stub(self):
        # Also called to reconnect after UNAVAILABLE: the stub sends our bytes unparsed.
        self._stub = _BytesTraceStub
        super()._initialize_channel_and_stub()

    def _translate_data(self, data: Sequence[ReadableSpan]) -> bytes:
        return self._encoder.encode(data)
