"""Caller headers (``forward_headers``) on the native host, against the
local mock providers (loopback only): ``headers=`` on every call method,
and the openai SDK's ``extra_headers`` and ``default_headers`` through
both transports. The rules themselves are the core's (vectors
``forward_headers_*`` run them on every runner); these show that each way
in reaches them."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
import openai
import pytest

import f3dx_router
from f3dx_router import ConfigError, InvalidRequest, Router, httpx_compat
from mock_provider import MockProviders

KEY = "sk-f3dx-FORWARD-SECRET-0b1c2d3e4f"
MESSAGES = [{"role": "user", "content": "hi"}]
BODY: dict[str, Any] = {"model": "gpt-4o", "messages": MESSAGES}
LISTED = ["x-request-id", "anthropic-beta", "OpenAI-Organization", "authorization"]


def completion(text: str) -> dict[str, Any]:
    return {"id": "chatcmpl-h", "object": "chat.completion", "created": 1, "model": "gpt-4o",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]}


def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"id": "chatcmpl-s", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


OK = {"json": completion("hello")}
STREAM = {"events": [{"data": chunk({"role": "assistant", "content": "hel"})},
                     {"data": chunk({}, "stop")}, {"data": "[DONE]"}]}


def make_router(m: MockProviders, **kwargs: Any) -> Router:
    provider = {"name": "a", "kind": "openai", "base_url": m.base_url("a"), "api_key": KEY, "timeout_ms": 3000}
    return Router([provider], **kwargs)


def sent_headers(m: MockProviders) -> list[dict[str, str]]:
    return [r["headers"] for r in m.log()["a"]]


def test_headers_reach_the_provider_from_every_call_method() -> None:
    mocks = {"a": {"responses": [OK, OK, STREAM, OK, OK, STREAM]}}
    with MockProviders({"mocks": mocks}) as m:
        r = make_router(m, forward_headers=LISTED)
        given = {"X-Request-Id": "req-1", "x-not-listed": "no", "Authorization": "Bearer caller"}
        r.chat_completions(BODY, headers=given)
        r.route(BODY, headers=given)
        with r.chat_completions({**BODY, "stream": True}, headers=given) as s:
            list(s)

        async def run() -> None:
            await r.achat_completions(BODY, headers=given)
            await r.aroute(BODY, headers=given)
            s = await r.achat_completions({**BODY, "stream": True}, headers=given)
            async with s:
                async for _ in s:
                    pass

        asyncio.run(run())
        sent = sent_headers(m)
    assert len(sent) == 6
    for h in sent:
        assert h["x-request-id"] == "req-1"
        assert "x-not-listed" not in h
        # Listed, but never forwarded: the provider gets its own key.
        assert h["authorization"] == f"Bearer {KEY}"


def test_without_forward_headers_the_call_s_headers_are_not_read() -> None:
    class Exploding(dict):  # a Mapping whose items() would fail if read
        def items(self) -> Any:
            raise AssertionError("read")

    with MockProviders({"mocks": {"a": {"responses": [OK]}}}) as m:
        r = make_router(m)
        r.chat_completions(BODY, headers=Exploding({"x-request-id": "r"}))
        assert "x-request-id" not in sent_headers(m)[0]


def test_bad_values_are_invalid_requests_naming_the_header_nothing_sent() -> None:
    with MockProviders({"mocks": {"a": {"responses": []}}}) as m:
        r = make_router(m, forward_headers=["x-request-id"])
        for value in ["secret-value\r\nx-evil: 1", "secret-value\n", "s" * 8193, "secr\u00e9t"]:
            with pytest.raises(InvalidRequest, match='"x-request-id"') as caught:
                r.chat_completions(BODY, headers={"x-request-id": value})
            assert "secret-value" not in str(caught.value) and "sss" not in str(caught.value)
            assert caught.value.attempts == []
        with pytest.raises(InvalidRequest, match="must be a str"):
            r.route(BODY, headers={"x-request-id": 7})  # type: ignore[dict-item]
        with pytest.raises(InvalidRequest, match="mapping"):
            r.route(BODY, headers=["x-request-id"])  # type: ignore[arg-type]
        # explain refuses what a call refuses.
        with pytest.raises(InvalidRequest, match='"x-request-id"'):
            r.explain(BODY, headers={"x-request-id": "a\nb"})
        assert m.log()["a"] == []


def test_config_errors_name_the_key_path_and_warn_for_never_forwarded(caplog: pytest.LogCaptureFixture) -> None:
    with MockProviders({"mocks": {"a": {"responses": []}}}) as m:
        with pytest.raises(ConfigError) as caught:
            make_router(m, forward_headers=["ok", "not a header"],
                        models={"g": {"deployments": [{"provider": "a"}], "forward_headers": "x-a"}})
        assert caught.value.field == "forward_headers[1]"
        assert 'models["g"].forward_headers' in str(caught.value)
        with caplog.at_level(logging.WARNING, logger="f3dx_router"):
            make_router(m, forward_headers=["Cookie"])
        assert "forward_headers[0]" in caplog.text and "never forwarded" in caplog.text


def test_the_sdk_s_extra_and_default_headers_reach_the_provider() -> None:
    mocks = {"a": {"responses": [OK, STREAM, OK]}}
    with MockProviders({"mocks": mocks}) as m:
        r = make_router(m, forward_headers=LISTED)
        client = f3dx_router.openai_client(r, default_headers={"OpenAI-Organization": "org-7"})
        client.chat.completions.create(
            model="gpt-4o", messages=MESSAGES,  # type: ignore[arg-type]
            extra_headers={"x-request-id": "req-42", "anthropic-beta": "tools-2024"})
        stream = client.chat.completions.create(
            model="gpt-4o", messages=MESSAGES, stream=True,  # type: ignore[arg-type]
            extra_headers={"x-request-id": "req-43"})
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "hel"

        async def run() -> None:
            aclient = f3dx_router.async_openai_client(r)
            await aclient.chat.completions.create(
                model="gpt-4o", messages=MESSAGES,  # type: ignore[arg-type]
                extra_headers={"x-request-id": "req-44"})

        asyncio.run(run())
        sent = sent_headers(m)
    assert sent[0]["x-request-id"] == "req-42" and sent[0]["anthropic-beta"] == "tools-2024"
    assert sent[0]["openai-organization"] == "org-7"
    assert sent[1]["x-request-id"] == "req-43" and sent[1]["openai-organization"] == "org-7"
    assert sent[2]["x-request-id"] == "req-44"
    for h in sent:
        # The SDK's placeholder key stays with the SDK.
        assert h["authorization"] == f"Bearer {KEY}"
        assert "x-stainless-lang" not in h


def test_a_bad_value_through_the_sdk_is_a_400_nothing_sent() -> None:
    with MockProviders({"mocks": {"a": {"responses": []}}}) as m:
        client = f3dx_router.openai_client(make_router(m, forward_headers=["x-request-id"]))
        with pytest.raises(openai.BadRequestError, match='"x-request-id"'):
            client.chat.completions.create(model="gpt-4o", messages=MESSAGES,  # type: ignore[arg-type]
                                           extra_headers={"x-request-id": "r" * 8193})
        assert m.log()["a"] == []


def test_httpx_transport_forwards_a_repeated_header_once() -> None:
    with MockProviders({"mocks": {"a": {"responses": [OK]}}}) as m:
        client = httpx.Client(transport=httpx_compat.HTTPTransport(make_router(m, forward_headers=LISTED)))
        headers = httpx.Headers([("x-request-id", "a"), ("X-Request-Id", "b")])
        answer = client.post("http://f3dx-router.invalid/v1/chat/completions", json=BODY, headers=headers)
        assert answer.status_code == 200
        assert sent_headers(m)[0]["x-request-id"] == "a, b"
