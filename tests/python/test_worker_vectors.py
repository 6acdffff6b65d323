"""Runner 3 of the shared vectors (tests/vectors/README.md): the wasm32
worker under `wrangler dev` (workerd), its standalone endpoint configured
from the vector, against the same mock servers as runner 2.

The worker reports the winner in `x-f3dx-provider` and every attempt in
`x-f3dx-trace`, so the same checks apply (vectorrun).
"""

from __future__ import annotations

import copy
import json
import secrets

import pytest

from mock_provider import MockProviders
from vectorlib import load_vectors
from vectorrun import AttemptView, CallResult, run_call
from workerlib import WranglerDev, parse_trace

# Wider than runner 2's 250 ms: each call crosses wrangler's proxy into
# workerd, and workerd's timers and clock (which advance only across I/O)
# add a few ms per leg; a loaded 2-core CI machine adds the rest.
LATENCY_SLACK_MS = 400.0

# Vectors whose expectation the worker cannot meet, with the reason.
SKIPPED: dict[str, str] = {}

# workerd reports every failure to connect or to get a response head as the
# same "Network connection lost." (checked by hand: a refused port, a reset
# and a truncated head all read alike), so the worker cannot tell a refused
# connection from a reset one and reports both as connection_reset. Both are
# soft failures, so routing is the same; only the name differs.
WORKERD_FAULTS = {"connection_refused": "connection_reset"}

VECTORS = load_vectors()


@pytest.mark.parametrize("stem, vector", VECTORS, ids=[stem for stem, _ in VECTORS])
def test_vector_on_worker(stem: str, vector: dict) -> None:
    if stem in SKIPPED:
        pytest.skip(SKIPPED[stem])
    token = secrets.token_hex(16)
    with MockProviders(vector) as mocks:
        config = copy.deepcopy(vector["config"])
        for provider in config["providers"]:
            provider["base_url"] = mocks.base_url(provider["name"])
        variables = {"ROUTER_CONFIG": json.dumps(config), "ROUTER_TOKEN": token}
        with WranglerDev(variables) as worker:
            for i, call in enumerate(vector["calls"]):
                if "record_quality" in call:
                    status, _, reply = worker.post_json("/quality", call["record_quality"], token=token)
                    assert status == 200, f"POST /quality: {status} {reply!r}"
                    continue
                call = as_workerd_reports(call)
                wants_hedges = "hedges" in call["expect"]
                run_call(stem, vector, mocks, lambda body, tenant: post(worker, token, body, tenant, wants_hedges),
                         i, call, LATENCY_SLACK_MS)


def as_workerd_reports(call: dict) -> dict:
    """The call's expectations, with fault names workerd cannot tell apart
    merged (see WORKERD_FAULTS); everything else unchanged."""
    call = copy.deepcopy(call)
    for attempt in call["expect"].get("attempts", []):
        if attempt.get("fault") in WORKERD_FAULTS:
            attempt["fault"] = WORKERD_FAULTS[attempt["fault"]]
    return call


def post(worker: WranglerDev, token: str, body: dict, tenant: str, wants_hedges: bool = False) -> CallResult:
    result = call_worker(worker, token, body, tenant)
    if wants_hedges:
        # One isolate under wrangler dev: its stats are the router's.
        status, _, stats = worker.get_json("/stats", token=token)
        assert status == 200, f"GET /stats: {status} {stats!r}"
        result.hedges = stats["hedges"]
    return result


def call_worker(worker: WranglerDev, token: str, body: dict, tenant: str) -> CallResult:
    extra = {"x-f3dx-tenant": tenant} if tenant else {}
    status, headers, reply = worker.post_json("/v1/chat/completions", body, token=token, headers=extra)
    attempts = [AttemptView(**a) for a in parse_trace(headers.get("x-f3dx-trace"))]
    provider = headers.get("x-f3dx-provider")
    if status == 200 and headers.get("content-type", "").startswith("text/event-stream"):
        return streamed(reply, provider, attempts)
    if status == 200:
        valid = {"true": True, "false": False}.get(headers.get("x-f3dx-schema-valid", ""))
        return CallResult("success", provider=provider, response=reply, attempts=attempts, schema_valid=valid)
    error = reply.get("error", {}) if isinstance(reply, dict) else {}
    outcome = {
        "hard_failure": "hard",
        "all_providers_failed": "all_failed",
        "invalid_request": "invalid_request",
    }.get(error.get("code"), f"unexpected HTTP {status}: {reply!r}")
    return CallResult(
        outcome,
        provider=provider,
        status=status if outcome == "hard" else None,
        error_message=error.get("message"),
        attempts=attempts,
    )


def streamed(text: object, provider: str | None, attempts: list[AttemptView]) -> CallResult:
    """A streamed answer (OpenAI SSE): the chunks' text, and how it ended:
    `[DONE]`, or one error event (a failure after the commit point). The
    route headers were sent at the commit point: the attempts as of then."""
    assert isinstance(text, str), f"a stream is text, got {text!r}"
    chunks, content, end = 0, "", None
    for event in filter(None, text.split("\n\n")):
        assert event.startswith("data: "), f"not an OpenAI SSE event: {event!r}"
        data = event[len("data: "):]
        if data == "[DONE]":
            end = "done"
            continue
        value = json.loads(data)
        if "error" in value:
            end = value["error"]
            continue
        chunks += 1
        if value["choices"]:
            content += value["choices"][0]["delta"].get("content") or ""
    if end == "done":
        result = CallResult("success", provider=provider, attempts=attempts)
    elif isinstance(end, dict) and end.get("code") == "stream_interrupted":
        result = CallResult("stream_interrupted", provider=provider, error_message=end.get("message"),
                            attempts=attempts)
    else:
        result = CallResult(f"a stream that ended without [DONE] or an error event: {end!r}",
                            provider=provider, attempts=attempts)
    result.chunks, result.content = chunks, content
    return result
