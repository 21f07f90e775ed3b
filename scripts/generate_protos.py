"""Generate the Python stubs, the descriptor set and the shipped .proto copies.

One script is the only producer of clients/python/src/dosis/v1/; never edit its output.
`--check` regenerates into a temporary folder and fails on any difference, which is how
the test suite proves that the committed code matches protos/.

The generator is pinned (grpcio-tools in pyproject.toml); the client package declares
floors for grpcio and protobuf that match what this generator emits.
"""

from __future__ import annotations

import argparse
import filecmp
import importlib.util
import shutil
import sys
import tempfile
from pathlib import Path

import grpc_tools
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
PACKAGE_DIR = Path("dosis") / "v1"
OUTPUT_ROOT = ROOT / "clients" / "python" / "src"
DESCRIPTOR_SET = "dosis.binpb"


def googleapis_include() -> Path:
    """The site-packages folder that holds google/api/*.proto and google/rpc/*.proto."""
    spec = importlib.util.find_spec("google.rpc.status_pb2")
    if spec is None or spec.origin is None:
        raise SystemExit("googleapis-common-protos is not installed")
    return Path(spec.origin).parents[2]


def well_known_include() -> Path:
    return Path(grpc_tools.__file__).parent / "_proto"


def generate(out_root: Path) -> None:
    out_dir = out_root / PACKAGE_DIR
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    sources = sorted(str(p.relative_to(PROTO_ROOT)) for p in (PROTO_ROOT / PACKAGE_DIR).glob("*.proto"))
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{googleapis_include()}",
        f"-I{well_known_include()}",
        f"--python_out={out_root}",
        f"--pyi_out={out_root}",
        f"--grpc_python_out={out_root}",
        f"--descriptor_set_out={out_dir / DESCRIPTOR_SET}",
        "--include_imports",
        "--include_source_info",
        *sources,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    for source in sources:
        shutil.copy2(PROTO_ROOT / source, out_dir / Path(source).name)
    (out_dir / "__init__.py").write_text(
        '"""Generated from protos/dosis/v1 by scripts/generate_protos.py. Do not edit."""\n'
    )


def differences(left: Path, right: Path) -> list[str]:
    cmp = filecmp.dircmp(left, right, ignore=["__pycache__"])
    found = [f"only in {left}: {n}" for n in cmp.left_only] + [f"only in {right}: {n}" for n in cmp.right_only]
    _, mismatch, errors = filecmp.cmpfiles(left, right, cmp.common_files, shallow=False)
    return found + [f"differs: {n}" for n in mismatch + errors]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the committed output is stale")
    args = parser.parse_args()
    if not args.check:
        generate(OUTPUT_ROOT)
        print(f"generated {OUTPUT_ROOT / PACKAGE_DIR}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        diff = differences(OUTPUT_ROOT / PACKAGE_DIR, Path(tmp) / PACKAGE_DIR)
    if diff:
        print("generated code is stale; run: python scripts/generate_protos.py", *diff, sep="\n  ")
        return 1
    print("generated code is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
