"""Health tracking and stats() through the Python API: a provider that keeps
failing is ejected and shows so in stats(); health settings are validated;
hedges are counted."""

from __future__ import annotations

from typing import Any

import pytest

from f3dx_router import ConfigError, Router
from mock_provider import MockProviders

REQUEST = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}


def reply(name: str, **extra: Any) -> dict[str, Any]:
    return {"json": {"id": "c", "object": "chat.completion", "created": 1, "model": "m",
                     "choices": [{"index": 0, "message": {"role": "assistant", "content": name}, "finish_reason": "stop"}]},
            **extra}


ERR = {"status": 503, "json": {"error": {"message": "down"}}}


def provider(m: MockProviders, name: str) -> dict[str, Any]:
    return {"name": name, "kind": "openai", "base_url": m.base_url(name), "api_key": "k"}


def test_a_failing_provider_is_ejected_and_stats_show_it() -> None:
    mocks = {"bad": {"responses": [ERR]}, "good": {"responses": [reply("good", delay_ms=5)]}}
    with MockProviders({"mocks": mocks}, loop=True) as m:
        r = Router([provider(m, "bad"), provider(m, "good")])
        fresh = r.stats()
        assert fresh["providers"]["bad"]["state"] == "healthy"
        assert fresh["providers"]["good"]["latency_ms"] == {
            "p50": None, "p90": None, "p95": None, "p99": None}
        for _ in range(5):
            assert [a.provider for a in r.route(REQUEST).attempts] == ["bad", "good"]
        # Ejected after 5 soft failures in a row: the next calls skip it.
        assert [a.provider for a in r.route(REQUEST).attempts] == ["good"]
        assert len(m.log()["bad"]) == 5
        s = r.stats()
    bad, good = s["providers"]["bad"], s["providers"]["good"]
    assert bad["state"] == "ejected" and bad["until_s"] is not None and 25 < bad["until_s"] <= 30
    assert (bad["requests"], bad["successes"], bad["soft_failures"], bad["ejections"]) == (5, 0, 5, 1)
    assert bad["error_rate"] == 1.0
    assert good["state"] == "healthy" and good["until_s"] is None
    assert (good["successes"], good["soft_failures"], good["error_rate"]) == (6, 0, 0.0)
    p50 = good["latency_ms"]["p50"]
    assert p50 is not None and 4.0 <= p50 <= 200.0
    assert good["rpm_left"] is None and good["tpm_left"] is None
    assert s["hedges"] == {"sent": 0, "won": 0, "skipped_for_budget": 0}


def test_health_off_keeps_trying_and_still_counts() -> None:
    mocks = {"bad": {"responses": [ERR]}, "good": {"responses": [reply("good")]}}
    with MockProviders({"mocks": mocks}, loop=True) as m:
        r = Router([provider(m, "bad"), provider(m, "good")], health=False)
        for _ in range(8):
            assert [a.provider for a in r.route(REQUEST).attempts] == ["bad", "good"]
        bad = r.stats()["providers"]["bad"]
    assert bad["state"] == "healthy" and bad["soft_failures"] == 8 and bad["ejections"] == 0


def test_hedges_are_counted() -> None:
    mocks = {"slow": {"responses": [reply("slow", delay_ms=300)]}, "fast": {"responses": [reply("fast")]}}
    with MockProviders({"mocks": mocks}, loop=True) as m:
        r = Router([provider(m, "slow"), provider(m, "fast")], policy="hedged", hedge_k=2)
        for _ in range(3):
            assert r.route(REQUEST).provider == "fast"
        assert r.stats()["hedges"] == {"sent": 3, "won": 3, "skipped_for_budget": 0}


@pytest.mark.parametrize(("health", "field"), [
    ("on", "health"),
    ({"window": 10}, "health.window"),
    ({"buckets": 0}, "health.buckets"),
    ({"min_requests": -1}, "health.min_requests"),
    ({"max_error_rate": 0}, "health.max_error_rate"),
    ({"max_error_rate": "half"}, "health.max_error_rate"),
    ({"consecutive_failures": 0}, "health.consecutive_failures"),
    ({"ejection_s": 1.5}, "health.ejection_s"),
    ({"ejection_s": 60, "max_ejection_s": 10}, "health.max_ejection_s"),
])
def test_bad_health_settings_are_config_errors(health: Any, field: str) -> None:
    with pytest.raises(ConfigError) as info:
        Router([{"name": "a", "kind": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key": "k"}], health=health)
    assert info.value.field == field


def test_rate_budgets_spill_and_show_in_stats() -> None:
    mocks = {"a": {"responses": [reply("a")]}, "b": {"responses": [reply("b")]}}
    with MockProviders({"mocks": mocks}, loop=True) as m:
        r = Router([{**provider(m, "a"), "rpm": 4, "tpm": 100000}, provider(m, "b")])
        winners = [r.route(REQUEST).provider for _ in range(8)]
        s = r.stats()["providers"]
    # A burst of 2 x rpm calls: exactly rpm go to a, the rest spill to b.
    assert winners == ["a"] * 4 + ["b"] * 4
    assert s["a"]["state"] == "rate_limited" and s["a"]["until_s"] is not None
    assert s["a"]["rpm_left"] is not None and s["a"]["rpm_left"] < 1
    assert s["a"]["tpm_left"] is not None and s["a"]["tpm_left"] <= 100000
    assert s["b"]["rpm_left"] is None and s["b"]["tpm_left"] is None


@pytest.mark.parametrize(("key", "value"), [("rpm", 0), ("rpm", -1), ("tpm", "many"), ("tpm", 10**10)])
def test_bad_budgets_are_config_errors(key: str, value: Any) -> None:
    with pytest.raises(ConfigError) as info:
        Router([{"name": "a", "kind": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key": "k", key: value}])
    assert info.value.field == f"providers[0].{key}"


@pytest.mark.parametrize(("options", "field"), [
    ({"hedge_delay_ms": "fast"}, "hedge_delay_ms"),
    ({"hedge_delay_ms": -5}, "hedge_delay_ms"),
    ({"hedge_delay_ms": 2.5}, "hedge_delay_ms"),
    ({"hedge_delay_ms": "auto", "hedge_delay_fallback_ms": 0}, "hedge_delay_fallback_ms"),
    ({"hedge_delay_ms": "auto", "hedge_delay_fallback_ms": "1s"}, "hedge_delay_fallback_ms"),
    ({"hedge_delay_ms": "auto", "hedge_delay_fallback_ms": 10**9}, "hedge_delay_fallback_ms"),
    ({"hedge_delay_ms": 100, "hedge_delay_fallback_ms": 500}, "hedge_delay_fallback_ms"),
    ({"hedge_budget": -0.5}, "hedge_budget"),
    ({"hedge_budget": 11}, "hedge_budget"),
    ({"hedge_budget": "0.1"}, "hedge_budget"),
    ({"hedge_budget": float("nan")}, "hedge_budget"),
])
def test_bad_hedge_settings_are_config_errors(options: dict[str, Any], field: str) -> None:
    providers = [{"name": n, "kind": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key": "k"} for n in "ab"]
    with pytest.raises(ConfigError) as info:
        Router(providers, policy="hedged", hedge_k=2, **options)
    assert info.value.field == field


def test_auto_hedging_waits_for_the_fallback_until_20_samples() -> None:
    # a answers in 30 ms; b is the backup. Before a has 20 successes the
    # backup waits the fallback (2 s, longer than a takes): no hedge. (The
    # shared vector hedged_auto_delay_follows_p90 shows the p90 taking over.)
    mocks = {"a": {"responses": [reply("a", delay_ms=30)]}, "b": {"responses": [reply("b")]}}
    with MockProviders({"mocks": mocks}, loop=True) as m:
        r = Router([provider(m, "a"), provider(m, "b")], policy="hedged", hedge_k=2,
                   hedge_delay_ms="auto", hedge_delay_fallback_ms=2000)
        assert "hedge_delay_ms='auto', hedge_delay_fallback_ms=2000, hedge_budget=0.1" in repr(r)
        for _ in range(20):
            assert r.route(REQUEST).provider == "a"
        s = r.stats()
        assert s["hedges"] == {"sent": 0, "won": 0, "skipped_for_budget": 0}
        # The p90 is what "auto" waits from now on.
        p90 = s["providers"]["a"]["latency_ms"]["p90"]
        assert p90 is not None and 25 <= p90 <= 60
