"""Issue 9's defects, each as a regression test through the Python API:
what a hostile upstream or a careless caller did, and what must happen
instead (no abort, no panic, no lost exception, no wait for Ctrl-C, no
echoed secret, nothing silently forwarded)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from f3dx_router import AllProvidersFailed, ConfigError, InvalidRequest, Router, RouterError
from mock_provider import MockProviders

SECRET = "sk-test-DO-NOT-LEAK-1234567890"
REQUEST = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
TESTS = Path(__file__).resolve().parents[1]


def completion(text: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        **extra,
    }


def provider(name: str, url: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "kind": "openai", "base_url": url, "api_key": SECRET, "timeout_ms": 2000, **extra}


# --- 1: a hostile Content-Length ------------------------------------------------

def test_a_huge_body_cap_is_a_config_error_and_a_huge_content_length_is_soft() -> None:
    with pytest.raises(ConfigError) as info:
        Router([provider("a", "http://127.0.0.1:9/v1", max_body_bytes=2**40)])
    assert info.value.field == "providers[0].max_body_bytes" and "1 GiB" in str(info.value)
    # A peer declaring 64 GiB, past the largest cap: refused at the head.
    # One declaring exactly the cap (1 GiB) is read as the bytes come (and
    # here cut short): nothing is allocated from the number it sent.
    for declared, fault in [(2**36, "body_too_large"), (2**30, "truncated")]:
        head = f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {declared}\r\n\r\n"
        with raw_server(head.encode() + b'{"choices": [') as port, \
                MockProviders({"mocks": {"b": {"responses": [{"json": completion("from b")}]}}}) as m:
            r = Router([provider("a", f"http://127.0.0.1:{port}/v1", max_body_bytes=2**30),
                        provider("b", m.base_url("b"))])
            res = r.route(REQUEST)
        assert res.provider == "b"
        assert (res.attempts[0].outcome, res.attempts[0].fault) == ("soft", fault)


@contextlib.contextmanager
def raw_server(reply: bytes) -> Iterator[int]:
    """A loopback server that answers every request with `reply` and closes."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            with conn:
                conn.settimeout(5)
                seen = b""
                while b"\r\n\r\n" not in seen:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    seen += chunk
                head, _, body = seen.partition(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.lower().split(b"\r\n")
                               if line.startswith(b"content-length:")), 0)
                while len(body) < length:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    body += chunk
                conn.sendall(reply)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


# --- 3: Ctrl-C during a call ----------------------------------------------------

SIGINT_SCRIPT = textwrap.dedent("""
    import json, sys, time
    from f3dx_router import Router
    url = sys.argv[1]
    r = Router([{"name": "a", "kind": "openai", "base_url": url, "api_key": "k", "timeout_ms": 8000}])
    print("calling", flush=True)
    started = time.monotonic()
    try:
        r.chat_completions({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
        print(json.dumps({"raised": None}))
    except BaseException as e:
        print(json.dumps({"raised": type(e).__name__, "after_s": time.monotonic() - started}))
""")


def test_ctrl_c_interrupts_a_call_at_once_and_closes_its_connection() -> None:
    mocks = {"a": {"responses": [{"fault": "stall"}]}}
    with MockProviders({"mocks": mocks}) as m:
        proc = subprocess.Popen(
            [sys.executable, "-c", SIGINT_SCRIPT, m.base_url("a")],
            stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(TESTS)},
        )
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "calling"
            # Until the mock has the request, the call is surely under way.
            deadline = time.monotonic() + 10
            while not m.log()["a"] and time.monotonic() < deadline:
                time.sleep(0.02)
            sent = time.monotonic()
            proc.send_signal(signal.SIGINT)
            out, _ = proc.communicate(timeout=10)
            answered = time.monotonic() - sent
        finally:
            proc.kill()
            proc.wait()
        result = json.loads(out.strip().splitlines()[-1])
        assert result["raised"] == "KeyboardInterrupt"
        # Within 1 s (checks run every 50 ms), not at the 8 s timeout.
        assert answered < 1.0 + 2.0, answered  # generous: a loaded CI machine
        assert result["after_s"] < 8.0
        # The call's connection was closed, not left to the upstream.
        deadline = time.monotonic() + 5
        while not m.log()["a"][0]["disconnected_early"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert m.log()["a"][0]["disconnected_early"]


# --- 4 and 5: conversion never panics, never swallows ----------------------------

class RaisingMapping(Mapping[str, Any]):
    """A Mapping whose items() raises `exc`."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    def __getitem__(self, key: str) -> Any:
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0

    def items(self) -> Any:
        raise self.exc


class MutatingMapping(Mapping[str, Any]):
    """A Mapping whose items() changes `victim` (the dict being converted)."""

    def __init__(self, victim: dict[str, Any]) -> None:
        self.victim = victim

    def __getitem__(self, key: str) -> Any:
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0

    def items(self) -> Any:
        for i in range(50):
            self.victim[f"added-{i}"] = i
        self.victim.pop("model", None)
        return []


def test_a_body_changed_during_conversion_does_not_panic() -> None:
    mocks = {"a": {"responses": [{"json": completion("ok")}]}}
    with MockProviders({"mocks": mocks}) as m:
        r = Router([provider("a", m.base_url("a"))])
        body: dict[str, Any] = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
        body["metadata"] = MutatingMapping(body)
        # A snapshot of the dict is converted: the call goes through.
        assert r.chat_completions(body)["choices"][0]["message"]["content"] == "ok"
        sent = m.log()["a"][0]["json"]
        assert sent["model"] == "gpt-4o" and "added-0" not in sent


def test_a_config_changed_during_conversion_does_not_panic() -> None:
    entry: dict[str, Any] = provider("a", "http://127.0.0.1:9/v1")
    entry["headers"] = MutatingMapping(entry)
    # The snapshot has every key it had; the mutation adds none of its own.
    r = Router([entry])
    assert r.providers == ["a"]


@pytest.mark.parametrize("exc", [KeyboardInterrupt(), SystemExit(3), MemoryError()],
                         ids=["KeyboardInterrupt", "SystemExit", "MemoryError"])
def test_exceptions_that_are_not_errors_of_the_request_propagate_unchanged(exc: BaseException) -> None:
    r = Router([provider("a", "http://127.0.0.1:9/v1")])
    with pytest.raises(type(exc)) as info:
        r.chat_completions({**REQUEST, "metadata": RaisingMapping(exc)})
    assert info.value is exc
    with pytest.raises(type(exc)) as info:
        Router([{**provider("a", "http://x"), "headers": RaisingMapping(exc)}])
    assert info.value is exc


@pytest.mark.parametrize("exc", [RecursionError("too deep"), ValueError("bad mapping")],
                         ids=["RecursionError", "ValueError"])
def test_ordinary_exceptions_become_the_cause_of_a_router_error(exc: Exception) -> None:
    r = Router([provider("a", "http://127.0.0.1:9/v1")])
    with pytest.raises(InvalidRequest) as info:
        r.chat_completions({**REQUEST, "metadata": RaisingMapping(exc)})
    err = info.value
    assert err.__cause__ is exc
    assert "metadata" in str(err) and type(exc).__name__ in str(err) and str(exc) in str(err)
    with pytest.raises(ConfigError) as cinfo:
        Router([{**provider("a", "http://x"), "headers": RaisingMapping(exc)}])
    assert cinfo.value.__cause__ is exc
    assert "providers[0].headers" in str(cinfo.value) and str(exc) in str(cinfo.value)


# --- 7, 10, 12: config refuses what it would mangle or leak ----------------------

@pytest.mark.parametrize("header", ["Content-Length", "Transfer-Encoding", "Host", "Connection",
                                    "Upgrade", "TE", "Trailer", "Keep-Alive", "Proxy-Authorization"])
def test_framing_and_hop_by_hop_headers_are_config_errors(header: str) -> None:
    with pytest.raises(ConfigError) as info:
        Router([provider("a", "http://127.0.0.1:9/v1", headers={header: "5"})])
    # Named by position (a header name may be a pasted key), and the rule
    # it breaks listed in the schema's own words.
    assert info.value.field == "providers[0].headers.#1"
    assert "frames the message or belongs to one hop" in str(info.value)
    listed = str(info.value).split("(", 1)[1]
    assert ("proxy-*" if header.lower().startswith("proxy-") else header.lower()) in listed


@pytest.mark.parametrize("url", [
    f"https://api.example.com/v1?key={SECRET}",
    f"https://api.example.com/v1#{SECRET}",
    f"api.example.com/v1?key={SECRET}",
    f"ftp://api.example.com/v1?key={SECRET}",
    f"https://user:{SECRET}@api.example.com/v1",
])
def test_a_refused_base_url_never_echoes_its_query_or_credentials(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        Router([provider("a", url)])
    for text in (str(info.value), repr(info.value), info.value.message):
        assert SECRET not in text and "DO-NOT-LEAK" not in text


@pytest.mark.parametrize(("url", "hint"), [
    ("https://api.example.com/v\r\n1", "line break"),
    ("https://api.example.com/\tv1", "tab"),
    ("http:///v1", "no host"),
    ("https://api.example.com/" + "a" * 100_000, "at most 2048"),
])
def test_lenient_base_urls_are_refused(url: str, hint: str) -> None:
    with pytest.raises(ConfigError) as info:
        Router([provider("a", url)])
    assert info.value.field == "providers[0].base_url"
    assert hint in str(info.value)
    assert len(str(info.value)) < 500


# --- 8: typed fields ---------------------------------------------------------------

@pytest.mark.parametrize("body", [{**REQUEST, "stream": 1}, {**REQUEST, "stream": "true"}, {**REQUEST, "model": 4}])
def test_typed_fields_are_checked_before_sending(body: dict[str, Any]) -> None:
    mocks = {"a": {"responses": [{"json": completion("ok")}]}}
    with MockProviders({"mocks": mocks}) as m:
        r = Router([provider("a", m.base_url("a"))])
        with pytest.raises(InvalidRequest):
            r.chat_completions(body)
        assert m.log()["a"] == []


# --- 11: the success shape, exact integers ---------------------------------------

@pytest.mark.parametrize("answer", [
    {"choices": []},
    {"choices": [1, 2]},
    {"choices": [{"index": 0, "finish_reason": "stop"}]},
], ids=["empty", "not-objects", "no-message"])
def test_a_2xx_without_an_answer_is_soft(answer: dict[str, Any]) -> None:
    mocks = {"a": {"responses": [{"json": answer}]}, "b": {"responses": [{"json": completion("from b")}]}}
    with MockProviders({"mocks": mocks}) as m:
        r = Router([provider("a", m.base_url("a")), provider("b", m.base_url("b"))])
        res = r.route(REQUEST)
    assert res.provider == "b"
    assert (res.attempts[0].outcome, res.attempts[0].fault) == ("soft", "undecodable")


def test_large_integers_stay_exact_both_ways() -> None:
    big = 2**70 + 1
    mocks = {"a": {"responses": [{"json": completion("ok", created=big, usage={"prompt_tokens": -(2**65)})}]}}
    with MockProviders({"mocks": mocks}) as m:
        r = Router([provider("a", m.base_url("a"))])
        resp = r.chat_completions({**REQUEST, "seed": big})
        assert m.log()["a"][0]["json"]["seed"] == big
    assert resp["created"] == big and type(resp["created"]) is int
    assert resp["usage"]["prompt_tokens"] == -(2**65)
    assert isinstance(resp["choices"][0]["index"], int)


def test_all_providers_failed_is_still_a_router_error() -> None:
    # The shape checks above fail softly, so all-soft is AllProvidersFailed.
    mocks = {"a": {"responses": [{"json": {"choices": []}}]}}
    with MockProviders({"mocks": mocks}) as m:
        r = Router([provider("a", m.base_url("a"))])
        with pytest.raises(AllProvidersFailed) as info:
            r.chat_completions(REQUEST)
    assert isinstance(info.value, RouterError)
    assert "choices" in str(info.value)
