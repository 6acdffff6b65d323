"""f3dx_router: an in-process router for LLM provider calls.

One Rust routing core (failover, hedging, Retry-After cooldowns, OpenAI and
Anthropic translation) behind a small Python API::

    from f3dx_router import Router
    r = Router(providers=[...], policy="hedged", hedge_k=2)
    resp = r.chat_completions({"model": "gpt-4o", "messages": [...]})
    resp = await r.achat_completions({...})      # asyncio, on the native runtime
    r = Router.from_file("router.toml")          # or .json, .yaml

``python -m f3dx_router check router.toml`` validates a config file offline.
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
from ._native import (
    AsyncChatStream,
    AsyncSseIterator,
    Attempt,
    ChatStream,
    RouteResult,
    Router,
    SseIterator,
    __version__,
)
from ._aio import achat_completions, aroute
from ._config import router_from_config, router_from_file

# Router is a native class, but its type accepts new attributes: the
# file-reading constructors are plain Python (parsers are Python's) and live
# on the class where users look for them. Typed in _native.pyi, checked by
# stubtest; setattr because mypy (rightly) refuses assigning to a method.
setattr(Router, "from_file", staticmethod(router_from_file))
setattr(Router, "from_config", staticmethod(router_from_config))
# The async twins are coroutines written in Python around native futures.
setattr(Router, "achat_completions", achat_completions)
setattr(Router, "aroute", aroute)
del router_from_config, router_from_file, achat_completions, aroute

__all__ = [
    "Router",
    "RouteResult",
    "Attempt",
    "ChatStream",
    "SseIterator",
    "AsyncChatStream",
    "AsyncSseIterator",
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
