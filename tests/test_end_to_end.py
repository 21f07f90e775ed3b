"""`dosis up` as a real subprocess on free ports, driven with the CLI like a person would."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from tests.helpers import ENTERPRISE_A


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def dosis_env(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOSIS_", "OTEL_"))}
    env.update(
        DOSIS_STATE_DIR=str(tmp_path / "state"),
        DOSIS_INGEST_ADDR=f"127.0.0.1:{free_port()}",
        DOSIS_QUERY_ADDR=f"127.0.0.1:{free_port()}",
        DOSIS_CATALOG_ADDR=f"127.0.0.1:{free_port()}",
    )
    return env


def dosis(env, *args, token=None, check=True) -> subprocess.CompletedProcess:
    run_env = dict(env, **({"DOSIS_TOKEN": token} if token else {}))
    result = subprocess.run(
        [sys.executable, "-m", "services", *args], env=run_env, capture_output=True, text=True, timeout=60
    )
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture
def running(dosis_env):
    process = subprocess.Popen(
        [sys.executable, "-m", "services", "up"], env=dosis_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    )
    output = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        output.append(line)
        if line.startswith("Ctrl-C stops"):
            break
    assert "DOSIS is up." in "".join(output), "".join(output)
    yield process, "".join(output)
    if process.poll() is None:
        process.kill()
        process.wait()


def test_up_push_list_and_clean_stop(running, dosis_env):
    process, banner = running
    assert dosis_env["DOSIS_QUERY_ADDR"] in banner

    supplier = dosis(dosis_env, "token", "supplier", "VLAIO").stdout.strip()
    push = [
        "push", "--enterprise", "0316.380.841", "--product", "1502", "--phase", "BEHANDELING_DOSSIER",
        "--status", "in behandeling", "--role", "Bedrijfsleider", "--url", "https://www.vlaio.be/kmo",
    ]
    assert dosis(dosis_env, *push, "--dossier", "KMO-1", token=supplier).stdout.strip() == "CREATED"
    assert dosis(dosis_env, *push, "--dossier", "KMO-1", "--time", "2020-01-01T00:00:00", token=supplier).stdout.strip() == "STALE"
    assert dosis(dosis_env, *push, "--dossier", "KMO-2", "--public", token=supplier).stdout.strip() == "CREATED"

    refused = dosis(dosis_env, *push, "--dossier", "X", "--url", "http://insecure", token=supplier, check=False)
    assert refused.returncode == 1
    assert "INVALID_REFERENCE_URL" in refused.stderr and "status.reference.url" in refused.stderr

    person = dosis(dosis_env, "token", "person", ENTERPRISE_A, "--role", "Bedrijfsleider").stdout.strip()
    listed = [json.loads(line) for line in dosis(dosis_env, "list", ENTERPRISE_A, "--json", token=person).stdout.splitlines()]
    assert {d["dossier_id"] for d in listed} == {"KMO-1", "KMO-2"}
    assert all("required_roles" not in d for d in listed)
    assert listed[0]["product_name"] == "KMO-portefeuille (opleiding en advies)"

    stranger = dosis(dosis_env, "token", "person", ENTERPRISE_A, "--role", "Boekhouder").stdout.strip()
    only_public = dosis(dosis_env, "list", ENTERPRISE_A, "--json", token=stranger).stdout.splitlines()
    assert [json.loads(line)["dossier_id"] for line in only_public] == ["KMO-2"]
    anonymous = dosis(dosis_env, "list", ENTERPRISE_A, "--public", "--json").stdout.splitlines()
    assert [json.loads(line)["dossier_id"] for line in anonymous] == ["KMO-2"]
    assert json.loads(anonymous[0])["product_name"]  # names for anonymous callers too

    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=30) == 0
    # No service process is left behind.
    leftovers = subprocess.run(["pgrep", "-f", dosis_env["DOSIS_STATE_DIR"]], capture_output=True, text=True).stdout
    assert leftovers.strip() == ""


def test_state_survives_a_restart(dosis_env):
    """The SQLite files in the state folder keep dossiers across `dosis up` runs."""
    for round_ in range(2):
        process = subprocess.Popen(
            [sys.executable, "-m", "services", "up"], env=dosis_env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True,
        )
        try:
            for line in process.stdout:
                if line.startswith("Ctrl-C stops"):
                    break
            supplier = dosis(dosis_env, "token", "supplier", "VLAIO").stdout.strip()
            args = ["push", "--enterprise", ENTERPRISE_A, "--product", "1519", "--dossier", "H-1", "--phase",
                    "BESLISSING", "--status", "GOEDGEKEURD", "--public", "--email", "info@vlaio.be",
                    "--time", "2026-01-01T10:00:00+00:00"]
            expected = "CREATED" if round_ == 0 else "UNCHANGED"
            assert dosis(dosis_env, *args, token=supplier).stdout.strip() == expected
        finally:
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0
