"""SPEC §2 and §8: how reset-gate behaves with Envoy settings and filter configurations that are wrong,
and that the smallest valid configuration works."""

import time

import pytest

import tools
from support import (
    RESET_PATH, assert_not_forwarded, assert_success, forwarded_fields, launch_envoy, post,
    refusal, reset_body,
)


def start_expecting_failure(workdir, wasm, provider, app, filter_config) -> str:
    """Start Envoy (for real, not --mode validate) and expect it never to become ready; return its log."""
    config = tools.bootstrap(provider_address=provider.address, app_address=app.address,
                             filter_config=filter_config, wasm_path=wasm)
    envoy = tools.Envoy(config, workdir)
    envoy.launch()
    try:
        with pytest.raises(tools.EnvoyFailedToStart):
            envoy.wait_ready(timeout=15)
    finally:
        envoy.stop()
    return envoy.logs()


def minimal(**provider_fields) -> dict:
    return {"provider": {"cluster": tools.PROVIDER_CLUSTER, "authority": "tenant.example.auth0.com",
                         **provider_fields}}


@pytest.mark.parametrize("filter_config,keys", [
    (minimal(timeout=5000), ["provider.timeout"]),
    (minimal(timeout_ms=0), ["provider.timeout_ms"]),
    (minimal(timeout_ms=60001), ["provider.timeout_ms"]),
    (minimal(timeout_ms="5000"), ["provider.timeout_ms"]),
    ({"provider": {"authority": "tenant.example.auth0.com"}}, ["provider.cluster"]),
    ({"provider": {"cluster": tools.PROVIDER_CLUSTER}}, ["provider.authority"]),
    ({**minimal(), "paths": "/dbconnections/change_password"}, ["paths"]),
    ({**minimal(), "limit": {"max_body_bytes": 8192}}, ["limit"]),
    ({**minimal(), "connections": {"default": "Customers", "database": ["Staff"]}},
     ["connections.default", "connections.database"]),
    ({**minimal(), "clients": {"default": "abc", "allowed": ["def"]}}, ["clients.default", "clients.allowed"]),
    ('{"provider": {"cluster": "auth0", ', []),
], ids=["unknown-key", "timeout-zero", "timeout-too-large", "timeout-as-string", "missing-cluster",
        "missing-authority", "paths-not-a-list", "unknown-top-level-key", "default-connection-not-a-database",
        "default-client-not-allowed", "not-json"])
def test_invalid_configuration_keeps_envoy_from_starting(tmp_path, wasm, provider, app, filter_config, keys):
    logs = start_expecting_failure(tmp_path, wasm, provider, app, filter_config)

    if keys:
        assert any(key in logs for key in keys), f"none of {keys} named in the log:\n{logs[-3000:]}"


def test_minimal_configuration_forwards_with_the_defaults(tmp_path, wasm, provider, app):
    envoy = launch_envoy(tmp_path, wasm, provider, app, minimal())
    try:
        response = post(envoy, {"client_id": "abc", "email": "jane@example.com"})

        assert_success(response)
        assert forwarded_fields(provider) == [
            ("client_id", "abc"), ("email", "jane@example.com"), ("connection", "Username-Password-Authentication")]
        assert provider.requests()[0].header("host") == "tenant.example.auth0.com"
    finally:
        envoy.stop()


# --- Envoy without allow_on_headers_stop_iteration -------------------------------------------------


@pytest.fixture(scope="module")
def loose_gate(tmp_path_factory, wasm, provider, app):
    envoy = launch_envoy(tmp_path_factory.mktemp("loose"), wasm, provider, app, minimal(),
                         allow_on_headers_stop_iteration=False)
    yield envoy
    envoy.stop()


def test_without_allow_on_headers_stop_iteration_a_reset_fails_fast(loose_gate, provider):
    started = time.monotonic()
    response = post(loose_gate, reset_body(), timeout=10)
    elapsed = time.monotonic() - started

    assert elapsed < 2.0, elapsed
    refusal(response, 500, "server_error")
    assert_not_forwarded(provider)


def test_without_allow_on_headers_stop_iteration_the_log_names_the_setting(loose_gate, provider):
    post(loose_gate, reset_body(), timeout=10)

    assert "allow_on_headers_stop_iteration" in loose_gate.wait_for_log("allow_on_headers_stop_iteration")


def test_without_allow_on_headers_stop_iteration_other_paths_still_pass(loose_gate, app):
    response = post(loose_gate, b'{"a": 1}', path=RESET_PATH + "/challenge")

    assert response.status_code == 200
    assert app.requests()[0].body == b'{"a": 1}'
