"""SPEC §6: a provider that cannot be reached gets the client a 503, never a hang or the VM's crash."""

import pytest

import tools
from support import launch_envoy, post, refusal, reset_body, standard_config


@pytest.fixture(scope="module")
def gate(tmp_path_factory, wasm, app):
    closed_port = tools.free_port()  # nothing listens there once the probe socket is closed
    envoy = launch_envoy(tmp_path_factory.mktemp("unreachable"), wasm, f"127.0.0.1:{closed_port}", app,
                         standard_config())
    yield envoy
    envoy.stop()


def test_unreachable_provider_gives_503(gate):
    response = post(gate, reset_body())

    refusal(response, 503, "temporarily_unavailable")


def test_unreachable_provider_keeps_the_filter_serving(gate):
    for _ in range(3):
        refusal(post(gate, reset_body()), 503, "temporarily_unavailable")


def test_unreachable_provider_does_not_affect_other_paths(gate, app):
    response = post(gate, b"{}", path="/api/health")

    assert response.status_code == 200
    assert app.requests()[0].path == "/api/health"
