"""What the HTTP transports answer, whichever HTTP library carries it.

``f3dx_router.HTTPTransport`` (httpx2, the openai SDK's) and
``f3dx_router.httpx_compat.HTTPTransport`` (httpx), and their async
variants, are thin classes over this module: it decides what a request is
(a chat completion, streamed or not, or something else), runs it on the
router and says what to answer (status, headers, body or SSE events). It
imports no HTTP library, so ``import f3dx_router`` stays light.

What is answered:

* ``POST <any prefix>/chat/completions``: the router's answer. A whole
  answer is ``200 application/json``; with ``"stream": true`` the answer
  starts at the stream's commit point as ``200 text/event-stream``
  (``data: {chunk}`` events, then ``data: [DONE]``). A failure after the
  commit point becomes one event ``data: {"error": {...}}`` and the stream
  ends without ``[DONE]``: the openai SDK raises it as an ``APIError``.
* Errors in OpenAI's shape, ``{"error": {"message", "type", "code"}}``:
  ``HardFailure`` keeps the upstream's 4xx status and (already redacted)
  body; ``AllProvidersFailed`` is 502; ``InvalidRequest`` and a body that is
  not JSON are 400; any other path or method is 404.
* Route headers: ``x-f3dx-provider`` (the winner, or the provider of a hard
  failure), ``x-f3dx-attempts`` (how many upstream attempts were made: a
  decimal count, ``0`` when nothing was sent), ``x-f3dx-trace`` (each attempt
  as ``name=outcome[/status-or-fault]@start_ms``, comma-separated, in start
  order) and ``x-f3dx-schema-valid`` (``true``/``false`` when the answer was
  checked against ``response_format``): the Worker's headers. A stream's are
  as of its commit point.
* The request's ``x-f3dx-tenant`` header is the call's tenant (for
  quality-aware routing), else the transport's ``tenant``.

The request's own credentials (``Authorization``) are never read or
forwarded: the router sends each provider its configured key.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Final

from ._errors import AllProvidersFailed, HardFailure, InvalidRequest, RouterError
from ._router import Router

if TYPE_CHECKING:
    from ._native import AsyncChatStream, Attempt, ChatStream, RouteResult

__all__ = ["RouterTransport", "Reply", "SyncEvents", "AsyncEvents", "handle", "ahandle"]

#: The one route served, as the end of the path (any base path before it).
CHAT_PATH: Final = "/chat/completions"
TENANT_HEADER: Final = "x-f3dx-tenant"
# Longest path echoed back in a 404's message.
_MAX_ECHOED_PATH = 200
_JSON: Final = "application/json"


class Reply:
    """A whole answer: status, headers and body."""

    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def __repr__(self) -> str:
        return f"Reply(status={self.status}, headers={self.headers!r})"


class Call:
    """A chat-completions request to route."""

    __slots__ = ("body", "stream", "tenant")

    def __init__(self, body: Any, stream: bool, tenant: str | None) -> None:
        self.body = body
        self.stream = stream
        self.tenant = tenant


def _error_body(message: str, kind: str, code: str) -> bytes:
    return json.dumps({"error": {"message": message, "type": kind, "code": code}}).encode()


def _error(status: int, message: str, kind: str, code: str, headers: Sequence[tuple[str, str]]) -> Reply:
    return Reply(status, [("content-type", _JSON), *headers], _error_body(message, kind, code))


def trace(attempts: Sequence[Attempt]) -> str:
    """The attempts in one header line, as the Worker writes them."""
    parts = []
    for a in attempts:
        entry = f"{a.provider}={a.outcome}"
        if a.fault is not None:
            entry += f"/{a.fault}"
        elif a.status is not None:
            entry += f"/{a.status}"
        parts.append(f"{entry}@{int(a.started_ms)}")
    return ", ".join(parts)


def route_headers(provider: str | None, attempts: Sequence[Attempt]) -> list[tuple[str, str]]:
    """``x-f3dx-provider`` (when known), ``x-f3dx-attempts`` and ``x-f3dx-trace``."""
    headers = []
    if provider:
        headers.append(("x-f3dx-provider", provider))
    headers.append(("x-f3dx-attempts", str(len(attempts))))
    if attempts:
        headers.append(("x-f3dx-trace", trace(attempts)))
    return headers


_NOTHING_SENT: Final = (("x-f3dx-attempts", "0"),)


def not_served(method: str, path: str) -> Reply | None:
    """The 404 for a request that is not ``POST .../chat/completions``; None
    for one that is."""
    if method.upper() == "POST" and (path.endswith(CHAT_PATH) or path.endswith(CHAT_PATH + "/")):
        return None
    shown = path if len(path) <= _MAX_ECHOED_PATH else path[:_MAX_ECHOED_PATH] + "..."
    message = (
        f"f3dx_router routes only POST .../chat/completions (OpenAI chat completions, "
        f"streamed or not, under any base path), not {method.upper()} {shown}"
    )
    return _error(404, message, "invalid_request_error", "not_found", _NOTHING_SENT)


def parse_call(content: bytes, tenant_header: str | None, tenant: str | None) -> Call | Reply:
    """The request body as a call, or the 400 for a body that is not JSON."""
    try:
        body = json.loads(content)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        # json's message gives the position only, never the text.
        message = f"the request body is not JSON: {exc}"
        return _error(400, message, "invalid_request_error", "invalid_json", _NOTHING_SENT)
    stream = isinstance(body, dict) and body.get("stream") is True
    return Call(body, stream, tenant if tenant_header is None else tenant_header)


def error_reply(e: RouterError) -> Reply:
    """The answer for a call that failed before any output."""
    attempts = e.attempts
    if isinstance(e, HardFailure):
        headers = [("content-type", _JSON), *route_headers(e.provider, attempts)]
        if 400 <= e.status <= 499:
            # The upstream's own error, as it answered it (any key redacted),
            # when it is an error object in OpenAI's (or Anthropic's) shape.
            try:
                upstream = json.loads(e.body)
            except (ValueError, RecursionError):
                upstream = None
            if isinstance(upstream, dict) and isinstance(upstream.get("error"), dict):
                return Reply(e.status, headers, e.body.encode())
            return Reply(e.status, headers, _error_body(e.message, "upstream_error", "hard_failure"))
        # A hard status that cannot be passed on as it is (a redirect not
        # followed, a non-standard code): a gateway error naming it.
        return Reply(502, headers, _error_body(e.message, "upstream_error", "hard_failure"))
    if isinstance(e, InvalidRequest):
        return _error(400, e.message, "invalid_request_error", "invalid_request", route_headers(None, attempts))
    if isinstance(e, AllProvidersFailed):
        return _error(502, e.message, "upstream_error", "all_providers_failed", route_headers(None, attempts))
    # Not raised before a stream's commit point; kept for completeness.
    provider = getattr(e, "provider", None)
    return _error(502, e.message, "server_error", "router_error", route_headers(provider, attempts))


def success_reply(result: RouteResult) -> Reply:
    headers = [("content-type", _JSON), *route_headers(result.provider, result.attempts)]
    if result.schema_valid is not None:
        headers.append(("x-f3dx-schema-valid", "true" if result.schema_valid else "false"))
    return Reply(200, headers, json.dumps(result.response, separators=(",", ":")).encode())


def interrupted_event(e: RouterError) -> bytes:
    """The one event that ends a stream broken after its commit point (the
    Worker's): the openai SDK raises an ``APIError`` with its message."""
    error = {"error": {"message": e.message, "type": "server_error", "code": "stream_interrupted"}}
    return b"data: " + json.dumps(error).encode() + b"\n\n"


def _stream_headers(provider: str, attempts: Sequence[Attempt]) -> list[tuple[str, str]]:
    return [
        ("content-type", "text/event-stream"),
        ("cache-control", "no-cache"),
        *route_headers(provider, attempts),
    ]


class SyncEvents:
    """A committed ``ChatStream`` as OpenAI SSE bytes; ``close()`` closes the
    upstream connection."""

    __slots__ = ("stream", "headers")

    def __init__(self, stream: ChatStream) -> None:
        self.stream = stream
        self.headers = _stream_headers(stream.provider, stream.attempts)

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self.stream.iter_sse()
        except RouterError as e:
            yield interrupted_event(e)

    def close(self) -> None:
        self.stream.close()


class AsyncEvents:
    """A committed ``AsyncChatStream`` as OpenAI SSE bytes; ``aclose()``
    closes the upstream connection."""

    __slots__ = ("stream", "headers")

    def __init__(self, stream: AsyncChatStream) -> None:
        self.stream = stream
        self.headers = _stream_headers(stream.provider, stream.attempts)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for event in self.stream.aiter_sse():
                yield event
        except RouterError as e:
            yield interrupted_event(e)

    async def aclose(self) -> None:
        await self.stream.aclose()


def route(router: Router, call: Call) -> Reply | SyncEvents:
    """Run the call: a whole answer or a committed stream, or the error."""
    try:
        if call.stream:
            return SyncEvents(router.chat_completions(call.body, tenant=call.tenant))
        return success_reply(router.route(call.body, tenant=call.tenant))
    except RouterError as e:
        return error_reply(e)


async def aroute(router: Router, call: Call) -> Reply | AsyncEvents:
    """``route`` on the router's asyncio API."""
    try:
        if call.stream:
            return AsyncEvents(await router.achat_completions(call.body, tenant=call.tenant))
        return success_reply(await router.aroute(call.body, tenant=call.tenant))
    except RouterError as e:
        return error_reply(e)


def handle(
    router: Router, tenant: str | None, method: str, path: str, tenant_header: str | None, read: Callable[[], bytes]
) -> Reply | SyncEvents:
    """A request's answer: ``read`` gives its body (read only for the one
    route served)."""
    reply = not_served(method, path)
    if reply is not None:
        return reply
    call = parse_call(read(), tenant_header, tenant)
    if isinstance(call, Reply):
        return call
    return route(router, call)


async def ahandle(
    router: Router,
    tenant: str | None,
    method: str,
    path: str,
    tenant_header: str | None,
    read: Callable[[], Awaitable[bytes]],
) -> Reply | AsyncEvents:
    """``handle`` on the router's asyncio API."""
    reply = not_served(method, path)
    if reply is not None:
        return reply
    call = parse_call(await read(), tenant_header, tenant)
    if isinstance(call, Reply):
        return call
    return await aroute(router, call)


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
