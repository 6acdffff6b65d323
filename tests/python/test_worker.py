"""The worker's HTTP contract under `wrangler dev`: the standalone endpoint
(build/shim.mjs) and the TypeScript example that embeds the router
(worker/examples/typescript), against the mock providers on 127.0.0.1.

One set of looping mocks serves the whole module; every provider always
answers the same way, so tests do not depend on each other's order. Each
named setup (SETUPS: a ROUTER_CONFIG, its variables and the entry point)
gets one `wrangler dev`, shared by every test that names it with `on(...)`;
the setups the selected tests need start together, a few at a time. A
request carries a fresh marker in its message so that a test finds its own
upstream requests in the shared mock logs.

The worker must be built first (scripts/build-worker.sh) and worker/
node_modules installed; see workerlib.
"""

from __future__ import annotations

import json
import secrets
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from mock_provider import MockProviders
from workerlib import ROOT, WranglerDev, parse_trace

CHAT = "/v1/chat/completions"
MAX_REQUEST_BYTES = 4 * 1024 * 1024  # worker/src/handler.rs
TIMEOUT_S = 20.0  # per request; a call here takes milliseconds
START_IN_PARALLEL = 4  # wrangler dev start-ups at once (2 cores: ~2x faster than one by one)
TS_EXAMPLE = ROOT / "worker" / "examples" / "typescript" / "src" / "index.ts"

TOKEN = secrets.token_hex(16)
A_KEY = f"sk-a-{secrets.token_hex(16)}"  # reaches the worker only as the A_KEY variable
B_KEY = f"sk-b-{secrets.token_hex(16)}"  # written in ROUTER_CONFIG itself


def completion(text: str) -> dict[str, Any]:
    return {
        "status": 200,
        "json": {
            "id": "chatcmpl-mock",
            "object": "chat.completion",
            "created": 1,
            "model": "gpt-4o",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
        },
    }


def upstream_error(status: int, message: str) -> dict[str, Any]:
    return {"status": status, "json": {"error": {"message": message, "type": "server_error", "code": None}}}


# Each script is one response, replayed forever (loop=True).
MOCKS = {
    "a": {"responses": [completion("hello from a")]},
    "b": {"responses": [completion("hello from b")]},
    "flaky": {"responses": [upstream_error(503, "overloaded")]},
    "broken": {"responses": [upstream_error(502, "bad gateway")]},
    "denied": {"responses": [upstream_error(401, "Incorrect API key provided")]},
    # Not an HTTP status a Response may carry (200..=599), yet a hard failure.
    "weird": {"responses": [upstream_error(600, "nonstandard status")]},
    # JSON a schema check cannot judge: deeper than the parser goes, and a
    # number past a double.
    "deep": {"responses": [completion("[" * 10_000 + "]" * 10_000)]},
    "huge": {"responses": [completion("1e100000")]},
}


def provider(mocks: MockProviders, name: str, **extra: Any) -> dict[str, Any]:
    key: dict[str, str] = {"api_key_env": "A_KEY"} if name == "a" else {"api_key": B_KEY}
    return {"name": name, "kind": "openai", "base_url": mocks.base_url(name), "timeout_ms": 5000, **key, **extra}


def config(mocks: MockProviders, *names: str, **top: Any) -> str:
    return json.dumps({"policy": "sequential", **top, "providers": [provider(mocks, n) for n in names]})


def variables(router_config: str | None, token: str | None = TOKEN) -> dict[str, str]:
    out = {"A_KEY": A_KEY}
    if router_config is not None:
        out["ROUTER_CONFIG"] = router_config
    if token is not None:
        out["ROUTER_TOKEN"] = token
    return out


def eight_providers(mocks: MockProviders) -> str:
    providers = [{**provider(mocks, "b"), "name": f"p{i}"} for i in range(8)]
    return json.dumps({"policy": "hedged", "hedge_k": 7, "providers": providers})


# forward_headers: authorization is listed, and still never forwarded.
FORWARDED = ["x-request-id", "anthropic-beta", "authorization"]


# A routing table: gpt-4o on flaky then b (each under its own model name,
# b's context window small), gpt-4o-mini on a, and a pattern group.
TABLE = {
    "gpt-4o": [{"provider": "flaky", "model": "f-4o"}, {"provider": "b", "model": "b-4o", "context_window": 1000}],
    "gpt-4o-mini": [{"provider": "a"}],
    "claude-*": [{"provider": "b"}],
}


def table_config(mocks: MockProviders) -> str:
    return config(mocks, "flaky", "b", "a", models=TABLE, health={"consecutive_failures": 2, "ejection_s": 60})


# name -> (variables from the mocks, main: None is the standalone shim)
Setup = tuple[Callable[[MockProviders], dict[str, str]], Path | None]
SETUPS: dict[str, Setup] = {
    "good": (lambda m: variables(config(m, "a", "b")), None),
    "failover": (lambda m: variables(config(m, "flaky", "b")), None),
    "hard": (lambda m: variables(config(m, "denied", "b")), None),
    "all_failed": (lambda m: variables(config(m, "flaky", "broken")), None),
    "weird": (lambda m: variables(config(m, "weird", "b")), None),
    "no_token": (lambda m: variables(config(m, "a"), token=None), None),
    "config_not_json": (lambda m: variables("{not json"), None),
    "config_unknown_policy": (lambda m: variables(config(m, "a", policy="fastest")), None),
    "config_hedge_k_7": (lambda m: variables(eight_providers(m)), None),
    # JSON that says `policy` twice: serde_json alone would keep the last.
    "config_repeated_key": (
        lambda m: variables(config(m, "a").replace('{"policy": ', '{"policy": "weighted", "policy": ', 1)),
        None,
    ),
    "config_missing": (lambda m: variables(None), None),
    "table": (lambda m: variables(table_config(m)), None),
    "ts_table": (lambda m: variables(table_config(m)), TS_EXAMPLE),
    "ts_good": (lambda m: variables(config(m, "a")), TS_EXAMPLE),
    "forward": (lambda m: variables(config(m, "a", forward_headers=FORWARDED)), None),
    "ts_forward": (lambda m: variables(config(m, "a", forward_headers=FORWARDED)), TS_EXAMPLE),
    "ts_failover": (lambda m: variables(config(m, "flaky", "b")), TS_EXAMPLE),
    "ts_quality": (lambda m: variables(config(m, "a", "b")), TS_EXAMPLE),
    "ts_hard": (lambda m: variables(config(m, "denied", "b")), TS_EXAMPLE),
    "ts_weird": (lambda m: variables(config(m, "weird", "b")), TS_EXAMPLE),
    "ts_config_hedge_k_7": (lambda m: variables(eight_providers(m)), TS_EXAMPLE),
    "unjudged": (lambda m: variables(config(m, "deep", "huge", policy="weighted")), None),
}


class Workers:
    """One `wrangler dev` per setup name, shared by the module's tests."""

    def __init__(self, mocks: MockProviders) -> None:
        self.mocks = mocks
        self.running: dict[str, WranglerDev] = {}

    def _start(self, name: str) -> WranglerDev:
        make_variables, main = SETUPS[name]
        return WranglerDev(make_variables(self.mocks), main=main)

    def start(self, names: list[str]) -> None:
        """Start these setups a few at a time (each takes ~2.5 s, mostly waiting)."""
        with ThreadPoolExecutor(max_workers=START_IN_PARALLEL) as pool:
            futures = {name: pool.submit(self._start, name) for name in names if name not in self.running}
        failure: BaseException | None = None
        for name, future in futures.items():
            try:
                self.running[name] = future.result()
            except BaseException as e:  # keep the others to close them
                failure = failure or e
        if failure is not None:
            raise failure

    def __call__(self, name: str) -> WranglerDev:
        if name not in self.running:
            self.start([name])
        return self.running[name]

    def close(self) -> None:
        while self.running:
            self.running.popitem()[1].close()


@pytest.fixture(scope="module")
def mocks() -> Iterator[MockProviders]:
    with MockProviders({"mocks": MOCKS}, loop=True) as m:
        yield m


@pytest.fixture(scope="module")
def workers(request: pytest.FixtureRequest, mocks: MockProviders) -> Iterator[Workers]:
    w = Workers(mocks)
    try:
        # Every setup the selected tests of this module ask for, at once.
        w.start(needed_setups(request))
        yield w
    finally:
        w.close()


def needed_setups(request: pytest.FixtureRequest) -> list[str]:
    names = set()
    for item in request.session.items:
        callspec = getattr(item, "callspec", None)
        if getattr(item, "module", None) is request.module and callspec is not None and "worker" in callspec.params:
            names.add(callspec.params["worker"])
    return sorted(names)


@pytest.fixture
def worker(request: pytest.FixtureRequest, workers: Workers) -> WranglerDev:
    """The `wrangler dev` of the setup named by the test's `on(...)`."""
    return workers(request.param)


def on(*setups: str) -> pytest.MarkDecorator:
    """Run the test against each named setup (see SETUPS)."""
    return pytest.mark.parametrize("worker", setups, indirect=True)


# --------------------------------------------------------------------------
# helpers


def chat_body(text: str, **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-4o", "messages": [{"role": "user", "content": text}], **extra}


def chat(worker: WranglerDev, text: str, token: str | None = TOKEN) -> tuple[int, dict[str, str], Any]:
    return worker.post_json(CHAT, chat_body(text), token=token, timeout=TIMEOUT_S)


def upstream(mocks: MockProviders, marker: str) -> dict[str, list[dict[str, Any]]]:
    """The requests each mock received that carry ``marker``."""
    return {
        name: [r for r in records if marker in r["body"]]
        for name, records in mocks.log().items()
    }


def assert_openai_error(reply: Any, code: str | None, type_: str | None = None) -> dict[str, Any]:
    """``reply`` is exactly ``{"error": {"message", "type", "code"}}``; returns the error."""
    assert isinstance(reply, dict) and set(reply) == {"error"}, reply
    error: dict[str, Any] = reply["error"]
    assert set(error) == {"message", "type", "code"}, error
    assert isinstance(error["message"], str) and error["message"], error
    assert isinstance(error["type"], str) and error["type"], error
    assert error["code"] == code, error
    if type_ is not None:
        assert error["type"] == type_, error
    return error


def content(reply: Any) -> str:
    text: str = reply["choices"][0]["message"]["content"]
    return text


def marker() -> str:
    return f"marker-{secrets.token_hex(8)}"


# --------------------------------------------------------------------------
# auth


@on("good")
def test_no_authorization_header_is_401(worker: WranglerDev) -> None:
    status, _, reply = chat(worker, marker(), token=None)
    assert status == 401
    assert_openai_error(reply, "invalid_api_key", "invalid_request_error")


@on("good")
def test_wrong_token_is_401(worker: WranglerDev, mocks: MockProviders) -> None:
    m = marker()
    status, _, reply = chat(worker, m, token=secrets.token_hex(16))
    assert status == 401
    error = assert_openai_error(reply, "invalid_api_key", "invalid_request_error")
    assert "Bearer" in error["message"]
    assert upstream(mocks, m) == {name: [] for name in MOCKS}


@pytest.mark.parametrize(
    "authorization",
    [TOKEN, f"Basic {TOKEN}", f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", "Bearer ", "Bearer"],
    ids=["no-scheme", "basic", "longer", "shorter", "empty", "scheme-only"],
)
@on("good")
def test_malformed_authorization_is_401(worker: WranglerDev, authorization: str) -> None:
    status, _, reply = worker.request(
        "POST", CHAT, json.dumps(chat_body(marker())).encode(),
        {"content-type": "application/json", "authorization": authorization}, TIMEOUT_S,
    )
    assert status == 401
    assert_openai_error(json.loads(reply), "invalid_api_key")


@on("good")
def test_right_token_is_200(worker: WranglerDev) -> None:
    status, headers, reply = chat(worker, marker())
    assert status == 200, reply
    assert headers["content-type"].startswith("application/json")
    assert content(reply) == "hello from a"


@on("good")
def test_auth_is_checked_before_the_body(worker: WranglerDev) -> None:
    status, _, raw = worker.request("POST", CHAT, b"{not json", {}, TIMEOUT_S)
    assert status == 401
    assert_openai_error(json.loads(raw), "invalid_api_key")


@on("no_token")
def test_router_token_unset_is_500_saying_to_set_it(worker: WranglerDev, mocks: MockProviders) -> None:
    m = marker()
    for token in (None, "anything"):
        status, _, reply = chat(worker, m, token=token)
        assert status == 500
        error = assert_openai_error(reply, "missing_token", "server_error")
        assert "ROUTER_TOKEN" in error["message"] and "set it" in error["message"]
    assert upstream(mocks, m)["a"] == []


# --------------------------------------------------------------------------
# the request


@on("good")
def test_bad_json_is_400(worker: WranglerDev) -> None:
    status, _, raw = worker.request(
        "POST", CHAT, b'{"model": "gpt-4o", "messages": [', {"authorization": f"Bearer {TOKEN}"}, TIMEOUT_S
    )
    assert status == 400
    error = assert_openai_error(json.loads(raw), "invalid_json", "invalid_request_error")
    assert "JSON" in error["message"]


@on("good")
def test_json_that_is_not_a_chat_request_is_400(worker: WranglerDev, mocks: MockProviders) -> None:
    m = marker()
    status, headers, reply = worker.post_json(CHAT, {"model": "gpt-4o", "prompt": m}, token=TOKEN, timeout=TIMEOUT_S)
    assert status == 400
    error = assert_openai_error(reply, "invalid_request", "invalid_request_error")
    assert "messages" in error["message"]
    assert headers["x-f3dx-attempts"] == "0"
    assert upstream(mocks, m) == {name: [] for name in MOCKS}


def padded_chat_body(size: int) -> bytes:
    """A valid chat request of exactly ``size`` bytes."""
    head, tail = b'{"model":"gpt-4o","messages":[{"role":"user","content":"', b'"}]}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


@on("good")
def test_body_over_4_mib_is_413(worker: WranglerDev, mocks: MockProviders) -> None:
    before = len(mocks.log()["a"])
    body = padded_chat_body(MAX_REQUEST_BYTES + 1)
    status, _, raw = worker.request(
        "POST", CHAT, body, {"content-type": "application/json", "authorization": f"Bearer {TOKEN}"}, TIMEOUT_S
    )
    assert status == 413
    error = assert_openai_error(json.loads(raw), "request_too_large", "invalid_request_error")
    assert str(MAX_REQUEST_BYTES) in error["message"]
    assert len(mocks.log()["a"]) == before


@on("good")
def test_body_over_4_mib_without_content_length_is_413(worker: WranglerDev) -> None:
    # Chunked: the worker cannot trust a declared length, it must count.
    body = padded_chat_body(MAX_REQUEST_BYTES + 1)
    chunks = (body[i : i + 65536] for i in range(0, len(body), 65536))
    req = urllib.request.Request(
        worker.url + CHAT, data=chunks, method="POST",
        headers={"content-type": "application/json", "authorization": f"Bearer {TOKEN}"},
    )
    status, raw = open_request(req)
    assert status == 413
    assert_openai_error(json.loads(raw), "request_too_large")


@on("good")
def test_body_of_exactly_4_mib_is_accepted(worker: WranglerDev) -> None:
    body = padded_chat_body(MAX_REQUEST_BYTES)
    status, _, raw = worker.request(
        "POST", CHAT, body, {"content-type": "application/json", "authorization": f"Bearer {TOKEN}"}, TIMEOUT_S
    )
    assert status == 200, raw[:500]
    assert content(json.loads(raw)) == "hello from a"


def open_request(req: urllib.request.Request) -> tuple[int, bytes]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=TIMEOUT_S) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        with e:
            return e.code, e.read()


# --------------------------------------------------------------------------
# routes and methods


@pytest.mark.parametrize(
    "method, path, status, code",
    [
        # The front door (the core's endpoint) serves only POST .../chat/completions.
        ("GET", CHAT, 404, "not_found"),
        ("PUT", CHAT, 404, "not_found"),
        ("POST", "/healthz", 405, "method_not_allowed"),
        ("GET", "/v1/files", 404, "not_found"),
        ("POST", "/v1/chat/completions/x", 404, "not_found"),
        ("GET", "/", 404, "not_found"),
    ],
)
@on("good")
def test_wrong_method_or_path(worker: WranglerDev, method: str, path: str, status: int, code: str) -> None:
    body = b"{}" if method in ("POST", "PUT") else None
    got, _, raw = worker.request(method, path, body, {"authorization": f"Bearer {TOKEN}"}, TIMEOUT_S)
    assert got == status
    assert_openai_error(json.loads(raw), code, "invalid_request_error")


# --------------------------------------------------------------------------
# config


BAD_CONFIGS = {
    "config_not_json": ["ROUTER_CONFIG", "is not valid JSON"],
    # The value itself is not repeated (it may be a key in the wrong place).
    "config_unknown_policy": ["policy", "is not a policy", '"sequential", "weighted" or "hedged"'],
    "config_repeated_key": ["ROUTER_CONFIG", "policy: is given twice"],
    "config_hedge_k_7": ["hedge_k", "at most 6"],
    "config_missing": ["ROUTER_CONFIG is not set"],
}


@pytest.mark.parametrize("worker, needles", list(BAD_CONFIGS.items()), indirect=["worker"], ids=list(BAD_CONFIGS))
def test_bad_config_is_500_saying_what_is_wrong(worker: WranglerDev, needles: list[str]) -> None:
    status, _, reply = chat(worker, marker())
    assert status == 500
    error = assert_openai_error(reply, "bad_config", "server_error")
    for needle in needles:
        assert needle in error["message"], error
    assert "fastest" not in error["message"]
    status, _, raw = worker.request("GET", "/healthz", timeout=TIMEOUT_S)
    assert status == 500
    assert assert_openai_error(json.loads(raw), "bad_config") == error


@on("config_missing")
def test_bad_config_still_checks_the_token_first(worker: WranglerDev) -> None:
    status, _, reply = chat(worker, marker(), token=secrets.token_hex(16))
    assert status == 401
    assert_openai_error(reply, "invalid_api_key")


@on("good")
def test_healthz_lists_providers_and_policy_without_secrets(worker: WranglerDev) -> None:
    status, headers, raw = worker.request("GET", "/healthz", timeout=TIMEOUT_S)
    assert status == 200
    body = json.loads(raw)
    assert body["status"] == "ok"
    assert body["routing"] == {"policy": "sequential"}
    # max_body_bytes: the Worker's default (8 MiB), as no provider sets it.
    assert body["providers"] == [{"name": "a", "kind": "openai", "max_body_bytes": 8 * 1024 * 1024},
                                 {"name": "b", "kind": "openai", "max_body_bytes": 8 * 1024 * 1024}]
    everything = raw.decode() + json.dumps(headers)
    for secret in (TOKEN, A_KEY, B_KEY):
        assert secret not in everything


@on("no_token")
def test_healthz_needs_no_token(worker: WranglerDev) -> None:
    status, _, raw = worker.request("GET", "/healthz", timeout=TIMEOUT_S)
    assert status == 200
    assert [p["name"] for p in json.loads(raw)["providers"]] == ["a"]


# --------------------------------------------------------------------------
# routing results and headers


@on("good")
def test_success_headers_name_the_winner(worker: WranglerDev) -> None:
    status, headers, reply = chat(worker, marker())
    assert status == 200
    assert content(reply) == "hello from a"
    assert headers["x-f3dx-provider"] == "a"
    assert headers["x-f3dx-attempts"] == "1"


@on("failover")
def test_failover_headers_count_attempts(worker: WranglerDev, mocks: MockProviders) -> None:
    m = marker()
    status, headers, reply = chat(worker, m)
    assert status == 200, reply
    assert content(reply) == "hello from b"
    assert headers["x-f3dx-provider"] == "b"
    assert headers["x-f3dx-attempts"] == "2"
    trace = parse_trace(headers.get("x-f3dx-trace"))
    assert [(t["provider"], t["outcome"], t["status"]) for t in trace] == [("flaky", "soft", 503), ("b", "success", 200)]
    seen = upstream(mocks, m)
    assert (len(seen["flaky"]), len(seen["b"])) == (1, 1)


@on("hard")
def test_hard_failure_keeps_the_upstream_status(worker: WranglerDev, mocks: MockProviders) -> None:
    m = marker()
    status, headers, reply = chat(worker, m)
    assert status == 401
    # The provider's own error (its type and code), with the router's message.
    error = assert_openai_error(reply, None, "server_error")
    assert "denied" in error["message"] and "401" in error["message"]
    assert "Incorrect API key provided" in error["message"]
    assert headers["x-f3dx-provider"] == "denied"
    assert headers["x-f3dx-attempts"] == "1"
    seen = upstream(mocks, m)
    assert (len(seen["denied"]), len(seen["b"])) == (1, 0)  # the payload is never replayed


@on("all_failed")
def test_all_providers_failing_softly_is_502(worker: WranglerDev) -> None:
    status, headers, reply = chat(worker, marker())
    assert status == 502
    assert_openai_error(reply, "all_providers_failed", "upstream_error")
    assert "x-f3dx-provider" not in headers
    assert headers["x-f3dx-attempts"] == "2"


@on("weird")
def test_hard_failure_with_a_nonstandard_status_still_answers(worker: WranglerDev) -> None:
    # The upstream's 600 cannot be answered as it is: a 502, the status in the message.
    status, headers, reply = chat(worker, marker())
    assert status == 502
    assert "HTTP 600" in reply["error"]["message"]
    assert_openai_error(reply, "hard_failure")
    assert headers.get("x-f3dx-provider") == "weird"


@on("good")
def test_api_key_env_resolves_from_another_variable(worker: WranglerDev, mocks: MockProviders) -> None:
    m = marker()
    status, _, _ = chat(worker, m)
    assert status == 200
    [request] = upstream(mocks, m)["a"]
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["authorization"] == f"Bearer {A_KEY}"
    assert request["json"] == chat_body(m)


# --------------------------------------------------------------------------
# caller headers (forward_headers): the standalone worker's inbound request,
# and the TypeScript example's (the embedded router's `headers` option)


@on("forward", "ts_forward")
def test_listed_inbound_headers_reach_the_provider(worker: WranglerDev, mocks: MockProviders) -> None:
    m = marker()
    given = {"x-request-id": "req-42", "Anthropic-Beta": "tools-2024", "x-not-listed": "no"}
    status, _, reply = worker.post_json(CHAT, chat_body(m), token=TOKEN, timeout=TIMEOUT_S, headers=given)
    assert status == 200, reply
    [request] = upstream(mocks, m)["a"]
    assert request["headers"]["x-request-id"] == "req-42"
    assert request["headers"]["anthropic-beta"] == "tools-2024"
    assert "x-not-listed" not in request["headers"]
    # The caller's Authorization (the router's token) never goes upstream.
    assert request["headers"]["authorization"] == f"Bearer {A_KEY}"
    # A value over 8 KiB: a 400 naming the header, nothing sent.
    m = marker()
    status, _, reply = worker.post_json(CHAT, chat_body(m), token=TOKEN, timeout=TIMEOUT_S,
                                        headers={"x-request-id": "r" * 8193})
    assert status == 400, reply
    assert '"x-request-id"' in reply["error"]["message"] and "rrrr" not in reply["error"]["message"]
    assert upstream(mocks, m)["a"] == []


# --------------------------------------------------------------------------
# the TypeScript example (worker/examples/typescript)


@on("ts_good")
def test_ts_example_success(worker: WranglerDev, mocks: MockProviders) -> None:
    m = marker()
    status, _, reply = worker.post_json(CHAT, chat_body(m, max_tokens=5), token=TOKEN, timeout=TIMEOUT_S)
    assert status == 200, reply
    assert content(reply) == "hello from a"
    [request] = upstream(mocks, m)["a"]
    assert request["headers"]["authorization"] == f"Bearer {A_KEY}"  # api_key_env through `env`
    assert request["json"] == chat_body(m, max_tokens=5)
    assert type(request["json"]["max_tokens"]) is int  # JS numbers cross as integers


@on("ts_failover")
def test_ts_example_failover(worker: WranglerDev, mocks: MockProviders) -> None:
    m = marker()
    status, headers, reply = chat(worker, m)
    assert status == 200, reply
    assert content(reply) == "hello from b"
    # Through route(): the example reports who answered and how many tries.
    assert (headers.get("x-f3dx-provider"), headers.get("x-f3dx-attempts")) == ("b", "2")
    seen = upstream(mocks, m)
    assert (len(seen["flaky"]), len(seen["b"])) == (1, 1)


@on("ts_quality")
def test_ts_example_tenants_and_reported_quality(worker: WranglerDev, mocks: MockProviders) -> None:
    # recordQuality: a fails 10 of 10 answers for tenant acme and gpt-4o ...
    for _ in range(10):
        status, _, reply = worker.post_json("/quality", {"provider": "a", "passed": False, "model": "gpt-4o",
                                                         "tenant": "acme"}, token=TOKEN, timeout=TIMEOUT_S)
        assert status == 200, reply
    # ... so acme's calls go to b first (route(body, {tenant})), globex's to a.
    for tenant, winner in (("acme", "b"), ("globex", "a")):
        m = marker()
        status, headers, reply = worker.post_json(CHAT, chat_body(m), token=TOKEN, timeout=TIMEOUT_S,
                                                  headers={"x-f3dx-tenant": tenant})
        assert status == 200, reply
        assert headers.get("x-f3dx-provider") == winner, (tenant, headers)
        assert "x-f3dx-schema-valid" not in headers  # nothing to check without response_format
    # A structured request is checked: schemaValid reaches the header.
    m = marker()
    body = {**chat_body(m), "response_format": {"type": "json_object"}}
    status, headers, reply = worker.post_json(CHAT, body, token=TOKEN, timeout=TIMEOUT_S)
    assert status == 200, reply
    assert headers.get("x-f3dx-schema-valid") == "false"  # "hello from a" is not a JSON object
    # A bad report is a RouterError answered as a 400.
    status, _, reply = worker.post_json("/quality", {"provider": "nobody", "passed": True, "model": "m"},
                                        token=TOKEN, timeout=TIMEOUT_S)
    assert status == 400 and "no provider named" in reply["error"]["message"], reply


@on("ts_hard")
def test_ts_example_hard_failure(worker: WranglerDev, mocks: MockProviders) -> None:
    m = marker()
    status, headers, reply = chat(worker, m)
    assert status == 401
    # The standalone worker's answer (the core's endpoint, through the
    # embedded API's error): the provider's own error, the router's message.
    error = assert_openai_error(reply, None, "server_error")
    assert "401" in error["message"] and "Incorrect API key provided" in error["message"]
    assert headers["x-f3dx-provider"] == "denied"
    assert headers["x-f3dx-attempts"] == "1"
    assert upstream(mocks, m)["b"] == []


@on("ts_weird")
def test_ts_example_nonstandard_upstream_status_is_502(worker: WranglerDev) -> None:
    status, headers, reply = chat(worker, marker())
    assert status == 502
    assert_openai_error(reply, "hard_failure", "upstream_error")
    assert headers["x-f3dx-provider"] == "weird"


@pytest.mark.parametrize(
    "token, body, status, code",
    [
        (None, chat_body("x"), 401, "invalid_api_key"),
        (secrets.token_hex(16), chat_body("x"), 401, "invalid_api_key"),
        (TOKEN, {"model": "gpt-4o"}, 400, "invalid_request"),
    ],
    ids=["no-token", "wrong-token", "not-a-chat-request"],
)
@on("ts_good")
def test_ts_example_errors(worker: WranglerDev, token: str | None, body: Any, status: int, code: str) -> None:
    got, _, reply = worker.post_json(CHAT, body, token=token, timeout=TIMEOUT_S)
    assert got == status
    assert_openai_error(reply, code)


@on("ts_config_hedge_k_7")
def test_ts_example_bad_config_is_500_on_every_request(worker: WranglerDev) -> None:
    # The constructor throws; the example keeps no router and tries again.
    for _ in range(2):
        status, _, reply = chat(worker, marker())
        assert status == 500
        error = assert_openai_error(reply, "bad_config", "server_error")
        assert "at most 6" in error["message"]


@on("ts_good")
def test_ts_example_bad_json_and_routes(worker: WranglerDev) -> None:
    status, _, raw = worker.request("POST", CHAT, b"{", {"authorization": f"Bearer {TOKEN}"}, TIMEOUT_S)
    assert (status, json.loads(raw)["error"]["code"]) == (400, "invalid_json")
    status, _, raw = worker.request("GET", CHAT, timeout=TIMEOUT_S)
    assert (status, json.loads(raw)["error"]["code"]) == (405, "method_not_allowed")
    status, _, raw = worker.request("GET", "/healthz", timeout=TIMEOUT_S)
    assert (status, json.loads(raw)["error"]["code"]) == (404, "not_found")


# --------------------------------------------------------------------------
# what quality-aware routing refuses, and answers it cannot judge


def post_quality(worker: WranglerDev, report: Any) -> tuple[int, Any]:
    status, _, reply = worker.post_json("/quality", report, token=TOKEN, timeout=TIMEOUT_S)
    return status, reply


def quality_keys(worker: WranglerDev) -> dict[str, list[dict[str, Any]]]:
    status, _, body = worker.request("GET", "/stats", None, {"authorization": f"Bearer {TOKEN}"}, TIMEOUT_S)
    assert status == 200 and len(body) < 64 * 1024, (status, len(body))
    return {name: p["quality"] for name, p in json.loads(body)["providers"].items()}


@on("good")
def test_quality_reports_refuse_unknown_fields_without_repeating_them(worker: WranglerDev) -> None:
    long_field = "f" * 100_000
    for report, position in [
        ({"provider": "a", "passed": True, "model": "m", "pass": False}, 4),
        ({"extra": 1, "provider": "a", "passed": True, "model": "m"}, 1),
        ({"provider": "a", "passed": True, "model": "m", "tenant": "t", long_field: "v" * 100_000}, 5),
    ]:
        status, reply = post_quality(worker, report)
        assert status == 400, reply
        error = assert_openai_error(reply, "invalid_quality_report")
        assert f"field number {position} " in error["message"], error
        assert len(json.dumps(reply)) < 500, "the field is named by its position, not repeated"
    assert quality_keys(worker)["a"] == []


@on("good")
def test_quality_reports_refuse_long_models_and_control_characters(worker: WranglerDev) -> None:
    # 20 distinct models of almost 4 MB (before the bound, each was kept).
    for i in range(20):
        status, reply = post_quality(worker, {"provider": "a", "passed": False, "model": f"{i}" + "m" * 3_900_000})
        assert status == 400, reply
        error = assert_openai_error(reply, "invalid_quality_report")
        assert "at most 256" in error["message"] and len(error["message"]) < 200, error
    for tenant in ["a\x00b", "a\r\nb", "\x01"]:
        status, reply = post_quality(worker, {"provider": "a", "passed": False, "model": "m", "tenant": tenant})
        assert status == 400, reply
        assert "control character" in assert_openai_error(reply, "invalid_tenant")["message"]
    status, reply = post_quality(worker, {"provider": "a", "passed": False, "model": "m\nx"})
    assert status == 400 and "control character" in reply["error"]["message"], reply
    assert quality_keys(worker)["a"] == []
    status, reply = post_quality(worker, {"provider": "a", "passed": True, "model": "m" * 256, "tenant": "t" * 256})
    assert status == 200, reply
    assert [(k["tenant"], k["model"]) for k in quality_keys(worker)["a"]] == [("t" * 256, "m" * 256)]


@on("good")
def test_a_tenant_header_with_a_control_character_is_400(worker: WranglerDev, mocks: MockProviders) -> None:
    for tenant in ["\x01", "a\x7fb", "t" * 257]:
        m = marker()
        status, _, reply = worker.post_json(CHAT, chat_body(m), token=TOKEN, timeout=TIMEOUT_S,
                                            headers={"x-f3dx-tenant": tenant})
        assert status == 400, reply
        assert "x-f3dx-tenant" in assert_openai_error(reply, "invalid_tenant")["message"]
        assert upstream(mocks, m) == {name: [] for name in MOCKS}


@on("good")
def test_an_unknown_response_format_type_or_a_long_model_is_400(worker: WranglerDev, mocks: MockProviders) -> None:
    for extra in [{"response_format": {"type": "xml"}}, {"response_format": {}}, {"model": "m" * 257},
                  {"response_format": {"type": "xml"}, "stream": True}]:
        m = marker()
        status, _, reply = worker.post_json(CHAT, chat_body(m, **extra), token=TOKEN, timeout=TIMEOUT_S)
        assert status == 400, (extra, reply)
        error = assert_openai_error(reply, "invalid_request")
        assert "response_format.type" in error["message"] or "at most 256" in error["message"], error
        assert upstream(mocks, m) == {name: [] for name in MOCKS}


@on("unjudged")
def test_an_answer_the_validator_cannot_judge_is_not_counted(worker: WranglerDev) -> None:
    seen = set()
    for _ in range(4):
        body = chat_body(marker(), response_format={"type": "json_object"})
        status, headers, reply = worker.post_json(CHAT, body, token=TOKEN, timeout=TIMEOUT_S,
                                                  headers={"x-f3dx-tenant": "acme"})
        assert status == 200, reply
        assert "x-f3dx-schema-valid" not in headers, headers
        seen.add(headers["x-f3dx-provider"])
    assert seen == {"deep", "huge"}
    assert quality_keys(worker) == {"deep": [], "huge": []}


# --------------------------------------------------------------------------
# GET /stats


@on("failover")
def test_stats_show_this_isolates_router(worker: WranglerDev) -> None:
    status, _, reply = chat(worker, marker())
    assert status == 200, reply
    status, headers, body = worker.request("GET", "/stats", None, {"authorization": f"Bearer {TOKEN}"}, TIMEOUT_S)
    assert status == 200 and headers["content-type"].startswith("application/json")
    stats = json.loads(body)
    flaky, b = stats["providers"]["flaky"], stats["providers"]["b"]
    assert flaky["soft_failures"] >= 1 and flaky["state"] in {"healthy", "ejected"}
    assert b["successes"] >= 1 and b["latency_ms"]["p50"] is not None
    assert set(stats["hedges"]) == {"sent", "won", "skipped_for_budget"}
    assert B_KEY.encode() not in body and A_KEY.encode() not in body


@on("good")
def test_stats_need_the_token(worker: WranglerDev) -> None:
    status, _, body = worker.request("GET", "/stats", None, {}, TIMEOUT_S)
    assert status == 401
    status, _, body = worker.request("POST", "/stats", b"{}", {"authorization": f"Bearer {TOKEN}"}, TIMEOUT_S)
    assert status == 405


# --------------------------------------------------------------------------
# health transitions on the console (wrangler tail, Workers Logs)


@pytest.mark.parametrize("main", [None, TS_EXAMPLE], ids=["standalone", "ts_example"])
def test_health_transitions_are_logged_to_the_console(main: Path | None) -> None:
    # The standalone worker logs them itself; the TypeScript example takes
    # them with router.takeHealthEvents() and logs them the same way. Its
    # own mocks and wrangler: the shared ones must not see an ejection.
    mocks_spec = {"down": {"responses": [upstream_error(503, f"overloaded, key {B_KEY}")]},
                  "up": {"responses": [completion("up")]}}
    with MockProviders({"mocks": mocks_spec}, loop=True) as m:
        router_config = json.dumps({
            "policy": "sequential", "health": {"consecutive_failures": 2, "ejection_s": 30},
            "quality": {"window": 10, "min_samples": 2, "min_pass_rate": 0.5},
            "providers": [{"name": n, "kind": "openai", "base_url": m.base_url(n), "api_key": B_KEY} for n in ("down", "up")],
        })
        with WranglerDev(variables(router_config), main=main) as worker:
            for i in range(3):  # the second ejects `down`; the third skips it
                status, headers, reply = chat(worker, marker())
                assert status == 200, reply
            assert headers["x-f3dx-attempts"] == "1"
            line = "provider 'down' ejected for 30.0 s: 2 soft failures in a row"
            out = worker.wait_for_output(line)
            # Quality-aware routing's exclusions, per tenant and model.
            for _ in range(2):
                report = {"provider": "up", "passed": False, "model": "gpt-4o", "tenant": "acme"}
                status, _, reply = worker.post_json("/quality", report, token=TOKEN, timeout=TIMEOUT_S)
                assert status == 200, reply
            excluded = ("provider 'up' excluded (tenant 'acme', model 'gpt-4o') for 60.0 s: "
                        "schema pass rate 0.00 (0 of 2 answers)")
            out = worker.wait_for_output(excluded)
    assert out.count(line) == 1, out[-4000:]
    assert out.count(excluded) == 1, out[-4000:]
    assert "quality_excluded" in out and "pass_rate" in out
    for field in ("f3dx_router", "consecutive_failures", "ejected"):
        assert field in out, out[-4000:]
    assert B_KEY not in out and A_KEY not in out and TOKEN not in out


# --------------------------------------------------------------------------
# introspection: GET /v1/models, POST /explain (and the embedded API's)


def get(worker: WranglerDev, path: str, token: str | None = TOKEN) -> tuple[int, Any]:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    status, _, raw = worker.request("GET", path, None, headers, TIMEOUT_S)
    return status, json.loads(raw)


def planned(explained: Any, key: str) -> list[tuple[str, str, str | None]]:
    return [(d["provider"], d["model"], d["reason"]) for d in explained[key]]


@on("table")
def test_models_are_listed_in_openais_shape_behind_the_token(worker: WranglerDev) -> None:
    status, listed = get(worker, "/v1/models")
    assert status == 200 and listed["object"] == "list"
    assert [(x["id"], x["object"]) for x in listed["data"]] == [("gpt-4o", "model"), ("gpt-4o-mini", "model")]
    status, one = get(worker, "/v1/models/claude-sonnet-4-5")
    assert status == 200 and one["id"] == "claude-sonnet-4-5"
    status, missing = get(worker, "/v1/models/o3")
    assert status == 404
    assert_openai_error(missing, "model_not_found", "invalid_request_error")
    status, denied = get(worker, "/v1/models", token=None)
    assert status == 401
    assert_openai_error(denied, "invalid_api_key")


@on("table")
def test_explain_says_what_a_call_would_try_and_why_not_the_rest(worker: WranglerDev, mocks: MockProviders) -> None:
    m = marker()
    status, _, explained = worker.post_json("/explain", chat_body(m), token=TOKEN, timeout=TIMEOUT_S)
    assert status == 200, explained
    assert explained["group"] == "gpt-4o"
    assert planned(explained, "tried")[:2] in ([("flaky", "f-4o", None), ("b", "b-4o", None)],
                                               [("b", "b-4o", None)])
    # Too long for b's window: left out, with the numbers.
    status, _, long = worker.post_json("/explain", chat_body(m, max_tokens=5000), token=TOKEN, timeout=TIMEOUT_S)
    [b] = [d for d in long["left_out"] if d["provider"] == "b"]
    assert (b["reason"], b["context_window"]) == ("context_window", 1000) and b["tokens_needed"] >= 5000
    # Explain sent nothing.
    assert all(not records for records in upstream(mocks, m).values())
    # Two calls fail over from flaky (503): ejected, and explain says so.
    for _ in range(2):
        chat(worker, m)
    status, _, after = worker.post_json("/explain", chat_body(m), token=TOKEN, timeout=TIMEOUT_S)
    [flaky] = [d for d in after["left_out"] if d["provider"] == "flaky"]
    assert flaky["reason"] == "ejected" and 0 < flaky["until_s"] <= 60
    assert planned(after, "tried") == [("b", "b-4o", None)]


@on("table")
def test_explain_refuses_what_a_call_refuses(worker: WranglerDev) -> None:
    status, _, unknown = worker.post_json("/explain", chat_body("x", model="o3"), token=TOKEN, timeout=TIMEOUT_S)
    assert status == 400
    error = assert_openai_error(unknown, "invalid_request", "invalid_request_error")
    assert "gpt-4o-mini" in error["message"]
    status, _, denied = worker.post_json("/explain", chat_body("x"), token=None, timeout=TIMEOUT_S)
    assert status == 401
    status, _, raw = worker.request("GET", "/explain", None, {"authorization": f"Bearer {TOKEN}"}, TIMEOUT_S)
    assert status == 405


@on("ts_table")
def test_ts_example_embeds_models_and_explain(worker: WranglerDev, mocks: MockProviders) -> None:
    status, groups = get(worker, "/models")
    assert status == 200
    assert [g["name"] for g in groups] == ["gpt-4o", "gpt-4o-mini", "claude-*"]
    assert groups[0]["deployments"][1] == {"provider": "b", "model": "b-4o", "weight": 1, "context_window": 1000,
                                           "timeout_ms": 5000, "rpm": None, "tpm": None}
    m = marker()
    status, _, explained = worker.post_json("/explain", chat_body(m, max_tokens=5000), token=TOKEN,
                                            timeout=TIMEOUT_S)
    assert status == 200, explained
    assert planned(explained, "tried") == [("flaky", "f-4o", None)]
    assert [d["reason"] for d in explained["left_out"]] == ["context_window"]
    status, _, unknown = worker.post_json("/explain", chat_body(m, model="o3"), token=TOKEN, timeout=TIMEOUT_S)
    assert status == 400 and unknown["error"]["code"] == "invalid_request"
    assert all(not records for records in upstream(mocks, m).values())
