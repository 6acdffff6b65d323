"""Router.models() and Router.explain() against mock providers: each reason
produced by the state real calls leave (a 429 with Retry-After, failures
that eject, an rpm budget spent, failed quality reports, a context window
too small), explain sending nothing, and the openai SDK's models.list() and
models.retrieve() through the transports."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

import f3dx_router
from f3dx_router import InvalidRequest, Router, httpx_compat
from mock_provider import MockProviders

MESSAGES = [{"role": "user", "content": "hi"}]


def completion(text: str) -> dict[str, Any]:
    return {"json": {"id": "c", "object": "chat.completion", "created": 1, "model": "m",
                     "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                  "finish_reason": "stop"}]}}


OK = completion("ok")
DOWN = {"status": 503, "json": {"error": {"message": "overloaded"}}}
BUSY = {"status": 429, "headers": {"retry-after": "30"}, "json": {"error": {"message": "slow down"}}}


def provider(m: MockProviders, name: str) -> dict[str, Any]:
    return {"name": name, "kind": "openai", "base_url": m.base_url(name), "api_key": "sk-test-0123456789"}


def table_router(m: MockProviders, models: dict[str, Any], **kwargs: Any) -> Router:
    return Router([provider(m, n) for n in m.ports], models=models, **kwargs)


def request(model: str = "gpt-4o", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": MESSAGES, **extra}


def tried(e: f3dx_router.Explanation) -> list[tuple[str, str]]:
    return [(d["provider"], d["model"]) for d in e["tried"]]


def left_out(e: f3dx_router.Explanation, provider: str) -> f3dx_router.PlannedDeployment:
    found = [d for d in e["left_out"] if d["provider"] == provider]
    assert len(found) == 1, e
    return found[0]


TWO = {"gpt-4o": [{"provider": "a", "model": "a-4o"}, {"provider": "b", "model": "b-4o"}]}


def test_models_lists_the_table_and_the_implicit_group() -> None:
    with MockProviders({"mocks": {"a": {"responses": []}, "b": {"responses": []}}}) as m:
        models = {
            "gpt-4o": {"policy": "weighted", "deployments": [
                {"provider": "a", "model": "a-4o", "weight": 3, "context_window": 128000},
                {"provider": "b"}]},
            "claude-*": [{"provider": "b"}],
        }
        r = table_router(m, models, fallbacks={"gpt-4o": ["claude-*"]})
        groups = r.models()
        assert [g["name"] for g in groups] == ["gpt-4o", "claude-*"]
        first = groups[0]
        assert (first["policy"], first["pattern"], first["implicit"]) == ("weighted", False, False)
        assert first["fallbacks"] == ["claude-*"]
        assert first["deployments"][0] == {"provider": "a", "model": "a-4o", "weight": 3, "context_window": 128000,
                                           "timeout_ms": 30000, "rpm": None, "tpm": None}
        # An exact group sends its own name where a deployment names none;
        # a pattern group, the caller's (None).
        assert first["deployments"][1]["model"] == "gpt-4o"
        assert groups[1]["pattern"] is True and groups[1]["deployments"][0]["model"] is None
        plain = Router([provider(m, "a")]).models()
        assert [(g["name"], g["implicit"], len(g["deployments"])) for g in plain] == [("*", True, 1)]
        assert m.log() == {"a": [], "b": []}


def test_a_429_with_retry_after_cools_and_explain_says_until_when() -> None:
    with MockProviders({"mocks": {"a": {"responses": [BUSY]}, "b": {"responses": [OK]}}}) as m:
        r = table_router(m, TWO)
        assert tried(r.explain(request())) == [("a", "a-4o"), ("b", "b-4o")]
        assert [a.provider for a in r.route(request()).attempts] == ["a", "b"]
        e = r.explain(request())
        a = left_out(e, "a")
        assert a["reason"] == "cooling" and a["model"] == "a-4o" and a["group"] == "gpt-4o"
        assert 25 < a["until_s"] <= 30 and "Retry-After" in (a["detail"] or "")
        assert tried(e) == [("b", "b-4o")]
        # The call that asked sent each request once; explain sent nothing.
        assert (len(m.log()["a"]), len(m.log()["b"])) == (1, 1)


def test_failures_that_eject_show_as_ejected() -> None:
    with MockProviders({"mocks": {"a": {"responses": [DOWN, DOWN]}, "b": {"responses": [OK, OK]}}}) as m:
        r = table_router(m, TWO, health={"consecutive_failures": 2, "ejection_s": 60})
        for _ in range(2):
            r.chat_completions(request())
        a = left_out(r.explain(request()), "a")
        assert a["reason"] == "ejected" and 55 < a["until_s"] <= 60


def test_a_spent_rpm_budget_shows_as_rate_limited_rpm() -> None:
    models = {"gpt-4o": [{"provider": "a", "model": "a-4o", "rpm": 1}, {"provider": "b", "model": "b-4o"}]}
    with MockProviders({"mocks": {"a": {"responses": [OK]}, "b": {"responses": []}}}) as m:
        r = table_router(m, models)
        # explain takes nothing from the budget: the call still gets a.
        r.explain(request())
        assert r.route(request()).provider == "a"
        a = left_out(r.explain(request()), "a")
        assert (a["reason"], a["budget"]) == ("rate_limited", "rpm") and a["until_s"] > 50


def test_a_tenants_quality_exclusion_puts_the_deployment_last() -> None:
    with MockProviders({"mocks": {"a": {"responses": []}, "b": {"responses": [OK]}}}) as m:
        r = table_router(m, TWO, quality={"window": 4, "min_samples": 2, "min_pass_rate": 0.5})
        for _ in range(2):
            r.record_quality("a", False, model="gpt-4o", tenant="acme")
        e = r.explain(request(), tenant="acme")
        assert tried(e) == [("b", "b-4o"), ("a", "a-4o")]
        assert e["tried"][1]["reason"] == "quality_excluded"
        assert tried(r.explain(request(), tenant="other"))[0] == ("a", "a-4o")
        assert r.route(request(), tenant="acme").provider == "b"


def test_a_context_window_too_small_is_left_out_and_not_sent() -> None:
    models = {"gpt-4o": [{"provider": "a", "model": "a-4o", "context_window": 1000},
                         {"provider": "b", "model": "b-4o", "context_window": 200000}]}
    with MockProviders({"mocks": {"a": {"responses": []}, "b": {"responses": [OK]}}}) as m:
        r = table_router(m, models)
        big = request(max_tokens=4000)
        a = left_out(r.explain(big), "a")
        assert (a["reason"], a["context_window"]) == ("context_window", 1000) and a["tokens_needed"] >= 4000
        assert r.route(big).provider == "b"
        assert m.log()["a"] == []


def test_an_unknown_model_is_the_calls_invalid_request() -> None:
    with MockProviders({"mocks": {"a": {"responses": []}, "b": {"responses": []}}}) as m:
        r = table_router(m, TWO)
        with pytest.raises(InvalidRequest) as explained:
            r.explain(request("o3"))
        with pytest.raises(InvalidRequest) as called:
            r.chat_completions(request("o3"))
        assert str(explained.value) == str(called.value) and "gpt-4o" in str(explained.value)
        with pytest.raises(InvalidRequest):
            r.explain(request(), tenant=7)  # type: ignore[arg-type]


def test_the_sdk_lists_and_retrieves_models_through_both_transports() -> None:
    models = {"gpt-4o": [{"provider": "a"}], "gpt-4o-mini": [{"provider": "b"}], "claude-*": [{"provider": "b"}]}
    with MockProviders({"mocks": {"a": {"responses": []}, "b": {"responses": []}}}) as m:
        r = table_router(m, models)
        client = f3dx_router.openai_client(r)
        assert [x.id for x in client.models.list()] == ["gpt-4o", "gpt-4o-mini"]
        got = client.models.retrieve("claude-sonnet-4-5")
        assert (got.id, got.object, got.owned_by) == ("claude-sonnet-4-5", "model", "f3dx-router")
        with pytest.raises(openai.NotFoundError) as missing:
            client.models.retrieve("o3")
        assert missing.value.code == "model_not_found"
        with httpx.Client(transport=httpx_compat.HTTPTransport(r)) as http:
            listed = http.get("http://f3dx-router.invalid/v1/models")
            assert listed.status_code == 200 and listed.json()["object"] == "list"
            assert [x["id"] for x in listed.json()["data"]] == ["gpt-4o", "gpt-4o-mini"]
        # Without `models`: the providers' fixed models.
        fixed = Router([{**provider(m, "a"), "model": "gpt-4o-2024-08-06"}, provider(m, "b")])
        assert [x.id for x in f3dx_router.openai_client(fixed).models.list()] == ["gpt-4o-2024-08-06"]
        assert m.log() == {"a": [], "b": []}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_the_async_sdk_lists_models() -> None:
    with MockProviders({"mocks": {"a": {"responses": []}, "b": {"responses": []}}}) as m:
        client = f3dx_router.async_openai_client(table_router(m, TWO))
        page = await client.models.list()
        assert [x.id for x in page.data] == ["gpt-4o"]
        async with httpx.AsyncClient(transport=httpx_compat.AsyncHTTPTransport(table_router(m, TWO))) as http:
            one = await http.get("http://f3dx-router.invalid/v1/models/gpt-4o")
            assert one.status_code == 200 and one.json()["id"] == "gpt-4o"
        await client.close()
