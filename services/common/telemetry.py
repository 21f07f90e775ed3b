"""Traces, metrics and logs for one service, from the standard OTEL_* variables.

One Telemetry object per service process (tests run three in one process, so nothing here
depends on the global providers): resource service.name dosis-<service> plus version and
instance id; OTLP/gRPC export when OTEL_EXPORTER_OTLP_ENDPOINT is set; batch span
processor; parent-based ratio sampling (OTEL_TRACES_SAMPLER / _ARG override it).

Privacy is enforced at the exit: every span passes PrivacyFilter before any exporter sees
it, so no enterprise number, role, dossier id or URL reaches the tracing backend even if
a library adds such an attribute. The OTLP exporter (otlp_export.py) applies the same
rules (private_value) while it encodes, which is several times cheaper than a cleaned
copy of every span. Metric attributes are chosen here and never personal.
"""

from __future__ import annotations

import collections
import functools
import logging
import os
import re
import traceback
import uuid
from collections.abc import Sequence

from opentelemetry import trace
from opentelemetry.instrumentation.grpc import aio_client_interceptors
from opentelemetry.instrumentation.sqlalchemy import engine as _sqla
from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.metrics import NoOpMeterProvider, Observation
from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter, MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.sampling import Sampler
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import NoOpTracerProvider, SpanKind, Status

import services
from services.common.light_spans import LightTracer, ParentBasedRatio

log = logging.getLogger(__name__)

# --- privacy ------------------------------------------------------------------------------

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


_DROP = object()


def private_value(key: str, value):
    """The value as it may leave the process under this key, or _DROP. The one rule for
    every attribute (span, event, link), whichever exporter applies it."""
    if type(key) is not str or not _ALLOWED_KEYS.match(key):
        return _DROP
    if isinstance(value, str):
        if key.startswith("dosis.") and not _ENUM_LIKE.match(value):
            # Our own attributes carry counts, flags and enum names only; free text could
            # hold a role or a dossier id, which no pattern can recognise.
            return _DROP
        return scrub(value)
    if isinstance(value, (tuple, list)):
        if not all(isinstance(v, _PLAIN_VALUES) for v in value):
            return _DROP
        if any(isinstance(v, str) for v in value):
            if key.startswith("dosis."):
                return _DROP
            return tuple(scrub(v) if isinstance(v, str) else v for v in value)
        return value
    # Plain values only: a mapping or bytes would leave unread.
    return value if isinstance(value, _PLAIN_VALUES) else _DROP


def _clean_attributes(attributes) -> dict:
    clean = {}
    for key, value in (attributes or {}).items():
        value = private_value(key, value)
        if value is not _DROP:
            clean[key] = value
    return clean


def _private_links(links) -> tuple:
    return tuple(
        link if not link.attributes else trace.Link(link.context, _clean_attributes(link.attributes))
        for link in links
    )


def private_span(span: ReadableSpan) -> ReadableSpan:
    """The span with only allowed attributes, scrubbed values, exception events reduced to
    their type (messages and stack traces can quote data) and a scrubbed status: the span
    itself when nothing needs removing (most spans), else a cleaned copy."""
    attributes = _clean_attributes(span.attributes)
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
    events = [
        type(event)(scrub(event.name), _clean_attributes(event.attributes), event.timestamp) for event in span.events
    ]
    status = span.status
    if status.description:
        status = Status(status.status_code, private_description(status.description))
    return ReadableSpan(
        name=name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=attributes,
        events=events,
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


# --- set-up -------------------------------------------------------------------------------


def _sampler(env: dict[str, str]) -> Sampler | None:
    if env.get("OTEL_TRACES_SAMPLER"):
        return None  # the SDK reads OTEL_TRACES_SAMPLER and _ARG itself
    ratio = float(env.get("OTEL_TRACES_SAMPLER_ARG") or 1.0)
    return ParentBasedRatio(ratio)


def exports(signal: str, env: dict[str, str]) -> bool:
    """Whether a signal (TRACES, METRICS) goes out over OTLP, from the standard variables."""
    exporter = env.get(f"OTEL_{signal}_EXPORTER", "otlp").strip().lower()
    if exporter == "none":
        return False
    if exporter != "otlp":
        log.warning("OTEL_%s_EXPORTER=%s is not supported here; only otlp and none are", signal, exporter)
    return bool(env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get(f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT"))


class Telemetry:
    """The providers and instruments of one service."""

    def __init__(
        self,
        service: str,
        span_exporter: SpanExporter | None = None,
        metric_reader: MetricReader | None = None,
        env: dict[str, str] | None = None,
        batch: bool = True,
    ):
        env = dict(os.environ if env is None else env)
        self.service_name = f"dosis-{service}"
        if env.get("OTEL_SDK_DISABLED", "").lower() == "true":
            span_exporter = metric_reader = None
        # Traces and metrics are switched on separately (OTEL_TRACES_EXPORTER=none keeps the
        # metrics): a provider without an exporter would record spans only to drop them.
        self.tracing = span_exporter is not None
        self.metrics = metric_reader is not None
        resource = Resource.create(
            {
                "service.name": self.service_name,
                "service.namespace": "dosis",
                "service.version": services.__version__,
                "service.instance.id": str(uuid.uuid4()),
            }
        )
        if self.tracing:
            self.tracer_provider = TracerProvider(resource=resource, sampler=_sampler(env))
            if not getattr(span_exporter, "applies_privacy", False):
                span_exporter = PrivacyFilter(span_exporter)
            self._processor = BatchSpanProcessor(span_exporter) if batch else SimpleSpanProcessor(span_exporter)
            self.tracer_provider.add_span_processor(self._processor)
            # Our own spans (server, group commit, statements) are light ones (light_spans.py).
            self.tracer: trace.Tracer = self._light_tracer("dosis", services.__version__)
        else:
            self.tracer_provider = NoOpTracerProvider()
            self.tracer = self.tracer_provider.get_tracer("dosis")
        if self.metrics:
            # Exemplars would sample trace ids into every measurement: costly, and unused here.
            self.meter_provider = MeterProvider(
                resource=resource, metric_readers=[metric_reader], exemplar_filter=AlwaysOffExemplarFilter()
            )
        else:
            self.meter_provider = NoOpMeterProvider()
        meter = self.meter_provider.get_meter("dosis", services.__version__)
        self.rpc_duration = meter.create_histogram(
            "rpc.server.duration", unit="ms", description="Duration of DOSIS RPCs, per method and status code"
        )
        # Hot-path counts are kept in plain counters and read by the SDK at export time
        # (observable counters): a synchronous SDK counter costs tens of µs per add.
        self._outcomes: collections.Counter[tuple[str, str]] = collections.Counter()
        self._cache_lookups: collections.Counter[str] = collections.Counter()
        meter.create_observable_counter(
            "dosis.ingest.outcomes", unit="{status}", description="Statuses (pushed or listed) by outcome and supplier",
            callbacks=[lambda _: [
                Observation(n, {"outcome": o, "supplier": s}) for (o, s), n in list(self._outcomes.items())
            ]],
        )
        meter.create_observable_counter(
            "dosis.catalog.cache.lookups", unit="{lookup}", description="Catalog checks by cache result (hit, miss)",
            callbacks=[lambda _: [Observation(n, {"result": r}) for r, n in list(self._cache_lookups.items())]],
        )
        self.page_sizes = meter.create_histogram(
            "dosis.query.page_size", unit="{dossier}", description="Dossiers per answered page"
        )
        self.batch_rates = meter.create_histogram(
            "dosis.ingest.batch.rate", unit="{row}/s", description="Rows per second of each CSV list (UploadBatch)"
        )

    def count_outcome(self, outcome: str, supplier_id: str, count: int = 1) -> None:
        self._outcomes[(outcome, supplier_id)] += count

    def count_cache_lookup(self, hit: bool) -> None:
        self._cache_lookups["hit" if hit else "miss"] += 1

    @classmethod
    def from_env(cls, service: str, env: dict[str, str] | None = None) -> Telemetry:
        """OTLP export (gRPC) when OTEL_EXPORTER_OTLP_ENDPOINT (or a per-signal one) is set,
        per signal unless OTEL_TRACES_EXPORTER / OTEL_METRICS_EXPORTER say `none`."""
        env = dict(os.environ if env is None else env)
        span_exporter = metric_reader = None
        if exports("TRACES", env):
            try:
                from services.common.otlp_export import PrivateOTLPSpanExporter

                span_exporter = PrivateOTLPSpanExporter()
            except ImportError:
                # Our encoder borrows helpers the exporter package keeps internal; should a
                # release move them, the SDK's own exporter (behind PrivacyFilter) still works.
                log.warning("the quick span encoder is not available; using the SDK's OTLP exporter")
                from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

                span_exporter = OTLPSpanExporter()
        if exports("METRICS", env):
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

            metric_reader = PeriodicExportingMetricReader(OTLPMetricExporter())
        return cls(service, span_exporter, metric_reader, env)

    @classmethod
    def disabled(cls, service: str) -> Telemetry:
        return cls(service, env={})

    def _light_tracer(self, name: str, version: str | None = None) -> LightTracer:
        """A light tracer with the scope the SDK's tracer of that name would have."""
        return LightTracer(self.tracer_provider, self._processor, InstrumentationScope(name, version or ""))

    def client_interceptors(self) -> list:
        if not self.tracing:
            return []
        return aio_client_interceptors(tracer_provider=self.tracer_provider)

    def instrument_engine(self, engine) -> None:
        """Database spans for this engine, under this service's provider.

        The instrumentor's public entry point is a process-wide singleton; a per-engine
        EngineTracer is what it attaches underneath, and what lets each service of an
        in-process test keep its own provider.
        """
        if not self.tracing:
            return
        tracer = self._light_tracer("opentelemetry.instrumentation.sqlalchemy")
        # No connection-usage metric: it costs two SDK measurements per pool checkout.
        usage = NoOpMeterProvider().get_meter("sqlalchemy").create_up_down_counter("db.client.connections.usage")
        _StatementTracer(tracer, engine, usage)

    def shutdown(self) -> None:
        if self.tracing:
            self.tracer_provider.shutdown()
        if self.metrics:
            self.meter_provider.shutdown()


class _StatementTracer(EngineTracer):
    """The SQLAlchemy instrumentation's engine tracer, made cheap per statement.

    The library computes a statement's span name and attributes (URL, database name, the
    statement's first word) for every execution, and starts a span even inside an unsampled
    trace. Here a statement gets a span only when the current span is recording, with the
    library's own name and attributes computed once per distinct statement. The library's
    after-execute and error hooks end the span as before. (No sqlcommenter: never enabled.)
    """

    _MAX_STATEMENTS = 1024

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._described: dict[str, tuple[str, dict]] = {}

    def _before_cur_exec(self, conn, cursor, statement, params, context, _executemany):
        # Not recording: an unsampled trace (ParentBased would drop the child anyway) or
        # no trace at all (start-up, migrations), where a root span would explain nothing.
        if not trace.get_current_span().is_recording() or not is_instrumentation_enabled():
            return statement, params
        described = self._described.get(statement)
        if described is None:
            described = self._describe(conn, cursor, statement)
        name, attributes = described
        context._otel_span = self.tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes)
        return statement, params

    def _describe(self, conn, cursor, statement) -> tuple[str, dict]:
        attributes, found = _sqla._get_attributes_from_url(
            conn.engine.url, self._sem_conv_opt_in_mode_db, self._sem_conv_opt_in_mode_http
        )
        if not found:
            attributes = _sqla._get_attributes_from_cursor_or_conn(
                self.vendor, conn, cursor, attributes, self._sem_conv_opt_in_mode_db, self._sem_conv_opt_in_mode_http
            )
        db_name = _sqla._get_db_name_from_cursor_or_conn(self.vendor, conn, cursor)
        recorded = _Recorder()
        self._set_db_client_span_attributes(recorded, statement, db_name, attributes)
        if len(self._described) >= self._MAX_STATEMENTS:
            self._described.clear()
        described = self._described[statement] = (self._operation_name(db_name, statement), recorded.attributes)
        return described


class _Recorder:
    """Stands in for a span to collect the attributes the library would set on it."""

    def __init__(self):
        self.attributes: dict = {}

    def set_attribute(self, key, value) -> None:
        self.attributes[key] = value


# --- logs ---------------------------------------------------------------------------------


class TraceContextFilter(logging.Filter):
    """Adds trace_id/span_id of the current span, and scrubs the message."""

    def __init__(self, service_name: str):
        super().__init__()
        self.service_name = service_name

    def filter(self, record: logging.LogRecord) -> bool:
        context = trace.get_current_span().get_span_context()
        record.trace_id = format(context.trace_id, "032x") if context.is_valid else ""
        record.span_id = format(context.span_id, "016x") if context.is_valid else ""
        record.service_name = self.service_name
        record.msg, record.args = scrub(record.getMessage()), None
        if record.exc_info and record.exc_info[0] is not None:
            # Exception messages can quote stored values (a database error quotes the row):
            # keep the type and where it happened, never the message.
            kind, _, tb = record.exc_info
            record.exc_text = "Traceback (most recent call last):\n" + "".join(traceback.format_tb(tb)) + kind.__name__
            record.exc_info = None
        return True


def configure_logging(service: str, level: str = "INFO", json_logs: bool = True) -> None:
    """Structured JSON logs on stderr, correlated with traces."""
    from pythonjsonlogger.json import JsonFormatter

    handler = logging.StreamHandler()
    handler.addFilter(TraceContextFilter(f"dosis-{service}"))
    if json_logs:
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s %(service_name)s %(trace_id)s %(span_id)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(service_name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("alembic").setLevel(logging.WARNING)
