"""What the end-to-end tests share: the standard filter configuration, ways to send a reset request
(httpx, raw HTTP/1.1, raw HTTP/2) and the assertions that read like the contract."""

from __future__ import annotations

import http.client
import json
import re
import socket
import time
import urllib.parse
from pathlib import Path

import h2.config
import h2.connection
import h2.events
import httpx

import tools
from provider import SUCCESS_TEXT, Provider

RESET_PATH = "/dbconnections/change_password"
AUTHORITY = "tenant.example.auth0.com"
CLIENT_ID = "k3Qy8dTfNw2ZrB6xLmP0aVhJcE5sUo9G"  # made up; the configured default
IOS_CLIENT_ID = "Yt7Wn1RbKq4XeLz8MdS2pHfA6uGcJv3N"  # made up; also allowed
UNKNOWN_CLIENT_ID = "Zz0000000000000000000000NotAllowed"
DEFAULT_CONNECTION = "Username-Password-Authentication"
STAFF_CONNECTION = "Staff-DB"
ORIGIN = "https://app.example.com"
EMAIL = "jane.doe@example.com"
CLIENT_IP_HEADER = "auth0-forwarded-for"
PROVIDER_TIMEOUT_MS = 2000
MAX_BODY_BYTES = 8192

# What Lock iOS v1 sends (A0APIClient): base64 telemetry and its User-Agent.
LOCK_IOS_AUTH0_CLIENT = "eyJuYW1lIjoiTG9jay5pT1MiLCJ2ZXJzaW9uIjoiMS4yOS4xIn0"
LOCK_IOS_USER_AGENT = "Lock.iOS/1.29.1 (iPhone; iOS 12.4.1; Scale/3.00)"


def standard_config() -> dict:
    """The filter configuration most modules run with: SPEC §8 without the rate limits."""
    return {
        "paths": [RESET_PATH],
        "provider": {
            "cluster": tools.PROVIDER_CLUSTER,
            "authority": AUTHORITY,
            "path": RESET_PATH,
            "timeout_ms": PROVIDER_TIMEOUT_MS,
            "client_ip_header": CLIENT_IP_HEADER,
        },
        "clients": {"default": CLIENT_ID, "allowed": [CLIENT_ID, IOS_CLIENT_ID]},
        "connections": {
            "default": DEFAULT_CONNECTION,
            "database": [DEFAULT_CONNECTION, STAFF_CONNECTION],
            "identity_providers": {"acme-saml": "Acme single sign-on"},
        },
        "limits": {"max_body_bytes": MAX_BODY_BYTES},
    }


def launch_envoy(workdir: Path, wasm: Path, provider: Provider | str, app: Provider | str,
                 filter_config: dict | str | None, concurrency: int = 1, **bootstrap_args) -> tools.Envoy:
    """Start Envoy with reset-gate in front of `provider` (a Provider or "host:port")."""
    provider_address = provider if isinstance(provider, str) else provider.address
    app_address = app if isinstance(app, str) else app.address
    config = tools.bootstrap(provider_address=provider_address, app_address=app_address,
                             filter_config=filter_config, wasm_path=wasm, **bootstrap_args)
    return tools.Envoy(config, workdir, concurrency=concurrency).start()


# --- requests --------------------------------------------------------------------------------------


def reset_body(**fields) -> dict:
    """A typical auth0.js body; a field set to None is left out."""
    body = {"client_id": CLIENT_ID, "email": EMAIL, "connection": DEFAULT_CONNECTION}
    body.update(fields)
    return {key: value for key, value in body.items() if value is not None}


def post(envoy: tools.Envoy, body: bytes | str | dict | list, content_type: str | None = "application/json",
         headers: dict | None = None, path: str = RESET_PATH, method: str = "POST",
         http2: bool = False, timeout: float = 10.0) -> httpx.Response:
    if isinstance(body, (dict, list)):
        body = json.dumps(body, ensure_ascii=False)
    if isinstance(body, str):
        body = body.encode()
    all_headers = dict(headers or {})
    if content_type is not None:
        all_headers["content-type"] = content_type
    with httpx.Client(http1=not http2, http2=http2, timeout=timeout) as client:
        return client.request(method, envoy.url + path, content=body, headers=all_headers)


def post_form(envoy: tools.Envoy, pairs: list[tuple[str, str]] | dict | str, **kwargs) -> httpx.Response:
    body = pairs if isinstance(pairs, str) else urllib.parse.urlencode(pairs)
    return post(envoy, body, content_type="application/x-www-form-urlencoded", **kwargs)


def chunked(pieces: list[bytes], trailers: list[tuple[str, str]] | None = None) -> list[bytes]:
    """HTTP/1.1 chunked framing of `pieces`, the last frame carrying the trailers."""
    frames = [b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces if piece]
    last = b"0\r\n" + b"".join(f"{k}: {v}\r\n".encode() for k, v in trailers or []) + b"\r\n"
    return frames + [last]


def split(data: bytes, size: int) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


class RawResponse:
    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes):
        self.status_code = status
        self.headers = httpx.Headers(headers)
        self.content = body

    def json(self):
        return json.loads(self.content)


def raw_http1(envoy: tools.Envoy, head_lines: list[str], frames: list[bytes], pause: float = 0.0,
              timeout: float = 10.0) -> RawResponse:
    """Send a request over a plain socket: the head, then each frame separately (`pause` seconds
    apart, so that Envoy sees them as separate reads), then read the response."""
    sock = socket.create_connection(("127.0.0.1", envoy.port), timeout=timeout)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(("\r\n".join(head_lines) + "\r\n\r\n").encode())
        for frame in frames:
            if pause:
                time.sleep(pause)
            sock.sendall(frame)
        response = http.client.HTTPResponse(sock)
        response.begin()
        body = response.read()
        return RawResponse(response.status, response.getheaders(), body)
    finally:
        sock.close()


def request_head(envoy: tools.Envoy, path: str = RESET_PATH, content_type: str | None = "application/json",
                 extra: list[str] | None = None, method: str = "POST") -> list[str]:
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{envoy.port}"]
    if content_type:
        lines.append(f"Content-Type: {content_type}")
    return lines + (extra or [])


def raw_http2(envoy: tools.Envoy, body_pieces: list[bytes], content_type: str = "application/json",
              trailers: list[tuple[str, str]] | None = None, path: str = RESET_PATH,
              extra_headers: list[tuple[str, str]] | None = None, pause: float = 0.01,
              timeout: float = 10.0) -> RawResponse:
    """An HTTP/2 (prior knowledge) request with its body in separate DATA frames and, optionally,
    trailers, which is the case where Envoy never flags end of stream on the body."""
    sock = socket.create_connection(("127.0.0.1", envoy.port), timeout=timeout)
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    try:
        conn.initiate_connection()
        sock.sendall(conn.data_to_send())
        headers = [(":method", "POST"), (":scheme", "http"), (":authority", f"127.0.0.1:{envoy.port}"),
                   (":path", path), ("content-type", content_type), *(extra_headers or [])]
        stream = conn.get_next_available_stream_id()
        conn.send_headers(stream, headers, end_stream=not body_pieces and not trailers)
        sock.sendall(conn.data_to_send())
        for index, piece in enumerate(body_pieces):
            time.sleep(pause)
            last = index == len(body_pieces) - 1 and not trailers
            conn.send_data(stream, piece, end_stream=last)
            sock.sendall(conn.data_to_send())
        if trailers:
            time.sleep(pause)
            conn.send_headers(stream, trailers, end_stream=True)
            sock.sendall(conn.data_to_send())

        status, response_headers, body = 0, [], bytearray()
        while True:
            data = sock.recv(65536)
            if not data:
                raise ConnectionError("envoy closed the HTTP/2 connection before the response ended")
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived):
                    response_headers = [(k, v) for k, v in event.headers]
                    status = int(dict(response_headers)[":status"])
                elif isinstance(event, h2.events.DataReceived):
                    body += event.data
                    conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                elif isinstance(event, h2.events.StreamReset):
                    if status:
                        return RawResponse(status, [h for h in response_headers if not h[0].startswith(":")],
                                           bytes(body))
                    raise ConnectionError(f"envoy reset the stream: {event.error_code!r}")
                elif isinstance(event, h2.events.StreamEnded):
                    return RawResponse(status, [h for h in response_headers if not h[0].startswith(":")],
                                       bytes(body))
            sock.sendall(conn.data_to_send())
    finally:
        sock.close()


# --- assertions ------------------------------------------------------------------------------------


def refusal(response, status: int, error: str) -> str:
    """Assert a reply the filter made itself; return its error_description."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response.headers.get("content-type") == "application/json", response.headers
    assert response.headers.get("cache-control") == "no-store", response.headers
    pairs = json.loads(response.content, object_pairs_hook=list)
    assert [key for key, _ in pairs] == ["error", "error_description"], response.content
    body = dict(pairs)
    assert body["error"] == error, body
    assert isinstance(body["error_description"], str) and body["error_description"], body
    assert response.content in _compact_forms(body), f"not compact JSON: {response.content!r}"
    return body["error_description"]


def assert_refused(response, status: int, error: str, *mentions: str) -> str:
    """A refusal whose description names each of `mentions` (case-insensitive)."""
    description = refusal(response, status, error)
    for word in mentions:
        assert word.lower() in description.lower(), f"{word!r} not named in {description!r}"
    return description


def assert_mentions_any(description: str, *words: str) -> None:
    assert any(w.lower() in description.lower() for w in words), f"none of {words} named in {description!r}"


def mentions_content_type(description: str) -> bool:
    return re.search(r"content[- _]?type", description, re.IGNORECASE) is not None


def _compact_forms(value) -> set[bytes]:
    return {json.dumps(value, separators=(",", ":"), ensure_ascii=ascii).encode() for ascii in (False, True)}


def assert_success(response) -> None:
    """The stand-in provider's default success answer reached the client unchanged."""
    assert response.status_code == 200, (response.status_code, response.content[:500])
    assert response.content == SUCCESS_TEXT
    assert response.headers.get("content-type") == "text/html; charset=utf-8"


def forwarded(provider: Provider, path: str = RESET_PATH):
    """Assert the provider received exactly one reset callout and return it."""
    requests = provider.requests()
    assert len(requests) == 1, f"provider received {len(requests)} requests: {requests}"
    request = requests[0]
    assert request.method == "POST"
    assert request.path == path
    return request


def forwarded_fields(provider: Provider, path: str = RESET_PATH) -> list[tuple[str, object]]:
    """The ordered (key, value) pairs of the JSON body the provider received, which must be compact."""
    request = forwarded(provider, path)
    pairs = json.loads(request.body, object_pairs_hook=list)
    assert isinstance(pairs, list), request.body
    assert request.body in _compact_forms(dict(pairs)), f"not compact JSON: {request.body!r}"
    return pairs


def expected_fields(**fields) -> list[tuple[str, str]]:
    """The pairs the provider should receive: defaults for client_id, email and connection, spec order."""
    values = {"client_id": CLIENT_ID, "email": EMAIL, "connection": DEFAULT_CONNECTION, **fields}
    order = ["client_id", "email", "connection", "organization", "captcha", "state"]
    return [(key, values[key]) for key in order if values.get(key) is not None]


def unredacted_emails(log: str) -> list[str]:
    """Email addresses in the filter's log lines whose local part is not redacted (`j***@...`)."""
    found = []
    for line in log.splitlines():
        if "wasm log" in line:
            found += [m.group(0) for m in re.finditer(r"[^\s=`'\"]+@[^\s`'\"]+", line)
                      if not m.group(0).split("@")[0].endswith("***")]
    return found


def assert_not_forwarded(provider: Provider) -> None:
    assert provider.requests() == [], f"provider received {provider.requests()}"
