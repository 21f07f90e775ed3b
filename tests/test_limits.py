"""Limits of the ingest service: a per-supplier rate limit (RESOURCE_EXHAUSTED with a
RetryInfo, or a stream that slows down), message size caps, and a bounded queue in front of
the group-commit writer (a slow database makes callers wait instead of growing memory)."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from dataclasses import replace
from datetime import timedelta

import grpc
import psycopg
import pytest
from opentelemetry import trace

from dosis.v1 import ingest_pb2, ingest_pb2_grpc
from services.common.server import build_server
from services.ingest import service as ingest_service
from services.ingest.rate_limit import RateLimiter
from services.ingest.validation import validate_status
from services.runner import verifier_for
from services.store.outcomes import Outcome
from services.store.writer import GroupWriter
from tests.helpers import push_request, status
from tests.ingest_helpers import CREATED, expect_error, stored_rows


def test_the_token_bucket_refills_at_its_rate():
    now = [100.0]
    limiter = RateLimiter(rate=10, burst=3, clock=lambda: now[0])
    assert [limiter.try_take("A") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.try_take("A") == pytest.approx(0.1)  # one token takes 1/rate seconds
    assert limiter.try_take("B") == 0.0  # each supplier has its own bucket
    now[0] += 0.05
    assert limiter.try_take("A") == pytest.approx(0.05)
    now[0] += 0.05
    assert limiter.try_take("A") == 0.0
    now[0] += 60  # an idle supplier gets its burst back, no more
    assert [limiter.try_take("A") for _ in range(4)][-1] > 0
    assert all(RateLimiter(rate=0, burst=0).try_take("A") == 0.0 for _ in range(10_000))  # 0: no limit


@contextlib.contextmanager
def limited_ingest(stack, loop_thread, rate: int, burst: int):
    """An ingest server of its own, with this rate limit, next to the stack's catalog."""
    settings = replace(stack.settings, catalog_addr=stack.address("catalog"), ingest_rate=rate, ingest_burst=burst)

    async def start():  # in the servers' loop: the catalog client's channel belongs to it
        service = ingest_service.create(settings, engine=stack.stores.dossiers, audit_engine=stack.stores.dossiers)
        return await build_server(service, verifier_for(settings), "127.0.0.1:0")

    server = loop_thread.run(start())
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    try:
        yield ingest_pb2_grpc.IngestServiceStub(channel)
    finally:
        channel.close()
        loop_thread.run(server.stop(grace=0.5))


def test_pushes_over_the_rate_are_refused_with_a_retry_delay(stack, loop_thread):
    with limited_ingest(stack, loop_thread, rate=4, burst=3) as ingest:
        supplier = stack.as_supplier()
        for i in range(3):
            assert ingest.PushStatus(push_request(status(dossier=f"R-{i}")), metadata=supplier).outcome == CREATED
        refused = expect_error(
            ingest.PushStatus, push_request(status(dossier="R-3")), metadata=supplier,
            code=grpc.StatusCode.RESOURCE_EXHAUSTED, reason="RATE_LIMITED",
        )
        assert timedelta(0) < refused.retry_delay <= timedelta(seconds=0.25)
        # Every write RPC takes from the same bucket.
        expect_error(
            ingest.DeleteDossier, ingest_pb2.DeleteDossierRequest(product_id="1502", dossier_id="R-0"),
            metadata=supplier, code=grpc.StatusCode.RESOURCE_EXHAUSTED, reason="RATE_LIMITED",
        )
        # Another supplier's bucket is its own: it gets its ordinary answer.
        expect_error(
            ingest.PushStatus, push_request(status(dossier="O-1")), metadata=stack.as_supplier("OMGEVING"),
            code=grpc.StatusCode.PERMISSION_DENIED, reason="SUPPLIER_NOT_ALLOWED",
        )
        time.sleep(refused.retry_delay.total_seconds())
        assert ingest.PushStatus(push_request(status(dossier="R-3")), metadata=supplier).outcome == CREATED
    assert sorted(r["dossier_id"] for r in stored_rows(stack)) == ["R-0", "R-1", "R-2", "R-3"]


def test_a_stream_over_the_rate_slows_down_instead_of_rejecting(stack, loop_thread):
    rate, burst, n = 20, 5, 25
    with limited_ingest(stack, loop_thread, rate=rate, burst=burst) as ingest:
        started = time.monotonic()
        replies = list(ingest.StreamStatuses(
            (push_request(status(dossier=f"S-{i}"), request_id=str(i)) for i in range(n)),
            metadata=stack.as_supplier(), timeout=30,
        ))
        elapsed = time.monotonic() - started
    assert [r.outcome for r in replies] == [CREATED] * n
    assert elapsed >= 0.9 * (n - burst) / rate  # paced by the bucket
    assert len(stored_rows(stack)) == n


MIB = 1024 * 1024


def test_an_oversized_message_is_resource_exhausted_and_the_server_keeps_serving(stack):
    """The servers take messages up to 8 MiB: far above the largest legitimate one (a status
    of at most a few kB, an UploadBatch chunk of 256 kB from the CLI)."""
    supplier = stack.as_supplier()
    huge = status(dossier="BIG", detail_status="x" * (9 * MIB))
    with pytest.raises(grpc.RpcError) as info:
        stack.ingest.PushStatus(push_request(huge), metadata=supplier, timeout=10)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    with pytest.raises(grpc.RpcError) as info:
        list(stack.ingest.StreamStatuses(iter([push_request(huge)]), metadata=supplier, timeout=10))
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    chunks = [
        ingest_pb2.UploadBatchRequest(header=ingest_pb2.BatchHeader(size_bytes=9 * MIB)),
        ingest_pb2.UploadBatchRequest(chunk=b"x" * (9 * MIB)),
    ]
    with pytest.raises(grpc.RpcError) as info:
        stack.ingest.UploadBatch(iter(chunks), metadata=supplier, timeout=10)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    # Just under the cap is taken (and refused on its merits), and the server still serves.
    near = status(dossier="NEAR", detail_status="x" * (7 * MIB))
    expect_error(
        stack.ingest.PushStatus, push_request(near), metadata=supplier, timeout=10,
        code=grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert stack.ingest.PushStatus(push_request(status(dossier="OK")), metadata=supplier).outcome == CREATED
    assert [r["dossier_id"] for r in stored_rows(stack)] == ["OK"]


@contextlib.contextmanager
def database_locked(stores):
    """Another connection holds the dossier store's write lock (SQLite) or a lock on the
    dossiers table (PostgreSQL): the writer's transactions wait for it."""
    url = stores.dossiers.url
    if stores.backend == "sqlite":
        connection = sqlite3.connect(url.database, isolation_level=None)
        connection.execute("BEGIN IMMEDIATE")
    else:
        connection = psycopg.connect(url.set(drivername="postgresql").render_as_string(hide_password=False))
        connection.execute("LOCK TABLE dossiers IN EXCLUSIVE MODE")
    try:
        yield
    finally:
        connection.rollback() if stores.backend != "sqlite" else connection.execute("ROLLBACK")
        connection.close()


def test_a_slow_database_makes_pushes_wait_in_a_bounded_queue(stores):
    bound, callers = 16, 300

    async def run():
        writer = GroupWriter(stores.dossiers, trace.NoOpTracer(), max_batch=8, max_queued=bound)

        async def push(i: int) -> Outcome:
            future = await writer.submit("VLAIO", validate_status(status(dossier=f"Q-{i}")))
            return await future

        try:
            with database_locked(stores):
                tasks = [asyncio.ensure_future(push(i)) for i in range(callers)]
                most, deadline = 0, time.monotonic() + 1.5
                while time.monotonic() < deadline:
                    most = max(most, writer.queued)
                    await asyncio.sleep(0.01)
                assert most == bound  # full, and never past it
                assert not any(t.done() for t in tasks)  # everyone waits: nothing stored
            outcomes = await asyncio.wait_for(asyncio.gather(*tasks), timeout=30)
            assert writer.queued == 0
            return outcomes
        finally:
            await writer.close()

    assert asyncio.run(run()) == [Outcome.CREATED] * callers
