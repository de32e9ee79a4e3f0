"""README "Rate limits", separate configurations: two reset-gate filter configurations in one Envoy (two
listeners, each with its own wasm filter) keep separate counters, whether they share a VM (same
`vm_id`, told apart by `config.name` or by their configuration) or not (different `vm_id`s)."""

from __future__ import annotations

import json

import pytest

import tools
from load import listeners, post_parallel, roomy_provider, statuses
from support import refusal, reset_body, standard_config

LIMIT = 2


def limited(**extra) -> dict:
    config = standard_config()
    config["limits"] = {**config["limits"], "per_email": {"requests": LIMIT, "window_seconds": 3600}}
    config.update(extra)
    return config


# Listener pairs: (description, first filter, second filter).
PAIRS = [
    ("same vm_id and name, configurations differ",
     {"configuration": limited(stat_prefix="reset_gate.public"), "vm_id": "shared", "name": "reset-gate"},
     {"configuration": limited(stat_prefix="reset_gate.partner"), "vm_id": "shared", "name": "reset-gate"}),
    ("same vm_id and configuration, names differ",
     {"configuration": limited(), "vm_id": "shared", "name": "reset-gate-public"},
     {"configuration": limited(), "vm_id": "shared", "name": "reset-gate-partner"}),
    ("same name and configuration, vm_ids differ",
     {"configuration": limited(), "vm_id": "reset-gate-left", "name": "reset-gate"},
     {"configuration": limited(), "vm_id": "reset-gate-right", "name": "reset-gate"}),
]


@pytest.fixture(scope="module")
def busy_provider():
    with roomy_provider("busy-provider") as server:
        yield server


@pytest.fixture(scope="module")
def pairs(tmp_path_factory, wasm, busy_provider, app):
    """One Envoy with six listeners, two per case of PAIRS, two workers."""
    filters = [item for _, first, second in PAIRS for item in (first, second)]
    config = tools.bootstrap_listeners(provider_address=busy_provider.address, app_address=app.address,
                                       wasm_path=wasm, filters=filters)
    envoy = tools.Envoy(config, tmp_path_factory.mktemp("pairs"), concurrency=2).start()
    found = listeners(envoy)
    yield {description: (found[2 * i], found[2 * i + 1]) for i, (description, _, _) in enumerate(PAIRS)}
    envoy.stop()


@pytest.mark.parametrize("case", [description for description, _, _ in PAIRS])
def test_two_filter_configurations_keep_separate_counters(pairs, busy_provider, case):
    busy_provider.reset()
    first, second = pairs[case]
    email = f"shared.user.{case.replace(' ', '-').replace(',', '')}@example.com"

    # The same email 8 times in parallel on the first listener, then on the second: the first uses up
    # its 2, and the second still admits its own 2.
    bodies = [reset_body(email=email)] * 8
    on_first = post_parallel(first, bodies, connections=8)
    on_second = post_parallel(second, bodies, connections=8)

    assert statuses(on_first) == {200: LIMIT, 429: 8 - LIMIT}, "first listener"
    assert statuses(on_second) == {200: LIMIT, 429: 8 - LIMIT}, "second listener: counters shared?"
    for response in on_first + on_second:
        if response.status_code == 429:
            refusal(response, 429, "too_many_requests")
    assert [json.loads(r.body)["email"] for r in busy_provider.requests()] == [email] * (2 * LIMIT)
