"""SPEC §9: every outcome is counted in Envoy's stats (the names are the filter's to choose; these tests
only ask that each outcome moves a counter of its own)."""

import time

import httpx

from support import assert_success, post, refusal, reset_body


def filter_counters(gate) -> dict[str, int]:
    return {name: value for name, value in gate.stats().items()
            if isinstance(value, int) and (name.startswith("wasmcustom.") or "reset_gate" in name
                                           or "reset-gate" in name)}


def increased(before: dict[str, int], after: dict[str, int]) -> set[str]:
    return {name for name, value in after.items() if value > before.get(name, 0)}


def counters_moved_by(gate, send) -> set[str]:
    before = filter_counters(gate)
    send()
    deadline = time.monotonic() + 2
    while True:
        moved = increased(before, filter_counters(gate))
        if moved or time.monotonic() > deadline:
            time.sleep(0.1)
            return increased(before, filter_counters(gate))
        time.sleep(0.05)


def test_forwarded_request_moves_a_counter(gate, provider):
    moved = counters_moved_by(gate, lambda: assert_success(post(gate, reset_body())))

    assert moved, "no reset-gate counter moved"


def test_each_outcome_moves_a_counter_of_its_own(gate, provider):
    forwarded = counters_moved_by(gate, lambda: post(gate, reset_body()))
    media_type = counters_moved_by(gate, lambda: refusal(post(gate, reset_body(), content_type="text/plain"),
                                                         415, "invalid_request"))
    connection = counters_moved_by(gate, lambda: refusal(post(gate, reset_body(connection="github")), 400,
                                                         "bad.connection"))
    provider.set_mode(status=500)
    provider_5xx = counters_moved_by(gate, lambda: refusal(post(gate, reset_body()), 502,
                                                           "temporarily_unavailable"))

    outcomes = {"forwarded": forwarded, "415": media_type, "bad.connection": connection, "provider 5xx": provider_5xx}
    for name, moved in outcomes.items():
        others = set().union(*(m for n, m in outcomes.items() if n != name))
        assert moved - others, f"{name}: no counter of its own among {sorted(moved)}"


def test_counters_are_exported_for_prometheus(gate, provider):
    assert_success(post(gate, reset_body()))
    names = filter_counters(gate)

    text = httpx.get(gate.admin_url + "/stats/prometheus", timeout=10).text

    assert names
    assert any(name.replace(".", "_").replace("-", "_") in text for name in names), sorted(names)
