"""The shape of ``Router.stats()``: what the router remembers, read-only."""

from __future__ import annotations

from typing import Literal, TypedDict

__all__ = ["LatencyMs", "QualityKeyStats", "ProviderStats", "HedgeStats", "RouterStats"]


class LatencyMs(TypedDict):
    """Percentiles of the window's successful latencies, in ms (None without samples)."""

    p50: float | None
    #: What ``hedge_delay_ms="auto"`` waits while a call waits on this provider.
    p90: float | None
    p95: float | None
    p99: float | None


class QualityKeyStats(TypedDict):
    """One (tenant, model) of a provider in quality-aware routing."""

    tenant: str
    model: str
    #: Results in the window (checked answers and reported ones).
    samples: int
    #: Passes / samples (None without samples).
    pass_rate: float | None
    #: "ok", "excluded" (skipped for this tenant and model), or "probing"
    #: (the exclusion ended: the next matching call may probe).
    state: Literal["ok", "excluded", "probing"]
    #: Seconds left in the exclusion (None unless excluded).
    until_s: float | None


class ProviderStats(TypedDict):
    """One provider, as of the call to ``stats()``."""

    #: "healthy", "cooling" (Retry-After), "ejected", "half_open" (one probe
    #: may go), or "rate_limited".
    state: Literal["healthy", "cooling", "ejected", "half_open", "rate_limited"]
    #: Seconds left in that state (None when it has no end).
    until_s: float | None
    #: Outcomes in the health window: successes + soft failures.
    requests: int
    successes: int
    soft_failures: int
    #: soft_failures / requests (0.0 without requests).
    error_rate: float
    latency_ms: LatencyMs
    #: Ejections since the router was built.
    ejections: int
    #: Requests and tokens left in the rate budgets (None without a budget).
    rpm_left: float | None
    tpm_left: float | None
    #: Its quality keys with the most results (at most 20).
    quality: list[QualityKeyStats]


class HedgeStats(TypedDict):
    """Hedging across the router's calls."""

    #: Legs started while another leg of the same call was in flight.
    sent: int
    #: Calls won by such a leg.
    won: int
    #: Extra legs not started for want of hedge budget (a call refused one
    #: starts no more extra legs; failovers are never refused).
    skipped_for_budget: int


class RouterStats(TypedDict):
    """``Router.stats()``: per provider name, and hedging."""

    providers: dict[str, ProviderStats]
    hedges: HedgeStats
