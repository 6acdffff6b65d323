"""Runner 2 of the shared vectors (tests/vectors/README.md): the native build,
through the Python API, against real mock servers on 127.0.0.1.

One test per vector file; the checks are vectorrun's, shared with the worker.
The vectors that say what the front door answers (`front_door`, or calls
made at the door: `http`) run again through both HTTP transports
(`f3dx_router.HTTPTransport` over httpx2, `f3dx_router.httpx_compat` over
httpx), each on a router and mocks of its own.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import httpx
import httpx2
import pytest

# Imported unconditionally: without the built extension this runner must fail
# loudly, never skip.
from f3dx_router import (
    AllProvidersFailed,
    Attempt,
    HardFailure,
    InvalidRequest,
    Router,
    RouterError,
    StreamInterrupted,
)
from mock_provider import MockProviders
from vectorlib import load_vectors
from vectorrun import AttemptView, CallResult, HttpAnswer, front_door_request, result_of_answer, run_call
from workerlib import parse_trace

import f3dx_router
from f3dx_router import httpx_compat

# Real sockets, thread wake-ups and a loaded 2-core CI machine make a call
# finish later than its ideal time, so `latency_ms.max` gets this much slack
# here. Runner 1 (the core on a virtual clock) checks the exact bounds.
LATENCY_SLACK_MS = 250.0

VECTORS = load_vectors()


def at_the_front_door(vector: dict) -> bool:
    return any("http" in c or "front_door" in c.get("expect", {}) for c in vector["calls"])


# The front doors a vector runs through: the API for every vector; the two
# HTTP transports for those that say what the door answers.
DOORS = [pytest.param(stem, vector, "api", id=stem) for stem, vector in VECTORS] + [
    pytest.param(stem, vector, door, id=f"{stem}-{door}")
    for door in ("httpx2", "httpx")
    for stem, vector in VECTORS
    if at_the_front_door(vector)
]


@pytest.mark.parametrize("stem, vector, door", DOORS)
def test_vector(stem: str, vector: dict, door: str) -> None:
    assert vector.get("name") == stem, f"vector name {vector.get('name')!r} is not its file's stem"
    calls = vector["calls"]
    assert calls, "a vector needs at least one call"
    with MockProviders(vector) as mocks:
        router = build_router(vector, mocks)
        make_call = caller(router, door)
        for i, call in enumerate(calls):
            if "record_quality" in call:
                record = call["record_quality"]
                router.record_quality(record["provider"], record["passed"], model=record["model"],
                                      tenant=record.get("tenant", ""))
                continue
            if "set_api_key" in call:
                set_key(router, call["set_api_key"])
                continue
            if "http" in call and door == "api":
                continue  # a request the API cannot make (not JSON, another route)
            run_call(stem, vector, mocks, lambda c: with_hedges(router, make_call(c)), i, call, LATENCY_SLACK_MS,
                     set_api_key=lambda step: set_key(router, step),
                     explain=lambda c: router.explain(c["request"], tenant=c.get("tenant", "")))
        log = mocks.log()
        exhausted = [f"{name}[{r['index']}]" for name, recs in log.items() for r in recs if r["exhausted"]]
        assert not exhausted, f"requests beyond the end of a mock script: {exhausted}"


def set_key(router: Router, step: dict) -> None:
    """A vector's `set_api_key` step: ``{"provider", "api_key"}``."""
    router.set_api_key(step["provider"], step["api_key"])


def build_router(vector: dict, mocks: MockProviders) -> Router:
    config = vector["config"]
    providers = []
    for provider in config["providers"]:
        provider = copy.deepcopy(provider)
        name = provider["name"]
        assert name in mocks.ports, f"provider {name!r} has no entry in the vector's mocks"
        provider["base_url"] = mocks.base_url(name)
        providers.append(provider)
    # policy, hedge_k, hedge_delay_ms, ...: only what the vector sets, so the
    # Router's defaults apply to the rest.
    options = {key: value for key, value in config.items() if key != "providers"}
    return Router(providers, **options)


def caller(router: Router, door: str) -> Callable[[dict], CallResult]:
    """How a call of a vector is made through ``door``."""
    if door == "api":
        return lambda call: route(router, call["request"], call.get("tenant", ""), call.get("headers"))
    client: httpx2.Client | httpx.Client
    if door == "httpx2":
        client = httpx2.Client(transport=f3dx_router.HTTPTransport(router))
    else:
        client = httpx.Client(transport=httpx_compat.HTTPTransport(router))

    def through_transport(call: dict) -> CallResult:
        method, path, body, headers = front_door_request(call)
        r = client.request(method, "http://f3dx-router.invalid" + path, content=body, headers=headers)
        answer = HttpAnswer(r.status_code, {k.lower(): v for k, v in r.headers.items()}, r.content)
        # The headers' trace, as the Worker runner reads it.
        attempts = [AttemptView(**a) for a in parse_trace(answer.headers.get("x-f3dx-trace"))]
        return result_of_answer(answer, attempts)

    return through_transport


def with_hedges(router: Router, result: CallResult) -> CallResult:
    result.hedges = dict(router.stats()["hedges"])
    return result


def route(router: Router, body: dict, tenant: str, headers: dict[str, str] | None = None) -> CallResult:
    if body.get("stream") is True:
        return stream(router, body, tenant, headers)
    try:
        res = router.route(body, tenant=tenant, headers=headers)
    except RouterError as error:
        return CallResult(
            outcome=outcome_of(error),
            provider=getattr(error, "provider", None),
            status=getattr(error, "status", None),
            error_message=str(error),
            attempts=[view(a) for a in error.attempts],
            skipped=[dict(s) for s in error.skipped],
        )
    return CallResult(
        outcome="success",
        provider=res.provider,
        response=res.response,
        attempts=[view(a) for a in res.attempts],
        latency_ms=res.latency_ms,
        schema_valid=res.schema_valid,
        skipped=[dict(s) for s in res.skipped],
    )


def stream(router: Router, body: dict, tenant: str, headers: dict[str, str] | None = None) -> CallResult:
    """A streamed call, read to its end: its chunks' text, and how it ended."""
    try:
        s = router.chat_completions(body, tenant=tenant, headers=headers)
    except RouterError as error:
        return failed(error)
    chunks: list[dict] = []
    try:
        with s:
            for chunk in s:
                chunks.append(chunk)
    except StreamInterrupted as error:
        result = failed(error)
    else:
        result = CallResult(outcome="success", provider=s.provider, attempts=[view(a) for a in s.attempts])
    result.chunks = len(chunks)
    result.content = "".join((c["choices"][0].get("delta", {}).get("content") or "") for c in chunks if c["choices"])
    return result


def failed(error: RouterError) -> CallResult:
    return CallResult(
        outcome=outcome_of(error),
        provider=getattr(error, "provider", None),
        status=getattr(error, "status", None),
        error_message=str(error),
        attempts=[view(a) for a in error.attempts],
        skipped=[dict(s) for s in error.skipped],
    )


def view(a: Attempt) -> AttemptView:
    return AttemptView(a.provider, a.outcome, a.group, a.status, a.fault, a.started_ms, a.ended_ms, a.detail,
                       list(a.dropped))


def outcome_of(error: BaseException) -> str:
    if isinstance(error, InvalidRequest):
        return "invalid_request"
    if isinstance(error, HardFailure):
        return "hard"
    if isinstance(error, AllProvidersFailed):
        return "all_failed"
    if isinstance(error, StreamInterrupted):
        return "stream_interrupted"
    return f"unclassified {type(error).__name__}"
