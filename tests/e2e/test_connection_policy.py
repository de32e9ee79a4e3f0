"""SPEC §5: only database connections are forwarded; everyone else is told where to reset."""

import pytest

from support import (
    STAFF_CONNECTION, assert_not_forwarded, assert_refused, assert_success, expected_fields, forwarded_fields,
    post, post_form, reset_body,
)


@pytest.mark.parametrize("connection,display_name", [
    ("google-oauth2", "Google"),
    ("windowslive", "Microsoft"),
])
def test_social_connection_is_refused_naming_the_identity_provider(gate, provider, connection, display_name):
    response = post(gate, reset_body(connection=connection))

    description = assert_refused(response, 400, "bad.connection", "password")
    assert display_name in description, description
    assert_not_forwarded(provider)


@pytest.mark.parametrize("connection", ["facebook", "github", "apple", "linkedin"])
def test_other_well_known_social_connections_are_named(gate, provider, connection):
    response = post(gate, reset_body(connection=connection))

    assert_refused(response, 400, "bad.connection", connection)
    assert_not_forwarded(provider)


@pytest.mark.parametrize("connection", ["samlp", "waad", "adfs", "okta", "oidc", "email", "sms"])
def test_enterprise_and_passwordless_strategies_are_refused(gate, provider, connection):
    response = post(gate, reset_body(connection=connection))

    assert_refused(response, 400, "bad.connection")
    assert_not_forwarded(provider)


def test_configured_identity_provider_is_named_by_its_display_name(gate, provider):
    response = post(gate, reset_body(connection="acme-saml"))

    description = assert_refused(response, 400, "bad.connection", "password")
    assert "Acme single sign-on" in description, description
    assert_not_forwarded(provider)


def test_unknown_connection_is_refused_as_not_a_database_connection(gate, provider):
    response = post(gate, reset_body(connection="legacy-users"))

    assert_refused(response, 400, "bad.connection", "database")
    assert_not_forwarded(provider)


def test_bad_connection_in_a_form_body_is_refused(gate, provider):
    response = post_form(gate, {"email": "jane@example.com", "connection": "google-oauth2"})

    description = assert_refused(response, 400, "bad.connection")
    assert "Google" in description, description
    assert_not_forwarded(provider)


def test_listed_database_connection_is_forwarded(gate, provider):
    assert_success(post(gate, reset_body(connection=STAFF_CONNECTION)))
    assert forwarded_fields(provider) == expected_fields(connection=STAFF_CONNECTION)
