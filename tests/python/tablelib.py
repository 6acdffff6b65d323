"""The routing table's acceptance scenario (issue 18, "Done when"), shared by
every host's test: one config of three model groups over three mock
providers, and scenarios that say what each mock must receive.

- ``gpt-4o``: OpenAI (as ``gpt-4o-2024-08-06``) then Anthropic (as
  ``claude-sonnet-4-5``);
- ``gpt-4o-mini``: OpenAI (the group's name) then Groq (as
  ``llama-3.3-70b-versatile``);
- ``claude-*``: Anthropic, sent the caller's model.

A host runs a scenario through a ``Host`` (``call(model)`` and
``stats()``); ``run`` plays its steps against fresh mocks and checks, after
each, the model names every mock received (the mocks' logs: what was
really sent), the attempts' groups when the host reports them, and the
stats the step names. Mocks answer from scripts without ``--loop``: one
request more than a scenario expects gets a 500 and fails it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from mock_provider import MockProviders

#: A secret-looking key: no error, repr, log or answer may show it.
SECRET = "sk-live-TABLE0123456789abcdefghijklmnop"

MODELS: dict[str, Any] = {
    "gpt-4o": [
        {"provider": "openai", "model": "gpt-4o-2024-08-06"},
        {"provider": "anthropic", "model": "claude-sonnet-4-5"},
    ],
    "gpt-4o-mini": [{"provider": "openai"}, {"provider": "groq", "model": "llama-3.3-70b-versatile"}],
    "claude-*": [{"provider": "anthropic"}],
}
KINDS = {"openai": "openai", "anthropic": "anthropic", "groq": "openai"}
MESSAGES = [{"role": "user", "content": "hi"}]


def completion(model: str) -> dict[str, Any]:
    return {"json": {
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }}


def message(model: str) -> dict[str, Any]:
    """An Anthropic Messages answer."""
    return {"json": {
        "id": "msg_1", "type": "message", "role": "assistant", "model": model,
        "content": [{"type": "text", "text": "ok"}], "stop_reason": "end_turn",
        "usage": {"input_tokens": 1, "output_tokens": 1},
    }}


#: A 429 with a Retry-After that outlasts the test: the deployment cools.
BUSY = {"status": 429, "headers": {"retry-after": "60"},
        "json": {"error": {"message": "rate limited", "type": "rate_limit_error"}}}


def config(m: MockProviders, **extra: Any) -> dict[str, Any]:
    """The three groups over the mocks, plus ``extra`` router-level keys."""
    providers = [
        {"name": name, "kind": kind, "base_url": m.base_url(name), "api_key": SECRET, "timeout_ms": 5000}
        for name, kind in KINDS.items()
    ]
    return {"providers": providers, "models": copy.deepcopy(MODELS), **extra}


@dataclass
class Reply:
    """What a host reports of one call: whether it answered, and its
    attempts as ``(provider, group, outcome)`` when the host tells them."""

    ok: bool
    attempts: list[tuple[str, str | None, str]] | None = None


class Host(Protocol):
    def call(self, model: str) -> Reply: ...

    def stats(self) -> dict[str, Any]: ...


def entry(stats: dict[str, Any], group: str, provider: str) -> dict[str, Any]:
    """The stats of ``provider``'s deployment in ``group``."""
    (found,) = [d for d in stats["models"][group] if d["provider"] == provider]
    return found


@dataclass
class Step:
    """One call, and what must hold after it."""

    model: str
    ok: bool
    #: Model names each mock has received so far (all of them, in order).
    sent: dict[str, list[str]]
    #: The attempts as (provider, group, outcome), when the host reports them.
    attempts: list[tuple[str, str | None, str]] | None = None
    #: A check of the stats after the call.
    stats: Callable[[dict[str, Any]], None] | None = None


@dataclass
class Scenario:
    name: str
    mocks: dict[str, Any]
    steps: list[Step]
    extra: dict[str, Any] = field(default_factory=dict)


def _cooling_only_4o(stats: dict[str, Any]) -> None:
    # The 429 came for gpt-4o on OpenAI: gpt-4o-mini on OpenAI stays usable.
    assert entry(stats, "gpt-4o", "openai")["state"] == "cooling"
    assert entry(stats, "gpt-4o-mini", "openai")["state"] == "healthy"
    assert entry(stats, "gpt-4o-mini", "openai")["requests"] == 0


def _refused_counts_everywhere(stats: dict[str, Any]) -> None:
    # A refused connection is the provider's: both OpenAI deployments count it.
    assert entry(stats, "gpt-4o", "openai")["soft_failures"] == 1
    assert entry(stats, "gpt-4o-mini", "openai")["soft_failures"] == 1
    assert entry(stats, "gpt-4o-mini", "groq")["requests"] == 0
    assert entry(stats, "gpt-4o", "anthropic")["successes"] == 1
    assert entry(stats, "claude-*", "anthropic")["requests"] == 0


def _stats_name_models(stats: dict[str, Any]) -> None:
    assert list(stats["models"]) == ["gpt-4o", "gpt-4o-mini", "claude-*"] and "providers" not in stats
    assert [(d["provider"], d["model"]) for d in stats["models"]["gpt-4o"]] == [
        ("openai", "gpt-4o-2024-08-06"), ("anthropic", "claude-sonnet-4-5")]
    assert [(d["provider"], d["model"]) for d in stats["models"]["gpt-4o-mini"]] == [
        ("openai", "gpt-4o-mini"), ("groq", "llama-3.3-70b-versatile")]
    assert [(d["provider"], d["model"]) for d in stats["models"]["claude-*"]] == [("anthropic", None)]
    assert entry(stats, "gpt-4o", "openai")["successes"] == 1
    assert entry(stats, "gpt-4o-mini", "openai")["successes"] == 1


SCENARIOS = [
    Scenario(
        "each call reaches its own group, with each provider's model name",
        {"openai": {"responses": [completion("gpt-4o-2024-08-06"), completion("gpt-4o-mini")]},
         "anthropic": {"responses": [message("claude-sonnet-4-5"), message("claude-haiku-4-5")]},
         "groq": {"responses": []}},
        [
            Step("gpt-4o", True, {"openai": ["gpt-4o-2024-08-06"], "anthropic": [], "groq": []},
                 [("openai", "gpt-4o", "success")]),
            Step("gpt-4o-mini", True, {"openai": ["gpt-4o-2024-08-06", "gpt-4o-mini"], "anthropic": [], "groq": []},
                 [("openai", "gpt-4o-mini", "success")]),
            Step("claude-sonnet-4-5", True,
                 {"openai": ["gpt-4o-2024-08-06", "gpt-4o-mini"], "anthropic": ["claude-sonnet-4-5"], "groq": []},
                 [("anthropic", "claude-*", "success")]),
            Step("claude-haiku-4-5", True,
                 {"openai": ["gpt-4o-2024-08-06", "gpt-4o-mini"],
                  "anthropic": ["claude-sonnet-4-5", "claude-haiku-4-5"], "groq": []},
                 [("anthropic", "claude-*", "success")]),
            # A model no group matches: refused, nothing sent.
            Step("o3-mini", False,
                 {"openai": ["gpt-4o-2024-08-06", "gpt-4o-mini"],
                  "anthropic": ["claude-sonnet-4-5", "claude-haiku-4-5"], "groq": []},
                 [], _stats_name_models),
        ],
    ),
    Scenario(
        "a busy gpt-4o-mini stays in its group without a fallback",
        {"openai": {"responses": [BUSY]}, "groq": {"responses": [BUSY]}, "anthropic": {"responses": []}},
        [
            Step("gpt-4o-mini", False,
                 {"openai": ["gpt-4o-mini"], "groq": ["llama-3.3-70b-versatile"], "anthropic": []},
                 [("openai", "gpt-4o-mini", "soft"), ("groq", "gpt-4o-mini", "soft")]),
        ],
    ),
    Scenario(
        "a busy gpt-4o-mini falls back to gpt-4o when fallbacks say so, with gpt-4o's model names",
        {"openai": {"responses": [BUSY, completion("gpt-4o-2024-08-06")]}, "groq": {"responses": [BUSY]},
         "anthropic": {"responses": []}},
        [
            Step("gpt-4o-mini", True,
                 {"openai": ["gpt-4o-mini", "gpt-4o-2024-08-06"], "groq": ["llama-3.3-70b-versatile"],
                  "anthropic": []},
                 [("openai", "gpt-4o-mini", "soft"), ("groq", "gpt-4o-mini", "soft"),
                  ("openai", "gpt-4o", "success")]),
        ],
        extra={"fallbacks": {"gpt-4o-mini": ["gpt-4o"]}},
    ),
    Scenario(
        "a 429 for gpt-4o on OpenAI does not cool gpt-4o-mini on OpenAI",
        {"openai": {"responses": [BUSY, completion("gpt-4o-mini")]},
         "anthropic": {"responses": [message("claude-sonnet-4-5")]}, "groq": {"responses": []}},
        [
            Step("gpt-4o", True, {"openai": ["gpt-4o-2024-08-06"], "anthropic": ["claude-sonnet-4-5"], "groq": []},
                 [("openai", "gpt-4o", "soft"), ("anthropic", "gpt-4o", "success")], _cooling_only_4o),
            Step("gpt-4o-mini", True,
                 {"openai": ["gpt-4o-2024-08-06", "gpt-4o-mini"], "anthropic": ["claude-sonnet-4-5"], "groq": []},
                 [("openai", "gpt-4o-mini", "success")]),
        ],
    ),
    Scenario(
        "a refused connection counts against every deployment of the provider",
        {"openai": {"refuse": True}, "anthropic": {"responses": [message("claude-sonnet-4-5")]},
         "groq": {"responses": []}},
        [
            Step("gpt-4o", True, {"openai": [], "anthropic": ["claude-sonnet-4-5"], "groq": []},
                 [("openai", "gpt-4o", "soft"), ("anthropic", "gpt-4o", "success")], _refused_counts_everywhere),
        ],
    ),
]


def sent_models(m: MockProviders) -> dict[str, list[str]]:
    """The ``model`` of every request each mock received, in order."""
    log = m.log()
    return {name: [r["json"]["model"] for r in log.get(name, [])] for name in KINDS}


def run(scenario: Scenario, m: MockProviders, host: Host) -> None:
    """Play ``scenario`` on ``host`` (built from ``config(m, **scenario.extra)``)."""
    for i, step in enumerate(scenario.steps):
        where = f"{scenario.name}, step {i} ({step.model})"
        reply = host.call(step.model)
        assert reply.ok == step.ok, where
        assert sent_models(m) == step.sent, where
        if reply.attempts is not None and step.attempts is not None:
            assert reply.attempts == step.attempts, where
        if step.stats is not None:
            stats = host.stats()
            step.stats(stats)


# -- bad tables -----------------------------------------------------------------------


def bad_config(models: Any, extra: dict[str, Any]) -> dict[str, Any]:
    cfg: dict[str, Any] = {"providers": [{"name": "openai", "kind": "openai", "base_url": "http://127.0.0.1:9/v1",
                                          "api_key": SECRET}], **extra}
    if models is not None:
        cfg["models"] = models
    return cfg


#: Every bad case at once (each in a group of its own): the Worker test
#: refuses the same config with the same lines.
def all_bad_config() -> dict[str, Any]:
    return bad_config({
        "gpt-4o": [{"provider": "openai"}, {"provider": "azure", "context_window": 0}],
        "gpt-4o-mini": [],
        "claude-*": [{"provider": "openai"}],
        "*-sonnet": [{"provider": "openai", "bogus": 1}],
        "o3": {"deployments": [{"provider": "openai"}], "hedge_k": "two"},
        "a": [{"provider": "openai"}],
        "b": [{"provider": "openai"}],
    }, {"fallbacks": {"a": ["b"], "b": ["a"], "o3": ["o4"]}})
