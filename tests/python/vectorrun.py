"""The checks of the shared vectors (tests/vectors/README.md), shared by every
runner that drives a real host: the native build through Python
(test_vectors.py) and the Cloudflare Worker under wrangler dev
(test_worker_vectors.py). A runner turns its host's answer into a
``CallResult`` and hands ``run_call`` a function that makes one call.

The calls of a vector run one after another on one router; the mock scripts
continue from call to call (no reset), and each call's ``upstream``
expectations see only the requests logged during it.
"""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from mock_provider import MockProviders
from vectorlib import subset_mismatch

# `latency_ms.min` is a lower bound a real host cannot beat (it waits on the
# mocks' delays); the 2 ms only absorb timer granularity.
LATENCY_EARLY_MS = 2.0

# After a call, how long to wait for the mock log to show what the call did
# (a cancelled leg's closed connection, a request still in flight).
SETTLE_S = 2.0
SETTLE_STEP_S = 0.02
# A cancelled leg must close its connection when it is cancelled, not later
# (say, when its own timeout fires): the mock must notice the close at most
# this long after the call returned. Generous for the same reasons as the
# latency slack, and well below the vectors' timeouts.
CANCEL_CLOSE_SLACK_MS = 250.0


@dataclass
class AttemptView:
    """One attempt as a host reports it."""

    provider: str
    outcome: str
    group: str | None = None
    status: int | None = None
    fault: str | None = None
    started_ms: float = 0.0
    ended_ms: float | None = None
    detail: str = ""
    # The request's parameters it was sent without (unsupported_params "drop").
    dropped: list[str] = field(default_factory=list)


@dataclass
class HttpAnswer:
    """What a front door answered (the Worker, a Python transport)."""

    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes


@dataclass
class CallResult:
    """What one call produced, whatever the host."""

    outcome: str  # "success", "hard", "all_failed", "invalid_request", "stream_interrupted", or unexpected
    provider: str | None = None
    status: int | None = None
    response: Any = None
    error_message: str | None = None
    attempts: list[AttemptView] = field(default_factory=list)
    latency_ms: float | None = None  # the host's own measure, if it has one
    # A streamed call: the chunks the caller received and their text.
    chunks: int | None = None
    content: str | None = None
    # The router's hedge counts after the call (stats()["hedges"]), read by
    # the runner when the vector expects them.
    hedges: dict[str, int] | None = None
    # Whether the answer matched the request's response_format (None: not checked).
    schema_valid: bool | None = None
    # What the front door answered, for a runner that calls through one.
    http: HttpAnswer | None = None
    # Deployments passed over without sending (their kind cannot carry a
    # parameter): {"provider", "group", "params", ...}.
    skipped: list[dict] = field(default_factory=list)


def run_call(
    stem: str,
    vector: dict,
    mocks: MockProviders,
    make_call: Callable[[dict], CallResult],
    i: int,
    call: dict,
    latency_slack_ms: float,
    set_api_key: Callable[[dict], None] | None = None,
    explain: Callable[[dict], Any] | None = None,
) -> None:
    """Make call ``i`` of a vector and check everything it expects.
    ``set_api_key`` sets a key (a ``set_api_key`` step's ``{"provider",
    "api_key"}``) on the router of the call, for a call with ``during``;
    ``explain`` (the host's, for the call's request) answers ``expect.explain``."""
    expect = call["expect"]
    gap_ms = call.get("gap_ms", 0)
    if gap_ms:
        # A deliberate wait (e.g. for a cooldown to expire), not a timing assertion.
        time.sleep(gap_ms / 1000.0)
    if "explain" in expect:
        assert explain is not None, "this runner cannot check expect.explain"
        found = subset_mismatch(expect["explain"], explain(call), "explain")
        if found:
            pytest.fail(f"{stem}: call {i}: {found}", pytrace=False)

    before = {name: len(records) for name, records in mocks.log().items()}
    started_mono = time.monotonic()
    t0 = time.perf_counter()
    if "during" in call:
        assert set_api_key is not None, "this runner cannot set a key during a call"
        result = during_call(mocks, make_call, call, before, set_api_key)
    else:
        result = make_call(call)
    elapsed_ms = (time.perf_counter() - t0) * 1000.0
    ended_mono = time.monotonic()

    attempts = result.attempts
    log = settle(mocks, vector, before, expect, attempts, elapsed_ms)
    this_call = {name: records[before.get(name, 0):] for name, records in log.items()}

    problems: list[str] = []
    problems += check_outcome(expect, result)
    problems += check_front_door(expect, result.http)
    problems += check_attempts(expect, attempts)
    if "skipped" in expect:
        found = subset_mismatch(expect["skipped"], result.skipped, "skipped")
        if found:
            problems.append(found)
    problems += check_latency(expect, elapsed_ms, latency_slack_ms)
    problems += check_upstream(expect, this_call)
    problems += check_cancelled_closed(vector, attempts, this_call, elapsed_ms, ended_mono)
    for name, records in this_call.items():
        for r in records:
            if r["exhausted"]:
                problems.append(f"{name} got a request beyond the end of its script (index {r['index']})")
    if problems:
        pytest.fail(
            report(stem, i, len(vector["calls"]), problems, result, elapsed_ms, this_call, started_mono),
            pytrace=False,
        )


# Bounds of a `during` step: how long the call may take to send its request
# to `after_sent_to`, how often the mock log is read meanwhile, and how long
# the call may then take to end.
DURING_SEND_S = 10.0
DURING_STEP_S = 0.002
DURING_END_S = 60.0


def during_call(
    mocks: MockProviders,
    make_call: Callable[[dict], CallResult],
    call: dict,
    before: dict[str, int],
    set_api_key: Callable[[dict], None],
) -> CallResult:
    """Make the call on a thread and, once the mock of ``during.after_sent_to``
    has received its request (an event, read from the mock log), set
    ``during.set_api_key`` while the call is in flight."""
    during = call["during"]
    name = during["after_sent_to"]
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["result"] = make_call(call)
        except BaseException as e:  # re-raised on the test's thread
            out["error"] = e

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    deadline = time.monotonic() + DURING_SEND_S
    while len(mocks.log().get(name, [])) <= before.get(name, 0):
        if not thread.is_alive():
            pytest.fail(f"during: the call ended without sending to {name!r}", pytrace=False)
        if time.monotonic() > deadline:
            pytest.fail(f"during: nothing sent to {name!r} within {DURING_SEND_S} s", pytrace=False)
        time.sleep(DURING_STEP_S)
    set_api_key(during["set_api_key"])
    thread.join(DURING_END_S)
    if thread.is_alive():
        pytest.fail(f"during: the call did not end within {DURING_END_S} s", pytrace=False)
    if "error" in out:
        raise out["error"]
    result: CallResult = out["result"]
    return result


# --------------------------------------------------------------------------
# the front door (tests/vectors/README.md: `http` calls, `front_door`)

CHAT = "/v1/chat/completions"


def front_door_request(call: dict) -> tuple[str, str, bytes, dict[str, str]]:
    """The call as an HTTP request to a front door: its ``http`` (method,
    path, ``body_text``) or a POST of its ``request``; its tenant as the
    ``x-f3dx-tenant`` header, and its own ``headers``. Returns method, path,
    body, headers."""
    http = call.get("http") or {}
    method = http.get("method", "POST")
    path = http.get("path", CHAT)
    body = http["body_text"].encode() if "body_text" in http else json.dumps(call.get("request")).encode()
    headers = {"content-type": "application/json"}
    if call.get("tenant"):
        headers["x-f3dx-tenant"] = call["tenant"]
    headers.update(call.get("headers") or {})
    return method, path, body, headers


# The router's own error codes, and the outcome each stands for. A hard
# failure carries the provider's own error: it is told by its
# `x-f3dx-provider` header (the provider of a hard failure).
OUTCOME_OF_CODE = {"all_providers_failed": "all_failed", "invalid_request": "invalid_request"}


def result_of_answer(answer: HttpAnswer, attempts: list[AttemptView]) -> CallResult:
    """What a front door's answer says of the call: its outcome, the provider,
    the error message, the streamed chunks; the attempts come from the
    runner (the headers' trace, or the router's own record)."""
    provider = answer.headers.get("x-f3dx-provider")
    text = answer.body.decode(errors="replace")
    if answer.status == 200 and answer.headers.get("content-type", "").startswith("text/event-stream"):
        result = streamed(text, provider, attempts)
    elif answer.status == 200:
        valid = {"true": True, "false": False}.get(answer.headers.get("x-f3dx-schema-valid", ""))
        result = CallResult("success", provider=provider, response=json.loads(text), attempts=attempts,
                            schema_valid=valid)
    else:
        try:
            reply = json.loads(text)
        except ValueError:
            reply = text
        error = reply.get("error", {}) if isinstance(reply, dict) else {}
        if provider is not None:
            outcome = "hard"
        else:
            outcome = OUTCOME_OF_CODE.get(error.get("code"), f"unexpected HTTP {answer.status}: {reply!r}")
        result = CallResult(
            outcome,
            provider=provider,
            status=answer.status if outcome == "hard" else None,
            error_message=error.get("message"),
            attempts=attempts,
        )
    result.http = answer
    result.skipped = [{"provider": p, "group": g, "params": names}
                      for p, g, names in parse_params_line(answer.headers.get("x-f3dx-skipped"))]
    dropped = parse_params_line(answer.headers.get("x-f3dx-dropped"))
    for attempt in attempts:
        # The header lists the attempts sent without some parameters, in order.
        if dropped and dropped[0][:2] == (attempt.provider, attempt.group):
            attempt.dropped = dropped.pop(0)[2]
    return result


def parse_params_line(header: str | None) -> list[tuple[str, str | None, list[str]]]:
    """`x-f3dx-skipped` / `x-f3dx-dropped`: `name[group]=param param, ...`
    (group and parameters percent-encoded where the line needs it)."""
    entries = []
    for entry in filter(None, (header or "").split(", ")):
        name, _, params = entry.partition("=")
        group = None
        if name.endswith("]") and "[" in name:
            name, _, quoted = name[:-1].partition("[")
            group = urllib.parse.unquote(quoted)
        entries.append((name, group, [urllib.parse.unquote(p) for p in params.split(" ") if p]))
    return entries


def streamed(text: str, provider: str | None, attempts: list[AttemptView]) -> CallResult:
    """A streamed answer (OpenAI SSE): the chunks' text, and how it ended:
    `[DONE]`, or one error event (a failure after the commit point)."""
    chunks, content, end = 0, "", None
    for event in filter(None, text.split("\n\n")):
        lines = event.split("\n")
        if not all(line.startswith("data: ") for line in lines):
            return CallResult(f"not an OpenAI SSE event: {event!r}", provider=provider, attempts=attempts)
        # A text passed on as it came may span lines, each a `data:` line.
        data = "\n".join(line[len("data: "):] for line in lines)
        if data == "[DONE]":
            end = "done"
            continue
        value = json.loads(data)
        if "error" in value:
            end = value["error"]
            continue
        chunks += 1
        if value["choices"]:
            content += value["choices"][0].get("delta", {}).get("content") or ""
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


def check_front_door(expect: dict, answer: HttpAnswer | None) -> list[str]:
    """The ``front_door`` expectation; none for a runner that calls the API
    directly (``answer`` None)."""
    want = expect.get("front_door")
    if want is None or answer is None:
        return []
    problems = []
    if "status" in want and answer.status != want["status"]:
        problems.append(f"front_door.status: expected {want['status']}, got {answer.status}")
    headers = dict(answer.headers)
    if "x-f3dx-trace" in headers:
        # Start times differ by host.
        headers["x-f3dx-trace"] = re.sub(r"@[0-9.]+", "", headers["x-f3dx-trace"])
    if "content-type" in headers:
        headers["content-type"] = headers["content-type"].split(";")[0].strip()
    found = subset_mismatch(want.get("headers", {}), headers, "front_door.headers")
    if found:
        problems.append(found)
    for name in want.get("absent_headers", []):
        if name in headers:
            problems.append(f"front_door.headers: {name!r} must be absent, it is {headers[name]!r}")
    text = answer.body.decode(errors="replace")
    if headers.get("content-type") == "text/event-stream":
        events = [e for e in text.split("\n\n") if e]
        last = events[-1].removeprefix("data: ") if events else ""
        if last == "[DONE]":
            end, error = "done", None
        else:
            try:
                error = json.loads(last).get("error")
            except ValueError:
                error = None
            end = "interrupted" if error is not None else "neither"
    else:
        end = None
        try:
            body = json.loads(text)
        except ValueError:
            problems.append(f"front_door: the body is not JSON: {text[:200]!r}")
            body = None
        error = body.get("error") if isinstance(body, dict) else None
    if "end" in want and end != want["end"]:
        problems.append(f"front_door.end: expected {want['end']!r}, got {end!r}")
    if "body" in want and text != want["body"]:
        problems.append(f"front_door.body: expected {want['body']!r}, got {text!r}")
    if "error" in want:
        found = subset_mismatch(want["error"], error, "front_door.error")
        if found:
            problems.append(found)
    return problems


# --------------------------------------------------------------------------
# waiting for the mocks


def settle(
    mocks: MockProviders, vector: dict, before: dict, expect: dict, attempts: list, elapsed_ms: float
) -> dict[str, list[dict]]:
    """Poll the mock log (bounded) until it shows everything this call should
    have left there, and return it; on timeout, return the last one read and
    let the checks say what is missing."""
    deadline = time.monotonic() + SETTLE_S
    while True:
        log = mocks.log()
        this_call = {name: records[before.get(name, 0):] for name, records in log.items()}
        if not pending(vector, expect, attempts, this_call, elapsed_ms) or time.monotonic() >= deadline:
            return log
        time.sleep(SETTLE_STEP_S)


def pending(vector: dict, expect: dict, attempts: list, this_call: dict, elapsed_ms: float) -> bool:
    for name, expected in (expect.get("upstream") or {}).items():
        if len(this_call.get(name, [])) < len(expected):
            return True
    for attempt in attempts:
        if attempt.outcome != "cancelled":
            continue
        records = this_call.get(attempt.provider, [])
        if not records:
            return True  # the request may still be on its way
        for record in records:
            if must_see_close(vector, attempt.provider, record, elapsed_ms) and not record["disconnected_early"]:
                return True
    return False


def script_entry(vector: dict, provider: str, record: dict) -> dict | None:
    responses = vector["mocks"].get(provider, {}).get("responses") or []
    index = record["index"]
    return responses[index] if 0 <= index < len(responses) else None


def must_see_close(vector: dict, provider: str, record: dict, elapsed_ms: float) -> bool:
    """Whether the mock was still holding this request when the call ended, so
    a cancelled attempt must have closed its connection. A cancelled attempt
    may also have been answered already but not read; nothing to prove then."""
    entry = script_entry(vector, provider, record)
    if entry is None:
        return False
    return entry.get("fault") == "stall" or entry.get("delay_ms", 0) > elapsed_ms


# --------------------------------------------------------------------------
# the checks; each returns a list of readable problems



# --------------------------------------------------------------------------
# the checks; each returns a list of readable problems


def check_outcome(expect: dict, result: CallResult) -> list[str]:
    problems = []
    if "outcome" in expect and result.outcome != expect["outcome"]:
        problems.append(f"outcome: expected {expect['outcome']!r}, got {result.outcome!r}")

    if "provider" in expect and result.provider != expect["provider"]:
        problems.append(f"provider: expected {expect['provider']!r}, got {result.provider!r}")

    if "status" in expect and result.status != expect["status"]:
        problems.append(f"status: expected {expect['status']!r}, got {result.status!r}")

    if "content" in expect and result.content != expect["content"]:
        problems.append(f"content: expected {expect['content']!r}, got {result.content!r}")

    if "schema_valid" in expect and result.schema_valid != expect["schema_valid"]:
        problems.append(f"schema_valid: expected {expect['schema_valid']!r}, got {result.schema_valid!r}")

    if "hedges" in expect:
        found = subset_mismatch(expect["hedges"], result.hedges, "hedges")
        if found:
            problems.append(found)

    if "chunks" in expect and result.chunks != expect["chunks"]:
        problems.append(f"chunks: expected {expect['chunks']!r}, got {result.chunks!r}")

    if "response" in expect:
        if result.outcome != "success":
            problems.append("response: expected a response, the call failed")
        else:
            found = subset_mismatch(expect["response"], result.response, "response")
            if found:
                problems.append(found)

    if "error_contains" in expect:
        wanted = expect["error_contains"]
        if isinstance(wanted, str):
            wanted = [wanted]
        if result.error_message is None:
            problems.append(f"error_contains: expected an error containing {wanted!r}, the call succeeded")
        else:
            message = result.error_message
            for text in wanted:
                if text not in message:
                    problems.append(f"error_contains: {text!r} is not in the error message {message!r}")
    return problems


def attempt_fields(attempt: Any) -> dict:
    return {
        "provider": attempt.provider,
        "outcome": attempt.outcome,
        "status": attempt.status,
        "fault": attempt.fault,
        "group": attempt.group,
        "dropped": attempt.dropped,
    }


def check_attempts(expect: dict, attempts: list) -> list[str]:
    problems = []
    if "attempts" in expect:
        found = subset_mismatch(expect["attempts"], [attempt_fields(a) for a in attempts], "attempts")
        if found:
            problems.append(found)
    starts = [a.started_ms for a in attempts]
    if starts != sorted(starts):
        problems.append(f"attempts are not ordered by start time: started_ms = {starts}")
    return problems


def check_latency(expect: dict, elapsed_ms: float, slack_ms: float) -> list[str]:
    bounds = expect.get("latency_ms")
    if not bounds:
        return []
    problems = []
    if "min" in bounds and elapsed_ms < bounds["min"] - LATENCY_EARLY_MS:
        problems.append(f"latency: {elapsed_ms:.1f} ms, below the minimum {bounds['min']} ms")
    if "max" in bounds and elapsed_ms > bounds["max"] + slack_ms:
        problems.append(
            f"latency: {elapsed_ms:.1f} ms, above the maximum {bounds['max']} ms "
            f"(+ {slack_ms:.0f} ms slack for a real host)"
        )
    return problems


def check_upstream(expect: dict, this_call: dict) -> list[str]:
    problems = []
    for name, expected in (expect.get("upstream") or {}).items():
        if name not in this_call:
            problems.append(f"upstream.{name}: no such mock provider")
            continue
        got = this_call[name]
        if len(got) != len(expected):
            problems.append(
                f"upstream.{name}: expected {len(expected)} request(s) in this call, "
                f"the mock got {len(got)}"
            )
        for j, (exp, record) in enumerate(zip(expected, got)):
            where = f"upstream.{name}[{j}]"
            if "path" in exp and record["path"] != exp["path"]:
                problems.append(f"{where}.path: expected {exp['path']!r}, got {record['path']!r}")
            if "headers" in exp:
                wanted = {key.lower(): value for key, value in exp["headers"].items()}
                found = subset_mismatch(wanted, record["headers"], f"{where}.headers")
                if found:
                    problems.append(found)
            for header in exp.get("absent_headers", []):
                if header.lower() in record["headers"]:
                    problems.append(f"{where}.headers: {header.lower()!r} must be absent, it was sent")
            if "json" in exp:
                if record["json"] is None and exp["json"] is not None:
                    problems.append(f"{where}.json: the body is not JSON: {record['body'][:200]!r}")
                else:
                    found = subset_mismatch(exp["json"], record["json"], f"{where}.json")
                    if found:
                        problems.append(found)
    return problems


def check_cancelled_closed(
    vector: dict, attempts: list, this_call: dict, elapsed_ms: float, ended_mono: float
) -> list[str]:
    """A cancelled attempt whose request the mock was still holding must have
    closed its connection when it was cancelled: the mock records that as
    disconnected_early, and when it noticed as disconnected_at."""
    problems = []
    for k, attempt in enumerate(attempts):
        if attempt.outcome != "cancelled":
            continue
        for record in this_call.get(attempt.provider, []):
            if not must_see_close(vector, attempt.provider, record, elapsed_ms):
                continue
            if not record["disconnected_early"]:
                problems.append(
                    f"attempts[{k}] ({attempt.provider}) was cancelled, but its connection stayed open: "
                    f"the mock saw no close within {SETTLE_S:.0f} s"
                )
                continue
            late_ms = (record["disconnected_at"] - ended_mono) * 1000.0
            if late_ms > CANCEL_CLOSE_SLACK_MS:
                problems.append(
                    f"attempts[{k}] ({attempt.provider}) was cancelled, but its connection closed only "
                    f"{late_ms:.0f} ms after the call returned (a timeout?), not when it was cancelled"
                )
    return problems


# --------------------------------------------------------------------------
# the failure report


def report(
    stem: str,
    i: int,
    n: int,
    problems: list[str],
    result: CallResult,
    elapsed_ms: float,
    this_call: dict,
    started_mono: float,
) -> str:
    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f}"

    lines = [f"vector {stem}, call {i} (of {n}):"]
    lines += [f"  - {p}" for p in problems]
    lines.append(f"measured latency: {elapsed_ms:.1f} ms")
    if result.outcome == "success":
        lines.append(f"result: success from {result.provider!r}, host latency_ms={ms(result.latency_ms)}")
    else:
        lines.append(f"result: {result.outcome} (status {result.status}): {result.error_message}")
    lines.append("attempts:")
    for k, a in enumerate(result.attempts):
        lines.append(
            f"  [{k}] {a.provider} {a.outcome} status={a.status} fault={a.fault} "
            f"started={ms(a.started_ms)} ended={ms(a.ended_ms)} detail={a.detail!r}"
        )
    lines.append("mock log for this call (received relative to the call's start):")
    for name, records in this_call.items():
        for r in records:
            lines.append(
                f"  {name}[{r['index']}] {r['method']} {r['path']} "
                f"+{(r['received_at'] - started_mono) * 1000:.1f} ms "
                f"disconnected_early={r['disconnected_early']} "
                + (
                    f"(+{(r['disconnected_at'] - started_mono) * 1000:.1f} ms) "
                    if r.get("disconnected_at") is not None
                    else ""
                )
                + f"exhausted={r['exhausted']}"
            )
    return "\n".join(lines)
