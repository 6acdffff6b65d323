"""``f3dx_router.HTTPTransport`` and ``AsyncHTTPTransport``: httpx2
transports (httpx2 is the openai SDK's HTTP library) that answer chat
completions from a router. What they answer is the router's native front
door's (see ``_transport``); this is the httpx2 layer only (``httpx_compat``
is the same for httpx)."""

from __future__ import annotations

try:
    import httpx2
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "f3dx_router.HTTPTransport and AsyncHTTPTransport need httpx2 (the openai SDK's "
        "HTTP library): pip install 'f3dx-router[openai]'"
    ) from exc

from ._native import aserve, serve
from ._transport import AsyncBody, RouterTransport, SyncBody, body_of, request_of

__all__ = ["HTTPTransport", "AsyncHTTPTransport"]


class _SyncBody(SyncBody, httpx2.SyncByteStream):
    pass


class _AsyncBody(AsyncBody, httpx2.AsyncByteStream):
    pass


class HTTPTransport(RouterTransport, httpx2.BaseTransport):
    """An ``httpx2`` transport that answers ``POST .../chat/completions``
    from ``router`` (streamed or not) and 404 to anything else::

        client = openai.OpenAI(api_key="unused", base_url="http://f3dx-router.invalid/v1",
                               http_client=httpx2.Client(transport=HTTPTransport(router)))

    (``f3dx_router.openai_client(router)`` makes that client.) Errors come
    back as OpenAI-shaped HTTP answers the SDK raises as its own exceptions;
    ``x-f3dx-provider`` and ``x-f3dx-attempts`` say who answered. ``tenant``
    is the tenant of calls without an ``x-f3dx-tenant`` header. The request's
    ``Authorization`` is ignored: the router holds the providers' keys.
    """

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        status, headers, body = serve(self.router, request_of(self, request, request.read()))
        return httpx2.Response(status, headers=headers, **body_of(body, _SyncBody))


class AsyncHTTPTransport(RouterTransport, httpx2.AsyncBaseTransport):
    """``HTTPTransport`` for ``httpx2.AsyncClient`` (``openai.AsyncOpenAI``),
    on the router's asyncio API (``aroute``, ``achat_completions``): an
    asyncio (or uvloop) event loop, not trio. Cancelling the task that
    awaits a call cancels its legs; closing a stream closes its upstream."""

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        status, headers, body = await aserve(self.router, request_of(self, request, await request.aread()))
        return httpx2.Response(status, headers=headers, **body_of(body, _AsyncBody))
