"""A stand-in for the auth provider (and, as a second instance, for the app behind Envoy).

It records every request it receives and answers as told: by default the way Auth0 answers a password
reset, or with a chosen status, headers and body, slowly, not at all, or broken half-way.

Run it on its own with `python3 envoy/provider.py [--port N]`: it prints each request it receives.
"""

from __future__ import annotations

import argparse
import dataclasses
import http.server
import socket
import socketserver
import sys
import threading
import time

SUCCESS_TEXT = b"We've just sent you an email to reset your password."
SUCCESS_HEADERS = (("Content-Type", "text/html; charset=utf-8"),)


@dataclasses.dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        """The value of the one header `name` (case-insensitive); None when absent."""
        values = self.header_values(name)
        if len(values) > 1:
            raise AssertionError(f"header {name} received {len(values)} times: {values}")
        return values[0] if values else None

    def header_values(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]


@dataclasses.dataclass(frozen=True)
class Mode:
    """How to answer. `behaviour` is one of:
    answer              send status, headers and body (after `delay` seconds; `trickle` seconds
                        spread over the body's pieces when set)
    close               close the connection without answering
    reset_after_headers send the headers with the body's Content-Length, then close before the body

    Headers without a body: `body=b""`; a huge body: `body=b"x" * (4 << 20)`; a slow answer: `delay`;
    a body that trickles in: `trickle` (seconds in all).
    """

    status: int = 200
    headers: tuple[tuple[str, str], ...] = SUCCESS_HEADERS
    body: bytes = SUCCESS_TEXT
    delay: float = 0.0
    trickle: float = 0.0
    behaviour: str = "answer"


class Provider:
    """A threaded HTTP/1.1 server on 127.0.0.1 (port 0: the OS picks) that records what it receives."""

    def __init__(self, port: int = 0, name: str = "provider", echo: bool = False):
        self.name = name
        self.echo = echo
        self._lock = threading.Lock()
        self._requests: list[Request] = []
        self._mode = Mode()
        self._arrived = threading.Condition(self._lock)
        handler = type("Handler", (_Handler,), {"provider": self})
        self._server = _Server(("127.0.0.1", port), handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name=name, daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> "Provider":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> "Provider":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- what it received ---

    def requests(self) -> list[Request]:
        with self._lock:
            return list(self._requests)

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> list[Request]:
        with self._arrived:
            self._arrived.wait_for(lambda: len(self._requests) >= count, timeout)
            return list(self._requests)

    def _record(self, request: Request) -> Mode:
        with self._arrived:
            self._requests.append(request)
            self._arrived.notify_all()
            mode = self._mode
        if self.echo:
            print(f"[{self.name}] {request.method} {request.path}", flush=True)
            for key, value in request.headers:
                print(f"[{self.name}]   {key}: {value}", flush=True)
            print(f"[{self.name}]   body: {request.body.decode(errors='replace')}", flush=True)
        return mode

    # --- how it answers ---

    def set_mode(self, **fields) -> None:
        """Answer from now on with the default mode changed by `fields` (see Mode)."""
        if "headers" in fields:
            fields["headers"] = tuple((k, v) for k, v in fields["headers"])
        if isinstance(fields.get("body"), str):
            fields["body"] = fields["body"].encode()
        mode = Mode(**fields)
        with self._lock:
            self._mode = mode

    def reset(self) -> None:
        """Default mode and no recorded requests."""
        self.set_mode()
        self.clear()


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    provider: Provider

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass

    def handle_one_request(self):
        try:
            super().handle_one_request()
        except (ConnectionError, socket.timeout, OSError):
            self.close_connection = True

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            body = bytearray()
            while True:
                size_line = self.rfile.readline()
                if not size_line:
                    raise ConnectionError("connection closed inside a chunked body")
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return bytes(body)
                body += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _serve(self):
        request = Request(
            method=self.command,
            path=self.path,
            headers=list(self.headers.items()),
            body=self._read_body(),
        )
        mode = self.provider._record(request)
        if mode.delay:
            time.sleep(mode.delay)
        if mode.behaviour == "close":
            self.close_connection = True
            return
        self.send_response_only(mode.status)
        for key, value in mode.headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(mode.body)))
        self.end_headers()
        self.wfile.flush()
        if mode.behaviour == "reset_after_headers":
            self.close_connection = True
            return
        if mode.trickle and mode.body:
            pieces = [mode.body[i:i + 8] for i in range(0, len(mode.body), 8)]
            for piece in pieces:
                time.sleep(mode.trickle / len(pieces))
                self.wfile.write(piece)
                self.wfile.flush()
        elif self.command != "HEAD":
            self.wfile.write(mode.body)
        self.wfile.flush()

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = _serve


def main() -> None:
    parser = argparse.ArgumentParser(description="Stand-in auth provider: answers password resets like Auth0.")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free port)")
    args = parser.parse_args()
    with Provider(args.port, echo=True) as provider:
        print(f"stand-in provider listening on http://{provider.address}", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    sys.exit(0)


if __name__ == "__main__":
    main()
