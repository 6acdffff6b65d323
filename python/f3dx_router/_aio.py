"""The async twins of ``Router.chat_completions`` and ``Router.route``.

Coroutines (so ``asyncio.create_task`` and ``inspect.iscoroutinefunction``
work as they do for any async API) around the native methods, which start
the call on the router's background runtime and return an asyncio future of
its answer. Cancelling the awaiting task cancels that future, which cancels
every leg of the call.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._native import RouteResult, Router


async def achat_completions(self: Router, body: Mapping[str, Any], *, tenant: str | None = None) -> Any:
    """Route one request; return the OpenAI-shaped response, or an
    ``AsyncChatStream`` at the commit point when ``body["stream"]`` is True."""
    return await self._achat_completions(body, tenant=tenant)


async def aroute(self: Router, body: Mapping[str, Any], *, tenant: str | None = None) -> RouteResult:
    """Route one request; return the response with its attempts."""
    return await self._aroute(body, tenant=tenant)
