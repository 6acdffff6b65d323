"""The Python API's contract: config errors, the exception hierarchy, secrets,
typing of results, and the GIL being released while routing."""

from __future__ import annotations

import copy
import os
import pickle
import threading
import time
from typing import Any

import pytest

from f3dx_router import (
    AllProvidersFailed,
    Attempt,
    ConfigError,
    HardFailure,
    InvalidRequest,
    RouteResult,
    Router,
    RouterError,
)
from mock_provider import MockProviders

SECRET = "sk-test-DO-NOT-LEAK-1234567890"
REQUEST = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}


def completion(text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def provider(name: str, url: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "kind": "openai", "base_url": url, "api_key": SECRET, "timeout_ms": 2000, **extra}


def test_seed_example_runs_unchanged_against_local_mocks() -> None:
    mocks = {"openai": {"responses": [{"json": completion("hello"), "delay_ms": 30}]},
             "groq": {"responses": [{"json": completion("hello from groq"), "delay_ms": 300}]}}
    with MockProviders({"mocks": mocks}) as m:
        r = Router(providers=[
            {"name": "openai", "kind": "openai", "base_url": m.base_url("openai"), "api_key": "sk-..."},
            {"name": "groq", "kind": "openai", "base_url": m.base_url("groq"), "api_key": "gsk_..."},
        ], policy="hedged", hedge_k=2)
        resp = r.chat_completions({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]})
        assert resp["choices"][0]["message"]["content"] == "hello"


@pytest.mark.parametrize(
    ("kwargs", "field", "hint"),
    [
        ({"providers": []}, "providers", "at least one provider"),
        ({"providers": [provider("a", "http://x"), provider("a", "http://y")]}, "providers[1].name", "unique"),
        ({"providers": [{**provider("a", "http://x"), "kind": "gemini"}]}, "providers[0].kind", '"openai", "anthropic" or "azure"'),
        ({"providers": [provider("a", "http://x")], "policy": "fastest"}, "policy", '"weighted" or "hedged"'),
        ({"providers": [{"name": "a", "kind": "openai", "api_key": "k"}]}, "providers[0].base_url", "required"),
        ({"providers": [provider("a", "ftp://x")]}, "providers[0].base_url", "http:// or https://"),
        ({"providers": [provider("a", "http://x")], "policy": "hedged", "hedge_k": 3}, "hedge_k", "between 1 and 1"),
        ({"providers": [{"name": "a", "kind": "openai", "base_url": "http://x", "api_key_env": "F3DX_TEST_UNSET_VAR"}]},
         "providers[0].api_key_env", "not set"),
        ({"providers": [{"name": "a", "kind": "openai", "base_url": "http://x"}]}, "providers[0]", "api_key"),
        ({"providers": [{**provider("a", "http://x"), "timeout": 5}]}, "providers[0].#6", "unknown key (did you mean timeout_ms?)"),
        ({"providers": [{**provider("a", "http://x"), "headers": {"x-bad": "a\nb"}}]}, "providers[0].headers.#1",
         "not a valid header value"),
        ({"providers": [{**provider("a", "http://x"), "api_key": "sk-abc\n"}]}, "providers[0].api_key", "line break"),
        ({"providers": [provider("a", "https://user:pw-SECRET@h/v1")]}, "providers[0].base_url", "credentials"),
        ({"providers": [provider("a", "http://h:99999/v1")]}, "providers[0].base_url", "not a valid URL"),
        ({"providers": [provider("a", "http://x")], "policy": "hedged", "hedge_k": -1}, "hedge_k", "non-negative"),
        ({"providers": [provider("a", "http://x")], "hedge_delay_ms": -5}, "hedge_delay_ms", "between 0 and 86400000"),
        ({"providers": [provider("a", "http://x")], "policy": 1}, "policy", "must be a string"),
        ({"providers": "openai"}, "providers", "list"),
    ],
)
def test_bad_config_raises_config_error_saying_what_to_fix(kwargs: dict[str, Any], field: str, hint: str) -> None:
    providers = kwargs.pop("providers")
    with pytest.raises(ConfigError) as info:
        Router(providers, **kwargs)
    err = info.value
    assert err.field == field
    assert hint in str(err)
    for text in (str(err), repr(err)):
        assert SECRET not in text and "pw-SECRET" not in text
    # One hierarchy, still catchable as the earlier package's errors.
    assert isinstance(err, RouterError) and isinstance(err, ValueError) and isinstance(err, RuntimeError)


def test_api_key_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("F3DX_TEST_KEY", SECRET)
    with MockProviders({"mocks": {"a": {"responses": [{"json": completion("ok")}]}}}) as m:
        r = Router([{"name": "a", "kind": "openai", "base_url": m.base_url("a"), "api_key_env": "F3DX_TEST_KEY"}])
        r.chat_completions(REQUEST)
        assert m.log()["a"][0]["headers"]["authorization"] == f"Bearer {SECRET}"


def test_defaults() -> None:
    r = Router([provider("a", "http://127.0.0.1:9/v1")])
    assert r.policy == "sequential"
    assert r.providers == ["a"]
    # hedged with the default hedge_k works with a single provider.
    assert Router([provider("a", "http://127.0.0.1:9/v1")], policy="hedged").policy == "hedged"
    assert "hedge_k=2" in repr(Router([provider("a", "http://x"), provider("b", "http://y")], policy="hedged"))


def test_repr_names_providers_but_never_keys() -> None:
    r = Router([provider("a", "https://api.example.com/v1", headers={"x-secret-header": SECRET})])
    text = repr(r)
    assert "'a'" in text or '"a"' in text
    assert "https://api.example.com/v1" in text
    assert SECRET not in text


def test_route_result_and_attempts_are_typed() -> None:
    mocks = {"a": {"responses": [{"status": 503, "json": {"error": {"message": "overloaded"}}}]},
             "b": {"responses": [{"json": completion("from b")}]}}
    with MockProviders({"mocks": mocks}) as m:
        r = Router([provider("a", m.base_url("a")), provider("b", m.base_url("b"))])
        res = r.route(REQUEST)
    assert isinstance(res, RouteResult)
    assert res.provider == "b"
    assert res.response["choices"][0]["message"]["content"] == "from b"
    assert res.latency_ms >= 0
    first, second = res.attempts
    assert isinstance(first, Attempt)
    assert (first.provider, first.outcome, first.status, first.detail) == ("a", "soft", 503, "overloaded")
    assert (second.provider, second.outcome, second.status) == ("b", "success", 200)
    assert first.ended_ms is not None and first.ended_ms <= second.started_ms + 1
    assert "provider='a'" in repr(first) or 'provider="a"' in repr(first)


def test_hard_failure_carries_provider_status_body_and_redacts_the_key() -> None:
    # An upstream that echoes the key it was given must not leak it through us.
    body = {"error": {"message": f"Incorrect API key provided: {SECRET}", "code": "invalid_api_key"}}
    mocks = {"a": {"responses": [{"status": 401, "json": body}]}, "b": {"responses": []}}
    with MockProviders({"mocks": mocks}) as m:
        r = Router([provider("a", m.base_url("a")), provider("b", m.base_url("b"))])
        with pytest.raises(HardFailure) as info:
            r.chat_completions(REQUEST)
        assert m.log()["b"] == []
    err = info.value
    assert (err.provider, err.status) == ("a", 401)
    assert "Incorrect API key provided" in str(err) and "Incorrect API key provided" in err.body
    for text in (str(err), repr(err), err.body, *(a.detail for a in err.attempts)):
        assert SECRET not in text
    assert [a.outcome for a in err.attempts] == ["hard"]
    assert isinstance(err, RuntimeError)


def test_all_providers_failed_lists_every_attempt() -> None:
    mocks = {"a": {"responses": [{"status": 429, "json": {"error": {"message": "slow down"}}}]},
             "b": {"refuse": True}}
    with MockProviders({"mocks": mocks}) as m:
        r = Router([provider("a", m.base_url("a")), provider("b", m.base_url("b"))])
        with pytest.raises(AllProvidersFailed) as info:
            r.chat_completions(REQUEST)
    err = info.value
    assert [(a.provider, a.outcome, a.status, a.fault) for a in err.attempts] == [
        ("a", "soft", 429, None),
        ("b", "soft", None, "connection_refused"),
    ]
    assert "slow down" in str(err) and "connection refused" in str(err)
    assert "AllProvidersFailed([a:429, b:connection_refused])" == repr(err)


@pytest.mark.parametrize(
    ("body", "hint"),
    [
        ({"model": "gpt-4o"}, "messages"),
        ({"model": "gpt-4o", "messages": []}, "empty"),
        ({**REQUEST, "stream": "yes"}, "stream"),
        (["not", "an", "object"], "JSON object"),
    ],
)
def test_invalid_requests_are_refused_before_sending(body: Any, hint: str) -> None:
    with MockProviders({"mocks": {"a": {"responses": []}}}) as m:
        r = Router([provider("a", m.base_url("a"))])
        with pytest.raises(InvalidRequest) as info:
            r.chat_completions(body)
        assert m.log()["a"] == []
    assert hint in str(info.value)
    assert isinstance(info.value, ValueError)


def test_non_json_values_are_invalid_requests() -> None:
    r = Router([provider("a", "http://127.0.0.1:9/v1")])
    with pytest.raises(InvalidRequest, match=r"\$\.messages\[0\]\.content: object is not JSON-serializable"):
        r.chat_completions({"model": "m", "messages": [{"role": "user", "content": object()}]})
    with pytest.raises(InvalidRequest, match="NaN"):
        r.chat_completions({"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": float("nan")})
    # Integers of any size are JSON (and kept exact: test_reliability.py).


def test_retry_after_shows_in_cooldowns() -> None:
    mocks = {"a": {"responses": [{"status": 429, "headers": {"retry-after": "30"}, "json": {"error": {"message": "x"}}}]},
             "b": {"responses": [{"json": completion("b")}, {"json": completion("b")}]}}
    with MockProviders({"mocks": mocks}) as m:
        r = Router([provider("a", m.base_url("a")), provider("b", m.base_url("b"))])
        assert r.cooldowns() == {}
        r.chat_completions(REQUEST)
        cooling = r.cooldowns()
        assert list(cooling) == ["a"] and 25 < cooling["a"] <= 30
        assert [a.provider for a in r.route(REQUEST).attempts] == ["b"]


def test_the_gil_is_released_while_routing() -> None:
    # Four threads, each call held 300 ms by the mock: if routing held the
    # GIL they would take 1.2 s in turn. The bound is generous on purpose.
    n, delay_ms = 4, 300
    mocks = {"a": {"responses": [{"json": completion("a"), "delay_ms": delay_ms}] * n}}
    with MockProviders({"mocks": mocks}) as m:
        r = Router([provider("a", m.base_url("a"))])
        errors: list[BaseException] = []

        def call() -> None:
            try:
                r.chat_completions(REQUEST)
            except BaseException as e:  # surfaced below
                errors.append(e)

        threads = [threading.Thread(target=call) for _ in range(n)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=10)
        elapsed = time.perf_counter() - start
    assert not errors
    assert elapsed < n * delay_ms / 1000 * 0.75, f"{n} concurrent calls took {elapsed:.2f} s"


def test_errors_and_attempts_survive_pickling() -> None:
    mocks = {"a": {"responses": [{"status": 401, "json": {"error": {"message": "no"}}}]}}
    with MockProviders({"mocks": mocks}) as m:
        r = Router([provider("a", m.base_url("a"))])
        with pytest.raises(HardFailure) as info:
            r.chat_completions(REQUEST)
    err = info.value
    again = pickle.loads(pickle.dumps(err))
    assert type(again) is HardFailure
    assert (again.provider, again.status, again.body, str(again)) == (err.provider, err.status, err.body, str(err))
    assert [(a.provider, a.outcome, a.status, a.detail) for a in again.attempts] == [("a", "hard", 401, "no")]
    assert repr(copy.copy(err)) == repr(err)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
# Python 3.12+ warns about fork() in a threaded process; forking one is the point.
@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")
def test_a_forked_child_routes_with_its_own_runtime() -> None:
    mocks = {"a": {"responses": [{"json": completion("parent")}, {"json": completion("child")}]}}
    with MockProviders({"mocks": mocks}) as m:
        r = Router([provider("a", m.base_url("a"))])
        assert r.chat_completions(REQUEST)["choices"][0]["message"]["content"] == "parent"
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: report, then leave without running pytest's teardown
            code = 1
            try:
                text = r.chat_completions(REQUEST)["choices"][0]["message"]["content"]
                os.write(write_end, text.encode())
                code = 0
            finally:
                os._exit(code)
        os.close(write_end)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            time.sleep(0.02)
        else:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            pytest.fail("the forked child hung routing a call")
        assert os.read(read_end, 100) == b"child"
        os.close(read_end)
        assert os.waitstatus_to_exitcode(status) == 0


def test_every_fault_name_survives_pickling() -> None:
    # schema_invalid (quality-aware failover) was missing from the names the
    # unpickler accepts.
    for fault in ("timeout", "undecodable", "stream_error", "schema_invalid", "context_overflow",
                  "content_policy", "refusal", "connection_refused", "connection_reset", "dns", "truncated",
                  "body_too_large", "transport"):
        a = Attempt("p", "soft", 200, fault, "detail", 0.0, 1.5)
        again = pickle.loads(pickle.dumps(a))
        assert (again.fault, again.provider, again.ended_ms) == (fault, "p", 1.5)
