"""The openai SDK and httpx as front ends: f3dx_router's transports
(``HTTPTransport`` / ``AsyncHTTPTransport`` for httpx2, the SDK's HTTP
library, the same in ``f3dx_router.httpx_compat`` for httpx) and
``openai_client`` / ``async_openai_client``, against the local mock
providers (loopback only)."""

from __future__ import annotations

import asyncio
import difflib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import httpx2
import openai
import pytest

import f3dx_router
from f3dx_router import Router, httpx_compat
from mock_provider import MockProviders

KEY = "sk-f3dx-TRANSPORT-SECRET-7f3a9c1e55"
MESSAGES = [{"role": "user", "content": "hi"}]
REQUEST: dict[str, Any] = {"model": "gpt-4o", "messages": MESSAGES}
URL = "http://f3dx-router.invalid/v1/chat/completions"
PYTHON_DIR = str(Path(f3dx_router.__file__).resolve().parent.parent)


def completion(text: str) -> dict[str, Any]:
    return {"id": "chatcmpl-t", "object": "chat.completion", "created": 1, "model": "gpt-4o",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}


def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"id": "chatcmpl-s", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


ROLE = {"data": chunk({"role": "assistant", "content": ""})}
DONE = {"data": "[DONE]"}


def text(t: str, **extra: Any) -> dict[str, Any]:
    return {"data": chunk({"content": t}), **extra}


def stream(*events: dict[str, Any]) -> dict[str, Any]:
    return {"events": list(events)}


OK = {"json": completion("hello")}
FULL = stream(ROLE, text("Hel"), text("lo"), {"data": chunk({}, "stop")}, DONE)
BROKEN = stream(ROLE, text("Hel"), {"fault": "reset"})
# Long enough that only closing it ends it early (50 x 200 ms).
ENDLESS = stream(ROLE, text("a"), *[text("b", delay_ms=200) for _ in range(50)], DONE)
DOWN = {"status": 503, "json": {"error": {"message": "overloaded"}}}
# An upstream that echoes the key it was given: the router redacts it.
DENIED = {"status": 401, "json": {"error": {"message": f"Incorrect API key provided: {KEY}",
                                            "type": "invalid_request_error", "code": "invalid_api_key"}}}


def provider(m: MockProviders, name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "kind": "openai", "base_url": m.base_url(name), "api_key": KEY, "timeout_ms": 3000, **extra}


def router(m: MockProviders, *names: str, **kwargs: Any) -> Router:
    return Router([provider(m, n) for n in names], **kwargs)


def contents(chunks: Any) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def assert_no_key(*texts: object) -> None:
    for t in texts:
        assert KEY not in str(t), t


def wait_disconnected(m: MockProviders, name: str, index: int = 0) -> None:
    deadline = time.monotonic() + 5
    while not m.log()[name][index]["disconnected_early"] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert m.log()[name][index]["disconnected_early"], "the upstream connection was closed"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# --------------------------------------------------------------------------
# the package: lazy, optional


def run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": PYTHON_DIR, **env})


def test_importing_the_package_imports_no_http_library_and_no_sdk() -> None:
    done = run_python(
        "import sys, f3dx_router\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('httpx', 'httpx2', 'httpcore', 'httpcore2', 'openai', 'anyio', 'pydantic'))\n"
        "print(heavy)\n"
        "t = f3dx_router.HTTPTransport\n"
        "print('httpx2' in sys.modules, 'openai' in sys.modules, 'httpx' in sys.modules)\n"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["[]", "True False False"]


def test_lazy_names_resolve_and_are_listed() -> None:
    assert issubclass(f3dx_router.HTTPTransport, httpx2.BaseTransport)
    assert issubclass(f3dx_router.AsyncHTTPTransport, httpx2.AsyncBaseTransport)
    assert issubclass(httpx_compat.HTTPTransport, httpx.BaseTransport)
    assert issubclass(httpx_compat.AsyncHTTPTransport, httpx.AsyncBaseTransport)
    assert f3dx_router.httpx_compat is httpx_compat
    for name in ("HTTPTransport", "AsyncHTTPTransport", "openai_client", "async_openai_client"):
        # Listed by dir(), left out of __all__: a star import must not need the extras.
        assert name in dir(f3dx_router) and name not in f3dx_router.__all__
    for name in f3dx_router.__all__:
        getattr(f3dx_router, name)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        getattr(f3dx_router, "nope")


@pytest.mark.parametrize(
    ("blocked", "name", "extra"),
    [("httpx2", "HTTPTransport", "f3dx-router[openai]"),
     ("openai", "openai_client", "f3dx-router[openai]"),
     ("httpx", "httpx_compat", "f3dx-router[httpx]")],
)
def test_a_missing_optional_package_names_the_extra(blocked: str, name: str, extra: str) -> None:
    done = run_python(
        f"import sys; sys.modules[{blocked!r}] = None\n"
        "import f3dx_router\n"
        f"try:\n    f3dx_router.{name}\n"
        "except ImportError as e:\n    print(e)\n"
    )
    assert done.returncode == 0, done.stderr
    assert extra in done.stdout


def test_transports_take_a_router() -> None:
    with pytest.raises(TypeError, match="needs an f3dx_router.Router"):
        f3dx_router.HTTPTransport({"providers": []})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="tenant"):
        httpx_compat.HTTPTransport(Router([{"name": "a", "kind": "openai", "base_url": "http://x",
                                            "api_key": KEY}]), tenant=5)  # type: ignore[arg-type]


# --------------------------------------------------------------------------
# openai_client


def test_openai_client_defaults_and_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    # The SDK's environment does not leak in: the router holds the keys.
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-the-environment")
    monkeypatch.setenv("OPENAI_BASE_URL", "https://api.openai.com/v1")
    r = Router([{"name": "a", "kind": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key": KEY}])
    client = f3dx_router.openai_client(r)
    assert isinstance(client, openai.OpenAI)
    assert client.max_retries == 0
    assert str(client.base_url) == "http://f3dx-router.invalid/v1/"
    assert client.api_key == "f3dx-router-holds-the-keys"
    assert isinstance(client._client, httpx2.Client)
    assert isinstance(client._client._transport, f3dx_router.HTTPTransport)
    assert client._client._transport.router is r
    assert_no_key(repr(client._client._transport))

    custom = f3dx_router.openai_client(r, max_retries=2, api_key="sk-mine", base_url="http://elsewhere.invalid/api",
                                       tenant="acme")
    assert (custom.max_retries, custom.api_key, str(custom.base_url)) == (2, "sk-mine", "http://elsewhere.invalid/api/")
    assert custom._client._transport.tenant == "acme"

    aclient = f3dx_router.async_openai_client(r)
    assert isinstance(aclient, openai.AsyncOpenAI) and aclient.max_retries == 0
    assert isinstance(aclient._client._transport, f3dx_router.AsyncHTTPTransport)

    with pytest.raises(TypeError, match="http_client"):
        f3dx_router.openai_client(r, http_client=httpx2.Client())


def test_whole_answer_through_the_sdk() -> None:
    with MockProviders({"mocks": {"a": {"responses": [OK, OK]}}}) as m:
        client = f3dx_router.openai_client(router(m, "a"))
        reply = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, temperature=0.5)
        assert isinstance(reply, openai.types.chat.ChatCompletion)
        assert reply.choices[0].message.content == "hello" and reply.usage is not None
        raw = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=MESSAGES)
        sent = m.log()["a"]
    assert raw.http_response.status_code == 200
    assert raw.headers["x-f3dx-provider"] == "a"
    assert raw.headers["x-f3dx-attempts"] == "1"
    assert raw.headers["x-f3dx-trace"].startswith("a=success/200@")
    assert raw.parse().choices[0].message.content == "hello"
    # The provider gets the router's key and the caller's request, nothing of the SDK's credentials.
    assert sent[0]["headers"]["authorization"] == f"Bearer {KEY}"
    assert sent[0]["json"]["temperature"] == 0.5 and sent[0]["json"]["messages"] == MESSAGES
    assert "holds-the-keys" not in json.dumps(sent)


def test_failover_shows_in_the_headers() -> None:
    mocks = {"a": {"responses": [DOWN]}, "b": {"responses": [{"json": completion("from b")}]}}
    with MockProviders({"mocks": mocks}) as m:
        client = f3dx_router.openai_client(router(m, "a", "b"))
        raw = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=MESSAGES)
    assert raw.parse().choices[0].message.content == "from b"
    assert raw.headers["x-f3dx-provider"] == "b"
    assert raw.headers["x-f3dx-attempts"] == "2"
    first, second = raw.headers["x-f3dx-trace"].split(", ")
    assert first.startswith("a=soft/503@") and second.startswith("b=success/200@")


def test_a_hard_401_is_the_sdks_authentication_error_without_the_key() -> None:
    mocks = {"a": {"responses": [DENIED]}, "b": {"responses": []}}
    with MockProviders({"mocks": mocks}) as m:
        client = f3dx_router.openai_client(router(m, "a", "b"))
        with pytest.raises(openai.AuthenticationError) as info:
            client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        assert m.log()["b"] == [], "a hard failure is not replayed elsewhere"
    err = info.value
    assert err.status_code == 401
    assert "Incorrect API key provided" in str(err)  # the upstream's message
    assert err.code == "invalid_api_key" and err.type == "invalid_request_error"  # its body, as it was
    assert err.response.headers["x-f3dx-provider"] == "a"
    assert err.response.headers["x-f3dx-attempts"] == "1"
    assert_no_key(str(err), repr(err), err.body, err.response.text, err.response.headers)


def test_a_hard_failure_whose_body_is_not_json_is_wrapped() -> None:
    mocks = {"a": {"responses": [{"status": 400, "text": "model gpt-9 does not exist"}]}}
    with MockProviders({"mocks": mocks}) as m:
        client = f3dx_router.openai_client(router(m, "a"))
        with pytest.raises(openai.BadRequestError) as info:
            client.chat.completions.create(model="gpt-9", messages=MESSAGES)
    err = info.value
    assert err.status_code == 400
    assert "model gpt-9 does not exist" in str(err) and 'provider "a"' in str(err)
    assert err.code == "hard_failure" and err.type == "upstream_error"


def test_all_providers_failing_is_a_502() -> None:
    mocks = {"a": {"responses": [DOWN]}, "b": {"refuse": True}}
    with MockProviders({"mocks": mocks}) as m:
        client = f3dx_router.openai_client(router(m, "a", "b"))
        with pytest.raises(openai.InternalServerError) as info:
            client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        assert len(m.log()["a"]) == 1, "max_retries=0: the SDK does not route the call again"
    err = info.value
    assert err.status_code == 502 and err.code == "all_providers_failed"
    assert "overloaded" in str(err) and "connection refused" in str(err)
    assert err.response.headers["x-f3dx-attempts"] == "2"
    assert "x-f3dx-provider" not in err.response.headers
    assert_no_key(str(err), err.response.text)


def test_an_invalid_request_is_a_400_and_sends_nothing() -> None:
    with MockProviders({"mocks": {"a": {"responses": []}}}) as m:
        client = f3dx_router.openai_client(router(m, "a"))
        with pytest.raises(openai.BadRequestError) as info:
            client.chat.completions.create(model="gpt-4o", messages=[])
        assert m.log()["a"] == []
    err = info.value
    assert err.code == "invalid_request" and "empty" in str(err)
    assert err.response.headers["x-f3dx-attempts"] == "0"


def test_other_endpoints_are_404_naming_what_is_routed() -> None:
    with MockProviders({"mocks": {"a": {"responses": []}}}) as m:
        client = f3dx_router.openai_client(router(m, "a"))
        with pytest.raises(openai.NotFoundError) as info:
            client.files.list()
        with pytest.raises(openai.NotFoundError):
            client.embeddings.create(model="text-embedding-3-small", input="hi")
        assert m.log()["a"] == []
    err = info.value
    assert err.status_code == 404 and err.code == "not_found"
    assert "POST .../chat/completions" in str(err) and "GET /v1/files" in str(err)


def test_a_stream_yields_the_sdks_typed_chunks() -> None:
    mocks = {"a": {"responses": [DOWN, DOWN]}, "b": {"responses": [FULL, FULL]}}
    with MockProviders({"mocks": mocks}) as m:
        client = f3dx_router.openai_client(router(m, "a", "b"))
        with client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True) as s:
            chunks = list(s)
        assert all(isinstance(c, openai.types.chat.ChatCompletionChunk) for c in chunks)
        assert contents(chunks) == "Hello" and chunks[-1].choices[0].finish_reason == "stop"
        raw = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=MESSAGES, stream=True)
        assert raw.headers["content-type"] == "text/event-stream"
        assert (raw.headers["x-f3dx-provider"], raw.headers["x-f3dx-attempts"]) == ("b", "2")
        with raw.parse() as s:
            assert contents(s) == "Hello"
        assert m.log()["b"][0]["json"]["stream"] is True


def test_a_stream_that_fails_before_its_first_output_raises_as_a_whole_call() -> None:
    mocks = {"a": {"responses": [DENIED]}}
    with MockProviders({"mocks": mocks}) as m:
        client = f3dx_router.openai_client(router(m, "a"))
        with pytest.raises(openai.AuthenticationError) as info:
            client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    assert "Incorrect API key provided" in str(info.value)
    assert_no_key(str(info.value), info.value.response.text)


def test_an_interruption_after_the_first_output_is_the_sdks_api_error() -> None:
    mocks = {"a": {"responses": [BROKEN]}, "b": {"responses": [FULL]}}
    with MockProviders({"mocks": mocks}) as m:
        client = f3dx_router.openai_client(router(m, "a", "b"))
        got: list[Any] = []
        with client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True) as s:
            with pytest.raises(openai.APIError) as info:
                for c in s:
                    got.append(c)
        assert m.log()["b"] == [], "no provider switch after the commit point"
    err = info.value
    assert not isinstance(err, openai.APIStatusError)  # the status was 200; the stream broke
    assert contents(got) == "Hel"
    assert err.code == "stream_interrupted" and 'provider "a"' in err.message
    assert_no_key(str(err), err.body)


def test_closing_the_sdk_stream_closes_the_upstream_connection() -> None:
    with MockProviders({"mocks": {"a": {"responses": [ENDLESS]}}}) as m:
        client = f3dx_router.openai_client(router(m, "a"))
        s = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
        for c in s:
            assert c.choices[0].delta.role == "assistant"
            break
        started = time.monotonic()
        s.close()
        assert time.monotonic() - started < 1.0
        wait_disconnected(m, "a")


def test_an_anthropic_provider_answers_the_sdk_in_openai_shape() -> None:
    def ev(kind: str, **data: Any) -> dict[str, Any]:
        return {"event": kind, "data": {"type": kind, **data}}

    message = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
               "content": [{"type": "text", "text": "Hello there!"}], "stop_reason": "end_turn",
               "stop_sequence": None, "usage": {"input_tokens": 12, "output_tokens": 4}}
    events = [ev("message_start", message={"id": "msg_2", "model": "claude-x", "usage": {"input_tokens": 7}}),
              ev("content_block_start", index=0, content_block={"type": "text", "text": ""}),
              ev("content_block_delta", index=0, delta={"type": "text_delta", "text": "Hi"}),
              ev("content_block_stop", index=0),
              ev("message_delta", delta={"stop_reason": "end_turn"}, usage={"output_tokens": 3}),
              ev("message_stop")]
    denied = {"status": 401, "json": {"type": "error", "error": {"type": "authentication_error",
                                                                 "message": "invalid x-api-key"}}}
    mocks = {"claude": {"responses": [{"json": message}, stream(*events), denied]}}
    with MockProviders({"mocks": mocks}) as m:
        client = f3dx_router.openai_client(Router([{**provider(m, "claude"), "kind": "anthropic"}]))
        reply = client.chat.completions.create(model="claude-x", messages=MESSAGES)
        assert reply.choices[0].message.content == "Hello there!" and reply.choices[0].finish_reason == "stop"
        assert reply.usage is not None and reply.usage.total_tokens == 16
        with client.chat.completions.create(model="claude-x", messages=MESSAGES, stream=True) as s:
            chunks = list(s)
        assert contents(chunks) == "Hi" and {c.id for c in chunks} == {"msg_2"}
        # Anthropic's error body, passed on as it is: the SDK reads its error object.
        with pytest.raises(openai.AuthenticationError) as info:
            client.chat.completions.create(model="claude-x", messages=MESSAGES)
        assert m.log()["claude"][0]["path"].endswith("/messages")
    assert "invalid x-api-key" in str(info.value) and info.value.type == "authentication_error"


def test_tenant_from_the_client_or_a_header_and_schema_valid() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    fmt = {"type": "json_schema", "json_schema": {"name": "n", "schema": schema}}
    with MockProviders({"mocks": {"a": {"responses": [{"json": completion('{"n": 1}')}]}}}, loop=True) as m:
        r = router(m, "a")
        client = f3dx_router.openai_client(r, tenant="acme")
        raw = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=MESSAGES, response_format=fmt)
        assert raw.headers["x-f3dx-schema-valid"] == "true"
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES, response_format=fmt,
                                       extra_headers={"x-f3dx-tenant": "globex"})
        plain = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=MESSAGES)
        assert "x-f3dx-schema-valid" not in plain.headers
        keys = r.stats()["providers"]["a"]["quality"]
    assert sorted((k["tenant"], k["samples"]) for k in keys) == [("acme", 1), ("globex", 1)]


def test_one_client_from_many_threads() -> None:
    with MockProviders({"mocks": {"a": {"responses": [OK]}}}, loop=True) as m:
        client = f3dx_router.openai_client(router(m, "a"))

        def call(_: int) -> str:
            reply = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
            return reply.choices[0].message.content or ""

        with ThreadPoolExecutor(4) as pool:
            assert list(pool.map(call, range(16))) == ["hello"] * 16


EXISTING_SCRIPT = '''\
import os
import sys

import openai

client = openai.OpenAI(api_key=os.environ["OPENAI_API_KEY"])


def main() -> None:
    reply = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "Say hello"}]
    )
    print("reply:", reply.choices[0].message.content)
    stream = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "Say hello"}], stream=True
    )
    print("streamed:", "".join(c.choices[0].delta.content or "" for c in stream if c.choices))
    try:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "again"}])
    except openai.AuthenticationError as e:
        print("denied:", e.status_code, e.message, file=sys.stderr)


if __name__ == "__main__":
    main()
'''
ORIGINAL_LINE = 'client = openai.OpenAI(api_key=os.environ["OPENAI_API_KEY"])'
ROUTED_LINE = ('import f3dx_router; client = f3dx_router.openai_client('
               'f3dx_router.Router.from_file(os.environ["F3DX_ROUTER_CONFIG"]))')


def test_an_existing_openai_script_routes_by_changing_only_the_client_line(tmp_path: Path) -> None:
    routed = EXISTING_SCRIPT.replace(ORIGINAL_LINE, ROUTED_LINE)
    changed = [line for line in difflib.unified_diff(EXISTING_SCRIPT.splitlines(), routed.splitlines(), lineterm="", n=0)
               if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    assert changed == [f"-{ORIGINAL_LINE}", f"+{ROUTED_LINE}"]
    script = tmp_path / "app.py"
    script.write_text(routed)
    env_key = "sk-user-ENVIRONMENT-key-never-travels"
    mocks = {"a": {"responses": [DOWN, DOWN, DENIED]},
             "b": {"responses": [{"json": completion("hello from b")}, FULL]}}
    with MockProviders({"mocks": mocks}) as m:
        config = tmp_path / "router.json"
        config.write_text(json.dumps({"providers": [provider(m, "a"), provider(m, "b")]}))
        done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60,
                              env={**os.environ, "PYTHONPATH": PYTHON_DIR, "OPENAI_API_KEY": env_key,
                                   "F3DX_ROUTER_CONFIG": str(config)})
        log = m.log()
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["reply: hello from b", "streamed: Hello"]
    assert "denied: 401" in done.stderr and "Incorrect API key provided" in done.stderr
    assert_no_key(done.stdout, done.stderr)
    sent = [r for records in log.values() for r in records]
    assert len(sent) == 5
    assert all(r["headers"]["authorization"] == f"Bearer {KEY}" for r in sent)
    assert env_key not in json.dumps(log)


# --------------------------------------------------------------------------
# httpx


def sse_data(lines: Iterator[str]) -> list[str]:
    return [line[len("data: "):] for line in lines if line.startswith("data: ")]


def test_httpx_client_posting_json() -> None:
    mocks = {"a": {"responses": [DOWN]}, "b": {"responses": [OK]}}
    with MockProviders({"mocks": mocks}) as m:
        r = router(m, "a", "b")
        with httpx.Client(transport=httpx_compat.HTTPTransport(r)) as client:
            resp = client.post(URL, json=REQUEST)
            assert resp.status_code == 200 and resp.headers["content-type"] == "application/json"
            assert (resp.headers["x-f3dx-provider"], resp.headers["x-f3dx-attempts"]) == ("b", "2")
            assert resp.json()["choices"][0]["message"]["content"] == "hello"
            # Any base path; a trailing slash too.
            other = client.post("http://anything.invalid/openai/deployments/x/chat/completions/",
                                json={**REQUEST, "messages": []})
            assert other.status_code == 400 and other.json()["error"]["code"] == "invalid_request"
            not_json = client.post(URL, content=b"{not json", headers={"content-type": "application/json"})
            assert not_json.status_code == 400
            assert not_json.json()["error"]["code"] == "invalid_json"
            assert not_json.headers["x-f3dx-attempts"] == "0"
            wrong_method = client.get(URL)
            assert wrong_method.status_code == 404
            error = wrong_method.json()["error"]
            assert set(error) == {"message", "type", "code"} and "POST .../chat/completions" in error["message"]
            assert "GET /v1/chat/completions" in error["message"]
            assert client.post("http://x.invalid/v1/completions", json=REQUEST).status_code == 404


def test_httpx_streams_sse_and_ends_a_broken_stream_with_an_error_event() -> None:
    with MockProviders({"mocks": {"a": {"responses": [FULL, BROKEN]}}}) as m:
        with httpx.Client(transport=httpx_compat.HTTPTransport(router(m, "a"))) as client:
            with client.stream("POST", URL, json={**REQUEST, "stream": True}) as resp:
                assert resp.headers["content-type"] == "text/event-stream"
                assert resp.headers["x-f3dx-provider"] == "a"
                data = sse_data(resp.iter_lines())
            assert data[-1] == "[DONE]"
            assert "".join(json.loads(d)["choices"][0]["delta"].get("content") or "" for d in data[:-1]) == "Hello"
            with client.stream("POST", URL, json={**REQUEST, "stream": True}) as resp:
                assert resp.status_code == 200
                data = sse_data(resp.iter_lines())
    assert "[DONE]" not in data
    error = json.loads(data[-1])["error"]
    assert error["code"] == "stream_interrupted" and error["type"] == "server_error"
    assert_no_key(data)


def test_httpx_closing_a_stream_closes_the_upstream_connection() -> None:
    with MockProviders({"mocks": {"a": {"responses": [ENDLESS]}}}) as m:
        with httpx.Client(transport=httpx_compat.HTTPTransport(router(m, "a"))) as client:
            with client.stream("POST", URL, json={**REQUEST, "stream": True}) as resp:
                first = next(resp.iter_lines())
                assert first.startswith("data: ")
        wait_disconnected(m, "a")


def test_the_sdk_over_an_httpx_client() -> None:
    # openai v3 takes an httpx.Client too: the httpx transport serves it alike.
    with MockProviders({"mocks": {"a": {"responses": [OK, FULL]}}}) as m:
        http_client = httpx.Client(transport=httpx_compat.HTTPTransport(router(m, "a")))
        client = openai.OpenAI(api_key="unused", base_url="http://f3dx-router.invalid/v1",
                               http_client=http_client, max_retries=0)
        assert client.chat.completions.create(model="gpt-4o", messages=MESSAGES).choices[0].message.content == "hello"
        with client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True) as s:
            assert contents(s) == "Hello"
        http_client.close()


# --------------------------------------------------------------------------
# async: AsyncOpenAI and httpx.AsyncClient, on the router's asyncio API


@pytest.mark.anyio
async def test_async_whole_answers_and_errors() -> None:
    mocks = {"a": {"responses": [DOWN, DENIED]}, "b": {"responses": [OK]}}
    with MockProviders({"mocks": mocks}) as m:
        client = f3dx_router.async_openai_client(router(m, "a", "b"))
        raw = await client.chat.completions.with_raw_response.create(model="gpt-4o", messages=MESSAGES)
        assert (raw.headers["x-f3dx-provider"], raw.headers["x-f3dx-attempts"]) == ("b", "2")
        assert raw.parse().choices[0].message.content == "hello"
        with pytest.raises(openai.AuthenticationError) as denied:
            await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        assert "Incorrect API key provided" in str(denied.value)
        assert_no_key(str(denied.value), denied.value.response.text)
        with pytest.raises(openai.BadRequestError):
            await client.chat.completions.create(model="gpt-4o", messages=[])
        with pytest.raises(openai.NotFoundError):
            await client.files.list()
        await client.close()
        assert len(m.log()["b"]) == 1


@pytest.mark.anyio
async def test_async_all_providers_failing_is_a_502() -> None:
    with MockProviders({"mocks": {"a": {"responses": [DOWN]}}}) as m:
        client = f3dx_router.async_openai_client(router(m, "a"))
        with pytest.raises(openai.InternalServerError) as info:
            await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        await client.close()
    assert info.value.status_code == 502 and info.value.code == "all_providers_failed"


@pytest.mark.anyio
async def test_async_streams_interruption_and_close() -> None:
    mocks = {"a": {"responses": [DOWN]}, "b": {"responses": [FULL, BROKEN, ENDLESS]}}
    with MockProviders({"mocks": mocks}) as m:
        client = f3dx_router.async_openai_client(router(m, "a", "b"))
        raw = await client.chat.completions.with_raw_response.create(model="gpt-4o", messages=MESSAGES, stream=True)
        assert (raw.headers["x-f3dx-provider"], raw.headers["x-f3dx-attempts"]) == ("b", "2")
        chunks = [c async for c in raw.parse()]
        assert all(isinstance(c, openai.types.chat.ChatCompletionChunk) for c in chunks)
        assert contents(chunks) == "Hello"

        got: list[Any] = []
        s = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
        with pytest.raises(openai.APIError) as info:
            async for c in s:
                got.append(c)
        assert contents(got) == "Hel" and info.value.code == "stream_interrupted"
        assert not isinstance(info.value, openai.APIStatusError)

        s = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
        async for c in s:
            break
        await s.close()
        await client.close()
        wait_disconnected(m, "b", 2)


@pytest.mark.anyio
async def test_async_cancelling_a_call_closes_the_upstream_connection() -> None:
    with MockProviders({"mocks": {"a": {"responses": [{**OK, "delay_ms": 5000}]}}}) as m:
        client = f3dx_router.async_openai_client(router(m, "a"))
        task = asyncio.create_task(client.chat.completions.create(model="gpt-4o", messages=MESSAGES))
        deadline = time.monotonic() + 5
        while not m.log()["a"] and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await client.close()
        wait_disconnected(m, "a")


@pytest.mark.anyio
async def test_async_httpx_client() -> None:
    with MockProviders({"mocks": {"a": {"responses": [OK, FULL, BROKEN]}}}) as m:
        async with httpx.AsyncClient(transport=httpx_compat.AsyncHTTPTransport(router(m, "a"))) as client:
            resp = await client.post(URL, json=REQUEST)
            assert resp.status_code == 200 and resp.headers["x-f3dx-provider"] == "a"
            assert resp.json()["choices"][0]["message"]["content"] == "hello"
            assert (await client.get("http://x.invalid/v1/files")).status_code == 404
            bad = await client.post(URL, content=b"\xff", headers={"content-type": "application/json"})
            assert bad.status_code == 400
            async with client.stream("POST", URL, json={**REQUEST, "stream": True}) as sresp:
                data = [line async for line in sresp.aiter_lines() if line.startswith("data: ")]
            assert data[-1] == "data: [DONE]"
            async with client.stream("POST", URL, json={**REQUEST, "stream": True}) as sresp:
                data = [line async for line in sresp.aiter_lines() if line.startswith("data: ")]
            assert json.loads(data[-1][len("data: "):])["error"]["code"] == "stream_interrupted"


@pytest.mark.anyio
async def test_async_httpx2_transport_directly() -> None:
    with MockProviders({"mocks": {"a": {"responses": [OK]}}}) as m:
        async with httpx2.AsyncClient(transport=f3dx_router.AsyncHTTPTransport(router(m, "a"))) as client:
            resp = await client.post(URL, json=REQUEST)
    assert resp.status_code == 200 and resp.headers["x-f3dx-attempts"] == "1"


def test_sync_httpx2_transport_is_thread_safe_with_streams() -> None:
    # Streams read in parallel threads through one transport, each closed by its reader.
    with MockProviders({"mocks": {"a": {"responses": [FULL]}}}, loop=True) as m:
        transport = f3dx_router.HTTPTransport(router(m, "a"))
        errors: list[BaseException] = []

        def read() -> None:
            try:
                with httpx2.Client(transport=transport) as client:
                    with client.stream("POST", URL, json={**REQUEST, "stream": True}) as resp:
                        assert sse_data(resp.iter_lines())[-1] == "[DONE]"
            except BaseException as e:  # surfaced below
                errors.append(e)

        threads = [threading.Thread(target=read) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=20)
    assert not errors


def test_handle_request_directly_answers_with_a_readable_response() -> None:
    r = Router([{"name": "a", "kind": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key": KEY}])
    transport = f3dx_router.HTTPTransport(r)
    request = httpx2.Request("PUT", "http://h.invalid/v1/chat/completions", content=b"{}")
    resp = transport.handle_request(request)
    assert resp.status_code == 404
    body = json.loads(resp.read())
    assert body["error"]["type"] == "invalid_request_error" and "PUT /v1/chat/completions" in body["error"]["message"]
    for content, code in ((b"[" * 100_000, "invalid_json"), (b"[1, 2]", "invalid_request"), (b"", "invalid_json")):
        resp = transport.handle_request(httpx2.Request("POST", URL, content=content))
        assert resp.status_code == 400
        assert json.loads(resp.read())["error"]["code"] == code


@pytest.mark.anyio
@pytest.mark.parametrize("library", ["httpx2", "httpx"])
async def test_async_transports_answer_as_the_sync_ones(library: str) -> None:
    # The async front door (_native.aserve): a stream broken after its commit
    # point ends with the interrupted event, a hard 4xx is the provider's
    # error, another route is the 404 answered before anything runs.
    mocks = {"a": {"responses": [FULL, BROKEN, DENIED]}}
    with MockProviders({"mocks": mocks}) as m:
        transport: httpx2.AsyncBaseTransport | httpx.AsyncBaseTransport
        if library == "httpx2":
            transport = f3dx_router.AsyncHTTPTransport(router(m, "a"))
            client: Any = httpx2.AsyncClient(transport=transport)
        else:
            transport = httpx_compat.AsyncHTTPTransport(router(m, "a"))
            client = httpx.AsyncClient(transport=transport)
        async with client:
            bodies = []
            for _ in range(2):
                async with client.stream("POST", URL, json={**REQUEST, "stream": True}) as resp:
                    assert resp.status_code == 200 and resp.headers["x-f3dx-provider"] == "a"
                    bodies.append([line async for line in resp.aiter_lines() if line])
            denied = await client.post(URL, json=REQUEST)
            missing = await client.get("http://f3dx-router.invalid/v1/files")
    done, broken = bodies
    assert done[-1] == "data: [DONE]"
    assert "[DONE]" not in "".join(broken)
    assert json.loads(broken[-1].removeprefix("data: "))["error"]["code"] == "stream_interrupted"
    assert denied.status_code == 401
    error = denied.json()["error"]
    assert (error["code"], error["type"]) == ("invalid_api_key", "invalid_request_error")
    assert denied.headers["x-f3dx-provider"] == "a" and denied.headers["x-f3dx-attempts"] == "1"
    assert_no_key(denied.text)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert missing.headers["x-f3dx-attempts"] == "0"
