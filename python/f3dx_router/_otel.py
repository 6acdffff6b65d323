"""OpenTelemetry spans for ``Router(..., otel=True)``.

Imported by the extension only for a router built with ``otel=True``:
without it nothing of OpenTelemetry is imported and calls pay nothing.

One CLIENT span per call, named ``chat {model}``, through the global tracer
provider (``opentelemetry.trace.set_tracer_provider``), with the GenAI
semantic conventions' attributes and one span event per attempt. The span
is built after the call, from what the call recorded: its start (wall
clock, taken when the call started) and end are explicit, and its parent is
the context current when the call started (the caller's active span).
"""

from __future__ import annotations

from collections.abc import Sequence

from ._errors import ConfigError

try:
    from opentelemetry import context as otel_context
    from opentelemetry import trace
    from opentelemetry.trace import SpanKind, Status, StatusCode
    from opentelemetry.util.types import AttributeValue
except ImportError as e:  # pragma: no cover - tested in a venv without it
    raise ConfigError(
        'otel=True needs the OpenTelemetry API: pip install "f3dx-router[otel]"', field="otel"
    ) from e

from ._native import __version__

__all__ = ["ATTEMPT_EVENT", "capture", "record_call"]

#: The name of each attempt's span event.
ATTEMPT_EVENT = "f3dx.router.attempt"

_tracer = trace.get_tracer("f3dx_router", __version__)

#: (provider name, provider kind, outcome, status, fault, started_ms,
#: ended_ms, model group, model sent)
Attempt = tuple[str, str, str, int | None, str | None, float, float | None, str | None, str | None]


def capture() -> otel_context.Context:
    """The context current at a call's start: its span's parent."""
    return otel_context.get_current()


def record_call(
    parent: otel_context.Context | None,
    model: str | None,
    stream: bool,
    start_ns: int,
    end_ns: int,
    provider: tuple[str, str, str | None, str | None] | None,
    response: tuple[str | None, str | None, Sequence[str], int | None, int | None] | None,
    error: tuple[str, str] | None,
    end: str,
    attempts: Sequence[Attempt],
) -> None:
    """Build and end the span of one finished call.

    ``provider``: (name, kind, model group, model sent) of the winning
    attempt (on failure, of the attempt the error names, else the last);
    with a routing table, ``f3dx.router.group`` and
    ``f3dx.router.model`` (the model sent) go on the span and on each
    attempt's event; ``response``: (id, model,
    finish reasons, input tokens, output tokens); ``error``: (type,
    message); ``end``: ``"done"``, ``"closed"`` (a stream its reader closed
    before the end) or ``"cancelled"`` (abandoned before its answer by the
    exception ``error`` names; its attempts are not known).
    """
    attributes: dict[str, AttributeValue] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.stream": stream,
    }
    if end == "cancelled":
        attributes["f3dx.router.cancelled"] = True
    else:
        attributes["f3dx.router.attempts"] = len(attempts)
    if model is not None:
        attributes["gen_ai.request.model"] = model
    if provider is not None:
        attributes["f3dx.router.provider"] = provider[0]
        attributes["gen_ai.provider.name"] = provider[1]
        _deployment(attributes, provider[2], provider[3])
    if response is not None:
        response_id, response_model, finish_reasons, input_tokens, output_tokens = response
        if response_id is not None:
            attributes["gen_ai.response.id"] = response_id
        if response_model is not None:
            attributes["gen_ai.response.model"] = response_model
        if finish_reasons:
            attributes["gen_ai.response.finish_reasons"] = list(finish_reasons)
        if input_tokens is not None:
            attributes["gen_ai.usage.input_tokens"] = input_tokens
        if output_tokens is not None:
            attributes["gen_ai.usage.output_tokens"] = output_tokens
    if error is not None:
        attributes["error.type"] = error[0]
    if end == "closed":
        attributes["f3dx.router.stream.closed"] = True
    name = f"chat {model}" if model is not None else "chat"
    span = _tracer.start_span(name, context=parent, kind=SpanKind.CLIENT, attributes=attributes, start_time=start_ns)
    if not span.is_recording():  # sampled out, or no SDK: nothing more to build
        span.end(end_time=end_ns)
        return
    for name_, kind, outcome, status, fault, started_ms, ended_ms, group, sent in attempts:
        event: dict[str, AttributeValue] = {
            "f3dx.router.provider": name_,
            "gen_ai.provider.name": kind,
            "f3dx.router.attempt.outcome": outcome,
            "f3dx.router.attempt.start_ms": started_ms,
        }
        _deployment(event, group, sent)
        if status is not None:
            event["http.response.status_code"] = status
        if fault is not None:
            event["f3dx.router.attempt.fault"] = fault
        if ended_ms is not None:
            event["f3dx.router.attempt.end_ms"] = ended_ms
            at = start_ns + round(ended_ms * 1e6)
        else:
            at = end_ns
        span.add_event(ATTEMPT_EVENT, event, timestamp=min(at, end_ns))
    if error is not None:
        span.set_status(Status(StatusCode.ERROR, error[1]))
    span.end(end_time=end_ns)


def _deployment(attributes: dict[str, AttributeValue], group: str | None, sent: str | None) -> None:
    """The routing table's group and model sent, when there is one."""
    if group is not None:
        attributes["f3dx.router.group"] = group
    if sent is not None:
        attributes["f3dx.router.model"] = sent
