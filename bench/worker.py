#!/usr/bin/env python3
"""One contender in its own process, driven by run.py over a pipe (lib.Worker).

    python worker.py NAME OK_URL FAIL_URL

One JSON command per line on stdin, one JSON answer per line on the original
stdout (the contender's own prints go to stderr, so LiteLLM's chatter cannot
corrupt the protocol). ``op`` names a method ``op_<op>`` below: ``setup``,
``latency``, ``throughput``, ``rss`` (contenders.py), ``tail`` (f3dx_router
over the heavy-tailed mock), ``degrade`` (degrade.py), ``stream_setup`` and
``stream`` (streaming.py; OK_URL and FAIL_URL are then the no-delay and the
delayed upstream), ``async_setup`` and ``async_pass`` (asyncbench.py),
``quit``. Every loop is bounded in count and in time.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
import urllib.request
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import asyncbench  # noqa: E402
import contenders  # noqa: E402
import lib  # noqa: E402
import streaming  # noqa: E402


class Worker:
    def __init__(self, name: str, ok_url: str, fail_url: str) -> None:
        self.name = name
        self.ok_url, self.fail_url = ok_url, fail_url
        self.c: Any = None
        self.aio: asyncbench.AsyncSide | None = None

    def _setup(self, build: Any, check: Any) -> dict[str, Any]:
        rss0, t0 = lib.status_mib(), time.perf_counter()
        self.c = build(self.ok_url, self.fail_url)
        t1 = time.perf_counter()
        check()
        return {"setup_s": t1 - t0, "first_call_s": time.perf_counter() - t1,
                "rss_before_mib": rss0, "rss_after_setup_mib": lib.status_mib()}

    def op_setup(self, cmd: dict[str, Any]) -> dict[str, Any]:
        factory = contenders.FACTORIES.get(self.name) or asyncbench.SYNC_FACTORIES[self.name]
        return self._setup(factory, lambda: contenders.check_response(self.name, self.c.call()))

    def op_latency(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """One checked call, W untimed ones, then up to N timed (at most S seconds)."""
        fn = self.c.call if cmd.get("variant", "call") == "call" else self.c.failover
        contenders.check_response(self.name, fn())
        warmup = int(cmd.get("warmup", 0))
        for _ in range(warmup):
            fn()
        r = lib.timed(fn, int(cmd["n"]), float(cmd.get("max_s", 120)))
        return {**r, "calls": r["n"] + 1 + warmup}

    def op_throughput(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """T threads sharing the contender call in a loop for S seconds: calls/s."""
        return lib.thread_pass(lambda: self.c.call, int(cmd["threads"]), float(cmd["seconds"]))

    def op_rss(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """N calls (or S seconds), then the peak RSS of the process."""
        n, before, t0 = int(cmd["n"]), lib.status_mib(), time.perf_counter()
        deadline, done = t0 + float(cmd.get("max_s", 60)), 0
        for done in range(1, n + 1):
            self.c.call()
            if (done & 255) == 0 and time.perf_counter() > deadline:
                break
        return {"calls": done, "seconds": time.perf_counter() - t0,
                "rss_before_mib": before, "peak_rss_mib": lib.status_mib()}

    def op_stream_setup(self, cmd: dict[str, Any]) -> dict[str, Any]:
        def check() -> None:
            for variant in cmd.get("variants", streaming.VARIANTS):
                streaming.check(self.name, self.c.stream(variant)[1], int(cmd["chunks"]))
        return self._setup(streaming.FACTORIES[self.name], check)

    def op_stream(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """One checked stream, W untimed, up to N timed, each read to its end:
        the time to the first chunk with text and to the end."""
        variant = cmd["variant"]
        streaming.check(self.name, self.c.stream(variant)[1], int(cmd["chunks"]))
        warmup = int(cmd.get("warmup", 0))
        for _ in range(warmup):
            self.c.stream(variant)
        r = lib.timed(lambda: self.c.stream(variant), int(cmd["n"]),
                      float(cmd.get("max_s", 120)), first=lambda r, _t1: r[0])
        return {**r, "calls": r["n"] + 1 + warmup}

    def op_tail(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """A Router over the heavy-tailed mock: per-call times, the upstream
        requests the mock counted, the hedge counters of ``stats()``."""
        from f3dx_router import Router

        kw: dict[str, Any] = {"policy": cmd["policy"]}
        if cmd["policy"] == "hedged":
            kw["hedge_k"] = int(cmd.get("hedge_k", 2))
            delay = cmd.get("delay_ms", 0)
            kw["hedge_delay_ms"] = delay if delay == "auto" else int(delay)
        r = Router([lib.provider(f"p{i}", u) for i, u in enumerate(cmd["urls"])], **kw)

        def count() -> int:
            with urllib.request.urlopen(cmd["stats_url"], timeout=5) as resp:
                return int(json.load(resp)["requests"])

        for _ in range(int(cmd.get("warmup", 0))):
            r.chat_completions(lib.BODY)
        stats_warm, c0 = router_stats(r), count()
        winners: dict[str, int] = {}

        def call() -> None:
            res = r.route(lib.BODY)
            winners[res.provider] = winners.get(res.provider, 0) + 1

        out = lib.timed(call, int(cmd["n"]), float(cmd.get("max_s", 120)))
        time.sleep(0.05)  # a cancelled leg's request has surely arrived by now
        return {**out, "upstream_requests": count() - c0, "winners": winners, "config": kw,
                "stats_after_warmup": stats_warm, "stats_end": router_stats(r)}

    def op_async_setup(self, cmd: dict[str, Any]) -> dict[str, Any]:
        self.aio = asyncbench.AsyncSide(self.name, self.ok_url)
        return self.aio.setup()

    def op_async_pass(self, cmd: dict[str, Any]) -> dict[str, Any]:
        assert self.aio is not None, "async_setup first"
        return self.aio.run(cmd)

    def op_degrade(self, cmd: dict[str, Any]) -> dict[str, Any]:
        import degrade

        return degrade.scenario(cmd)


def router_stats(r: Any) -> dict[str, Any]:
    """The hedge counters and each provider's latency percentiles (the p90 is
    what "auto" waits)."""
    st = r.stats()
    return {"hedges": dict(st["hedges"]),
            "latency_ms": {n: dict(p["latency_ms"]) for n, p in st["providers"].items()}}


def main() -> None:
    name, ok_url, fail_url = sys.argv[1:4]
    # The protocol gets the real stdout; everything printed goes to stderr.
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    w = Worker(name, ok_url, fail_url)
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["op"] == "quit":
            break
        try:
            out = {**getattr(w, "op_" + cmd["op"])(cmd), "ok": True}
        except BaseException as e:  # noqa: BLE001
            out = {"ok": False, "error": f"{type(e).__name__}: {e}",
                   "traceback": traceback.format_exc(limit=6)}
        proto.write(json.dumps(out) + "\n")
    if w.c is not None and hasattr(w.c, "close"):
        try:
            w.c.close()
        except Exception:  # noqa: BLE001
            pass
    proto.flush()
    os._exit(0)  # don't wait on runtimes' threads at shutdown


if __name__ == "__main__":
    main()
