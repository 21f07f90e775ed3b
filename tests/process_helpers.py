"""Services as real processes (`dosis serve …`, `dosis up`) for the shutdown and fault tests:
starting them on free ports over the test's stores, and finding what is left of them."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

from services.common.server import SERVICE_NAMES
from services.runner import wait_serving
from services.settings import Settings, child_env
from tests.test_end_to_end import free_port


def on_stores(settings: Settings, stores) -> Settings:
    """The settings of services over the test's stores, each on a free port."""
    dossiers = stores.dossiers.url.render_as_string(hide_password=False)
    return replace(
        settings,
        database_url=dossiers,
        audit_database_url=dossiers,  # the audit trail beside the dossiers, as by default
        catalog_database_url=stores.catalog.url.render_as_string(hide_password=False),
        ingest_addr=f"127.0.0.1:{free_port()}",
        query_addr=f"127.0.0.1:{free_port()}",
        catalog_addr=f"127.0.0.1:{free_port()}",
        log_format="text",
    )


def serve(name: str, settings: Settings, log: Path) -> subprocess.Popen:
    """`dosis serve <name>` as a child process, once it answers health checks."""
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "services", "serve", name], env=child_env(settings), stdout=out, stderr=out
        )
    if not wait_serving(settings.addr(name), SERVICE_NAMES[name], timeout=30):
        process.kill()
        process.wait()
        raise AssertionError(f"dosis-{name} did not start:\n{log.read_text()}")
    return process


@contextlib.contextmanager
def serving(names: tuple[str, ...], settings: Settings, log: Path):
    """Services as processes, killed at the end whatever happened; {name: process}."""
    processes: dict[str, subprocess.Popen] = {}
    try:
        for name in names:
            processes[name] = serve(name, settings, log)
        yield processes
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
            process.wait(timeout=10)


def children(pid: int) -> list[int]:
    """The pids of a process's direct children."""
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def alive(pid: int) -> bool:
    """Running, not a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def processes_of_state_dir(state_dir: str) -> list[int]:
    """Every live process whose environment names this DOSIS_STATE_DIR."""
    marker = f"DOSIS_STATE_DIR={state_dir}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker in environ.split(b"\0") and alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def wait_gone(pids: list[int], timeout: float) -> list[int]:
    """Wait until none of `pids` runs; those still running at the deadline."""
    deadline = time.monotonic() + timeout
    while (left := [p for p in pids if alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def kill_hard(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
