"""What a streaming upstream can make the router hold, natively: a flood of
events without output before the commit point is bounded by the provider's
`max_body_bytes` and its `timeout_ms`, and the text kept for a streamed
answer's schema check by `max_body_bytes`. Each call runs in a subprocess,
whose peak RSS (VmHWM) it reports before it exits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fault_server import FaultServer, directive
from mock_provider import MockProviders

TESTS = Path(__file__).resolve().parents[1]
MIB = 1 << 20
PEAK_RSS_BOUND = 300 * MIB

# One streamed call through the router, read to its end, in a process of its
# own: argv[1] is the router's providers and argv[2] the request (JSON). Prints
# one JSON line: the outcome, the attempts, the time the call took, the text
# received, the quality keys of each provider and the process's peak RSS.
CALL_SCRIPT = r"""
import json, sys, time
from f3dx_router import Router, RouterError

providers, request = json.loads(sys.argv[1]), json.loads(sys.argv[2])
router = Router(providers)
out = {"text_bytes": 0, "chunks": 0}
start = time.monotonic()
try:
    with router.chat_completions(request) as stream:
        for chunk in stream:
            out["chunks"] += 1
            for choice in chunk["choices"]:
                out["text_bytes"] += len(choice["delta"].get("content") or "")
        out["provider"] = stream.provider
        attempts = stream.attempts
except RouterError as e:
    out["error"] = type(e).__name__
    attempts = e.attempts
out["elapsed_s"] = time.monotonic() - start
out["attempts"] = [[a.provider, a.outcome, a.fault] for a in attempts]
out["quality"] = {p: s.get("quality", []) for p, s in router.stats()["providers"].items()}
with open("/proc/self/status", encoding="ascii") as f:
    out["peak_rss"] = next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmHWM:"))
print(json.dumps(out))
"""


def run_call(providers: list[dict[str, Any]], request: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", CALL_SCRIPT, json.dumps(providers), json.dumps(request)],
        capture_output=True, text=True, timeout=timeout_s,
        env={**os.environ, "PYTHONPATH": str(TESTS)},
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def provider(name: str, url: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "kind": "openai", "base_url": url, "api_key": "sk-test-stream-limits", **extra}


def streamed_answer(text: str) -> dict[str, Any]:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"data": {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o",
                         "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}}
    return {"events": [chunk({"role": "assistant", "content": ""}), chunk({"content": text}),
                       chunk({}, "stop"), {"data": "[DONE]"}]}


def request(flood: dict[str, Any], **extra: Any) -> dict[str, Any]:
    text = directive("flood", flood={"fault": "sse_flood", **flood})
    return {"model": "gpt-4o", "messages": [{"role": "user", "content": text}], "stream": True, **extra}


@pytest.mark.parametrize("delta", [{"role": "assistant"}, {}], ids=["role_deltas", "empty_deltas"])
def test_a_flood_without_output_fails_over_with_bounded_memory(delta: dict[str, Any]) -> None:
    # The default max_body_bytes (32 MiB) bounds what the attempt may hold
    # before its first output: it fails over long before its timeout, the
    # process far under what 8 s of this flood used to take (741 MB).
    timeout_ms = 8000
    mocks = {"mocks": {"b": {"responses": [streamed_answer("from b")]}}}
    with FaultServer(["flood"]) as faults, MockProviders(mocks) as m:
        providers = [provider("a", faults.base_url("flood"), timeout_ms=timeout_ms),
                     provider("b", m.base_url("b"))]
        out = run_call(providers, request({"delta": delta, "seconds": 20}), timeout_s=60)
        (flood,) = faults.log("flood")
    assert out.get("provider") == "b", out
    assert out["attempts"] == [["a", "soft", "body_too_large"], ["b", "success", None]], out
    assert out["elapsed_s"] < timeout_ms / 1000 + 1, out
    assert out["peak_rss"] < PEAK_RSS_BOUND, out
    # The flood was larger than the cap: it was cut, not finished.
    assert flood["sent_bytes"] >= 32 * MIB and flood["disconnected_early"], flood


def test_a_flood_without_output_ends_at_timeout_ms_whatever_the_cap() -> None:
    # With a cap the flood does not reach in time, the deadline ends it.
    timeout_ms = 2000
    mocks = {"mocks": {"b": {"responses": [streamed_answer("from b")]}}}
    with FaultServer(["flood"]) as faults, MockProviders(mocks) as m:
        providers = [provider("a", faults.base_url("flood"), timeout_ms=timeout_ms, max_body_bytes=1 << 30),
                     provider("b", m.base_url("b"))]
        out = run_call(providers, request({"seconds": 20}), timeout_s=60)
    assert out.get("provider") == "b", out
    assert out["attempts"] == [["a", "soft", "timeout"], ["b", "success", None]], out
    assert timeout_ms / 1000 <= out["elapsed_s"] < timeout_ms / 1000 + 1, out


def test_the_text_kept_for_a_streamed_schema_check_is_capped() -> None:
    # 320 MiB of text under a json_schema response_format: every chunk
    # reaches the caller, but the router keeps at most max_body_bytes
    # (32 MiB) of it for the check; past that the answer fails its check.
    schema = {"type": "json_schema", "json_schema": {"name": "s", "schema": {"type": "object"}}}
    flood = {"delta": {"content": "x" * 16384}, "max_bytes": 320 * MIB, "seconds": 20, "finish": True}
    with FaultServer(["flood"]) as faults:
        providers = [provider("a", faults.base_url("flood"), timeout_ms=5000)]
        out = run_call(providers, request(flood, response_format=schema), timeout_s=90)
        (sent,) = faults.log("flood")
    assert out.get("provider") == "a", out
    assert sent["sent_bytes"] >= 300 * MIB, sent  # all of it, not cut short by the time bound
    assert out["text_bytes"] >= 290 * MIB, out
    assert out["peak_rss"] < PEAK_RSS_BOUND, out
    (key,) = out["quality"]["a"]
    assert (key["samples"], key["pass_rate"]) == (1, 0.0), key
