"""SPEC §2: which requests reset-gate takes, and that it leaves every other request alone."""

import json

import httpx
import pytest

from support import (
    EMAIL, ORIGIN, RESET_PATH, assert_not_forwarded, assert_refused, assert_success, expected_fields,
    forwarded_fields, post, reset_body,
)


def test_reset_post_is_forwarded_to_the_provider(gate, provider, app):
    response = post(gate, reset_body())

    assert_success(response)
    assert forwarded_fields(provider) == expected_fields()
    assert app.requests() == []


def test_query_string_is_ignored_when_matching_the_path(gate, provider):
    response = post(gate, reset_body(scope="openid"), path=RESET_PATH + "?ui_locales=fr&x=1")

    assert_success(response)
    # Intercepted: the body was normalised (scope dropped) and the provider path carries no query.
    assert forwarded_fields(provider) == expected_fields()


def test_challenge_endpoint_passes_through_untouched(gate, provider, app):
    body = b'{ "client_id" : "abc",  "scope": ["x"], "email": "Jane@EXAMPLE.com" }'
    response = post(gate, body, path=RESET_PATH + "/challenge", headers={"auth0-client": "e30"})

    assert response.status_code == 200
    [received] = app.requests()
    assert received.method == "POST"
    assert received.path == RESET_PATH + "/challenge"
    assert received.body == body
    assert received.header("content-type") == "application/json"
    assert received.header("auth0-client") == "e30"
    assert_not_forwarded(provider)


def test_other_post_json_paths_pass_through_untouched(gate, provider, app):
    body = b'{"client_id":"abc","email":"jane@example.com","password":"Secret-123","connection":"google-oauth2"}'
    response = post(gate, body, path="/dbconnections/signup")

    assert response.status_code == 200
    [received] = app.requests()
    assert (received.method, received.path, received.body) == ("POST", "/dbconnections/signup", body)
    assert_not_forwarded(provider)


def test_invalid_body_on_another_path_passes_through_untouched(gate, app):
    body = b"\xff\x00 not json at all"
    response = post(gate, body, content_type="text/plain", path="/api/v2/anything")

    assert response.status_code == 200
    [received] = app.requests()
    assert received.body == body
    assert received.header("content-type") == "text/plain"


def test_path_with_trailing_slash_is_not_a_reset_path(gate, provider, app):
    body = b'{"email": "jane@example.com"}'
    response = post(gate, body, path=RESET_PATH + "/")

    assert response.status_code == 200
    [received] = app.requests()
    assert received.body == body
    assert_not_forwarded(provider)


def test_get_on_another_path_passes_through(gate, app):
    response = httpx.get(gate.url + "/authorize?client_id=abc", timeout=10)

    assert response.status_code == 200
    [received] = app.requests()
    assert (received.method, received.path) == ("GET", "/authorize?client_id=abc")


def test_cors_preflight_is_answered_by_envoy_cors_filter(gate, provider, app):
    response = httpx.options(gate.url + RESET_PATH, timeout=10, headers={
        "origin": ORIGIN,
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type,auth0-client",
    })

    assert response.status_code == 200
    assert response.headers.get("access-control-allow-origin") == ORIGIN
    assert "POST" in response.headers.get("access-control-allow-methods", "")
    assert "auth0-client" in response.headers.get("access-control-allow-headers", "").lower()
    assert_not_forwarded(provider)
    assert app.requests() == []


def test_plain_options_passes_through_the_filter(gate, provider):
    response = httpx.options(gate.url + RESET_PATH, timeout=10)

    # Not refused by reset-gate: the route's upstream (here the stand-in provider) answers it.
    assert response.status_code == 200
    [received] = provider.requests()
    assert (received.method, received.path) == ("OPTIONS", RESET_PATH)


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_other_methods_are_refused_with_405(gate, provider, method):
    body = json.dumps(reset_body()).encode() if method in ("PUT", "PATCH") else b""
    response = post(gate, body, method=method, content_type="application/json" if body else None)

    assert_refused(response, 405, "method_not_allowed", "POST")
    assert response.headers.get("allow") == "POST"
    assert_not_forwarded(provider)


def test_head_is_refused_with_405(gate, provider):
    response = httpx.head(gate.url + RESET_PATH, timeout=10)

    assert response.status_code == 405
    assert response.headers.get("allow") == "POST"
    assert_not_forwarded(provider)


def test_get_with_query_string_is_refused_with_405(gate, provider):
    response = httpx.get(gate.url + RESET_PATH + "?email=" + EMAIL, timeout=10)

    assert_refused(response, 405, "method_not_allowed", "POST")
    assert_not_forwarded(provider)

