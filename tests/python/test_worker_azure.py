"""``kind: "azure"`` on the standalone Worker (``wrangler dev``) against the
mock providers, beyond the shared vectors (which check the request shapes,
errors and streams on all three runners): /healthz names the kind, the
Worker's answer and trace never carry the key, and bad Azure settings in
ROUTER_CONFIG are a 500 naming each key path, without the values."""

from __future__ import annotations

import json
import secrets

from mock_provider import MockProviders
from workerlib import WranglerDev

TOKEN = secrets.token_hex(16)
KEY = f"az-{secrets.token_hex(16)}"
COMPLETION = {
    "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}
BODY = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}


def test_azure_provider_on_the_worker() -> None:
    with MockProviders({"mocks": {"az": {"responses": [{"json": COMPLETION}]}}}) as m:
        config = {"providers": [{"name": "az", "kind": "azure", "base_url": m.base_url("az"), "api_key": KEY,
                                 "azure_api": "deployments", "api_version": "2024-10-21", "model": "prod"}]}
        with WranglerDev({"ROUTER_CONFIG": json.dumps(config), "ROUTER_TOKEN": TOKEN}) as worker:
            status, _, raw = worker.request("GET", "/healthz", timeout=20.0)
            assert status == 200, raw
            assert json.loads(raw)["providers"][0]["kind"] == "azure"
            status, headers, reply = worker.post_json("/v1/chat/completions", BODY, token=TOKEN, timeout=20.0)
            assert status == 200, reply
            assert reply["choices"][0]["message"]["content"] == "ok"
            assert KEY not in json.dumps(reply) and KEY not in json.dumps(dict(headers))
        (record,) = m.log()["az"]
    assert record["path"] == "/v1/openai/deployments/prod/chat/completions?api-version=2024-10-21"
    assert record["headers"]["api-key"] == KEY and "authorization" not in record["headers"]


def test_bad_azure_settings_are_a_500_naming_each_key() -> None:
    config = {"providers": [
        {"name": "az", "kind": "azure", "base_url": "https://r.openai.azure.com", "api_key": KEY,
         "azure_api": "deployments", "api_version": f"{KEY}&x", "auth": "entra"},
        {"name": "b", "kind": "openai", "base_url": "https://api.openai.com/v1", "api_key": KEY, "auth": "bearer"},
    ]}
    with WranglerDev({"ROUTER_CONFIG": json.dumps(config), "ROUTER_TOKEN": TOKEN}) as worker:
        status, _, reply = worker.post_json("/v1/chat/completions", BODY, token=TOKEN, timeout=20.0)
    assert status == 500
    message = reply["error"]["message"]
    for field in ("providers[0].api_version", "providers[0].auth", "providers[1].auth"):
        assert field in message, message
    assert KEY not in message
