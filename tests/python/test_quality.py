"""Quality-aware routing through the Python API: the tenant argument,
record_quality, schema_valid, the bounded key count and config validation.
The routing rules themselves are the shared vectors' (quality_*)."""

from __future__ import annotations

import copy
import resource
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from f3dx_router import ConfigError, InvalidRequest, Router
from mock_provider import MockProviders

SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
          "required": ["name", "age"], "additionalProperties": False}
REQUEST = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Who is Ada?"}],
           "response_format": {"type": "json_schema", "json_schema": {"name": "person", "schema": SCHEMA}}}
VALID = '{"name": "Ada", "age": 36}'
BROKEN = '{"name": "Ada", "age": '


def answer(content: str) -> dict[str, Any]:
    return {"json": {"id": "c", "object": "chat.completion", "created": 1, "model": "m",
                     "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                                  "finish_reason": "stop"}]}}


def provider(m: MockProviders, name: str) -> dict[str, Any]:
    return {"name": name, "kind": "openai", "base_url": m.base_url(name), "api_key": "k"}


def offline(*names: str) -> list[dict[str, Any]]:
    return [{"name": n, "kind": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key": "k"} for n in names]


def test_broken_json_for_one_tenant_moves_that_tenant_away() -> None:
    mocks = {"flaky": {"responses": [answer(BROKEN)]}, "steady": {"responses": [answer(VALID)]}}
    with MockProviders({"mocks": mocks}, loop=True) as m:
        r = Router([provider(m, "flaky"), provider(m, "steady")], quality={"min_samples": 5})
        for _ in range(5):
            res = r.route(REQUEST, tenant="acme")
            assert (res.provider, res.schema_valid) == ("flaky", False)
        res = r.route(REQUEST, tenant="acme")
        assert (res.provider, res.schema_valid) == ("steady", True)
        # Another tenant, and the same tenant with another model, keep flaky.
        assert r.route(REQUEST, tenant="globex").provider == "flaky"
        assert r.route({**REQUEST, "model": "gpt-4o-mini"}, tenant="acme").provider == "flaky"
        keys = r.stats()["providers"]["flaky"]["quality"]
    acme = next(k for k in keys if k["tenant"] == "acme" and k["model"] == "gpt-4o")
    assert acme["state"] == "excluded" and acme["samples"] == 5 and acme["pass_rate"] == 0.0
    assert acme["until_s"] is not None and 0 < acme["until_s"] <= 60


def test_no_response_format_is_not_checked() -> None:
    with MockProviders({"mocks": {"a": {"responses": [answer("hello")]}}}, loop=True) as m:
        r = Router([provider(m, "a")])
        res = r.route({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]})
        assert res.schema_valid is None
        assert "schema_valid=None" in repr(res)


def test_reported_results_count_and_are_checked() -> None:
    r = Router(offline("a", "b"), quality={"min_samples": 3})
    for _ in range(3):
        r.record_quality("a", False, model="gpt-4o", tenant="acme")
    keys = r.stats()["providers"]["a"]["quality"]
    assert [(k["tenant"], k["model"], k["state"]) for k in keys] == [("acme", "gpt-4o", "excluded")]
    r.record_quality("b", True, model="gpt-4o")  # the empty tenant
    assert r.stats()["providers"]["b"]["quality"][0]["tenant"] == ""
    with pytest.raises(ValueError, match='no provider named "c"'):
        r.record_quality("c", True, model="gpt-4o")
    with pytest.raises(TypeError, match="passed"):
        r.record_quality("a", 1, model="gpt-4o")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        r.record_quality("a", True)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="off"):
        Router(offline("a"), quality=False).record_quality("a", True, model="m")


@pytest.mark.parametrize("tenant", [5, b"acme", "x" * 257, "a\x00b", "a\r\nb", "\x01", "tab\there", "\x7f"])
def test_a_bad_tenant_is_an_invalid_request(tenant: Any) -> None:
    r = Router(offline("a"))
    with pytest.raises(InvalidRequest, match="tenant") as info:
        r.route(REQUEST, tenant=tenant)
    assert info.value.attempts == []
    with pytest.raises(InvalidRequest, match="tenant"):
        r.chat_completions({**REQUEST, "stream": True}, tenant=tenant)
    if isinstance(tenant, str):
        with pytest.raises(InvalidRequest, match="tenant"):
            r.record_quality("a", True, model="gpt-4o", tenant=tenant)
    assert r.stats()["providers"]["a"]["quality"] == []


def test_a_model_over_256_bytes_is_an_invalid_request_nothing_sent_or_kept() -> None:
    with MockProviders({"mocks": {"a": {"responses": [answer(VALID)]}}}, loop=True) as m:
        r = Router([provider(m, "a")])
        model = "m" * 257
        for call in (r.route, r.chat_completions):
            with pytest.raises(InvalidRequest, match="model is 257 bytes; at most 256") as info:
                call({**REQUEST, "model": model})
            assert info.value.attempts == [] and model not in str(info.value)
        with pytest.raises(InvalidRequest, match="model is 257 bytes"):
            r.record_quality("a", True, model=model)
        with pytest.raises(InvalidRequest, match="control character"):
            r.record_quality("a", True, model="gpt\n4o")
        assert r.route({**REQUEST, "model": "m" * 256}).schema_valid is True
        assert m.log()["a"] and len(m.log()["a"]) == 1
    assert [k["model"] for k in r.stats()["providers"]["a"]["quality"]] == ["m" * 256]


@pytest.mark.parametrize("quality", [True, False])
def test_an_unknown_response_format_type_is_an_invalid_request(quality: bool) -> None:
    with MockProviders({"mocks": {"a": {"responses": [answer(VALID)]}}}, loop=True) as m:
        r = Router([provider(m, "a")], quality=quality)
        for fmt in ({"type": "xml"}, {"type": "JSON"}, {}, {"type": None}):
            for call in (r.route, r.chat_completions):
                with pytest.raises(InvalidRequest, match="response_format.type") as info:
                    call({**REQUEST, "response_format": fmt})
                assert info.value.attempts == []
            with pytest.raises(InvalidRequest, match="response_format.type"):
                r.chat_completions({**REQUEST, "response_format": fmt, "stream": True})
        assert m.log()["a"] == []
        for fmt in ({"type": "text"}, {"type": "json_object"}):
            assert r.route({**REQUEST, "response_format": fmt}).provider == "a"


DEEP = "[" * 10_000 + "]" * 10_000


@pytest.mark.parametrize("content", [DEEP, "1e100000", '{"n": -1e99999}'], ids=["deep", "huge", "negative-huge"])
def test_an_answer_the_validator_cannot_judge_is_not_counted(content: str) -> None:
    number = {**REQUEST, "response_format": {"type": "json_schema", "json_schema": {
        "name": "n", "schema": {"type": ["array", "number", "object"]}}}}
    with MockProviders({"mocks": {"a": {"responses": [answer(content)]}}}, loop=True) as m:
        r = Router([provider(m, "a")], quality={"min_samples": 1, "on_failure": "failover"})
        for body in (number, {**REQUEST, "response_format": {"type": "json_object"}}):
            res = r.route(body, tenant="acme")
            assert (res.provider, res.schema_valid) == ("a", None)
            assert res.response["choices"][0]["message"]["content"] == content
        assert r.stats()["providers"]["a"]["quality"] == []


def test_an_unjudged_streamed_answer_is_not_counted_either() -> None:
    events = {"events": [
        {"data": {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}},
        *[{"data": {"choices": [{"index": 0, "delta": {"content": DEEP[i:i + 5000]}}]}}
          for i in range(0, len(DEEP), 5000)],
        {"data": {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}},
        {"data": "[DONE]"},
    ]}
    with MockProviders({"mocks": {"a": {"responses": [events]}}}) as m:
        r = Router([provider(m, "a")], quality={"min_samples": 1})
        body = {**REQUEST, "response_format": {"type": "json_object"}, "stream": True}
        with r.chat_completions(body, tenant="acme") as stream:
            text = "".join(c["choices"][0]["delta"].get("content") or "" for c in stream if c["choices"])
        assert text == DEEP
        assert r.stats()["providers"]["a"]["quality"] == []


def test_a_bad_schema_is_an_invalid_request_before_any_send() -> None:
    r = Router(offline("a"))
    body = copy.deepcopy(REQUEST)
    body["response_format"]["json_schema"]["schema"] = {"type": "nope"}
    with pytest.raises(InvalidRequest, match="not a valid JSON Schema") as info:
        r.route(body)
    assert info.value.attempts == []
    body["response_format"] = "json"
    with pytest.raises(InvalidRequest, match="response_format"):
        r.chat_completions(body)


def test_a_million_tenants_stay_within_the_key_bound() -> None:
    r = Router(offline("a"), quality={"max_keys": 10_000})

    def rss_kib() -> int:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))

    for i in range(100_000):
        r.record_quality("a", i % 2 == 0, model="gpt-4o", tenant=f"tenant-{i}")
    warm = rss_kib()
    for i in range(100_000, 1_000_000):
        r.record_quality("a", i % 2 == 0, model="gpt-4o", tenant=f"tenant-{i}")
    grown = rss_kib() - warm
    # 900,000 more tenants than the bound: the table stays at 10,000 keys
    # (a few MiB), so RSS stays put (allowing for the allocator's slack).
    assert grown < 8 * 1024, f"RSS grew {grown} KiB over 900,000 more tenants"
    keys = r.stats()["providers"]["a"]["quality"]
    assert len(keys) <= 20
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss > 0


@pytest.mark.parametrize(("quality", "field"), [
    ("on", "quality"),
    ({"window": 0}, "quality.window"),
    ({"window": 10, "min_samples": 11}, "quality.min_samples"),
    ({"min_pass_rate": 0}, "quality.min_pass_rate"),
    ({"min_pass_rate": 1.5}, "quality.min_pass_rate"),
    ({"min_pass_rate": "high"}, "quality.min_pass_rate"),
    ({"probe_after_s": 0}, "quality.probe_after_s"),
    ({"probe_after_s": 1.5}, "quality.probe_after_s"),
    ({"on_failure": "retry"}, "quality.on_failure"),
    ({"max_keys": 0}, "quality.max_keys"),
    ({"max_keys": -1}, "quality.max_keys"),
    ({"max_bytes": 1000}, "quality.max_bytes"),
    ({"max_bytes": 1 << 40}, "quality.max_bytes"),
    ({"windows": 5}, "quality.#1"),  # an unknown key: named by position
])
def test_bad_quality_settings_are_config_errors(quality: Any, field: str) -> None:
    with pytest.raises(ConfigError) as info:
        Router(offline("a"), quality=quality)
    assert info.value.field == field


def test_a_stream_is_checked_whole_at_its_end_and_recorded() -> None:
    def events(pieces: list[str]) -> dict[str, Any]:
        return {"events": [
            {"data": {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}},
            *[{"data": {"choices": [{"index": 0, "delta": {"content": p}}]}} for p in pieces],
            {"data": {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}},
            {"data": "[DONE]"},
        ]}
    # The valid answer arrives in pieces that are not JSON on their own.
    mocks = {"a": {"responses": [events(['{"name": "Ada", ', '"age": 36}']),
                                 events(['{"name": ', '"Ada"}'])]}}
    with MockProviders({"mocks": mocks}) as m:
        r = Router([provider(m, "a")], quality={"min_samples": 1, "min_pass_rate": 0.5})
        for _ in range(2):
            with r.chat_completions({**REQUEST, "stream": True}, tenant="acme") as stream:
                text = "".join(c["choices"][0]["delta"].get("content") or "" for c in stream if c["choices"])
            assert text.startswith('{"name": ')
        (key,) = r.stats()["providers"]["a"]["quality"]
    # One pass, then one failure: 0.5 is not under 0.5, so still ok.
    assert (key["tenant"], key["samples"], key["pass_rate"], key["state"]) == ("acme", 2, 0.5, "ok")


# ---------------------------------------------------------------- memory, from a subprocess's peak RSS


def peak_rss_growth_mib(body: str) -> float:
    """Run ``body`` (with ``r``, ``InvalidRequest``, ``RouterError`` and
    ``offline``), after a warm-up; the growth of the process's peak RSS
    (VmHWM) over its RSS before ``body``, in MiB."""
    script = textwrap.dedent("""
        import sys
        from f3dx_router import InvalidRequest, Router, RouterError
        def offline(*names):
            return [{"name": n, "kind": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key": "k",
                     "timeout_ms": 1000} for n in names]
        def status(field):
            with open("/proc/self/status") as f:
                return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))
        BODY
        print(before, status("VmHWM"))
    """).replace("BODY", textwrap.dedent(body).strip())
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    before, peak = (int(v) for v in done.stdout.split())
    return (peak - before) / 1024


def test_a_thousand_long_model_names_are_refused_in_bounded_memory() -> None:
    # 1,000 distinct 1 MB models (before the bound: 2.9 GB held).
    grown = peak_rss_growth_mib("""
        r = Router(offline("a"))
        request = {"messages": [{"role": "user", "content": "hi"}], "response_format": {"type": "json_object"}}
        refused = 0
        before = status("VmRSS")
        for i in range(1000):
            model = f"{i:04d}" + "m" * (1 << 20)
            for call in (lambda: r.record_quality("a", False, model=model, tenant="t"),
                         lambda: r.route({**request, "model": model}, tenant="t")):
                try:
                    call()
                except InvalidRequest:
                    refused += 1
        assert refused == 2000, refused
        assert r.stats()["providers"]["a"]["quality"] == []
    """)
    assert grown < 100, f"peak RSS grew {grown:.0f} MiB"


def test_the_quality_table_is_bounded_by_its_bytes() -> None:
    # 200,000 keys of long tenants and models, max_keys far above them: only
    # max_bytes (1 MiB) bounds the table (unbounded: about 400 MiB).
    grown = peak_rss_growth_mib("""
        r = Router(offline("a"), quality={"max_keys": 10_000_000, "max_bytes": 1 << 20})
        before = status("VmRSS")
        model = "m" * 256
        for i in range(200_000):
            r.record_quality("a", True, model=model, tenant=f"{i:08d}" + "t" * 240)
    """)
    assert grown < 64, f"peak RSS grew {grown:.0f} MiB"


def test_big_distinct_schemas_stay_within_the_cache_bytes() -> None:
    # 200 distinct schemas of 210 KB (16,000-value enums), each compiled to
    # about 3.4 MB (before the bound: all 200 kept, over 1 GB).
    grown = peak_rss_growth_mib("""
        r = Router(offline("a"))
        before = status("VmRSS")
        for i in range(200):
            schema = {"enum": [f"{i}-v{v:05d}" for v in range(16_000)]}
            body = {"model": "m", "messages": [{"role": "user", "content": "hi"}],
                    "response_format": {"type": "json_schema", "json_schema": {"name": "e", "schema": schema}}}
            try:
                r.route(body)
            except RouterError as e:
                assert "invalid request" not in str(e), e
    """)
    assert grown < 200, f"peak RSS grew {grown:.0f} MiB"
