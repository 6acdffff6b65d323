"""The router's transports for ``httpx`` (``f3dx_router.HTTPTransport`` and
``AsyncHTTPTransport`` are httpx2's, the openai SDK's HTTP library)::

    import httpx
    from f3dx_router.httpx_compat import HTTPTransport

    client = httpx.Client(transport=HTTPTransport(router))
    r = client.post("http://f3dx-router.invalid/v1/chat/completions", json=request)
    r.headers["x-f3dx-provider"], r.json()

They answer exactly as the httpx2 ones (see ``f3dx_router.HTTPTransport``):
``POST .../chat/completions``, streamed or not, OpenAI-shaped errors, 404 to
anything else. Needs ``httpx`` (``pip install 'f3dx-router[httpx]'``).
"""

from __future__ import annotations

try:
    import httpx
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("f3dx_router.httpx_compat needs httpx: pip install 'f3dx-router[httpx]'") from exc

from ._native import aserve, serve
from ._transport import AsyncBody, RouterTransport, SyncBody, body_of, request_of

__all__ = ["HTTPTransport", "AsyncHTTPTransport"]


class _SyncBody(SyncBody, httpx.SyncByteStream):
    pass


class _AsyncBody(AsyncBody, httpx.AsyncByteStream):
    pass


class HTTPTransport(RouterTransport, httpx.BaseTransport):
    """An ``httpx`` transport that answers ``POST .../chat/completions``
    from ``router`` (streamed or not) and 404 to anything else. ``tenant``
    is the tenant of calls without an ``x-f3dx-tenant`` header."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        status, headers, body = serve(self.router, request_of(self, request, request.read()))
        return httpx.Response(status, headers=headers, **body_of(body, _SyncBody))


class AsyncHTTPTransport(RouterTransport, httpx.AsyncBaseTransport):
    """``HTTPTransport`` for ``httpx.AsyncClient``, on the router's asyncio
    API (``aroute``, ``achat_completions``): an asyncio (or uvloop) event
    loop, not trio."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        status, headers, body = await aserve(self.router, request_of(self, request, await request.aread()))
        return httpx.Response(status, headers=headers, **body_of(body, _AsyncBody))
