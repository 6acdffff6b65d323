"""The secret scan (issue 9): no error path lets a provider's key out.

Two recognizable keys: KEY1 (``sk-SCAN-<hex>/<hex>``) and KEY2, which also
holds characters JSON writers escape (``"``, ``<``, ``&``, ``>``). Upstreams
(tests/fault_server.py, ``echo``) send back the key they were given, in every
escaping servers use: plain, PHP's ``\\/``, all ``\\uXXXX`` (either case),
Go's ``\\u002f``-style escapes, inside ``\\"...\\"``, JSON inside a JSON
string, raw text, and raw text cut at 200 characters mid-key; as a hard 401,
a 5xx (AllProvidersFailed), an undecodable 2xx, after a timeout or a refused
connection, under hedging; and the config errors that could quote a key (a
key in a base_url's query or userinfo, a bad header value, a key given as
the name of its environment variable).

Natively every surface of the resulting exception is scanned: str, repr,
args, attributes, pickle.dumps and the unpickled copy, traceback text, each
Attempt (repr, str, detail, pickle), log records (DEBUG, every logger) and
what reached stdout/stderr. On the Worker (under `wrangler dev`) the same
upstream scenarios and config errors are scanned in the status line, every
response header (x-f3dx-trace, ...) and the body.

A leak is the key in any of its escaped forms (JSON, percent-encoded once
or twice, HTML references, the base64 characters that encode only the key
at each alignment), or any 10 characters of its random part, found in the
text or in the text with JSON, percent and HTML escapes undone
(repeatedly). The upstreams also echo the key in those forms, and a
20-character prefix or suffix of it.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import pickle
import re
import secrets
import traceback
import urllib.parse
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Literal

import pytest

from f3dx_router import (
    AllProvidersFailed,
    Attempt,
    ConfigError,
    HardFailure,
    InvalidRequest,
    RouteResult,
    Router,
    RouterError,
)
from fault_server import ECHO_FORMS, FaultServer, directive, echo_body, escape_all, escape_go
from workerlib import WranglerDev

CHAT = "/v1/chat/completions"
TOKEN = secrets.token_hex(16)
KEY1 = f"sk-SCAN-{secrets.token_hex(8)}/{secrets.token_hex(8)}"
KEY2 = f'sk-SCAN-{secrets.token_hex(8)}/"{secrets.token_hex(8)}<&>{secrets.token_hex(8)}'
KEYS = {"KEY1": KEY1, "KEY2": KEY2}
TIMEOUT_MS = 1000
FRAGMENT = 10  # this many characters of a key's random part count as a leak
START_IN_PARALLEL = 4
FORMS = sorted(ECHO_FORMS)


# --------------------------------------------------------------------------
# finding a key in text


def escaped_forms(key: str) -> dict[str, str]:
    """The key as upstreams, JSON writers, Rust's Debug and URLs write it."""
    as_json = json.dumps(key)[1:-1]
    return {
        "plain": key,
        "json": as_json,
        "php": as_json.replace("/", "\\/"),
        "unicode": escape_all(key),
        "unicode_upper": escape_all(key, upper=True),
        "go": escape_go(key),
        "json_twice": json.dumps(json.dumps(key))[1:-1],
        "percent": urllib.parse.quote(key, safe=""),
        "percent_path": urllib.parse.quote(key, safe="/"),
        "percent_plus": urllib.parse.quote_plus(key),
        "percent_twice": urllib.parse.quote(urllib.parse.quote(key, safe=""), safe=""),
        "html": "".join(f"&#{ord(c)};" for c in key),
        "html_escape": html.escape(key),
        **{f"base64_{align}{'_url' if url else ''}": base64_core(key, align, url)
           for align in range(3) for url in (False, True)},
    }


def base64_core(key: str, align: int, url: bool) -> str:
    """The characters of the key's base64 (after ``align`` other bytes) that
    encode only the key's bits."""
    encode = base64.urlsafe_b64encode if url else base64.b64encode
    encoded = encode(b"\0" * align + key.encode()).decode()
    return encoded[-(-8 * align // 6):8 * (align + len(key.encode())) // 6]


def fragments(key: str) -> set[str]:
    """Every FRAGMENT-character piece of the key's random (hex) runs."""
    out: set[str] = set()
    for run in re.findall(r"[0-9a-f]{16,}", key):
        out.update(run[i : i + FRAGMENT] for i in range(len(run) - FRAGMENT + 1))
    return out


FORMS_OF = {name: escaped_forms(key) for name, key in KEYS.items()}
FRAGMENTS_OF = {name: fragments(key) for name, key in KEYS.items()}


def unescape(text: str) -> str:
    """Undo JSON escapes (any depth of backslashes) and percent-encoding,
    until nothing changes (at most a few rounds)."""
    for _ in range(5):
        before = text
        text = re.sub(r"\\+u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), text)
        text = re.sub(r"\\+([/\"\\])", r"\1", text)
        text = urllib.parse.unquote(text)
        text = html.unescape(text)
        if text == before:
            break
    return text


def find_leak(text: str) -> str | None:
    """What of which key ``text`` holds, or None."""
    plain = unescape(text)
    for name, forms in FORMS_OF.items():
        for form, value in forms.items():
            if value in text:
                return f"{name} in the {form} form"
            if value in plain:
                return f"{name} in the {form} form, once unescaped"
        for piece in FRAGMENTS_OF[name]:
            if piece in text:
                return f"a piece of {name} ({piece!r})"
            if piece in plain:
                return f"a piece of {name} ({piece!r}), once unescaped"
    return None


def assert_clean(surfaces: dict[str, str], scenario: str) -> None:
    leaks = [(where, found, text) for where, text in surfaces.items() if (found := find_leak(text))]
    if not leaks:
        return
    lines = [f"{scenario}: the key leaked in {len(leaks)} of {len(surfaces)} surfaces:"]
    for i, (where, found, text) in enumerate(leaks):
        lines.append(f"  {where}: {found}" + (f"\n      {text[:400]!r}" if i < 2 else ""))
    pytest.fail("\n".join(lines), pytrace=False)


# --------------------------------------------------------------------------
# the surfaces of a native result


def attempt_surfaces(prefix: str, attempts: list[Attempt]) -> dict[str, str]:
    out = {}
    for i, a in enumerate(attempts):
        at = f"{prefix}.attempts[{i}]"
        out[f"{at}.repr"] = repr(a)
        out[f"{at}.str"] = str(a)
        out[f"{at}.detail"] = a.detail
        out[f"{at}.fields"] = repr((a.provider, a.outcome, a.status, a.fault, a.started_ms, a.ended_ms))
        out[f"{at}.pickle"] = pickle.dumps(a).decode("latin-1")
        out[f"{at}.reduce"] = repr(a.__reduce__())
    return out


def exception_surfaces(exc: BaseException, prefix: str = "exc") -> dict[str, str]:
    out = {
        f"str({prefix})": str(exc),
        f"repr({prefix})": repr(exc),
        f"{prefix}.args": repr(exc.args),
        f"vars({prefix})": repr(vars(exc)),
        f"traceback({prefix})": "".join(traceback.format_exception(exc)),
        f"pickle({prefix})": pickle.dumps(exc).decode("latin-1"),
    }
    for attr in ("message", "body", "provider", "status", "field"):
        if hasattr(exc, attr):
            out[f"{prefix}.{attr}"] = str(getattr(exc, attr))
    if isinstance(exc, RouterError):
        out.update(attempt_surfaces(prefix, exc.attempts))
    for link in ("__cause__", "__context__"):
        chained = getattr(exc, link)
        if chained is not None:
            out.update(exception_surfaces(chained, f"{prefix}.{link}"))
    return out


def result_surfaces(result: object) -> dict[str, str]:
    if isinstance(result, BaseException):
        out = exception_surfaces(result)
        again = pickle.loads(pickle.dumps(result))
        assert type(again) is type(result)
        out.update({f"unpickled: {k}": v for k, v in exception_surfaces(again).items()})
        return out
    assert isinstance(result, RouteResult)
    return {"repr(result)": repr(result), "result.response": json.dumps(result.response),
            **attempt_surfaces("result", result.attempts)}


def log_surfaces(caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> dict[str, str]:
    out = {"caplog.text": caplog.text}
    for i, record in enumerate(caplog.records):
        out[f"log[{i}]"] = f"{record.name} {record.getMessage()} {record.args!r} {record.exc_text}"
    captured = capfd.readouterr()
    out["stdout"] = captured.out
    out["stderr"] = captured.err
    return out


# --------------------------------------------------------------------------
# native scenarios


@pytest.fixture(scope="module")
def server() -> Iterator[FaultServer]:
    with FaultServer(["p1", "p2"]) as s:
        yield s


def provider(server: FaultServer, which: str) -> dict[str, Any]:
    """p1: KEY1 on listener p1; p2: KEY2 on listener p2; a1: Anthropic, KEY1
    on listener p1; refused: KEY1 on a port nothing listens on."""
    url = {"p1": server.base_url("p1"), "p2": server.base_url("p2"), "a1": server.base_url("p1"),
           "refused": server.refused_url()}[which]
    kind = "anthropic" if which == "a1" else "openai"
    key = KEY2 if which == "p2" else KEY1
    return {"name": which, "kind": kind, "base_url": url, "api_key": key, "timeout_ms": TIMEOUT_MS}


def echo(status: int, form: str) -> dict[str, Any]:
    return {"fault": "echo", "status": status, "form": form}


def chat(marker: str, plays: dict[str, dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-4o", "messages": [{"role": "user", "content": directive(marker, **plays)}], **extra}


# name -> (expected type, providers, policy, what each listener plays)
Route = tuple[type, tuple[str, ...], Literal["sequential", "hedged"], dict[str, dict[str, Any]]]
ROUTES: dict[str, Route] = {}
for _form in FORMS:
    ROUTES[f"hard401-{_form}-KEY1"] = (HardFailure, ("p1", "p2"), "sequential", {"p1": echo(401, _form)})
    # p1 fails softly echoing KEY1, then p2 hard echoing KEY2.
    ROUTES[f"hard401-{_form}-KEY2"] = (HardFailure, ("p1", "p2"), "sequential",
                                      {"p1": echo(503, _form), "p2": echo(401, _form)})
    ROUTES[f"5xx-{_form}"] = (AllProvidersFailed, ("p1", "p2"), "sequential",
                              {"p1": echo(503, _form), "p2": echo(500, _form)})
    ROUTES[f"undecodable2xx-{_form}"] = (AllProvidersFailed, ("p1", "p2"), "sequential",
                                         {"p1": echo(200, _form), "p2": echo(200, _form)})
    ROUTES[f"anthropic-hard401-{_form}"] = (HardFailure, ("a1",), "sequential", {"p1": echo(401, _form)})
ROUTES["success-after-soft-echo"] = (RouteResult, ("p1", "p2"), "sequential", {"p1": echo(503, "php")})
ROUTES["timeout"] = (AllProvidersFailed, ("p1", "p2"), "sequential",
                     {"p1": {"fault": "stall_head"}, "p2": echo(429, "unicode")})
ROUTES["refused"] = (AllProvidersFailed, ("refused", "p2"), "sequential", {"p2": echo(503, "go")})
ROUTES["reset-and-truncated"] = (AllProvidersFailed, ("p1", "p2"), "sequential",
                                 {"p1": {"fault": "reset"}, "p2": {"fault": "truncated"}})
ROUTES["hedged-hard401-while-the-other-stalls"] = (HardFailure, ("p1", "p2"), "hedged",
                                                   {"p1": echo(401, "quoted"), "p2": {"fault": "stall_head"}})
ROUTES["hedged-all-soft"] = (AllProvidersFailed, ("p1", "p2"), "hedged",
                             {"p1": echo(502, "double"), "p2": echo(504, "padded")})

ECHO_WORDS = ("API key", "Unauthorized", "The key")


def echoes_an_error(plays: dict[str, dict[str, Any]]) -> bool:
    """Whether an echo comes back as an error status (whose message is shown)."""
    return any(p.get("fault") == "echo" and p.get("status", 401) >= 400 for p in plays.values())


# name -> (providers, request body)
INVALID: dict[str, tuple[tuple[str, ...], Any]] = {
    "no-messages": (("p1", "p2"), {"model": "gpt-4o"}),
    "stream": (("p1", "p2"), {"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}),
    # No deployment can carry n: 2 (unsupported_params "error").
    "n2-for-anthropic": (("a1",), {"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}], "n": 2}),
    # A tool Anthropic cannot take: the request itself is refused.
    "tool-for-anthropic": (("p1", "a1"), {"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}],
                                           "tools": [{"type": "web_search"}]}),
    "not-an-object": (("p1",), ["not", "a", "request"]),
}


def with_key_in(field: str, value: Any) -> Callable[[FaultServer], dict[str, Any]]:
    def make(server: FaultServer) -> dict[str, Any]:
        p = provider(server, "p1")
        if field == "api_key_env":
            del p["api_key"]
        p[field] = value
        return p
    return make


CONFIGS: dict[str, Callable[[FaultServer], dict[str, Any]]] = {
    "base_url-query-KEY1": with_key_in("base_url", f"http://127.0.0.1:9/v1?key={KEY1}"),
    "base_url-query-KEY2": with_key_in("base_url", f"http://127.0.0.1:9/v1?key={KEY2}"),
    "base_url-query-bad-port": with_key_in("base_url", f"http://127.0.0.1:99999/v1?key={KEY1}"),
    "base_url-query-no-scheme": with_key_in("base_url", f"127.0.0.1:9/v1?key={KEY1}"),
    "base_url-query-ftp": with_key_in("base_url", f"ftp://127.0.0.1/v1?api_key={KEY2}"),
    "base_url-fragment": with_key_in("base_url", f"http://127.0.0.1:9/v1#{KEY1}"),
    "base_url-userinfo": with_key_in("base_url", f"http://user:{KEY1}@127.0.0.1:9/v1"),
    "base_url-query-and-space": with_key_in("base_url", f"http://127.0.0.1:9/v1 ?key={KEY1}"),
    "base_url-query-and-backslash": with_key_in("base_url", f"http://127.0.0.1:9\\v1?key={KEY2}"),
    "base_url-query-no-host": with_key_in("base_url", f"http:///v1?key={KEY1}"),
    "base_url-query-too-long": with_key_in("base_url", f"http://127.0.0.1:9/{'v' * 2100}?key={KEY1}"),
    "header-value-newline": with_key_in("headers", {"x-api-key": KEY1 + "\n"}),
    "header-value-non-ascii": with_key_in("headers", {"x-api-key": KEY2 + "\u00e9"}),
    "header-not-a-string": with_key_in("headers", {"x-api-key": [KEY1]}),
    "api_key-newline": with_key_in("api_key", KEY2 + "\r\n"),
    "api_key-not-a-string": with_key_in("api_key", [KEY1]),
    "api_key_env-given-the-key": with_key_in("api_key_env", KEY1),
    "api_key-misspelt": with_key_in("apikey", KEY1),
}


@pytest.fixture(autouse=True)
def _logs_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)


def scan_native(result: object, scenario: str, caplog: pytest.LogCaptureFixture,
                capfd: pytest.CaptureFixture[str]) -> None:
    surfaces = result_surfaces(result)
    surfaces.update(log_surfaces(caplog, capfd))
    assert_clean(surfaces, scenario)


@pytest.mark.parametrize("scenario", list(ROUTES))
def test_native_route_errors_never_carry_the_key(
    server: FaultServer, scenario: str, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    expected, names, policy, plays = ROUTES[scenario]
    router = Router([provider(server, n) for n in names], policy=policy,
                    hedge_k=2 if policy == "hedged" else None)
    result: object
    try:
        result = router.route(chat(f"scan-{scenario}-{secrets.token_hex(4)}", plays))
    except RouterError as e:
        result = e
    # The scenario took the path it was meant to, and the upstream's words
    # reached the caller (so there was something to redact).
    assert isinstance(result, expected), f"{scenario}: {type(result).__name__}: {result}"
    if echoes_an_error(plays):
        said = " ".join([str(result)] + [a.detail for a in getattr(result, "attempts", [])])
        assert any(words in said for words in ECHO_WORDS), f"{scenario}: no upstream message in {said!r}"
    assert KEY1 not in repr(router) and KEY2 not in repr(router)
    scan_native(result, scenario, caplog, capfd)


@pytest.mark.parametrize("scenario", list(INVALID))
def test_native_invalid_requests_never_carry_the_key(
    server: FaultServer, scenario: str, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    names, body = INVALID[scenario]
    router = Router([provider(server, n) for n in names])
    with pytest.raises(InvalidRequest) as info:
        router.route(body)
    scan_native(info.value, scenario, caplog, capfd)


@pytest.mark.parametrize("scenario", list(CONFIGS))
def test_native_config_errors_never_carry_the_key(
    server: FaultServer, scenario: str, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ConfigError) as info:
        Router([CONFIGS[scenario](server)])
    scan_native(info.value, scenario, caplog, capfd)


# --------------------------------------------------------------------------
# the Worker


def worker_config(server: FaultServer, broken: str | None) -> str:
    providers = [provider(server, "p1"), provider(server, "p2")]
    if broken is not None:
        providers[0] = WORKER_CONFIGS[broken](server)
    # Health tracking off: every scenario runs on this one worker, and a
    # provider ejected by the previous scenarios' failures would not be asked.
    return json.dumps({"policy": "sequential", "health": False, "providers": providers})


# The config errors the Worker answers (each its own `wrangler dev`).
WORKER_CONFIGS = {name: CONFIGS[name] for name in
                  ("base_url-query-KEY2", "header-value-newline", "api_key_env-given-the-key")}
WORKER_ROUTES = [name for name, (_, names, policy, _) in ROUTES.items()
                 if names == ("p1", "p2") and policy == "sequential"]
WORKER_INVALID = [name for name, (names, _) in INVALID.items() if set(names) <= {"p1", "p2"}]


class Workers:
    def __init__(self, server: FaultServer, names: list[str | None]) -> None:
        self._pool = ThreadPoolExecutor(max_workers=START_IN_PARALLEL)
        self._futures: dict[str | None, Future[WranglerDev]] = {
            name: self._pool.submit(
                WranglerDev, {"ROUTER_CONFIG": worker_config(server, name), "ROUTER_TOKEN": TOKEN})
            for name in names
        }

    def get(self, name: str | None) -> WranglerDev:
        return self._futures[name].result()

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        for future in self._futures.values():
            if future.exception() is None:
                future.result().close()


@pytest.fixture(scope="module", autouse=True)
def workers(request: pytest.FixtureRequest, server: FaultServer) -> Iterator[Workers]:
    """One `wrangler dev` for the upstream scenarios, one per config error;
    only those the selected tests need, started in the background as the
    module starts (while the native tests run)."""
    names: set[str | None] = set()
    for item in request.session.items:
        if getattr(item, "module", None) is not request.module:
            continue
        callspec = getattr(item, "callspec", None)
        if item.name.startswith("test_worker_config") and callspec is not None:
            names.add(callspec.params["scenario"])
        elif item.name.startswith("test_worker_"):
            names.add(None)
    w = Workers(server, sorted(names, key=str))
    try:
        yield w
    finally:
        w.close()


def response_surfaces(status: int, headers: dict[str, str], raw: bytes) -> dict[str, str]:
    out = {"status": str(status), "body": raw.decode("latin-1")}
    for name, value in headers.items():
        out[f"header {name}"] = f"{name}: {value}"
    return out


def post(worker: WranglerDev, body: Any) -> tuple[int, dict[str, str], bytes]:
    return worker.request("POST", CHAT, json.dumps(body).encode(),
                          {"content-type": "application/json", "authorization": f"Bearer {TOKEN}"}, timeout=30)


@pytest.mark.parametrize("scenario", WORKER_ROUTES)
def test_worker_route_errors_never_carry_the_key(workers: Workers, scenario: str) -> None:
    expected, _, _, plays = ROUTES[scenario]
    status, headers, raw = post(workers.get(None), chat(f"scan-w-{scenario}-{secrets.token_hex(4)}", plays))
    want = {HardFailure: 401, AllProvidersFailed: 502, RouteResult: 200}[expected]
    assert status == want, f"{scenario}: HTTP {status} {raw[:300]!r}"
    if echoes_an_error(plays) and expected is not RouteResult:
        assert any(words in raw.decode() for words in ECHO_WORDS), f"{scenario}: no upstream message in {raw!r}"
    assert_clean(response_surfaces(status, headers, raw), f"worker {scenario}")


@pytest.mark.parametrize("scenario", WORKER_INVALID)
def test_worker_invalid_requests_never_carry_the_key(workers: Workers, scenario: str) -> None:
    status, headers, raw = post(workers.get(None), INVALID[scenario][1])
    assert status == 400, f"{scenario}: HTTP {status} {raw[:300]!r}"
    assert_clean(response_surfaces(status, headers, raw), f"worker {scenario}")


@pytest.mark.parametrize("scenario", list(WORKER_CONFIGS))
def test_worker_config_errors_never_carry_the_key(workers: Workers, scenario: str) -> None:
    worker = workers.get(scenario)
    surfaces: dict[str, str] = {}
    status, headers, raw = post(worker, chat("scan-config", {}))
    assert status == 500, f"{scenario}: HTTP {status} {raw[:300]!r}"
    surfaces.update({f"chat {k}": v for k, v in response_surfaces(status, headers, raw).items()})
    status, headers, raw = worker.request("GET", "/healthz", timeout=30)
    assert status == 500, f"{scenario}: /healthz HTTP {status} {raw[:300]!r}"
    surfaces.update({f"healthz {k}": v for k, v in response_surfaces(status, headers, raw).items()})
    assert_clean(surfaces, f"worker {scenario}")


def test_worker_healthz_never_carries_the_key(workers: Workers) -> None:
    status, headers, raw = workers.get(None).request("GET", "/healthz", timeout=30)
    assert status == 200
    assert_clean(response_surfaces(status, headers, raw), "worker /healthz")


# --------------------------------------------------------------------------
# the scanner itself


def test_the_scanner_finds_every_escaped_form() -> None:
    for key in KEYS.values():
        for form in ECHO_FORMS:
            raw, _ = echo_body(key, form)
            assert find_leak(raw.decode()), form
        for value in escaped_forms(key).values():
            assert find_leak(f"x {value} y"), value
        assert find_leak(key[:-6]), "a key cut short"
    assert find_leak("Incorrect API key provided: <redacted>") is None
