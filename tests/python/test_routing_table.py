"""The routing table in the Python package (issue 18): the acceptance
scenario (tablelib.py) through ``chat_completions``, ``route`` and the
openai SDK (``openai_client``); a bad table refused alike by ``Router(...)``,
``Router.from_file`` and ``python -m f3dx_router check``, every error at
once with its key path, never the key; the table in ``repr``, ``check``'s
report, ``stats()``, ``format_stats``, the attempts and the logs."""

from __future__ import annotations

import contextlib
import io
import json
import logging
from pathlib import Path
from typing import Any

import pytest

import f3dx_router
from f3dx_router import AllProvidersFailed, ConfigError, InvalidRequest, Router, RouterError
from f3dx_router import __main__ as cli
from mock_provider import MockProviders
from tablelib import MESSAGES, SCENARIOS, SECRET, Reply, Scenario, all_bad_config, bad_config, config, run

# -- the acceptance scenario on the Python host ----------------------------------


def _attempts(attempts: list[Any]) -> list[tuple[str, str | None, str]]:
    return [(a.provider, a.group, a.outcome) for a in attempts]


class RouteHost:
    """``Router.route``: the answer with its attempts."""

    def __init__(self, router: Router) -> None:
        self.router = router

    def call(self, model: str) -> Reply:
        try:
            result = self.router.route({"model": model, "messages": MESSAGES})
        except RouterError as e:
            return Reply(False, _attempts(e.attempts))
        return Reply(True, _attempts(result.attempts))

    def stats(self) -> dict[str, Any]:
        return dict(self.router.stats())


class ChatHost(RouteHost):
    """``Router.chat_completions``: the answer alone (the attempts of a
    failure only)."""

    def call(self, model: str) -> Reply:
        try:
            response = self.router.chat_completions({"model": model, "messages": MESSAGES})
        except (InvalidRequest, AllProvidersFailed) as e:
            return Reply(False, _attempts(e.attempts))
        assert response["choices"][0]["message"]["content"] == "ok"
        return Reply(True)


class SdkHost(RouteHost):
    """The openai SDK over the router (``openai_client``)."""

    def __init__(self, router: Router) -> None:
        super().__init__(router)
        self.client = f3dx_router.openai_client(router)

    def call(self, model: str) -> Reply:
        import openai

        try:
            reply = self.client.chat.completions.create(model=model, messages=MESSAGES)  # type: ignore[arg-type]
        except openai.APIStatusError as e:
            assert SECRET not in str(e.body)
            return Reply(False)
        assert reply.choices[0].message.content == "ok"
        return Reply(True)


HOSTS = {"route": RouteHost, "chat_completions": ChatHost, "openai_client": SdkHost}


@pytest.mark.parametrize("host", list(HOSTS))
@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_acceptance_scenario(scenario: Scenario, host: str) -> None:
    if host == "openai_client":
        pytest.importorskip("openai")
    with MockProviders({"mocks": scenario.mocks}) as m:
        cfg = config(m, **scenario.extra)
        router = Router(cfg.pop("providers"), **cfg)
        run(scenario, m, HOSTS[host](router))


def test_cooldowns_are_per_deployment() -> None:
    # The 429 scenario's first step, read through cooldowns(): only the
    # deployment that got the 429 cools.
    scenario = next(s for s in SCENARIOS if "does not cool" in s.name)
    with MockProviders({"mocks": scenario.mocks}) as m:
        cfg = config(m)
        router = Router(cfg.pop("providers"), **cfg)
        router.route({"model": "gpt-4o", "messages": MESSAGES})
        assert set(router.cooldowns()) == {"openai:gpt-4o-2024-08-06"}


def test_attempts_logs_and_health_events_name_group_and_model(caplog: pytest.LogCaptureFixture) -> None:
    scenario = next(s for s in SCENARIOS if "does not cool" in s.name)
    with MockProviders({"mocks": scenario.mocks}) as m:
        cfg = config(m)
        router = Router(cfg.pop("providers"), **cfg)
        with caplog.at_level(logging.DEBUG, logger="f3dx_router"):
            result = router.route({"model": "gpt-4o", "messages": MESSAGES})
            router.route({"model": "gpt-4o-mini", "messages": MESSAGES})  # logs the 429's transition
    first = result.attempts[0]
    assert (first.group, first.model) == ("gpt-4o", "gpt-4o-2024-08-06")
    assert 'group="gpt-4o", model="gpt-4o-2024-08-06"' in repr(first)
    attempt_records = [r for r in caplog.records if getattr(r, "attempt", None) is not None]
    assert [(r.provider, r.group, r.model_sent) for r in attempt_records][:2] == [  # type: ignore[attr-defined]
        ("openai", "gpt-4o", "gpt-4o-2024-08-06"), ("anthropic", "gpt-4o", "claude-sonnet-4-5")]
    assert "to 'openai' (group 'gpt-4o', model 'gpt-4o-2024-08-06')" in attempt_records[0].getMessage()
    cooling = [r for r in caplog.records if getattr(r, "transition", None) == "cooling"]
    assert [(r.provider, r.model_sent) for r in cooling] == [("openai", "gpt-4o-2024-08-06")]  # type: ignore[attr-defined]
    assert cooling[0].getMessage().startswith("provider 'openai' (model 'gpt-4o-2024-08-06') cooling down for ")
    assert all(SECRET not in r.getMessage() for r in caplog.records)


# -- the table's own views: repr, stats, format_stats, check's report ---------------


def _router() -> Router:
    cfg = config_for_urls()
    return Router(cfg.pop("providers"), **cfg)


def config_for_urls(**extra: Any) -> dict[str, Any]:
    """The scenario's config on unused loopback ports (nothing is sent)."""

    class NoMocks:
        @staticmethod
        def base_url(name: str) -> str:
            return "http://127.0.0.1:9/v1"

    return config(NoMocks(), **extra)  # type: ignore[arg-type]


def test_repr_shows_the_table_and_never_a_key() -> None:
    cfg = config_for_urls(fallbacks={"gpt-4o-mini": ["gpt-4o"]})
    cfg["models"]["gpt-4o"][1].update(params={"top_k": 40}, headers={"x-secret": SECRET}, context_window=200000)
    cfg["models"]["gpt-4o-mini"] = {"deployments": cfg["models"]["gpt-4o-mini"], "policy": "hedged", "hedge_k": 2}
    text = repr(Router(cfg.pop("providers"), **cfg))
    assert SECRET not in text and "40" not in text  # a param's value is not shown, its name is
    assert ("models={'gpt-4o': [{'provider': 'openai', 'model': 'gpt-4o-2024-08-06'}, {'provider': 'anthropic', "
            "'model': 'claude-sonnet-4-5', 'context_window': 200000, 'params': {'top_k': '(set)'}, "
            "'headers': {'x-secret': '(hidden)'}}], 'gpt-4o-mini': {'deployments': [{'provider': 'openai'}, "
            "{'provider': 'groq', 'model': 'llama-3.3-70b-versatile'}], 'policy': 'hedged', 'hedge_k': 2, "
            "'hedge_delay_ms': 0, 'hedge_budget': None}, 'claude-*': [{'provider': 'anthropic'}]}, "
            "fallbacks={'gpt-4o-mini': ['gpt-4o']})") in text
    # Without a table, repr is as it was.
    assert "models" not in repr(Router(config_for_urls()["providers"]))


def test_format_stats_has_a_group_column() -> None:
    stats = _router().stats()
    lines = f3dx_router.format_stats(stats).splitlines()
    assert lines[0].split()[:4] == ["group", "provider", "model", "state"]
    assert lines[1].split()[:4] == ["gpt-4o", "openai", "gpt-4o-2024-08-06", "healthy"]
    assert lines[2].split()[:3] == ["anthropic", "claude-sonnet-4-5", "healthy"]  # the group on its first row only
    assert lines[5].split()[:3] == ["claude-*", "anthropic", "(caller's)"]
    assert lines[-1].startswith("hedges:")


def test_rich_renders_the_table() -> None:
    rich = pytest.importorskip("rich")
    from rich.console import Console

    console = Console(file=io.StringIO(), width=200)
    console.print(_router().stats())
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert "group" in out and "gpt-4o-mini" in out and "llama-3.3-70b-versatile" in out
    assert rich is not None


def test_check_reports_each_group_resolved(tmp_path: Path) -> None:
    cfg = config_for_urls(fallbacks={"gpt-4o-mini": ["gpt-4o"]})
    cfg["models"]["gpt-4o"][0]["context_window"] = 128000
    cfg["models"]["gpt-4o-mini"] = {"deployments": cfg["models"]["gpt-4o-mini"], "policy": "hedged"}
    path = tmp_path / "router.json"
    path.write_text(json.dumps(cfg))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["check", str(path)]) == 0
    lines = out.getvalue().splitlines()
    start = lines.index("models:")
    assert lines[start + 1:start + 10] == [
        "  gpt-4o: policy=sequential (router's)",
        "    openai     model=gpt-4o-2024-08-06  weight=1  timeout_ms=5000  context_window=128000",
        "    anthropic  model=claude-sonnet-4-5  weight=1  timeout_ms=5000",
        "  gpt-4o-mini: policy=hedged, hedge_k=2, hedge_delay_ms=0, hedge_budget=unlimited",
        "    openai  model=gpt-4o-mini  weight=1  timeout_ms=5000",
        "    groq    model=llama-3.3-70b-versatile  weight=1  timeout_ms=5000",
        "    fallbacks: gpt-4o",
        "  claude-*: policy=sequential (router's)",
        "    anthropic  model=(the caller's)  weight=1  timeout_ms=5000",
    ]
    assert 'fallbacks: {"gpt-4o-mini": ["gpt-4o"]}' in lines
    assert SECRET not in out.getvalue()


TOML = """
[[providers]]
name = "openai"
kind = "openai"
base_url = "http://127.0.0.1:9/v1"
api_key = "{key}"

# Group names with * or dots are TOML keys that need quotes.
[models]
"claude-*" = [{{ provider = "openai" }}]

[[models."gpt-4.1".deployments]]
provider = "openai"
model = "gpt-4.1-2025-04-14"

[models."gpt-4.1"]
policy = "sequential"

[fallbacks]
"claude-*" = ["gpt-4.1"]
"""


def test_a_toml_table_with_quoted_group_names(tmp_path: Path) -> None:
    path = tmp_path / "router.toml"
    path.write_text(TOML.format(key=SECRET))
    router = Router.from_file(path)
    assert list(router.stats()["models"]) == ["claude-*", "gpt-4.1"]
    # Unquoted, the dot makes a nested table: a group "gpt-4" holding "1".
    path.write_text(TOML.format(key=SECRET).replace('models."gpt-4.1"', "models.gpt-4.1"))
    with pytest.raises(ConfigError) as info:
        Router.from_file(path)
    assert info.value.field == 'models["gpt-4"].#1' and "unknown key" in info.value.message
    assert SECRET not in str(info.value)


# -- bad input: one message from every entry point -----------------------------

BAD = [
    ("unknown provider", {"gpt-4o": [{"provider": "openai"}, {"provider": "azure"}]}, {},
     'models["gpt-4o"][1].provider', "names no provider in providers"),
    ("empty group", {"gpt-4o": []}, {}, 'models["gpt-4o"]', "is empty: give at least one deployment"),
    ("empty group object", {"gpt-4o": {"deployments": []}}, {}, 'models["gpt-4o"].deployments', "is empty"),
    ("fallback cycle", {"a": [{"provider": "openai"}], "b": [{"provider": "openai"}]},
     {"fallbacks": {"a": ["b"], "b": ["a"]}}, "fallbacks", 'has a cycle through models["b"] and models["a"]'),
    ("overlapping patterns", {"claude-*": [{"provider": "openai"}], "*-sonnet": [{"provider": "openai"}]}, {},
     'models["*-sonnet"]', 'overlaps models["claude-*"] with as many literal characters'),
    ("context window zero", {"gpt-4o": [{"provider": "openai", "context_window": 0}]}, {},
     'models["gpt-4o"][0].context_window', "must be a positive integer"),
    ("context window negative", {"gpt-4o": [{"provider": "openai", "context_window": -128000}]}, {},
     'models["gpt-4o"][0].context_window', "must be a positive integer"),
    ("context window fraction", {"gpt-4o": [{"provider": "openai", "context_window": 1.5}]}, {},
     'models["gpt-4o"][0].context_window', "must be a positive integer"),
    ("context window text", {"gpt-4o": [{"provider": "openai", "context_window": "128k"}]}, {},
     'models["gpt-4o"][0].context_window', "must be a positive integer"),
    ("fallback to no group", {"gpt-4o": [{"provider": "openai"}]}, {"fallbacks": {"gpt-4o": ["gpt-5"]}},
     'fallbacks["gpt-4o"][0]', "names no group in models"),
    ("fallbacks without models", None, {"fallbacks": {"gpt-4o": ["gpt-4o-mini"]}}, "fallbacks",
     "needs a models table"),
]


def check_errors(path: Path) -> list[str]:
    """``check``'s error lines (stderr), run in this process."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        assert cli.main(["check", "--no-env", str(path)]) == 1
    assert SECRET not in out.getvalue() + err.getvalue()
    return err.getvalue().splitlines()


@pytest.mark.parametrize(("models", "extra", "field", "words"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_a_bad_table_is_one_error_everywhere(tmp_path: Path, models: Any, extra: dict[str, Any], field: str,
                                               words: str) -> None:
    cfg = bad_config(models, extra)
    with pytest.raises(ConfigError) as built:
        Router(cfg["providers"], **{k: v for k, v in cfg.items() if k != "providers"})
    e = built.value
    assert e.field == field and words in e.message
    assert e.message.startswith(f"invalid router config: {field}: ")
    path = tmp_path / "router.json"
    path.write_text(json.dumps(cfg))
    with pytest.raises(ConfigError) as from_file:
        Router.from_file(path)
    assert (from_file.value.field, from_file.value.message) == (field, f"{path}: {e.message}")
    assert check_errors(path) == [f"error: {path}: {e.message}"]
    for text in (str(e), repr(e), str(from_file.value)):
        assert SECRET not in text


ALL_BAD_FIELDS = [
    'models["gpt-4o"][1].provider',
    'models["gpt-4o"][1].context_window',
    'models["gpt-4o-mini"]',
    'models["*-sonnet"][0].#2',
    'models["o3"].hedge_k',
    'models["*-sonnet"]',
    'fallbacks["o3"][0]',
    "fallbacks",
]


def test_every_table_error_at_once(tmp_path: Path) -> None:
    cfg = all_bad_config()
    with pytest.raises(ConfigError) as built:
        Router(cfg["providers"], **{k: v for k, v in cfg.items() if k != "providers"})
    lines = built.value.message.splitlines()
    assert [line.split(": ")[1] for line in lines] == ALL_BAD_FIELDS
    assert all(line.startswith("invalid router config: ") for line in lines)
    assert built.value.field == ALL_BAD_FIELDS[0]
    path = tmp_path / "router.yaml"
    pytest.importorskip("yaml")
    import yaml

    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    assert check_errors(path) == [f"error: {path}: {line}" for line in lines]
    with pytest.raises(ConfigError) as from_file:
        Router.from_file(path)
    assert from_file.value.message.splitlines() == [f"{path}: {line}" for line in lines]
    assert SECRET not in built.value.message + from_file.value.message


def test_a_repeated_group_is_named(tmp_path: Path) -> None:
    # JSON text can repeat a key: the group is named as every table error
    # names it (the Worker's core reader says the same).
    path = tmp_path / "router.json"
    path.write_text('{"providers": [], "models": {"gpt-4o": [], "o3": [], "gpt-4o": []}}')
    with pytest.raises(ConfigError) as info:
        Router.from_file(path)
    assert info.value.field == 'models["gpt-4o"]'
    assert info.value.message.endswith('models["gpt-4o"]: is given twice (keys #1 and #3); give each key once')


def test_unknown_model_lists_the_groups() -> None:
    with pytest.raises(InvalidRequest) as info:
        _router().chat_completions({"model": "o3-mini", "messages": MESSAGES})
    assert "o3-mini" in str(info.value) and "gpt-4o-mini" in str(info.value) and info.value.attempts == []


def test_the_readmes_translated_config_is_valid(tmp_path: Path) -> None:
    # The README's LiteLLM translation (its ```yaml blocks that are configs
    # of ours) passes check, and builds the table it describes.
    pytest.importorskip("yaml")
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    blocks = [b.split("\n```", 1)[0] for b in readme.split("```yaml\n")[1:]]
    ours = [b for b in blocks if b.startswith("providers:")]
    assert len(ours) == 1 and any(b.startswith("model_list:") for b in blocks)
    path = tmp_path / "router.yaml"
    path.write_text(ours[0])
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        assert cli.main(["check", "--no-env", str(path)]) == 0, err.getvalue()
    assert "    openai     model=gpt-4o  weight=1  timeout_ms=30000  rpm=500" in out.getvalue().splitlines()
