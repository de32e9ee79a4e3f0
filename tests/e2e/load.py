"""For the tests that send many requests at once: a stand-in provider that accepts many parallel
callouts, two parallel clients (httpx over many connections; a lean keep-alive client for thousands of
requests), the listeners of a multi-listener Envoy, and what Envoy's admin says about workers, stats
and memory."""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass

import httpx

import tools
from provider import Provider, read_body
from support import RESET_PATH, RawResponse


def roomy_provider(name: str) -> Provider:
    """A stand-in provider that takes many connections at once. socketserver listens with a backlog of
    5: with dozens of parallel callouts Envoy's connects overflow it, wait for SYN retransmits and end
    as 503s after the cluster's 1 s connect timeout. Listening again with a deep backlog avoids that."""
    server = Provider(name=name)
    server._server.socket.listen(1024)
    return server


@dataclass(frozen=True)
class Listener:
    """One listener of an Envoy with several (works with support.post, which only needs `url`)."""

    envoy: tools.Envoy
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def listeners(envoy: tools.Envoy) -> list[Listener]:
    """The listeners of an Envoy started from `tools.bootstrap_listeners`, in the order of its filters."""
    ports = envoy.listener_ports()
    return [Listener(envoy, ports[f"edge-{index}"]) for index in range(len(ports))]


# --- clients ---------------------------------------------------------------------------------------


def post_parallel(target, bodies: list[dict], connections: int = 64, path: str = RESET_PATH,
                  timeout: float = 30.0) -> list[httpx.Response]:
    """POST every JSON body at once from one asyncio httpx client allowed `connections` connections:
    the requests start together and spread over that many TCP connections, which the kernel hands to
    different Envoy workers. The responses come back in the order of `bodies`."""

    async def run() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        async with httpx.AsyncClient(limits=limits, timeout=timeout) as client:
            return await asyncio.gather(*(client.post(target.url + path, json=body) for body in bodies))

    return asyncio.run(run())


def flood(target, bodies: list[dict], connections: int = 32, path: str = RESET_PATH,
          timeout: float = 30.0) -> list[RawResponse]:
    """POST thousands of JSON bodies quickly: `connections` keep-alive HTTP/1.1 connections, each
    sending its next request as soon as the previous answer is in. Responses in the order of `bodies`."""
    port = int(target.url.rsplit(":", 1)[1])
    pending = list(enumerate(bodies))
    pending.reverse()
    results: list[RawResponse | None] = [None] * len(bodies)

    async def read_response(reader: asyncio.StreamReader) -> tuple[RawResponse, bool]:
        status_line = await reader.readline()
        if not status_line:
            raise ConnectionError("envoy closed the connection before answering")
        status = int(status_line.split()[1])
        headers: list[tuple[str, str]] = []
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            key, _, value = line.decode("latin-1").partition(":")
            headers.append((key.strip().lower(), value.strip()))
        fields = dict(headers)
        body = await read_body(reader, fields)
        return RawResponse(status, headers, bytes(body)), fields.get("connection", "").lower() == "close"

    async def worker() -> None:
        reader = writer = None
        try:
            while pending:
                index, body = pending.pop()
                if writer is None:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                data = json.dumps(body).encode()
                writer.write(b"POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
                             b"Content-Length: %d\r\n\r\n%s" % (path.encode(), port, len(data), data))
                response, closing = await read_response(reader)
                results[index] = response
                if closing:
                    writer.close()
                    reader = writer = None
        finally:
            if writer is not None:
                writer.close()

    async def run() -> None:
        await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(connections))), timeout)

    asyncio.run(run())
    assert all(r is not None for r in results)
    return results  # type: ignore[return-value]


def statuses(responses) -> dict[int, int]:
    """Status → how many responses had it."""
    counts: dict[int, int] = {}
    for response in responses:
        counts[response.status_code] = counts.get(response.status_code, 0) + 1
    return counts


# --- what Envoy's admin says -----------------------------------------------------------------------

_WORKER_CONNECTIONS = re.compile(r"^listener\.(?P<listener>.+)\.worker_(?P<worker>\d+)\.downstream_cx_total$")


def worker_connections(envoy: tools.Envoy) -> dict[str, int]:
    """"listener/worker" → connections that worker accepted so far."""
    counts = {}
    for name, value in envoy.stats().items():
        match = _WORKER_CONNECTIONS.match(name)
        if match and isinstance(value, int):
            counts[f"{match['listener']}/{match['worker']}"] = value
    return counts


def workers_used(envoy: tools.Envoy, before: dict[str, int]) -> set[str]:
    """The workers that accepted connections since `before` (a `worker_connections` reading)."""
    return {key for key, value in worker_connections(envoy).items() if value > before.get(key, 0)}


def allocated_bytes(envoy: tools.Envoy) -> int:
    """Admin /memory `allocated`: the bytes Envoy's allocator hands out right now (shared data included)."""
    return int(json.loads(envoy.admin_get("/memory"))["allocated"])


def settled_allocated_bytes(envoy: tools.Envoy, samples: int = 3, pause: float = 0.2) -> int:
    """`allocated` once closed connections have been released: the smallest of a few readings."""
    readings = []
    for _ in range(samples):
        time.sleep(pause)
        readings.append(allocated_bytes(envoy))
    return min(readings)
