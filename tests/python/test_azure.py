"""``kind: "azure"`` (Azure OpenAI) through the Python host against the mock
providers: both request shapes and both auth headers on every way of
calling (sync, async, streamed, ``route``, the openai SDK over
``openai_client``), Azure's content-filter error, bad settings refused
with their key path, and the key kept out of everything printed."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from typing import Any, Callable

import pytest

import f3dx_router
from f3dx_router import ConfigError, HardFailure, Router
from mock_provider import MockProviders

SECRET = "azure-key-DO-NOT-LEAK-0123456789"
MESSAGES = [{"role": "user", "content": "hi"}]
CLASSIC = "/v1/openai/deployments/prod%2Fgpt-4o/chat/completions?api-version=2024-10-21"
V1 = "/v1/openai/v1/chat/completions"


def completion(text: str) -> dict[str, Any]:
    return {"id": "chatcmpl-z", "object": "chat.completion", "created": 1, "model": "gpt-4o",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}


def chunk(choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"id": "chatcmpl-z", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o",
            "choices": choices, **extra}


# An Azure stream as Azure sends it: the prompt's filter results first, in a
# chunk without choices; filter results on each choice and after the finish.
STREAM = {"events": [
    {"data": {"choices": [], "created": 0, "id": "", "model": "", "object": "",
              "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {}}]}},
    {"data": chunk([{"content_filter_results": {}, "delta": {"content": "o", "role": "assistant"},
                     "finish_reason": None, "index": 0}])},
    {"data": chunk([{"content_filter_results": {}, "delta": {"content": "k"}, "finish_reason": None, "index": 0}])},
    {"data": chunk([{"content_filter_results": {}, "delta": {}, "finish_reason": "stop", "index": 0}])},
    {"data": chunk([{"content_filter_offsets": {"check_offset": 0, "start_offset": 0, "end_offset": 2},
                     "content_filter_results": {}, "finish_reason": None, "index": 0}])},
    {"data": "[DONE]"},
]}

CONTENT_FILTER = {"status": 400, "json": {"error": {
    "message": "The response was filtered due to the prompt triggering Azure OpenAI's content management policy.",
    "type": None, "param": "prompt", "code": "content_filter", "status": 400,
    "innererror": {"code": "ResponsibleAIPolicyViolation",
                   "content_filter_result": {"hate": {"filtered": True, "severity": "medium"}}}}}}


def azure(m: MockProviders, name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "kind": "azure", "base_url": m.base_url(name), "api_key": SECRET,
            "timeout_ms": 5000, **extra}


SHAPES = {
    # name: (provider settings, the path sent, the auth header, the header not sent)
    "deployments+api_key": ({"azure_api": "deployments", "api_version": "2024-10-21", "model": "prod/gpt-4o"},
                            CLASSIC, ("api-key", SECRET), "authorization"),
    "v1+bearer": ({"auth": "bearer", "model": "prod/gpt-4o"}, V1, ("authorization", f"Bearer {SECRET}"), "api-key"),
}


def _sync(router: Router) -> str:
    return str(router.chat_completions({"model": "gpt-4o", "messages": MESSAGES})["choices"][0]["message"]["content"])


def _route(router: Router) -> str:
    r = router.route({"model": "gpt-4o", "messages": MESSAGES})
    assert r.provider == "az"
    return str(r.response["choices"][0]["message"]["content"])


def _async(router: Router) -> str:
    async def go() -> Any:
        return await router.achat_completions({"model": "gpt-4o", "messages": MESSAGES})
    return str(asyncio.run(go())["choices"][0]["message"]["content"])


def _stream(router: Router) -> str:
    with router.chat_completions({"model": "gpt-4o", "messages": MESSAGES, "stream": True}) as s:
        chunks = list(s)
    assert "prompt_filter_results" in chunks[0], "Azure's first chunk reaches the caller as it came"
    return "".join(c["choices"][0].get("delta", {}).get("content") or "" for c in chunks if c["choices"])


def _sdk(router: Router) -> str:
    pytest.importorskip("openai")
    client = f3dx_router.openai_client(router)
    reply = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # type: ignore[arg-type]
    return str(reply.choices[0].message.content)


def _sdk_stream(router: Router) -> str:
    pytest.importorskip("openai")
    client = f3dx_router.openai_client(router)
    stream = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)  # type: ignore[arg-type]
    # Azure's last chunk (filter results after the finish) has no delta.
    return "".join(c.choices[0].delta.content or "" for c in stream if c.choices and c.choices[0].delta)


CALLS: dict[str, tuple[Callable[[Router], str], bool]] = {
    "chat_completions": (_sync, False), "route": (_route, False), "achat_completions": (_async, False),
    "stream": (_stream, True), "openai_client": (_sdk, False), "openai_client_stream": (_sdk_stream, True),
}


@pytest.mark.parametrize("call", list(CALLS))
@pytest.mark.parametrize("shape", list(SHAPES))
def test_request_shape_on_every_call_path(shape: str, call: str) -> None:
    settings, path, (auth, value), absent = SHAPES[shape]
    fn, streamed = CALLS[call]
    answer = STREAM if streamed else {"json": completion("ok")}
    with MockProviders({"mocks": {"az": {"responses": [answer]}}}) as m:
        router = Router([azure(m, "az", **settings)])
        assert fn(router) == "ok"
        (record,) = m.log()["az"]
    assert record["path"] == path
    assert record["headers"][auth] == value
    assert absent not in record["headers"]
    assert record["json"]["model"] == "prod/gpt-4o"


def test_content_filter_error_is_a_content_policy_failure_without_the_key() -> None:
    with MockProviders({"mocks": {"az": {"responses": [CONTENT_FILTER]}, "b": {"responses": []}}}) as m:
        b = {"name": "b", "kind": "openai", "base_url": m.base_url("b"), "api_key": SECRET}
        router = Router([azure(m, "az"), b])
        with pytest.raises(HardFailure) as info:
            router.chat_completions({"model": "gpt-4o", "messages": MESSAGES})
        assert m.log()["b"] == [], "a content-policy error is not replayed elsewhere"
    e = info.value
    assert e.status == 400 and e.provider == "az"
    (attempt,) = e.attempts
    assert attempt.fault == "content_policy"
    assert "content management policy" in str(e)
    for text in (str(e), repr(e), repr(router), repr(attempt), attempt.detail):
        assert SECRET not in text


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"azure_api": "deployments"}, "providers[0].api_version"),
        ({"azure_api": "deployments", "api_version": "2024-10-21&key=x"}, "providers[0].api_version"),
        ({"api_version": "2024-10-21"}, "providers[0].api_version"),
        ({"azure_api": "classic"}, "providers[0].azure_api"),
        ({"auth": "entra"}, "providers[0].auth"),
        ({"base_url": "https://r.openai.azure.com/openai/v1"}, "providers[0].base_url"),
        ({"base_url": "https://r.openai.azure.com/?api-version=2024-10-21"}, "providers[0].base_url"),
        ({"kind": "openai", "auth": "bearer"}, "providers[0].auth"),
    ],
)
def test_bad_azure_settings_name_the_key(settings: dict[str, Any], field: str) -> None:
    provider = {"name": "az", "kind": "azure", "base_url": "https://r.openai.azure.com", "api_key": SECRET, **settings}
    with pytest.raises(ConfigError) as info:
        Router([provider])
    assert info.value.field == field
    assert SECRET not in str(info.value)


def test_every_azure_problem_at_once_in_check(tmp_path: Any) -> None:
    config = {"providers": [
        {"name": "a", "kind": "azure", "base_url": "https://r.openai.azure.com", "api_key_env": "AZ_KEY",
         "azure_api": "deployments", "api_version": "bad version", "auth": "entra", "timeout_ms": -1},
        {"name": "b", "kind": "openai", "base_url": "https://api.openai.com/v1", "api_key_env": "B_KEY",
         "azure_api": "v1"},
    ]}
    path = tmp_path / "router.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "f3dx_router", "check", "--no-env", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    for field in ("providers[0].api_version", "providers[0].auth", "providers[0].timeout_ms",
                  "providers[1].azure_api"):
        assert field in proc.stderr, proc.stderr


def test_check_and_repr_show_the_azure_settings(tmp_path: Any) -> None:
    provider = {"name": "az", "kind": "azure", "base_url": "https://r.openai.azure.com", "api_key": SECRET,
                "azure_api": "deployments", "api_version": "2024-10-21", "auth": "bearer"}
    text = repr(Router([provider]))
    assert "'azure_api': 'deployments'" in text and "'api_version': '2024-10-21'" in text
    assert "'auth': 'bearer'" in text and SECRET not in text
    path = tmp_path / "router.json"
    path.write_text(json.dumps({"providers": [provider]}), encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "f3dx_router", "check", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    line = next(x for x in proc.stdout.splitlines() if x.strip().startswith("az "))
    assert "azure" in line and "azure_api=deployments" in line and "api_version=2024-10-21" in line
    assert "auth=bearer" in line and SECRET not in proc.stdout
    # The v1 defaults are shown too: they decide the URL.
    path.write_text(json.dumps({"providers": [{**provider, "azure_api": "v1", "api_version": None,
                                               "auth": None}]}), encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "f3dx_router", "check", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "azure_api=v1" in proc.stdout and "auth=api_key" in proc.stdout
    assert "api_version=" not in proc.stdout
