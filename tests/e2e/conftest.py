"""Fixtures for the end-to-end tests: the filter build, the stand-in provider and app (one each for the
whole session, reset before every test) and one Envoy per module with the standard configuration."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
for entry in (ROOT / "envoy", ROOT / ".deps" / "python"):
    if str(entry) not in sys.path:
        sys.path.insert(0, str(entry))

import tools  # noqa: E402

tools.ensure_deps(quiet=True)

import pytest  # noqa: E402

import support  # noqa: E402
from provider import Provider  # noqa: E402


@pytest.fixture(scope="session")
def wasm() -> Path:
    """The filter: the build tests/run.py made (RESET_GATE_WASM), or a fresh one."""
    built = os.environ.get("RESET_GATE_WASM")
    return Path(built) if built else tools.build_wasm()


@pytest.fixture(scope="session")
def provider():
    with Provider(name="provider") as server:
        yield server


@pytest.fixture(scope="session")
def app():
    """The upstream for everything that is not a reset request."""
    with Provider(name="app") as server:
        yield server


@pytest.fixture(autouse=True)
def fresh_upstreams(provider, app):
    provider.reset()
    app.reset()
    yield


@pytest.fixture(scope="module")
def gate(tmp_path_factory, wasm, provider, app):
    """Envoy with reset-gate in its standard configuration, CORS filter first, two workers."""
    envoy = support.launch_envoy(tmp_path_factory.mktemp("gate"), wasm, provider, app,
                                 support.standard_config(), concurrency=2)
    yield envoy
    envoy.stop()
    # Whatever the module sent, the log never holds a whole email address or a password.
    logs = envoy.logs()
    assert support.unredacted_emails(logs) == [], "whole email addresses in the Envoy log"
    assert not [word for word in ("hunter2", "Passw0rd") if word in logs], "a password in the Envoy log"
