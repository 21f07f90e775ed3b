"""What tracing costs: PushStatus throughput with tracing off, 10 % and 100 % sampling.

Each configuration runs `dosis up` (three processes, SQLite) exporting over OTLP/gRPC to a
local receiver, and pushes N statuses from C concurrent callers. Prints pushes/s per
configuration next to the untraced run of the same script, the limit it is judged by.
Target (issue "OpenTelemetry end to end"): 100 % sampling costs at most 15 % of throughput.

    .venv/bin/python benchmarks/tracing_overhead.py [--pushes 3000] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from grpc import aio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dosis.client import bearer  # noqa: E402
from dosis.v1 import dossier_status_pb2 as pb  # noqa: E402
from dosis.v1 import ingest_pb2, ingest_pb2_grpc  # noqa: E402
from services.common.auth import mint_dev_token  # noqa: E402
from services.common.config import load_settings  # noqa: E402
from tests.otlp_receiver import OtlpReceiver  # noqa: E402

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
    when = datetime.now(timezone.utc) - timedelta(minutes=1)
    async with aio.insecure_channel(address) as channel:
        stub = ingest_pb2_grpc.IngestServiceStub(channel)
        queue = iter(range(first, first + count))

        async def worker():
            for i in queue:
                await stub.PushStatus(request(i, when), metadata=bearer(token), timeout=30)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return count / (time.perf_counter() - started)


def run(label: str, otel: dict[str, str], pushes: int, concurrency: int) -> float:
    with tempfile.TemporaryDirectory() as state:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DOSIS_", "OTEL_"))}
        env.update(otel, DOSIS_STATE_DIR=state, DOSIS_LOG_LEVEL="WARNING")
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
            rate = asyncio.run(push_all(settings.ingest_addr, token, 1000, pushes, concurrency))
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=30)
    print(f"  {label:<22} {rate:8.0f} pushes/s", flush=True)
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pushes", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    print(f"PushStatus throughput, {args.pushes} pushes, {args.concurrency} concurrent callers, SQLite")
    with OtlpReceiver() as receiver:
        traced = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_EXPORTER_OTLP_INSECURE": "true"}
        off = run("tracing off (limit)", {}, args.pushes, args.concurrency)
        ten = run("sampling 10 %", {**traced, "OTEL_TRACES_SAMPLER_ARG": "0.1"}, args.pushes, args.concurrency)
        full = run("sampling 100 %", {**traced, "OTEL_TRACES_SAMPLER_ARG": "1.0"}, args.pushes, args.concurrency)
        spans = len(receiver.spans())
    cost_ten, cost_full = 1 - ten / off, 1 - full / off
    print(f"  cost at 10 %:  {cost_ten:6.1%} of the untraced throughput")
    print(f"  cost at 100 %: {cost_full:6.1%} of the untraced throughput (target ≤ 15 %: "
          f"{'met' if cost_full <= 0.15 else 'NOT met'}); {spans} spans received")


if __name__ == "__main__":
    main()
