"""Shutdown: a signal to `dosis up` alone stops all three services; a service stopped by
SIGTERM lets calls in flight finish and refuses new ones; a service that dies under
`dosis up` is reported in one line and the others are stopped."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from types import SimpleNamespace

import grpc
import pytest

from dosis.v1 import ingest_pb2_grpc
from tests.helpers import push_request, status
from tests.ingest_helpers import CREATED, stored_rows
from tests.process_helpers import (
    alive,
    children,
    command_line,
    kill_hard,
    on_stores,
    processes_of_state_dir,
    serving,
    wait_gone,
)
from tests.test_end_to_end import dosis_env  # noqa: F401 - a fixture
from tests.test_limits import database_locked


@contextlib.contextmanager
def dosis_up(env, stderr_path):
    """`dosis up` in a session of its own (so no signal reaches its children but through it),
    once it is ready; (process, its three children's pids). Whatever is left is killed at the end."""
    with open(stderr_path, "wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "services", "up"], env=env, stdout=subprocess.PIPE, stderr=stderr,
            text=True, start_new_session=True,
        )
    pids = []
    try:
        deadline = time.monotonic() + 60
        for line in process.stdout:
            if line.startswith("Ctrl-C stops") or time.monotonic() > deadline:
                break
        assert process.poll() is None, stderr_path.read_text()
        pids = children(process.pid)
        assert len(pids) == 3, [command_line(p) for p in pids]
        yield process, pids
    finally:
        for pid in [process.pid, *pids]:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def assert_all_stopped(process, pids, env, exit_code: int) -> None:
    assert process.wait(timeout=30) == exit_code
    assert wait_gone(pids, timeout=5) == []
    assert processes_of_state_dir(env["DOSIS_STATE_DIR"]) == []


def test_sigterm_to_dosis_up_alone_stops_all_three_services(dosis_env, tmp_path):  # noqa: F811
    """(SIGINT to the parent alone: test_end_to_end's clean stop.)"""
    with dosis_up(dosis_env, tmp_path / "stderr.log") as (process, pids):
        os.kill(process.pid, signal.SIGTERM)  # the parent only, not its process group
        assert_all_stopped(process, pids, dosis_env, 0)


def test_a_service_that_dies_under_dosis_up_is_reported_in_one_line(dosis_env, tmp_path):  # noqa: F811
    stderr_path = tmp_path / "stderr.log"
    with dosis_up(dosis_env, stderr_path) as (process, pids):
        (ingest,) = [p for p in pids if "serve ingest" in command_line(p)]
        kill_hard(ingest)
        assert_all_stopped(process, pids, dosis_env, 1)
    reports = [line for line in stderr_path.read_text().splitlines() if "dosis-ingest" in line and "SIGKILL" in line]
    assert len(reports) == 1, stderr_path.read_text()
    assert reports[0].endswith("dosis-ingest was killed by SIGKILL; stopping the others")


def test_sigterm_lets_a_call_in_flight_finish_and_refuses_new_ones(stores, settings, tokens, tmp_path):
    services = on_stores(settings, stores)
    supplier = (("authorization", f"Bearer {tokens.supplier()}"),)
    with serving(("catalog", "ingest"), services, tmp_path / "services.log") as processes:
        channel = grpc.insecure_channel(services.ingest_addr)
        ingest = ingest_pb2_grpc.IngestServiceStub(channel)
        assert ingest.PushStatus(push_request(status(dossier="warm")), metadata=supplier).outcome == CREATED
        answers = []
        with database_locked(stores):
            # A push held by the database lock: in flight when the signal comes.
            pushing = threading.Thread(target=lambda: answers.append(
                ingest.PushStatus(push_request(status(dossier="in-flight")), metadata=supplier, timeout=30)
            ))
            pushing.start()
            time.sleep(0.5)
            processes["ingest"].send_signal(signal.SIGTERM)
            time.sleep(0.5)
            for stub in (ingest, ingest_pb2_grpc.IngestServiceStub(grpc.insecure_channel(services.ingest_addr))):
                with pytest.raises(grpc.RpcError) as refused:
                    stub.PushStatus(push_request(status(dossier="late")), metadata=supplier, timeout=5)
                assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
            assert pushing.is_alive()  # still waiting for the database
        pushing.join(timeout=10)
        assert [a.outcome for a in answers] == [CREATED]
        assert processes["ingest"].wait(timeout=10) == 0
        channel.close()
    assert sorted(r["dossier_id"] for r in stored_rows(SimpleNamespace(stores=stores))) == ["in-flight", "warm"]
