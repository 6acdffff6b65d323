"""The Worker logs the core's warnings about ROUTER_CONFIG (settings that
have no effect, another tool's key reference) once per isolate, the same
words ``python -m f3dx_router check`` prints."""

from __future__ import annotations

import json
import secrets

from mock_provider import MockProviders
from workerlib import WranglerDev

TOKEN = secrets.token_hex(16)
KEY = f"sk-w-{secrets.token_hex(16)}"
COMPLETION = {
    "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}


def test_config_warnings_are_logged_once_per_isolate() -> None:
    with MockProviders({"mocks": {"a": {"responses": [{"json": COMPLETION}]}}}, loop=True) as m:
        router_config = json.dumps({
            "providers": [
                {"name": "a", "kind": "openai", "base_url": m.base_url("a"), "api_key": KEY, "weight": 2},
                {"name": "b", "kind": "openai", "base_url": m.base_url("a"), "api_key": "${OPENAI_API_KEY}"},
            ],
            "hedge_k": 2,
        })
        with WranglerDev({"ROUTER_CONFIG": router_config, "ROUTER_TOKEN": TOKEN}) as worker:
            for _ in range(3):
                body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
                status, _, reply = worker.post_json("/v1/chat/completions", body, token=TOKEN, timeout=20.0)
                assert status == 200, reply
            # (node prints the object: its strings escape the apostrophe)
            reference = "ROUTER_CONFIG: warning: providers[1].api_key: looks like another tool"
            out = worker.wait_for_output(reference)
    hedge = 'ROUTER_CONFIG: warning: hedge_k: has no effect: the policy is "sequential", not "hedged"'
    weight = 'ROUTER_CONFIG: warning: providers[0].weight: has no effect: the policy is "sequential", not "weighted"'
    for line in (reference, hedge, weight):
        assert out.count(line) == 1, out[-4000:]
    assert KEY not in out and "OPENAI_API_KEY" not in out
