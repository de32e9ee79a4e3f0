"""SPEC §3–4: bodies and fields that are refused with 400 before anything reaches the provider."""

import json
import urllib.parse

import pytest

from support import (
    CLIENT_ID, DEFAULT_CONNECTION, assert_mentions_any, assert_not_forwarded, assert_refused, assert_success,
    expected_fields, forwarded_fields, post, post_form, refusal, reset_body,
)

LONG_DOMAIN_189 = "b" * 61 + "." + "c" * 61 + "." + "d" * 61 + ".com"


def refused_400(response, provider, *mentions) -> str:
    description = assert_refused(response, 400, "invalid_request", *mentions)
    assert_not_forwarded(provider)
    return description


# --- the body as a whole ---------------------------------------------------------------------------


@pytest.mark.parametrize("body", [
    '{"client_id": "abc", "email": "jane@example.com"',
    '{"email":',
    "{'email': 'jane@example.com'}",
    '{"email": "jane@example.com",}',
    '{"email": "jane@example.com" /* comment */}',
    "email=jane@example.com",
], ids=["truncated", "truncated-after-key", "single-quotes", "trailing-comma", "comment", "form-as-json"])
def test_invalid_json_is_refused(gate, provider, body):
    refused_400(post(gate, body), provider, "JSON")


@pytest.mark.parametrize("body", [
    json.dumps([reset_body()]),
    '"jane@example.com"',
    "42",
    "null",
    "true",
], ids=["array", "string", "number", "null", "boolean"])
def test_json_that_is_not_an_object_is_refused(gate, provider, body):
    refused_400(post(gate, body), provider, "object")


@pytest.mark.parametrize("suffix", [' {"email": "other@example.com"}', "x", "]"])
def test_json_with_trailing_content_is_refused(gate, provider, suffix):
    refused_400(post(gate, json.dumps(reset_body()) + suffix), provider)


# --- field types -----------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["email", "connection", "client_id", "organization", "captcha", "state",
                                   "username"])
@pytest.mark.parametrize("value", [42, ["x@example.com"], {"a": "b"}, True], ids=["number", "array", "object", "bool"])
def test_used_field_that_is_not_a_string_is_refused(gate, provider, field, value):
    body = reset_body(**{field: value})
    if field == "username":
        del body["email"]
    refused_400(post(gate, body), provider, field)


def test_null_email_is_refused(gate, provider):
    body = reset_body()
    body["email"] = None
    refused_400(post(gate, body), provider, "email")


def test_unused_field_of_any_type_is_accepted(gate, provider):
    body = reset_body(scope=["openid"], device={"name": "x"}, nonce=42, custom=False)
    body["protocol"] = None

    assert_success(post(gate, body))
    assert forwarded_fields(provider) == expected_fields()


# --- duplicates ------------------------------------------------------------------------------------


def test_duplicate_json_keys_are_refused(gate, provider):
    body = f'{{"client_id":"{CLIENT_ID}","email":"jane@example.com","email":"eve@example.com"}}'
    refused_400(post(gate, body), provider, "email")


def test_duplicate_json_key_spelled_with_an_escape_is_refused(gate, provider):
    body = f'{{"client_id":"{CLIENT_ID}","email":"jane@example.com","em\\u0061il":"eve@example.com"}}'
    refused_400(post(gate, body), provider, "email")


def test_duplicate_json_keys_with_equal_values_are_refused(gate, provider):
    body = f'{{"client_id":"{CLIENT_ID}","client_id":"{CLIENT_ID}","email":"jane@example.com"}}'
    refused_400(post(gate, body), provider, "client_id")


def test_duplicate_form_keys_are_refused(gate, provider):
    body = urllib.parse.urlencode([("client_id", CLIENT_ID), ("email", "jane@example.com"),
                                   ("email", "eve@example.com")])
    refused_400(post_form(gate, body), provider, "email")


def test_duplicate_connection_in_form_is_refused(gate, provider):
    body = urllib.parse.urlencode([("email", "jane@example.com"), ("connection", DEFAULT_CONNECTION),
                                   ("connection", "google-oauth2")])
    refused_400(post_form(gate, body), provider, "connection")


# --- encoding and control characters ---------------------------------------------------------------


def test_invalid_utf8_in_a_json_field_is_refused(gate, provider):
    body = f'{{"client_id":"{CLIENT_ID}","email":"j\xffane@example.com"}}'.encode("latin-1")
    description = refused_400(post(gate, body), provider)
    assert_mentions_any(description, "utf-8", "utf8", "email")


def test_invalid_utf8_in_an_unused_json_field_is_refused(gate, provider):
    body = f'{{"client_id":"{CLIENT_ID}","email":"jane@example.com","device":"iPhone \xc3\x28"}}'.encode("latin-1")
    description = refused_400(post(gate, body), provider)
    assert_mentions_any(description, "utf-8", "utf8", "device")


def test_invalid_utf8_in_a_form_value_is_refused(gate, provider):
    body = f"client_id={CLIENT_ID}&email=j%FFane%40example.com"
    description = refused_400(post_form(gate, body), provider)
    assert_mentions_any(description, "utf-8", "utf8", "email")


@pytest.mark.parametrize("field,value", [
    ("email", "jane\u0000@example.com"),
    ("email", "ja\tne@example.com"),
    ("email", "jane@exam\u0007ple.com"),
    ("connection", "Username-Password-\u0000Authentication"),
    ("connection", "Username-Password-Authentication\u001b"),
    ("client_id", CLIENT_ID + "\u0000"),
    ("organization", "org_\u0001abc"),
    ("state", "abc\u0000def"),
], ids=["email-nul", "email-tab", "email-bell", "connection-nul", "connection-escape", "client_id-nul",
        "organization-soh", "state-nul"])
def test_control_character_in_a_used_field_is_refused(gate, provider, field, value):
    refused_400(post(gate, reset_body(**{field: value})), provider, field)


def test_nul_in_a_form_email_is_refused(gate, provider):
    refused_400(post_form(gate, f"client_id={CLIENT_ID}&email=jane%00%40example.com"), provider, "email")


# --- lengths ---------------------------------------------------------------------------------------


def test_email_of_254_bytes_is_accepted(gate, provider):
    email = "a" * 64 + "@" + LONG_DOMAIN_189
    assert len(email) == 254

    assert_success(post(gate, reset_body(email=email)))
    assert forwarded_fields(provider) == expected_fields(email=email)


def test_email_of_255_bytes_is_refused(gate, provider):
    email = "a" * 64 + "@b" + LONG_DOMAIN_189
    assert len(email) == 255
    refused_400(post(gate, reset_body(email=email)), provider, "email")


def test_local_part_of_65_bytes_is_refused(gate, provider):
    refused_400(post(gate, reset_body(email="a" * 65 + "@example.com")), provider, "email")


def test_domain_label_of_64_bytes_is_refused(gate, provider):
    refused_400(post(gate, reset_body(email="jane@" + "b" * 64 + ".com")), provider, "email")


def test_connection_of_129_bytes_is_refused(gate, provider):
    refused_400(post(gate, reset_body(connection="c" * 129)), provider, "connection")


def test_client_id_of_129_bytes_is_refused(gate, provider):
    refused_400(post(gate, reset_body(client_id="c" * 129)), provider, "client_id")


def test_organization_of_129_bytes_is_refused(gate, provider):
    refused_400(post(gate, reset_body(organization="o" * 129)), provider, "organization")


def test_state_of_129_bytes_is_refused(gate, provider):
    refused_400(post(gate, reset_body(state="s" * 129)), provider, "state")


def test_multibyte_email_over_254_bytes_is_refused(gate, provider):
    # 136 characters but 261 bytes: the limit counts bytes.
    email = "é" * 32 + "@" + "ü" * 31 + "." + "ö" * 31 + "." + "ä" * 31 + ".example"
    assert len(email.encode()) > 254 and len(email) < 254
    refused_400(post(gate, reset_body(email=email)), provider, "email")


# --- email rules -----------------------------------------------------------------------------------


@pytest.mark.parametrize("email", [
    "jane.example.com",
    "jane@doe@example.com",
    "jane@localhost",
    "@example.com",
    "jane@",
    "jane@-example.com",
    "jane@example-.com",
    "jane@exa_mple.com",
    "jane@example..com",
    "jane@.example.com",
    "jane@exa mple.com",
    "",
    "   ",
], ids=["no-at", "two-ats", "domain-without-dot", "empty-local-part", "empty-domain", "label-leading-hyphen",
        "label-trailing-hyphen", "underscore-in-domain", "empty-label", "leading-dot", "space-in-domain",
        "empty", "blank"])
def test_malformed_email_is_refused(gate, provider, email):
    refused_400(post(gate, reset_body(email=email)), provider, "email")


def test_missing_email_is_refused(gate, provider):
    refused_400(post(gate, reset_body(email=None)), provider, "email")


def test_username_and_different_email_are_refused(gate, provider):
    body = reset_body(email="jane@example.com", username="eve@example.com")
    refused_400(post(gate, body), provider, "username")


def test_form_without_email_is_refused(gate, provider):
    refused_400(post_form(gate, {"client_id": CLIENT_ID, "connection": DEFAULT_CONNECTION}), provider, "email")


def test_refusal_names_the_rule_for_a_missing_at(gate, provider):
    description = refusal(post(gate, reset_body(email="jane.example.com")), 400, "invalid_request")
    assert_mentions_any(description, "@", "at sign", "address")
