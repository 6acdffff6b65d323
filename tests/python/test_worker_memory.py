"""The Worker within an isolate's memory, under `wrangler dev`: an answer at
the Worker's default `max_body_bytes`, whole or streamed as one event, keeps
workerd's peak resident memory within a bound, and a larger one is refused
(a soft `body_too_large`, failed over); an upstream that floods role deltas
without output is failed over within its `timeout_ms`, leaves the isolate
usable and its memory bounded, and holds off no other request's timer.

Memory is that of the workerd that runs the worker: its peak RSS (VmHWM,
restarted before the call), with generous bounds (regressions, not
benchmarks: bench/worker_memory.py measures). Each setup's wrangler dev has
its inspector on an idle worker (see workerlib.WranglerDev): a deployed
worker has none, and with it every chunk read is a devtools event.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from mock_provider import MockProviders
from workerlib import MIB, WranglerDev, large_answer, parse_trace

TOKEN = secrets.token_hex(16)
KEY = f"sk-mem-{secrets.token_hex(12)}"
DEFAULT_MAX_BODY_BYTES = 8 * MIB  # worker/src/lib.rs
# What one answer at the default maximum may add to workerd's resident
# memory (measured: about 60 MiB, README's table).
ANSWER_ADDS_AT_MOST = 100 * MIB
# An idle workerd is about 75 MiB; a 2 s flood took it past 300 MiB before
# the core bounded what a stream holds before its commit point (about 125
# MiB since).
FLOOD_PEAK_AT_MOST = 200 * MIB
FLOOD_TIMEOUT_MS = 2000


def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"id": "chatcmpl-m", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


# Role deltas only, as fast as the worker reads, for longer than any test waits.
FLOOD = {"events": [{"data": chunk({"role": "assistant"}), "flood_s": 30}]}
STREAM = {"events": [{"data": chunk({"role": "assistant"})}, {"data": chunk({"content": "hi"})},
                     {"data": chunk({}, "stop")}, {"data": "[DONE]"}]}
WHOLE = {"json": {"id": "chatcmpl-m", "object": "chat.completion", "created": 1, "model": "gpt-4o",
                  "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"},
                               "finish_reason": "stop"}]}}



def in_pieces(answer: dict[str, Any], piece: int = 64 * 1024) -> dict[str, Any]:
    """`answer`'s JSON body chunked, without a Content-Length (as a provider
    that compresses its answers is read)."""
    text = json.dumps(answer["json"], separators=(",", ":"))
    return {"headers": {"content-type": "application/json"},
            "events": [{"raw": text[i:i + piece]} for i in range(0, len(text), piece)]}


# Each script replays from its start (loop=True); the tests of a setup send
# their requests in the order the scripts expect.
AT_MAX_IN_PIECES = in_pieces(large_answer(DEFAULT_MAX_BODY_BYTES, streamed=False))
MOCKS: dict[str, dict[str, Any]] = {
    "at_max": {"responses": [large_answer(DEFAULT_MAX_BODY_BYTES, streamed=False)]},
    "at_max_stream": {"responses": [large_answer(DEFAULT_MAX_BODY_BYTES, streamed=True)]},
    "over_max": {"responses": [large_answer(DEFAULT_MAX_BODY_BYTES + MIB, streamed=False)]},
    "at_max_pieces": {"responses": [AT_MAX_IN_PIECES]},
    # A flood, then a normal answer: the second call the isolate makes to it.
    "flood": {"responses": [FLOOD, STREAM, FLOOD, WHOLE]},
    "good": {"responses": [STREAM, WHOLE]},
    "flood_long": {"responses": [FLOOD, STREAM]},
    "stall": {"responses": [{"fault": "stall"}]},
}


def provider(mocks: MockProviders, name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "kind": "openai", "base_url": mocks.base_url(name), "api_key": KEY,
            "timeout_ms": 30_000, **extra}


SETUPS: dict[str, Callable[[MockProviders], dict[str, Any]]] = {
    "whole": lambda m: {"providers": [provider(m, "over_max"), provider(m, "at_max"),
                                      provider(m, "good", max_body_bytes=64 * MIB)]},
    "stream": lambda m: {"providers": [provider(m, "at_max_stream")]},
    "pieces": lambda m: {"providers": [provider(m, "at_max_pieces")]},
    "flood": lambda m: {"providers": [provider(m, "flood", timeout_ms=FLOOD_TIMEOUT_MS), provider(m, "good")]},
    # Weighted with equal weights: the first call tries flood_long first, the
    # second stall first. flood_long's cap is high, so it floods until its
    # deadline, well past stall's.
    "two_calls": lambda m: {"policy": "weighted", "providers": [
        provider(m, "flood_long", timeout_ms=8000, max_body_bytes=512 * MIB),
        provider(m, "stall", timeout_ms=1000)]},
}


@pytest.fixture(scope="module")
def mocks() -> Iterator[MockProviders]:
    with MockProviders({"mocks": MOCKS}, loop=True) as m:
        yield m


@pytest.fixture(scope="module")
def workers(mocks: MockProviders) -> Iterator[dict[str, WranglerDev]]:
    def start(name: str) -> tuple[str, WranglerDev]:
        variables = {"ROUTER_CONFIG": json.dumps(SETUPS[name](mocks)), "ROUTER_TOKEN": TOKEN}
        return name, WranglerDev(variables, inspector_elsewhere=True)

    running: dict[str, WranglerDev] = {}
    try:
        with ThreadPoolExecutor(max_workers=len(SETUPS)) as pool:
            for future in [pool.submit(start, name) for name in SETUPS]:
                name, w = future.result()
                running[name] = w
        yield running
    finally:
        for w in running.values():
            w.close()


def call(w: WranglerDev, stream: bool, timeout: float = 30.0) -> tuple[int, dict[str, str], bytes]:
    body = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "stream": stream})
    return w.request("POST", "/v1/chat/completions", body.encode(),
                     {"content-type": "application/json", "authorization": f"Bearer {TOKEN}"}, timeout)


def timed_call(w: WranglerDev, stream: bool) -> tuple[float, int, dict[str, str], bytes]:
    t0 = time.monotonic()
    status, headers, body = call(w, stream)
    return time.monotonic() - t0, status, headers, body


def test_the_default_max_body_bytes_is_the_workers_and_a_provider_may_set_its_own(
        workers: dict[str, WranglerDev]) -> None:
    _, _, health = workers["whole"].get_json("/healthz")
    assert [p["max_body_bytes"] for p in health["providers"]] == [
        DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_BODY_BYTES, 64 * MIB]


def test_an_answer_over_the_default_fails_over_and_one_at_it_stays_within_the_bound(
        workers: dict[str, WranglerDev]) -> None:
    w = workers["whole"]
    idle = w.reset_workerd_peak()
    status, headers, body = call(w, stream=False)
    peak = w.workerd_memory().peak
    assert status == 200, body[:500]
    trace = parse_trace(headers.get("x-f3dx-trace"))
    assert [(a["provider"], a["outcome"], a["fault"]) for a in trace] == [
        ("over_max", "soft", "body_too_large"), ("at_max", "success", None)]
    answer = json.loads(body)["choices"][0]["message"]["content"]
    assert DEFAULT_MAX_BODY_BYTES - 2 * MIB < len(answer) < DEFAULT_MAX_BODY_BYTES
    assert peak - idle.rss < ANSWER_ADDS_AT_MOST, (idle, peak)


def test_an_answer_at_the_default_without_a_length_arrives_whole_within_the_bound(
        workers: dict[str, WranglerDev]) -> None:
    w = workers["pieces"]
    idle = w.reset_workerd_peak()
    status, headers, body = call(w, stream=False)
    peak = w.workerd_memory().peak
    assert status == 200, body[:500]
    assert body == "".join(e["raw"] for e in AT_MAX_IN_PIECES["events"]).encode()
    assert peak - idle.rss < ANSWER_ADDS_AT_MOST, (idle, peak)


def test_a_streamed_answer_at_the_default_in_one_event_stays_within_the_bound(
        workers: dict[str, WranglerDev]) -> None:
    w = workers["stream"]
    idle = w.reset_workerd_peak()
    status, headers, body = call(w, stream=True)
    peak = w.workerd_memory().peak
    assert status == 200 and headers["content-type"].startswith("text/event-stream"), body[:500]
    events = [json.loads(e[len(b"data: "):]) for e in body.split(b"\n\n") if e and e != b"data: [DONE]"]
    text = "".join(e["choices"][0]["delta"].get("content") or "" for e in events)
    assert DEFAULT_MAX_BODY_BYTES - 2 * MIB < len(text) < DEFAULT_MAX_BODY_BYTES
    assert body.endswith(b"data: [DONE]\n\n")
    assert peak - idle.rss < ANSWER_ADDS_AT_MOST, (idle, peak)


def test_a_flood_of_role_deltas_is_failed_over_in_time_and_leaves_the_isolate_usable(
        workers: dict[str, WranglerDev]) -> None:
    w = workers["flood"]
    w.reset_workerd_peak()
    limit = FLOOD_TIMEOUT_MS / 1000 + 1
    # The flood's scripts, in order: flood (streamed), a normal stream, flood
    # (not streamed), a normal answer.
    took, status, headers, body = timed_call(w, stream=True)
    assert took < limit, f"a streamed call took {took:.1f} s"
    assert status == 200 and headers["x-f3dx-provider"] == "good", (status, headers, body[:300])
    t0 = time.monotonic()
    status, _, _ = w.request("GET", "/healthz", timeout=10)
    assert status == 200 and time.monotonic() - t0 < 1.0
    took, status, headers, body = timed_call(w, stream=True)
    assert (status, headers["x-f3dx-provider"]) == (200, "flood") and took < 1.0, (took, status, body[:300])
    took, status, headers, body = timed_call(w, stream=False)
    assert took < limit, f"a call took {took:.1f} s"
    assert status == 200 and headers["x-f3dx-provider"] == "good", (status, headers, body[:300])
    took, status, headers, body = timed_call(w, stream=False)
    assert (status, headers["x-f3dx-provider"]) == (200, "flood") and took < 1.0, (took, status, body[:300])
    peak = w.workerd_memory().peak
    assert peak < FLOOD_PEAK_AT_MOST, f"workerd's peak RSS {peak / MIB:.0f} MiB"


def test_a_flood_holds_off_no_other_calls_deadline(workers: dict[str, WranglerDev]) -> None:
    w = workers["two_calls"]
    with ThreadPoolExecutor(max_workers=1) as pool:
        flooded = pool.submit(timed_call, w, True)  # flood_long first, flooding for 8 s
        time.sleep(0.5)  # it is flooding
        # stall first: its 1 s deadline must fire although the isolate is
        # busy reading the flood; then flood_long's second script answers.
        took, status, headers, body = timed_call(w, stream=True)
        assert took < 2.5, f"the second call took {took:.1f} s"
        trace = parse_trace(headers.get("x-f3dx-trace"))
        assert [(a["provider"], a["outcome"], a["fault"]) for a in trace] == [
            ("stall", "soft", "timeout"), ("flood_long", "success", None)], (status, body[:300])
        took, status, _, _ = flooded.result()
        assert took < 8 + 1 + 1 + 1, f"the flooded call took {took:.1f} s"  # flood_long's, then stall's deadline
