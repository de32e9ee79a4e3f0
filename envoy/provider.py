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


# --- a provider that misbehaves at random, for soak tests -------------------------------------------


class ChaosProvider:
    """An asyncio HTTP/1.1 server on 127.0.0.1 that answers each reset POST at random: mostly like
    Auth0, sometimes with 500 or 503, late (after `slow_seconds`), or by closing the connection
    without an answer. Every other request gets 200 `ok` at once (it also stands in for the app).

    Built for load: one event loop in its own thread (or process, with `python3 envoy/provider.py
    --chaos`), a deep listen backlog, keep-alive, no per-request thread. It keeps counts instead of
    records: what it did, how many bodies were not the normalised JSON the filter must send, and how
    many bodies held `forbidden` (a marker a test puts only in requests the filter must refuse).
    `GET /__chaos` answers the counts as JSON.
    """

    BEHAVIOURS = ("ok", "500", "503", "slow", "drop")

    def __init__(self, port: int = 0, fail_500: float = 0.02, fail_503: float = 0.02, slow: float = 0.01,
                 slow_seconds: float = 0.4, drop: float = 0.01, seed: int | None = None,
                 reset_path: str = "/dbconnections/change_password", forbidden: bytes = b"must-not-reach"):
        import random
        self._random = random.Random(seed)
        self._weights = (max(0.0, 1 - fail_500 - fail_503 - slow - drop), fail_500, fail_503, slow, drop)
        self.slow_seconds = slow_seconds
        self.reset_path = reset_path
        self.forbidden = forbidden
        self.counts: dict[str, int] = {name: 0 for name in self.BEHAVIOURS}
        self.counts.update(other=0, not_normalised=0, forbidden=0, connections=0)
        self._requested_port = port
        self.port = 0
        self._loop = None
        self._server = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> "ChaosProvider":
        self._thread = threading.Thread(target=self._run_thread, name="chaos-provider", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("chaos provider did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> "ChaosProvider":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _run_thread(self) -> None:
        import asyncio
        self._loop = asyncio.new_event_loop()
        self._loop.run_until_complete(self.listen())
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            self._server.close()
            self._loop.close()

    async def listen(self) -> None:
        """Listen on the current event loop (for callers that run their own)."""
        import asyncio
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self._requested_port, backlog=1024)
        self.port = self._server.sockets[0].getsockname()[1]

    def _pick(self) -> str:
        return self._random.choices(self.BEHAVIOURS, self._weights)[0]

    def _check_body(self, body: bytes) -> None:
        import json
        if self.forbidden and self.forbidden in body:
            self.counts["forbidden"] += 1
        try:
            fields = json.loads(body)
            normalised = (isinstance(fields, dict) and list(fields)[:3] == ["client_id", "email", "connection"]
                          and all(isinstance(v, str) for v in fields.values()))
        except ValueError:
            normalised = False
        if not normalised:
            self.counts["not_normalised"] += 1

    async def _serve(self, reader, writer) -> None:
        import asyncio
        import json
        self.counts["connections"] += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target = lines[0].split(" ")[:2]
                headers = {}
                for line in lines[1:]:
                    name, sep, value = line.partition(":")
                    if sep:
                        headers[name.strip().lower()] = value.strip()
                body = await read_body(reader, headers)
                if method == "GET" and target == "/__chaos":
                    await _respond(writer, 200, "application/json", json.dumps(self.counts).encode())
                    continue
                if method != "POST" or target.split("?")[0] != self.reset_path:
                    self.counts["other"] += 1
                    await _respond(writer, 200, "text/plain", b"ok")
                    continue
                self._check_body(body)
                behaviour = self._pick()
                self.counts[behaviour] += 1
                if behaviour == "drop":
                    return
                if behaviour == "slow":
                    await asyncio.sleep(self.slow_seconds)
                if behaviour in ("500", "503"):
                    error = json.dumps({"error": "server_error", "error_description": "chaos"}).encode()
                    await _respond(writer, int(behaviour), "application/json", error)
                else:
                    await _respond(writer, 200, SUCCESS_HEADERS[0][1], SUCCESS_TEXT)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError, OSError):
            pass
        finally:
            writer.close()


async def read_body(reader, headers: dict[str, str]) -> bytes:
    """An HTTP/1.1 message body (chunked or by Content-Length) after its headers; shared with the
    tests' load client."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = bytearray()
        while True:
            size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass
                return bytes(body)
            body += await reader.readexactly(size)
            await reader.readline()
    length = int(headers.get("content-length") or 0)
    return await reader.readexactly(length) if length else b""


async def _respond(writer, status: int, content_type: str, body: bytes) -> None:
    reason = http.server.BaseHTTPRequestHandler.responses.get(status, ("",))[0]
    writer.write(f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n"
                 f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    await writer.drain()


def run_chaos(args: argparse.Namespace) -> None:
    """`--chaos`: serve in this process until SIGTERM or Ctrl-C, printing the port first."""
    import asyncio
    import signal

    provider = ChaosProvider(args.port, fail_500=args.fail_500, fail_503=args.fail_503, slow=args.slow,
                             slow_seconds=args.slow_seconds, drop=args.drop, seed=args.seed)

    async def serve() -> None:
        await provider.listen()
        print(f"chaos provider listening on http://{provider.address}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()

    asyncio.run(serve())


def main() -> None:
    parser = argparse.ArgumentParser(description="Stand-in auth provider: answers password resets like Auth0.")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free port)")
    chaos = parser.add_argument_group("chaos", "answer each reset POST at random (see ChaosProvider)")
    chaos.add_argument("--chaos", action="store_true", help="run the asyncio ChaosProvider instead")
    chaos.add_argument("--fail-500", type=float, default=0.02, help="share of 500 answers")
    chaos.add_argument("--fail-503", type=float, default=0.02, help="share of 503 answers")
    chaos.add_argument("--slow", type=float, default=0.01, help="share of late answers")
    chaos.add_argument("--slow-seconds", type=float, default=0.4, help="how late")
    chaos.add_argument("--drop", type=float, default=0.01, help="share of connections closed unanswered")
    chaos.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    if args.chaos:
        run_chaos(args)
        return
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
