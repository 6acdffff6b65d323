"""The exception hierarchy of f3dx_router.

Every exception subclasses :class:`RouterError`, which subclasses
``RuntimeError`` so code written for the earlier f3dx router keeps working.
Messages name the provider, the status or fault, and the upstream's own
message; they never contain an API key.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._native import Attempt
    from ._types import SkippedDeployment

__all__ = [
    "RouterError",
    "ConfigError",
    "InvalidRequest",
    "HardFailure",
    "AllProvidersFailed",
    "StreamInterrupted",
]


class RouterError(RuntimeError):
    """Base class of every error the router raises."""

    def __init__(
        self, message: str, *, attempts: Sequence[Attempt] = (), skipped: Sequence[SkippedDeployment] = ()
    ) -> None:
        super().__init__(message)
        self.message = message
        #: Every upstream attempt made before the error, in start order.
        self.attempts: list[Attempt] = list(attempts)
        #: Deployments passed over without sending: they cannot carry the
        #: request's parameters (``unsupported_params: "error"``).
        self.skipped: list[SkippedDeployment] = list(skipped)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuild from the message, then restore every attribute, so errors
        # cross process boundaries (multiprocessing, concurrent.futures).
        return (type(self), (self.message,), self.__dict__)


class ConfigError(RouterError, ValueError):
    """The router's configuration is unusable; the message says what to fix."""

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message)
        #: Where the problem is, e.g. ``providers[1].base_url``.
        self.field = field

    def __repr__(self) -> str:
        return f"ConfigError(field={self.field!r}, message={self.message!r})"


class InvalidRequest(RouterError, ValueError):
    """The request cannot be sent (not a chat request, unsupported option).
    Nothing was sent to any provider for it."""


class HardFailure(RouterError):
    """A provider rejected the request with a status that must not be retried
    elsewhere (any 4xx but 408 and 429): the payload was not replayed."""

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        status: int = 0,
        body: str = "",
        attempts: Sequence[Attempt] = (),
        skipped: Sequence[SkippedDeployment] = (),
    ) -> None:
        super().__init__(message, attempts=attempts, skipped=skipped)
        #: The provider that answered.
        self.provider = provider
        #: The upstream HTTP status.
        self.status = status
        #: The upstream response body (any API key redacted).
        self.body = body

    def __repr__(self) -> str:
        return f"HardFailure(provider={self.provider!r}, status={self.status}, message={self.message!r})"


class AllProvidersFailed(RouterError):
    """Every attempt failed softly (408, 429, 5xx, connection errors,
    timeouts, undecodable bodies). ``attempts`` says how each one failed."""

    def __repr__(self) -> str:
        parts = ", ".join(f"{a.provider}:{a.status or a.fault}" for a in self.attempts)
        return f"AllProvidersFailed([{parts}])"


class StreamInterrupted(RouterError):
    """A stream failed after its first output (reset, truncation, an error
    event, no event within ``stream_idle_timeout_ms``). It was not continued
    on another provider: the caller already has part of this answer."""

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        attempts: Sequence[Attempt] = (),
        skipped: Sequence[SkippedDeployment] = (),
    ) -> None:
        super().__init__(message, attempts=attempts, skipped=skipped)
        #: The provider the stream had committed to.
        self.provider = provider

    def __repr__(self) -> str:
        return f"StreamInterrupted(provider={self.provider!r}, message={self.message!r})"
