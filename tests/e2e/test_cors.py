"""SPEC §1–2: browsers see every reply, because Envoy's CORS filter runs before reset-gate and the reset
route points to a cluster."""

import httpx
import pytest

from support import (
    ORIGIN, RESET_PATH, UNKNOWN_CLIENT_ID, assert_not_forwarded, assert_success, post, refusal, reset_body,
)

BROWSER = {"origin": ORIGIN, "auth0-client": "eyJuYW1lIjoiYXV0aDAuanMiLCJ2ZXJzaW9uIjoiOS4yMy4wIn0="}


def test_preflight_allows_the_configured_origin(gate, provider):
    response = httpx.options(gate.url + RESET_PATH, timeout=10, headers={
        "origin": ORIGIN, "access-control-request-method": "POST",
        "access-control-request-headers": "content-type, auth0-client"})

    assert response.status_code == 200
    assert response.headers.get("access-control-allow-origin") == ORIGIN
    assert_not_forwarded(provider)


def test_browser_success_reply_carries_cors_headers(gate, provider):
    response = post(gate, reset_body(), headers=BROWSER)

    assert_success(response)
    assert response.headers.get("access-control-allow-origin") == ORIGIN


@pytest.mark.parametrize("body,content_type,status,error", [
    (reset_body(email="not-an-email"), "application/json", 400, "invalid_request"),
    (reset_body(connection="google-oauth2"), "application/json", 400, "bad.connection"),
    (reset_body(client_id=UNKNOWN_CLIENT_ID), "application/json", 403, "unauthorized_client"),
    (reset_body(), "text/plain", 415, "invalid_request"),
    (reset_body(pad="x" * 9000), "application/json", 413, "invalid_request"),
], ids=["400", "bad-connection", "403", "415", "413"])
def test_browser_error_reply_carries_cors_headers(gate, provider, body, content_type, status, error):
    response = post(gate, body, content_type=content_type, headers=BROWSER)

    refusal(response, status, error)
    assert response.headers.get("access-control-allow-origin") == ORIGIN


def test_browser_provider_trouble_reply_carries_cors_headers(gate, provider):
    provider.set_mode(status=500, body=b"boom")

    response = post(gate, reset_body(), headers=BROWSER)

    refusal(response, 502, "temporarily_unavailable")
    assert response.headers.get("access-control-allow-origin") == ORIGIN


def test_browser_provider_4xx_reply_carries_cors_headers(gate, provider):
    provider.set_mode(status=429, body=b'{"error":"too_many_requests","error_description":"slow down"}',
                      headers=[("Content-Type", "application/json"), ("Retry-After", "30")])

    response = post(gate, reset_body(), headers=BROWSER)

    assert response.status_code == 429
    assert response.headers.get("access-control-allow-origin") == ORIGIN


def test_other_origins_get_no_cors_headers(gate, provider):
    response = post(gate, reset_body(), headers={"origin": "https://evil.example.net"})

    assert "access-control-allow-origin" not in response.headers
