"""f3dx_router: an in-process router for LLM provider calls.

One Rust routing core (failover, hedging, Retry-After cooldowns, OpenAI and
Anthropic translation) behind a small Python API::

    from f3dx_router import Router
    r = Router(providers=[...], policy="hedged", hedge_k=2)
    resp = r.chat_completions({"model": "gpt-4o", "messages": [...]})
"""

from __future__ import annotations

from ._errors import (
    AllProvidersFailed,
    ConfigError,
    HardFailure,
    InvalidRequest,
    RouterError,
    StreamInterrupted,
)
from ._stats import HedgeStats, LatencyMs, ProviderStats, QualityKeyStats, RouterStats
from ._native import Attempt, ChatStream, RouteResult, Router, SseIterator, __version__

__all__ = [
    "Router",
    "RouteResult",
    "Attempt",
    "ChatStream",
    "SseIterator",
    "RouterStats",
    "ProviderStats",
    "HedgeStats",
    "QualityKeyStats",
    "LatencyMs",
    "RouterError",
    "ConfigError",
    "InvalidRequest",
    "HardFailure",
    "AllProvidersFailed",
    "StreamInterrupted",
    "__version__",
]
