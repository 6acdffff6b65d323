"""Checked by ``mypy --strict`` (tests/python/test_typing.py), never run:
a user's script that uses every public name of f3dx_router, the lazy ones
included, and a providers list with mixed value types."""

from __future__ import annotations

import asyncio

import f3dx_router
from f3dx_router import (
    AllProvidersFailed,
    AsyncChatStream,
    AsyncHTTPTransport,
    AsyncSseIterator,
    Attempt,
    ChatStream,
    ConfigError,
    DeploymentConfig,
    DeploymentStats,
    FallbacksConfig,
    HardFailure,
    HealthConfig,
    HedgeStats,
    HTTPTransport,
    InvalidRequest,
    LatencyMs,
    ModelGroupConfig,
    PolicyName,
    ProviderConfig,
    ProviderStats,
    QualityConfig,
    QualityKeyStats,
    RouteResult,
    Router,
    RouterConfig,
    RouterError,
    RouterStats,
    SkippedDeployment,
    SseIterator,
    StreamInterrupted,
    UnsupportedParams,
    __version__,
    async_openai_client,
    format_stats,
    httpx_compat,
    openai_client,
)

# A list built apart from the call, with str, int and mapping values.
providers: list[ProviderConfig] = [
    {"name": "a", "kind": "openai", "base_url": "https://api.example.com/v1", "api_key_env": "A_KEY", "timeout_ms": 5000},
    {
        "name": "b",
        "kind": "anthropic",
        "base_url": "https://api.anthropic.com/v1",
        "api_key": "sk-ant-placeholder",
        "weight": 2,
        "rpm": 600,
        "headers": {"x-team": "search"},
    },
]
health: HealthConfig = {"window_s": 30, "max_error_rate": 0.25}
quality: QualityConfig = {"min_pass_rate": 0.9, "on_failure": "failover"}
policy: PolicyName = "hedged"
r = Router(providers, policy=policy, hedge_k=2, hedge_delay_ms=200, health=health, quality=quality)
# Inline, as most code writes it.
r2 = Router([{"name": "c", "kind": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key": "k", "max_body_bytes": 1024}], health=False)
config: RouterConfig = {"providers": providers, "policy": "sequential", "quality": True}
r3: Router = Router.from_config(config)
r4: Router = Router.from_file("router.toml")

# A routing table: a group as its deployments, or with its own settings.
openai_4o: DeploymentConfig = {"provider": "a", "model": "gpt-4o-2024-08-06", "context_window": 128_000}
mini: ModelGroupConfig = {"deployments": [{"provider": "a"}, {"provider": "b", "params": {"top_k": 40}}], "policy": "hedged"}
fallbacks: FallbacksConfig = {"gpt-4o": ["gpt-4o-mini"]}
r5 = Router(
    providers,
    models={"gpt-4o": [openai_4o, {"provider": "b", "model": "claude-sonnet-4-5", "weight": 0}], "gpt-4o-mini": mini, "*": [{"provider": "b"}]},
    fallbacks=fallbacks,
    context_window_fallbacks={"gpt-4o-mini": ["gpt-4o"]},
    content_policy_fallbacks={},
)
table_config: RouterConfig = {"providers": providers, "models": {"claude-*": [{"provider": "b"}]}, "fallbacks": {}}

stats: RouterStats = r.stats()
row: ProviderStats = stats["providers"]["a"]
by_group: list[DeploymentStats] = r5.stats()["models"]["gpt-4o"]
sent: str | None = by_group[0]["model"]
attempt_group: str | None = r5.route({"model": "gpt-4o", "messages": []}).attempts[0].group
latency: LatencyMs = row["latency_ms"]
keys: list[QualityKeyStats] = row["quality"]
hedges: HedgeStats = stats["hedges"]
table: str = format_stats(stats)
version: str = __version__

result: RouteResult = r.route({"model": "m", "messages": []})
attempts: list[Attempt] = result.attempts
# What a kind cannot carry: skipped (the default) or dropped, at any level.
mode: UnsupportedParams = "drop"
r6 = Router(providers, unsupported_params=mode, models={"g": {"deployments": [{"provider": "b", "unsupported_params": "error"}], "unsupported_params": "drop"}})
skipped: list[SkippedDeployment] = result.skipped
skipped_params: list[str] = skipped[0]["params"] if skipped else []
dropped: list[str] = attempts[0].dropped
try:
    r6.route({"model": "g", "messages": [], "seed": 1})
except InvalidRequest as refused:
    also_skipped: list[SkippedDeployment] = refused.skipped
stream = r.chat_completions({"model": "m", "messages": [], "stream": True})
if isinstance(stream, ChatStream):
    sse: SseIterator = stream.iter_sse()


async def use_async() -> None:
    answer = await r.achat_completions({"model": "m", "messages": []}, tenant="t")
    if isinstance(answer, AsyncChatStream):
        events: AsyncSseIterator = answer.aiter_sse()
    routed: RouteResult = await r.aroute({"model": "m", "messages": []})


asyncio.run(use_async())

errors: tuple[type[RouterError], ...] = (ConfigError, InvalidRequest, HardFailure, AllProvidersFailed, StreamInterrupted)
client = openai_client(r)
aclient = async_openai_client(r)
transport = HTTPTransport(r)
atransport = AsyncHTTPTransport(r)
compat_module = httpx_compat
also_module = f3dx_router.httpx_compat

# Introspection: the routing table, and what a call would do now.
from f3dx_router import DeploymentInfo, ExplainReason, Explanation, ModelGroupInfo, PlannedDeployment

groups: list[ModelGroupInfo] = r.models()
first_deployment: DeploymentInfo = groups[0]["deployments"][0]
window: int | None = first_deployment["context_window"]
plan: Explanation = r.explain({"model": "m", "messages": []}, tenant="t")
r.set_api_key("a", "sk-rotated")  # a new key for the calls from now on
step: PlannedDeployment = plan["tried"][0]
why: ExplainReason | None = step["reason"]
until: float | None = step.get("until_s")
