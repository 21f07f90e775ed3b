"""Bulk ingest against its limits, in one run: CSV UploadBatch and StreamStatuses.

For each store (SQLite, PostgreSQL) it prints
  - rows/s of UploadBatch end to end (client stream → validation → storage → report) for a
    generated CSV list (1,000,000 rows by default), next to the raw database route for the
    same file (PostgreSQL COPY; SQLite one executemany transaction, CSV parsing included)
    and their ratio (target ≥ 50 %);
  - peak resident memory of the ingest process for that file and for a 10,000-row file
    (target: within 1.5×);
and messages/s of StreamStatuses for 100,000 items on one stream, on each store, next to a
bare grpc.aio server answering the same messages (target ≥ 60 %).

    .venv/bin/python benchmarks/bulk_ingest.py [--rows 1000000] [--stores sqlite,postgres]
        [--stream-items 100000] [--stream-rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import grpc
from grpc import aio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from csv_data import write_csv  # noqa: E402
from tracing_overhead import _drop_postgres, _fresh_postgres, _pid_of, free_port  # noqa: E402

from dosis.client import bearer  # noqa: E402
from dosis.v1 import dossier_status_pb2 as pb  # noqa: E402
from dosis.v1 import ingest_pb2, ingest_pb2_grpc  # noqa: E402
from services.common import labels  # noqa: E402
from services.common.auth import mint_dev_token  # noqa: E402
from services.settings import load_settings  # noqa: E402
from services.store.engine import make_engine, migrate  # noqa: E402

POSTGRES = os.environ.get("DOSIS_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
CHUNK = 256 * 1024


class Dosis:
    """`dosis up` on a fresh store, for one measurement."""

    def __init__(self, database_url: str = ""):
        self.state = tempfile.TemporaryDirectory()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DOSIS_", "OTEL_"))}
        env.update(DOSIS_STATE_DIR=self.state.name, DOSIS_LOG_LEVEL="WARNING")
        for name in ("INGEST", "QUERY", "CATALOG"):
            env[f"DOSIS_{name}_ADDR"] = f"127.0.0.1:{free_port()}"
        self.database_url = _fresh_postgres(database_url) if database_url else ""
        if self.database_url:
            env["DOSIS_DATABASE_URL"] = self.database_url
        self.admin_url = database_url
        self.env = env

    def __enter__(self) -> Dosis:
        self.process = subprocess.Popen([sys.executable, "-m", "services", "up"], env=self.env,
                                        stdout=subprocess.PIPE, text=True)
        for line in self.process.stdout:
            if line.startswith("Ctrl-C stops"):
                break
        self.settings = load_settings(self.env)
        self.token = mint_dev_token(self.settings, {"sub": "bench", "dosis_supplier": "VLAIO"}, 24 * 3600)
        self.ingest_pid = _pid_of("serve ingest", self.state.name)
        return self

    def peak_rss_mb(self) -> float:
        for line in Path(f"/proc/{self.ingest_pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def __exit__(self, *exc) -> None:
        self.process.send_signal(signal.SIGINT)
        self.process.wait(timeout=60)
        if self.database_url:
            _drop_postgres(self.admin_url, self.database_url)
        self.state.cleanup()


def upload(dosis: Dosis, path: Path) -> tuple[float, ingest_pb2.BatchReport]:
    def requests():
        yield ingest_pb2.UploadBatchRequest(header=ingest_pb2.BatchHeader(file_name=path.name))
        with path.open("rb") as fh:
            while chunk := fh.read(CHUNK):
                yield ingest_pb2.UploadBatchRequest(chunk=chunk)

    with grpc.insecure_channel(dosis.settings.ingest_addr) as channel:
        started = time.perf_counter()
        report = ingest_pb2_grpc.IngestServiceStub(channel).UploadBatch(
            requests(), metadata=bearer(dosis.token), timeout=3600
        )
        return time.perf_counter() - started, report


def raw_rows(path: Path):
    """The file's rows as column tuples with the least conversion a database needs."""
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh, delimiter=";")
        next(reader)
        for r in reader:
            yield (
                "VLAIO", r[1], r[2], r[0], labels.parse_phase(r[3]), labels.parse_status(r[4]), r[5],
                datetime.fromisoformat(r[6]), r[7], r[8], r[9], json.dumps(r[10].split("|")),
                r[11] == "ja", r[12] == "ja", r[13], datetime.now(timezone.utc),
            )


RAW_COLUMNS = (
    "supplier_id, product_id, dossier_id, enterprise_number, phase, status, detail_status, status_time, "
    "reference_url, reference_email, reference_contact, required_roles, public, action_required, action, update_time"
)


def raw_sqlite(path: Path) -> float:
    with tempfile.TemporaryDirectory() as folder:
        engine = make_engine(f"sqlite:///{folder}/raw.db")
        migrate(engine, "store")
        engine.dispose()
        import sqlite3

        connection = sqlite3.connect(f"{folder}/raw.db", isolation_level=None)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")
        started = time.perf_counter()
        connection.execute("BEGIN IMMEDIATE")
        placeholders = ", ".join("?" * 16)
        connection.executemany(
            f"INSERT INTO dossiers ({RAW_COLUMNS}) VALUES ({placeholders}) "
            "ON CONFLICT (supplier_id, product_id, dossier_id) DO UPDATE SET status = excluded.status",
            ((*row[:7], row[7].replace(tzinfo=None).isoformat(" "), *row[8:15], row[15].replace(tzinfo=None).isoformat(" "))
             for row in raw_rows(path)),
        )
        connection.execute("COMMIT")
        seconds = time.perf_counter() - started
        connection.close()
        return seconds


def raw_postgres(path: Path) -> float:
    import psycopg

    url = _fresh_postgres(POSTGRES)
    try:
        engine = make_engine(url)
        migrate(engine, "store")
        engine.dispose()
        with psycopg.connect(url.replace("+psycopg", "")) as connection:
            started = time.perf_counter()
            with connection.cursor() as cursor, cursor.copy(f"COPY dossiers ({RAW_COLUMNS}) FROM STDIN") as copy:
                for row in raw_rows(path):
                    copy.write_row(row)
            connection.commit()
            return time.perf_counter() - started
    finally:
        _drop_postgres(POSTGRES, url)


def measure_store(store: str, big: Path, small: Path, rows: int, small_rows: int) -> None:
    url = POSTGRES if store == "postgres" else ""
    with Dosis(url) as dosis:
        upload(dosis, small)  # warm-up and the small file's memory
        small_rss = dosis.peak_rss_mb()
    with Dosis(url) as dosis:
        upload(dosis, small)
        seconds, report = upload(dosis, big)
        big_rss = dosis.peak_rss_mb()
    assert report.rejected == 0 and report.created == rows, report
    raw = raw_postgres(big) if store == "postgres" else raw_sqlite(big)
    route = "COPY" if store == "postgres" else "executemany, one transaction"
    up_rate, raw_rate = rows / seconds, rows / raw
    print(f"{store}:")
    print(f"  UploadBatch end to end    {up_rate:10,.0f} rows/s")
    print(f"  raw route ({route}) {raw_rate:10,.0f} rows/s   (the limit)")
    print(f"  ratio                     {up_rate / raw_rate:10.1%}   (target ≥ 50 %)")
    print(f"  ingest peak memory        {big_rss:7.0f} MB for {rows:,} rows, {small_rss:.0f} MB for {small_rows:,} "
          f"rows: {big_rss / small_rss:.2f}× (target ≤ 1.5×)", flush=True)


# --- StreamStatuses against a bare echo server -------------------------------------------------


def stream_requests(items: int):
    when = datetime.now(timezone.utc) - timedelta(minutes=1)
    for i in range(items):
        status = pb.DossierStatus(
            enterprise_number="0316380841", product_id="1502", dossier_id=f"S-{i}",
            phase=pb.STATUS_PHASE_BEHANDELING_DOSSIER, status=pb.STATUS_CODE_IN_BEHANDELING,
            reference=pb.Reference(url="https://www.vlaio.be/x"), required_roles=["Bedrijfsleider"],
        )
        status.status_time.FromDatetime(when)
        yield ingest_pb2.PushStatusRequest(status=status, request_id=str(i))


async def run_stream(address: str, token: str, items: int) -> float:
    async with aio.insecure_channel(address) as channel:
        stub = ingest_pb2_grpc.IngestServiceStub(channel)
        started = time.perf_counter()
        answered = 0
        async for reply in stub.StreamStatuses(stream_requests(items), metadata=bearer(token)):
            answered += 1
        assert answered == items
        return items / (time.perf_counter() - started)


class _Echo(ingest_pb2_grpc.IngestServiceServicer):
    async def StreamStatuses(self, request_iterator, context):
        async for request in request_iterator:
            yield ingest_pb2.PushStatusResponse(outcome=ingest_pb2.PUSH_OUTCOME_CREATED, request_id=request.request_id)


async def _serve_echo() -> None:
    server = aio.server()
    ingest_pb2_grpc.add_IngestServiceServicer_to_server(_Echo(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(port, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await server.stop(0)


def measure_stream(items: int, stores: list[str], rounds: int) -> None:
    """The echo server (the limit) and DOSIS on each store, in interleaved rounds: the
    median of each, so that a moment of load on this shared machine does not decide."""
    rates: dict[str, list[float]] = {"echo": [], **{store: [] for store in stores}}
    for _ in range(rounds):
        echo = subprocess.Popen([sys.executable, __file__, "--echo-server"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
        port = int(echo.stdout.readline())
        rates["echo"].append(asyncio.run(run_stream(f"127.0.0.1:{port}", "", items)))
        echo.communicate("")
        for store in stores:
            with Dosis(POSTGRES if store == "postgres" else "") as dosis:
                rates[store].append(asyncio.run(run_stream(dosis.settings.ingest_addr, dosis.token, items)))
    limit = statistics.median(rates["echo"])
    print(f"StreamStatuses, {items:,} items on one stream, median of {rounds} interleaved rounds:")
    print(f"  bare grpc.aio echo        {limit:10,.0f} messages/s   (the limit; rounds: "
          f"{', '.join(f'{r:,.0f}' for r in rates['echo'])})")
    for store in stores:
        rate = statistics.median(rates[store])
        print(f"  DOSIS on {store:<16} {rate:10,.0f} messages/s   ratio {rate / limit:6.1%}   (target ≥ 60 %; rounds: "
              f"{', '.join(f'{r:,.0f}' for r in rates[store])})", flush=True)


def main() -> None:
    if sys.argv[1:] == ["--echo-server"]:
        asyncio.run(_serve_echo())
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--small-rows", type=int, default=10_000)
    parser.add_argument("--stream-items", type=int, default=100_000)
    parser.add_argument("--stream-rounds", type=int, default=3)
    parser.add_argument("--stores", default="sqlite,postgres")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        big = write_csv(Path(folder) / "big.csv", args.rows)
        small = write_csv(Path(folder) / "small.csv", args.small_rows, seed=8, prefix="SMALL")
        print(f"CSV list: {args.rows:,} rows, {big.stat().st_size / 1e6:.0f} MB", flush=True)
        for store in args.stores.split(","):
            measure_store(store, big, small, args.rows, args.small_rows)
    measure_stream(args.stream_items, args.stores.split(","), args.stream_rounds)


if __name__ == "__main__":
    main()
