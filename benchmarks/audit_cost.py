"""What the audit trail costs a list call: ListDossiers throughput with and without its event.

Two query services over the same dossier store run side by side, as processes of their own:
one records every call's event (as DOSIS always does) and one is the same service with the
recorder left out (the limit: the same answers, no event). A catalog service gives both
the product names. Bursts of ListDossiers (first pages of random enterprises, C calls in
flight) take turns on the two, each in each place of the order in turn; the cost is judged
per round (paired: the same minutes) and the median of the rounds is the figure.
Target (issue "Trust"): the event costs a list call at most 10 % of its throughput.

    .venv/bin/python benchmarks/audit_cost.py [--rounds 5] [--dossiers 1000000] [--events 1000000]
        [--database-url postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from grpc import aio  # noqa: E402
from tracing_overhead import _drop_postgres, _fresh_postgres, free_port  # noqa: E402

from dosis.client import bearer  # noqa: E402
from dosis.v1 import query_pb2, query_pb2_grpc  # noqa: E402
from services.catalog import service as catalog_service  # noqa: E402
from services.common.auth import ensure_dev_keys, mint_dev_token  # noqa: E402
from services.common.server import build_server, run_until_signalled  # noqa: E402
from services.query import service as query_service  # noqa: E402
from services.runner import migrate_stores, verifier_for  # noqa: E402
from services.settings import load_settings  # noqa: E402
from services.store import bulk  # noqa: E402
from services.store.audit import AuditEntry, insert_events  # noqa: E402
from services.store.engine import make_engine  # noqa: E402
from services.store.models import as_row  # noqa: E402

UTC = timezone.utc
ROLE = "Bedrijfsleider"
ON, OFF = "with its event", "without (limit)"


def enterprise_numbers(count: int) -> list[str]:
    """Valid KBO numbers (mod 97 check digits)."""
    numbers = []
    for base in range(2_000_000, 2_000_000 + count):
        first = f"0{base:07d}"
        numbers.append(first + f"{97 - int(first) % 97:02d}")
    return numbers


def seed(database_url: str, dossiers: int, enterprises: list[str], events: int) -> None:
    """Dossiers spread over the enterprises, through the store's own bulk path (as a CSV list
    is stored), and audit events already in the trail, as a store in service holds them."""
    engine = make_engine(database_url)
    now = datetime.now(UTC)
    with engine.connect() as connection:
        for start in range(0, dossiers, 10_000):
            bulk.stage(connection, [as_row({
                "enterprise_number": enterprises[i % len(enterprises)], "product_id": "1502",
                "dossier_id": f"A-{i}", "phase": 2, "status": 12, "detail_status": "",
                "status_time": now - timedelta(seconds=i), "reference_url": "https://www.vlaio.be/x",
                "reference_email": "", "reference_contact": "", "required_roles": [ROLE], "public": False,
                "action_required": False, "action": "", "visible_until": None,
            }) for i in range(start, min(start + 10_000, dossiers))])
            with connection.begin():
                bulk.store(connection, "VLAIO", now)
        for start in range(0, events, 10_000):
            with connection.begin():
                insert_events(connection, [AuditEntry(
                    "dosis-query", "/dosis.v1.QueryService/ListDossiers", f"person-{i % 5000}", "",
                    enterprises[i % len(enterprises)], "OK", 5, "",
                ) for i in range(start, min(start + 10_000, events))])
    engine.dispose()


async def serve(kind: str, env: dict[str, str]) -> None:
    """One service in this process: the catalog, or a query service with or without events."""
    settings = load_settings(env)
    if kind == "catalog":
        service = catalog_service.create(settings)
        address = settings.catalog_addr
    else:
        service = query_service.create(settings)
        if kind == "query-off":
            service = replace(service, audit=None)  # the same service, its calls not recorded
        address = settings.query_addr
    running = await build_server(service, verifier_for(settings), address)
    print("ready", flush=True)
    await run_until_signalled(running)


def start(kind: str, env: dict[str, str]) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, __file__, "--serve", kind], env=env, stdout=subprocess.PIPE, text=True)
    if process.stdout.readline().strip() != "ready":
        raise RuntimeError(f"{kind} did not start")
    return process


async def burst(stub, metadata_of, enterprises: list[str], calls: int, concurrency: int) -> float:
    """Seconds for `calls` first pages of random enterprises, `concurrency` in flight."""
    remaining = iter(range(calls))

    async def caller():
        for _ in remaining:
            enterprise = random.choice(enterprises)
            await stub.ListDossiers(query_pb2.ListDossiersRequest(enterprise_number=enterprise),
                                    metadata=metadata_of[enterprise], timeout=30)

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return time.perf_counter() - started


async def measure(addresses: dict[str, str], settings, enterprises: list[str], args) -> list[dict[str, float]]:
    metadata_of = {e: bearer(mint_dev_token(settings, {"sub": "bench", "dosis_enterprise": e, "dosis_roles": [ROLE]}))
                   for e in enterprises}
    channels = {label: aio.insecure_channel(address) for label, address in addresses.items()}
    stubs = {label: query_pb2_grpc.QueryServiceStub(channel) for label, channel in channels.items()}
    for stub in stubs.values():
        await burst(stub, metadata_of, enterprises, 200, 8)  # warm-up: connections, names cache
    rounds = []
    labels = list(stubs)
    for number in range(1, args.rounds + 1):
        seconds = dict.fromkeys(labels, 0.0)
        for cycle in range(args.cycles):
            order = labels if (number + cycle) % 2 else labels[::-1]
            for label in order:
                seconds[label] += await burst(stubs[label], metadata_of, enterprises, args.burst, args.concurrency)
        rates = {label: args.burst * args.cycles / seconds[label] for label in labels}
        rounds.append(rates)
        print(f"  round {number}: " + ", ".join(f"{label} {rate:,.0f}/s" for label, rate in rates.items())
              + f"; cost {1 - rates[ON] / rates[OFF]:.1%}", flush=True)
    for channel in channels.values():
        await channel.close()
    return rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cycles", type=int, default=4, help="bursts of each per round")
    parser.add_argument("--burst", type=int, default=1000, help="list calls per burst")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--dossiers", type=int, default=1_000_000)
    parser.add_argument("--enterprises", type=int, default=200_000)
    parser.add_argument("--events", type=int, default=1_000_000, help="audit events already in the trail")
    parser.add_argument("--database-url", default="", help="PostgreSQL (a fresh database is made); default SQLite")
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args.serve, dict(os.environ)))
        return

    state = tempfile.TemporaryDirectory()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOSIS_", "OTEL_"))}
    env.update(DOSIS_STATE_DIR=state.name, DOSIS_LOG_LEVEL="WARNING", DOSIS_SEED_DEMO="1", PYTHONHASHSEED="0")
    if args.database_url:
        env["DOSIS_DATABASE_URL"] = _fresh_postgres(args.database_url)
    env["DOSIS_CATALOG_ADDR"] = f"127.0.0.1:{free_port()}"
    settings = load_settings(env)
    ensure_dev_keys(settings.state_dir)
    migrate_stores(settings)
    enterprises = enterprise_numbers(args.enterprises)
    seed(settings.database_url, args.dossiers, enterprises, args.events)
    store = "PostgreSQL" if args.database_url else "SQLite"
    print(f"ListDossiers, {args.dossiers:,} dossiers of {args.enterprises:,} enterprises and {args.events:,} "
          f"audit events already stored, on {store}, {args.concurrency} calls in flight:", flush=True)
    processes = [start("catalog", env)]
    addresses = {}
    try:
        for label, kind in ((ON, "query-on"), (OFF, "query-off")):
            addresses[label] = f"127.0.0.1:{free_port()}"
            processes.append(start(kind, {**env, "DOSIS_QUERY_ADDR": addresses[label]}))
        rounds = asyncio.run(measure(addresses, settings, enterprises, args))
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
        if args.database_url:
            _drop_postgres(args.database_url, env["DOSIS_DATABASE_URL"])
        state.cleanup()
    costs = sorted(1 - r[ON] / r[OFF] for r in rounds)
    median = statistics.median(costs)
    for label in (OFF, ON):
        print(f"  {label:<18} {statistics.median(r[label] for r in rounds):8,.0f} lists/s (median of the rounds)")
    verdict = "met" if median <= 0.10 else "NOT met"
    print(f"  cost of the event  {median:6.1%} of the throughput, median of the rounds "
          f"(rounds {costs[0]:.1%} … {costs[-1]:.1%}) (target ≤ 10 %: {verdict})")


if __name__ == "__main__":
    main()
