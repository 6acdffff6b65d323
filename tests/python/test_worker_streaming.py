"""Streaming on the Worker under `wrangler dev`: the standalone endpoint and
the TypeScript example that embeds the router answer `"stream": true` with
OpenAI server-sent events from the commit point on; before it a failure is
an ordinary JSON error, after it one error event ends the stream (no
`[DONE]`). Read with the openai SDK, as a user would."""

from __future__ import annotations

import json
import secrets
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import openai
import pytest

import f3dx_router
from mock_provider import MockProviders
from passthrough import ANSWER, ANSWER_BODY, STREAM, STREAM_BODY
from workerlib import ROOT, WranglerDev

TOKEN = secrets.token_hex(16)
KEY = f"sk-ws-{secrets.token_hex(12)}"
TS_EXAMPLE = ROOT / "worker" / "examples" / "typescript" / "src" / "index.ts"


def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"id": "chatcmpl-w", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


ROLE = {"data": chunk({"role": "assistant", "content": ""})}
DONE = {"data": "[DONE]"}


def text(t: str, **extra: Any) -> dict[str, Any]:
    return {"data": chunk({"content": t}), **extra}


MOCKS = {
    "good": {"responses": [{"events": [ROLE, text("Hel"), text("lo"), {"data": chunk({}, "stop")}, DONE]}]},
    # 200, then an error event before any text: failed over, never seen.
    "overloaded": {"responses": [{"events": [ROLE, {"data": {"error": {"message": "Overloaded", "type": "overloaded_error"}}}]}]},
    # Text, then the stream is cut: the caller must see an error.
    "cut": {"responses": [{"events": [ROLE, text("Hel"), {"fault": "truncate"}]}]},
    "denied": {"responses": [{"status": 401, "json": {"error": {"message": "Incorrect API key provided"}}}]},
    # Slow after its first text: a client that leaves must close it.
    "slow": {"responses": [{"events": [ROLE, text("a"), *[text("b", delay_ms=300) for _ in range(40)], DONE]}]},
    # Unusual but valid formatting (passthrough.py): a stream, then an answer.
    "plain": {"responses": [STREAM, ANSWER]},
    "plain_ts": {"responses": [STREAM]},
}


def config(m: MockProviders, *names: str) -> str:
    providers = [{"name": n, "kind": "openai", "base_url": m.base_url(n), "api_key": KEY, "timeout_ms": 5000}
                 for n in names]
    return json.dumps({"policy": "sequential", "providers": providers})


SETUPS = {
    "failover": ("overloaded", "good"),
    "cut": ("cut", "good"),
    "hard": ("denied", "good"),
    "slow": ("slow",),
    "passthrough": ("plain",),
}


@pytest.fixture(scope="module")
def mocks() -> Iterator[MockProviders]:
    with MockProviders({"mocks": MOCKS}, loop=True) as m:
        yield m


@pytest.fixture(scope="module")
def workers(mocks: MockProviders) -> Iterator[dict[str, WranglerDev]]:
    def start(item: tuple[str, tuple[str, ...], bool]) -> tuple[str, WranglerDev]:
        name, providers, ts = item
        variables = {"ROUTER_CONFIG": config(mocks, *providers), "ROUTER_TOKEN": TOKEN}
        return name, WranglerDev(variables, main=TS_EXAMPLE if ts else None)

    items = [(n, p, False) for n, p in SETUPS.items()] + [
        ("ts_failover", SETUPS["failover"], True), ("ts_passthrough", ("plain_ts",), True)]
    running: dict[str, WranglerDev] = {}
    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            for name, w in pool.map(start, items):
                running[name] = w
        yield running
    finally:
        for w in running.values():
            w.close()


def client(w: WranglerDev) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{w.url}/v1", api_key=TOKEN, max_retries=0, timeout=30)


def create(w: WranglerDev) -> Iterator[Any]:
    """The SDK's chunks of a streamed call (its client closed at the end)."""
    with client(w) as c:
        stream = c.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "hi"}], stream=True)
        with stream:
            yield from stream


def raw(w: WranglerDev) -> tuple[int, dict[str, str], bytes]:
    body = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "stream": True})
    return w.request("POST", "/v1/chat/completions", body.encode(),
                     {"content-type": "application/json", "authorization": f"Bearer {TOKEN}"})


@pytest.mark.parametrize("setup", ["failover", "ts_failover"])
def test_a_stream_fails_over_before_commit_and_reads_with_the_openai_sdk(
        workers: dict[str, WranglerDev], setup: str) -> None:
    w = workers[setup]
    status, headers, body = raw(w)
    assert status == 200
    assert headers["content-type"].startswith("text/event-stream")
    assert headers["x-f3dx-provider"] == "good" and headers["x-f3dx-attempts"] == "2"
    assert body.endswith(b"data: [DONE]\n\n")
    assert b"Overloaded" not in body, "the failed attempt's bytes never reach the client"
    # The SDK's own stream parsing reads it.
    chunks = list(create(w))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello"
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_an_openai_stream_and_answer_go_out_as_they_came(workers: dict[str, WranglerDev]) -> None:
    # passthrough.py: the data texts kept byte for byte, the framing the router's.
    w = workers["passthrough"]
    status, headers, body = raw(w)
    assert (status, body) == (200, STREAM_BODY)
    whole = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}).encode()
    status, headers, body = w.request("POST", "/v1/chat/completions", whole,
                                      {"content-type": "application/json", "authorization": f"Bearer {TOKEN}"})
    assert (status, headers["content-type"], body) == (200, "application/json", ANSWER_BODY.encode())
    # The embedded API's stream (a TypeScript worker's) is the same pump.
    status, headers, body = raw(workers["ts_passthrough"])
    assert (status, body) == (200, STREAM_BODY)


def test_a_failure_after_commit_is_an_error_event_the_sdk_raises(workers: dict[str, WranglerDev]) -> None:
    w = workers["cut"]
    status, headers, body = raw(w)
    assert status == 200 and headers["x-f3dx-provider"] == "cut"
    events = [e for e in body.split(b"\n\n") if e]
    last = json.loads(events[-1][len(b"data: "):])
    assert last["error"]["code"] == "stream_interrupted" and last["error"]["type"] == "server_error"
    assert b"[DONE]" not in body
    assert KEY.encode() not in body
    got = []
    with pytest.raises(openai.APIError) as info:
        for c in create(w):
            got.append(c.choices[0].delta.content or "")
    assert "".join(got) == "Hel"
    assert "cut" in str(info.value)


def test_a_failure_before_commit_is_an_ordinary_error_reply(workers: dict[str, WranglerDev]) -> None:
    status, headers, body = raw(workers["hard"])
    assert status == 401 and headers["content-type"].startswith("application/json")
    # The provider's error (it gave no type or code), with the router's message.
    error = json.loads(body)["error"]
    assert (error["type"], error["code"]) == ("upstream_error", None)
    assert "Incorrect API key provided" in error["message"]
    with pytest.raises(openai.AuthenticationError):
        list(create(workers["hard"]))


def test_a_client_that_leaves_closes_the_upstream(workers: dict[str, WranglerDev], mocks: MockProviders) -> None:
    mocks.reset()
    w = workers["slow"]
    body = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "stream": True})
    req = urllib.request.Request(f"{w.url}/v1/chat/completions", data=body.encode(), method="POST",
                                 headers={"content-type": "application/json", "authorization": f"Bearer {TOKEN}"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(req, timeout=30) as r:
        assert r.status == 200
        r.read1(64)  # the first events arrived
    # The client has gone (connection closed) after ~1 of 40 slow events.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        records = mocks.log()["slow"]
        if records and records[-1]["disconnected_early"]:
            break
        time.sleep(0.1)
    records = mocks.log()["slow"]
    assert records and records[-1]["disconnected_early"], "the upstream stream was not closed"


def sdk_error(c: openai.OpenAI, stream: bool) -> openai.APIStatusError:
    """What the SDK raises for a call to ``c``."""
    with pytest.raises(openai.APIStatusError) as info:
        result = c.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "hi"}], stream=stream)
        if stream:
            list(result)
    return info.value


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_the_sdk_raises_the_same_error_on_both_front_doors(
        workers: dict[str, WranglerDev], mocks: MockProviders, stream: bool) -> None:
    # The same upstream answer (a hard 401), through the Worker and through
    # the Python transport: one front door (the core's endpoint), one error.
    providers = json.loads(config(mocks, *SETUPS["hard"]))["providers"]
    router = f3dx_router.Router(providers)
    with client(workers["hard"]) as on_worker, f3dx_router.openai_client(router) as in_process:
        errors = [sdk_error(on_worker, stream), sdk_error(in_process, stream)]
    for e in errors:
        assert isinstance(e, openai.AuthenticationError), type(e)
    worker_error, python_error = errors
    assert (worker_error.status_code, worker_error.code, worker_error.type, worker_error.message) == (
        python_error.status_code, python_error.code, python_error.type, python_error.message)
    assert worker_error.response.headers["x-f3dx-provider"] == python_error.response.headers["x-f3dx-provider"]
    assert "Incorrect API key provided" in worker_error.message
