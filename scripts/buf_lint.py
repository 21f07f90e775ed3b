"""Run `buf lint` on protos/ (buf comes from the npm package @bufbuild/buf, see package.json).

The googleapis files our protos import are copied from the installed
googleapis-common-protos package into .build/googleapis, the workspace's second module.
"""

from __future__ import annotations

import shutil
import subprocess
import sys

from generate_protos import ROOT, googleapis_include

BUF = ROOT / "node_modules" / ".bin" / "buf"


def prepare_googleapis() -> None:
    target = ROOT / ".build" / "googleapis" / "google"
    source = googleapis_include() / "google"
    for sub in ("api", "rpc"):
        shutil.rmtree(target / sub, ignore_errors=True)
        shutil.copytree(source / sub, target / sub, ignore=shutil.ignore_patterns("*.py", "*.pyi", "__pycache__"))


def main() -> int:
    if not BUF.exists():
        print("buf is missing: run `npm ci` (package.json pins @bufbuild/buf)", file=sys.stderr)
        return 2
    prepare_googleapis()
    result = subprocess.run([str(BUF), "lint", "protos"], cwd=ROOT)
    if result.returncode == 0:
        print("buf lint: protos/ is clean")
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
