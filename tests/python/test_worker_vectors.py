"""Runner 3 of the shared vectors (tests/vectors/README.md): the wasm32
worker under `wrangler dev` (workerd), its standalone endpoint configured
from the vector, against the same mock servers as runner 2.

The worker reports the winner in `x-f3dx-provider` and every attempt in
`x-f3dx-trace`, so the same checks apply (vectorrun), and what its front
door answers is checked against each call's `front_door`.
"""

from __future__ import annotations

import copy
import json
import secrets
from pathlib import Path

import pytest

from mock_provider import MockProviders
from vectorlib import load_vectors
from vectorrun import AttemptView, CallResult, HttpAnswer, front_door_request, result_of_answer, run_call
from workerlib import WranglerDev, parse_trace

# The embedded router behind the TypeScript example, with a route that sets
# keys: where the vectors that rotate keys run (tests/vectors/README.md).
KEYS_DOOR = Path(__file__).resolve().parent / "worker_keys_door.ts"

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
        embedded = sets_keys(vector)
        with WranglerDev(variables, main=KEYS_DOOR if embedded else None) as worker:

            def set_key(step: dict) -> None:
                status, _, reply = worker.post_json("/_test/keys", step, token=token)
                assert status == 200, f"POST /_test/keys: {status} {reply!r}"

            for i, call in enumerate(vector["calls"]):
                if "record_quality" in call:
                    status, _, reply = worker.post_json("/quality", call["record_quality"], token=token)
                    assert status == 200, f"POST /quality: {status} {reply!r}"
                    continue
                if "set_api_key" in call:
                    set_key(call["set_api_key"])
                    continue
                call = as_workerd_reports(call)
                if embedded:
                    call, count = attempts_as_count(call)
                    make = lambda c, n=count: counted(call_worker(worker, token, c), n)  # noqa: E731
                else:
                    wants_hedges = "hedges" in call["expect"]
                    make = lambda c, h=wants_hedges: post(worker, token, c, h)  # noqa: E731
                run_call(stem, vector, mocks, make, i, call, LATENCY_SLACK_MS, set_api_key=set_key,
                         explain=None if embedded else (lambda c: explain(worker, token, c)))


def sets_keys(vector: dict) -> bool:
    """Whether a vector rotates keys (then it runs on the embedded router)."""
    return any("set_api_key" in c or "during" in c for c in vector["calls"])


def attempts_as_count(call: dict) -> tuple[dict, int | None]:
    """The call without its `attempts` expectation, and their number: the
    embedded example reports only that (`x-f3dx-attempts`)."""
    call = copy.deepcopy(call)
    attempts = call["expect"].pop("attempts", None)
    return call, None if attempts is None else len(attempts)


def counted(result: CallResult, count: int | None) -> CallResult:
    """`result`, once its `x-f3dx-attempts` is checked against ``count``."""
    assert result.http is not None
    if count is not None and result.http.headers.get("x-f3dx-attempts") != str(count):
        pytest.fail(f"x-f3dx-attempts: {result.http.headers.get('x-f3dx-attempts')!r}, expected {count}",
                    pytrace=False)
    return result


def as_workerd_reports(call: dict) -> dict:
    """The call's expectations, with fault names workerd cannot tell apart
    merged (see WORKERD_FAULTS); everything else unchanged."""
    call = copy.deepcopy(call)
    for attempt in call["expect"].get("attempts", []):
        if attempt.get("fault") in WORKERD_FAULTS:
            attempt["fault"] = WORKERD_FAULTS[attempt["fault"]]
    return call


def post(worker: WranglerDev, token: str, call: dict, wants_hedges: bool = False) -> CallResult:
    result = call_worker(worker, token, call)
    if wants_hedges:
        # One isolate under wrangler dev: its stats are the router's.
        status, _, stats = worker.get_json("/stats", token=token)
        assert status == 200, f"GET /stats: {status} {stats!r}"
        result.hedges = stats["hedges"]
    return result


def explain(worker: WranglerDev, token: str, call: dict) -> dict:
    """The Worker's `POST /explain` for the call's request."""
    headers = {"x-f3dx-tenant": call["tenant"]} if call.get("tenant") else None
    status, _, reply = worker.post_json("/explain", call["request"], token=token, headers=headers)
    assert status == 200, f"POST /explain: {status} {reply!r}"
    return reply


def call_worker(worker: WranglerDev, token: str, call: dict) -> CallResult:
    """The call through the worker's front door; the attempts from its
    `x-f3dx-trace` (at a stream's commit point)."""
    method, path, body, headers = front_door_request(call)
    headers["authorization"] = f"Bearer {token}"
    status, reply_headers, raw = worker.request(method, path, body, headers)
    attempts = [AttemptView(**a) for a in parse_trace(reply_headers.get("x-f3dx-trace"))]
    return result_of_answer(HttpAnswer(status, reply_headers, raw), attempts)
