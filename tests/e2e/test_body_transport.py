"""SPEC §3: content types, the size limit, and bodies that arrive in pieces over HTTP/1.1 and HTTP/2."""

import concurrent.futures
import http.client
import json
import socket
import urllib.parse

import httpx
import pytest

from provider import SUCCESS_TEXT
from support import (
    MAX_BODY_BYTES, RESET_PATH, assert_mentions_any, assert_not_forwarded, assert_success, chunked,
    expected_fields, forwarded_fields, mentions_content_type, post, raw_http1, raw_http2, refusal,
    request_head, reset_body, split,
)


def exact_size_body(size: int) -> bytes:
    """A valid reset body of exactly `size` bytes, padded with an unused field."""
    body = reset_body(pad="")
    pad = size - len(json.dumps(body, separators=(",", ":")).encode())
    body["pad"] = "x" * pad
    data = json.dumps(body, separators=(",", ":")).encode()
    assert len(data) == size
    return data


# --- content type ----------------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", [
    "text/plain",
    "text/plain; charset=utf-8",
    "multipart/form-data; boundary=xyz",
    "application/xml",
    "application/jsonp",
])
def test_other_content_types_are_refused_with_415(gate, provider, content_type):
    response = post(gate, json.dumps(reset_body()), content_type=content_type)

    description = refusal(response, 415, "invalid_request")
    assert mentions_content_type(description), description
    assert_not_forwarded(provider)


def test_missing_content_type_is_refused_with_415(gate, provider):
    response = post(gate, json.dumps(reset_body()), content_type=None)

    description = refusal(response, 415, "invalid_request")
    assert mentions_content_type(description), description
    assert_not_forwarded(provider)


@pytest.mark.parametrize("content_type", [
    "application/json; charset=iso-8859-1",
    "application/json; charset=utf-16",
    "application/x-www-form-urlencoded; charset=latin1",
])
def test_charset_other_than_utf8_is_refused_with_415(gate, provider, content_type):
    response = post(gate, json.dumps(reset_body()), content_type=content_type)

    description = refusal(response, 415, "invalid_request")
    assert_mentions_any(description, "charset", "utf-8", "content-type", "content type")
    assert_not_forwarded(provider)


@pytest.mark.parametrize("content_type", [
    "application/json; charset=utf-8",
    "application/json;charset=UTF-8",
    "Application/JSON",
])
def test_json_with_utf8_charset_is_accepted(gate, provider, content_type):
    response = post(gate, json.dumps(reset_body()), content_type=content_type)

    assert_success(response)
    assert forwarded_fields(provider) == expected_fields()


@pytest.mark.parametrize("content_type", [
    "application/x-www-form-urlencoded",
    "application/x-www-form-urlencoded; charset=UTF-8",
])
def test_form_body_is_accepted(gate, provider, content_type):
    response = post(gate, urllib.parse.urlencode(reset_body()), content_type=content_type)

    assert_success(response)
    assert forwarded_fields(provider) == expected_fields()


# --- size ------------------------------------------------------------------------------------------


def test_body_of_exactly_the_limit_is_accepted(gate, provider):
    response = post(gate, exact_size_body(MAX_BODY_BYTES))

    assert_success(response)
    assert forwarded_fields(provider) == expected_fields()


def test_content_length_over_the_limit_is_refused_with_413(gate, provider):
    response = post(gate, exact_size_body(MAX_BODY_BYTES + 1))

    description = refusal(response, 413, "invalid_request")
    assert_mentions_any(description, "body", "bytes", str(MAX_BODY_BYTES))
    assert_not_forwarded(provider)


def test_content_length_over_the_limit_is_refused_before_the_body_arrives(gate, provider):
    # Only the head is sent: the refusal must not wait for a body that is never coming.
    head = request_head(gate, extra=["Content-Length: 100000"])
    response = raw_http1(gate, head, [], timeout=5)

    refusal(response, 413, "invalid_request")
    assert_not_forwarded(provider)


def test_chunked_body_growing_past_the_limit_is_refused_with_413(gate, provider):
    # 12 KB of an unfinished chunked body: the refusal comes without the final chunk.
    start = b'{"client_id":"abc","email":"jane@example.com","pad":"'
    data = start + b"x" * (12000 - len(start))
    head = request_head(gate, extra=["Transfer-Encoding: chunked"])
    response = raw_http1(gate, head, chunked(split(data, 1000))[:-1], pause=0.005, timeout=5)

    refusal(response, 413, "invalid_request")
    assert_not_forwarded(provider)


def test_chunked_body_within_the_limit_is_accepted(gate, provider):
    data = json.dumps(reset_body()).encode()
    response = post(gate, iter(split(data, 10)))  # httpx sends an iterator chunked

    assert_success(response)
    assert forwarded_fields(provider) == expected_fields()


def test_body_in_many_small_chunks_is_accepted(gate, provider):
    data = json.dumps(reset_body(state="s" * 100, organization="org_W30ZBa7pT9lfMDwV")).encode()
    head = request_head(gate, extra=["Transfer-Encoding: chunked"])
    response = raw_http1(gate, head, chunked(split(data, 7)), pause=0.003)

    assert response.status_code == 200, response.content
    assert forwarded_fields(provider) == expected_fields(organization="org_W30ZBa7pT9lfMDwV", state="s" * 100)


def test_content_length_body_in_many_small_writes_is_accepted(gate, provider):
    data = json.dumps(reset_body()).encode()
    head = request_head(gate, extra=[f"Content-Length: {len(data)}"])
    response = raw_http1(gate, head, split(data, 5), pause=0.003)

    assert response.status_code == 200, response.content
    assert forwarded_fields(provider) == expected_fields()


def test_chunked_body_with_trailers_is_accepted(gate, provider):
    data = json.dumps(reset_body()).encode()
    head = request_head(gate, extra=["Transfer-Encoding: chunked"])
    response = raw_http1(gate, head, chunked(split(data, 20), trailers=[("x-checksum", "abc")]), pause=0.003)

    assert response.status_code == 200, response.content
    assert forwarded_fields(provider) == expected_fields()


def test_http2_json_request_is_forwarded(gate, provider):
    response = post(gate, reset_body(), http2=True)

    assert response.http_version == "HTTP/2"
    assert_success(response)
    assert forwarded_fields(provider) == expected_fields()


def test_http2_form_request_is_forwarded(gate, provider):
    response = post(gate, urllib.parse.urlencode(reset_body()), http2=True,
                    content_type="application/x-www-form-urlencoded")

    assert response.http_version == "HTTP/2"
    assert_success(response)
    assert forwarded_fields(provider) == expected_fields()


def test_http2_body_in_many_data_frames_is_forwarded(gate, provider):
    data = json.dumps(reset_body()).encode()
    response = raw_http2(gate, split(data, 6), pause=0.003)

    assert_success(response)
    assert forwarded_fields(provider) == expected_fields()


def test_http2_request_with_trailers_is_forwarded(gate, provider):
    data = json.dumps(reset_body()).encode()
    response = raw_http2(gate, split(data, 16), trailers=[("x-checksum", "abc")])

    assert_success(response)
    assert forwarded_fields(provider) == expected_fields()


def test_http2_form_request_with_trailers_is_forwarded(gate, provider):
    data = urllib.parse.urlencode(reset_body()).encode()
    response = raw_http2(gate, split(data, 16), content_type="application/x-www-form-urlencoded",
                         trailers=[("x-checksum", "abc")])

    assert_success(response)
    assert forwarded_fields(provider) == expected_fields()


def test_http2_body_growing_past_the_limit_is_refused_with_413(gate, provider):
    start = b'{"client_id":"abc","email":"jane@example.com","pad":"'
    data = start + b"x" * (MAX_BODY_BYTES + 1000 - len(start)) + b'"}'
    response = raw_http2(gate, split(data, 1000))

    refusal(response, 413, "invalid_request")
    assert_not_forwarded(provider)


# --- unused values ---------------------------------------------------------------------------------


def test_deeply_nested_unused_value_is_accepted_and_dropped(gate, provider):
    nested = "[" * 1000 + "]" * 1000
    data = json.dumps(reset_body())[:-1] + ', "x": ' + nested + "}"
    assert len(data) < MAX_BODY_BYTES

    response = post(gate, data)

    assert_success(response)
    assert forwarded_fields(provider) == expected_fields()


def test_deeply_nested_unused_object_is_accepted_and_dropped(gate, provider):
    nested = '{"a":' * 1000 + "1" + "}" * 1000
    data = json.dumps(reset_body())[:-1] + ', "x": ' + nested + "}"
    assert len(data) < MAX_BODY_BYTES

    response = post(gate, data)

    assert_success(response)
    assert forwarded_fields(provider) == expected_fields()


def test_large_unused_value_is_accepted_and_dropped(gate, provider):
    response = post(gate, reset_body(custom_blob="é" * 3000, numbers=list(range(100))))

    assert_success(response)
    assert forwarded_fields(provider) == expected_fields()


def test_empty_body_is_refused_with_400(gate, provider):
    response = post(gate, b"")

    refusal(response, 400, "invalid_request")
    assert_not_forwarded(provider)


def test_filter_keeps_serving_after_hostile_bodies(gate, provider):
    for hostile in (b"[" * 8000, b'{"email":' * 800, b"\xff" * 5000, b"{" + b'"a":1,' * 1300 + b'"b":2}'):
        post(gate, hostile)
    provider.clear()

    response = post(gate, reset_body())

    assert_success(response)
    assert forwarded_fields(provider) == expected_fields()


def test_http1_keep_alive_connection_serves_several_resets(gate, provider):
    with httpx.Client(timeout=10) as client:
        for _ in range(3):
            response = client.post(gate.url + RESET_PATH, json=reset_body())
            assert_success(response)
    assert len(provider.requests()) == 3


def test_http2_refusal_is_the_filter_json_reply(gate, provider):
    response = post(gate, reset_body(email="jane.example.com"), http2=True)

    assert response.http_version == "HTTP/2"
    refusal(response, 400, "invalid_request")
    assert_not_forwarded(provider)


def test_expect_100_continue_body_is_accepted(gate, provider):
    # curl sends `Expect: 100-continue` for bodies over 1 KB and waits up to a second for the 100.
    data = json.dumps(reset_body(state="s" * 100, device="d" * 1200)).encode()
    head = request_head(gate, extra=[f"Content-Length: {len(data)}", "Expect: 100-continue"])
    with socket.create_connection(("127.0.0.1", gate.port), timeout=10) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        sock.settimeout(1.0)
        try:
            interim = sock.recv(4096)
        except socket.timeout:
            interim = b""
        sock.settimeout(10)
        sock.sendall(data)
        response = http.client.HTTPResponse(sock)
        response.begin()
        status, body = response.status, response.read()

    assert interim.startswith(b"HTTP/1.1 100"), interim
    assert (status, body) == (200, SUCCESS_TEXT)
    assert forwarded_fields(provider) == expected_fields(state="s" * 100)


def test_concurrent_resets_are_each_forwarded_once(gate, provider):
    emails = [f"user{n}@concurrent.example" for n in range(24)]

    with concurrent.futures.ThreadPoolExecutor(max_workers=12) as pool:
        responses = list(pool.map(lambda email: post(gate, reset_body(email=email)), emails))

    assert [r.status_code for r in responses] == [200] * len(emails)
    received = sorted(json.loads(r.body)["email"] for r in provider.requests())
    assert received == sorted(emails)
