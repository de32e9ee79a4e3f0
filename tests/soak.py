"""Soak: `python3 tests/soak.py [--requests N] [--concurrency C] [--workers W]`.

Runs Envoy (`--concurrency W`, default 4) with reset-gate in front of a provider that misbehaves at
random (envoy/provider.py's ChaosProvider in its own process: 2% 500, 2% 503, 1% answers later than
`provider.timeout_ms`, 1% connections closed unanswered), and sends N requests (default 100000) over C
keep-alive HTTP/1.1 connections (default 64; one asyncio coroutine and socket each) with a fixed mix:
valid resets with distinct and with repeated emails (the repeated ones run into `limits.per_email`),
form bodies, malformed bodies, oversized bodies (Content-Length and chunked), social connections,
wrong methods, wrong content types, and GETs that pass through to the app.

Every request has a set of acceptable statuses (and error codes) known from its kind and the
provider's possible faults; the run fails on any other answer, on any request without an answer, on a
refused request that reached the provider, on a callout body that is not the normalised JSON, on more
admissions per email and window than the limit, on any sign of a Wasm VM failure (Envoy's `wasm.*`
stats, panics, traps or failed `proxy_on_*` calls in its log), and when Envoy's memory (admin /memory
`allocated`, and the process RSS) grows by more than 5% between the end of the warm-up (the first 10%
of the requests) and the end. Exit status 0 only when every check passed.

`--requests 5000` is the short variant that CI runs (well under a minute).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import dataclasses
import datetime
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "envoy"))

import tools  # noqa: E402
from machine import Witness  # noqa: E402
from provider import SUCCESS_TEXT  # noqa: E402

RESET_PATH = tools.RESET_PATH
OTHER_PATH = "/other"
CLIENT_ID = "k3Qy8dTfNw2ZrB6xLmP0aVhJcE5sUo9G"  # made up
CONNECTION = "Username-Password-Authentication"
# Put in every request the filter must refuse; the provider counts bodies that contain it.
FORBIDDEN = "must-not-reach"
TIMEOUT_MS = 300
SLOW_SECONDS = 0.4
PER_EMAIL = {"requests": 3, "window_seconds": 2}
MAX_BODY = 8192
REPEATED_EMAILS = 20
MEMORY_GROWTH_LIMIT = 0.05
LOG_FAILURES = ("panic", "wasm trap", "Function: proxy_on_", "Wasm VM failed", "failed to load Wasm", "unreachable")

FILTER_CONFIG = {
    "provider": {"cluster": tools.PROVIDER_CLUSTER, "authority": "tenant.example.auth0.com",
                 "timeout_ms": TIMEOUT_MS, "client_ip_header": "auth0-forwarded-for"},
    "clients": {"default": CLIENT_ID},
    "connections": {"default": CONNECTION, "database": [CONNECTION],
                    "identity_providers": {"acme-saml": "Acme single sign-on"}},
    # A short per-email window keeps the rate-limit tables in a steady state after the warm-up, so
    # that the memory check sees leaks rather than tables filling up; per_ip is counted, never hit.
    "limits": {"max_body_bytes": MAX_BODY, "per_email": PER_EMAIL,
               "per_ip": {"requests": 1000000, "window_seconds": 600}},
}

TROUBLE = {502: "temporarily_unavailable", 503: "temporarily_unavailable", 504: "temporarily_unavailable"}


@dataclasses.dataclass(frozen=True)
class Request:
    kind: str
    data: bytes
    # status → the `error` code its JSON body must carry (None: the success text; "ok": the app's)
    accept: dict[int, str | None]
    email: str | None = None


def http_request(method: str, path: str, body: bytes = b"", content_type: str | None = "application/json",
                 chunked: bool = False, extra: str = "") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: soak.example.com\r\nUser-Agent: reset-gate-soak\r\n{extra}"
    if content_type:
        head += f"Content-Type: {content_type}\r\n"
    if chunked:
        pieces = [body[i:i + 4096] for i in range(0, len(body), 4096)]
        framed = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
        return (head + "Transfer-Encoding: chunked\r\n\r\n").encode() + framed
    if body or method in ("POST", "PUT", "PATCH"):
        head += f"Content-Length: {len(body)}\r\n"
    return (head + "\r\n").encode() + body


def as_json(fields: dict) -> bytes:
    return json.dumps(fields, ensure_ascii=False).encode()


class Mix:
    """The requests of a run, drawn from a seeded generator: (kind, weight, builder)."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.serial = 0
        self.kinds = [
            ("valid distinct", 30, self.valid_distinct),
            ("valid form", 5, self.valid_form),
            ("valid repeated", 15, self.valid_repeated),
            ("malformed", 10, self.malformed),
            ("oversized", 4, self.oversized),
            ("oversized chunked", 2, self.oversized_chunked),
            ("social connection", 8, self.social),
            ("wrong method", 5, self.wrong_method),
            ("wrong content type", 5, self.wrong_type),
            ("pass-through GET", 16, self.pass_through),
        ]
        self.weights = [weight for _, weight, _ in self.kinds]

    def next(self) -> Request:
        self.serial += 1
        _, _, build = self.rng.choices(self.kinds, self.weights)[0]
        return build()

    def _accept_valid(self, limited: bool) -> dict[int, str | None]:
        return {200: None, **TROUBLE, **({429: "too_many_requests"} if limited else {})}

    def valid_distinct(self) -> Request:
        email = f"user{self.serial}@soak.example.com"
        fields = {"email": email, "connection": self.rng.choice([CONNECTION, CONNECTION.lower(), ""])}
        if self.rng.random() < 0.5:  # what Lock iOS v1 adds
            fields.update(client_id=CLIENT_ID, scope="openid offline_access", device="Jane’s iPhone")
        return Request("valid distinct", http_request("POST", RESET_PATH, as_json(fields)),
                       self._accept_valid(False), email)

    def valid_form(self) -> Request:
        email = f"form{self.serial}@soak.example.com"
        body = urllib.parse.urlencode({"client_id": CLIENT_ID, "email": email, "connection": CONNECTION}).encode()
        return Request("valid form", http_request("POST", RESET_PATH, body, "application/x-www-form-urlencoded"),
                       self._accept_valid(False), email)

    def valid_repeated(self) -> Request:
        # One address, one limiter key, whatever the domain's case and the surrounding spaces.
        email = f"repeat{self.rng.randrange(REPEATED_EMAILS)}@soak.example.com"
        local, domain = email.split("@")
        sent = f"  {local}@{domain.upper() if self.rng.random() < 0.3 else domain} "
        body = as_json({"email": sent, "connection": CONNECTION})
        return Request("valid repeated", http_request("POST", RESET_PATH, body), self._accept_valid(True), email)

    def malformed(self) -> Request:
        email = f"{FORBIDDEN}{self.serial}@soak.example.com"
        bodies = [
            b'{"email": "' + email.encode() + b'", "connection": ',  # cut short
            b'["' + email.encode() + b'"]',  # not an object
            b'{"email": 5, "note": "' + FORBIDDEN.encode() + b'"}',  # not a string
            b'{"email": "' + email.encode() + b'", "email": "' + email.encode() + b'"}',  # duplicate key
            b'{"email": "' + email.encode() + b'\xff"}',  # invalid UTF-8
            b'{"email": "' + email.encode() + b'\\u0007"}',  # control character
            b'{"email": "' + FORBIDDEN.encode() + b'-no-at-sign"}',  # not an email
            b'{"email": "' + email.encode() + b'", "x": ' + b"[" * 2000 + b"]" * 1999 + b"}",  # unbalanced
        ]
        return Request("malformed", http_request("POST", RESET_PATH, self.rng.choice(bodies)),
                       {400: "invalid_request"})

    def _big(self) -> bytes:
        return as_json({"email": f"{FORBIDDEN}{self.serial}@soak.example.com", "pad": "x" * (MAX_BODY + 100)})

    def oversized(self) -> Request:
        return Request("oversized", http_request("POST", RESET_PATH, self._big()), {413: "invalid_request"})

    def oversized_chunked(self) -> Request:
        return Request("oversized chunked", http_request("POST", RESET_PATH, self._big(), chunked=True),
                       {413: "invalid_request"})

    def social(self) -> Request:
        connection = self.rng.choice(["google-oauth2", "facebook", "GitHub", "samlp", "acme-saml", "sms"])
        body = as_json({"email": f"{FORBIDDEN}{self.serial}@soak.example.com", "connection": connection})
        return Request("social connection", http_request("POST", RESET_PATH, body), {400: "bad.connection"})

    def wrong_method(self) -> Request:
        method = self.rng.choice(["GET", "PUT", "DELETE", "PATCH"])
        body = b"" if method == "GET" else as_json({"email": f"{FORBIDDEN}{self.serial}@soak.example.com"})
        return Request("wrong method", http_request(method, RESET_PATH, body, None if method == "GET" else
                                                    "application/json"), {405: "method_not_allowed"})

    def wrong_type(self) -> Request:
        content_type = self.rng.choice(["text/plain", "application/xml", None, "application/json; charset=latin1"])
        body = as_json({"email": f"{FORBIDDEN}{self.serial}@soak.example.com"})
        return Request("wrong content type", http_request("POST", RESET_PATH, body, content_type),
                       {415: "invalid_request"})

    def pass_through(self) -> Request:
        return Request("pass-through GET", http_request("GET", f"{OTHER_PATH}?n={self.serial}", content_type=None),
                       {200: "ok"})


# --- the client ------------------------------------------------------------------------------------


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = bytearray()
        while True:
            size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while (await reader.readline()) not in (b"\r\n", b""):
                    pass
                break
            body += await reader.readexactly(size)
            await reader.readline()
        return status, headers, bytes(body)
    length = int(headers.get("content-length") or 0)
    return status, headers, (await reader.readexactly(length) if length else b"")


@dataclasses.dataclass
class Tally:
    by_kind: dict = dataclasses.field(default_factory=lambda: collections.defaultdict(collections.Counter))
    unexpected: list = dataclasses.field(default_factory=list)
    unexpected_count: int = 0
    no_answer: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    admitted: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    sent: int = 0
    # Replies with `connection: close` (Envoy closes after answering before it read the whole body).
    closed: collections.Counter = dataclasses.field(default_factory=collections.Counter)

    def judge(self, request: Request, status: int, headers: dict[str, str], body: bytes) -> None:
        self.by_kind[request.kind][status] += 1
        wanted = request.accept.get(status, "-")
        problem = None
        if wanted == "-":
            problem = f"status {status} not in {sorted(request.accept)}"
        elif wanted is None:
            if body != SUCCESS_TEXT:
                problem = f"200 with body {body[:80]!r}"
        elif wanted == "ok":
            if body != b"ok":
                problem = f"pass-through body {body[:80]!r}"
        else:
            try:
                error = json.loads(body).get("error")
            except (ValueError, AttributeError):
                error = None
            if error != wanted:
                problem = f"status {status} with error {error!r}, expected {wanted!r}: {body[:120]!r}"
        if problem:
            self.unexpected_count += 1
            if len(self.unexpected) < 20:
                self.unexpected.append(f"{request.kind}: {problem}")
        if request.kind == "valid repeated" and status != 429:
            self.admitted[request.email] += 1


async def client(port: int, requests, tally: Tally, deadline: float) -> None:
    reader = writer = None
    try:
        for request in requests:
            if time.monotonic() > deadline:
                return
            tally.sent += 1
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(request.data)
                await writer.drain()
                status, headers, body = await asyncio.wait_for(read_response(reader), 10)
            except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, asyncio.LimitOverrunError,
                    ValueError) as error:
                tally.no_answer[f"{request.kind}: {type(error).__name__}"] += 1
                if writer is not None:
                    writer.close()
                reader = writer = None
                continue
            tally.judge(request, status, headers, body)
            if headers.get("connection", "").lower() == "close":
                tally.closed[request.kind] += 1
                writer.close()
                reader = writer = None
    finally:
        if writer is not None:
            writer.close()


async def send(port: int, requests: list[Request], concurrency: int, tally: Tally, deadline: float) -> None:
    source = iter(requests)
    await asyncio.gather(*(client(port, source, tally, deadline) for _ in range(concurrency)))


# --- Envoy's health --------------------------------------------------------------------------------


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def snapshot(envoy: tools.Envoy) -> dict:
    memory = json.loads(envoy.admin_get("/memory"))
    stats = envoy.stats()
    return {"allocated": int(memory["allocated"]), "heap_size": int(memory["heap_size"]),
            "rss": rss_bytes(envoy.process.pid),
            "wasm": {k: v for k, v in stats.items() if k.startswith("wasm.") and isinstance(v, int)},
            "filter": {k[len("wasmcustom.reset_gate."):]: v for k, v in stats.items()
                       if k.startswith("wasmcustom.reset_gate.")}}


def vm_failures(start: dict, end: dict) -> list[str]:
    problems = []
    for name, value in end["wasm"].items():
        if ("vm_reload" in name or "failure" in name or "failed" in name or name.endswith(".fail")) and value:
            problems.append(f"{name} = {value}")
        if name.endswith((".created", ".active", "wasm_vm_count")) and value != start["wasm"].get(name):
            problems.append(f"{name} went from {start['wasm'].get(name)} to {value}")
    return problems


def chaos_counts(port: int) -> dict:
    import urllib.request
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/__chaos", timeout=5) as response:
        return json.loads(response.read())


# --- main ------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=64, help="client connections")
    parser.add_argument("--workers", type=int, default=4, help="Envoy worker threads (--concurrency)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-seconds", type=float, default=900, help="give up sending after this long")
    parser.add_argument("--no-build", action="store_true", help="use dist/reset_gate.wasm as it is")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if not 100 <= args.requests <= 10_000_000 or not 1 <= args.concurrency <= 1000 or not 1 <= args.workers <= 64:
        sys.exit("--requests must be 100–10000000, --concurrency 1–1000, --workers 1–64")

    tools.ensure_deps(quiet=True)
    wasm = tools.DIST_WASM if args.no_build else tools.build_wasm()
    mix = Mix(args.seed)
    requests = [mix.next() for _ in range(args.requests)]
    warm = max(1, args.requests // 10)

    workdir = Path(tempfile.mkdtemp(prefix="reset-gate-soak-"))
    # Run a copy: dist/ may be rebuilt by someone else while the soak goes on.
    shutil.copyfile(wasm, workdir / "reset_gate.wasm")
    wasm = workdir / "reset_gate.wasm"
    chaos = subprocess.Popen(
        [sys.executable, str(ROOT / "envoy" / "provider.py"), "--chaos", "--seed", str(args.seed),
         "--fail-500", "0.02", "--fail-503", "0.02", "--slow", "0.01", "--slow-seconds", str(SLOW_SECONDS),
         "--drop", "0.01"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    envoy = None
    failures: list[str] = []
    try:
        line = chaos.stdout.readline()
        if "listening on" not in line:
            sys.exit(f"the chaos provider did not start: {line}")
        chaos_port = int(line.rsplit(":", 1)[1])
        config = tools.bootstrap(provider_address=f"127.0.0.1:{chaos_port}", app_address=f"127.0.0.1:{chaos_port}",
                                 filter_config=FILTER_CONFIG, wasm_path=wasm)
        envoy = tools.Envoy(config, workdir / "envoy", concurrency=args.workers).start()
        deadline = time.monotonic() + args.max_seconds
        print(f"soak: {args.requests} requests over {args.concurrency} connections, Envoy with "
              f"{args.workers} workers; warm-up {warm}", flush=True)

        tally = Tally()
        witness = Witness(envoy.process.pid, chaos.pid)
        started = time.monotonic()
        asyncio.run(send(envoy.port, requests[:warm], args.concurrency, tally, deadline))
        time.sleep(SLOW_SECONDS + 0.6)  # late answers and timed-out callouts settle
        after_warm_up = snapshot(envoy)
        warm_seconds = time.monotonic() - started

        asyncio.run(send(envoy.port, requests[warm:], args.concurrency, tally, deadline))
        duration = time.monotonic() - started
        machine = witness.read()
        time.sleep(SLOW_SECONDS + 0.6)
        end = snapshot(envoy)
        provider = chaos_counts(chaos_port)
        logs = envoy.logs()
    finally:
        if envoy is not None:
            envoy.stop()
        chaos.terminate()
        chaos.wait(10)

    # --- checks ---
    answered = sum(sum(c.values()) for c in tally.by_kind.values())
    if tally.sent != args.requests:
        failures.append(f"only {tally.sent} of {args.requests} requests sent within --max-seconds")
    if tally.unexpected_count:
        failures.append(f"{tally.unexpected_count} unexpected answers, e.g. {tally.unexpected[:5]}")
    if tally.no_answer:
        failures.append(f"{sum(tally.no_answer.values())} requests without an answer: {dict(tally.no_answer)}")
    if provider["forbidden"]:
        failures.append(f"{provider['forbidden']} refused requests reached the provider")
    if provider["not_normalised"]:
        failures.append(f"{provider['not_normalised']} callout bodies were not the normalised JSON")
    callouts = sum(provider[b] for b in ("ok", "500", "503", "slow", "drop"))
    if callouts != end["filter"].get("forwarded"):
        failures.append(f"the provider received {callouts} reset POSTs, the filter counted "
                        f"{end['filter'].get('forwarded')} forwarded")
    intercepted = answered - sum(tally.by_kind["pass-through GET"].values())
    if end["filter"].get("intercepted") != intercepted:
        failures.append(f"filter counted {end['filter'].get('intercepted')} intercepted, clients sent {intercepted}")
    windows = int(duration // PER_EMAIL["window_seconds"]) + 2
    over = {e: n for e, n in tally.admitted.items() if n > PER_EMAIL["requests"] * windows}
    if over:
        failures.append(f"emails admitted more often than {PER_EMAIL['requests']} per window "
                        f"over {windows} windows: {dict(list(over.items())[:5])}")
    failures += vm_failures(after_warm_up, end)
    log_hits = collections.Counter()
    for line in logs.splitlines():
        for word in LOG_FAILURES:
            if word in line and "reset-gate: outcome=" not in line:
                log_hits[word] += 1
    levels = collections.Counter(line.split("][")[2] for line in logs.splitlines() if line.count("][") >= 3)
    if log_hits:
        failures.append(f"Envoy's log shows Wasm failures: {dict(log_hits)}")
    if levels.get("critical"):
        failures.append(f"{levels['critical']} critical lines in Envoy's log")
    growth = {key: (end[key] - after_warm_up[key]) / after_warm_up[key] for key in ("allocated", "rss")}
    for key, value in growth.items():
        if value > MEMORY_GROWTH_LIMIT:
            failures.append(f"Envoy's {key} grew {value:.1%} after the warm-up (limit {MEMORY_GROWTH_LIMIT:.0%})")

    # --- report ---
    statuses = collections.Counter()
    for counts in tally.by_kind.values():
        statuses.update(counts)
    print(f"\nrequests {answered} answered of {tally.sent} sent in {duration:.1f} s "
          f"({answered / duration:.0f} req/s; warm-up {warm_seconds:.1f} s)")
    print("statuses " + ", ".join(f"{s}: {n}" for s, n in sorted(statuses.items())))
    for kind, counts in tally.by_kind.items():
        print(f"  {kind:<20}" + ", ".join(f"{s}: {n}" for s, n in sorted(counts.items())))
    print(f"machine: other processes used {machine['other_cpus']:.2f} CPUs, the hypervisor stole "
          f"{machine['steal_cpus']:.2f} (of {os.cpu_count()})")
    print(f"unexpected answers {tally.unexpected_count}; without answer {sum(tally.no_answer.values())}")
    print(f"replies that closed the connection: {dict(tally.closed)}")
    print(f"provider: {provider}")
    print("filter counters: " + ", ".join(f"{k} {v}" for k, v in sorted(end["filter"].items()) if v))
    print(f"wasm VM stats: " + ", ".join(f"{k} {v}" for k, v in sorted(end["wasm"].items())
                                         if not k.startswith("wasm.remote_load")))
    print(f"Envoy log: {dict(levels)}; Wasm failure lines {sum(log_hits.values())}")
    notable = collections.Counter(line.split("] ", 1)[-1][:160] for line in logs.splitlines()
                                  if any(f"][{level}][" in line for level in ("warning", "error", "critical")))
    for message, count in notable.most_common(8):
        print(f"  {count} × {message}")
    for key in ("allocated", "rss"):
        print(f"Envoy {key}: {after_warm_up[key] / 2**20:.1f} MiB after warm-up, {end[key] / 2**20:.1f} MiB at the "
              f"end ({growth[key]:+.1%})")
    print(f"repeated emails: {len(tally.admitted)}, each admitted at most {max(tally.admitted.values(), default=0)} "
          f"times (limit {PER_EMAIL['requests']} per {PER_EMAIL['window_seconds']} s; at most "
          f"{PER_EMAIL['requests'] * windows} in {duration:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps({
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "requests": answered, "seconds": round(duration, 1), "rps": round(answered / duration),
            "statuses": {str(k): v for k, v in sorted(statuses.items())},
            "unexpected": tally.unexpected_count, "no_answer": sum(tally.no_answer.values()),
            "provider": provider, "filter": end["filter"], "wasm": end["wasm"],
            "memory": {"after_warm_up": {k: after_warm_up[k] for k in ("allocated", "rss")},
                       "end": {k: end[k] for k in ("allocated", "rss")}},
            "machine": machine, "failures": failures}, indent=2) + "\n")
    shutil.rmtree(workdir, ignore_errors=True)
    if failures:
        print("\nFAILED:\n  " + "\n  ".join(failures))
        return 1
    print("\nsoak: every check passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
