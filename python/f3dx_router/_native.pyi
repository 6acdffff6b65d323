"""Type stubs for the native extension (written by hand, checked by
``mypy.stubtest`` in CI)."""

from collections.abc import Awaitable, Mapping, Sequence
from typing import Any, Literal, final

from typing_extensions import Self, disjoint_base

from ._introspect import Explanation, ModelGroupInfo
from ._stats import RouterStats
from ._types import (
    FallbacksConfig,
    HealthConfig,
    ModelsConfig,
    PolicyName,
    ProviderConfig,
    QualityConfig,
    SkippedDeployment,
    UnsupportedParams,
)

__all__ = [
    "Router",
    "Attempt",
    "RouteResult",
    "ChatStream",
    "SseIterator",
    "AsyncChatStream",
    "AsyncSseIterator",
    "serve",
    "aserve",
    "__version__",
    "_allocator",
    "_config_keys",
    "_check_config",
]

__version__: str
# What the extension's Rust code allocates with ("mimalloc 2"); bench/soak.py reports it.
_allocator: str

# The core's config keys: "router", "provider", "group", "deployment",
# "health", "quality", "host".
def _config_keys() -> dict[str, tuple[str, ...]]: ...

# Every problem of a config (without the host's keys), by the core's rules:
# (errors, warnings, api_key_env names read, every setting resolved or None),
# each problem (field, message, provider name or None).
def _check_config(
    config: Mapping[str, Any], *, env: bool = True
) -> tuple[list[tuple[str, str, str | None]], list[tuple[str, str, str | None]], list[str], dict[str, Any] | None]: ...

@final
class Attempt:
    """One upstream attempt of a call."""

    def __new__(
        cls,
        provider: str,
        outcome: Literal["success", "soft", "hard", "cancelled", "in_flight"],
        status: int | None,
        fault: str | None,
        detail: str,
        started_ms: float,
        ended_ms: float | None,
        group: str | None = None,
        model: str | None = None,
        dropped: Sequence[str] | None = None,
    ) -> Attempt: ...
    def __reduce__(self) -> tuple[type[Attempt], tuple[object, ...]]: ...

    @property
    def provider(self) -> str: ...
    @property
    def outcome(self) -> Literal["success", "soft", "hard", "cancelled", "in_flight"]: ...
    @property
    def status(self) -> int | None: ...
    @property
    def fault(self) -> str | None: ...
    @property
    def detail(self) -> str: ...
    @property
    def started_ms(self) -> float: ...
    @property
    def ended_ms(self) -> float | None: ...
    @property
    def group(self) -> str | None:
        """The model group the attempt was for (None without `models`)."""
    @property
    def model(self) -> str | None:
        """The model sent (None without `models`, or the caller's passed through)."""
    @property
    def dropped(self) -> list[str]:
        """The request's parameters it was sent without (`unsupported_params: "drop"`)."""

@final
class RouteResult:
    """A successful call: the response, the winner and every attempt."""

    @property
    def response(self) -> dict[str, Any]: ...
    @property
    def provider(self) -> str: ...
    @property
    def attempts(self) -> list[Attempt]: ...
    @property
    def latency_ms(self) -> float: ...
    @property
    def schema_valid(self) -> bool | None: ...
    @property
    def skipped(self) -> list[SkippedDeployment]:
        """Deployments passed over without sending: they cannot carry the request's parameters."""

@final
class ChatStream:
    """A streamed answer from its commit point on: an iterator of
    ``chat.completion.chunk`` dicts. A failure after the first output raises
    ``StreamInterrupted``. ``close()`` (or leaving a ``with`` block) closes
    the upstream connection at once; from another thread, a reader blocked
    in ``next()`` wakes with ``StreamInterrupted``."""

    def __iter__(self) -> ChatStream: ...
    def __next__(self) -> dict[str, Any]: ...
    def __enter__(self) -> ChatStream: ...
    def __exit__(self, *_exc: object) -> bool: ...
    def close(self) -> None: ...
    def iter_sse(self) -> SseIterator: ...
    @property
    def provider(self) -> str: ...
    @property
    def attempts(self) -> list[Attempt]: ...
    @property
    def closed(self) -> bool: ...

@final
class SseIterator:
    """``ChatStream.iter_sse()``: each chunk as ``b"data: {...}\\n\\n"``, then
    ``b"data: [DONE]\\n\\n"``; a failure raises. As ``serve``'s body, a
    failure is its error event instead, the last item."""

    def __iter__(self) -> SseIterator: ...
    def __next__(self) -> bytes: ...
    def close(self) -> None: ...

@final
class AsyncChatStream:
    """A streamed answer for asyncio, from its commit point on: an async
    iterator of ``chat.completion.chunk`` dicts. A failure after the first
    output raises ``StreamInterrupted``. ``await aclose()`` (or leaving an
    ``async with`` block, or cancelling a task waiting on it) closes the
    upstream connection at once."""

    def __aiter__(self) -> AsyncChatStream: ...
    def __anext__(self) -> Awaitable[dict[str, Any]]: ...
    def __aenter__(self) -> Awaitable[AsyncChatStream]: ...
    def __aexit__(self, *_exc: object) -> Awaitable[bool]: ...
    def aclose(self) -> Awaitable[None]: ...
    def aiter_sse(self) -> AsyncSseIterator: ...
    @property
    def provider(self) -> str: ...
    @property
    def attempts(self) -> list[Attempt]: ...
    @property
    def closed(self) -> bool: ...

@final
class AsyncSseIterator:
    """``AsyncChatStream.aiter_sse()``: each chunk as ``b"data: {...}\\n\\n"``,
    then ``b"data: [DONE]\\n\\n"``; a failure raises. As ``aserve``'s body, a
    failure is its error event instead, the last item."""

    def __aiter__(self) -> AsyncSseIterator: ...
    def __anext__(self) -> Awaitable[bytes]: ...
    def aclose(self) -> Awaitable[None]: ...

def serve(
    router: Router, request: tuple[str, str, str | None, str | None, bytes, Any]
) -> tuple[int, list[tuple[str, str]], bytes | SseIterator]:
    """The OpenAI-compatible front door (the core's endpoint): one HTTP
    request in, ``(method, path, tenant_header, tenant, body, headers)``
    (``tenant_header`` is its ``x-f3dx-tenant``, ``tenant`` the default,
    ``headers`` the request's httpx/httpx2 ``Headers`` or None, read only
    when the router forwards some), its
    answer out: status, headers, and the body's bytes or, for a stream from
    its commit point, an iterator of SSE byte chunks ending with
    ``data: [DONE]`` or an error event. Waits without the GIL."""

def aserve(
    router: Router, request: tuple[str, str, str | None, str | None, bytes, Any]
) -> Awaitable[tuple[int, list[tuple[str, str]], bytes | AsyncSseIterator]]:
    """``serve`` on the router's asyncio API."""

@disjoint_base
class Router:
    """Routes OpenAI chat-completions requests over several providers.
    ``f3dx_router.Router`` (``_router.py``) is a subclass with the methods
    written in Python and the documentation."""

    def __new__(
        cls,
        providers: Sequence[ProviderConfig],
        *,
        policy: PolicyName | None = None,
        hedge_k: int | None = None,
        hedge_delay_ms: int | Literal["auto"] | None = None,
        hedge_delay_fallback_ms: int | None = None,
        hedge_budget: float | None = None,
        health: bool | HealthConfig | None = None,
        quality: bool | QualityConfig | None = None,
        models: ModelsConfig | None = None,
        fallbacks: FallbacksConfig | None = None,
        context_window_fallbacks: FallbacksConfig | None = None,
        content_policy_fallbacks: FallbacksConfig | None = None,
        failover_on: Sequence[int | str] | None = None,
        retries: int | None = None,
        backoff_ms: int | None = None,
        backoff_max_ms: int | None = None,
        unsupported_params: UnsupportedParams | None = None,
        forward_headers: Sequence[str] | None = None,
        otel: bool | None = None,
    ) -> Self: ...
    # A dict, or a ChatStream when body["stream"] is True: typed Any so that
    # code indexing the answer type-checks either way.
    def chat_completions(self, body: Mapping[str, Any], *, tenant: str | None = None, headers: Mapping[str, str] | None = None) -> Any: ...
    def route(self, body: Mapping[str, Any], *, tenant: str | None = None, headers: Mapping[str, str] | None = None) -> RouteResult: ...
    # What f3dx_router.Router's achat_completions and aroute await: the
    # call started on the background runtime, as an asyncio future.
    def _achat_completions(self, body: Mapping[str, Any], *, tenant: str | None = None, headers: Mapping[str, str] | None = None) -> Awaitable[Any]: ...
    def _aroute(self, body: Mapping[str, Any], *, tenant: str | None = None, headers: Mapping[str, str] | None = None) -> Awaitable[RouteResult]: ...
    def record_quality(self, provider: str, passed: bool, *, model: str, tenant: str = "") -> None: ...
    def set_api_key(self, provider: str, api_key: str) -> None: ...
    def cooldowns(self) -> dict[str, float]: ...
    def stats(self) -> RouterStats: ...
    def models(self) -> list[ModelGroupInfo]: ...
    def explain(self, body: Mapping[str, Any], *, tenant: str | None = None, headers: Mapping[str, str] | None = None) -> Explanation: ...
    @property
    def providers(self) -> list[str]: ...
    @property
    def policy(self) -> PolicyName: ...
