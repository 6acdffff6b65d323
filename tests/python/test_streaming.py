"""Streaming through the Python API: `chat_completions({"stream": True})`
returns a ChatStream at the commit point (the first event that carries
output); before it an attempt fails over like any other, after it a failure
raises StreamInterrupted and no other provider is tried."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest

from f3dx_router import (
    AllProvidersFailed,
    ChatStream,
    HardFailure,
    InvalidRequest,
    Router,
    StreamInterrupted,
)
from mock_provider import MockProviders

KEY = "sk-stream-test-0123456789"
REQUEST: dict[str, Any] = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "stream": True}


def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"id": "chatcmpl-s", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


ROLE = {"data": chunk({"role": "assistant", "content": ""})}
DONE = {"data": "[DONE]"}


def text(t: str, **extra: Any) -> dict[str, Any]:
    return {"data": chunk({"content": t}), **extra}


def stream(*events: dict[str, Any]) -> dict[str, Any]:
    return {"events": list(events)}


FULL = stream(ROLE, text("Hel"), text("lo"), {"data": chunk({}, "stop")}, DONE)


def provider(name: str, url: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "kind": "openai", "base_url": url, "api_key": KEY, "timeout_ms": 3000, **extra}


def contents(chunks: list[dict[str, Any]]) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


def test_a_stream_is_a_chat_stream_of_openai_chunks() -> None:
    with MockProviders({"mocks": {"a": {"responses": [FULL]}}}) as m:
        r = Router([provider("a", m.base_url("a"))])
        s = r.chat_completions(REQUEST)
        assert isinstance(s, ChatStream)
        assert s.provider == "a" and [a.outcome for a in s.attempts] == ["success"]
        chunks = list(s)
        sent = m.log()["a"][0]
    assert contents(chunks) == "Hello"
    # The held-back role chunk comes first, then every chunk in order.
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert sent["json"]["stream"] is True and sent["headers"]["accept"] == "text/event-stream"
    assert s.closed and s.attempts[0].ended_ms is not None


def test_failover_before_commit_on_status_error_event_or_early_end() -> None:
    before_commit = {
        "status_503": {"status": 503, "json": {"error": {"message": "overloaded"}}},
        "error_event": stream(ROLE, {"data": {"error": {"message": "Overloaded", "type": "overloaded_error"}}}),
        "ends_early": stream(ROLE, DONE),
        "cut_early": stream(ROLE, {"fault": "truncate"}),
        "reset_early": stream(ROLE, {"fault": "reset"}),
    }
    mocks = {name: {"responses": [resp]} for name, resp in before_commit.items()}
    mocks["good"] = {"responses": [FULL] * len(before_commit)}
    with MockProviders({"mocks": mocks}) as m:
        for name in before_commit:
            r = Router([provider(name, m.base_url(name)), provider("good", m.base_url("good"))])
            with r.chat_completions(REQUEST) as s:
                assert s.provider == "good", name
                first = s.attempts[0]
                assert (first.provider, first.outcome) == (name, "soft"), name
                # The failed attempt's bytes never reach the caller.
                assert contents(list(s)) == "Hello", name


def test_failure_after_commit_raises_and_never_switches_provider() -> None:
    after_commit = {
        "error_event": stream(ROLE, text("Hel"), {"data": {"error": {"message": "boom", "type": "server_error"}}}),
        "truncated": stream(ROLE, text("Hel"), {"fault": "truncate"}),
        "reset": stream(ROLE, text("Hel"), {"fault": "reset"}),
        "no_done": stream(ROLE, text("Hel")),
    }
    mocks = {name: {"responses": [resp]} for name, resp in after_commit.items()}
    mocks["good"] = {"responses": [FULL]}
    with MockProviders({"mocks": mocks}) as m:
        for name in after_commit:
            r = Router([provider(name, m.base_url(name)), provider("good", m.base_url("good"))])
            s = r.chat_completions(REQUEST)
            got: list[dict[str, Any]] = []
            with pytest.raises(StreamInterrupted) as info:
                for c in s:
                    got.append(c)
            assert contents(got) == "Hel", name
            err = info.value
            assert err.provider == name and name in str(err)
            assert [a.provider for a in err.attempts] == [name], name
            assert KEY not in str(err) and KEY not in repr(err)
            # Ended for good: more reads stop at once.
            assert list(s) == []
        assert m.log()["good"] == [], "no provider switch after the commit point"


def test_an_idle_committed_stream_times_out() -> None:
    resp = stream(ROLE, text("Hel"), {"fault": "stall"})
    with MockProviders({"mocks": {"a": {"responses": [resp]}}}) as m:
        r = Router([provider("a", m.base_url("a"), stream_idle_timeout_ms=300)])
        s = r.chat_completions(REQUEST)
        started = time.monotonic()
        with pytest.raises(StreamInterrupted, match="300 ms"):
            list(s)
        assert time.monotonic() - started < 3.0
        deadline = time.monotonic() + 5
        while not m.log()["a"][0]["disconnected_early"] and time.monotonic() < deadline:
            time.sleep(0.02)
        assert m.log()["a"][0]["disconnected_early"]


def test_hedged_streams_first_to_commit_wins_and_the_loser_is_closed() -> None:
    slow = stream(ROLE, text("slow", delay_ms=1500), DONE)
    with MockProviders({"mocks": {"slow": {"responses": [slow]}, "fast": {"responses": [FULL]}}}) as m:
        r = Router([provider("slow", m.base_url("slow")), provider("fast", m.base_url("fast"))],
                   policy="hedged", hedge_k=2)
        with r.chat_completions(REQUEST) as s:
            assert s.provider == "fast"
            assert contents(list(s)) == "Hello"
        assert [(a.provider, a.outcome) for a in s.attempts] == [("slow", "cancelled"), ("fast", "success")]
        deadline = time.monotonic() + 5
        while not m.log()["slow"][0]["disconnected_early"] and time.monotonic() < deadline:
            time.sleep(0.02)
        assert m.log()["slow"][0]["disconnected_early"], "the losing leg's connection is closed"


def test_errors_before_commit_raise_as_for_a_whole_answer() -> None:
    mocks = {"denied": {"responses": [{"status": 401, "json": {"error": {"message": "bad key"}}}]},
             "down": {"responses": [{"status": 503, "json": {"error": {"message": "down"}}}]}}
    with MockProviders({"mocks": mocks}) as m:
        with pytest.raises(HardFailure) as hard:
            Router([provider("denied", m.base_url("denied"))]).chat_completions(REQUEST)
        assert hard.value.status == 401
        with pytest.raises(AllProvidersFailed):
            Router([provider("down", m.base_url("down"))]).chat_completions(REQUEST)
    with pytest.raises(InvalidRequest, match="chat_completions"):
        Router([provider("a", "http://127.0.0.1:9/v1")]).route(REQUEST)


def test_closing_early_closes_the_upstream_connection() -> None:
    endless = stream(ROLE, text("a"), *[text("b", delay_ms=200) for _ in range(50)], DONE)
    with MockProviders({"mocks": {"a": {"responses": [endless]}}}) as m:
        r = Router([provider("a", m.base_url("a"))])
        s = r.chat_completions(REQUEST)
        next(iter(s))
        s.close()
        assert s.closed
        assert list(s) == []
        deadline = time.monotonic() + 5
        while not m.log()["a"][0]["disconnected_early"] and time.monotonic() < deadline:
            time.sleep(0.02)
        assert m.log()["a"][0]["disconnected_early"]


@pytest.mark.parametrize("sse", [False, True], ids=["chunks", "iter_sse"])
def test_close_from_another_thread_aborts_a_blocked_reader(sse: bool) -> None:
    stalled = stream(ROLE, text("Hel"), {"fault": "stall"})
    with MockProviders({"mocks": {"a": {"responses": [stalled]}}}) as m:
        r = Router([provider("a", m.base_url("a"), stream_idle_timeout_ms=30_000)])
        s = r.chat_completions(REQUEST)
        items = s.iter_sse() if sse else s
        got: list[Any] = []
        reading = threading.Event()
        ended: dict[str, Any] = {}

        def read() -> None:
            try:
                got.append(next(items))  # the role chunk
                got.append(next(items))  # "Hel"
                reading.set()
                # The reader gives up the GIL only inside next(), once it
                # holds the stream: the main thread closes it while this
                # waits on the stalled upstream.
                got.append(next(items))
            except BaseException as e:  # noqa: BLE001 - checked below
                ended["error"] = e
            ended["at"] = time.monotonic()

        reader = threading.Thread(target=read)
        reader.start()
        assert reading.wait(5)
        closed_at = time.monotonic()
        s.close()  # no error: another thread is reading
        reader.join(5)
        assert not reader.is_alive(), "the reader still waits after close()"
        took = ended["at"] - closed_at
        assert took < 1.0, f"the reader returned {took:.3f} s after close()"
        error = ended.get("error")
        assert isinstance(error, StreamInterrupted), error
        assert "closed by another thread" in str(error) and error.provider == "a"
        assert len(got) == 2 and s.closed
        # Closed for good (iter_sse ended with the error); closing is harmless.
        if sse:
            assert list(items) == []
        else:
            with pytest.raises(StreamInterrupted):
                next(items)
        s.close()
        deadline = time.monotonic() + 5
        while not m.log()["a"][0]["disconnected_early"] and time.monotonic() < deadline:
            time.sleep(0.02)
        assert m.log()["a"][0]["disconnected_early"], "the upstream connection is closed"


def test_iter_sse_gives_openai_server_sent_events() -> None:
    with MockProviders({"mocks": {"a": {"responses": [FULL]}}}) as m:
        s = Router([provider("a", m.base_url("a"))]).chat_completions(REQUEST)
        events = list(s.iter_sse())
    assert events[-1] == b"data: [DONE]\n\n"
    assert all(e.startswith(b"data: ") and e.endswith(b"\n\n") for e in events)
    chunks = [json.loads(e[len(b"data: "):]) for e in events[:-1]]
    assert contents(chunks) == "Hello"


def test_anthropic_streams_become_openai_chunks() -> None:
    def ev(kind: str, **data: Any) -> dict[str, Any]:
        return {"event": kind, "data": {"type": kind, **data}}

    events = [
        ev("message_start", message={"id": "msg_1", "model": "claude-x", "usage": {"input_tokens": 9}}),
        ev("ping"),
        ev("content_block_start", index=0, content_block={"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}),
        ev("content_block_delta", index=0, delta={"type": "input_json_delta", "partial_json": "{\"x\": "}),
        ev("content_block_delta", index=0, delta={"type": "input_json_delta", "partial_json": "1}"}),
        ev("content_block_stop", index=0),
        ev("message_delta", delta={"stop_reason": "tool_use"}, usage={"output_tokens": 4}),
        ev("message_stop"),
    ]
    with MockProviders({"mocks": {"claude": {"responses": [stream(*events)]}}}) as m:
        r = Router([{**provider("claude", m.base_url("claude")), "kind": "anthropic"}])
        chunks = list(r.chat_completions({**REQUEST, "stream_options": {"include_usage": True}}))
        sent = m.log()["claude"][0]
    assert sent["json"]["stream"] is True and sent["path"].endswith("/messages")
    assert {c["id"] for c in chunks} == {"msg_1"} and {c["model"] for c in chunks} == {"claude-x"}
    calls = [c["choices"][0]["delta"]["tool_calls"][0] for c in chunks
             if c["choices"] and "tool_calls" in c["choices"][0]["delta"]]
    assert calls[0] == {"index": 0, "id": "toolu_1", "type": "function", "function": {"name": "f", "arguments": ""}}
    assert "".join(c["function"]["arguments"] for c in calls) == '{"x": 1}'
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}
