"""``f3dx_router.Router``: the native router with its Python-written methods.

The routing itself is native (``_native.Router``); what is written in Python
is defined here, on the class: the config-file constructors (the parsers are
Python's) and the async twins (coroutines around native futures). The
native class is a ``subclass`` one, so this costs a call nothing: methods
are found through the type's cache either way, and ``__slots__ = ()`` keeps
instances as small as the native ones.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, cast

from . import _native
from ._native import RouteResult
from ._introspect import Explanation, ModelGroupInfo
from ._stats import ReadableStats, RouterStats
from ._types import RouterConfig

__all__ = ["Router"]


class Router(_native.Router):
    """Routes OpenAI chat-completions requests over several providers.

    ``Router(providers, *, policy=None, hedge_k=None, hedge_delay_ms=None,
    hedge_delay_fallback_ms=None, hedge_budget=None, health=None,
    quality=None, models=None, fallbacks=None, context_window_fallbacks=None,
    content_policy_fallbacks=None, failover_on=None, retries=None,
    backoff_ms=None, backoff_max_ms=None, unsupported_params=None,
    forward_headers=None, otel=None)``

    Building a router opens no connection; a bad config raises
    ``ConfigError`` naming the key path (never a value: it may be a key).

    Parameters (each None means its default):

    providers
        A list of provider mappings (``ProviderConfig``), in priority
        order: ``name``, ``kind`` ("openai", "anthropic" or "azure"), ``base_url``,
        ``api_key`` or ``api_key_env`` (the name of an environment
        variable), and optionally ``timeout_ms`` (per attempt, default
        30000 ms), ``stream_idle_timeout_ms`` (default 30000 ms),
        ``weight`` (default 1), ``model``, ``headers``,
        ``max_body_bytes`` (default 32 MiB), ``rpm``, ``tpm``; for
        ``azure``, ``azure_api`` ("v1", default, or "deployments"),
        ``api_version`` (required with "deployments") and ``auth``
        ("api_key", default, or "bearer").
    policy
        "sequential" (default): one provider at a time, in order, the next
        on a soft failure (408, 429, 5xx, timeout, connection error).
        "weighted": the first try spread by ``weight``. "hedged": up to
        ``hedge_k`` providers in flight, the first answer wins.
    hedge_k
        With "hedged": most attempts in flight at once (default 2, at most
        the number of providers).
    hedge_delay_ms
        With "hedged": ms to wait before each further leg (default 0: all
        legs at once, so every call is billed ``hedge_k`` times), or
        "auto": the p90 latency of the provider being waited on.
    hedge_delay_fallback_ms
        With ``hedge_delay_ms="auto"``: the delay until a provider has 20
        samples (default 1000 ms).
    hedge_budget
        With "hedged": tokens each call adds to the hedge budget, 0 to 10;
        an extra leg costs one (default 0.1 with a delay, unlimited
        without).
    health
        Routing around failing providers: True or None (default
        settings), False (off), or a ``HealthConfig`` mapping overriding
        some (``window_s`` 60 s, ``buckets`` 10, ``min_requests`` 20,
        ``max_error_rate`` 0.5, ``consecutive_failures`` 5, ``ejection_s``
        30 s, ``max_ejection_s`` 300 s).
    quality
        Routing around providers whose answers fail the request's JSON
        schema: True or None (default settings), False (off), or a
        ``QualityConfig`` mapping (``window`` 50, ``min_samples`` 10,
        ``min_pass_rate`` 0.8, ``probe_after_s`` 60 s, ``on_failure``
        "return", ``max_keys`` 10000, ``max_bytes`` 64 MiB).
    models
        The routing table: a request's ``model`` picks a group (exact
        name first, then the most specific pattern such as ``"claude-*"``,
        then ``"*"``); a group is a list of deployments
        (``DeploymentConfig``: ``provider``, and optionally ``model``, the
        name sent to it, ``weight``, ``rpm``, ``tpm``, ``timeout_ms``,
        ``context_window``, ``params``, ``headers``), or a
        ``ModelGroupConfig`` with its own ``policy``, ``hedge_*`` and
        ``quality``. A model no group matches is an ``InvalidRequest``,
        nothing sent. Default: one group of every provider.
    fallbacks
        Group name to the groups tried, with their own deployments and
        model names, after every deployment of it failed softly
        (``{"gpt-4o": ["gpt-4o-mini"]}``); a cycle is a ``ConfigError``.
    context_window_fallbacks
        Group name to the groups tried when no deployment of it has a
        ``context_window`` large enough for the request.
    content_policy_fallbacks
        Group name to the groups tried after a refusal (off by default:
        it sends the content to another vendor).
    failover_on
        Statuses (400-599) and error codes (``model_not_found``) that make
        an otherwise hard failure soft, for every deployment (groups and
        deployments add their own). Default: none.
    retries
        Retries of a soft failure on the same deployment before moving on
        (default 0, at most 10), each an attempt of its own; groups and
        deployments may set their own. See docs/failover.md.
    backoff_ms
        The wait before the first retry, doubling for each further one,
        jittered (default 100 ms).
    backoff_max_ms
        The longest wait before a retry (default 5000 ms); a
        ``Retry-After`` longer than this moves the call on at once.
    unsupported_params
        What a request parameter a deployment's kind cannot carry does
        (``seed`` for Anthropic): ``"error"`` (default) skips that deployment,
        and refuses the call when none can carry it; ``"drop"`` sends the
        request without it, recorded in the attempt. Groups and deployments
        may set their own. See the README's table of what each kind carries.
    forward_headers
        Names of the caller's own headers copied to every attempt of a
        call (``["x-request-id", "anthropic-beta"]``, any case): from a
        call's ``headers=`` and from the request through the transports
        (the openai SDK's ``extra_headers`` and ``default_headers``). A
        group's own list replaces this one. Credentials, hop-by-hop,
        framing and ``x-f3dx-*`` headers are never forwarded; a value with
        a control character or over 8 KiB is an ``InvalidRequest``,
        nothing sent. Default: none.
    otel
        True: one OpenTelemetry span per call (needs opentelemetry-api);
        default False.

    Main methods: ``chat_completions`` (and ``achat_completions`` for
    asyncio), ``route`` / ``aroute`` (with the attempts), ``stats()``,
    ``record_quality``, ``set_api_key(provider, api_key)`` (a new key
    for the calls that start from now on, nothing learned lost),
    ``models()`` and ``explain(body)`` (what a call would try now, and why
    not the rest); ``Router.from_file`` / ``Router.from_config`` build
    one from a config file or mapping. ``repr(router)`` shows every
    setting that is not a default, never a key.
    """

    __slots__ = ()

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Router:
        """A router from a TOML, JSON or YAML file (by extension) holding
        the same object as the constructor's arguments and the Worker's
        ``ROUTER_CONFIG``. Every ``ConfigError`` names the file and the
        key path."""
        from ._config import router_from_file

        return router_from_file(path, cls)

    @classmethod
    def from_config(cls, config: RouterConfig | Mapping[str, Any]) -> Router:
        """``Router(**config)`` with the core's checks of a whole config: an
        unknown or missing key is a ``ConfigError``, never a TypeError."""
        from ._config import router_from_config

        return router_from_config(config, cls)

    def stats(self) -> RouterStats:
        """What the router remembers, per provider (state, calls and soft
        failures in the health window, latency percentiles, rate budgets
        left, quality keys) and of hedging: a ``RouterStats`` dict, numbers
        rounded for reading. ``f3dx_router.format_stats(r.stats())`` makes a
        text table of it; ``rich`` prints it as one."""
        return cast(RouterStats, ReadableStats(super().stats()))

    def models(self) -> list[ModelGroupInfo]:
        """The routing table: each model group (in config order) with its
        policy, fallbacks and deployments (provider, model sent, weight,
        context window, timeout, rpm/tpm): a list of ``ModelGroupInfo``.
        Without ``models`` in the config, one implicit group ``"*"`` of every
        provider (any model is routed to it). The front doors list the same
        table as OpenAI's ``GET /models`` (``client.models.list()``)."""
        return super().models()

    def explain(
        self, body: Mapping[str, Any], *, tenant: str | None = None, headers: Mapping[str, str] | None = None
    ) -> Explanation:
        """What ``chat_completions(body, tenant=tenant)`` would do now,
        without sending anything or changing any state (no weighted pick
        advanced, no probe claimed, no budget taken): the deployments it
        would try, in order (``tried``), and why each other one is left out
        (``left_out``: cooling, rate_limited, ejected, probe_held,
        context_window) or placed last (quality_excluded, weight_zero). A
        call's own planning decides both, so they agree. Raises
        ``InvalidRequest`` where a call would (an unknown model names the
        groups there are)."""
        return super().explain(body, tenant=tenant, headers=headers)

    async def achat_completions(
        self, body: Mapping[str, Any], *, tenant: str | None = None, headers: Mapping[str, str] | None = None
    ) -> Any:
        """``chat_completions`` for asyncio: the call runs on the router's
        background runtime; cancelling the awaiting task cancels every leg.
        Returns the response dict, or an ``AsyncChatStream`` at the commit
        point when ``body["stream"]`` is True. ``headers``: the caller's
        own, as for ``chat_completions``."""
        return await self._achat_completions(body, tenant=tenant, headers=headers)

    async def aroute(
        self, body: Mapping[str, Any], *, tenant: str | None = None, headers: Mapping[str, str] | None = None
    ) -> RouteResult:
        """``route`` for asyncio: the response with its attempts."""
        return await self._aroute(body, tenant=tenant, headers=headers)
