"""What tracing costs: PushStatus throughput with tracing off, 10 % and 100 % sampling.

Each configuration runs its own `dosis up` (three processes; SQLite, or PostgreSQL with a
fresh database each) exporting over OTLP/gRPC to a local receiver. All four run side by
side and take turns: bursts of pushes from C concurrent callers, each configuration in each
place of the order in turn. A round starts fresh services and ends with the throughput of
each configuration over its bursts; the cost of tracing is judged per round against the
untraced run of the same minutes (paired), and the median of the rounds is the figure.
Target (issue "OpenTelemetry end to end"): 100 % sampling costs at most 15 % of throughput.

Why the turns: this 2-core VM's speed drifts by 20 % over minutes, and one process runs a
few per cent faster or slower than the next for the whole of its life. Configurations run
one after the other for minutes each measured the drift more than the tracing.

"Tracing off" is tracing switched off the standard way (OTEL_TRACES_EXPORTER=none) with
the metrics still exported, as an operator who does not want traces runs it; the cost
measured is the cost of tracing. With no telemetry at all (no OTLP endpoint) is printed
too, so the metrics' own cost shows.

    .venv/bin/python benchmarks/tracing_overhead.py [--rounds 9] [--database-url postgresql://…]
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
from services.settings import load_settings

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


class Stack:
    """One `dosis up` (three processes) in one telemetry configuration, kept running for a
    round, with a channel to its ingest service held open."""

    def __init__(self, label: str, otel: dict[str, str], database_url: str):
        self.label = label
        self._state = tempfile.TemporaryDirectory()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DOSIS_", "OTEL_"))}
        # One hash seed for every run: the same dict and set layouts, one cause of spread fewer.
        env.update(otel, DOSIS_STATE_DIR=self._state.name, DOSIS_LOG_LEVEL="WARNING", PYTHONHASHSEED="0")
        self._admin_url = database_url
        if database_url:
            env["DOSIS_DATABASE_URL"] = _fresh_postgres(database_url)
        for name in ("INGEST", "QUERY", "CATALOG"):
            env[f"DOSIS_{name}_ADDR"] = f"127.0.0.1:{free_port()}"
        self._env = env
        self._process = subprocess.Popen(
            [sys.executable, "-m", "services", "up"], env=env, stdout=subprocess.PIPE, text=True
        )
        for line in self._process.stdout:
            if line.startswith("Ctrl-C stops"):
                break
        else:
            raise RuntimeError(f"{label}: dosis up did not start")
        settings = load_settings(env)
        self._address = settings.ingest_addr
        self._token = mint_dev_token(settings, {"sub": "bench", "dosis_supplier": "VLAIO"})
        self._ingest = _pid_of("serve ingest", self._state.name)
        self._channel = self._stub = None
        self._next = 0

    async def open(self) -> None:
        self._channel = aio.insecure_channel(self._address)
        self._stub = ingest_pb2_grpc.IngestServiceStub(self._channel)
        await self.burst(200, 16)  # warm-up: connections, catalog cache, statement caches

    async def burst(self, count: int, concurrency: int) -> tuple[float, float]:
        """Push `count` new statuses from `concurrency` callers: (seconds, ingest CPU seconds)."""
        when = datetime.now(UTC) - timedelta(minutes=1)
        queue = iter(range(self._next, self._next + count))
        self._next += count
        metadata = bearer(self._token)

        async def caller():
            for i in queue:
                await self._stub.PushStatus(request(i, when), metadata=metadata, timeout=30)

        cpu = _cpu_seconds(self._ingest)
        started = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(concurrency)))
        return time.perf_counter() - started, _cpu_seconds(self._ingest) - cpu

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
        self._process.send_signal(signal.SIGINT)
        self._process.wait(timeout=30)
        if self._admin_url:
            _drop_postgres(self._admin_url, self._env["DOSIS_DATABASE_URL"])
        self._state.cleanup()


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


def _steal_ticks() -> int:
    """CPU time the hypervisor gave to others (all cores), in clock ticks."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    return int(fields[8]) if len(fields) > 8 else 0


async def measure(configs: dict[str, dict[str, str]], args) -> list[dict[str, tuple[int, float, float]]]:
    """Per round: label → (pushes, seconds, ingest CPU seconds), summed over its bursts."""
    rounds = []
    for number in range(1, args.rounds + 1):
        stacks = []
        try:
            # Started in a rotating order: a process's speed depends a little on when it started.
            labels = list(configs)
            for label in labels[number % len(labels):] + labels[: number % len(labels)]:
                stacks.append(Stack(label, configs[label], args.database_url))
            stacks.sort(key=lambda stack: labels.index(stack.label))
            for stack in stacks:
                await stack.open()
            totals = {stack.label: [0, 0.0, 0.0] for stack in stacks}
            steal, started = _steal_ticks(), time.perf_counter()
            for cycle in range(args.cycles):
                # Each configuration takes each place in the order once every len(stacks) cycles.
                shift = cycle % len(stacks)
                for stack in stacks[shift:] + stacks[:shift]:
                    seconds, cpu = await stack.burst(args.burst, args.concurrency)
                    total = totals[stack.label]
                    total[0] += args.burst
                    total[1] += seconds
                    total[2] += cpu
            stolen = (_steal_ticks() - steal) / os.sysconf("SC_CLK_TCK") / (os.cpu_count() or 1)
            stolen /= time.perf_counter() - started
        finally:
            for stack in stacks:
                await stack.close()
        result = {label: tuple(total) for label, total in totals.items()}
        rounds.append(result)
        rates = {label: pushes / seconds for label, (pushes, seconds, _) in result.items()}
        off, ten, full = rates[OFF], rates[TEN], rates[FULL]
        print(f"  round {number}: " + ", ".join(f"{label} {rate:.0f}/s" for label, rate in rates.items())
              + f"; cost at 10 % {1 - ten / off:.1%}, at 100 % {1 - full / off:.1%}; steal {stolen:.1%}", flush=True)
    return rounds


def summarize(rounds: list[dict[str, tuple[int, float, float]]]) -> None:
    labels = list(rounds[0])
    pooled = {label: [sum(r[label][i] for r in rounds) for i in range(3)] for label in labels}
    print("All rounds together:")
    for label, (pushes, seconds, cpu) in pooled.items():
        print(f"  {label:<22} {pushes / seconds:8.0f} pushes/s   ingest CPU {cpu / pushes * 1e6:5.0f} µs/push")

    def cost(config: str, base: str):
        """Throughput lost against `base`, per round (paired: the same minutes) → median."""
        per_round = sorted(1 - (r[config][0] / r[config][1]) / (r[base][0] / r[base][1]) for r in rounds)
        return statistics.median(per_round), per_round[0], per_round[-1]

    for config, label in ((TEN, "10 %"), (FULL, "100 %")):
        median, low, high = cost(config, OFF)
        verdict = f" (target ≤ 15 %: {'met' if median <= 0.15 else 'NOT met'})" if config == FULL else ""
        print(f"  cost at {label:<6} {median:6.1%} of the untraced throughput, median of the rounds "
              f"(rounds {low:.1%} … {high:.1%}){verdict}")
    metrics, full = cost(OFF, BARE)[0], cost(FULL, BARE)[0]
    print(f"  against no telemetry at all: metrics only {metrics:.1%}, 100 % sampling {full:.1%}")


BARE, OFF, TEN, FULL = "no telemetry", "tracing off (limit)", "sampling 10 %", "sampling 100 %"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--burst", type=int, default=1500, help="pushes per burst")
    parser.add_argument("--cycles", type=int, default=4, help="bursts of each configuration per round")
    parser.add_argument("--concurrency", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=9, help="rounds, each with fresh services; the median counts")
    parser.add_argument(
        "--database-url", default="",
        help="PostgreSQL server to run on (a fresh database per run), e.g. postgresql://postgres@127.0.0.1/test",
    )
    args = parser.parse_args()
    store = "PostgreSQL" if args.database_url else "SQLite"
    print(f"PushStatus throughput, {store}, {args.concurrency} concurrent callers; {args.rounds} rounds of "
          f"{args.cycles} × {args.burst} pushes per configuration, in bursts taking turns")
    # The collector stand-in runs as its own process, so taking spans does not slow the callers.
    receiver = subprocess.Popen(
        [sys.executable, "-m", "tests.otlp_receiver"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    endpoint = receiver.stdout.readline().strip()
    traced = {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_EXPORTER_OTLP_INSECURE": "true"}
    configs = {
        BARE: {},
        OFF: {**traced, "OTEL_TRACES_EXPORTER": "none"},
        TEN: {**traced, "OTEL_TRACES_SAMPLER_ARG": "0.1"},
        FULL: {**traced, "OTEL_TRACES_SAMPLER_ARG": "1.0"},
    }
    rounds = asyncio.run(measure(configs, args))
    requests, size = (int(x) for x in receiver.communicate("", timeout=30)[0].split())
    summarize(rounds)
    print(f"  the collector stand-in took {requests} OTLP exports, {size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
