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
from typing import Literal, TypedDict

__all__ = ["ProviderConfig", "HealthConfig", "QualityConfig", "RouterConfig", "PolicyName"]

#: The routing policies.
PolicyName = Literal["sequential", "weighted", "hedged"]


class _ProviderRequired(TypedDict):
    #: Unique; names it in errors, traces, stats and logs.
    name: str
    #: The protocol it speaks.
    kind: Literal["openai", "anthropic"]
    #: e.g. ``https://api.openai.com/v1`` (http(s), no query, no credentials).
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
    failover_on: list[int | str]
    retries: int
    backoff_ms: int
    backoff_max_ms: int
    otel: bool
