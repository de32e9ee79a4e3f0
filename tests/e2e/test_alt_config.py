"""SPEC §4, §6 and §8 with another configuration: several paths, another provider path and authority,
no default client, no allowed list, no client address header, another default connection, another
cluster name, no CORS."""

import pytest

from support import (
    RESET_PATH, assert_not_forwarded, assert_refused, assert_success, forwarded, forwarded_fields, launch_envoy,
    post, reset_body,
)

OTHER_PATH = "/account/password-reset"
PROVIDER_PATH = "/v2/dbconnections/change_password"
OTHER_AUTHORITY = "login.example.org"


@pytest.fixture(scope="module")
def gate(tmp_path_factory, wasm, provider, app):
    config = {
        "paths": [RESET_PATH, OTHER_PATH],
        "provider": {"cluster": "tenant-eu", "authority": OTHER_AUTHORITY, "path": PROVIDER_PATH},
        "connections": {"default": "Customers", "database": ["Customers", "Partners"]},
    }
    envoy = launch_envoy(tmp_path_factory.mktemp("alt"), wasm, provider, app, config, cors=False,
                         provider_cluster="tenant-eu")
    yield envoy
    envoy.stop()


def body(**fields):
    return reset_body(**{"client_id": "any-client", "connection": None, **fields})


def test_missing_client_id_without_a_default_is_refused(gate, provider):
    response = post(gate, body(client_id=None))

    assert_refused(response, 400, "invalid_request", "client_id")
    assert_not_forwarded(provider)


def test_any_client_id_is_accepted_without_an_allowed_list(gate, provider):
    assert_success(post(gate, body(client_id="SomeOtherClient")))
    assert dict(forwarded_fields(provider, PROVIDER_PATH))["client_id"] == "SomeOtherClient"


def test_every_configured_path_is_intercepted(gate, provider, app):
    assert_success(post(gate, body(scope="openid"), path=OTHER_PATH))
    assert forwarded_fields(provider, PROVIDER_PATH) == [
        ("client_id", "any-client"), ("email", "jane.doe@example.com"), ("connection", "Customers")]
    assert app.requests() == []


def test_provider_path_and_authority_are_the_configured_ones(gate, provider):
    post(gate, body())

    received = forwarded(provider, PROVIDER_PATH)
    assert received.header("host") == OTHER_AUTHORITY


def test_no_client_address_header_when_none_is_configured(gate, provider):
    post(gate, body(), headers={"auth0-forwarded-for": "203.0.113.66"})

    assert forwarded(provider, PROVIDER_PATH).header("auth0-forwarded-for") is None


def test_configured_default_connection_is_used(gate, provider):
    assert_success(post(gate, body()))
    assert dict(forwarded_fields(provider, PROVIDER_PATH))["connection"] == "Customers"


def test_connection_outside_the_configured_databases_is_refused(gate, provider):
    response = post(gate, body(connection="Username-Password-Authentication"))

    assert_refused(response, 400, "bad.connection", "database")
    assert_not_forwarded(provider)


def test_other_configured_database_is_forwarded(gate, provider):
    assert_success(post(gate, body(connection="partners")))
    assert dict(forwarded_fields(provider, PROVIDER_PATH))["connection"] == "Partners"

