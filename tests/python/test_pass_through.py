"""Pass-through on the Python front doors (httpx2 and httpx transports,
sync and async): an OpenAI provider's stream goes out as the data texts
that came in, its whole answer as the body that came in; only the SSE
framing is the router's (``passthrough.py`` says what is kept and what
normalised). A reader of values (``ChatStream``) gets the same chunks
decoded. Against the local mock providers (loopback only)."""

from __future__ import annotations

from typing import Any

import httpx
import httpx2
import pytest

import f3dx_router
from f3dx_router import Router, httpx_compat
from mock_provider import MockProviders
from passthrough import ANSWER, ANSWER_BODY, STREAM, STREAM_BODY, STREAM_TEXT, chunk_values

URL = "http://f3dx-router.invalid/v1/chat/completions"
REQUEST: dict[str, Any] = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
MOCKS = {"a": {"responses": [STREAM, ANSWER]}}


def router(m: MockProviders) -> Router:
    return Router([{"name": "a", "kind": "openai", "base_url": m.base_url("a"), "api_key": "sk-pass",
                    "timeout_ms": 3000}])


def sync_client(library: str, r: Router) -> Any:
    if library == "httpx2":
        return httpx2.Client(transport=f3dx_router.HTTPTransport(r))
    return httpx.Client(transport=httpx_compat.HTTPTransport(r))


def async_client(library: str, r: Router) -> Any:
    if library == "httpx2":
        return httpx2.AsyncClient(transport=f3dx_router.AsyncHTTPTransport(r))
    return httpx.AsyncClient(transport=httpx_compat.AsyncHTTPTransport(r))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.parametrize("library", ["httpx2", "httpx"])
def test_a_stream_and_an_answer_go_out_as_they_came(library: str) -> None:
    with MockProviders({"mocks": MOCKS}) as m, sync_client(library, router(m)) as client:
        with client.stream("POST", URL, json={**REQUEST, "stream": True}) as resp:
            assert resp.status_code == 200 and resp.headers["content-type"] == "text/event-stream"
            body = resp.read()
        whole = client.post(URL, json=REQUEST)
    assert body == STREAM_BODY
    assert whole.status_code == 200 and whole.headers["content-type"] == "application/json"
    assert whole.content == ANSWER_BODY.encode()


@pytest.mark.anyio
@pytest.mark.parametrize("library", ["httpx2", "httpx"])
async def test_the_async_front_doors_pass_through_alike(library: str) -> None:
    with MockProviders({"mocks": MOCKS}) as m:
        async with async_client(library, router(m)) as client:
            async with client.stream("POST", URL, json={**REQUEST, "stream": True}) as resp:
                body = await resp.aread()
            whole = await client.post(URL, json=REQUEST)
    assert body == STREAM_BODY
    assert whole.content == ANSWER_BODY.encode()


def test_a_reader_of_values_gets_the_same_chunks_decoded() -> None:
    with MockProviders({"mocks": {"a": {"responses": [STREAM, ANSWER, STREAM]}}}) as m:
        r = router(m)
        chunks = list(r.chat_completions({**REQUEST, "stream": True}))
        answer = r.chat_completions(REQUEST)
        sse = b"".join(r.chat_completions({**REQUEST, "stream": True}).iter_sse())
    assert chunks == chunk_values()
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == STREAM_TEXT
    assert answer["choices"][0]["message"]["content"] == "café"
    # ChatStream.iter_sse() passes the texts on too.
    assert sse == STREAM_BODY
