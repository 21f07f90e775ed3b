"""Running services: one per process (`dosis serve`), or all three (`dosis up`)."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import subprocess
import sys
import time
from dataclasses import replace

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.catalog import service as catalog_service
from services.common.auth import TokenVerifier, ensure_dev_keys, mint_dev_token
from services.common.server import SERVICE_NAMES, build_server, run_until_signalled
from services.ingest import service as ingest_service
from services.query import service as query_service
from services.settings import Settings, child_env
from services.store.audit import grant_service_role
from services.store.engine import make_engine, migrate
from services.telemetry import Telemetry, configure_logging

log = logging.getLogger("dosis")

FACTORIES = {"catalog": catalog_service.create, "ingest": ingest_service.create, "query": query_service.create}
START_ORDER = ("catalog", "ingest", "query")


def verifier_for(settings: Settings) -> TokenVerifier:
    return TokenVerifier(settings.jwks, settings.jwt_issuer, settings.jwt_audience)


async def serve(name: str, settings: Settings) -> None:
    telemetry = Telemetry.from_env(name, settings.otel)
    service = FACTORIES[name](settings, telemetry=telemetry)
    running = await build_server(service, verifier_for(settings), settings.addr(name))
    _settle_garbage_collector()
    log.info("dosis-%s serving on port %d", name, running.port)
    try:
        await run_until_signalled(running)
    finally:
        telemetry.shutdown()  # flushes the last spans and metrics


def _settle_garbage_collector() -> None:
    """Once started: what exists now (modules, engine, stubs, about 100,000 objects) is kept
    out of collections, and collections run ten times less often. Each call allocates
    thousands of short-lived objects (more when traced), and with the defaults a full
    collection walking all start-up objects ran every few hundred calls, costing about 50 µs
    per call in all (measured in benchmarks/tracing_overhead.py)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


def migrate_stores(settings: Settings, service_role: str = "") -> None:
    """Bring the stores to the newest schema (`dosis migrate`, and `dosis up` before starting),
    and on PostgreSQL grant the services' own role what it needs and no more (store.audit)."""
    for url, store in (
        (settings.database_url, "store"),
        (settings.catalog_database_url, "catalog"),
        (settings.audit_database_url, "audit"),
    ):
        engine = make_engine(url)
        migrate(engine, store)
        if service_role:
            grant_service_role(engine, service_role)
        engine.dispose()


def prepare(settings: Settings) -> Settings:
    """What `dosis up` does before starting anything: keys, schemas, demo catalog; the
    settings its children get."""
    if settings.uses_dev_keys:
        ensure_dev_keys(settings.state_dir)
        if not settings.catalog_token:
            token = mint_dev_token(settings, {"sub": "dosis-query"}, ttl_seconds=30 * 24 * 3600)
            settings = replace(settings, catalog_token=token)
    migrate_stores(settings)
    catalog = make_engine(settings.catalog_database_url)
    seeded = catalog_service.seed_demo_if_empty(catalog)
    catalog.dispose()
    if seeded:
        log.info("catalog was empty: seeded %d demo products", seeded)
    # A person reads the children's logs here; compose keeps JSON.
    return replace(settings, log_format=settings.log_format or "text")


def wait_serving(address: str, service: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            try:
                reply = stub.Check(
                    health_pb2.HealthCheckRequest(service=service),
                    timeout=max(0.1, deadline - time.monotonic()),
                    wait_for_ready=True,  # no reconnect back-off while the server starts
                )
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return True
            except grpc.RpcError:
                pass
            time.sleep(0.2)
    return False


def exit_description(returncode: int) -> str:
    """How a child ended, for a person: "exited with code 3", "was killed by SIGKILL"."""
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with code {returncode}"


def up(settings: Settings, on_ready) -> int:
    """Start the three services as child processes; stop them all on Ctrl-C or SIGTERM (to
    this process alone or to its process group). A child that dies on its own is reported
    in one line; the others are then stopped and `dosis up` exits with 1."""
    settings = prepare(settings)
    env = child_env(settings)
    children: dict[str, subprocess.Popen] = {}
    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        for name in START_ORDER:
            if stopping:
                return 0
            children[name] = subprocess.Popen([sys.executable, "-m", "services", "serve", name], env=env)
            if not wait_serving(settings.addr(name), SERVICE_NAMES[name], timeout=30):
                log.error("dosis-%s did not become healthy on %s", name, settings.addr(name))
                return 1
        on_ready(settings)
        while not stopping:
            for name, child in children.items():
                if child.poll() is not None:
                    log.error("dosis-%s %s; stopping the others", name, exit_description(child.returncode))
                    return 1
            time.sleep(0.2)
        return 0
    finally:
        for child in children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children.values():
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def run_service(name: str, settings: Settings) -> None:
    configure_logging(name, level=settings.log_level, json_logs=settings.json_logs)
    asyncio.run(serve(name, settings))
