"""Builds the artifact to ship: `python3 envoy/build.py` → dist/reset_gate.wasm and its sha256.

The same build the demo and the tests use (tools.build_wasm): cargo's release build, post-optimised
with binaryen's wasm-opt when it is installed.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import tools  # noqa: E402


def main() -> int:
    wasm = tools.build_wasm()
    digest = hashlib.sha256(wasm.read_bytes()).hexdigest()
    (wasm.parent / (wasm.name + ".sha256")).write_text(f"{digest}  {wasm.name}\n")
    print(f"{wasm.relative_to(tools.ROOT)}: {wasm.stat().st_size} bytes, sha256 {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
