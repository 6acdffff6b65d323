"""What the HTTP transports share, whichever HTTP library carries them.

``f3dx_router.HTTPTransport`` (httpx2, the openai SDK's) and
``f3dx_router.httpx_compat.HTTPTransport`` (httpx), and their async
variants, are thin classes over the router's native front door
(``_native.serve`` / ``aserve``: method, path, the ``x-f3dx-tenant``
header, body bytes in; status, headers and body bytes, or a stream of SSE
byte chunks, out). What is answered is the core's endpoint, the same on the
Worker. It imports no HTTP library, so ``import f3dx_router`` stays light.

What is answered:

* ``POST <any prefix>/chat/completions``: the router's answer. A whole
  answer is ``200 application/json``; with ``"stream": true`` the answer
  starts at the stream's commit point as ``200 text/event-stream``
  (``data: {chunk}`` events, then ``data: [DONE]``). A failure after the
  commit point becomes one event ``data: {"error": {...}}`` and the stream
  ends without ``[DONE]``: the openai SDK raises it as an ``APIError``.
* Errors in OpenAI's shape, ``{"error": {"message", "type", "code"}}``: a
  provider's hard failure keeps its 4xx status and its error's ``type``,
  ``code`` and ``param`` (an Anthropic error translated), with the router's
  message (which provider, which status, the provider's message, redacted);
  ``AllProvidersFailed`` is 502; ``InvalidRequest`` and a body that is not
  JSON are 400; any other path or method is 404.
* Route headers: ``x-f3dx-provider`` (the winner, or the provider of a hard
  failure), ``x-f3dx-attempts`` (how many upstream attempts were made: a
  decimal count, ``0`` when nothing was sent), ``x-f3dx-trace`` (each attempt
  as ``name=outcome[/status-or-fault]@start_ms``, comma-separated, in start
  order) and ``x-f3dx-schema-valid`` (``true``/``false`` when the answer was
  checked against ``response_format``). A stream's are as of its commit
  point.
* The request's ``x-f3dx-tenant`` header is the call's tenant (for
  quality-aware routing), else the transport's ``tenant``.
* The request's headers that the router's ``forward_headers`` lists (the
  SDK's ``extra_headers`` and ``default_headers``) go to every attempt.

The request's own credentials (``Authorization``) are never read or
forwarded, whatever ``forward_headers`` says: the router sends each
provider its configured key.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeVar

from ._router import Router

if TYPE_CHECKING:
    from ._native import AsyncSseIterator, SseIterator

__all__ = ["RouterTransport", "TENANT_HEADER", "SyncBody", "AsyncBody", "request_of", "body_of"]

#: The request header naming the call's tenant.
TENANT_HEADER: Final = "x-f3dx-tenant"


class RouterTransport:
    """What every transport class has: the router, the default tenant."""

    def __init__(self, router: Router, *, tenant: str | None = None) -> None:
        if not isinstance(router, Router):
            raise TypeError(f"{type(self).__name__} needs an f3dx_router.Router, not {type(router).__name__}")
        if tenant is not None and not isinstance(tenant, str):
            raise TypeError(f"tenant must be a string or None, not {type(tenant).__name__}")
        super().__init__()
        #: The router the transport's calls go to (shared: closing the
        #: transport leaves it as it is).
        self.router = router
        #: The tenant of calls without an ``x-f3dx-tenant`` header.
        self.tenant = tenant

    def __repr__(self) -> str:
        return f"{type(self).__name__}(router={self.router!r}, tenant={self.tenant!r})"


class _Url(Protocol):
    @property
    def path(self) -> str: ...


class _Request(Protocol):
    """What the front door reads of an httpx or httpx2 request."""

    @property
    def method(self) -> str: ...
    @property
    def url(self) -> _Url: ...
    @property
    def headers(self) -> Any: ...


def request_of(
    transport: RouterTransport, request: _Request, body: bytes
) -> tuple[str, str, str | None, str | None, bytes, Any]:
    """The request as the native front door takes it: its headers object
    too, which the core reads only when the router forwards some
    (``forward_headers``)."""
    headers = request.headers
    return request.method, request.url.path, headers.get(TENANT_HEADER), transport.tenant, body, headers


_Body = TypeVar("_Body", "SseIterator", "AsyncSseIterator")


def body_of(body: bytes | _Body, stream: Callable[[_Body], object]) -> dict[str, Any]:
    """The HTTP library's response arguments for the front door's body:
    ``content`` for bytes, else ``stream`` (wrapped in the library's byte
    stream class)."""
    if isinstance(body, bytes):
        return {"content": body}
    return {"stream": stream(body)}


class SyncBody:
    """A streamed answer's body for an HTTP library (mixed into its
    ``SyncByteStream``): the front door's SSE bytes; ``close()`` closes the
    upstream connection."""

    def __init__(self, events: SseIterator) -> None:
        self._events = events

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._events)

    def close(self) -> None:
        self._events.close()


class AsyncBody:
    """``SyncBody`` for asyncio (mixed into an ``AsyncByteStream``)."""

    def __init__(self, events: AsyncSseIterator) -> None:
        self._events = events

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._events.__aiter__()

    async def aclose(self) -> None:
        await self._events.aclose()
