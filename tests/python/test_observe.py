"""Logging (the ``f3dx_router`` logger) and OpenTelemetry spans (``otel=True``).

Logging: DEBUG records per attempt and per call, only when the logger is
enabled for DEBUG; WARNING records for health transitions, once each (INFO
for a readmission). OpenTelemetry: one CLIENT span per call with the GenAI
semantic conventions, one event per attempt, through the global tracer
provider (the SDK's in-memory exporter here). Neither lets a key out: the
upstreams echo a distinctive key in their error bodies and every record and
span is scanned for it.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import f3dx_router
from f3dx_router import AllProvidersFailed, ConfigError, HardFailure, Router
from mock_provider import MockProviders

pytest.importorskip("opentelemetry.sdk")

from opentelemetry import trace  # noqa: E402
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402
from opentelemetry.trace import SpanKind, StatusCode  # noqa: E402

# A key no output may show, nor any FRAGMENT characters of its random part.
SECRET = secrets.token_hex(12)
KEY = f"sk-OBSERVE-{SECRET}"
FRAGMENT = 10

MODEL = "gpt-4o"
REQUEST: dict[str, Any] = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
STREAM_REQUEST: dict[str, Any] = {**REQUEST, "stream": True, "stream_options": {"include_usage": True}}


def reply(name: str, **extra: Any) -> dict[str, Any]:
    body = {"id": f"chatcmpl-{name}", "object": "chat.completion", "created": 1, "model": f"{name}-model",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": name}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}}
    return {"json": body, **extra}


def echo(status: int, **extra: Any) -> dict[str, Any]:
    """An upstream error whose body echoes the key (as some do: "invalid key sk-...")."""
    return {"status": status, "json": {"error": {"message": f"invalid api key {KEY}", "key": KEY}}, **extra}


def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"id": "chatcmpl-s", "object": "chat.completion.chunk", "created": 1, "model": "streamer-model",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


USAGE_CHUNK = {"id": "chatcmpl-s", "object": "chat.completion.chunk", "created": 1, "model": "streamer-model",
               "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}}
FULL_STREAM = {"events": [{"data": chunk({"role": "assistant", "content": ""})}, {"data": chunk({"content": "Hel"})},
                          {"data": chunk({"content": "lo"})}, {"data": chunk({}, "stop")}, {"data": USAGE_CHUNK},
                          {"data": "[DONE]"}]}
ERR = {"status": 503, "json": {"error": {"message": "down"}}}


def provider(m: MockProviders, name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "kind": "openai", "base_url": m.base_url(name), "api_key": KEY, "timeout_ms": 5000,
            **extra}


def records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "f3dx_router"]


def assert_no_key(text: str) -> None:
    assert KEY not in text, text
    for i in range(len(SECRET) - FRAGMENT + 1):
        assert SECRET[i : i + FRAGMENT] not in text, text


def record_text(r: logging.LogRecord) -> str:
    return f"{r.getMessage()} {r.__dict__!r}"


def span_text(s: ReadableSpan) -> str:
    return s.to_json()


@pytest.fixture
def debug_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.DEBUG, logger="f3dx_router")
    yield caplog
    for r in records(caplog):
        assert_no_key(record_text(r))


# -- logging -----------------------------------------------------------------


def test_the_logger_has_a_null_handler() -> None:
    with MockProviders({"mocks": {"a": {"responses": [reply("a")]}}}) as m:
        Router([provider(m, "a")])
    handlers = logging.getLogger("f3dx_router").handlers
    assert any(isinstance(h, logging.NullHandler) for h in handlers)


def test_silent_unless_logging_is_configured(tmp_path: Path) -> None:
    # A fresh interpreter with no logging config: an ejection (a WARNING)
    # must not reach stderr through logging's last-resort handler, and
    # import f3dx_router alone must not import logging.
    script = tmp_path / "silent.py"
    script.write_text(
        "import sys\n"
        "import f3dx_router\n"
        "assert 'logging' not in sys.modules, 'import f3dx_router imported logging'\n"
        "r = f3dx_router.Router([{'name': 'a', 'kind': 'openai', 'base_url': 'http://127.0.0.1:9/v1',\n"
        "                         'api_key': 'sk-x'}], health={'consecutive_failures': 1})\n"
        "for _ in range(3):\n"
        "    try:\n"
        "        r.chat_completions({'model': 'm', 'messages': [{'role': 'user', 'content': 'hi'}]})\n"
        "    except f3dx_router.AllProvidersFailed:\n"
        "        pass\n"
        "assert 'opentelemetry' not in sys.modules, 'imported opentelemetry without otel=True'\n"
        "print('ok')\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (package_root(), os.environ.get("PYTHONPATH")) if p)}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "ok\n"
    assert done.stderr == ""


def package_root() -> str:
    return str(Path(f3dx_router.__file__).resolve().parent.parent)


def test_debug_records_one_per_attempt_and_one_per_call(debug_log: pytest.LogCaptureFixture) -> None:
    mocks = {"a": {"responses": [echo(503)]}, "b": {"responses": [reply("b")]}}
    with MockProviders({"mocks": mocks}) as m:
        r = Router([provider(m, "a"), provider(m, "b")])
        res = r.route(REQUEST)
    assert res.provider == "b"
    recs = records(debug_log)
    assert [x.levelno for x in recs] == [logging.DEBUG] * 3
    first, second, call = recs
    assert (first.provider, first.outcome, first.status, first.fault, first.attempt) == (  # type: ignore[attr-defined]
        "a", "soft", 503, None, 1)
    assert first.started_ms == res.attempts[0].started_ms  # type: ignore[attr-defined]
    assert first.ended_ms == res.attempts[0].ended_ms  # type: ignore[attr-defined]
    assert "[redacted]" in first.detail or "invalid api key" in first.detail  # type: ignore[attr-defined]
    assert (second.provider, second.outcome, second.status) == ("b", "success", 200)  # type: ignore[attr-defined]
    assert first.getMessage().startswith(f"chat {MODEL}: attempt 1/2 to 'a': soft, HTTP 503, 0.0-")
    assert second.getMessage().startswith(f"chat {MODEL}: attempt 2/2 to 'b': success, HTTP 200, ")
    assert (call.provider, call.outcome, call.error, call.attempts, call.model, call.stream) == (  # type: ignore[attr-defined]
        "b", "success", None, 2, MODEL, False)
    assert call.latency_ms == pytest.approx(res.latency_ms)  # type: ignore[attr-defined]
    assert call.getMessage() == f"chat {MODEL}: success from 'b' in {res.latency_ms:.1f} ms, 2 attempts"


def test_failed_calls_are_logged_with_their_error(debug_log: pytest.LogCaptureFixture) -> None:
    mocks = {"a": {"responses": [echo(503), echo(401)]}, "b": {"responses": [echo(503)]}}
    with MockProviders({"mocks": mocks}) as m:
        r = Router([provider(m, "a"), provider(m, "b")], health=False)
        with pytest.raises(AllProvidersFailed):
            r.chat_completions(REQUEST)
        with pytest.raises(HardFailure):
            r.chat_completions(REQUEST)
    calls = [x for x in records(debug_log) if hasattr(x, "latency_ms")]
    assert [(c.outcome, c.error, c.provider, c.attempts) for c in calls] == [  # type: ignore[attr-defined]
        ("all_failed", "AllProvidersFailed", None, 2),
        ("hard", "HardFailure", "a", 1),
    ]
    assert calls[1].getMessage().startswith(f"chat {MODEL}: HardFailure from 'a' in ")


def test_per_call_records_are_built_only_when_debug_is_enabled(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import f3dx_router._log as log

    seen: list[str] = []
    real = log.log_call

    def counting(*args: Any) -> None:
        seen.append(args[3])
        real(*args)

    monkeypatch.setattr(log, "log_call", counting)  # read when the Router is built
    with MockProviders({"mocks": {"a": {"responses": [reply("a")]}}}, loop=True) as m:
        r = Router([provider(m, "a")])
        caplog.set_level(logging.INFO, logger="f3dx_router")
        for _ in range(3):
            r.chat_completions(REQUEST)
        assert seen == []
        caplog.set_level(logging.DEBUG, logger="f3dx_router")
        r.chat_completions(REQUEST)
        assert seen == ["success"]
        logging.getLogger("f3dx_router").disabled = True  # as dictConfig does to existing loggers
        try:
            r.chat_completions(REQUEST)
        finally:
            logging.getLogger("f3dx_router").disabled = False
        assert seen == ["success"]
        logging.disable(logging.DEBUG)
        try:
            r.chat_completions(REQUEST)
        finally:
            logging.disable(logging.NOTSET)
        assert seen == ["success"]
        r.chat_completions(REQUEST)
        assert seen == ["success", "success"]


def test_an_ejection_is_logged_once_as_a_warning_and_the_readmission_as_info(
    debug_log: pytest.LogCaptureFixture,
) -> None:
    mocks = {"flaky": {"responses": [echo(503), echo(503), reply("flaky")]}, "good": {"responses": [reply("good")]}}
    with MockProviders({"mocks": mocks}, loop=True) as m:
        r = Router([provider(m, "flaky"), provider(m, "good")],
                   health={"consecutive_failures": 2, "ejection_s": 1})
        for _ in range(6):
            assert r.route(REQUEST).provider == "good"
        transitions = [x for x in records(debug_log) if x.levelno > logging.DEBUG]
        assert len(transitions) == 1, [x.getMessage() for x in transitions]
        (ejected,) = transitions
        assert ejected.levelno == logging.WARNING
        assert ejected.getMessage() == "provider 'flaky' ejected for 1.0 s: 2 soft failures in a row"
        assert (ejected.provider, ejected.transition, ejected.reason, ejected.for_s) == (  # type: ignore[attr-defined]
            "flaky", "ejected", "consecutive_failures", 1.0)
        time.sleep(1.05)
        assert r.route(REQUEST).provider == "flaky"  # the half-open probe succeeds
    transitions = [x for x in records(debug_log) if x.levelno > logging.DEBUG]
    assert len(transitions) == 2
    readmitted = transitions[1]
    assert readmitted.levelno == logging.INFO
    assert (readmitted.transition, readmitted.for_s) == ("readmitted", None)  # type: ignore[attr-defined]
    assert readmitted.getMessage().startswith("provider 'flaky' readmitted: ")


def test_cooldowns_and_spent_budgets_are_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="f3dx_router")
    limited = reply("limited", headers={"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "20s"})
    mocks = {
        "busy": {"responses": [echo(429, headers={"retry-after": "30"})]},
        "limited": {"responses": [limited]},
        "budget": {"responses": [reply("budget")]},
        "spare": {"responses": [reply("spare")]},
    }
    with MockProviders({"mocks": mocks}, loop=True) as m:
        r = Router([provider(m, "busy"), provider(m, "limited"), provider(m, "budget", rpm=1), provider(m, "spare")])
        winners = [r.route(REQUEST).provider for _ in range(5)]
    assert winners == ["limited", "budget", "spare", "spare", "spare"]
    got = [(x.levelno, x.transition, x.reason, x.getMessage()) for x in records(caplog)]  # type: ignore[attr-defined]
    assert [g[:3] for g in got] == [
        (logging.WARNING, "cooling", "retry_after"),
        (logging.WARNING, "rate_limited", "rate_limit_headers"),
        (logging.WARNING, "budget_exhausted", "rpm"),
    ]
    assert got[0][3] == "provider 'busy' cooling down for 30.0 s: it answered with Retry-After"
    assert got[1][3] == "provider 'limited' rate-limited for 20.0 s: its rate-limit headers say a limit is spent"
    assert got[2][3] == "provider 'budget' out of budget for about 60.0 s: the router's rpm budget for it is spent"
    for x in records(caplog):
        assert_no_key(record_text(x))


def test_a_stream_is_logged_at_its_end_or_close(debug_log: pytest.LogCaptureFixture) -> None:
    mocks = {"flaky": {"responses": [echo(503)]}, "streamer": {"responses": [FULL_STREAM]}}
    with MockProviders({"mocks": mocks}, loop=True) as m:
        r = Router([provider(m, "flaky"), provider(m, "streamer")], health=False)
        with r.chat_completions(STREAM_REQUEST) as s:
            assert records(debug_log) == [], "nothing before the end"
            text = "".join(c["choices"][0]["delta"].get("content") or "" for c in s if c["choices"])
        assert text == "Hello"
        done = records(debug_log)
        assert [getattr(x, "outcome") for x in done] == ["soft", "success", "success"]
        assert done[-1].getMessage().startswith(f"chat {MODEL} (stream): success from 'streamer' in ")
        assert getattr(done[-1], "stream") is True
        debug_log.clear()
        s = r.chat_completions(STREAM_REQUEST)
        next(iter(s))
        s.close()
        s.close()
        closed = records(debug_log)
        # The committed attempt, as of the commit point: no end yet.
        assert [getattr(x, "outcome") for x in closed] == ["soft", "success", "closed"]
        assert getattr(closed[1], "ended_ms") is None
        assert closed[-1].getMessage().startswith(f"chat {MODEL} (stream): closed by its reader before the end from "
                                                  "'streamer' in ")
        debug_log.clear()
        s = r.chat_completions(STREAM_REQUEST)
        del s  # dropped unclosed
        assert [getattr(x, "outcome") for x in records(debug_log)] == ["soft", "success", "closed"]


def test_a_failing_handler_never_breaks_a_call(monkeypatch: pytest.MonkeyPatch) -> None:
    import f3dx_router._log as log

    def broken(*_args: Any) -> None:
        raise RuntimeError("handler bug")

    unraisable: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    monkeypatch.setattr(log, "log_call", broken)
    logger = logging.getLogger("f3dx_router")
    old = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        with MockProviders({"mocks": {"a": {"responses": [reply("a")]}}}) as m:
            r = Router([provider(m, "a")])
            assert r.route(REQUEST).provider == "a"
    finally:
        logger.setLevel(old)
    assert len(unraisable) == 1
    assert isinstance(unraisable[0].exc_value, RuntimeError)


# -- OpenTelemetry -----------------------------------------------------------


@pytest.fixture(scope="module")
def exporter() -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    tracer_provider = trace.get_tracer_provider()
    if not isinstance(tracer_provider, TracerProvider):
        tracer_provider = TracerProvider()
        trace.set_tracer_provider(tracer_provider)
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


@pytest.fixture
def spans(exporter: InMemorySpanExporter) -> Iterator[InMemorySpanExporter]:
    exporter.clear()
    yield exporter
    for s in exporter.get_finished_spans():
        assert_no_key(span_text(s))
    exporter.clear()


def calls(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.instrumentation_scope is not None
            and s.instrumentation_scope.name == "f3dx_router"]


def test_one_client_span_per_call_with_genai_attributes(spans: InMemorySpanExporter) -> None:
    mocks = {"a": {"responses": [echo(503)]}, "b": {"responses": [reply("b")]}}
    with MockProviders({"mocks": mocks}) as m:
        r = Router([provider(m, "a"), provider(m, "b")], otel=True)
        tracer = trace.get_tracer("test")
        before = time.time_ns()
        with tracer.start_as_current_span("caller") as parent:
            res = r.route(REQUEST)
        after = time.time_ns()
    (span,) = calls(spans)
    assert span.name == f"chat {MODEL}"
    assert span.kind == SpanKind.CLIENT
    assert span.parent is not None and span.parent.span_id == parent.get_span_context().span_id
    assert span.context is not None and span.context.trace_id == parent.get_span_context().trace_id
    assert dict(span.attributes or {}) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": MODEL,
        "gen_ai.request.stream": False,
        "gen_ai.response.model": "b-model",
        "gen_ai.response.id": "chatcmpl-b",
        "gen_ai.response.finish_reasons": ("stop",),
        "gen_ai.usage.input_tokens": 7,
        "gen_ai.usage.output_tokens": 3,
        "f3dx.router.provider": "b",
        "f3dx.router.attempts": 2,
    }
    assert span.status.status_code == StatusCode.UNSET
    assert span.start_time is not None and span.end_time is not None
    assert before <= span.start_time <= span.end_time <= after
    assert (span.end_time - span.start_time) / 1e6 == pytest.approx(res.latency_ms, abs=5.0)
    events = list(span.events)
    assert [e.name for e in events] == ["f3dx.router.attempt"] * 2
    a, b = (dict(e.attributes or {}) for e in events)
    assert a == {"f3dx.router.provider": "a", "gen_ai.provider.name": "openai", "f3dx.router.attempt.outcome": "soft",
                 "http.response.status_code": 503, "f3dx.router.attempt.start_ms": res.attempts[0].started_ms,
                 "f3dx.router.attempt.end_ms": res.attempts[0].ended_ms}
    assert (b["f3dx.router.provider"], b["f3dx.router.attempt.outcome"]) == ("b", "success")
    for e, attempt in zip(events, res.attempts):
        assert attempt.ended_ms is not None
        assert span.start_time <= e.timestamp <= span.end_time
        assert e.timestamp == pytest.approx(span.start_time + attempt.ended_ms * 1e6, abs=2e6)


def test_an_anthropic_winner_names_its_provider(spans: InMemorySpanExporter) -> None:
    message = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
               "content": [{"type": "text", "text": "hi"}], "stop_reason": "end_turn",
               "usage": {"input_tokens": 4, "output_tokens": 2}}
    with MockProviders({"mocks": {"claude": {"responses": [{"json": message}]}}}) as m:
        r = Router([{**provider(m, "claude"), "kind": "anthropic"}], otel=True)
        r.chat_completions(REQUEST)
    (span,) = calls(spans)
    attrs = dict(span.attributes or {})
    assert attrs["gen_ai.provider.name"] == "anthropic"
    assert attrs["f3dx.router.provider"] == "claude"
    assert (attrs["gen_ai.response.model"], attrs["gen_ai.response.id"]) == ("claude-x", "msg_1")
    assert attrs["gen_ai.response.finish_reasons"] == ("stop",)
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (4, 2)


def test_a_failed_call_has_error_type_and_an_error_status(spans: InMemorySpanExporter) -> None:
    mocks = {"a": {"responses": [echo(401)]}, "b": {"responses": [echo(503)]}}
    with MockProviders({"mocks": mocks}) as m:
        r = Router([provider(m, "b"), provider(m, "a")], otel=True)
        with pytest.raises(HardFailure):
            r.chat_completions(REQUEST)
    (span,) = calls(spans)
    attrs = dict(span.attributes or {})
    assert attrs["error.type"] == "HardFailure"
    assert (attrs["f3dx.router.provider"], attrs["gen_ai.provider.name"]) == ("a", "openai")
    assert "gen_ai.response.id" not in attrs
    assert span.status.status_code == StatusCode.ERROR
    assert span.status.description is not None and "HTTP 401" in span.status.description
    assert [dict(e.attributes or {})["http.response.status_code"] for e in span.events] == [503, 401]


def test_a_stream_span_carries_what_its_chunks_said(spans: InMemorySpanExporter) -> None:
    with MockProviders({"mocks": {"streamer": {"responses": [FULL_STREAM]}}}, loop=True) as m:
        r = Router([provider(m, "streamer")], otel=True)
        tracer = trace.get_tracer("test")
        with tracer.start_as_current_span("caller") as parent:
            s = r.chat_completions(STREAM_REQUEST)
        # Read outside the caller's span: the call's span still has it as
        # its parent (captured when the call started).
        assert calls(spans) == []
        list(s)
        (span,) = calls(spans)
        assert span.parent is not None and span.parent.span_id == parent.get_span_context().span_id
        attrs = dict(span.attributes or {})
        assert attrs["gen_ai.request.stream"] is True
        assert (attrs["gen_ai.response.id"], attrs["gen_ai.response.model"]) == ("chatcmpl-s", "streamer-model")
        assert attrs["gen_ai.response.finish_reasons"] == ("stop",)
        assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (5, 2)
        spans.clear()
        with r.chat_completions(STREAM_REQUEST) as s:
            next(iter(s))
        (span,) = calls(spans)
        attrs = dict(span.attributes or {})
        assert attrs["f3dx.router.stream.closed"] is True
        assert "error.type" not in attrs
        (event,) = span.events
        assert dict(event.attributes or {})["f3dx.router.attempt.outcome"] == "success"
        assert "f3dx.router.attempt.end_ms" not in dict(event.attributes or {})
        assert event.timestamp == span.end_time


def test_no_key_in_any_record_or_span(spans: InMemorySpanExporter, debug_log: pytest.LogCaptureFixture) -> None:
    # The fixtures scan every record and span; here the upstreams echo the
    # key on every path: a soft failure's detail (and the ejection it
    # causes), a 429 with Retry-After before a stream, a hard failure's body
    # and message.
    mocks = {
        "soft": {"responses": [echo(503)]},
        "good": {"responses": [reply("good")]},
        "busy": {"responses": [echo(429, headers={"retry-after": "1"})]},
        "streamer": {"responses": [FULL_STREAM]},
        "hard": {"responses": [echo(403)]},
    }
    with MockProviders({"mocks": mocks}, loop=True) as m:
        r = Router([provider(m, "soft"), provider(m, "good")], otel=True, health={"consecutive_failures": 1})
        assert r.route(REQUEST).provider == "good"
        r = Router([provider(m, "busy"), provider(m, "streamer")], otel=True)
        with r.chat_completions(STREAM_REQUEST) as s:
            # The 429 before the commit point is logged at the commit point.
            assert getattr(records(debug_log)[-1], "transition") == "cooling"
            assert "".join(c["choices"][0]["delta"].get("content") or "" for c in s if c["choices"]) == "Hello"
        r = Router([provider(m, "hard")], otel=True)
        with pytest.raises(HardFailure) as caught:
            r.route(REQUEST)
    assert_no_key(str(caught.value))
    assert len(calls(spans)) == 3
    details = [getattr(x, "detail") for x in records(debug_log)
               if hasattr(x, "attempt") and getattr(x, "outcome") in ("soft", "hard")]
    assert len(details) == 3 and all("invalid api key" in d for d in details), details
    transitions = {getattr(x, "transition", None) for x in records(debug_log)}
    assert {"ejected", "cooling"} <= transitions


def test_otel_is_not_imported_without_it(tmp_path: Path) -> None:
    script = tmp_path / "no_otel.py"
    script.write_text(
        "import logging, sys\n"
        "logging.basicConfig(level=logging.DEBUG)\n"
        "import f3dx_router\n"
        "r = f3dx_router.Router([{'name': 'a', 'kind': 'openai', 'base_url': 'http://127.0.0.1:9/v1',\n"
        "                         'api_key': 'sk-x'}], otel=False)\n"
        "try:\n"
        "    r.chat_completions({'model': 'm', 'messages': [{'role': 'user', 'content': 'hi'}]})\n"
        "except f3dx_router.AllProvidersFailed:\n"
        "    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry') or m == 'f3dx_router._otel'))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (package_root(), os.environ.get("PYTHONPATH")) if p)}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "[]\n"


def test_otel_without_the_api_installed_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry", None)  # type: ignore[arg-type]
    monkeypatch.delitem(sys.modules, "f3dx_router._otel", raising=False)
    with pytest.raises(ConfigError) as caught:
        Router([{"name": "a", "kind": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key": "sk-x"}], otel=True)
    assert caught.value.field == "otel"
    assert 'pip install "f3dx-router[otel]"' in caught.value.message


@pytest.mark.parametrize("value", ["yes", 1, {"on": True}])
def test_otel_must_be_a_bool(value: Any) -> None:
    with pytest.raises(ConfigError) as caught:
        Router([{"name": "a", "kind": "openai", "base_url": "http://h/v1", "api_key": "k"}], otel=value)
    assert caught.value.field == "otel"
    assert caught.value.message == "invalid router config: otel: must be true or false"


def test_otel_from_a_config_file(tmp_path: Path, spans: InMemorySpanExporter) -> None:
    with MockProviders({"mocks": {"a": {"responses": [reply("a")]}}}) as m:
        path = tmp_path / "router.json"
        path.write_text(json.dumps({"providers": [provider(m, "a")], "otel": True}))
        Router.from_file(path).route(REQUEST)
        path = tmp_path / "router.toml"
        path.write_text(f'otel = false\n[[providers]]\nname = "a"\nkind = "openai"\nbase_url = "{m.base_url("a")}"\n'
                        f'api_key = "k"\n')
        Router.from_file(path)
    assert len(calls(spans)) == 1


# -- the async calls ---------------------------------------------------------


def test_async_calls_are_logged_and_traced_like_sync_ones(
    spans: InMemorySpanExporter, debug_log: pytest.LogCaptureFixture
) -> None:
    import asyncio

    mocks = {"a": {"responses": [ERR, ERR, echo(401)]}, "b": {"responses": [reply("b"), FULL_STREAM]}}
    with MockProviders({"mocks": mocks}) as m:
        r = Router([provider(m, "a"), provider(m, "b")], otel=True)
        tracer = trace.get_tracer("test")

        async def main() -> None:
            with tracer.start_as_current_span("agent step") as parent:
                assert (await r.aroute(REQUEST)).provider == "b"
                stream = await r.achat_completions(STREAM_REQUEST)
                assert [c async for c in stream]
            with pytest.raises(HardFailure):
                await r.achat_completions(REQUEST)
            parents.append(parent.get_span_context().span_id)

        parents: list[int] = []
        asyncio.run(main())
    done = calls(spans)
    assert [s.name for s in done] == [f"chat {MODEL}"] * 3
    whole, streamed, failed = done
    for s in (whole, streamed):
        assert s.parent is not None and s.parent.span_id == parents[0]
        assert s.attributes is not None and s.attributes["f3dx.router.provider"] == "b"
    assert streamed.attributes is not None and streamed.attributes["gen_ai.request.stream"] is True
    assert streamed.attributes["gen_ai.usage.output_tokens"] == 2
    assert failed.attributes is not None and failed.attributes["error.type"] == "HardFailure"
    assert failed.status.status_code == StatusCode.ERROR
    per_call = [rec for rec in records(debug_log) if hasattr(rec, "latency_ms")]
    assert [(getattr(rec, "stream"), getattr(rec, "outcome")) for rec in per_call][:2] == [
        (False, "success"), (True, "success")]
    assert len(per_call) == 3 and getattr(per_call[2], "error") == "HardFailure"
    attempts = [rec for rec in records(debug_log) if hasattr(rec, "attempt")]
    assert [getattr(rec, "provider") for rec in attempts] == ["a", "b", "a", "b", "a"]


# -- calls abandoned before their answer ---------------------------------------
# Ctrl-C in a sync call, an async call's task cancelled: the call ends with
# an exception rather than an answer, and is still logged and traced, as
# cancelled by that exception (its attempts went with it).

STALL = {"fault": "stall"}  # the mock holds the request and never answers


def wait_for_request(m: MockProviders, name: str) -> None:
    """Until the mock has the request: the call is surely under way."""
    deadline = time.monotonic() + 10
    while not m.log()[name] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert m.log()[name], "the request never reached the mock"


def interrupt_once_requested(m: MockProviders, name: str) -> threading.Thread:
    """SIGINT to this process once the call's request reached the mock;
    Python's default handler raises KeyboardInterrupt in the main thread,
    from the call's signal check."""
    def send() -> None:
        wait_for_request(m, name)
        os.kill(os.getpid(), signal.SIGINT)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread


def assert_cancelled(span: ReadableSpan, by: str, stream: bool) -> None:
    attrs = dict(span.attributes or {})
    assert attrs["error.type"] == by
    assert attrs["f3dx.router.cancelled"] is True
    assert attrs["gen_ai.request.stream"] is stream
    assert "f3dx.router.attempts" not in attrs and "gen_ai.response.id" not in attrs
    assert span.status.status_code == StatusCode.ERROR
    assert span.status.description == f"the call was cancelled by {by} before its answer"
    assert span.end_time is not None and span.start_time is not None and span.end_time > span.start_time


def cancelled_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [rec for rec in records(caplog) if getattr(rec, "outcome", None) == "cancelled"]


@pytest.mark.parametrize("body", [REQUEST, STREAM_REQUEST], ids=["whole", "stream"])
def test_ctrl_c_during_a_call_is_logged_and_traced_as_cancelled(
    body: dict[str, Any], spans: InMemorySpanExporter, debug_log: pytest.LogCaptureFixture
) -> None:
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with MockProviders({"mocks": {"a": {"responses": [STALL]}}}) as m:
        r = Router([provider(m, "a", timeout_ms=8000)], otel=True)
        thread = interrupt_once_requested(m, "a")
        started = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            r.chat_completions(body)
        thread.join(timeout=10)
        assert time.monotonic() - started < 8.0  # the interrupt, not the timeout
    (span,) = calls(spans)
    assert_cancelled(span, "KeyboardInterrupt", stream=body is STREAM_REQUEST)
    (rec,) = cancelled_records(debug_log)
    assert (getattr(rec, "error"), getattr(rec, "provider"), getattr(rec, "attempts")) == (
        "KeyboardInterrupt", None, None)
    assert rec.getMessage() == f"chat {MODEL}{' (stream)' if body is STREAM_REQUEST else ''}: " \
        f"cancelled by KeyboardInterrupt after {getattr(rec, 'latency_ms'):.1f} ms"


@pytest.mark.parametrize("body", [REQUEST, STREAM_REQUEST], ids=["whole", "stream"])
def test_a_cancelled_async_call_is_logged_and_traced_as_cancelled(
    body: dict[str, Any], spans: InMemorySpanExporter, debug_log: pytest.LogCaptureFixture
) -> None:
    import asyncio

    with MockProviders({"mocks": {"a": {"responses": [STALL]}}}) as m:
        r = Router([provider(m, "a", timeout_ms=8000)], otel=True)

        async def main() -> None:
            task = asyncio.ensure_future(r.achat_completions(body))
            deadline = time.monotonic() + 10
            while not m.log()["a"] and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            # The report comes through the loop once the task is dropped.
            deadline = time.monotonic() + 5
            while not calls(spans) and time.monotonic() < deadline:
                await asyncio.sleep(0.01)

        asyncio.run(main())
    (span,) = calls(spans)
    assert_cancelled(span, "CancelledError", stream=body is STREAM_REQUEST)
    (rec,) = cancelled_records(debug_log)
    assert getattr(rec, "error") == "CancelledError"
    assert "cancelled by CancelledError after" in rec.getMessage()


def test_an_async_call_that_answered_is_not_reported_twice(
    spans: InMemorySpanExporter, debug_log: pytest.LogCaptureFixture
) -> None:
    import asyncio

    with MockProviders({"mocks": {"a": {"responses": [reply("a")] * 20}}}) as m:
        r = Router([provider(m, "a")], otel=True)

        async def main() -> None:
            for _ in range(20):
                assert (await r.achat_completions(REQUEST))["id"] == "chatcmpl-a"

        asyncio.run(main())
    assert len(calls(spans)) == 20
    assert not cancelled_records(debug_log)


def test_quality_exclusions_and_readmissions_are_logged_with_tenant_and_model(caplog: pytest.LogCaptureFixture) -> None:
    # Quality-aware routing's transitions are per (provider, tenant, model):
    # a WARNING when one is excluded, INFO when its probe readmits it.
    caplog.set_level(logging.INFO, logger="f3dx_router")
    with MockProviders({"mocks": {"a": {"responses": [reply("a")]}, "b": {"responses": [reply("b")]}}},
                       loop=True) as m:
        r = Router([provider(m, "a"), provider(m, "b")],
                   quality={"window": 10, "min_samples": 3, "min_pass_rate": 0.5, "probe_after_s": 1})
        for _ in range(3):
            r.record_quality("a", False, model=MODEL, tenant="acme")
        got = [(x.levelno, x.getMessage()) for x in records(caplog)]
        assert got == [(logging.WARNING, f"provider 'a' excluded for tenant 'acme', model '{MODEL}' for 1.0 s: "
                                         "schema pass rate 0.00 (0 of 3 answers)")]
        (rec,) = records(caplog)
        assert (getattr(rec, "transition"), getattr(rec, "reason"), getattr(rec, "tenant"), getattr(rec, "model"),
                getattr(rec, "for_s")) == ("quality_excluded", "pass_rate", "acme", MODEL, 1.0)
        assert r.route(REQUEST, tenant="acme").provider == "b"  # excluded for acme
        assert r.route(REQUEST, tenant="globex").provider == "a"  # not for another tenant
        def acme_state() -> str:
            return next(k["state"] for k in r.stats()["providers"]["a"]["quality"] if k["tenant"] == "acme")

        deadline = time.monotonic() + 5
        while acme_state() == "excluded" and time.monotonic() < deadline:  # probe_after_s: 1
            time.sleep(0.02)
        assert acme_state() == "probing"
        r.record_quality("a", True, model=MODEL, tenant="acme")  # the probe passes
    readmitted = records(caplog)[-1]
    assert readmitted.levelno == logging.INFO
    assert readmitted.getMessage() == (f"provider 'a' readmitted for tenant 'acme', model '{MODEL}': "
                                       "its probe's answer matched the schema")
    assert getattr(readmitted, "transition") == "quality_readmitted"
    assert len(records(caplog)) == 2
