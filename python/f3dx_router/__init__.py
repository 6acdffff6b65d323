"""f3dx_router: an in-process router for LLM provider calls.

One Rust routing core (failover, hedging, Retry-After cooldowns, OpenAI and
Anthropic translation) behind a small Python API::

    from f3dx_router import Router
    r = Router(providers=[...], policy="hedged", hedge_k=2, hedge_delay_ms=500)
    resp = r.chat_completions({"model": "gpt-4o", "messages": [...]})
    resp = await r.achat_completions({...})      # asyncio, on the native runtime
    r = Router.from_file("router.toml")          # or .json, .yaml
    print(f3dx_router.format_stats(r.stats()))

``help(Router)`` documents every constructor parameter; the config's
shapes are typed (``ProviderConfig``, ``HealthConfig``, ``QualityConfig``,
``ModelGroupConfig``, ``DeploymentConfig``, ``FallbacksConfig``,
``RouterConfig``). ``python -m f3dx_router check router.toml`` validates a
config file offline.

The openai SDK as a front end (needs the ``openai`` extra)::

    client = f3dx_router.openai_client(r)         # an openai.OpenAI routed by r
    client.chat.completions.create(model="gpt-4o", messages=[...])

``HTTPTransport`` / ``AsyncHTTPTransport`` are the httpx2 transports behind
it; ``f3dx_router.httpx_compat`` has the same for httpx. They are imported on
first use: ``import f3dx_router`` imports neither openai nor any httpx.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._errors import AllProvidersFailed as AllProvidersFailed
from ._errors import ConfigError as ConfigError
from ._errors import HardFailure as HardFailure
from ._errors import InvalidRequest as InvalidRequest
from ._errors import RouterError as RouterError
from ._errors import StreamInterrupted as StreamInterrupted
from ._native import AsyncChatStream as AsyncChatStream
from ._native import AsyncSseIterator as AsyncSseIterator
from ._native import Attempt as Attempt
from ._native import ChatStream as ChatStream
from ._native import RouteResult as RouteResult
from ._native import SseIterator as SseIterator
from ._native import __version__ as __version__
from ._introspect import DeploymentInfo as DeploymentInfo
from ._introspect import Explanation as Explanation
from ._introspect import ExplainReason as ExplainReason
from ._introspect import ModelGroupInfo as ModelGroupInfo
from ._introspect import PlannedDeployment as PlannedDeployment
from ._router import Router as Router
from ._stats import DeploymentStats as DeploymentStats
from ._stats import HedgeStats as HedgeStats
from ._stats import LatencyMs as LatencyMs
from ._stats import ProviderStats as ProviderStats
from ._stats import QualityKeyStats as QualityKeyStats
from ._stats import RouterStats as RouterStats
from ._stats import format_stats as format_stats
from ._types import DeploymentConfig as DeploymentConfig
from ._types import FallbacksConfig as FallbacksConfig
from ._types import HealthConfig as HealthConfig
from ._types import ModelGroupConfig as ModelGroupConfig
from ._types import PolicyName as PolicyName
from ._types import ProviderConfig as ProviderConfig
from ._types import QualityConfig as QualityConfig
from ._types import RouterConfig as RouterConfig
from ._types import SkippedDeployment as SkippedDeployment
from ._types import UnsupportedParams as UnsupportedParams

if TYPE_CHECKING:
    # Explicit re-exports (`x as x`), so that `mypy --strict` accepts
    # `from f3dx_router import openai_client`; at run time `__getattr__`
    # below imports them on first use.
    from . import httpx_compat as httpx_compat
    from ._httpx2 import AsyncHTTPTransport as AsyncHTTPTransport
    from ._httpx2 import HTTPTransport as HTTPTransport
    from ._openai import async_openai_client as async_openai_client
    from ._openai import openai_client as openai_client

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
    "ProviderConfig",
    "HealthConfig",
    "QualityConfig",
    "ModelGroupConfig",
    "DeploymentConfig",
    "FallbacksConfig",
    "RouterConfig",
    "PolicyName",
    "UnsupportedParams",
    "SkippedDeployment",
    "RouterStats",
    "ProviderStats",
    "DeploymentStats",
    "HedgeStats",
    "QualityKeyStats",
    "LatencyMs",
    "format_stats",
    "ModelGroupInfo",
    "DeploymentInfo",
    "Explanation",
    "PlannedDeployment",
    "ExplainReason",
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
