"""Over the wire: `dosis up` exports spans and metrics by OTLP/gRPC to a collector (here a
test-local receiver), each service under its own service.name, with nothing personal."""

import os
import signal
import subprocess
import sys

from tests.otlp_receiver import OtlpReceiver
from tests.test_end_to_end import dosis, free_port

ENTERPRISE = "0687655467"
ROLE = "Zaakvoerder-Wq3"


def test_dosis_up_exports_traces_and_metrics_over_otlp(tmp_path):
    with OtlpReceiver() as receiver:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DOSIS_", "OTEL_"))}
        env.update(
            DOSIS_STATE_DIR=str(tmp_path / "state"),
            DOSIS_INGEST_ADDR=f"127.0.0.1:{free_port()}",
            DOSIS_QUERY_ADDR=f"127.0.0.1:{free_port()}",
            DOSIS_CATALOG_ADDR=f"127.0.0.1:{free_port()}",
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
            OTEL_EXPORTER_OTLP_INSECURE="true",
            OTEL_BSP_SCHEDULE_DELAY="100",
            OTEL_METRIC_EXPORT_INTERVAL="300",
        )
        process = subprocess.Popen(
            [sys.executable, "-m", "services", "up"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            banner = []
            for line in process.stdout:
                banner.append(line)
                if line.startswith("Ctrl-C stops"):
                    break
            assert any(receiver.endpoint in line for line in banner), "".join(banner)  # says where traces go

            supplier = dosis(env, "token", "supplier", "VLAIO").stdout.strip()
            pushed = dosis(
                env, "push", "--enterprise", "0687.655.467", "--product", "1502", "--dossier", "WIRE-1",
                "--phase", "BESLISSING", "--status", "BESLIST", "--role", ROLE, "--url", "https://wire.example/x",
                token=supplier,
            )
            assert pushed.stdout.strip() == "CREATED"
            person = dosis(env, "token", "person", ENTERPRISE, "--role", ROLE).stdout.strip()
            assert "WIRE-1" in dosis(env, "list", ENTERPRISE, token=person).stdout

            def complete() -> bool:
                names = {(service, span.name) for service, span in receiver.spans()}
                metrics = receiver.metric_names()
                return {
                    ("dosis-ingest", "/dosis.v1.IngestService/PushStatus"),
                    ("dosis-catalog", "/dosis.v1.CatalogService/CheckProduct"),
                    ("dosis-query", "/dosis.v1.QueryService/ListDossiers"),
                } <= names and "dosis.ingest.outcomes" in metrics.get("dosis-ingest", set()) and (
                    "dosis.query.page_size" in metrics.get("dosis-query", set())
                )

            assert receiver.wait_for(complete), (
                sorted({(s, sp.name) for s, sp in receiver.spans()}), receiver.metric_names()
            )
            # The push is one trace: ingest's server span and the catalog's, linked by trace id.
            spans = receiver.spans()
            push = next(sp for s, sp in spans if sp.name == "/dosis.v1.IngestService/PushStatus")
            check = next(sp for s, sp in spans if sp.name == "/dosis.v1.CatalogService/CheckProduct")
            assert check.trace_id == push.trace_id
            assert any(s == "dosis-ingest" and sp.trace_id == push.trace_id and any(
                a.key == "db.system" for a in sp.attributes) for s, sp in spans)
            assert not any("Health" in sp.name for _, sp in spans)
        finally:
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=30) == 0

        raw = receiver.raw_bytes()
        for secret in (ENTERPRISE.encode(), b"0687.655.467", ROLE.encode(), b"WIRE-1", b"wire.example"):
            assert secret not in raw, secret
