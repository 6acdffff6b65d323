"""The shape of a router's config, as typed input: what ``Router(...)``,
``Router.from_config`` and a config file take.

Written for Python 3.10's ``typing`` (no ``NotRequired``): each required
part is a base class, the optional keys a ``total=False`` subclass. The
keys are the core's own (tests check them against ``_native``'s lists), and
the core validates every value: these types only let a type checker catch a
misspelt key or a wrong type early.

A list built apart from the call needs its type said, or mypy infers
``list[dict[str, object]]``::

    providers: list[f3dx_router.ProviderConfig] = [
        {"name": "a", "kind": "openai", "base_url": "https://...", "api_key_env": "A_KEY", "timeout_ms": 5000},
    ]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypedDict, Union

__all__ = [
    "ProviderConfig",
    "HealthConfig",
    "QualityConfig",
    "DeploymentConfig",
    "ModelGroupConfig",
    "FallbacksConfig",
    "RouterConfig",
    "PolicyName",
    "UnsupportedParams",
    "SkippedDeployment",
]

#: The routing policies.
PolicyName = Literal["sequential", "weighted", "hedged"]

#: What a request parameter a deployment's kind cannot carry does
#: (``unsupported_params``, on the router, a group or a deployment): "error"
#: skips the deployment (and refuses the call when none can carry it),
#: "drop" sends the request without the parameter.
UnsupportedParams = Literal["error", "drop"]


class SkippedDeployment(TypedDict):
    """A deployment a call passed over without sending anything
    (``result.skipped``, ``error.skipped``): its kind cannot carry some of
    the request's parameters."""

    provider: str
    #: Its model group (None without ``models``).
    group: str | None
    #: The model it would have been sent (None without ``models``, or the caller's).
    model: str | None
    #: Why: "unsupported_params".
    reason: Literal["unsupported_params"]
    #: The parameters it cannot carry, in the request's order.
    params: list[str]


class _ProviderRequired(TypedDict):
    #: Unique; names it in errors, traces, stats and logs.
    name: str
    #: The protocol it speaks.
    kind: Literal["openai", "anthropic", "azure"]
    #: e.g. ``https://api.openai.com/v1`` (http(s), no query, no credentials);
    #: for ``azure``, the resource's endpoint (``https://my-resource.openai.azure.com``).
    base_url: str


class ProviderConfig(_ProviderRequired, total=False):
    """One upstream provider. ``api_key`` or ``api_key_env`` is required
    (not both)."""

    #: The key itself (never printed).
    api_key: str
    #: The name of the environment variable holding the key.
    api_key_env: str
    #: Deadline of one attempt, in ms (default 30000).
    timeout_ms: int
    #: Longest gap between a stream's events after its commit point, in ms (default 30000).
    stream_idle_timeout_ms: int
    #: Share of first tries under ``policy="weighted"`` (default 1; 0: fallback only).
    weight: int
    #: The model to send instead of the caller's.
    model: str
    #: Extra request headers (values may be secrets: never printed).
    headers: Mapping[str, str]
    #: Largest answer accepted, in bytes (default 32 MiB).
    max_body_bytes: int
    #: Requests per minute this router may send it.
    rpm: int
    #: Tokens per minute this router may send it.
    tpm: int
    #: ``kind="azure"`` only: ``"v1"`` (``/openai/v1/chat/completions``, the
    #: deployment as ``model``; the default) or ``"deployments"`` (the classic
    #: ``/openai/deployments/{model}/chat/completions?api-version=...``).
    azure_api: Literal["v1", "deployments"]
    #: ``azure_api="deployments"`` only, and required there: e.g. ``"2024-10-21"``.
    api_version: str
    #: ``kind="azure"`` only: ``"api_key"`` (the ``api-key`` header; the
    #: default) or ``"bearer"`` (``Authorization: Bearer``, a Microsoft Entra ID token).
    auth: Literal["api_key", "bearer"]


class HealthConfig(TypedDict, total=False):
    """``health=``: when a failing provider is routed around, and for how long."""

    #: Length of the outcome window, in s (default 60).
    window_s: int
    #: Buckets the window slides by (default 10).
    buckets: int
    #: Outcomes the window needs before its error rate may eject (default 20).
    min_requests: int
    #: Soft-failure rate that ejects, 0 to 1 (default 0.5).
    max_error_rate: float
    #: Soft failures in a row that eject (default 5).
    consecutive_failures: int
    #: First ejection, in s; each one in a row lasts one more (default 30).
    ejection_s: int
    #: Longest ejection, in s (default 300).
    max_ejection_s: int


class QualityConfig(TypedDict, total=False):
    """``quality=``: routing around providers whose answers fail the
    request's JSON schema, per tenant and model."""

    #: Results kept per (provider, tenant, model) (default 50).
    window: int
    #: Results needed before a key may be excluded (default 10).
    min_samples: int
    #: A pass rate under this excludes, 0 to 1 (default 0.8).
    min_pass_rate: float
    #: First exclusion, in s; each failed probe doubles it (default 60).
    probe_after_s: int
    #: What a failing answer does: "return" it (default) or "failover".
    on_failure: Literal["return", "failover"]
    #: Most keys tracked (default 10000).
    max_keys: int
    #: Most bytes the table holds (default 64 MiB).
    max_bytes: int


class _DeploymentRequired(TypedDict):
    #: The name of the provider (in ``providers``) serving this model.
    provider: str


class DeploymentConfig(_DeploymentRequired, total=False):
    """One deployment of a model group: a provider serving the group's
    model, with its own model name and limits. What the router remembers
    (cooldowns, health, rate budgets, latency, quality) is per provider and
    model sent; a connection failure counts against every deployment of
    the provider."""

    #: The model sent to that provider (default: the provider's ``model``,
    #: else the group's name, else the caller's for a pattern group).
    model: str
    #: Share of first tries under ``policy="weighted"`` (default 1; 0: fallback only).
    weight: int
    #: Requests per minute this router may send this provider and model.
    rpm: int
    #: Tokens per minute this router may send this provider and model.
    tpm: int
    #: Deadline of one attempt, in ms (default: the provider's).
    timeout_ms: int
    #: Tokens the model holds: a request estimated larger skips it unsent.
    context_window: int
    #: Body fields merged into the request sent (``{"reasoning_effort": "low"}``).
    params: Mapping[str, Any]
    #: Extra request headers (values may be secrets: never printed).
    headers: Mapping[str, str]
    #: Statuses (400-599) or error codes also failed over (over the group's).
    failover_on: list[int | str]
    #: Attempts on this deployment after a soft failure, before moving on.
    retries: int
    #: First retry's backoff, in ms (jittered, doubling).
    backoff_ms: int
    #: Longest backoff, in ms.
    backoff_max_ms: int
    #: How an Anthropic deployment answers a ``response_format``: ``"native"``
    #: (structured outputs, the default) or ``"tool"`` (a forced tool).
    structured_output: Literal["native", "tool"]
    #: A request parameter its kind cannot carry: "error" (default: skip it)
    #: or "drop" (send without it, recorded in the attempt).
    unsupported_params: UnsupportedParams


class _ModelGroupRequired(TypedDict):
    deployments: Sequence[DeploymentConfig]


class ModelGroupConfig(_ModelGroupRequired, total=False):
    """A model group given as an object: its deployments and its own
    routing settings (the router's otherwise). A group can also be given
    as the list of its deployments alone."""

    policy: PolicyName
    hedge_k: int
    hedge_delay_ms: int | Literal["auto"]
    hedge_delay_fallback_ms: int
    hedge_budget: float
    quality: bool | QualityConfig
    failover_on: list[int | str]
    retries: int
    backoff_ms: int
    backoff_max_ms: int
    unsupported_params: UnsupportedParams
    #: The caller's headers its deployments get (replaces the router's list).
    forward_headers: list[str]


#: ``fallbacks=`` (and ``context_window_fallbacks=``,
#: ``content_policy_fallbacks=``): a group's name to the groups tried
#: after it, in order, e.g. ``{"gpt-4o": ["gpt-4o-mini"]}``.
FallbacksConfig = Mapping[str, Sequence[str]]

#: ``models=``: a model name or pattern (``"claude-*"``, ``"*"``) to its
#: deployments, or to a ``ModelGroupConfig``.
ModelsConfig = Mapping[str, Union[Sequence[DeploymentConfig], ModelGroupConfig]]


class _RouterRequired(TypedDict):
    providers: Sequence[ProviderConfig]


class RouterConfig(_RouterRequired, total=False):
    """A whole config: a config file's object, the Worker's ``ROUTER_CONFIG``,
    ``Router.from_config``'s argument (``otel`` is this package's only)."""

    policy: PolicyName
    hedge_k: int
    hedge_delay_ms: int | Literal["auto"]
    hedge_delay_fallback_ms: int
    hedge_budget: float
    health: bool | HealthConfig
    quality: bool | QualityConfig
    models: ModelsConfig
    fallbacks: FallbacksConfig
    context_window_fallbacks: FallbacksConfig
    content_policy_fallbacks: FallbacksConfig
    failover_on: list[int | str]
    retries: int
    backoff_ms: int
    backoff_max_ms: int
    unsupported_params: UnsupportedParams
    #: The caller's headers copied to every attempt (names, any case).
    forward_headers: list[str]
    otel: bool
