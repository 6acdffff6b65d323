"""The `weighted` policy through the Python API: smooth weighted round-robin
shared by every thread of a router, exact over any multiple of the weight
sum; weight 0 is only a fallback; bad weights are config errors."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest

from f3dx_router import ConfigError, Router
from mock_provider import MockProviders

REQUEST = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}


def reply(name: str) -> dict[str, Any]:
    return {"json": {"id": "c", "object": "chat.completion", "created": 1, "model": "m",
                     "choices": [{"index": 0, "message": {"role": "assistant", "content": name}, "finish_reason": "stop"}]}}


def provider(m: MockProviders, name: str, weight: int) -> dict[str, Any]:
    return {"name": name, "kind": "openai", "base_url": m.base_url(name), "api_key": "k", "weight": weight}


def test_weighted_picks_are_exact_across_16_threads() -> None:
    mocks = {n: {"responses": [reply(n)]} for n in "abc"}
    with MockProviders({"mocks": mocks}, loop=True) as m:
        r = Router([provider(m, "a", 5), provider(m, "b", 1), provider(m, "c", 1)], policy="weighted")
        assert r.policy == "weighted"
        counts: Counter[str] = Counter()
        lock = threading.Lock()
        errors: list[BaseException] = []

        def worker() -> None:
            try:
                for _ in range(70):
                    winner = r.route(REQUEST).provider
                    with lock:
                        counts[winner] += 1
            except BaseException as e:  # reported below
                errors.append(e)

        threads = [threading.Thread(target=worker) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not errors, errors
        # 16 x 70 = 1120 calls = 160 rounds of the weight sum 7: exact.
        assert counts == {"a": 800, "b": 160, "c": 160}
        assert {n: len(rs) for n, rs in m.log().items()} == {"a": 800, "b": 160, "c": 160}


@pytest.mark.parametrize(("weight", "hint"), [(-1, "non-negative"), (1_000_001, "between 0 and 1000000"),
                                                ("5", "non-negative"), (1.5, "non-negative")])
def test_bad_weights_are_config_errors(weight: Any, hint: str) -> None:
    with pytest.raises(ConfigError) as info:
        Router([{"name": "a", "kind": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key": "k", "weight": weight}],
               policy="weighted")
    assert info.value.field == "providers[0].weight"
    assert hint in str(info.value)


def test_weight_zero_alone_still_routes() -> None:
    # Only fallbacks: no first pick by weight, the call still tries them.
    with MockProviders({"mocks": {"z": {"responses": [reply("z")]}}}) as m:
        r = Router([provider(m, "z", 0)], policy="weighted")
        assert r.route(REQUEST).provider == "z"
