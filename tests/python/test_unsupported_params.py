"""What each provider kind can carry (issue 25): a request parameter an
Anthropic deployment cannot carry (``seed``, ``logprobs``) under
``unsupported_params``, on the Python host and on the standalone Worker,
against the mock providers. ``"error"`` (the default) skips that deployment,
with nothing sent to it and the call's record saying why; ``"drop"`` sends
the request without the parameter and the attempt records it; when no
deployment can carry it, the call is an ``InvalidRequest`` naming it, with
nothing sent."""

from __future__ import annotations

import json
import logging
import pickle
import secrets
from typing import Any

import pytest

from f3dx_router import ConfigError, InvalidRequest, Router
from mock_provider import MockProviders
from vectorrun import parse_params_line
from workerlib import WranglerDev, parse_trace

SECRET = "sk-live-PARAMS0123456789abcdefghijklmn"
MESSAGES = [{"role": "user", "content": "hi"}]
REQUEST = {"model": "mixed", "messages": MESSAGES, "seed": 7, "logprobs": True}


def completion() -> dict[str, Any]:
    return {"json": {
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "from openai"},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }}


def message() -> dict[str, Any]:
    return {"json": {
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
        "content": [{"type": "text", "text": "from claude"}], "stop_reason": "end_turn",
        "usage": {"input_tokens": 1, "output_tokens": 1},
    }}


#: Three groups over an OpenAI and an Anthropic mock: "mixed" (Anthropic
#: first, the default "error"), "dropping" (the same, with "drop"), and
#: "claude" (Anthropic only).
MODELS: dict[str, Any] = {
    "mixed": [{"provider": "claude", "model": "claude-x"}, {"provider": "openai", "model": "gpt-4o"}],
    "dropping": {"deployments": [{"provider": "claude", "model": "claude-x"},
                                 {"provider": "openai", "model": "gpt-4o"}],
                 "unsupported_params": "drop"},
    "claude": [{"provider": "claude", "model": "claude-x"}],
}


def mocks(openai: int, claude: int) -> MockProviders:
    return MockProviders({"mocks": {"openai": {"responses": [completion()] * openai},
                                    "claude": {"responses": [message()] * claude}}})


def providers(m: MockProviders) -> list[dict[str, Any]]:
    return [{"name": "openai", "kind": "openai", "base_url": m.base_url("openai"), "api_key": SECRET},
            {"name": "claude", "kind": "anthropic", "base_url": m.base_url("claude"), "api_key": SECRET}]


def received(m: MockProviders) -> dict[str, list[dict[str, Any]]]:
    return {name: [r["json"] for r in records] for name, records in m.log().items()}


# -- the Python host ---------------------------------------------------------------


def test_error_skips_the_deployment_that_cannot_carry() -> None:
    with mocks(openai=1, claude=0) as m:
        router = Router(providers(m), models=MODELS)
        result = router.route(REQUEST)
        assert result.provider == "openai"
        assert [(a.provider, a.dropped) for a in result.attempts] == [("openai", [])]
        assert result.skipped == [{"provider": "claude", "group": "mixed", "model": "claude-x",
                                   "reason": "unsupported_params", "params": ["seed", "logprobs"]}]
        sent = received(m)
        assert sent["claude"] == []
        assert sent["openai"][0]["seed"] == 7 and sent["openai"][0]["logprobs"] is True
        # explain says the same, before any call.
        plan = router.explain(REQUEST)
        assert [p["provider"] for p in plan["tried"]] == ["openai"]
        (out,) = plan["left_out"]
        assert (out["provider"], out["reason"], out["params"]) == ("claude", "unsupported_params",
                                                                   ["seed", "logprobs"])


def test_drop_sends_without_and_records_it(caplog: pytest.LogCaptureFixture) -> None:
    with mocks(openai=0, claude=1) as m:
        router = Router(providers(m), models=MODELS)
        with caplog.at_level(logging.DEBUG, logger="f3dx_router"):
            result = router.route({**REQUEST, "model": "dropping"})
        assert result.provider == "claude"
        assert result.skipped == []
        (attempt,) = result.attempts
        assert attempt.dropped == ["seed", "logprobs"]
        assert 'dropped=["seed", "logprobs"]' in repr(attempt)
        assert pickle.loads(pickle.dumps(attempt)).dropped == ["seed", "logprobs"]
        sent = received(m)["claude"][0]
        assert "seed" not in sent and "logprobs" not in sent and sent["model"] == "claude-x"
        lines = [r for r in caplog.records if "unsupported parameters" in r.getMessage()]
        assert len(lines) == 1, [r.getMessage() for r in caplog.records]
        assert lines[0].levelno == logging.DEBUG
        assert "without seed, logprobs" in lines[0].getMessage()
        assert lines[0].dropped == [("claude", "dropping", ["seed", "logprobs"])]  # type: ignore[attr-defined]
        assert SECRET not in caplog.text
        plan = router.explain({**REQUEST, "model": "dropping"})
        assert [(p["provider"], p.get("dropped")) for p in plan["tried"]] == [
            ("claude", ["seed", "logprobs"]), ("openai", None)]


def test_no_deployment_can_carry_it_is_an_invalid_request() -> None:
    with mocks(openai=0, claude=0) as m:
        router = Router(providers(m), models=MODELS)
        with pytest.raises(InvalidRequest) as raised:
            router.route({"model": "claude", "messages": MESSAGES, "seed": 7})
        e = raised.value
        assert "`seed`" in str(e) and '"claude"' in str(e) and "unsupported_params" in str(e)
        assert e.attempts == []
        assert e.skipped == [{"provider": "claude", "group": "claude", "model": "claude-x",
                              "reason": "unsupported_params", "params": ["seed"]}]
        assert pickle.loads(pickle.dumps(e)).skipped == e.skipped
        with pytest.raises(InvalidRequest, match="`seed`"):
            router.explain({"model": "claude", "messages": MESSAGES, "seed": 7})
        assert received(m) == {"openai": [], "claude": []}
        assert SECRET not in str(e)


def test_values_that_ask_for_nothing_go_to_anthropic() -> None:
    with mocks(openai=0, claude=1) as m:
        router = Router(providers(m), models=MODELS)
        result = router.route({"model": "claude", "messages": MESSAGES, "n": 1, "logprobs": False, "seed": None})
        assert result.provider == "claude" and result.skipped == []


def test_a_bad_value_is_a_config_error_naming_its_key_path() -> None:
    with mocks(openai=0, claude=0) as m:
        with pytest.raises(ConfigError) as raised:
            Router(providers(m), unsupported_params="ignore",  # type: ignore[arg-type]
                   models={"g": [{"provider": "openai", "unsupported_params": "Drop"}]})
        message = str(raised.value)
        assert "unsupported_params" in message and 'models["g"][0].unsupported_params' in message
        assert SECRET not in message


# -- the standalone Worker ---------------------------------------------------------

TOKEN = secrets.token_hex(16)


def test_on_the_worker() -> None:
    with mocks(openai=1, claude=1) as m:
        config = {"providers": providers(m), "models": MODELS}
        with WranglerDev({"ROUTER_CONFIG": json.dumps(config), "ROUTER_TOKEN": TOKEN}) as worker:
            # "error": skipped, with nothing sent to it.
            status, headers, reply = worker.post_json("/v1/chat/completions", REQUEST, token=TOKEN)
            assert status == 200, reply
            assert headers["x-f3dx-provider"] == "openai"
            assert [a["provider"] for a in parse_trace(headers.get("x-f3dx-trace"))] == ["openai"]
            assert parse_params_line(headers.get("x-f3dx-skipped")) == [("claude", "mixed", ["seed", "logprobs"])]
            assert "x-f3dx-dropped" not in headers
            status, _, plan = worker.post_json("/explain", REQUEST, token=TOKEN)
            assert status == 200
            assert [(p["provider"], p["reason"], p.get("params")) for p in plan["left_out"]] == [
                ("claude", "unsupported_params", ["seed", "logprobs"])]
            # "drop": sent without, recorded.
            status, headers, reply = worker.post_json("/v1/chat/completions", {**REQUEST, "model": "dropping"},
                                                      token=TOKEN)
            assert status == 200, reply
            assert headers["x-f3dx-provider"] == "claude"
            assert parse_params_line(headers.get("x-f3dx-dropped")) == [("claude", "dropping", ["seed", "logprobs"])]
            assert "x-f3dx-skipped" not in headers
            # None can carry it: a 400 naming it, nothing sent.
            status, headers, reply = worker.post_json(
                "/v1/chat/completions", {"model": "claude", "messages": MESSAGES, "seed": 7}, token=TOKEN)
            assert status == 400
            assert reply["error"]["code"] == "invalid_request" and "`seed`" in reply["error"]["message"]
            assert headers["x-f3dx-attempts"] == "0"
            sent = received(m)
            assert len(sent["openai"]) == 1 and len(sent["claude"]) == 1
            assert "seed" not in sent["claude"][0] and sent["openai"][0]["seed"] == 7
            assert SECRET not in json.dumps(reply)
