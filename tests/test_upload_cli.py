"""`dosis upload` against `dosis up` in a subprocess: exit codes, the rejected-rows file, the
replace mode's product, a bad header."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from services.ingest.csv_batch import COLUMNS
from tests.helpers import ENTERPRISE_A, ENTERPRISE_B, ENTERPRISE_C
from tests.test_end_to_end import dosis, free_port
from tests.upload_helpers import csv_bytes, row


@pytest.fixture(scope="module")
def dosis_up(tmp_path_factory):
    """`dosis up` as a subprocess on free ports, for the CLI tests of this module."""
    state = tmp_path_factory.mktemp("upload-cli")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOSIS_", "OTEL_"))}
    env.update(
        DOSIS_STATE_DIR=str(state / "state"),
        DOSIS_INGEST_ADDR=f"127.0.0.1:{free_port()}",
        DOSIS_QUERY_ADDR=f"127.0.0.1:{free_port()}",
        DOSIS_CATALOG_ADDR=f"127.0.0.1:{free_port()}",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "services", "up"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    output: list[str] = []
    ready = threading.Event()

    def read():
        for line in process.stdout:
            output.append(line)
            if line.startswith("Ctrl-C stops"):
                ready.set()
        ready.set()

    threading.Thread(target=read, daemon=True).start()
    ready.wait(60)
    try:
        assert "DOSIS is up." in "".join(output), "".join(output)
        yield env, state
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _write(path: Path, records: list[list[str]], **kwargs) -> Path:
    path.write_bytes(csv_bytes(records, **kwargs))
    return path


def test_cli_upload_writes_the_rejected_rows_and_exits_2(dosis_up):
    env, folder = dosis_up
    supplier = dosis(env, "token", "supplier", "VLAIO").stdout.strip()
    records = [
        row("CLI-1"),  # line 2
        row("CLI-2", "0316380842"),  # 3: bad
        row("CLI-3", contact="Loket\nBrussel, bus 1", url=""),  # 4-5
        row("CLI-4", phase="KOKEN"),  # 6: bad
        row("CLI-5", ENTERPRISE_B, product="1519"),  # 7
    ]
    source = _write(folder / "lijst.csv", records, delimiter=";", bom=True)
    result = dosis(env, "upload", str(source), token=supplier, check=False)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "5 rows" in result.stdout
    assert "3 created" in result.stdout and "2 rejected" in result.stdout

    written = [p for p in folder.iterdir() if p.name.endswith(".rejected.csv")]
    assert len(written) == 1, sorted(p.name for p in folder.iterdir())
    rejected = written[0]
    assert str(rejected) in result.stdout
    assert rejected.name.startswith("lijst")
    with rejected.open(encoding="utf-8-sig", newline="") as fh:
        table = list(csv.reader(fh, delimiter=";"))
    assert table[0] == ["line", "column", "reason", *COLUMNS]
    assert [r[:2] for r in table[1:]] == [["3", "enterprise_number"], ["6", "phase"]]
    assert all(r[2] for r in table[1:])
    assert table[1][3:] == records[1]  # the original row, ready to fix and resend
    assert table[2][3:] == records[3]

    person = dosis(env, "token", "person", ENTERPRISE_A, "--role", "Bedrijfsleider").stdout.strip()
    shown = dosis(env, "list", ENTERPRISE_A, "--json", token=person).stdout
    assert "CLI-1" in shown and "CLI-3" in shown and "CLI-2" not in shown and "CLI-4" not in shown


def test_cli_upload_of_a_clean_file_exits_0_without_rejected_file(dosis_up):
    env, folder = dosis_up
    supplier = dosis(env, "token", "supplier", "VLAIO").stdout.strip()
    sub = folder / "clean"
    sub.mkdir()
    source = _write(sub / "schoon.csv", [row("CLEAN-1"), row("CLEAN-2", ENTERPRISE_C)])
    result = dosis(env, "upload", str(source), token=supplier, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 rows" in result.stdout and "2 created" in result.stdout and "0 rejected" in result.stdout
    assert sorted(p.name for p in sub.iterdir()) == ["schoon.csv"]

    again = dosis(env, "upload", str(source), token=supplier)
    assert "2 unchanged" in again.stdout


def test_cli_replace_needs_a_product(dosis_up):
    env, folder = dosis_up
    supplier = dosis(env, "token", "supplier", "VLAIO").stdout.strip()
    source = _write(folder / "vervang.csv", [row("REP-1")])
    result = dosis(env, "upload", str(source), "--mode", "replace", token=supplier, check=False)
    assert result.returncode != 0
    assert "--product" in result.stderr and "replace" in result.stderr
    assert "Traceback" not in result.stderr

    replaced = dosis(env, "upload", str(source), "--mode", "replace", "--product", "1502", token=supplier)
    assert "1 rows" in replaced.stdout and "1 created" in replaced.stdout


def test_cli_upload_of_a_file_with_a_bad_header_exits_1_naming_the_column(dosis_up):
    env, folder = dosis_up
    supplier = dosis(env, "token", "supplier", "VLAIO").stdout.strip()
    sub = folder / "badheader"
    sub.mkdir()
    source = sub / "kop.csv"
    source.write_bytes(csv_bytes([row("HDR-1") + ["rood"]], header=[*COLUMNS, "kleur"]))
    result = dosis(env, "upload", str(source), token=supplier, check=False)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "INVALID_ARGUMENT" in result.stderr and "header.kleur" in result.stderr
    assert sorted(p.name for p in sub.iterdir()) == ["kop.csv"]
