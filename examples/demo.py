"""Live failover and hedging through local mock providers. No API keys.

    bash scripts/demo.sh          # builds what it needs, then runs this

Starts mock providers on 127.0.0.1 (tests/mock_provider.py): one answers
429 with Retry-After, one 503, one slow, one fast, one speaks Anthropic's
Messages API, three weighted 5:1:1, one that degrades until it is ejected,
one that breaks one tenant's JSON, two stream. Then routes calls through each policy, and one streamed call
that fails over before its commit point, and prints what happened and what
the router's stats() say of the degraded provider.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from f3dx_router import HardFailure, Router  # noqa: E402
from mock_provider import MockProviders  # noqa: E402


def openai_reply(text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-demo", "object": "chat.completion", "created": 0, "model": "demo",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
    }


PERSON = '{"name": "Ada Lovelace", "born": 1815}'
BROKEN_PERSON = '{"name": "Ada Lovelace", "born": '  # cut short: not JSON
PERSON_REQUEST = {
    "model": "gpt-4o", "messages": [{"role": "user", "content": "Who wrote the first program?"}],
    "response_format": {"type": "json_schema", "json_schema": {"name": "person", "schema": {
        "type": "object", "properties": {"name": {"type": "string"}, "born": {"type": "integer"}},
        "required": ["name", "born"], "additionalProperties": False}}},
}


def openai_reply_content(content: str) -> dict[str, Any]:
    return {"delay_ms": 5, "json": openai_reply(content)}


ANTHROPIC_REPLY = {
    "id": "msg_demo", "type": "message", "role": "assistant", "model": "claude-demo",
    "content": [{"type": "text", "text": "hello from claude"}],
    "stop_reason": "end_turn", "usage": {"input_tokens": 5, "output_tokens": 3},
}


def error(message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "demo_error"}}


MOCKS = {
    "openai": {"responses": [{"status": 429, "headers": {"retry-after": "1"}, "json": error("rate limited")}]},
    "azure": {"responses": [{"status": 503, "json": error("overloaded")}]},
    "claude": {"responses": [{"delay_ms": 40, "json": ANTHROPIC_REPLY}]},
    "slow": {"responses": [{"delay_ms": 400, "json": openai_reply("hello from slow")}]},
    "fast": {"responses": [{"delay_ms": 25, "json": openai_reply("hello from fast")}]},
    # Usually quick, sometimes very slow: the tail that delayed hedging cuts.
    "tail": {"responses": [{"delay_ms": d, "json": openai_reply("hello from tail")} for d in (15, 15, 500, 15, 500)]},
    "badkey": {"responses": [{"status": 401, "json": error("Incorrect API key provided")}]},
    # Weighted 5:1:1: quick providers, so only the order of first picks shows.
    **{name: {"responses": [{"delay_ms": 5, "json": openai_reply(f"hello from {name}")}]}
       for name in ("big", "small1", "small2")},
    # Structured output for two tenants, calls alternating acme, globex:
    # "jsonish" breaks acme's JSON every time (globex's stays valid), "strict"
    # is always valid. After 5 broken answers acme's calls move to strict.
    "jsonish": {"responses": [openai_reply_content(BROKEN_PERSON), openai_reply_content(PERSON)] * 5
                + [openai_reply_content(PERSON)] * 3},
    "strict": {"responses": [openai_reply_content(PERSON)]},
    # Answers twice, then degrades: 503 from then on, until it is ejected.
    "flaky": {"responses": [{"delay_ms": 5, "json": openai_reply("hello from flaky")}] * 2
              + [{"status": 503, "json": error("overloaded")}] * 8},
    # Streams: one that answers 200 and then an error event before any text
    # (failed over before the commit point), one that streams a reply.
    "overloaded": {"responses": [{"events": [
        {"data": {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}},
        {"data": {"error": {"message": "Overloaded", "type": "overloaded_error"}}},
    ]}]},
    "streamer": {"responses": [{"events": [
        {"data": {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}},
        *[{"delay_ms": 15, "data": {"choices": [{"index": 0, "delta": {"content": word}}]}}
          for word in ("hello ", "from ", "a ", "stream")],
        {"data": {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}},
        {"data": "[DONE]"},
    ]}]},
}

REQUEST = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Say hello."}]}


def attempts_text(attempts: list[Any]) -> str:
    parts = []
    for a in attempts:
        what = {"success": "ok", "cancelled": "cancelled"}.get(a.outcome) or str(a.fault or a.status)
        parts.append(f"{a.provider}:{what}@{a.started_ms:.0f}ms")
    return " > ".join(parts)


def main() -> int:
    rows: list[tuple[str, str, str, str, str]] = []

    def run(label: str, router: Router, calls: int, pause_before: dict[int, float] | None = None) -> None:
        for i in range(calls):
            if pause_before and i in pause_before:
                time.sleep(pause_before[i])  # let a Retry-After cooldown expire
            start = time.perf_counter()
            try:
                res = router.route(REQUEST)
                winner, attempts = res.provider, attempts_text(res.attempts)
            except HardFailure as e:
                winner, attempts = f"HardFailure {e.status}", attempts_text(e.attempts)
            ms = (time.perf_counter() - start) * 1000
            rows.append((label, str(i + 1), winner, attempts, f"{ms:.0f}"))

    with MockProviders({"mocks": MOCKS}, loop=True) as m:
        def p(name: str, kind: str = "openai") -> dict[str, Any]:
            return {"name": name, "kind": kind, "base_url": m.base_url(name), "api_key": f"demo-key-{name}",
                    "model": "claude-sonnet-4-5" if kind == "anthropic" else None}

        failover = Router([p("openai"), p("azure"), p("claude", "anthropic")])
        # Call 2 skips openai (cooling down after its Retry-After: 1); call 3
        # comes after the cooldown and tries it again.
        run("sequential", failover, 3, pause_before={2: 1.1})
        run("hedged k=2", Router([p("slow"), p("fast")], policy="hedged", hedge_k=2), 2)
        run("hedged k=2 delay=60ms", Router([p("tail"), p("fast")], policy="hedged", hedge_k=2, hedge_delay_ms=60), 5)
        run("sequential (hard 401)", Router([p("badkey"), p("fast")]), 1)
        # Smooth weighted round-robin: first picks big big small1 big small2 big big.
        run("weighted 5:1:1", Router([{**p("big"), "weight": 5}, {**p("small1"), "weight": 1},
                                      {**p("small2"), "weight": 1}], policy="weighted"), 7)
        # flaky degrades after two answers; after 5 soft failures in a row
        # health tracking ejects it (30 s) and calls go straight to fast.
        degrading = Router([p("flaky"), p("fast")])
        run("sequential (degrades)", degrading, 8)
        flaky = degrading.stats()["providers"]["flaky"]
        # Quality-aware routing: jsonish breaks acme's JSON; after 5 broken
        # answers (min_samples) acme is routed to strict, globex keeps jsonish.
        quality = Router([p("jsonish"), p("strict")], quality={"min_samples": 5})
        for i in range(14):
            tenant = ("acme", "globex")[i % 2]
            res = quality.route(PERSON_REQUEST, tenant=tenant)
            rows.append((f"quality ({tenant})", str(i + 1), res.provider,
                         attempts_text(res.attempts) + f"  schema_valid={res.schema_valid}",
                         f"{res.latency_ms:.0f}"))
        jsonish_keys = quality.stats()["providers"]["jsonish"]["quality"]
        # A streamed call: the first provider's 200 + error event comes
        # before any text, so it fails over; the caller reads only streamer's.
        start = time.perf_counter()
        with Router([p("overloaded"), p("streamer")]).chat_completions({**REQUEST, "stream": True}) as stream:
            first_chunk_ms = (time.perf_counter() - start) * 1000
            text = "".join(c["choices"][0]["delta"].get("content") or "" for c in stream if c["choices"])
        rows.append(("sequential (stream)", "1", stream.provider, attempts_text(stream.attempts),
                     f"{(time.perf_counter() - start) * 1000:.0f}"))
        log = m.log()

    headers = ("policy", "call", "winner", "attempts (provider:result@start)", "ms")
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(5)]
    line = "  ".join("{:<%d}" % w for w in widths)
    print(line.format(*headers))
    print(line.format(*("-" * w for w in widths)))
    for r in rows:
        print(line.format(*r))
    sent = {name: len(records) for name, records in log.items()}
    print(f"\nrequests each mock received: {sent}")
    print("fast never saw the request that got a 401 from badkey: a hard failure is not replayed.")
    until = flaky["until_s"]
    print(f"flaky in router.stats(): state={flaky['state']!r} for {until:.0f} s more, "
          f"{flaky['soft_failures']} soft failures and {flaky['successes']} successes in the window "
          f"(error rate {flaky['error_rate']:.2f}), ejections={flaky['ejections']}: calls skip it until then, "
          "then one probe tests it (half-open).")
    for k in jsonish_keys:
        print(f"jsonish for tenant {k['tenant']!r}, model {k['model']!r} in router.stats(): state={k['state']!r}, "
              f"pass rate {k['pass_rate']:.2f} over {k['samples']} answers")
    print(f"streamed: {text!r} from {stream.provider}, committed after {first_chunk_ms:.0f} ms; "
          "overloaded's 200 + error event came before any text, so it failed over unseen.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
