"""Faults survived, each bounded in time: kill -9 of ingest mid-stream, the catalog down and
back, PostgreSQL connections killed mid-load, and 50 clients racing on one dossier. Nothing
acknowledged is ever lost, and no service needs a restart to recover."""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import grpc
import psycopg
import pytest
import sqlalchemy as sa

from dosis.client import error_details
from dosis.v1 import ingest_pb2_grpc
from services.catalog import service as catalog_service
from services.common.server import build_server
from services.runner import verifier_for
from tests.helpers import UTC, push_request, status
from tests.ingest_helpers import CREATED, STALE, UPDATED, expect_error, get_dossier, push, stored_rows
from tests.process_helpers import kill_hard, on_stores, serve, serving


def stored_details(engine) -> dict[str, str]:
    """dossier_id → detail_status of every stored dossier."""
    with engine.connect() as c:
        return dict(c.execute(sa.text("SELECT dossier_id, detail_status FROM dossiers")).all())


def test_acknowledged_pushes_survive_kill_9_of_ingest_mid_stream(stores, settings, tokens, tmp_path):
    services = on_stores(settings, stores)
    supplier = (("authorization", f"Bearer {tokens.supplier()}"),)
    total, kill_after = 20_000, 300
    log = tmp_path / "services.log"
    with serving(("catalog", "ingest"), services, log) as processes:
        channel = grpc.insecure_channel(services.ingest_addr)
        requests = (
            push_request(status(dossier=f"K-{i}", detail_status=f"detail {i}"), request_id=f"K-{i}")
            for i in range(total)
        )
        acknowledged = []
        with pytest.raises(grpc.RpcError) as cut:
            for reply in ingest_pb2_grpc.IngestServiceStub(channel).StreamStatuses(
                requests, metadata=supplier, timeout=60
            ):
                assert reply.outcome == CREATED, reply
                acknowledged.append(reply.request_id)
                if len(acknowledged) == kill_after:
                    kill_hard(processes["ingest"].pid)
        assert cut.value.code() == grpc.StatusCode.UNAVAILABLE
        channel.close()
        assert kill_after <= len(acknowledged) < total  # killed mid-stream
        processes["ingest"].wait(timeout=10)
        processes["ingest"] = serve("ingest", services, log)  # a restart on the same store

        stored = stored_details(stores.dossiers)
        lost = [d for d in acknowledged if stored.get(d) != f"detail {d.removeprefix('K-')}"]
        assert lost == []
        with grpc.insecure_channel(services.ingest_addr) as again:
            reply = ingest_pb2_grpc.IngestServiceStub(again).PushStatus(
                push_request(status(dossier="after")), metadata=supplier, timeout=10
            )
        assert reply.outcome == CREATED


def test_ingest_recovers_by_itself_when_the_catalog_comes_back(stack, loop_thread):
    port = stack.servers["catalog"].port
    loop_thread.run(stack.servers["catalog"].stop(grace=0))
    for attempt in range(3):  # down a while: the catalog client's channel backs off
        expect_error(
            stack.ingest.PushStatus, push_request(status(product="1519", dossier=f"D-{attempt}")),
            metadata=stack.as_supplier(), code=grpc.StatusCode.UNAVAILABLE, reason="CATALOG_UNAVAILABLE", timeout=10,
        )
        time.sleep(0.5)
    assert stored_rows(stack) == []  # nothing unchecked is stored

    async def restart():
        service = catalog_service.create(stack.settings, engine=stack.stores.catalog, audit_engine=stack.stores.dossiers)
        return await build_server(service, verifier_for(stack.settings), f"127.0.0.1:{port}")

    stack.servers["catalog"] = loop_thread.run(restart())  # the fixture stops it at the end
    started, deadline = time.monotonic(), time.monotonic() + 15
    while True:
        try:
            reply = push(stack, status(product="1519", dossier="D-back"))
            break
        except grpc.RpcError as exc:
            assert error_details(exc).reason == "CATALOG_UNAVAILABLE"
            assert time.monotonic() < deadline, "ingest did not recover from the catalog's absence"
            time.sleep(0.2)
    assert reply.outcome == CREATED
    assert time.monotonic() - started < 10
    assert [r["dossier_id"] for r in stored_rows(stack)] == ["D-back"]


def terminate_other_connections(engine) -> int:
    """Kill every other connection to this test database, as a failing-over server would."""
    url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True) as admin:
        return len(admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall())


@pytest.mark.parametrize("stores", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_postgres_connections_killed_mid_load_lose_no_acknowledged_push(stack):
    acknowledged: dict[str, str] = {}
    failures: list[grpc.StatusCode] = []
    after_kill: list[str] = []
    killed = threading.Event()
    stop = time.monotonic() + 4

    def pusher(worker: int) -> None:
        i = 0
        while time.monotonic() < stop:
            dossier, i = f"P-{worker}-{i}", i + 1
            try:
                push(stack, status(dossier=dossier, detail_status=f"d {dossier}"))
            except grpc.RpcError as exc:
                failures.append(exc.code())
                continue
            acknowledged[dossier] = f"d {dossier}"
            if killed.is_set():
                after_kill.append(dossier)

    with ThreadPoolExecutor(8) as pool:
        workers = [pool.submit(pusher, w) for w in range(8)]
        time.sleep(1.5)
        assert terminate_other_connections(stack.stores.dossiers) > 0
        killed.set()
        for worker in workers:
            worker.result(timeout=30)
    # While the connections were cut a push either waits for a new connection (store.retry,
    # pool_pre_ping) or fails: never an acknowledgement of what was not stored. A retry that
    # ran out would reach the caller as INTERNAL (no store error maps to UNAVAILABLE yet).
    assert set(failures) <= {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INTERNAL}, failures
    assert len(after_kill) > 50  # ingest went on without a restart
    stored = stored_details(stack.stores.dossiers)
    assert [d for d, detail in acknowledged.items() if stored.get(d) != detail] == []
    # The query service reconnected too.
    terminate_other_connections(stack.stores.dossiers)
    assert get_dossier(stack, dossier=after_kill[-1]).detail_status == f"d {after_kill[-1]}"


def test_fifty_clients_racing_on_one_dossier_leave_the_newest_status(stack):
    rng = random.Random(21)
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    times = [base + timedelta(seconds=s) for s in rng.sample(range(3600), 50 * 4)]
    per_client = [times[c::50] for c in range(50)]
    start = threading.Barrier(50)

    def client(mine: list[datetime]) -> list[int]:
        start.wait(timeout=10)
        return [
            push(stack, status(dossier="RACE", when=when, detail_status=when.isoformat())).outcome for when in mine
        ]

    with ThreadPoolExecutor(50) as pool:
        outcomes = [o for result in pool.map(client, per_client, timeout=60) for o in result]
    newest = max(times)
    assert outcomes.count(CREATED) == 1
    assert set(outcomes) <= {CREATED, UPDATED, STALE}
    assert stored_details(stack.stores.dossiers) == {"RACE": newest.isoformat()}
    with stack.stores.dossiers.connect() as c:
        stored_time = c.execute(sa.text("SELECT status_time FROM dossiers")).scalar()
    assert str(stored_time).startswith(newest.replace(tzinfo=None).isoformat(sep=" "))
