"""``f3dx_router.openai_client`` and ``async_openai_client``: the openai SDK
(v3) routed through a router, by its own ``http_client`` hook."""

from __future__ import annotations

from typing import Any, Final

try:
    import openai
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "f3dx_router.openai_client and async_openai_client need the openai SDK (v3): "
        "pip install 'f3dx-router[openai]'"
    ) from exc

from ._httpx2 import AsyncHTTPTransport, HTTPTransport
from ._router import Router

__all__ = ["openai_client", "async_openai_client", "BASE_URL", "API_KEY_PLACEHOLDER"]

#: Where the SDK believes it sends requests: never resolved (``.invalid`` is
#: reserved, RFC 2606), as the transport answers them itself.
BASE_URL: Final = "http://f3dx-router.invalid/v1"
#: The SDK refuses to build without a key; the router holds the real ones,
#: and the transport never reads or forwards this one.
API_KEY_PLACEHOLDER: Final = "f3dx-router-holds-the-keys"


def _options(kind: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    if "http_client" in kwargs:
        raise TypeError(
            f"{kind}() makes the client's http_client itself (the router's transport); to bring your "
            "own httpx2 client, pass transport=f3dx_router.HTTPTransport(router) to it and give it to "
            "openai.OpenAI(http_client=...)"
        )
    options = dict(kwargs)
    # None means "not given" here: the SDK would read OPENAI_API_KEY and
    # OPENAI_BASE_URL from the environment instead.
    if options.get("api_key") is None:
        options["api_key"] = API_KEY_PLACEHOLDER
    if options.get("base_url") is None:
        options["base_url"] = BASE_URL
    # The router already fails over; an SDK retry would route the call again.
    options.setdefault("max_retries", 0)
    return options


def openai_client(router: Router, *, tenant: str | None = None, **kwargs: Any) -> openai.OpenAI:
    """An ``openai.OpenAI`` whose requests go through ``router``::

        client = f3dx_router.openai_client(router)
        client.chat.completions.create(model="gpt-4o", messages=[...])

    Chat completions (streamed or not) are routed; any other endpoint
    answers 404 (``openai.NotFoundError``). Router errors come back as the
    SDK's exceptions: a provider's hard failure with its status
    (``AuthenticationError`` for 401, ``BadRequestError`` for 400, ...),
    all providers failing as ``InternalServerError`` (502), an invalid
    request as ``BadRequestError``, a stream broken after its first output
    as ``APIError``. ``with_raw_response`` shows the ``x-f3dx-provider``
    and ``x-f3dx-attempts`` headers.

    ``kwargs`` go to ``openai.OpenAI``, with these defaults: ``max_retries=0``
    (the router fails over itself), a placeholder ``api_key`` (never sent
    anywhere: the router holds the providers' keys), ``base_url``
    ``http://f3dx-router.invalid/v1``. The SDK's ``timeout`` is not applied
    to routed calls: each provider's ``timeout_ms`` bounds an attempt.
    ``tenant`` is the tenant of calls that send no ``x-f3dx-tenant`` header
    (``extra_headers`` sets it per call).
    """
    options = _options("openai_client", kwargs)
    transport = HTTPTransport(router, tenant=tenant)
    http_client = openai.DefaultHttpxClient(transport=transport, trust_env=False)
    return openai.OpenAI(http_client=http_client, **options)


def async_openai_client(router: Router, *, tenant: str | None = None, **kwargs: Any) -> openai.AsyncOpenAI:
    """``openai_client`` for ``openai.AsyncOpenAI``: the same routing, on the
    router's asyncio API (``await client.chat.completions.create(...)``)."""
    options = _options("async_openai_client", kwargs)
    transport = AsyncHTTPTransport(router, tenant=tenant)
    http_client = openai.DefaultAsyncHttpxClient(transport=transport, trust_env=False)
    return openai.AsyncOpenAI(http_client=http_client, **options)
