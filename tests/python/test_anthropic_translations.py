"""What an Anthropic deployment carries beyond plain chat, against the mock
providers (loopback only): ``response_format`` as structured outputs or a
forced answer tool (``structured_output``), so the openai SDK's ``parse()``
and ``stream()`` get a parsed object through ``openai_client``, whole and
streamed; the schema check counting Anthropic answers; ``reasoning_effort``
as extended thinking whose text never reaches the caller."""

from __future__ import annotations

import json

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pydantic
import pytest

import f3dx_router
import mock_provider
from f3dx_router import ConfigError, InvalidRequest, Router
from mock_provider import MockProviders

KEY = "sk-ant-test-key-0123456789"
MODEL = "claude-sonnet-4-5"


class Person(pydantic.BaseModel):
    name: str
    age: int
    tags: list[str]


def anthropic_router(m: MockProviders, structured_output: str | None = None, **extra: Any) -> Router:
    deployment: dict[str, Any] = {"provider": "claude"}
    if structured_output is not None:
        deployment["structured_output"] = structured_output
    providers = [{"name": "claude", "kind": "anthropic", "base_url": m.base_url("claude"), "api_key": KEY}]
    return Router(providers, models={MODEL: [deployment]}, **extra)


@contextmanager
def chat_mock() -> Iterator[MockProviders]:
    with MockProviders({"mocks": {"claude": {"bench": {"mode": "chat", "kind": "anthropic"}}}}) as m:
        yield m


def completions(client: Any) -> Any:
    # parse()/stream() left `beta` in later SDKs; either is the same call.
    beta = getattr(getattr(client, "beta", None), "chat", None)
    return client.chat.completions if hasattr(client.chat.completions, "parse") else beta.completions


MESSAGES = [{"role": "user", "content": "Who is Ada?"}]


@pytest.mark.parametrize("mode", ["native", "tool", None])
def test_sdk_parse_returns_a_parsed_object_whole_and_streamed(mode: str | None) -> None:
    with chat_mock() as m:
        client = f3dx_router.openai_client(anthropic_router(m, mode))
        api = completions(client)
        done = api.parse(model=MODEL, messages=MESSAGES, response_format=Person)
        message = done.choices[0].message
        assert isinstance(message.parsed, Person)
        assert (message.parsed.age, message.parsed.tags) == (36, ["mock"])
        assert done.choices[0].finish_reason == "stop"
        assert not message.tool_calls
        with api.stream(model=MODEL, messages=MESSAGES, response_format=Person) as stream:
            final = stream.get_final_completion()
        streamed = final.choices[0].message
        assert isinstance(streamed.parsed, Person) and streamed.parsed == message.parsed
        assert final.choices[0].finish_reason == "stop"
        assert not streamed.tool_calls


@pytest.mark.parametrize("mode", ["native", "tool"])
def test_json_object_answers_json_text(mode: str) -> None:
    with chat_mock() as m:
        r = anthropic_router(m, mode)
        request = {"model": MODEL, "messages": MESSAGES, "response_format": {"type": "json_object"}}
        got = r.chat_completions(request)
        want = {"name": "Ada Lovelace", "age": 36}
        assert json.loads(got["choices"][0]["message"]["content"]) == want
        with r.chat_completions({**request, "stream": True}) as stream:
            text = "".join(c["choices"][0]["delta"].get("content") or "" for c in stream if c["choices"])
        assert json.loads(text) == want


SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
          "required": ["name", "age"], "additionalProperties": False}
REQUEST = {"model": MODEL, "messages": MESSAGES,
           "response_format": {"type": "json_schema", "json_schema": {"name": "person", "schema": SCHEMA}}}


def tool_answer(value: dict[str, Any]) -> dict[str, Any]:
    return {"json": {"id": "msg", "type": "message", "role": "assistant", "model": MODEL,
                     "content": [{"type": "tool_use", "id": "toolu", "name": "f3dx_answer", "input": value}],
                     "stop_reason": "tool_use", "usage": {"input_tokens": 3, "output_tokens": 3}}}


def text_answer(text: str) -> dict[str, Any]:
    return {"json": {"id": "msg", "type": "message", "role": "assistant", "model": MODEL,
                     "content": [{"type": "text", "text": text}],
                     "stop_reason": "end_turn", "usage": {"input_tokens": 3, "output_tokens": 3}}}


@pytest.mark.parametrize(("mode", "good", "bad"), [
    ("tool", tool_answer({"name": "Ada", "age": 36}), tool_answer({"name": "Ada"})),
    ("native", text_answer('{"name": "Ada", "age": 36}'), text_answer('{"name": "Ada", "age": ')),
])
def test_quality_aware_routing_counts_anthropic_answers(mode: str, good: dict, bad: dict) -> None:
    with MockProviders({"mocks": {"claude": {"responses": [good, bad, bad]}}}) as m:
        r = anthropic_router(m, mode, quality={"min_samples": 1, "min_pass_rate": 0.5})
        assert r.route(REQUEST, tenant="acme").schema_valid is True
        (key,) = r.stats()["models"][MODEL][0]["quality"]
        assert (key["samples"], key["pass_rate"], key["state"]) == (1, 1.0, "ok")
        assert r.route(REQUEST, tenant="acme").schema_valid is False
        assert r.route(REQUEST, tenant="acme").schema_valid is False
        (key,) = r.stats()["models"][MODEL][0]["quality"]
    assert (key["tenant"], key["model"], key["samples"]) == ("acme", MODEL, 3)
    assert key["pass_rate"] == pytest.approx(1 / 3, abs=1e-4)  # stats round to 4 places
    assert key["state"] == "excluded"


def test_reasoning_effort_thinks_without_showing_it() -> None:
    with chat_mock() as m:
        r = anthropic_router(m)
        request = {"model": MODEL, "messages": MESSAGES, "reasoning_effort": "medium"}
        got = r.chat_completions(request)
        assert got["choices"][0]["message"] == {"role": "assistant", "content": mock_provider.CHAT_TEXT}
        with r.chat_completions({**request, "stream": True}) as stream:
            chunks = list(stream)
        text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
        assert text == mock_provider.CHAT_TEXT
        assert "reasoning" not in repr(chunks).lower() + repr(got).lower()
        # Structured outputs and thinking go together natively...
        native = r.chat_completions({**REQUEST, "reasoning_effort": "low"})
        assert native["choices"][0]["message"]["content"] == '{"name": "mock", "age": 36}'
        # ...not with the forced answer tool: refused before anything is sent.
        with pytest.raises(InvalidRequest, match="forced tool"):
            anthropic_router(m, "tool").chat_completions({**REQUEST, "reasoning_effort": "low"})


def test_the_answer_tool_and_caller_tools_do_not_mix() -> None:
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    with chat_mock() as m:
        with pytest.raises(InvalidRequest, match="structured_output") as e:
            anthropic_router(m, "tool").chat_completions({**REQUEST, "tools": tools})
        assert KEY not in str(e.value)
        # Natively they go together (the mock answers the schema).
        got = anthropic_router(m, "native").chat_completions({**REQUEST, "tools": tools})
        assert got["choices"][0]["message"]["content"] == '{"name": "mock", "age": 36}'


@pytest.mark.parametrize("value", ["json", "", True, ["tool"]])
def test_a_bad_structured_output_is_a_config_error_naming_its_key_path(value: Any) -> None:
    providers = [{"name": "claude", "kind": "anthropic", "base_url": "http://127.0.0.1:9/v1", "api_key": KEY}]
    with pytest.raises(ConfigError) as e:
        Router(providers, models={MODEL: [{"provider": "claude", "structured_output": value}]})
    assert f'models["{MODEL}"][0].structured_output' in str(e.value)
    assert KEY not in str(e.value)
