"""What tracing costs: PushStatus throughput with tracing off, 10 % and 100 % sampling.

Each configuration runs `dosis up` (three processes, SQLite) exporting over OTLP/gRPC to a
local receiver, and pushes N statuses from C concurrent callers. Prints pushes/s per
configuration next to the untraced run of the same script, the limit it is judged by.
Target (issue "OpenTelemetry end to end"): 100 % sampling costs at most 15 % of throughput.

"Tracing off" is tracing switched off the standard way (OTEL_TRACES_EXPORTER=none) with
the metrics still exported, as an operator who does not want traces runs it; the cost
measured is the cost of tracing. With no telemetry at all (no OTLP endpoint) is printed
too, so the metrics' own cost shows.

    .venv/bin/python benchmarks/tracing_overhead.py [--rounds 5] [--database-url postgresql://…]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from grpc import aio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dosis.client import bearer
from dosis.v1 import dossier_status_pb2 as pb
from dosis.v1 import ingest_pb2, ingest_pb2_grpc

from services.common.auth import mint_dev_token
from services.common.config import load_settings

ENTERPRISES = ["0316380841", "0534669938", "0687655467", "0203201340"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(i: int, when: datetime) -> ingest_pb2.PushStatusRequest:
    status = pb.DossierStatus(
        enterprise_number=ENTERPRISES[i % 4], product_id="1502", dossier_id=f"B-{i}",
        phase=pb.STATUS_PHASE_BEHANDELING_DOSSIER, status=pb.STATUS_CODE_IN_BEHANDELING,
        reference=pb.Reference(url="https://www.vlaio.be/x"), required_roles=["Bedrijfsleider"],
    )
    status.status_time.FromDatetime(when)
    return ingest_pb2.PushStatusRequest(status=status, request_id=str(i))


async def push_all(address: str, token: str, first: int, count: int, concurrency: int) -> float:
    when = datetime.now(UTC) - timedelta(minutes=1)
    async with aio.insecure_channel(address) as channel:
        stub = ingest_pb2_grpc.IngestServiceStub(channel)
        queue = iter(range(first, first + count))

        async def worker():
            for i in queue:
                await stub.PushStatus(request(i, when), metadata=bearer(token), timeout=30)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return count / (time.perf_counter() - started)


def run(label: str, otel: dict[str, str], pushes: int, concurrency: int, database_url: str = "") -> tuple[float, float]:
    """(pushes/s, ingest CPU seconds per push) of one configuration."""
    cleanup: list = []
    try:
        return _run(label, otel, pushes, concurrency, database_url, cleanup)
    finally:
        for step in cleanup:
            step()


def _run(label, otel, pushes, concurrency, database_url, cleanup) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as state:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DOSIS_", "OTEL_"))}
        # One hash seed for every run: the same dict and set layouts, one cause of spread fewer.
        env.update(otel, DOSIS_STATE_DIR=state, DOSIS_LOG_LEVEL="WARNING", PYTHONHASHSEED="0")
        if database_url:
            env["DOSIS_DATABASE_URL"] = _fresh_postgres(database_url)
            cleanup.append(lambda: _drop_postgres(database_url, env["DOSIS_DATABASE_URL"]))
        for name in ("INGEST", "QUERY", "CATALOG"):
            env[f"DOSIS_{name}_ADDR"] = f"127.0.0.1:{free_port()}"
        process = subprocess.Popen(
            [sys.executable, "-m", "services", "up"], env=env, stdout=subprocess.PIPE, text=True
        )
        try:
            for line in process.stdout:
                if line.startswith("Ctrl-C stops"):
                    break
            settings = load_settings(env)
            token = mint_dev_token(settings, {"sub": "bench", "dosis_supplier": "VLAIO"})
            asyncio.run(push_all(settings.ingest_addr, token, 0, 200, concurrency))  # warm-up
            ingest = _pid_of("serve ingest", state)
            cpu_before = _cpu_seconds(ingest)
            rate = asyncio.run(push_all(settings.ingest_addr, token, 1000, pushes, concurrency))
            cpu_per_push = (_cpu_seconds(ingest) - cpu_before) / pushes
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=30)
    print(f"  {label:<22} {rate:8.0f} pushes/s   ingest CPU {cpu_per_push * 1e6:5.0f} µs/push", flush=True)
    return rate, cpu_per_push


def _fresh_postgres(admin_url: str) -> str:
    """An empty database next to the given one, so every run starts from the same state."""
    import psycopg
    import sqlalchemy as sa

    name = f"dosis_bench_{os.getpid()}_{time.monotonic_ns()}"
    with psycopg.connect(admin_url.replace("+psycopg", ""), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = sa.engine.make_url(admin_url.replace("postgresql://", "postgresql+psycopg://", 1))
    return url.set(database=name).render_as_string(hide_password=False)


def _drop_postgres(admin_url: str, url: str) -> None:
    import psycopg
    import sqlalchemy as sa

    name = sa.engine.make_url(url).database
    with psycopg.connect(admin_url.replace("+psycopg", ""), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _pid_of(command: str, state_dir: str) -> int:
    """The pid of one service process of this run (its environment names the state dir)."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if command in (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode() and (
                state_dir.encode() in (proc / "environ").read_bytes()
            ):
                return int(proc.name)
        except OSError:
            continue
    raise RuntimeError(f"no process {command!r}")


def _cpu_seconds(pid: int) -> float:
    fields = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def summarize(title: str, rates: dict[str, float], cpu: dict[str, float]) -> None:
    bare, off, ten, full = rates.values()
    print(f"{title}:")
    for label, rate in rates.items():
        print(f"  {label:<22} {rate:8.0f} pushes/s   ingest CPU {cpu[label] * 1e6:5.0f} µs/push")
    cost_ten, cost_full = 1 - ten / off, 1 - full / off
    print(f"  cost at 10 %:  {cost_ten:6.1%} of the untraced throughput")
    print(f"  cost at 100 %: {cost_full:6.1%} of the untraced throughput (target ≤ 15 %: "
          f"{'met' if cost_full <= 0.15 else 'NOT met'})")
    print(f"  (against no telemetry at all: metrics only {1 - off / bare:.1%}, 100 % sampling {1 - full / bare:.1%})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pushes", type=int, default=6000)
    parser.add_argument("--concurrency", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds; the median counts")
    parser.add_argument(
        "--database-url", default="",
        help="PostgreSQL server to run on (a fresh database per run), e.g. postgresql://postgres@127.0.0.1/test",
    )
    args = parser.parse_args()
    store = "PostgreSQL" if args.database_url else "SQLite"
    print(f"PushStatus throughput, {args.pushes} pushes, {args.concurrency} concurrent callers, {store}, "
          f"median of {args.rounds} interleaved rounds")
    # The collector stand-in runs as its own process, so taking spans does not slow the callers.
    receiver = subprocess.Popen(
        [sys.executable, "-m", "tests.otlp_receiver"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    endpoint = receiver.stdout.readline().strip()
    traced = {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_EXPORTER_OTLP_INSECURE": "true"}
    configs = {
        "no telemetry": {},
        "tracing off (limit)": {**traced, "OTEL_TRACES_EXPORTER": "none"},
        "sampling 10 %": {**traced, "OTEL_TRACES_SAMPLER_ARG": "0.1"},
        "sampling 100 %": {**traced, "OTEL_TRACES_SAMPLER_ARG": "1.0"},
    }
    rates: dict[str, list[float]] = {label: [] for label in configs}
    cpu: dict[str, list[float]] = {label: [] for label in configs}
    for _ in range(args.rounds):
        for label, otel in configs.items():
            rate, cpu_per_push = run(label, otel, args.pushes, args.concurrency, args.database_url)
            rates[label].append(rate)
            cpu[label].append(cpu_per_push)
    requests, size = (int(x) for x in receiver.communicate("", timeout=30)[0].split())
    # Two summaries. The median of the rounds is the figure judged. The best round of each
    # configuration is printed beside it: on a shared 2-core VM a run is now and then slowed
    # by 20 % or more whatever it runs (seen: one configuration at 410–707 µs a push), and the
    # least disturbed run of each shows the code's own difference.
    for title, pick, fastest in (("medians", statistics.median, statistics.median), ("best rounds", max, min)):
        summarize(title, {label: pick(rates[label]) for label in configs},
                  {label: fastest(cpu[label]) for label in configs})
    print(f"  the collector stand-in took {requests} OTLP exports, {size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
