"""Readable state: ``stats()`` rounded at the source, ``format_stats``, the
stats' ``__rich__`` (rich imported only by rich), and a ``repr(router)``
with every non-default setting and never a key."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from f3dx_router import Router, format_stats
from mock_provider import MockProviders

REQUEST = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}


def completion(text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def provider(name: str, url: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "kind": "openai", "base_url": url, "api_key": "sk-test-placeholder-0000000000", **extra}


def _decimals(x: float) -> int:
    text = repr(x)
    return len(text.split(".")[1]) if "." in text and "e" not in text else 0


@pytest.fixture(scope="module")
def used_router() -> Any:
    """A router after 3 calls: a 503 and a success on a (so error rate 1/3),
    two successes on b after it, with delays (so latencies have fractions)."""
    ok = {"json": completion("ok"), "delay_ms": 7}
    mocks = {
        "a": {"responses": [{"status": 503, "json": {"error": {"message": "busy"}}}, ok, ok]},
        "b": {"responses": [ok, ok]},
    }
    with MockProviders({"mocks": mocks}) as m:
        r = Router([provider("a", m.base_url("a"), rpm=600), provider("b", m.base_url("b"))])
        for _ in range(3):
            r.chat_completions(REQUEST)
        yield r


def test_stats_numbers_are_rounded(used_router: Any) -> None:
    stats = used_router.stats()
    a = stats["providers"]["a"]
    assert a["requests"] == 3 and a["soft_failures"] == 1
    assert a["error_rate"] == 0.3333  # not 0.3333333333333333
    for name, p in stats["providers"].items():
        for q, ms in p["latency_ms"].items():
            assert ms is not None and ms >= 7, (name, q)
            assert _decimals(ms) <= 2, (name, q, ms)
    assert _decimals(a["rpm_left"]) <= 2
    assert stats["hedges"] == {"sent": 0, "won": 0, "skipped_for_budget": 0}


def test_format_stats_is_a_table(used_router: Any) -> None:
    stats = used_router.stats()
    text = format_stats(stats)
    lines = text.splitlines()
    assert lines[0].split()[:4] == ["provider", "state", "calls", "failures"]
    row_a = next(line for line in lines if line.startswith("a "))
    assert "healthy" in row_a and "33.3%" in row_a and "rpm " in row_a
    assert str(stats["providers"]["a"]["latency_ms"]["p50"]) in row_a
    assert lines[-1] == "hedges: 0 sent, 0 won, 0 skipped for budget"
    assert len(lines) == 4  # header, a, b, hedges


def test_format_stats_of_an_unused_router() -> None:
    r = Router([provider("only", "http://127.0.0.1:9/v1")])
    row = format_stats(r.stats()).splitlines()[1]
    assert row.split() == ["only", "healthy", "0", "0", "-", "-", "-", "0", "-", "-"]


def test_import_does_not_import_rich() -> None:
    code = "import sys, f3dx_router; r = f3dx_router.Router([" + repr(provider("a", "http://127.0.0.1:9/v1")) + "]); r.stats(); print('rich' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "False"


def test_rich_prints_stats_as_a_table(used_router: Any) -> None:
    rich_console = pytest.importorskip("rich.console")
    console = rich_console.Console(width=160, record=True)
    console.print(used_router.stats())
    text = console.export_text()
    assert "provider" in text and "33.3%" in text and "hedges: 0 sent" in text


KEYS = [
    "sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",  # OpenAI
    "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",  # Anthropic
    "gsk_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",  # Groq
    "c2stcHJvai1BYkNkRWZHaElqS2xNbk9wUXJTdA==",  # base64 of a key
    "sk%2Dproj%2DAbCdEfGhIjKlMnOpQrSt",  # percent-encoded
    "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",  # no prefix at all
]


@pytest.mark.parametrize("key", KEYS)
def test_repr_never_shows_a_key(key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("F3DX_TEST_REPR_KEY", key)
    r = Router([
        {"name": "a", "kind": "openai", "base_url": "https://api.example.com/v1", "api_key": key,
         "headers": {"api-key": key, "x-org": "org-" + key}},
        {"name": "b", "kind": "anthropic", "base_url": "https://api.anthropic.com/v1", "api_key_env": "F3DX_TEST_REPR_KEY"},
    ])
    text = repr(r)
    assert key not in text and key[-16:] not in text
    assert "'api-key': '(hidden)'" in text


def test_repr_shows_every_non_default_setting() -> None:
    r = Router(
        [
            provider("a", "https://api.example.com/v1", model="gpt-4o-mini", weight=3, timeout_ms=5000,
                     stream_idle_timeout_ms=7000, max_body_bytes=1048576, rpm=600, tpm=90000),
            provider("b", "https://b.example.com/v1"),
        ],
        policy="hedged", hedge_k=2, hedge_delay_ms=250, hedge_budget=0.5,
        health={"window_s": 30, "max_error_rate": 0.25, "buckets": 5},
        quality={"min_pass_rate": 0.9, "on_failure": "failover"},
    )
    text = repr(r)
    for part in ("'model': 'gpt-4o-mini'", "'weight': 3", "'timeout_ms': 5000", "'stream_idle_timeout_ms': 7000",
                 "'max_body_bytes': 1048576", "'rpm': 600", "'tpm': 90000",
                 "policy='hedged', hedge_k=2, hedge_delay_ms=250, hedge_budget=0.5",
                 "health={'window_s': 30, 'buckets': 5, 'max_error_rate': 0.25}",
                 "quality={'min_pass_rate': 0.9, 'on_failure': 'failover'}"):
        assert part in text, part
    # b keeps its defaults: only what identifies it.
    assert "{'name': 'b', 'kind': 'openai', 'base_url': 'https://b.example.com/v1'}" in text


def test_repr_of_defaults_is_short() -> None:
    r = Router([provider("a", "https://api.example.com/v1")])
    assert repr(r) == "Router(providers=[{'name': 'a', 'kind': 'openai', 'base_url': 'https://api.example.com/v1'}], policy='sequential')"
    off = Router([provider("a", "https://api.example.com/v1")], health=False, quality=False)
    assert repr(off).endswith("policy='sequential', health=False, quality=False)")
