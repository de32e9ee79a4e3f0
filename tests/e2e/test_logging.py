"""SPEC §4 and §9: one log line per intercepted request, with a redacted email; never a whole email,
a password or a body."""

import time

from support import (
    CLIENT_ID, DEFAULT_CONNECTION, RESET_PATH, assert_success, post, post_form, refusal, reset_body,
)


def new_lines(gate, since: int, marker: str, settle: float = 0.3) -> list[str]:
    """Log lines written after `since` that contain `marker`, once the log has had time to settle."""
    gate.wait_for_log(marker, timeout=5, since=since)
    time.sleep(settle)
    return [line for line in gate.logs()[since:].splitlines() if marker in line]


def test_forwarded_request_is_logged_once_with_a_redacted_email(gate, provider):
    since = gate.log_size()
    assert_success(post(gate, reset_body(email="quinn.one@log-one.example")))

    lines = new_lines(gate, since, "q***@log-one.example")
    assert len(lines) == 1, lines
    assert "reset-gate" in lines[0]
    assert "200" in lines[0]
    assert DEFAULT_CONNECTION in lines[0]
    assert "quinn.one" not in gate.logs()


def test_refused_request_is_logged_once_with_a_redacted_email(gate, provider):
    since = gate.log_size()
    refusal(post(gate, reset_body(email="rosa.two@log-two.example", connection="google-oauth2")), 400,
            "bad.connection")

    lines = new_lines(gate, since, "r***@log-two.example")
    assert len(lines) == 1, lines
    assert "reset-gate" in lines[0]
    assert "400" in lines[0]
    assert "google-oauth2" in lines[0], "the refused connection is not in the log line"
    assert "rosa.two" not in gate.logs()


def test_provider_failure_is_logged_once_with_a_redacted_email(gate, provider):
    provider.set_mode(status=500, body=b"stack trace at db01")
    since = gate.log_size()
    refusal(post(gate, reset_body(email="sam.three@log-three.example")), 502, "temporarily_unavailable")

    lines = new_lines(gate, since, "s***@log-three.example")
    assert len(lines) == 1, lines
    assert "502" in lines[0]
    assert "sam.three" not in gate.logs()


def test_legacy_password_is_never_logged(gate, provider):
    since = gate.log_size()
    pairs = [("client_id", CLIENT_ID), ("connection", DEFAULT_CONNECTION), ("email", "tom.four@log-four.example"),
             ("password", "Legacy-Passw0rd-4!")]
    assert_success(post_form(gate, pairs))

    lines = new_lines(gate, since, "t***@log-four.example")
    assert len(lines) == 1, lines
    logs = gate.logs()
    assert "Legacy-Passw0rd-4!" not in logs
    assert "Legacy-Passw0rd-4%21" not in logs
    assert "tom.four" not in logs


def test_requests_that_are_not_resets_are_not_logged_by_the_filter(gate, app):
    since = gate.log_size()
    post(gate, reset_body(email="uma.five@log-five.example"), path=RESET_PATH + "/challenge")

    time.sleep(0.5)
    assert len(app.requests()) == 1
    assert "log-five.example" not in gate.logs()[since:]


def test_no_email_password_or_body_reaches_the_log(gate, provider):
    secrets = {
        "vera.six@log-six.example": reset_body(email="vera.six@log-six.example", password="Json-Passw0rd-6"),
        "walt.seven@log-seven.example": reset_body(email="walt.seven@log-seven.example", connection="facebook",
                                                   password="Json-Passw0rd-7"),
        "xena.eight@log-eight.example": reset_body(email="xena.eight@log-eight.example", client_id="nope",
                                                   password="Json-Passw0rd-8"),
        "yan.nine@log-nine.example": reset_body(email="yan.nine@log-nine.example", device="Yan’s iPhone 📱",
                                                password="Json-Passw0rd-9", state="state-secret-9"),
    }
    for body in secrets.values():
        post(gate, body)
    post(gate, b'{"email":"zoe.ten@log-ten.example","password":"Json-Passw0rd-10",', content_type="application/json")
    gate.wait_for_log("y***@log-nine.example", timeout=5)
    time.sleep(0.3)

    logs = gate.logs()
    for needle in [*secrets, "zoe.ten", "Json-Passw0rd", "state-secret-9", "Yan’s iPhone", '"email"']:
        assert needle not in logs, needle
