"""SPEC §1 and §4: what the provider receives for what each client sends."""

import urllib.parse

import pytest

from support import (
    CLIENT_ID, DEFAULT_CONNECTION, EMAIL, IOS_CLIENT_ID, LOCK_IOS_AUTH0_CLIENT, LOCK_IOS_USER_AGENT,
    STAFF_CONNECTION, UNKNOWN_CLIENT_ID, assert_not_forwarded, assert_refused, assert_success, expected_fields,
    forwarded, forwarded_fields, post, post_form, reset_body,
)


def test_forwarded_fields_come_in_spec_order(gate, provider):
    body = {"state": "st-1", "captcha": "cap-1", "organization": "org_W30ZBa7pT9lfMDwV",
            "connection": STAFF_CONNECTION, "email": EMAIL, "client_id": IOS_CLIENT_ID}

    assert_success(post(gate, body))
    assert forwarded_fields(provider) == [
        ("client_id", IOS_CLIENT_ID), ("email", EMAIL), ("connection", STAFF_CONNECTION),
        ("organization", "org_W30ZBa7pT9lfMDwV"), ("captcha", "cap-1"), ("state", "st-1"),
    ]


# --- email -----------------------------------------------------------------------------------------


def test_email_surrounding_spaces_are_trimmed(gate, provider):
    assert_success(post(gate, reset_body(email="   jane.doe@example.com  ")))
    assert forwarded_fields(provider) == expected_fields(email="jane.doe@example.com")


def test_email_surrounding_tabs_and_newlines_are_trimmed(gate, provider):
    # What a paste from a spreadsheet or a mail client brings along; JavaScript's trim() removes it.
    assert_success(post(gate, reset_body(email=" \t jane.doe@example.com \r\n ")))
    assert forwarded_fields(provider) == expected_fields(email="jane.doe@example.com")


def test_email_domain_is_lower_cased_and_local_part_kept(gate, provider):
    assert_success(post(gate, reset_body(email="Jane.DOE+Reset@Example.COM")))
    assert forwarded_fields(provider) == expected_fields(email="Jane.DOE+Reset@example.com")


def test_unicode_domain_is_forwarded_in_unicode_lower_cased(gate, provider):
    assert_success(post(gate, reset_body(email="ana@Bücher.Example")))
    assert forwarded_fields(provider) == expected_fields(email="ana@bücher.example")


def test_unicode_domain_as_sent_is_forwarded(gate, provider):
    assert_success(post(gate, reset_body(email="ana@bücher.example")))
    assert forwarded_fields(provider) == expected_fields(email="ana@bücher.example")


def test_punycode_domain_is_forwarded_lower_cased(gate, provider):
    assert_success(post(gate, reset_body(email="ana@XN--BCHER-KVA.example")))
    assert forwarded_fields(provider) == expected_fields(email="ana@xn--bcher-kva.example")


def test_unicode_local_part_is_kept(gate, provider):
    assert_success(post(gate, reset_body(email="Zoë@example.com")))
    assert forwarded_fields(provider) == expected_fields(email="Zoë@example.com")


def test_json_escapes_in_keys_and_values_are_decoded(gate, provider):
    body = (f'{{"client_\\u0069d":"{CLIENT_ID}","em\\u0061il":"jane.doe\\u0040example.com",'
            '"connection":"Staff\\u002dDB"}')

    assert_success(post(gate, body))
    assert forwarded_fields(provider) == expected_fields(connection=STAFF_CONNECTION)


def test_username_is_accepted_as_email(gate, provider):
    body = reset_body(email=None, username=" Jane.Doe@Example.com ")

    assert_success(post(gate, body))
    assert forwarded_fields(provider) == expected_fields(email="Jane.Doe@example.com")


def test_username_equal_to_email_is_accepted(gate, provider):
    assert_success(post(gate, reset_body(email=EMAIL, username=EMAIL)))
    assert forwarded_fields(provider) == expected_fields()


# --- connection ------------------------------------------------------------------------------------


@pytest.mark.parametrize("sent,configured", [
    ("username-password-authentication", DEFAULT_CONNECTION),
    ("USERNAME-PASSWORD-AUTHENTICATION", DEFAULT_CONNECTION),
    ("staff-db", STAFF_CONNECTION),
    ("STAFF-db", STAFF_CONNECTION),
])
def test_connection_is_matched_case_insensitively_and_rewritten(gate, provider, sent, configured):
    assert_success(post(gate, reset_body(connection=sent)))
    assert forwarded_fields(provider) == expected_fields(connection=configured)


def test_connection_surrounding_spaces_are_trimmed(gate, provider):
    assert_success(post(gate, reset_body(connection="  Staff-DB ")))
    assert forwarded_fields(provider) == expected_fields(connection=STAFF_CONNECTION)


def test_connection_surrounding_tabs_and_newlines_are_trimmed(gate, provider):
    assert_success(post(gate, reset_body(connection="\tStaff-DB\n")))
    assert forwarded_fields(provider) == expected_fields(connection=STAFF_CONNECTION)


@pytest.mark.parametrize("connection", [None, "", "   "], ids=["absent", "empty", "blank"])
def test_absent_or_empty_connection_uses_the_default(gate, provider, connection):
    assert_success(post(gate, reset_body(connection=connection)))
    assert forwarded_fields(provider) == expected_fields(connection=DEFAULT_CONNECTION)


# --- client_id -------------------------------------------------------------------------------------


def test_absent_client_id_uses_the_default(gate, provider):
    assert_success(post(gate, reset_body(client_id=None)))
    assert forwarded_fields(provider) == expected_fields(client_id=CLIENT_ID)


def test_second_allowed_client_id_is_forwarded(gate, provider):
    assert_success(post(gate, reset_body(client_id=IOS_CLIENT_ID)))
    assert forwarded_fields(provider) == expected_fields(client_id=IOS_CLIENT_ID)


def test_client_id_not_allowed_is_refused_with_403(gate, provider):
    response = post(gate, reset_body(client_id=UNKNOWN_CLIENT_ID))

    assert_refused(response, 403, "unauthorized_client", "client_id")
    assert_not_forwarded(provider)


def test_client_id_is_compared_exactly(gate, provider):
    response = post(gate, reset_body(client_id=CLIENT_ID.lower()))

    assert_refused(response, 403, "unauthorized_client", "client_id")
    assert_not_forwarded(provider)


# --- passed through and dropped --------------------------------------------------------------------


def test_organization_is_passed_through(gate, provider):
    assert_success(post(gate, reset_body(organization="org_W30ZBa7pT9lfMDwV")))
    assert forwarded_fields(provider) == expected_fields(organization="org_W30ZBa7pT9lfMDwV")


def test_captcha_and_state_are_passed_through(gate, provider):
    body = reset_body(captcha="03AGdBq24PBCbwiDRaS_MJ7Z", state="hKFo2SBHNzJ4aDBPTkdl")

    assert_success(post(gate, body))
    assert forwarded_fields(provider) == expected_fields(captcha="03AGdBq24PBCbwiDRaS_MJ7Z",
                                                         state="hKFo2SBHNzJ4aDBPTkdl")


def test_other_fields_are_dropped(gate, provider):
    body = reset_body(scope="openid offline_access", device="iPhone", connection_scope="email", nonce="n1",
                      protocol="oauth2", tenant="acme", password="hunter2", app_key="x", response_type="token")

    assert_success(post(gate, body))
    assert forwarded_fields(provider) == expected_fields()


# --- what the real clients send --------------------------------------------------------------------


def test_lock_ios_v1_body_is_normalised(gate, provider):
    body = {
        "email": "Ana.Silva@Example.com",
        "client_id": IOS_CLIENT_ID,
        "connection": DEFAULT_CONNECTION,
        "scope": "openid offline_access",
        "device": "Ana’s iPhone 📱",
        "state": "af0ifjsldkj",
        "nonce": "n-0S6_WzA2Mj",
        "protocol": "oauth2",
        "connection_scope": "profile",
        "com.example.campaign": "spring",
    }
    headers = {"auth0-client": LOCK_IOS_AUTH0_CLIENT, "user-agent": LOCK_IOS_USER_AGENT}

    assert_success(post(gate, body, headers=headers))
    assert forwarded_fields(provider) == [
        ("client_id", IOS_CLIENT_ID), ("email", "Ana.Silva@example.com"), ("connection", DEFAULT_CONNECTION),
        ("state", "af0ifjsldkj"),
    ]
    received = forwarded(provider)
    assert received.header("auth0-client") == LOCK_IOS_AUTH0_CLIENT
    assert received.header("user-agent") == LOCK_IOS_USER_AGENT


def test_legacy_auth0js_form_body_with_password_is_normalised(gate, provider):
    # auth0.js <= 7: form-encoded, the withdrawn password field, and v6's tenant and username.
    pairs = [("client_id", CLIENT_ID), ("connection", DEFAULT_CONNECTION), ("email", "jane.doe@example.com"),
             ("password", "Legacy-Passw0rd!"), ("tenant", "acme"), ("username", "jane.doe@example.com")]

    assert_success(post_form(gate, pairs))
    assert forwarded_fields(provider) == expected_fields(email="jane.doe@example.com")
    assert b"Legacy-Passw0rd!" not in forwarded(provider).body


def test_auth0js_v8_body_with_captcha_and_state_is_forwarded(gate, provider):
    body = {"client_id": CLIENT_ID, "email": "jane.doe@example.com", "connection": DEFAULT_CONNECTION,
            "captcha": "hCaptcha-P0_eyJ0eXAi", "state": "g6Fo2SBhZmN"}
    headers = {"auth0-client": "eyJuYW1lIjoiYXV0aDAuanMiLCJ2ZXJzaW9uIjoiOS4yMy4wIn0="}

    assert_success(post(gate, body, headers=headers))
    assert forwarded_fields(provider) == expected_fields(captcha="hCaptcha-P0_eyJ0eXAi", state="g6Fo2SBhZmN")


def test_swift_body_with_organization_is_forwarded(gate, provider):
    body = {"email": "jane.doe@example.com", "connection": DEFAULT_CONNECTION, "client_id": IOS_CLIENT_ID,
            "organization": "org_W30ZBa7pT9lfMDwV"}
    headers = {"auth0-client": "eyJuYW1lIjoiQXV0aDAuc3dpZnQiLCJ2ZXJzaW9uIjoiMi41LjAifQ",
               "user-agent": "MyApp/1.0 CFNetwork/1410.0.3 Darwin/22.6.0"}

    assert_success(post(gate, body, headers=headers))
    assert forwarded_fields(provider) == expected_fields(client_id=IOS_CLIENT_ID,
                                                         organization="org_W30ZBa7pT9lfMDwV")


def test_form_plus_and_percent_encoding_are_decoded(gate, provider):
    body = f"client_id={CLIENT_ID}&email=+jane.doe%2Breset%40example.com+&state=a+b%2Bc%26d"

    assert_success(post_form(gate, body))
    assert forwarded_fields(provider) == expected_fields(email="jane.doe+reset@example.com", state="a b+c&d")


def test_form_body_with_unicode_device_is_forwarded(gate, provider):
    body = urllib.parse.urlencode({"client_id": CLIENT_ID, "email": EMAIL, "device": "Ana’s iPhone 📱"})

    assert_success(post_form(gate, body))
    assert forwarded_fields(provider) == expected_fields()
