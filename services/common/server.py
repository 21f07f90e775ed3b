"""Building and running one gRPC service, as the gRPC project's own examples do.

build_server() returns (server, port) so tests can bind port 0; every server gets the
call interceptor (identity, errors), the library health service and server reflection.
run_until_signalled() serves until SIGTERM/SIGINT, then reports NOT_SERVING and stops
gracefully: the listening port closes and new calls are refused (UNAVAILABLE), calls in
flight get up to GRACE_SECONDS to finish, and only then are the service's store and
clients closed.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from grpc import aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from services.common.audit_trail import CallRecorder
from services.common.auth import Policy, TokenVerifier
from services.common.calls import CallInterceptor
from services.store.audit import AuditStore
from services.telemetry import Telemetry

log = logging.getLogger(__name__)

SERVICE_NAMES = {
    "ingest": "dosis.v1.IngestService",
    "query": "dosis.v1.QueryService",
    "catalog": "dosis.v1.CatalogService",
}
GRACE_SECONDS = 5.0

# Calls served at once, at most, per server; past it gRPC answers RESOURCE_EXHAUSTED. It
# bounds what each call holds (a worker thread's queued read, a stream's window), far above
# what the benchmarks run (128 concurrent callers) and room for long-lived watch streams.
MAX_CONCURRENT_RPCS = 4096

# Every message a server takes is at most 8 MiB (past it: RESOURCE_EXHAUSTED, and the server
# goes on serving). The largest legitimate ones are a status of a few kB and an UploadBatch
# chunk (the CLI sends 256 kB); answers stay far below the clients' default 4 MiB.
_CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 8 * 1024 * 1024),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
]


@dataclass
class Hosted:
    """One gRPC service a server offers."""

    full_name: str  # dosis.v1.IngestService
    servicer: object
    register: Callable[[object, aio.Server], None]  # add_XServicer_to_server
    policies: Mapping[str, Policy]  # method name → policy


@dataclass
class Service:
    """What one service module hands to the runner: its gRPC service (the query service
    also offers AuditService), telemetry, the audit store its calls are recorded in."""

    label: str  # dosis-ingest: the service.name of its telemetry, the service of its audit events
    hosted: list[Hosted]
    telemetry: Telemetry
    audit: AuditStore | None = None
    close: Callable[[], Awaitable[None]] | None = None

    @property
    def full_name(self) -> str:
        return self.hosted[0].full_name


@dataclass
class RunningServer:
    server: aio.Server
    port: int
    health: health.aio.HealthServicer
    service: Service

    async def stop(self, grace: float = GRACE_SECONDS) -> None:
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
        if self.service.close is not None:
            await self.service.close()


async def build_server(service: Service, verifier: TokenVerifier, address: str) -> RunningServer:
    policies = {f"/{h.full_name}/{method}": policy for h in service.hosted for method, policy in h.policies.items()}
    recorder = CallRecorder(service.label, service.audit) if service.audit is not None else None
    prefixes = tuple(f"/{h.full_name}/" for h in service.hosted)
    calls = CallInterceptor(verifier, policies, prefixes, service.telemetry, recorder)
    server = aio.server(
        interceptors=[calls], options=_CHANNEL_OPTIONS, maximum_concurrent_rpcs=MAX_CONCURRENT_RPCS
    )
    for hosted in service.hosted:
        hosted.register(hosted.servicer, server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = [h.full_name for h in service.hosted]
    reflection.enable_server_reflection(
        (*names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME), server
    )
    port = server.add_insecure_port(address)
    await server.start()
    for name in ("", *names):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return RunningServer(server, port, health_servicer, service)


async def run_until_signalled(running: RunningServer) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("stopping %s (grace %.0fs)", running.service.full_name, GRACE_SECONDS)
    await running.stop()
