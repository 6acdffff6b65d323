"""The ``f3dx_router`` logger and the records routers write to it.

Silent unless the application configures logging (the logger has a
``NullHandler``, as a library's should). What it writes:

- DEBUG, for every call the core ran: one record per attempt (provider,
  outcome, status or fault, start and end in ms from the call's start, the
  upstream's message), one, only when there are any, for the request's
  parameters some deployment could not carry (what was dropped, for whom,
  and what was skipped: ``unsupported_params``), then one for the call
  (winner or error class, latency, attempts);
- WARNING, once per transition, never once per call: a provider ejected
  (for how long and why), cooling down after a ``Retry-After`` or its
  rate-limit headers, out of its ``rpm``/``tpm`` budget; INFO when an
  ejected provider is readmitted.

Every record carries its values as attributes too (``extra=``), for
structured handlers: see ``CALL_FIELDS``, ``ATTEMPT_FIELDS`` and
``TRANSITION_FIELDS``. No record holds a key: the core redacts keys from
upstream messages before anything leaves it, and nothing else here comes
from a provider's config but its name.

The extension imports this module when the first ``Router`` is built
(``import f3dx_router`` alone does not import ``logging``) and calls the
functions below after each call; per-call records are built only when the
logger is enabled for DEBUG, which the extension checks first.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

__all__ = ["ATTEMPT_FIELDS", "CALL_FIELDS", "PARAMS_FIELDS", "TRANSITION_FIELDS", "logger", "log_call",
           "log_transitions"]

logger = logging.getLogger("f3dx_router")
logger.addHandler(logging.NullHandler())

#: ``extra=`` attributes of an attempt's record. ``model``: the model the
#: call asked for; ``group``: the model group the attempt was for and
#: ``model_sent``: the model it sent, with a routing table (``models``;
#: None without one, or when the caller's model went as it was).
ATTEMPT_FIELDS = (
    "model",
    "stream",
    "attempt",
    "provider",
    "group",
    "model_sent",
    "outcome",
    "status",
    "fault",
    "detail",
    "started_ms",
    "ended_ms",
)
#: ``extra=`` attributes of a call's record. ``outcome``: ``"success"``,
#: ``"closed"`` (a stream its reader closed before the end), or the error's
#: kind: ``"hard"``, ``"all_failed"``, ``"invalid_request"``,
#: ``"stream_interrupted"``; ``error``: the exception's class name
#: (``"HardFailure"``...; None otherwise); ``provider``: the winner, or the
#: provider the error names (None when it names none).
CALL_FIELDS = ("model", "stream", "provider", "outcome", "error", "latency_ms", "attempts")
#: ``extra=`` attributes of a transition's record. ``transition``:
#: ``"ejected"``, ``"readmitted"``, ``"cooling"``, ``"rate_limited"``,
#: ``"budget_exhausted"``; ``reason``: ``"consecutive_failures"``,
#: ``"error_rate"``, ``"failed_probe"`` (ejected), ``"retry_after"``,
#: ``"rate_limit_headers"`` (cooling), ``"rpm"``, ``"tpm"`` (budget);
#: ``for_s``: how long the state lasts (None for a readmission);
#: ``model_sent``: with a routing table, the model of the deployment whose
#: state changed (state is per provider and model sent).
TRANSITION_FIELDS = ("provider", "transition", "reason", "for_s", "model_sent")
#: ``extra=`` attributes of the record of parameters a deployment could not
#: carry: ``dropped`` and ``skipped``, each a list of ``(provider, group,
#: [parameter names])``, beside the call's ``model`` and ``stream``.
PARAMS_FIELDS = ("model", "stream", "dropped", "skipped")

#: (provider, group, parameter names): one deployment's dropped or skipped parameters
Params = tuple[str, str | None, Sequence[str]]
#: (provider, outcome, status, fault, detail, started_ms, ended_ms, group, model sent)
Attempt = tuple[str, str, int | None, str | None, str, float, float | None, str | None, str | None]
#: (provider, transition, reason, reason in words, for_s, tenant, model,
#: model sent); tenant and model only for the quality transitions
Transition = tuple[str, str, str | None, str, float | None, str | None, str | None, str | None]


def log_call(
    model: str | None,
    stream: bool,
    provider: str | None,
    outcome: str,
    error: str | None,
    latency_ms: float,
    attempts: Sequence[Attempt],
    params: tuple[Sequence[Params], Sequence[Params]] | None = None,
) -> None:
    """One DEBUG record per attempt, one for the parameters dropped or
    skipped (``params``: (dropped, skipped), None when there are none),
    then one for the call."""
    label = f"chat {model}" if model is not None else "chat"
    if stream:
        label += " (stream)"
    n = len(attempts)
    for i, (name, result, status, fault, detail, started, ended, group, sent) in enumerate(attempts, 1):
        why = "".join(part for part in (_status(status), _fault(fault)) if part)
        end = f"{ended:.1f}" if ended is not None else "..."
        logger.debug(
            "%s: attempt %d/%d to %r%s: %s%s, %.1f-%s ms%s",
            label,
            i,
            n,
            name,
            _deployment(group, sent),
            result,
            why,
            started,
            end,
            f": {detail}" if detail else "",
            extra={
                "model": model,
                "stream": stream,
                "attempt": i,
                "provider": name,
                "group": group,
                "model_sent": sent,
                "outcome": result,
                "status": status,
                "fault": fault,
                "detail": detail,
                "started_ms": started,
                "ended_ms": ended,
            },
        )
    if params is not None:
        dropped, skipped = params
        said = [f"sent to {name!r}{_deployment(group, None)} without {', '.join(names)}"
                for name, group, names in dropped]
        said += [f"skipped {name!r}{_deployment(group, None)}: cannot carry {', '.join(names)}"
                 for name, group, names in skipped]
        logger.debug(
            "%s: unsupported parameters: %s",
            label,
            "; ".join(said),
            extra={"model": model, "stream": stream,
                   "dropped": [(n, g, list(p)) for n, g, p in dropped],
                   "skipped": [(n, g, list(p)) for n, g, p in skipped]},
        )
    extra = {
        "model": model,
        "stream": stream,
        "provider": provider,
        "outcome": outcome,
        "error": error,
        "latency_ms": latency_ms,
        "attempts": n,
    }
    if outcome == "cancelled":
        # Abandoned before its answer: its attempts went with it.
        extra["attempts"] = None
        logger.debug("%s: cancelled by %s after %.1f ms", label, error, latency_ms, extra=extra)
        return
    what = error or outcome
    if outcome == "closed":
        what = "closed by its reader before the end"
    if provider is not None:
        what += f" from {provider!r}"
    logger.debug("%s: %s in %.1f ms, %d attempt%s", label, what, latency_ms, n, "" if n == 1 else "s", extra=extra)


_TRANSITIONS = {
    "ejected": (logging.WARNING, "provider %s ejected for %.1f s: %s"),
    "cooling": (logging.WARNING, "provider %s cooling down for %.1f s: %s"),
    "rate_limited": (logging.WARNING, "provider %s rate-limited for %.1f s: %s"),
    "budget_exhausted": (logging.WARNING, "provider %s out of budget for about %.1f s: %s"),
}


def log_transitions(transitions: Sequence[Transition], dropped: int) -> None:
    """One record per health transition (WARNING; INFO for a readmission),
    and a WARNING for those the router's log had to drop."""
    if dropped:
        logger.warning(
            "%d provider health transitions were not logged: more happened between two calls than the "
            "router keeps",
            dropped,
            extra={"dropped": dropped},
        )
    for name, transition, reason, words, for_s, tenant, model, sent in transitions:
        extra = {"provider": name, "transition": transition, "reason": reason, "for_s": for_s,
                 "tenant": tenant, "model": model, "model_sent": sent}
        # With a routing table the state is one deployment's: the core's
        # words, `provider 'a' (model 'm')`.
        who = repr(name) if sent is None else f"{name!r} (model {sent!r})"
        if tenant is not None:  # quality-aware routing: for one tenant and model
            if for_s is None:
                logger.info("provider %s readmitted for tenant %r, model %r: %s", who, tenant, model, words,
                            extra=extra)
            else:
                logger.warning("provider %s excluded for tenant %r, model %r for %.1f s: %s", who, tenant, model,
                               for_s, words, extra=extra)
            continue
        if transition == "readmitted" or for_s is None:
            logger.info("provider %s readmitted: %s", who, words, extra=extra)
            continue
        level, message = _TRANSITIONS.get(transition, (logging.WARNING, "provider %s: %.1f s: %s"))
        logger.log(level, message, who, for_s, words, extra=extra)


def _deployment(group: str | None, sent: str | None) -> str:
    """`` (group 'gpt-4o', model 'prod-4o')`` with a routing table."""
    parts = [f"{what} {value!r}" for what, value in (("group", group), ("model", sent)) if value is not None]
    return f" ({', '.join(parts)})" if parts else ""


def _status(status: int | None) -> str:
    return f", HTTP {status}" if status is not None else ""


def _fault(fault: str | None) -> str:
    return f", {fault}" if fault is not None else ""
