"""The contract: lint-clean protos, generated code in sync, a client wheel that ships it all."""

import subprocess
import sys
import zipfile

from google.protobuf import descriptor_pb2

from dosis.v1 import dossier_status_pb2 as pb
from services.common import labels


def test_buf_lint_passes(repo_root):
    result = subprocess.run(
        [sys.executable, "scripts/buf_lint.py"], cwd=repo_root, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_generated_code_is_not_stale(repo_root):
    result = subprocess.run(
        [sys.executable, "scripts/generate_protos.py", "--check"], cwd=repo_root, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_enums_are_complete_with_dutch_labels():
    assert len(labels.phase_labels()) == 7
    assert len(labels.status_labels()) == 23
    assert labels.status_labels()[pb.STATUS_CODE_IN_BEHANDELING] == "in behandeling"
    assert all(text and text == text.strip() for text in labels.status_labels().values())
    assert labels.parse_status("In Behandeling") == pb.STATUS_CODE_IN_BEHANDELING
    assert labels.parse_status("STATUS_CODE_GEINITIEERD") == labels.parse_status("geïnitieerd") == 1
    assert labels.parse_phase("BESLISSING_DEFINITIEF") == pb.STATUS_PHASE_BESLISSING_DEFINITIEF
    assert labels.parse_status("bestaat niet") is None


def test_client_wheel_ships_stubs_protos_and_descriptor_set(repo_root, tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path),
         str(repo_root / "clients" / "python")],
        check=True, timeout=300,
    )
    (wheel,) = tmp_path.glob("dosis_client-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for stem in ("dossier_status", "ingest", "query", "catalog"):
        assert {f"dosis/v1/{stem}.proto", f"dosis/v1/{stem}_pb2.py", f"dosis/v1/{stem}_pb2.pyi"} <= names
    assert {"dosis/v1/dosis.binpb", "dosis/client.py", "dosis/py.typed"} <= names
    descriptor_set = descriptor_pb2.FileDescriptorSet.FromString(
        zipfile.ZipFile(wheel).read("dosis/v1/dosis.binpb")
    )
    files = {f.name for f in descriptor_set.file}
    # Self-contained: a supplier can generate stubs in another language from this file alone.
    assert {"dosis/v1/ingest.proto", "google/rpc/status.proto", "google/protobuf/timestamp.proto"} <= files
