"""f3dx_router: an in-process router for LLM provider calls.

One Rust routing core (failover, hedging, Retry-After cooldowns, OpenAI and
Anthropic translation) behind a small Python API::

    from f3dx_router import Router
    r = Router(providers=[...], policy="hedged", hedge_k=2)
    resp = r.chat_completions({"model": "gpt-4o", "messages": [...]})
    resp = await r.achat_completions({...})      # asyncio, on the native runtime
    r = Router.from_file("router.toml")          # or .json, .yaml

``python -m f3dx_router check router.toml`` validates a config file offline.

The openai SDK as a front end (needs ``pip install 'f3dx-router[openai]'``)::

    client = f3dx_router.openai_client(r)         # an openai.OpenAI routed by r
    client.chat.completions.create(model="gpt-4o", messages=[...])

``HTTPTransport`` / ``AsyncHTTPTransport`` are the httpx2 transports behind
it; ``f3dx_router.httpx_compat`` has the same for httpx. They are imported on
first use: ``import f3dx_router`` imports neither openai nor any httpx.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    from . import httpx_compat
    from ._httpx2 import AsyncHTTPTransport, HTTPTransport
    from ._openai import async_openai_client, openai_client

# Names whose modules import optional packages (httpx2, openai, httpx):
# resolved on first access, so that importing the package stays light.
_LAZY = {
    "HTTPTransport": "_httpx2",
    "AsyncHTTPTransport": "_httpx2",
    "openai_client": "_openai",
    "async_openai_client": "_openai",
    "httpx_compat": "httpx_compat",
}


def __getattr__(name: str) -> object:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    # ImportError (naming the extra to install) when the package is missing.
    module = importlib.import_module(f"{__name__}.{module_name}")
    value = module if name == module_name else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


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
# Not in __all__: the lazy names above (HTTPTransport, AsyncHTTPTransport,
# openai_client, async_openai_client, httpx_compat). They need the optional
# extras, and `from f3dx_router import *` must work without them.
