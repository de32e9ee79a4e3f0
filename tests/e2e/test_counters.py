"""SPEC §9 and README "Counters": every outcome moves its own counter, by exactly one per request, under
the documented name `wasmcustom.<stat_prefix>.<name>` at admin /stats and under the name Envoy's
Prometheus export gives it at /stats/prometheus (the `wasmcustom.` namespace dropped and the dots made
underscores, as read off Envoy 1.40's output: `wasmcustom.reset_gate.provider.2xx` is
`reset_gate_provider_2xx`); `stat_prefix` changes the prefix. (test_stats.py checks movement without
names.)"""

from __future__ import annotations

import re
import time
import urllib.request

import pytest

import tools
from load import listeners
from provider import SUCCESS_TEXT
from support import (
    ORIGIN, RESET_PATH, UNKNOWN_CLIENT_ID, assert_not_forwarded, assert_success, forwarded, post, refusal,
    reset_body, standard_config,
)

# The counter names of README's table, with the /stats and the /stats/prometheus name each has under
# the default prefix, spelled out rather than derived.
DEFAULT_NAMES = {
    "intercepted": ("wasmcustom.reset_gate.intercepted", "reset_gate_intercepted"),
    "forwarded": ("wasmcustom.reset_gate.forwarded", "reset_gate_forwarded"),
    "rejected.method": ("wasmcustom.reset_gate.rejected.method", "reset_gate_rejected_method"),
    "rejected.media_type": ("wasmcustom.reset_gate.rejected.media_type", "reset_gate_rejected_media_type"),
    "rejected.too_large": ("wasmcustom.reset_gate.rejected.too_large", "reset_gate_rejected_too_large"),
    "rejected.invalid": ("wasmcustom.reset_gate.rejected.invalid", "reset_gate_rejected_invalid"),
    "rejected.connection": ("wasmcustom.reset_gate.rejected.connection", "reset_gate_rejected_connection"),
    "rejected.client": ("wasmcustom.reset_gate.rejected.client", "reset_gate_rejected_client"),
    "rate_limited.rejected": ("wasmcustom.reset_gate.rate_limited.rejected", "reset_gate_rate_limited_rejected"),
    "rate_limited.silent": ("wasmcustom.reset_gate.rate_limited.silent", "reset_gate_rate_limited_silent"),
    "provider.2xx": ("wasmcustom.reset_gate.provider.2xx", "reset_gate_provider_2xx"),
    "provider.4xx": ("wasmcustom.reset_gate.provider.4xx", "reset_gate_provider_4xx"),
    "provider.5xx": ("wasmcustom.reset_gate.provider.5xx", "reset_gate_provider_5xx"),
    "provider.timeout": ("wasmcustom.reset_gate.provider.timeout", "reset_gate_provider_timeout"),
    "provider.unreachable": ("wasmcustom.reset_gate.provider.unreachable", "reset_gate_provider_unreachable"),
    "provider.dispatch_failed": ("wasmcustom.reset_gate.provider.dispatch_failed",
                                 "reset_gate_provider_dispatch_failed"),
    "misconfigured": ("wasmcustom.reset_gate.misconfigured", "reset_gate_misconfigured"),
}

DEFAULT = "reset_gate"
QUIET = "gate.quiet"          # on_exceed silent
LOST = "gate.lost"            # provider.cluster that Envoy does not know
FLAGLESS = "gate.flagless"    # without allow_on_headers_stop_iteration
PREFIXES = [DEFAULT, QUIET, LOST, FLAGLESS]
TIMEOUT_MS = 500


def stats_name(prefix: str, name: str) -> str:
    return f"wasmcustom.{prefix}.{name}"


def prometheus_name(prefix: str, name: str) -> str:
    return f"{prefix}.{name}".replace(".", "_")


def config(**extra) -> dict:
    c = standard_config()
    c["provider"]["timeout_ms"] = TIMEOUT_MS
    c["limits"] = {**c["limits"], "per_email": {"requests": 2, "window_seconds": 3600}}
    for key, value in extra.items():
        if isinstance(value, dict):
            c[key] = {**c.get(key, {}), **value}
        else:
            c[key] = value
    return c


@pytest.fixture(scope="module")
def gates(tmp_path_factory, wasm, provider, app):
    """One Envoy, one VM (same vm_id), four filter configurations on four listeners, one per prefix."""
    filters = [
        {"configuration": config()},
        {"configuration": config(stat_prefix=QUIET, limits={"per_email": {"requests": 1, "window_seconds": 3600},
                                                            "on_exceed": "silent"})},
        {"configuration": config(stat_prefix=LOST, provider={"cluster": "no-such-cluster"})},
        {"configuration": config(stat_prefix=FLAGLESS), "allow_on_headers_stop_iteration": False},
    ]
    bootstrap = tools.bootstrap_listeners(provider_address=provider.address, app_address=app.address,
                                          wasm_path=wasm, filters=filters)
    envoy = tools.Envoy(bootstrap, tmp_path_factory.mktemp("counters"), concurrency=2).start()
    yield dict(zip(PREFIXES, listeners(envoy)))
    envoy.stop()


@pytest.fixture
def gate(gates):
    return gates[DEFAULT]


# --- reading the counters --------------------------------------------------------------------------


def all_stats_names() -> set[str]:
    return {stats_name(p, n) for p in PREFIXES for n in DEFAULT_NAMES}


def all_prometheus_names() -> set[str]:
    return {prometheus_name(p, n) for p in PREFIXES for n in DEFAULT_NAMES}


def read_stats(envoy: tools.Envoy) -> dict[str, int]:
    """Every `wasmcustom.` counter at admin /stats."""
    return {name: value for name, value in envoy.stats().items()
            if name.startswith("wasmcustom.") and isinstance(value, int)}


_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?P<labels>\{[^}]*\})? (?P<value>\S+)$")


def read_prometheus(envoy: tools.Envoy) -> tuple[dict[str, int], dict[str, str]]:
    """Admin /stats/prometheus: the samples of the filter's metrics, and their `# TYPE`."""
    with urllib.request.urlopen(envoy.admin_url + "/stats/prometheus", timeout=5) as response:
        text = response.read().decode()
    wanted = all_prometheus_names()
    samples, types = {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            if name in wanted:
                types[name] = kind
            continue
        match = _SAMPLE.match(line)
        if match and match["name"] in wanted:
            assert match["labels"] in (None, "{}"), line
            assert match["name"] not in samples, f"{match['name']} twice"
            samples[match["name"]] = int(float(match["value"]))
    return samples, types


def snapshot(envoy: tools.Envoy) -> tuple[dict[str, int], dict[str, int]]:
    return read_stats(envoy), read_prometheus(envoy)[0]


def expected_deltas(moves: dict[tuple[str, str], int]) -> tuple[dict[str, int], dict[str, int]]:
    """{(prefix, name): n} → the /stats and /stats/prometheus deltas, every other counter 0."""
    stats = {stats_name(p, n): 0 for p in PREFIXES for n in DEFAULT_NAMES}
    prometheus = {prometheus_name(p, n): 0 for p in PREFIXES for n in DEFAULT_NAMES}
    for (prefix, name), count in moves.items():
        assert name in DEFAULT_NAMES, name
        stats[stats_name(prefix, name)] = count
        prometheus[prometheus_name(prefix, name)] = count
    return stats, prometheus


def deltas(before: dict[str, int], after: dict[str, int], names) -> dict[str, int]:
    return {name: after.get(name, 0) - before.get(name, 0) for name in names}


def assert_counters_move(envoy: tools.Envoy, moves: dict[tuple[str, str], int], send) -> None:
    """Run `send` and check that exactly these counters moved, by exactly these amounts, in /stats and
    in /stats/prometheus (waiting briefly: a counter moves just after the reply leaves)."""
    want_stats, want_prometheus = expected_deltas(moves)
    before_stats, before_prometheus = snapshot(envoy)
    send()
    deadline = time.monotonic() + 3
    while True:
        after_stats, after_prometheus = snapshot(envoy)
        got_stats = deltas(before_stats, after_stats, set(want_stats) | set(after_stats))
        got_prometheus = deltas(before_prometheus, after_prometheus, want_prometheus)
        if (got_stats, got_prometheus) == (want_stats, want_prometheus) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    time.sleep(0.1)  # and nothing more moves afterwards
    after_stats, after_prometheus = snapshot(envoy)
    got_stats = deltas(before_stats, after_stats, set(want_stats) | set(after_stats))
    got_prometheus = deltas(before_prometheus, after_prometheus, want_prometheus)
    assert {k: v for k, v in got_stats.items() if v} == {k: v for k, v in want_stats.items() if v}, "/stats"
    assert got_stats == want_stats, "/stats"
    assert {k: v for k, v in got_prometheus.items() if v} == {k: v for k, v in want_prometheus.items() if v}, \
        "/stats/prometheus"
    assert got_prometheus == want_prometheus, "/stats/prometheus"


def moved(prefix: str = DEFAULT, **names) -> dict[tuple[str, str], int]:
    """moved(intercepted=1, provider_2xx=1) → {(prefix, "intercepted"): 1, (prefix, "provider.2xx"): 1}:
    the first underscore-separated word of a keyword is the dotted group when it is one."""
    out = {}
    for key, count in names.items():
        for group in ("rejected", "rate_limited", "provider"):
            if key.startswith(group + "_"):
                key = group + "." + key[len(group) + 1:]
                break
        out[(prefix, key)] = count
    return out


# --- names -----------------------------------------------------------------------------------------


def test_every_counter_exists_under_its_exact_name(gates):
    envoy = gates[DEFAULT].envoy
    stats = read_stats(envoy)
    samples, types = read_prometheus(envoy)

    assert {n for n in stats if n.startswith("wasmcustom.reset_gate.")} == {s for s, _ in DEFAULT_NAMES.values()}
    assert {p for _, p in DEFAULT_NAMES.values()} <= set(samples)
    # Every configuration defines the same set under its own stat_prefix
    # (`wasmcustom.gate.quiet.rate_limited.silent`, `gate_quiet_rate_limited_silent`), and nothing else.
    assert set(stats) == all_stats_names()
    assert set(samples) == all_prometheus_names()
    assert set(types.values()) == {"counter"} and set(types) == set(samples)
    assert "wasmcustom.gate.quiet.rate_limited.silent" in stats and "gate_quiet_rate_limited_silent" in samples


# --- one request, one outcome ----------------------------------------------------------------------


def test_provider_2xx(gate, provider):
    assert_counters_move(gate.envoy, moved(intercepted=1, forwarded=1, provider_2xx=1),
                         lambda: assert_success(post(gate, reset_body(email="two@example.com"))))
    forwarded(provider)


def test_provider_4xx(gate, provider):
    provider.set_mode(status=400, headers=[("Content-Type", "application/json")],
                      body='{"error":"bad.email","error_description":"Invalid email"}')

    def send():
        response = post(gate, reset_body(email="four@example.com"))
        assert response.status_code == 400
        assert response.content == b'{"error":"bad.email","error_description":"Invalid email"}'

    assert_counters_move(gate.envoy, moved(intercepted=1, forwarded=1, provider_4xx=1), send)
    forwarded(provider)


def test_provider_5xx(gate, provider):
    provider.set_mode(status=500, body="boom")
    assert_counters_move(gate.envoy, moved(intercepted=1, forwarded=1, provider_5xx=1),
                         lambda: refusal(post(gate, reset_body(email="five@example.com")), 502,
                                         "temporarily_unavailable"))
    forwarded(provider)


def test_provider_timeout(gate, provider):
    provider.set_mode(delay=TIMEOUT_MS / 1000 + 0.5)
    assert_counters_move(gate.envoy, moved(intercepted=1, forwarded=1, provider_timeout=1),
                         lambda: refusal(post(gate, reset_body(email="slow@example.com")), 504,
                                         "temporarily_unavailable"))
    forwarded(provider)


def test_provider_unreachable(gate, provider):
    provider.set_mode(behaviour="close")
    assert_counters_move(gate.envoy, moved(intercepted=1, forwarded=1, provider_unreachable=1),
                         lambda: refusal(post(gate, reset_body(email="gone@example.com")), 503,
                                         "temporarily_unavailable"))
    forwarded(provider)


@pytest.mark.parametrize("counter, send, status, error", [
    ("rejected.method", lambda g: post(g, b"", method="GET", content_type=None), 405, "method_not_allowed"),
    ("rejected.media_type", lambda g: post(g, reset_body(), content_type="text/plain"), 415, "invalid_request"),
    ("rejected.too_large", lambda g: post(g, reset_body(pad="x" * 9000)), 413, "invalid_request"),
    ("rejected.invalid", lambda g: post(g, "[]"), 400, "invalid_request"),
    ("rejected.connection", lambda g: post(g, reset_body(connection="github")), 400, "bad.connection"),
    ("rejected.client", lambda g: post(g, reset_body(client_id=UNKNOWN_CLIENT_ID)), 403, "unauthorized_client"),
], ids=["405", "415", "413", "400", "bad-connection", "403"])
def test_each_rejection(gate, provider, counter, send, status, error):
    assert_counters_move(gate.envoy, {(DEFAULT, "intercepted"): 1, (DEFAULT, counter): 1},
                         lambda: refusal(send(gate), status, error))
    assert_not_forwarded(provider)


def test_rate_limited_rejected(gate, provider):
    def send():
        for _ in range(2):
            assert_success(post(gate, reset_body(email="eager@example.com")))
        for _ in range(3):
            refusal(post(gate, reset_body(email="eager@example.com")), 429, "too_many_requests")

    assert_counters_move(gate.envoy, moved(intercepted=5, forwarded=2, provider_2xx=2, rate_limited_rejected=3),
                         send)
    assert len(provider.requests()) == 2


def test_rate_limited_silent_under_its_own_stat_prefix(gates, provider):
    quiet = gates[QUIET]  # 1 per hour, silent

    def send():
        assert_success(post(quiet, reset_body(email="hush@example.com")))
        for _ in range(2):
            response = post(quiet, reset_body(email="hush@example.com"))
            assert (response.status_code, response.content) == (200, SUCCESS_TEXT)
            assert response.headers["content-type"] == "text/html; charset=utf-8"

    # Nothing moves under the default prefix: the other configuration's counters are its own.
    assert_counters_move(quiet.envoy, moved(QUIET, intercepted=3, forwarded=1, provider_2xx=1,
                                            rate_limited_silent=2), send)
    forwarded(provider)


def test_dispatch_failed(gates, provider):
    lost = gates[LOST]
    assert_counters_move(lost.envoy, moved(LOST, intercepted=1, provider_dispatch_failed=1),
                         lambda: refusal(post(lost, reset_body()), 503, "temporarily_unavailable"))
    assert_not_forwarded(provider)


def test_misconfigured(gates, provider):
    flagless = gates[FLAGLESS]
    assert_counters_move(flagless.envoy, moved(FLAGLESS, intercepted=1, misconfigured=1),
                         lambda: refusal(post(flagless, reset_body()), 500, "server_error"))
    assert_not_forwarded(provider)


def test_preflights_and_other_paths_are_not_counted(gate, provider, app):
    def send():
        preflight = post(gate, b"", method="OPTIONS", content_type=None,
                         headers={"origin": ORIGIN, "access-control-request-method": "POST"})
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == ORIGIN
        assert post(gate, b"", method="OPTIONS", content_type=None).status_code == 200
        assert post(gate, reset_body(), path="/api/profile").status_code == 200
        assert post(gate, reset_body(), path=RESET_PATH + "/challenge").status_code == 200

    assert_counters_move(gate.envoy, {}, send)
    assert [(r.method, r.path) for r in provider.requests()] == [("OPTIONS", RESET_PATH)]
    assert [r.path for r in app.requests()] == ["/api/profile", RESET_PATH + "/challenge"]
