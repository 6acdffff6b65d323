"""The shapes of ``Router.models()`` and ``Router.explain()``: the routing
table, and what a call would do now. Read-only dicts made by the core (the
Worker's ``GET /v1/models`` table and ``POST /explain`` give the same)."""

from __future__ import annotations

from typing import Literal, TypedDict

__all__ = ["DeploymentInfo", "ModelGroupInfo", "PlannedDeployment", "Explanation", "ExplainReason"]


class DeploymentInfo(TypedDict):
    """One deployment of a model group: a provider serving its model."""

    provider: str
    #: The model name sent to the provider; None: the caller's is sent.
    model: str | None
    #: Share of first tries under the "weighted" policy (0: only after the others).
    weight: int
    #: The most tokens it holds (prompt and completion), if declared.
    context_window: int | None
    #: Deadline of one attempt, in ms.
    timeout_ms: int
    #: Requests / tokens per minute this router may send it (None: unlimited).
    rpm: int | None
    tpm: int | None


class ModelGroupInfo(TypedDict):
    """One model group of the routing table."""

    #: The model (or pattern, ``"claude-*"``) a request's ``model`` is matched
    #: against. ``"*"`` for the implicit group of a config without ``models``.
    name: str
    #: True for the implicit group of a config without ``models``.
    implicit: bool
    #: True when ``name`` is a pattern (it matches several models).
    pattern: bool
    policy: Literal["sequential", "weighted", "hedged"]
    #: Most attempts in flight at once (``hedge_k`` for "hedged", else 1).
    max_in_flight: int
    #: Whether quality-aware routing is on for this group.
    quality: bool
    #: Groups tried, in order, once every deployment of this one failed softly.
    fallbacks: list[str]
    #: Groups tried when a request is too long for every deployment of this one.
    context_window_fallbacks: list[str]
    #: Groups tried instead of returning a refusal.
    content_policy_fallbacks: list[str]
    #: In priority order.
    deployments: list[DeploymentInfo]


#: Why a deployment is left out of a call's order, or placed where it is:
#: "cooling" (it sent Retry-After), "rate_limited" (see ``budget``),
#: "ejected" (soft failures), "probe_held" (half-open, another call holds its
#: one probe), "context_window" (too small for the request), and, for
#: deployments still tried but after the others: "quality_excluded" (its
#: answers failed this tenant's checks for this model), "weight_zero" (weight
#: 0 under "weighted": never a first pick). "quality_probe_held": another call
#: holds its quality probe for this tenant and model. "unsupported_params":
#: its kind cannot carry some of the request's parameters (see ``params``).
ExplainReason = Literal[
    "cooling",
    "rate_limited",
    "ejected",
    "probe_held",
    "context_window",
    "quality_excluded",
    "quality_probe_held",
    "weight_zero",
    "unsupported_params",
]


class _PlannedRequired(TypedDict):
    #: The group it belongs to (a fallback group's name for its deployments).
    group: str
    provider: str
    #: The model name it would be sent.
    model: str
    #: Why it is left out, or why it is where it is (None: tried in its turn).
    reason: ExplainReason | None
    #: The reason in a sentence.
    detail: str | None
    #: Tried although out: every deployment of its group was out.
    last_resort: bool


class PlannedDeployment(_PlannedRequired, total=False):
    """One deployment in an ``Explanation``; the optional keys come with the
    reasons that carry them."""

    #: Seconds until the state ends (cooling, rate_limited, ejected,
    #: quality_excluded).
    until_s: float
    #: With "rate_limited": "rpm" or "tpm" (this router's budgets), or
    #: "rate_limit_headers" (the provider's own headers said a limit is spent).
    budget: Literal["rpm", "tpm", "rate_limit_headers"]
    #: With "context_window": the request's estimated tokens and the window.
    tokens_needed: int
    context_window: int
    #: With "unsupported_params": the parameters it cannot carry.
    params: list[str]
    #: Tried, but sent without these parameters (``unsupported_params: "drop"``).
    dropped: list[str]


class Explanation(TypedDict):
    """What a call would do now (``Router.explain``): nothing is sent."""

    #: The model the request asked for.
    model: str
    #: The group it picks.
    group: str
    #: No deployment of its own group is usable: they are tried anyway, in
    #: the order they recover.
    last_resort: bool
    #: The deployments it would try, in order (each next one after the one
    #: before fails softly; hedged legs start in this order too).
    tried: list[PlannedDeployment]
    #: The deployments of the groups it considered that it would not try.
    left_out: list[PlannedDeployment]
