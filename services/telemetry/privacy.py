"""What may leave the process in a span: the one rule, whichever exporter applies it.

Only allow-listed attribute keys leave; values are plain (no mappings, no bytes); our own
dosis.* strings are enum-like names only; free text (span and event names, SQL, addresses)
is scrubbed of enterprise numbers, URLs and e-mail addresses; a status description leaves
as its code or type name only; exception events keep their type only (the message and
stack trace keys are not allowed). PrivacyFilter applies it to whole spans for any SDK
exporter; the OTLP encoder (otlp_export.py) applies the same functions as it encodes.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence

from opentelemetry import trace
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import Status

# Attribute keys that may leave the process. Everything else is dropped.
_ALLOWED_KEYS = re.compile(
    r"^(rpc\.(system|service|method|grpc\.status_code)|"
    r"net\.(peer|host|sock)\.[a-z.]+|server\.(address|port)|client\.(address|port)|network\.[a-z.]+|"
    r"db\.(system|name|namespace|operation|operation\.name|statement|query\.text|user)|"
    r"dosis\.[a-z_.]+|exception\.type|otel\.[a-z_.]+)$"
)
# Enterprise numbers in any written form (0316.380.841, BE0316380841, 0316 380 841).
_ENTERPRISE = re.compile(r"(?i)(?<![0-9])(be\s?)?[01][0-9]{3}[.\s]?[0-9]{3}[.\s]?[0-9]{3}(?![0-9])")
_URL = re.compile(r"(?i)\b(?:https?|mailto):[^\s'\"]+|[^\s@'\"]+@[^\s@'\"]+\.[a-z]{2,}")
REDACTED = "[redacted]"


@functools.lru_cache(maxsize=4096)  # span names and SQL statements repeat endlessly
def scrub(text: str) -> str:
    """Remove what looks like an enterprise number, URL or e-mail address from free text."""
    return _URL.sub(REDACTED, _ENTERPRISE.sub(REDACTED, text))


_ENUM_LIKE = re.compile(r"^[A-Z][A-Z0-9_]*$")
# A status description that may leave: a code or a type name ("INTERNAL", "IntegrityError",
# "sqlalchemy.exc.IntegrityError"), alone or leading an exception message, whose rest goes.
_CODE = re.compile(r"^([A-Za-z_][A-Za-z0-9_.]*)(?::|$)")
_PLAIN_VALUES = (str, bool, int, float)


def private_description(text: str) -> str:
    """A status description as it may leave the process: libraries put exception messages
    there (a database error quotes the row: a dossier id no pattern recognises)."""
    match = _CODE.match(text)
    return match.group(1) if match else REDACTED


DROP = object()  # private_value's answer for a value that may not leave


def private_value(key: str, value):
    """The value as it may leave the process under this key, or DROP. The one rule for
    every attribute (span, event, link), whichever exporter applies it."""
    if type(key) is not str or not _ALLOWED_KEYS.match(key):
        return DROP
    if isinstance(value, str):
        if key.startswith("dosis.") and not _ENUM_LIKE.match(value):
            # Our own attributes carry counts, flags and enum names only; free text could
            # hold a role or a dossier id, which no pattern can recognise.
            return DROP
        return scrub(value)
    if isinstance(value, (tuple, list)):
        if not all(isinstance(v, _PLAIN_VALUES) for v in value):
            return DROP
        if any(isinstance(v, str) for v in value):
            if key.startswith("dosis."):
                return DROP
            return tuple(scrub(v) if isinstance(v, str) else v for v in value)
        return value
    # Plain values only: a mapping or bytes would leave unread.
    return value if isinstance(value, _PLAIN_VALUES) else DROP


def clean_attributes(attributes: Mapping | None) -> dict:
    """The attributes that may leave, with their values as they may leave."""
    clean = {}
    for key, value in (attributes or {}).items():
        value = private_value(key, value)
        if value is not DROP:
            clean[key] = value
    return clean


def private_event(event: Event) -> Event:
    """An event as it may leave: scrubbed name, cleaned attributes (an exception event
    keeps its type only)."""
    return type(event)(scrub(event.name), clean_attributes(event.attributes), event.timestamp)


def _private_links(links) -> tuple:
    return tuple(
        link if not link.attributes else trace.Link(link.context, clean_attributes(link.attributes))
        for link in links
    )


def private_span(span: ReadableSpan) -> ReadableSpan:
    """The span with only allowed attributes, scrubbed values, exception events reduced to
    their type (messages and stack traces can quote data) and a scrubbed status: the span
    itself when nothing needs removing (most spans), else a cleaned copy."""
    attributes = clean_attributes(span.attributes)
    name = scrub(span.name)
    description = span.status.description
    if (
        not span.events
        and not any(link.attributes for link in span.links)
        and name == span.name
        and len(attributes) == len(span.attributes or {})
        and all(attributes[k] is v or attributes[k] == v for k, v in (span.attributes or {}).items())
        and (not description or private_description(description) == description)
    ):
        return span
    status = span.status
    if status.description:
        status = Status(status.status_code, private_description(status.description))
    return ReadableSpan(
        name=name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=attributes,
        events=[private_event(event) for event in span.events],
        links=_private_links(span.links),
        kind=span.kind,
        status=status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


class PrivacyFilter(SpanExporter):
    """Wraps an exporter: it only ever sees private_span() copies."""

    def __init__(self, exporter: SpanExporter):
        self._exporter = exporter

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self._exporter.export([private_span(s) for s in spans])

    def shutdown(self) -> None:
        self._exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._exporter.force_flush(timeout_millis)
