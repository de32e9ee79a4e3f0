"""SPEC §6: the request the provider receives, and how its answer (or its silence) reaches the client."""

import json
import socket
import time

import pytest

from support import (
    AUTHORITY, CLIENT_IP_HEADER, LOCK_IOS_AUTH0_CLIENT, LOCK_IOS_USER_AGENT, PROVIDER_TIMEOUT_MS, RESET_PATH,
    assert_mentions_any, assert_success, expected_fields, forwarded, forwarded_fields, post, post_form,
    refusal, request_head, reset_body,
)

LEAK = "stack trace at db01"


# --- what the provider receives --------------------------------------------------------------------


def test_provider_receives_a_post_on_the_provider_path(gate, provider):
    post(gate, reset_body(), path=RESET_PATH + "?connection=evil")

    received = forwarded(provider)
    assert (received.method, received.path) == ("POST", RESET_PATH)


def test_provider_host_is_the_configured_authority(gate, provider):
    post(gate, reset_body(), headers={"host": "attacker.example.net"})

    assert forwarded(provider).header("host") == AUTHORITY


def test_provider_receives_json_content_type_for_a_form_body(gate, provider):
    post_form(gate, reset_body())

    assert forwarded(provider).header("content-type") == "application/json"
    assert forwarded_fields(provider) == expected_fields()


def test_provider_receives_json_content_type_without_charset_echo(gate, provider):
    post(gate, reset_body(), content_type="application/json; charset=utf-8")

    assert forwarded(provider).header("content-type") == "application/json"


def test_client_auth0_client_and_user_agent_are_forwarded_unchanged(gate, provider):
    post(gate, reset_body(), headers={"auth0-client": LOCK_IOS_AUTH0_CLIENT, "user-agent": LOCK_IOS_USER_AGENT})

    received = forwarded(provider)
    assert received.header("auth0-client") == LOCK_IOS_AUTH0_CLIENT
    assert received.header("user-agent") == LOCK_IOS_USER_AGENT


def test_padded_base64_auth0_client_is_forwarded_unchanged(gate, provider):
    telemetry = "eyJuYW1lIjoiYXV0aDAuanMiLCJ2ZXJzaW9uIjoiOS4wLjAifQ=="
    post(gate, reset_body(), headers={"auth0-client": telemetry})

    assert forwarded(provider).header("auth0-client") == telemetry


def test_absent_auth0_client_is_not_invented(gate, provider):
    post(gate, reset_body())

    assert forwarded(provider).header("auth0-client") is None


def test_provider_receives_a_request_id(gate, provider):
    post(gate, reset_body())

    request_id = forwarded(provider).header("x-request-id")
    assert request_id and request_id.strip()


def test_client_ip_header_carries_the_client_address(gate, provider):
    post(gate, reset_body())

    assert forwarded(provider).header(CLIENT_IP_HEADER) == "127.0.0.1"


def test_client_ip_header_sent_by_the_client_is_not_trusted(gate, provider):
    post(gate, reset_body(), headers={CLIENT_IP_HEADER: "203.0.113.66", "x-forwarded-for": "203.0.113.66"})

    assert forwarded(provider).header_values(CLIENT_IP_HEADER) == ["127.0.0.1"]


def test_other_client_headers_are_not_forwarded(gate, provider):
    post(gate, reset_body(), headers={"cookie": "session=secret", "authorization": "Bearer secret",
                                      "x-custom": "1", "origin": "https://evil.example.net"})

    received = forwarded(provider)
    for name in ("cookie", "authorization", "x-custom", "origin"):
        assert received.header(name) is None, name


# --- the provider answers --------------------------------------------------------------------------


def test_provider_success_reaches_the_client_unchanged(gate, provider):
    response = post(gate, reset_body())

    assert_success(response)


@pytest.mark.parametrize("content_type", ["text/plain", "application/json; charset=utf-8"])
def test_provider_content_type_reaches_the_client(gate, provider, content_type):
    provider.set_mode(headers=[("Content-Type", content_type)], body=b'"We\'ve just sent you an email."')

    response = post(gate, reset_body())

    assert response.status_code == 200
    assert response.headers.get("content-type") == content_type
    assert response.content == b'"We\'ve just sent you an email."'


def test_provider_rate_limit_headers_reach_the_client(gate, provider):
    provider.set_mode(headers=[("Content-Type", "text/html; charset=utf-8"), ("X-RateLimit-Limit", "10"),
                               ("X-RateLimit-Remaining", "9"), ("X-RateLimit-Reset", "1767225600")])

    response = post(gate, reset_body())

    assert_success(response)
    assert response.headers.get("x-ratelimit-limit") == "10"
    assert response.headers.get("x-ratelimit-remaining") == "9"
    assert response.headers.get("x-ratelimit-reset") == "1767225600"


def test_provider_429_reaches_the_client_with_its_headers(gate, provider):
    body = b'{"error":"too_many_requests","error_description":"Too many requests. Try again later."}'
    provider.set_mode(status=429, body=body, headers=[
        ("Content-Type", "application/json; charset=utf-8"), ("Retry-After", "60"), ("X-RateLimit-Limit", "10"),
        ("X-RateLimit-Remaining", "0"), ("X-RateLimit-Reset", "1767225600")])

    response = post(gate, reset_body())

    assert response.status_code == 429
    assert response.content == body
    assert response.headers.get("content-type") == "application/json; charset=utf-8"
    assert response.headers.get("retry-after") == "60"
    assert response.headers.get("x-ratelimit-limit") == "10"
    assert response.headers.get("x-ratelimit-remaining") == "0"
    assert response.headers.get("x-ratelimit-reset") == "1767225600"


@pytest.mark.parametrize("status,body", [
    (400, b'{"error":"invalid_request","error_description":"email is too long"}'),
    (401, b'{"name":"UnauthorizedError","code":"unauthorized","description":"nope","statusCode":401}'),
    (404, b'{"error":"not_found","error_description":"Not found"}'),
])
def test_provider_4xx_reaches_the_client_unchanged(gate, provider, status, body):
    provider.set_mode(status=status, body=body, headers=[("Content-Type", "application/json")])

    response = post(gate, reset_body())

    assert response.status_code == status
    assert response.content == body
    assert response.headers.get("content-type") == "application/json"


def test_provider_success_without_body_reaches_the_client(gate, provider):
    provider.set_mode(body=b"")

    response = post(gate, reset_body())

    assert response.status_code == 200
    assert response.content == b""


def test_other_provider_headers_do_not_reach_the_client(gate, provider):
    provider.set_mode(headers=[("Content-Type", "text/html; charset=utf-8"), ("Set-Cookie", "did=s%3Av0%3A123"),
                               ("X-Auth0-Internal", "db01")])

    response = post(gate, reset_body())

    assert_success(response)
    assert "set-cookie" not in response.headers
    assert "x-auth0-internal" not in response.headers


def test_slowly_trickled_provider_body_reaches_the_client(gate, provider):
    provider.set_mode(trickle=0.5)

    assert_success(post(gate, reset_body()))


# --- provider trouble ------------------------------------------------------------------------------


def assert_unavailable(response, status: int) -> None:
    description = refusal(response, status, "temporarily_unavailable")
    assert LEAK not in response.text
    assert "db01" not in description


@pytest.mark.parametrize("provider_status,client_status", [(503, 503), (504, 504), (500, 502), (502, 502),
                                                           (501, 502)])
def test_provider_5xx_becomes_temporarily_unavailable(gate, provider, provider_status, client_status):
    provider.set_mode(status=provider_status, body=LEAK.encode(), headers=[("Content-Type", "text/plain"),
                                                                            ("Retry-After", "5")])

    response = post(gate, reset_body())

    assert_unavailable(response, client_status)


def test_provider_json_500_does_not_leak(gate, provider):
    provider.set_mode(status=500, body=json.dumps({"error": "server_error", "error_description": LEAK}),
                      headers=[("Content-Type", "application/json")])

    assert_unavailable(post(gate, reset_body()), 502)


def test_provider_slower_than_the_timeout_gives_504(gate, provider):
    provider.set_mode(delay=PROVIDER_TIMEOUT_MS / 1000 + 1.5, body=LEAK.encode())

    started = time.monotonic()
    response = post(gate, reset_body())
    elapsed = time.monotonic() - started

    assert_unavailable(response, 504)
    assert PROVIDER_TIMEOUT_MS / 1000 - 0.2 < elapsed < PROVIDER_TIMEOUT_MS / 1000 + 1.0, elapsed


def test_provider_closing_without_an_answer_gives_503(gate, provider):
    provider.set_mode(behaviour="close")

    assert_unavailable(post(gate, reset_body()), 503)


def test_provider_reset_after_headers_gives_503(gate, provider):
    provider.set_mode(behaviour="reset_after_headers", body=LEAK.encode())

    assert_unavailable(post(gate, reset_body()), 503)


def test_huge_provider_body_is_not_relayed(gate, provider):
    # Auth0's answers are a sentence or a small JSON object; 4 MiB is a fault, not a message.
    provider.set_mode(body=b"x" * (4 * 1024 * 1024))

    response = post(gate, reset_body(), timeout=20)

    assert_unavailable(response, 502)
    assert len(response.content) < 1024
    provider.reset()
    assert_success(post(gate, reset_body()))


def test_provider_body_just_under_the_relay_limit_is_relayed(gate, provider):
    body = b"y" * (64 * 1024)
    provider.set_mode(body=body, headers=[("Content-Type", "text/plain")])

    response = post(gate, reset_body())

    assert response.status_code == 200
    assert response.content == body


def test_client_going_away_leaves_nothing_behind(gate, provider):
    provider.set_mode(delay=PROVIDER_TIMEOUT_MS / 1000 + 1.0)
    data = json.dumps(reset_body()).encode()
    head = request_head(gate, extra=[f"Content-Length: {len(data)}"])

    with socket.create_connection(("127.0.0.1", gate.port), timeout=5) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + data)
        provider.wait_for_requests(1, timeout=2)
    # Envoy 1.40 lets a Wasm http call run on after the client's stream is gone (a minimal
    # proxy-wasm filter shows the same, and the ABI has no way to cancel a call): it must still end,
    # at the latest at provider.timeout_ms, and leave no request or crash behind.
    deadline = time.monotonic() + PROVIDER_TIMEOUT_MS / 1000 + 2
    while gate.stats().get("cluster.auth0.upstream_rq_active", 0) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gate.stats().get("cluster.auth0.upstream_rq_active", 0) == 0
    assert "panicked" not in gate.logs()

    provider.reset()
    assert_success(post(gate, reset_body()))


def test_filter_keeps_serving_after_provider_trouble(gate, provider):
    for mode in ({"behaviour": "close"}, {"status": 500}, {"behaviour": "reset_after_headers"}):
        provider.set_mode(**mode)
        post(gate, reset_body())
    provider.reset()

    response = post(gate, reset_body())

    assert_success(response)
    assert forwarded_fields(provider) == expected_fields()


def test_temporarily_unavailable_description_is_actionable(gate, provider):
    provider.set_mode(status=503)

    description = refusal(post(gate, reset_body()), 503, "temporarily_unavailable")
    assert_mentions_any(description, "try again", "later", "unavailable")
