"""The async measure: calls/s from one asyncio event loop at 1, 16 and 256
concurrent calls (``ASYNC_CONTENDERS``: ``router.achat_completions``,
LiteLLM's ``acompletion``, ``openai.AsyncOpenAI`` straight at nginx, and the
same SDK call through ``f3dx_router.async_openai_client``), each in a worker
process with one event loop for the whole run; and the sync pair
(``SYNC_CONTENDERS``: the openai SDK straight and through
``f3dx_router.openai_client``, sequential latency through run.py's
``measure_latency``).

A pass (``run_pass``): C coroutines call back to back; the window opens
after ``warmup_s`` (calls completed, the process's CPU time) and closes
``seconds`` later. Each concurrency is ``passes`` passes, the order rotated,
the median pass kept (lib.passes). A build without the transports fails
those contenders at setup, and the report says so.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

import contenders
import lib
import upstream
from lib import cpu_seconds

ROUTER = "f3dx_router"
ASYNC_CONTENDERS = ["f3dx_router", "litellm", "openai", "openai+f3dx_router"]
SYNC_CONTENDERS = ["openai.sync", "openai+f3dx_router.sync", "f3dx_router.sync"]
# A coroutine waits this long after its error before its next call: a broken
# upstream must not turn a pass into a tight loop of exceptions.
ERROR_PAUSE_S = 0.01
MAX_ERRORS = 10_000
# After the window: how long the coroutines get to finish the call in flight.
STOP_TIMEOUT_S = 30.0


# ------------------------------------------------- inside the worker process

def _router(ok_url: str) -> Any:
    from f3dx_router import Router

    return Router([lib.provider("ok", ok_url)])


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
    messages = lib.BODY["messages"]
    model = lib.BODY["model"]
    if name == "f3dx_router":
        router = _router(ok_url)
        return (lambda: router.achat_completions(lib.BODY)), router
    if name == "litellm":
        lite = contenders.LiteLLM(ok_url, ok_url)
        r = lite.router
        return (lambda: r.acompletion(model="ok", messages=messages)), lite
    if name == "openai":
        import openai

        client = openai.AsyncOpenAI(base_url=ok_url, api_key=lib.API_KEY,
                                    max_retries=0, timeout=lib.TIMEOUT_S)
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

        self.client = openai.OpenAI(base_url=ok_url, api_key=lib.API_KEY,
                                    max_retries=0, timeout=lib.TIMEOUT_S)

    def call(self) -> Any:
        return self.client.chat.completions.create(model=lib.BODY["model"],
                                                   messages=lib.BODY["messages"])

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
        return self.router.chat_completions(lib.BODY)


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
                "rss_after_setup_mib": lib.status_mib()}

    def run(self, cmd: dict[str, Any]) -> dict[str, Any]:
        assert self.call is not None, "async_setup first"
        return self.loop.run_until_complete(run_pass(
            self.call, int(cmd["concurrency"]), float(cmd["warmup_s"]), float(cmd["seconds"])))


# ------------------------------------------------------------ run.py's side

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
        self.t0, self.busy0, self.own0 = time.perf_counter(), _busy_ticks(), self.own()

    def own(self) -> int:
        return sum(lib.pid_ticks(p)[1] for p in self.pids)

    def cores(self) -> float:
        wall = time.perf_counter() - self.t0
        busy, own = _busy_ticks() - self.busy0, self.own() - self.own0
        return max(0.0, (busy - own) / os.sysconf("SC_CLK_TCK") / wall) if wall > 0 else 0.0


def measure(args: argparse.Namespace, nginx: upstream.Nginx, logs: Path, names: list[str],
            latency: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    """The async passes, then the sync pair (``latency``: run.py's measure_latency)."""
    out: dict[str, Any] = {"concurrency": args.async_concurrency, "seconds": args.async_seconds,
                           "warmup_s": args.async_warmup_s, "passes": args.async_passes,
                           "loadavg_start": os.getloadavg()}
    failed: dict[str, str] = {}
    workers, out["setup"] = lib.start_workers([n for n in ASYNC_CONTENDERS if n in names],
                                              nginx.ok_url, nginx.fail_url, logs, "async-",
                                              failed, op="async_setup")
    try:
        cap = args.async_warmup_s + args.async_seconds + STOP_TIMEOUT_S + 120

        def one(name: str, conc: int) -> dict[str, Any]:
            others = OthersMeter([workers[name].proc.pid] + ([nginx.proc.pid] if nginx.proc else []))
            r = workers[name].cmd(timeout=cap, op="async_pass", concurrency=conc,
                                  warmup_s=args.async_warmup_s, seconds=args.async_seconds)
            return {**r, "others_cores": others.cores()}

        out["async"] = lib.passes(args.async_concurrency, list(workers), args.async_passes,
                                  failed, "async", one, nginx.counters)
        lib.stop_all(workers)
        snames = [n for n in SYNC_CONTENDERS if n in names]
        if snames:
            lib.log("  sync pair: sequential calls, the openai SDK direct and through the router")
            workers, _ = lib.start_workers(snames, nginx.ok_url, nginx.fail_url, logs, "sync-",
                                           failed)
            sub = argparse.Namespace(**{**vars(args), "calls": args.async_sync_calls,
                                        "rounds": args.async_sync_rounds,
                                        "warmup": args.async_sync_warmup})
            out["sync"] = latency(workers, "call", sub, failed, nginx)
            for d in out["sync"].values():
                d.pop("samples_us", None)  # the summaries and rounds are kept
    finally:
        lib.stop_all(workers)
    out["failed"] = failed
    out["loadavg_end"] = os.getloadavg()
    return out
