"""The single test command: `python3 tests/run.py [pytest arguments]`.

Installs the pinned tools into .deps/, runs the Rust unit tests, builds the filter for Envoy, then runs
the end-to-end tests in tests/e2e against real Envoy processes. Extra arguments go to pytest
(e.g. `-k cors`, `-x`). Exits non-zero if anything failed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "envoy"))

import tools  # noqa: E402


def step(title: str) -> None:
    print(f"\n==> {title}", flush=True)


def main(pytest_args: list[str]) -> int:
    started = time.monotonic()
    step("dependencies (.deps/)")
    tools.ensure_deps()

    step("cargo test")
    unit = subprocess.run(["cargo", "test"], cwd=ROOT, stdin=subprocess.DEVNULL).returncode

    step(f"cargo build --release --target {tools.WASM_TARGET}")
    try:
        wasm = tools.build_wasm()
    except (subprocess.CalledProcessError, RuntimeError) as error:
        print(f"the filter did not build: {error}", file=sys.stderr)
        return 1

    step("gateway configurations (tests/check_configs.py)")
    configs = subprocess.run([sys.executable, str(ROOT / "tests" / "check_configs.py")], cwd=ROOT,
                             stdin=subprocess.DEVNULL).returncode

    step("end-to-end tests (pytest tests/e2e)")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(tools.PYTHON_DEPS), str(ROOT / "envoy")] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env["RESET_GATE_WASM"] = str(wasm)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    e2e = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rfE", str(ROOT / "tests" / "e2e"),
         *pytest_args],
        cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
    ).returncode

    elapsed = time.monotonic() - started
    print(f"\n==> cargo test: {'ok' if unit == 0 else 'FAILED'}; "
          f"configurations: {'ok' if configs == 0 else 'FAILED'}; "
          f"end-to-end: {'ok' if e2e == 0 else f'FAILED (pytest exit {e2e})'}; {elapsed:.0f}s", flush=True)
    return 0 if unit == 0 and configs == 0 and e2e == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
