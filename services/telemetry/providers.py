"""Traces and metrics for one service, from the standard OTEL_* variables given to it.

One Telemetry object per service process (tests run three in one process, so nothing here
depends on the global providers): resource service.name dosis-<service> plus version and
instance id; OTLP/gRPC export when OTEL_EXPORTER_OTLP_ENDPOINT is set; batch span
processor; parent-based ratio sampling (OTEL_TRACES_SAMPLER / _ARG override it).

The variables come as a mapping from the caller: nothing here reads os.environ. (The SDK
still reads the details it owns from the process environment: the exporters' endpoint,
headers and certificates, batch and span limits, resource attributes, a sampler named by
OTEL_TRACES_SAMPLER.)

Privacy is enforced at the exit: every span passes PrivacyFilter (privacy.py) before any
exporter sees it, so no enterprise number, role, dossier id or URL reaches the tracing
backend even if a library adds such an attribute. The OTLP exporter (otlp_export.py)
applies the same rules while it encodes, which is several times cheaper than a cleaned
copy of every span. Metric attributes are chosen here and never personal.
"""

from __future__ import annotations

import collections
import logging
import uuid
from collections.abc import Mapping

from opentelemetry import trace
from opentelemetry.instrumentation.grpc import aio_client_interceptors
from opentelemetry.metrics import NoOpMeterProvider, Observation
from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter, MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import Sampler
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import NoOpTracerProvider

import services
from services.telemetry.light_spans import LightTracer, ParentBasedRatio
from services.telemetry.privacy import PrivacyFilter
from services.telemetry.statements import StatementTracer

log = logging.getLogger(__name__)


def _sampler(env: Mapping[str, str]) -> Sampler | None:
    if env.get("OTEL_TRACES_SAMPLER"):
        return None  # the SDK reads OTEL_TRACES_SAMPLER and _ARG itself
    ratio = float(env.get("OTEL_TRACES_SAMPLER_ARG") or 1.0)
    return ParentBasedRatio(ratio)


def exports(signal: str, env: Mapping[str, str]) -> bool:
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
        *,
        env: Mapping[str, str],
        batch: bool = True,
    ):
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
    def from_env(cls, service: str, env: Mapping[str, str]) -> Telemetry:
        """OTLP export (gRPC) when OTEL_EXPORTER_OTLP_ENDPOINT (or a per-signal one) is set,
        per signal unless OTEL_TRACES_EXPORTER / OTEL_METRICS_EXPORTER say `none`; env
        holds the OTEL_* variables."""
        span_exporter = metric_reader = None
        if exports("TRACES", env):
            try:
                from services.telemetry.otlp_export import PrivateOTLPSpanExporter

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
        return cls(service, span_exporter, metric_reader, env=env)

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
        StatementTracer(tracer, engine, usage)

    def shutdown(self) -> None:
        if self.tracing:
            self.tracer_provider.shutdown()
        if self.metrics:
            self.meter_provider.shutdown()
