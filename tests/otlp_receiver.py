"""A test-local OTLP/gRPC receiver: what an OpenTelemetry collector would receive."""

from __future__ import annotations

import threading
from concurrent import futures

import grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from tests.helpers import wait_until


class OtlpReceiver(trace_service_pb2_grpc.TraceServiceServicer, metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self):
        self._lock = threading.Lock()
        self.trace_requests: list[trace_service_pb2.ExportTraceServiceRequest] = []
        self.metric_requests: list[metrics_service_pb2.ExportMetricsServiceRequest] = []
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(self, self._server)
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(self, self._server)
        self.port = self._server.add_insecure_port("127.0.0.1:0")

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> OtlpReceiver:
        self._server.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.stop(0)

    def Export(self, request, context):
        with self._lock:
            if isinstance(request, trace_service_pb2.ExportTraceServiceRequest):
                self.trace_requests.append(request)
                return trace_service_pb2.ExportTraceServiceResponse()
            self.metric_requests.append(request)
            return metrics_service_pb2.ExportMetricsServiceResponse()

    def spans(self) -> list[tuple[str, object]]:
        """(service.name, span) for every received span."""
        out = []
        with self._lock:
            for request in self.trace_requests:
                for resource_spans in request.resource_spans:
                    service = _service_name(resource_spans.resource)
                    for scope_spans in resource_spans.scope_spans:
                        out.extend((service, span) for span in scope_spans.spans)
        return out

    def metric_names(self) -> dict[str, set[str]]:
        """service.name → names of the metrics it exported."""
        out: dict[str, set[str]] = {}
        with self._lock:
            for request in self.metric_requests:
                for resource_metrics in request.resource_metrics:
                    names = out.setdefault(_service_name(resource_metrics.resource), set())
                    for scope in resource_metrics.scope_metrics:
                        names.update(m.name for m in scope.metrics)
        return out

    def raw_bytes(self) -> bytes:
        with self._lock:
            return b"".join(r.SerializeToString() for r in self.trace_requests + self.metric_requests)

    def wait_for(self, condition, timeout: float = 20.0) -> bool:
        return wait_until(condition, timeout, interval=0.1)


def _service_name(resource) -> str:
    for attribute in resource.attributes:
        if attribute.key == "service.name":
            return attribute.value.string_value
    return ""


# One servicer class serves both services: the generated registration helpers only need the
# method, and both services name it Export.


def main() -> None:
    """A sink as a process of its own (benchmarks): takes OTLP exports without decoding
    them, so the stand-in collector costs the measured machine as little as possible.
    Prints its endpoint, serves until stdin closes, then prints requests and bytes taken."""
    import sys

    taken = {"requests": 0, "bytes": 0}

    def export(request: bytes, context) -> bytes:
        taken["requests"] += 1
        taken["bytes"] += len(request)
        return b""  # an empty Export*ServiceResponse

    handlers = {
        "Export": grpc.unary_unary_rpc_method_handler(export, request_deserializer=None, response_serializer=None)
    }
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(f"opentelemetry.proto.collector.{signal}.v1.{name}", handlers)
            for signal, name in (("trace", "TraceService"), ("metrics", "MetricsService"))
        ]
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(f"http://127.0.0.1:{port}", flush=True)
    sys.stdin.read()
    server.stop(0)
    print(f"{taken['requests']} {taken['bytes']}", flush=True)


if __name__ == "__main__":
    main()
