#!/usr/bin/env python3
"""One contender in its own process, driven by run.py over a pipe.

    python worker.py NAME OK_URL FAIL_URL

Reads one JSON command per line on stdin and answers one JSON line on the
original stdout (the contender's own prints are sent to stderr, so LiteLLM's
chatter cannot corrupt the protocol). Commands:

* ``{"op": "setup"}``: import and build the contender.
* ``{"op": "latency", "variant": "call"|"failover", "warmup": W, "n": N,
  "max_s": S}``: W untimed calls, then up to N timed sequential calls (at
  most S seconds); answers the per-call times in microseconds and the
  process CPU time per call (all threads: a runtime's helper threads count).
* ``{"op": "throughput", "threads": T, "seconds": S}``: T threads share the
  contender, each makes one untimed call, then all call in a loop for S
  seconds; answers calls/s.
* ``{"op": "rss", "n": N, "max_s": S}``: N calls (or S seconds), then the
  peak RSS of the process (``getrusage().ru_maxrss``).
* ``{"op": "tail", "urls": [...], "stats_url": U, "policy": ..., "hedge_k":
  K, "delay_ms": D, "warmup": W, "n": N, "max_s": S}``: f3dx_router only;
  a Router over the heavy-tailed mock; answers the per-call times and the
  upstream requests the mock counted during the timed calls.
  ``D`` may be ``"auto"`` (with optional ``hedge_delay_fallback_ms`` and
  ``hedge_budget``); the answer has the router's ``stats()`` hedge counters
  and latency percentiles after the warm-up and at the end.
* ``{"op": "degrade", ...}``: f3dx_router only; the degradation scenario's
  call loop (degrade.py ``scenario()``), against the flaky mock.
* ``{"op": "stream_setup", "chunks": C}`` (streaming, issue 10; OK_URL and
  FAIL_URL are then the no-delay and the delayed upstream): build the
  streaming contender (streaming.py) and check one stream of each variant
  (or of those in ``"variants"``).
* ``{"op": "stream", "variant": "fast"|"slow", "chunks": C, "warmup": W,
  "n": N, "max_s": S}``: one checked stream, W untimed ones, then up to N
  timed sequential streams (at most S seconds), each read to its end;
  answers per stream the time to the first chunk with text and the time to
  the end, in microseconds, and the CPU time per stream.
* ``{"op": "async_setup"}`` (the async measure: asyncbench.py): build the
  async contender NAME in this process's event loop (one for the life of
  the process) and check one call; the sync pair's contenders
  (``openai.sync`` ...) use ``setup`` and ``latency``.
* ``{"op": "async_pass", "concurrency": C, "warmup_s": W, "seconds": S}``:
  C coroutines call back to back; answers calls/s and CPU per call over the
  S seconds after the W of warm-up.
* ``{"op": "quit"}``.

Every loop is bounded in count and in time.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import threading
import time
import traceback
import urllib.request
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import asyncbench  # noqa: E402
import contenders  # noqa: E402
import streaming  # noqa: E402


def cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


class Worker:
    def __init__(self, name: str, ok_url: str, fail_url: str) -> None:
        self.name = name
        self.ok_url, self.fail_url = ok_url, fail_url
        self.c: Any = None
        self.aio: asyncbench.AsyncSide | None = None

    def cpu(self) -> float:
        return cpu_seconds()

    def op_setup(self, cmd: dict[str, Any]) -> dict[str, Any]:
        rss0 = maxrss_mib()
        t0 = time.perf_counter()
        factory = contenders.FACTORIES.get(self.name) or asyncbench.SYNC_FACTORIES[self.name]
        self.c = factory(self.ok_url, self.fail_url)
        t1 = time.perf_counter()
        contenders.check_response(self.name, self.c.call())
        t2 = time.perf_counter()
        return {"setup_s": t1 - t0, "first_call_s": t2 - t1, "rss_before_mib": rss0,
                "rss_after_setup_mib": maxrss_mib()}

    def op_latency(self, cmd: dict[str, Any]) -> dict[str, Any]:
        fn = self.c.call if cmd.get("variant", "call") == "call" else self.c.failover
        contenders.check_response(self.name, fn())
        warmup = int(cmd.get("warmup", 0))
        for _ in range(warmup):
            fn()
        n, max_s = int(cmd["n"]), float(cmd.get("max_s", 120))
        samples: list[float] = []
        pc = time.perf_counter_ns
        cpu0, t_start = self.cpu(), time.perf_counter()
        deadline = t_start + max_s
        for _ in range(n):
            t0 = pc()
            fn()
            samples.append((pc() - t0) / 1000.0)
            if t0 / 1e9 > deadline and len(samples) >= 10:
                break
        wall = time.perf_counter() - t_start
        cpu = self.cpu() - cpu0
        return {"samples_us": samples, "wall_s": wall, "untimed": 1 + warmup,
                "cpu_us_per_call": cpu / len(samples) * 1e6, "n": len(samples)}

    def op_throughput(self, cmd: dict[str, Any]) -> dict[str, Any]:
        threads, seconds = int(cmd["threads"]), float(cmd["seconds"])
        fn = self.c.call
        counts = [0] * threads
        errors: list[str] = []
        box: dict[str, float] = {}

        def start_clock() -> None:  # run by one thread as the barrier opens
            box["t0"] = time.perf_counter()
            box["deadline"] = box["t0"] + seconds
            box["cpu0"] = self.cpu()

        ready = threading.Barrier(threads + 1, action=start_clock)

        def run(i: int) -> None:
            try:
                fn()  # one untimed call: the thread's connection, the pool warm
            except Exception as e:  # noqa: BLE001
                errors.append(repr(e))
            ready.wait()
            deadline = box["deadline"]
            n = 0
            try:
                while time.perf_counter() < deadline:
                    fn()
                    n += 1
            except Exception as e:  # noqa: BLE001
                errors.append(repr(e))
            counts[i] = n

        ts = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(threads)]
        for t in ts:
            t.start()
        # Once every thread made its warm-up call, the barrier starts the clock.
        ready.wait(timeout=120)
        t0, cpu0 = box["t0"], box["cpu0"]
        for t in ts:
            t.join(timeout=seconds + 60)
        wall = time.perf_counter() - t0
        cpu = self.cpu() - cpu0
        total = sum(counts)
        return {"calls": total, "wall_s": wall, "rps": total / wall if wall else 0.0,
                "cpu_us_per_call": cpu / total * 1e6 if total else None,
                "errors": errors[:3], "error_count": len(errors),
                "stuck_threads": sum(t.is_alive() for t in ts)}

    def op_rss(self, cmd: dict[str, Any]) -> dict[str, Any]:
        n, max_s = int(cmd["n"]), float(cmd.get("max_s", 60))
        fn = self.c.call
        before = maxrss_mib()
        t0 = time.perf_counter()
        deadline = t0 + max_s
        done = 0
        for done in range(1, n + 1):
            fn()
            if (done & 255) == 0 and time.perf_counter() > deadline:
                break
        return {"calls": done, "seconds": time.perf_counter() - t0,
                "rss_before_mib": before, "peak_rss_mib": maxrss_mib()}

    def op_stream_setup(self, cmd: dict[str, Any]) -> dict[str, Any]:
        rss0 = maxrss_mib()
        t0 = time.perf_counter()
        self.c = streaming.FACTORIES[self.name](self.ok_url, self.fail_url)
        t1 = time.perf_counter()
        for variant in cmd.get("variants", streaming.VARIANTS):
            streaming.check(self.name, self.c.stream(variant)[1], int(cmd["chunks"]))
        return {"setup_s": t1 - t0, "check_s": time.perf_counter() - t1,
                "rss_before_mib": rss0, "rss_after_setup_mib": maxrss_mib()}

    def op_stream(self, cmd: dict[str, Any]) -> dict[str, Any]:
        variant = cmd["variant"]
        fn = self.c.stream
        streaming.check(self.name, fn(variant)[1], int(cmd["chunks"]))
        warmup = int(cmd.get("warmup", 0))
        for _ in range(warmup):
            fn(variant)
        n, max_s = int(cmd["n"]), float(cmd.get("max_s", 120))
        ttfc: list[float] = []
        total: list[float] = []
        pc = time.perf_counter_ns
        cpu0, t_start = self.cpu(), time.perf_counter()
        deadline = t_start + max_s
        for _ in range(n):
            t0 = pc()
            first, _ = fn(variant)
            t1 = pc()
            ttfc.append((first - t0) / 1000.0)
            total.append((t1 - t0) / 1000.0)
            if t0 / 1e9 > deadline and len(total) >= 3:
                break
        wall = time.perf_counter() - t_start
        cpu = self.cpu() - cpu0
        return {"ttfc_us": ttfc, "total_us": total, "wall_s": wall, "untimed": 1 + warmup,
                "cpu_us_per_call": cpu / len(total) * 1e6, "n": len(total)}

    def op_tail(self, cmd: dict[str, Any]) -> dict[str, Any]:
        from f3dx_router import Router

        provs = [{"name": f"p{i}", "kind": "openai", "base_url": u, "api_key": contenders.API_KEY,
                  "timeout_ms": 10000} for i, u in enumerate(cmd["urls"])]
        policy = cmd["policy"]
        kw: dict[str, Any] = {"policy": policy}
        if policy == "hedged":
            kw["hedge_k"] = int(cmd.get("hedge_k", 2))
            delay = cmd.get("delay_ms", 0)
            # "auto": the router picks the delay (the p90 of recent successes).
            kw["hedge_delay_ms"] = delay if delay == "auto" else int(delay)
            for key in ("hedge_delay_fallback_ms", "hedge_budget"):
                if key in cmd:
                    kw[key] = cmd[key]
        r = Router(provs, **kw)

        def count() -> int:
            with urllib.request.urlopen(cmd["stats_url"], timeout=5) as resp:
                return int(json.load(resp)["requests"])

        for _ in range(int(cmd.get("warmup", 0))):
            r.chat_completions(contenders.BODY)
        stats_warm = self.router_stats(r)
        n, max_s = int(cmd["n"]), float(cmd.get("max_s", 120))
        c0 = count()
        samples: list[float] = []
        winners: dict[str, int] = {}
        legs: list[list[float]] = []  # per hedged call: [started_ms, took_ms, won]
        p90_trace: list[float | None] = []  # auto: p0's p90 every 100 timed calls
        deadline = time.perf_counter() + max_s
        pc = time.perf_counter_ns
        for _ in range(n):
            t0 = pc()
            res = r.route(contenders.BODY)
            samples.append((pc() - t0) / 1000.0)
            winners[res.provider] = winners.get(res.provider, 0) + 1
            if len(res.attempts) > 1:
                # When the hedge leg really started (the delay as the timer
                # kept it) and how long it took: a hedged call's time is
                # their sum when the leg wins.
                leg = res.attempts[1]
                legs.append([leg.started_ms, (leg.ended_ms or leg.started_ms) - leg.started_ms,
                             1 if res.provider == leg.provider else 0])
            if len(samples) % 100 == 0 and kw.get("hedge_delay_ms") == "auto":
                # What "auto" waits, as it moves (between timed calls).
                st = r.stats()
                p90_trace.append(st["providers"]["p0"]["latency_ms"]["p90"])
            if time.perf_counter() > deadline:
                break
        time.sleep(0.05)  # a cancelled leg's request has surely arrived by now
        upstream = count() - c0
        return {"samples_us": samples, "n": len(samples), "upstream_requests": upstream,
                "winners": winners, "config": kw, "stats_after_warmup": stats_warm,
                "stats_end": self.router_stats(r), "hedge_legs": legs,
                "p90_every_100": p90_trace}

    @staticmethod
    def router_stats(r: Any) -> dict[str, Any]:
        """What the tail report reads of ``stats()``: the hedge counters and
        each provider's latency percentiles (the p90 is what "auto" waits)."""
        st = r.stats()
        return {"hedges": dict(st["hedges"]),
                "latency_ms": {n: dict(p["latency_ms"]) for n, p in st["providers"].items()},
                "successes": {n: p["successes"] for n, p in st["providers"].items()}}

    def op_async_setup(self, cmd: dict[str, Any]) -> dict[str, Any]:
        self.aio = asyncbench.AsyncSide(self.name, self.ok_url)
        return self.aio.setup()

    def op_async_pass(self, cmd: dict[str, Any]) -> dict[str, Any]:
        assert self.aio is not None, "async_setup first"
        return self.aio.run(cmd)

    def op_degrade(self, cmd: dict[str, Any]) -> dict[str, Any]:
        import degrade

        return degrade.scenario(cmd)


def main() -> None:
    name, ok_url, fail_url = sys.argv[1:4]
    # The protocol gets the real stdout; everything printed goes to stderr.
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    w = Worker(name, ok_url, fail_url)
    for line in sys.stdin:
        cmd = json.loads(line)
        op = cmd["op"]
        if op == "quit":
            break
        try:
            out = getattr(w, "op_" + op)(cmd)
            out["ok"] = True
        except BaseException as e:  # noqa: BLE001
            out = {"ok": False, "error": f"{type(e).__name__}: {e}",
                   "traceback": traceback.format_exc(limit=6)}
        proto.write(json.dumps(out) + "\n")
    if w.c is not None:
        try:
            w.c.close()
        except Exception:  # noqa: BLE001
            pass
    proto.flush()
    os._exit(0)  # don't wait on runtimes' threads at shutdown


if __name__ == "__main__":
    main()
