"""The async measure (``async``): calls per second from one asyncio event
loop at 1, 16 and 256 concurrent calls, f3dx_router next to LiteLLM's
``Router.acompletion`` and the openai SDK's ``AsyncOpenAI``; and the openai
SDK through f3dx_router's transport (``f3dx_router.async_openai_client``,
``openai_client``) next to the SDK straight at the upstream, async and sync.

Async contenders (``ASYNC_CONTENDERS``), each in a worker process of its own
(worker.py's ``async_setup`` / ``async_pass``) with one event loop kept for
the whole run, all against the run's nginx (``ok_url``, a chat completion
answered at once):

* ``f3dx_router``: ``await router.achat_completions(BODY)``, one provider.
* ``litellm``: ``await Router(...).acompletion(model="ok", ...)``, configured
  as the sync contender (contenders.LiteLLM: no retries, no cooldowns).
* ``openai``: ``openai.AsyncOpenAI(base_url=ok_url, max_retries=0)``,
  ``await client.chat.completions.create(...)``: the SDK's own httpx2 stack
  (its default pool: 1000 connections, 100 kept alive).
* ``openai+f3dx_router``: ``f3dx_router.async_openai_client(router)``: the
  same SDK call, answered by the router through the SDK's ``http_client``
  hook (an httpx2 transport; no httpx2 connection pool or HTTP/1.1 code: the
  router's native client talks to nginx).

A pass (``run_pass``): C coroutines call back to back; after ``warmup_s``
the window opens (calls completed, CPU time of the process, all threads),
and closes ``seconds`` later; then the coroutines finish their call in
flight and stop. Each concurrency is ``passes`` passes, the contenders one at
a time, their order rotated each pass; the median pass is reported (as in
run.py's throughput measure).

Sync pair (``SYNC_CONTENDERS``, sequential latency through run.py's
``measure_latency``, in rounds with the order rotated): ``openai.sync``
(``openai.OpenAI`` straight at nginx), ``openai+f3dx_router.sync``
(``f3dx_router.openai_client(router)``) and, for reference,
``f3dx_router.sync`` (``router.chat_completions``).

The transports (``openai_client``, ``async_openai_client``) came after the
asyncio API: with a build that has not got them, those contenders fail at
setup and the report says so.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

import contenders
import upstream

ROUTER = "f3dx_router"
ASYNC_CONTENDERS = ["f3dx_router", "litellm", "openai", "openai+f3dx_router"]
SYNC_CONTENDERS = ["openai.sync", "openai+f3dx_router.sync", "f3dx_router.sync"]
# A coroutine waits this long after its error before its next call: a broken
# upstream must not turn a pass into a tight loop of exceptions.
ERROR_PAUSE_S = 0.01
MAX_ERRORS = 10_000
# After the window: how long the coroutines get to finish the call in flight.
STOP_TIMEOUT_S = 30.0


def cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


# ------------------------------------------------- inside the worker process

def _router(ok_url: str) -> Any:
    from f3dx_router import Router

    return Router([{"name": "ok", "kind": "openai", "base_url": ok_url,
                    "api_key": contenders.API_KEY,
                    "timeout_ms": int(contenders.TIMEOUT_S * 1000)}])


def _transport_client(kind: str, router: Any) -> Any:
    import f3dx_router

    make = getattr(f3dx_router, kind, None)
    if make is None:
        raise RuntimeError(f"this build of f3dx_router has no {kind} (the transports are not "
                           "in it)")
    return make(router)


def make_async(name: str, ok_url: str) -> tuple[Callable[[], Awaitable[Any]], Any]:
    """The contender's call (a coroutine function) and the object to keep
    alive; run inside the worker's event loop."""
    messages = contenders.BODY["messages"]
    model = contenders.BODY["model"]
    if name == "f3dx_router":
        router = _router(ok_url)
        return (lambda: router.achat_completions(contenders.BODY)), router
    if name == "litellm":
        lite = contenders.LiteLLM(ok_url, ok_url)
        r = lite.router
        return (lambda: r.acompletion(model="ok", messages=messages)), lite
    if name == "openai":
        import openai

        client = openai.AsyncOpenAI(base_url=ok_url, api_key=contenders.API_KEY,
                                    max_retries=0, timeout=contenders.TIMEOUT_S)
    elif name == "openai+f3dx_router":
        client = _transport_client("async_openai_client", _router(ok_url))
    else:
        raise KeyError(f"no async contender {name!r}")
    create = client.chat.completions.create
    return (lambda: create(model=model, messages=messages)), client


class OpenAISync:
    """``openai.OpenAI`` straight at nginx (run.py's ``latency`` op)."""

    def __init__(self, ok_url: str, fail_url: str) -> None:
        import openai

        self.client = openai.OpenAI(base_url=ok_url, api_key=contenders.API_KEY,
                                    max_retries=0, timeout=contenders.TIMEOUT_S)

    def call(self) -> Any:
        return self.client.chat.completions.create(model=contenders.BODY["model"],
                                                   messages=contenders.BODY["messages"])

    def close(self) -> None:
        self.client.close()


class OpenAIRouterSync(OpenAISync):
    """``f3dx_router.openai_client(router)``: the SDK through the router."""

    def __init__(self, ok_url: str, fail_url: str) -> None:
        self.client = _transport_client("openai_client", _router(ok_url))


class RouterSync:
    """``router.chat_completions``: the router without the SDK."""

    def __init__(self, ok_url: str, fail_url: str) -> None:
        self.router = _router(ok_url)

    def call(self) -> Any:
        return self.router.chat_completions(contenders.BODY)

    def close(self) -> None:
        pass


SYNC_FACTORIES = {"openai.sync": OpenAISync, "openai+f3dx_router.sync": OpenAIRouterSync,
                  "f3dx_router.sync": RouterSync}


async def run_pass(call: Callable[[], Awaitable[Any]], concurrency: int, warmup_s: float,
                   seconds: float) -> dict[str, Any]:
    """C coroutines calling back to back; the calls completed and the CPU time
    between ``warmup_s`` and ``warmup_s + seconds``."""
    stop = False
    done = errors = 0
    samples: list[str] = []

    async def loop() -> None:
        nonlocal done, errors
        while not stop:
            try:
                await call()
                done += 1
            except Exception as e:  # noqa: BLE001
                errors += 1
                if len(samples) < 3:
                    samples.append(f"{type(e).__name__}: {e}"[:300])
                if errors > MAX_ERRORS:
                    return
                await asyncio.sleep(ERROR_PAUSE_S)

    t_start = time.perf_counter()
    tasks = [asyncio.create_task(loop()) for _ in range(concurrency)]
    await asyncio.sleep(warmup_s)
    n0, e0, t0, c0 = done, errors, time.perf_counter(), cpu_seconds()
    await asyncio.sleep(seconds)
    n1, e1, t1, c1 = done, errors, time.perf_counter(), cpu_seconds()
    stop = True
    _, pending = await asyncio.wait(tasks, timeout=STOP_TIMEOUT_S)
    for t in pending:
        t.cancel()
    if pending:
        await asyncio.wait(pending, timeout=5)
    calls, wall = n1 - n0, t1 - t0
    return {"calls": calls, "wall_s": wall, "rps": calls / wall if wall else 0.0,
            "cpu_us_per_call": (c1 - c0) / calls * 1e6 if calls else None,
            "warmup_calls": n0, "calls_total": done, "pass_s": time.perf_counter() - t_start,
            "error_count": e1 - e0, "errors_total": errors, "errors": samples,
            "stuck_tasks": len(pending)}


class AsyncSide:
    """worker.py's async ops: one event loop for the life of the process."""

    def __init__(self, name: str, ok_url: str) -> None:
        self.name, self.ok_url = name, ok_url
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.call: Callable[[], Awaitable[Any]] | None = None
        self.keep: Any = None

    def setup(self) -> dict[str, Any]:
        t0 = time.perf_counter()

        async def build() -> tuple[Callable[[], Awaitable[Any]], Any]:
            return make_async(self.name, self.ok_url)

        self.call, self.keep = self.loop.run_until_complete(build())
        t1 = time.perf_counter()
        resp = self.loop.run_until_complete(self.call())
        contenders.check_response(self.name, resp)
        return {"setup_s": t1 - t0, "first_call_s": time.perf_counter() - t1,
                "rss_after_setup_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}

    def run(self, cmd: dict[str, Any]) -> dict[str, Any]:
        assert self.call is not None, "async_setup first"
        return self.loop.run_until_complete(run_pass(
            self.call, int(cmd["concurrency"]), float(cmd["warmup_s"]), float(cmd["seconds"])))


# ------------------------------------------------------------ run.py's side

def _pid_ticks(pid: int) -> int:
    """utime + stime of a process (all its threads), in clock ticks; 0 when gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return 0
    fields = stat[stat.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12])


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return out


def _busy_ticks() -> int:
    """The machine's busy time, all CPUs (user, nice, system, irq, softirq,
    steal: everything but idle and iowait), in clock ticks."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return v[0] + v[1] + v[2] + v[5] + v[6] + v[7]


class OthersMeter:
    """The CPU the rest of the machine used while a pass ran, in cores (1.0:
    one CPU kept busy): the machine's busy time minus the contender's
    process, nginx's processes and this one. A shared 2-CPU machine's other
    engineers' builds show up here, so a disturbed pass can be told apart."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = [os.getpid(), *pids]
        for p in pids:
            self.pids += _children(p)
        self.t0 = time.perf_counter()
        self.busy0 = _busy_ticks()
        self.own0 = sum(_pid_ticks(p) for p in self.pids)

    def cores(self) -> float:
        wall = time.perf_counter() - self.t0
        busy = _busy_ticks() - self.busy0
        own = sum(_pid_ticks(p) for p in self.pids) - self.own0
        return max(0.0, (busy - own) / os.sysconf("SC_CLK_TCK") / wall) if wall > 0 else 0.0


def rotated(names: list[str], k: int) -> list[str]:
    return names[k % len(names):] + names[:k % len(names)] if names else []


def measure(args: argparse.Namespace, nginx: upstream.Nginx, logs: Path, names: list[str],
            worker: Callable[..., Any], latency: Callable[..., dict[str, Any]],
            log: Callable[[str], None]) -> dict[str, Any]:
    """The async passes, then the sync pair. ``worker`` is run.py's Worker,
    ``latency`` its ``measure_latency``."""
    anames = [n for n in ASYNC_CONTENDERS if n in names]
    snames = [n for n in SYNC_CONTENDERS if n in names]
    out: dict[str, Any] = {"concurrency": args.async_concurrency, "seconds": args.async_seconds,
                           "warmup_s": args.async_warmup_s, "passes": args.async_passes,
                           "loadavg_start": os.getloadavg()}
    failed: dict[str, str] = {}
    workers: dict[str, Any] = {}
    try:
        setup: dict[str, Any] = {}
        for n in anames:
            workers[n] = worker(n, nginx.ok_url, nginx.fail_url, logs / f"async-{n}.log")
        for n, w in workers.items():
            try:
                r = w.cmd(timeout=180, op="async_setup")
                setup[n] = {k: v for k, v in r.items() if k != "ok"}
                log(f"  async setup {n}: {r['setup_s'] * 1000:.1f} ms")
            except Exception as e:  # noqa: BLE001  (run.py's WorkerError)
                failed[n] = f"async setup: {e}"
                log(f"  async setup {n}: FAILED {e}")
        out["setup"] = setup
        out["async"] = async_passes(workers, args, failed, nginx, log)
        for w in workers.values():
            w.stop()
        workers.clear()
        if snames:
            log("  sync pair: sequential calls, the openai SDK direct and through the router")
            for n in snames:
                workers[n] = worker(n, nginx.ok_url, nginx.fail_url, logs / f"sync-{n}.log")
            for n, w in list(workers.items()):
                try:
                    w.cmd(timeout=180, op="setup")
                except Exception as e:  # noqa: BLE001
                    failed[n] = f"setup: {e}"
                    log(f"  sync setup {n}: FAILED {e}")
            sub = argparse.Namespace(**{**vars(args), "calls": args.async_sync_calls,
                                        "rounds": args.async_sync_rounds,
                                        "warmup": args.async_sync_warmup})
            out["sync"] = latency({n: w for n, w in workers.items() if n not in failed},
                                  "call", sub, failed, nginx)
            for d in out["sync"].values():
                d.pop("samples_us", None)  # the summaries and rounds are kept
    finally:
        for w in workers.values():
            w.stop()
    out["failed"] = failed
    out["loadavg_end"] = os.getloadavg()
    return out


def async_passes(workers: dict[str, Any], args: argparse.Namespace, failed: dict[str, str],
                 nginx: upstream.Nginx, log: Callable[[str], None]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    k = 0
    cap = args.async_warmup_s + args.async_seconds + STOP_TIMEOUT_S + 120
    for conc in args.async_concurrency:
        runs: dict[str, list[dict[str, Any]]] = {}
        for _ in range(args.async_passes):
            for name in rotated([n for n in workers if n not in failed], k):
                try:
                    conns0, reqs0 = nginx.counters()
                    others = OthersMeter([workers[name].proc.pid]
                                         + ([nginx.proc.pid] if nginx.proc else []))
                    r = workers[name].cmd(timeout=cap, op="async_pass", concurrency=conc,
                                          warmup_s=args.async_warmup_s,
                                          seconds=args.async_seconds)
                    r["others_cores"] = others.cores()
                    conns1, reqs1 = nginx.counters()
                    # New upstream connections per 1000 requests over the pass,
                    # its warm-up included (a pool smaller than C reconnects).
                    r["new_conns_per_1k"] = (conns1 - conns0) / max(1, reqs1 - reqs0) * 1000
                except Exception as e:  # noqa: BLE001
                    out.setdefault(name, {})[str(conc)] = {"error": str(e)}
                    log(f"  async {name} x{conc}: FAILED {e}")
                    if "timed out" in str(e) or "exited" in str(e):
                        failed[name] = f"async x{conc}: {e}"
                    continue
                runs.setdefault(name, []).append(r)
            k += 1
        for name, rs in runs.items():
            rs.sort(key=lambda r: r["rps"])
            mid = rs[len(rs) // 2]
            out.setdefault(name, {})[str(conc)] = {
                "rps": mid["rps"], "cpu_us_per_call": mid["cpu_us_per_call"],
                "passes_rps": [r["rps"] for r in rs],
                "passes_cpu_us_per_call": [r["cpu_us_per_call"] for r in rs],
                "new_conns_per_1k": mid["new_conns_per_1k"],
                "others_cores": mid["others_cores"],
                "passes_others_cores": [r["others_cores"] for r in rs],
                "error_count": sum(r["error_count"] for r in rs),
                "errors": [e for r in rs for e in r["errors"]][:3],
                "stuck_tasks": max(r["stuck_tasks"] for r in rs)}
            d = out[name][str(conc)]
            log(f"  async {name} x{conc}: {d['rps']:.0f} calls/s (passes: "
                + ", ".join(f"{x:.0f}" for x in d["passes_rps"])
                + f"), CPU {d['cpu_us_per_call']:,.0f} us/call, other processes "
                + ", ".join(f"{x:.2f}" for x in d["passes_others_cores"]) + " cores, "
                + f"{d['new_conns_per_1k']:.1f} new connections per 1000 calls"
                + (f" ({d['error_count']} errors: {d['errors'][:1]})" if d["error_count"] else ""))
    return out
