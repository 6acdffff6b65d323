#!/usr/bin/env python3
"""The soak of issue 9: a million calls through shared routers, against
flapping loopback providers, watching memory, file descriptors and threads.

    bash bench/soak.sh                                   # 1,000,000 calls: bench/SOAK.md, soak.json
    bash bench/soak.sh --calls 100000 --report-every 20000 --out /tmp/soak   # a short check

Not in CI. ``soak.sh`` installs nginx-light (with its echo module) and the
extension into ``.venv`` when missing, then runs this file.

The upstream is one private nginx (config, pid file and logs in a temp dir,
never the system service) with three servers, the providers ``alpha``,
``beta`` and ``gamma``. Each request draws its answer from the provider's
fault mix (``split_clients`` on nginx's random ``$request_id``), and the mix
changes with the clock (a ``map`` on ``$msec``): every provider has its own
storm one second in ten, and all three are out two seconds in a hundred.
Answers: 200 at once; 200 after 40 ms (``echo_sleep``); a stall of 2 s,
past the providers' 250 ms ``timeout_ms``; 503 with and without
``retry-after-ms``; 429 with and without ``retry-after``; a connection
closed without an answer (``return 444``); rarely a 400 (a hard failure).

Two routers are built once, ``sequential`` and ``hedged`` (K=2, a 20 ms
hedge delay), and every thread calls both, in turn: each router is shared
by all the threads. Calls alternate ``route()`` and ``chat_completions()``.

Every ``--report-every`` calls (and at the end) one line is printed and
recorded: calls, elapsed, calls/s, RSS (VmRSS), glibc's heap in use and
the free space it keeps (``mallinfo2``), open fds, threads, Python objects
tracked by the GC, the result classes and the window's latency. At the
end: RSS growth from the first report after the warm-up to the last,
against the target of under 5%; fd growth; whether both routers, dropped,
give their fds back; RSS after ``malloc_trim(0)``. ``--faults none`` is a
control run (every answer a 200 at once). Writes ``SOAK.md`` and ``soak.json`` to
``--out``. Exit status 0 when every target is met, 1 when one is not (or
an exception of an unexpected type was raised), 2 on a hang.
"""

from __future__ import annotations

import argparse
import ctypes
import faulthandler
import gc
import itertools
import json
import math
import os
import platform
import queue
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from upstream import (  # noqa: E402
    CHAT_COMPLETION,
    RATE_LIMITED,
    Nginx,
    _nginx_literal,
    free_port,
    nginx_binary,
    nginx_version,
    wait_listening,
)

# --- the providers and their faults ------------------------------------------------

TIMEOUT_MS = 250  # every provider's timeout_ms: a stall (2 s) always outlasts it
SLOW_S = 0.040  # a slow answer: longer than the hedge delay, well under the timeout
STALL_S = 2.0
HEDGE_K = 2
HEDGE_DELAY_MS = 20
ECHO_MODULE = "/usr/lib/nginx/modules/ngx_http_echo_module.so"

OVERLOADED = {"error": {"message": "Overloaded (soak upstream).", "type": "server_error",
                        "code": "overloaded"}}
BAD_REQUEST = {"error": {"message": "Bad request (soak upstream).",
                         "type": "invalid_request_error", "code": "bad_request"}}

# What each fault answers; {ra_ms} is the provider's retry-after-ms.
FAULTS: dict[str, str] = {
    "ok": "200 at once",
    "slow": f"200 after {SLOW_S * 1000:.0f} ms",
    "stall": f"200 after {STALL_S:.0f} s (the attempt times out at {TIMEOUT_MS} ms)",
    "e503": "503, no retry hint",
    "e503ra": "503 with `retry-after-ms` (cools the provider down)",
    "e429": "429, no retry hint",
    "e429ra": "429 with `retry-after: 1` (seconds; cools it down for 1 s)",
    "reset": "connection closed without an answer (`return 444`)",
    "hard": "400 (a hard failure: `HardFailure`, no failover)",
}

# The clock patterns, on nginx's $msec (unix time, "1700000000.123"). The
# outage comes first: nginx tests regular expressions in order.
OUTAGE_RE = r"~[05]9\.\d+$"
OUTAGE_TEXT = "unix seconds ending in 09 or 59 (2 s in every 100 s, all three at once)"


@dataclass
class Provider:
    name: str
    storm_digit: int  # the storm: unix seconds ending in this digit (1 s in 10)
    storm_name: str
    ra_ms: int  # retry-after-ms of its e503ra answers
    # mode -> [(fault, percent)], the rest "ok"; percents with at most 2 decimals
    modes: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


def make_providers(faults: str = "flapping") -> list[Provider]:
    if faults == "none":  # the control: every answer a 200 at once
        return [Provider(n, d, "none", 250, {m: [] for m in MODES})
                for n, d in (("alpha", 3), ("beta", 6), ("gamma", 8))]
    return [
        Provider("alpha", 3, "503 storm", 250, {
            "normal": [("slow", 2), ("e503", 1), ("e429", 1), ("reset", 0.5), ("stall", 0.1),
                       ("hard", 0.01)],
            "storm": [("e503ra", 70), ("slow", 2), ("reset", 0.5), ("stall", 0.1)],
            "outage": [("e503", 90), ("reset", 10)],
        }),
        Provider("beta", 6, "429 storm", 250, {
            "normal": [("slow", 3), ("e503", 1), ("e429ra", 0.2), ("reset", 1), ("stall", 0.2)],
            "storm": [("e429", 60), ("reset", 5), ("slow", 3)],
            "outage": [("e503", 80), ("stall", 20)],
        }),
        Provider("gamma", 8, "brownout", 100, {
            "normal": [("slow", 5), ("e503", 1), ("e503ra", 0.5), ("reset", 1), ("stall", 0.3),
                       ("hard", 0.01)],
            "storm": [("slow", 30), ("stall", 5), ("reset", 10)],
            "outage": [("reset", 60), ("e503", 40)],
        }),
    ]


MODES = ("normal", "storm", "outage")
UNITS = 10000  # split_clients' resolution: 0.01%


def segments(p: Provider) -> list[tuple[int, int, dict[str, str]]]:
    """The provider's split_clients buckets: [(start, end, {mode: fault})] in
    units of 0.01%, cut where any mode's fault changes."""
    intervals: dict[str, list[tuple[int, int, str]]] = {}
    cuts = {0, UNITS}
    for mode in MODES:
        pos, ivs = 0, []
        for fault, pct in p.modes[mode]:
            assert fault in FAULTS, fault
            width = round(pct * 100)
            assert abs(width - pct * 100) < 1e-6 and width > 0, (p.name, fault, pct)
            ivs.append((pos, pos + width, fault))
            pos += width
        assert pos <= UNITS, (p.name, mode)
        intervals[mode] = ivs
        cuts.update(x for iv in ivs for x in iv[:2])
    bounds = sorted(cuts)
    out = []
    for a, b in zip(bounds, bounds[1:]):
        faults = {m: next((f for s, e, f in intervals[m] if s <= a < e), "ok") for m in MODES}
        out.append((a, b, faults))
    return out


def server_block(p: Provider) -> str:
    chat = _nginx_literal(CHAT_COMPLETION)
    segs = segments(p)
    split = "\n".join(
        f"        {(b - a) / 100:.2f}% s{i};" if i < len(segs) - 1 else f"        * s{i};"
        for i, (a, b, _f) in enumerate(segs))
    fault_map = "\n".join(
        f'        "{mode}:s{i}" {faults[mode]};'
        for i, (_a, _b, faults) in enumerate(segs) for mode in MODES)
    return f"""
    split_clients "${{request_id}}" $roll_{p.name} {{
{split}
    }}
    map $msec $mode_{p.name} {{
        "{OUTAGE_RE}" outage;
        "~{p.storm_digit}\\.\\d+$" storm;
        default normal;
    }}
    map "$mode_{p.name}:$roll_{p.name}" $fault_{p.name} {{
{fault_map}
        default ok;
    }}
    server {{
        listen 127.0.0.1:{p.port} backlog=4096;
        default_type application/json;
        location / {{ rewrite ^ /__$fault_{p.name} last; }}
        location = /__ok {{ internal; return 200 '{chat}'; }}
        location = /__slow {{ internal; echo_sleep {SLOW_S}; echo '{chat}'; }}
        location = /__stall {{ internal; echo_sleep {STALL_S}; echo '{chat}'; }}
        location = /__e503 {{ internal; return 503 '{_nginx_literal(OVERLOADED)}'; }}
        location = /__e503ra {{
            internal;
            add_header retry-after-ms {p.ra_ms} always;
            return 503 '{_nginx_literal(OVERLOADED)}';
        }}
        location = /__e429 {{ internal; return 429 '{_nginx_literal(RATE_LIMITED)}'; }}
        location = /__e429ra {{
            internal;
            add_header retry-after 1 always;
            return 429 '{_nginx_literal(RATE_LIMITED)}';
        }}
        location = /__reset {{ internal; return 444; }}
        location = /__hard {{ internal; return 400 '{_nginx_literal(BAD_REQUEST)}'; }}
    }}"""


class FlappingNginx(Nginx):
    """upstream.Nginx's process handling and stub_status counters, with the
    three flapping providers as its servers (no ok/fail servers)."""

    def __init__(self, providers: list[Provider]) -> None:
        super().__init__(workers=1)
        self.providers = providers
        for p in providers:
            p.port = free_port()

    def config(self) -> str:
        d = self.dir
        servers = "".join(server_block(p) for p in self.providers)
        return f"""
load_module {ECHO_MODULE};
daemon off;
master_process on;
worker_processes {self.workers};
worker_rlimit_nofile 16384;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    keepalive_requests 100000000;
    keepalive_timeout 900s;
    client_body_buffer_size 64k;
    server_tokens off;
{servers}
    server {{
        listen 127.0.0.1:{self.status_port};
        location / {{ stub_status; }}
    }}
}}
"""

    def start(self) -> None:
        # upstream.Nginx.start waits for its ok/fail ports: point them at ours.
        self.ok_port = self.providers[0].port
        self.fail_port = self.providers[1].port
        super().start()
        for p in self.providers:
            wait_listening(p.port)

    def error_log_lines(self) -> int:
        try:
            return sum(1 for _ in open(self.dir / "error.log", "rb"))
        except OSError:
            return -1


# --- measuring ---------------------------------------------------------------------

def proc_status() -> dict[str, int]:
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "Threads"):
                out[key] = int(value.split()[0])
    return out


def open_fds() -> tuple[int, int]:
    """(open fds, of which sockets), the listing's own fd not counted."""
    names = os.listdir("/proc/self/fd")
    sockets = 0
    for n in names:
        try:
            if os.readlink(f"/proc/self/fd/{n}").startswith("socket:"):
                sockets += 1
        except OSError:
            pass  # the listing's own fd, closed by now
    return len(names) - 1, sockets


class _MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]


def _mallinfo2() -> Any:
    try:
        f = ctypes.CDLL(None).mallinfo2
    except (OSError, AttributeError):
        return None  # not glibc 2.33+
    f.restype = _MallInfo2
    f.argtypes = []
    return f


MALLINFO2 = _mallinfo2()


def malloc_trim() -> bool:
    try:
        f = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return False
    f.argtypes = [ctypes.c_size_t]
    f(0)
    return True


def heap_owner(machine: dict[str, Any]) -> str:
    """Whose allocations glibc's heap figures cover."""
    allocator = machine.get("extension_allocator", "glibc malloc")
    if allocator == "glibc malloc":
        return "Python's and the extension's Rust code's allocations"
    return (f"Python's allocations only: the extension's Rust code allocates with {allocator}, "
            "which these figures do not see")


def malloc_stats() -> dict[str, float] | None:
    """glibc's heap (every arena; the extension's Rust code too when it
    allocates with glibc, see heap_owner): bytes in use, and bytes the arenas
    hold free (fragmentation, not yet returned)."""
    if MALLINFO2 is None:
        return None
    mi = MALLINFO2()
    mib = 1024 * 1024
    return {"in_use_mib": round((mi.uordblks + mi.hblkhd) / mib, 2),
            "free_mib": round(mi.fordblks / mib, 2)}


# Latency histogram: 0.1 ms buckets up to 100 ms, then 10 ms buckets up to 10 s.
FINE = 1000
NBUCKETS = FINE + 1000


def bucket(ms: float) -> int:
    if ms < 100:
        return int(ms * 10)
    return min(NBUCKETS - 1, FINE + int((ms - 100) / 10))


def bucket_ms(i: int) -> float:
    """The upper edge of bucket i."""
    return (i + 1) / 10 if i < FINE else 100 + (i - FINE + 1) * 10


def percentile(hist: list[int], q: float) -> float:
    total = sum(hist)
    if not total:
        return float("nan")
    rank = max(1, math.ceil(q * total))
    seen = 0
    for i, n in enumerate(hist):
        seen += n
        if seen >= rank:
            return bucket_ms(i)
    return bucket_ms(NBUCKETS - 1)


CLASSES = ("success", "AllProvidersFailed", "HardFailure", "other")


class Soak:
    def __init__(self, args: argparse.Namespace, routers: list[Any], nginx: FlappingNginx) -> None:
        import f3dx_router

        self.f3 = f3dx_router
        self.args = args
        self.routers = routers
        self.nginx = nginx
        self.body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "soak"}],
                     "max_tokens": 16}
        self.next_call = itertools.count()
        self.lock = threading.Lock()
        self.report_lock = threading.Lock()
        self.stop = threading.Event()
        self.completed = 0
        self.classes: Counter[str] = Counter()
        self.by_policy: dict[str, Counter[str]] = {r.policy: Counter() for r in routers}
        self.attempts: Counter[str] = Counter()
        self.others: list[str] = []  # repr of each unexpected exception (the first 50)
        self.hist = [0] * NBUCKETS
        self.window_max = 0.0
        self.run_max = 0.0
        self.reports: list[dict[str, Any]] = []
        self.t0 = 0.0
        self.cpu0 = 0.0
        self.last_calls = 0
        self.last_t = 0.0
        self.last_cpu = 0.0
        self.last_upstream = (0, 0)
        self.stacks: list[str] = []
        self.idle = 0  # threads done with their calls
        self.release = threading.Event()
        # Reports due (call counts), taken by the main thread: see calls().
        self.due: queue.SimpleQueue[int] = queue.SimpleQueue()
        self.failed_traces: dict[str, Counter[str]] = {r.policy: Counter() for r in routers}

    # -- the callers --

    def tally(self, attempts: Any) -> None:
        for a in attempts:
            what = a.status if a.status is not None else (a.fault or "-")
            self.attempts[f"{a.provider}:{a.outcome}:{what}"] += 1

    def worker(self) -> None:
        try:
            self.calls()
        finally:
            # Wait, alive, for the final report: the end is then measured with
            # every thread there, as the reports before it were.
            with self.lock:
                self.idle += 1
            self.release.wait()

    def calls(self) -> None:
        f3 = self.f3
        routers = self.routers
        nrouters = len(routers)
        calls = self.args.calls
        body = self.body
        while not self.stop.is_set():
            i = next(self.next_call)
            if i >= calls:
                return
            router = routers[i % nrouters]
            use_route = (i // nrouters) % 2 == 0
            attempts: Any = None
            t = time.perf_counter()
            try:
                if use_route:
                    res = router.route(body)
                    attempts = res.attempts
                else:
                    router.chat_completions(body)
                cls = "success"
            except f3.AllProvidersFailed as e:
                cls, attempts = "AllProvidersFailed", e.attempts
                trace = " > ".join(f"{a.provider}:{a.outcome}/{a.status or a.fault}"
                                   for a in attempts)
                with self.lock:
                    self.failed_traces[router.policy][trace] += 1
            except f3.HardFailure as e:
                cls, attempts = "HardFailure", e.attempts
            except BaseException as e:  # noqa: BLE001 - any other type is a defect
                cls = "other"
                text = f"{router.policy}: {e!r}"
                print(f"UNEXPECTED EXCEPTION {text}", file=sys.stderr, flush=True)
                with self.lock:
                    if len(self.others) < 50:
                        self.others.append(text)
            ms = (time.perf_counter() - t) * 1000
            with self.lock:
                self.classes[cls] += 1
                self.by_policy[router.policy][cls] += 1
                if attempts is not None:
                    self.tally(attempts)
                self.hist[bucket(ms)] += 1
                if ms > self.window_max:
                    self.window_max = ms
                self.completed += 1
                done = self.completed
            if done % self.args.report_every == 0:
                # The main thread measures, always the same one: a report
                # allocates (len(gc.get_objects()) is a list of every tracked
                # object, ~140 KiB), and made on the worker that happened to
                # reach the count it left that much free space in that
                # thread's glibc arena, a new one each time a report fell on
                # a new thread: up to 16 x 0.14 MiB of RSS "growth" that was
                # the soak's own (measured: bench/README.md, "Soak").
                self.due.put(done)

    # -- the reports --

    def report(self, done: int, final: bool = False) -> None:
        with self.report_lock:
            if self.reports and self.reports[-1]["calls"] >= done:
                return
            now = time.monotonic()
            cpu = sum(os.times()[:2])
            fds, sockets = open_fds()
            st = proc_status()
            with self.lock:
                classes = dict(self.classes)
                hist, self.hist = self.hist, [0] * NBUCKETS
                wmax, self.window_max = self.window_max, 0.0
                self.run_max = max(self.run_max, wmax)
            gc_objects = len(gc.get_objects())
            py_blocks = sys.getallocatedblocks()
            heap = malloc_stats()
            accepts, requests = self.nginx.counters()
            elapsed = now - self.t0
            wcalls = done - self.last_calls
            wtime = now - self.last_t
            rep: dict[str, Any] = {
                "calls": done,
                "elapsed_s": round(elapsed, 2),
                "calls_per_s": round(done / elapsed, 1),
                "window_calls_per_s": round(wcalls / wtime, 1) if wtime > 0 else None,
                "rss_mib": round(st["VmRSS"] / 1024, 2),
                "hwm_mib": round(st["VmHWM"] / 1024, 2),
                "rss_anon_mib": round(st["RssAnon"] / 1024, 2),
                "rss_file_mib": round(st["RssFile"] / 1024, 2),
                "fds": fds,
                "sockets": sockets,
                "threads_py": threading.active_count(),
                "threads_os": st["Threads"],
                "gc_objects": gc_objects,
                "py_blocks": py_blocks,
                "malloc_in_use_mib": heap["in_use_mib"] if heap else None,
                "malloc_free_mib": heap["free_mib"] if heap else None,
                "classes": {c: classes.get(c, 0) for c in CLASSES},
                "window_p50_ms": percentile(hist, 0.50),
                "window_p99_ms": percentile(hist, 0.99),
                "window_p999_ms": percentile(hist, 0.999),
                "window_max_ms": round(wmax, 1),
                "cpu_us_per_call": round((cpu - self.last_cpu) / wcalls * 1e6, 1) if wcalls else None,
                "upstream_requests_per_call": round((requests - self.last_upstream[1]) / wcalls, 3)
                if wcalls else None,
                "new_connections_per_1000_calls": round(
                    (accepts - self.last_upstream[0]) / wcalls * 1000, 1) if wcalls else None,
                "load_avg": [round(x, 2) for x in os.getloadavg()],
                "final": final,
            }
            self.reports.append(rep)
            self.last_calls, self.last_t, self.last_cpu = done, now, cpu
            self.last_upstream = (accepts, requests)
            c = rep["classes"]
            print(f"{done:>9,} calls {elapsed:7.1f} s {rep['calls_per_s']:7.0f}/s "
                  f"(window {rep['window_calls_per_s'] or 0:6.0f}/s)  RSS {rep['rss_mib']:7.2f} MiB (anon {rep['rss_anon_mib']:.2f})  "
                  f"fds {fds:4d} ({sockets} sockets)  threads {rep['threads_py']}/{rep['threads_os']}  "
                  f"gc {gc_objects} blocks {py_blocks} heap {rep['malloc_in_use_mib']}+"
                  f"{rep['malloc_free_mib']} free  ok {c['success']} apf {c['AllProvidersFailed']} "
                  f"hard {c['HardFailure']} other {c['other']}  p50/p99/max "
                  f"{rep['window_p50_ms']:.1f}/{rep['window_p99_ms']:.1f}/{wmax:.0f} ms",
                  flush=True)

    # -- the run --

    def run(self) -> dict[str, Any]:
        args = self.args
        threads = [threading.Thread(target=self.worker, name=f"soak-{i}", daemon=True)
                   for i in range(args.threads)]
        self.t0 = self.last_t = time.monotonic()
        self.cpu0 = self.last_cpu = sum(os.times()[:2])
        self.last_upstream = self.nginx.counters()
        deadline = self.t0 + args.max_seconds
        for t in threads:
            t.start()
        hang: str | None = None
        stopped_at_limit = interrupted = False
        last_done, last_progress = 0, time.monotonic()
        while True:
            try:
                try:
                    self.report(self.due.get(timeout=0.5))
                except queue.Empty:
                    pass
            except KeyboardInterrupt:
                print("interrupted: finishing the calls in flight", flush=True)
                self.stop.set()
                interrupted = True
            now = time.monotonic()
            with self.lock:
                done, idle = self.completed, self.idle
            if idle == len(threads) and self.due.empty():
                break
            if done != last_done:
                last_done, last_progress = done, now
            if now >= deadline and not self.stop.is_set():
                print(f"hard stop: {args.max_seconds} s reached after {done:,} calls",
                      flush=True)
                self.stop.set()
                stopped_at_limit = True
            stalled = now - last_progress
            if stalled >= args.hang_seconds or (self.stop.is_set() and now >= deadline + args.hang_seconds):
                alive = len(threads) - idle
                hang = (f"no call completed for {stalled:.0f} s ({alive} threads still in a call)"
                        if stalled >= args.hang_seconds else
                        f"{alive} threads still in a call {args.hang_seconds} s after the hard stop")
                print(f"HANG: {hang}; the threads' stacks:", file=sys.stderr, flush=True)
                faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
                self.stacks = thread_stacks()
                self.stop.set()
                break
        with self.lock:
            done = self.completed
        if not self.reports or self.reports[-1]["calls"] < done:
            self.report(done, final=True)
        else:
            self.reports[-1]["final"] = True
        self.release.set()
        if hang is None:
            for t in threads:
                t.join()
        return {"hang": hang, "stopped_at_limit": stopped_at_limit, "interrupted": interrupted,
                "wall_s": round(time.monotonic() - self.t0, 2)}


def thread_stacks() -> list[str]:
    import traceback

    names = {t.ident: t.name for t in threading.enumerate()}
    return [f"{names.get(ident, ident)}:\n" + "".join(traceback.format_stack(frame))
            for ident, frame in sys._current_frames().items()]


# --- setup and machine -------------------------------------------------------------

SEQ_ORDER = ("alpha", "beta", "gamma")
HEDGED_ORDER = ("gamma", "alpha", "beta")


def provider_config(p: Provider) -> dict[str, Any]:
    return {"name": p.name, "kind": "openai", "base_url": p.url, "api_key": "sk-soak",
            "timeout_ms": TIMEOUT_MS}


def build_routers(providers: list[Provider]) -> list[Any]:
    from f3dx_router import Router

    by_name = {p.name: p for p in providers}
    return [
        Router([provider_config(by_name[n]) for n in SEQ_ORDER], policy="sequential"),
        Router([provider_config(by_name[n]) for n in HEDGED_ORDER], policy="hedged",
               hedge_k=HEDGE_K, hedge_delay_ms=HEDGE_DELAY_MS),
    ]


def setup_description(providers: list[Provider]) -> dict[str, Any]:
    return {
        "providers": [{
            "name": p.name, "timeout_ms": TIMEOUT_MS,
            "storm": {"when": f"unix seconds ending in {p.storm_digit} (1 s in 10)",
                      "name": p.storm_name},
            "retry_after_ms": p.ra_ms,
            "modes": {m: p.modes[m] + [("ok", round(100 - sum(x for _f, x in p.modes[m]), 2))]
                      for m in MODES},
        } for p in providers],
        "outage": OUTAGE_TEXT,
        "faults": FAULTS,
        "routers": [
            {"policy": "sequential", "providers": list(SEQ_ORDER)},
            {"policy": "hedged", "hedge_k": HEDGE_K, "hedge_delay_ms": HEDGE_DELAY_MS,
             "providers": list(HEDGED_ORDER)},
        ],
        "calling": ("every thread calls both routers in turn (call i: router i % 2), so each "
                    "router is shared by all the threads; per router, calls alternate route() "
                    "and chat_completions()"),
    }


def run_cmd(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        return (out.stdout or out.stderr).strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


def machine_info() -> dict[str, Any]:
    import f3dx_router
    import f3dx_router._native as native

    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    ext = Path(native.__file__)
    dirty = run_cmd(["git", "-C", str(ROOT), "status", "--porcelain", "--", "crates", "python",
                     "Cargo.lock", "Cargo.toml"])
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory": mem,
        "kernel": platform.release(),
        "libc": " ".join(platform.libc_ver()),
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "f3dx_router": f3dx_router.__version__,
        # What the extension's Rust code allocates with; older builds: glibc's.
        "extension_allocator": getattr(native, "_allocator", "glibc malloc"),
        "extension": str(ext),
        "extension_built": datetime.fromtimestamp(ext.stat().st_mtime, timezone.utc)
        .strftime("%Y-%m-%d %H:%M UTC"),
        "commit": run_cmd(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]),
        "sources_modified": bool(dirty and dirty != "?"),
        "nginx": nginx_version(),
        "nginx_echo_module": run_cmd(["dpkg-query", "-W", "-f=${Version}",
                                      "libnginx-mod-http-echo"]),
    }


# --- the verdict -------------------------------------------------------------------

RSS_TARGET_PCT = 5.0


def slope(xs: list[float], ys: list[float]) -> float | None:
    n = len(xs)
    if n < 2:
        return None
    mx, my = sum(xs) / n, sum(ys) / n
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den if den else None


def verdict(data: dict[str, Any]) -> dict[str, Any]:
    reps = data["reports"]
    warmup = data["args"]["warmup"]
    end = reps[-1]
    base = next((r for r in reps if r["calls"] >= warmup), None)
    v: dict[str, Any] = {"warmup": warmup}
    if base is None or base is end:
        v["rss_growth_pct"] = None
        v["rss_target_met"] = None
    else:
        after = [r for r in reps if r["calls"] >= base["calls"]]
        v.update({
            "baseline_calls": base["calls"],
            "rss_base_mib": base["rss_mib"],
            "rss_end_mib": end["rss_mib"],
            "rss_max_after_warmup_mib": max(r["rss_mib"] for r in after),
            "rss_growth_pct": round((end["rss_mib"] - base["rss_mib"]) / base["rss_mib"] * 100, 2),
            "rss_slope_mib_per_100k_calls": (lambda s: None if s is None else round(s * 1e5, 3))(
                slope([r["calls"] for r in after], [r["rss_mib"] for r in after])),
            "fds_base": base["fds"],
            "fds_end": end["fds"],
            "fds_max_after_warmup": max(r["fds"] for r in after),
            "fd_growth": end["fds"] - base["fds"],
            "threads_os_base": base["threads_os"],
            "threads_os_end": end["threads_os"],
            "gc_objects_base": base["gc_objects"],
            "gc_objects_end": end["gc_objects"],
            "malloc_in_use_base_mib": base.get("malloc_in_use_mib"),
            "malloc_in_use_end_mib": end.get("malloc_in_use_mib"),
            "malloc_free_base_mib": base.get("malloc_free_mib"),
            "malloc_free_end_mib": end.get("malloc_free_mib"),
        })
        v["rss_target_met"] = v["rss_growth_pct"] < RSS_TARGET_PCT
        v["fd_target_met"] = v["fd_growth"] <= data["args"]["fd_slack"]
        v["threads_target_met"] = v["threads_os_end"] <= v["threads_os_base"]
    drop = data.get("after_drop")
    if drop:
        v["fds_returned"] = drop["fds"] <= data["before_routers"]["fds"]
    others = end["classes"]["other"]
    v["unexpected_exceptions"] = others
    v["hang"] = data["run"]["hang"]
    v["complete"] = end["calls"] >= data["args"]["calls"]
    checks = [v.get("rss_target_met"), v.get("fd_target_met"), v.get("threads_target_met"),
              v.get("fds_returned", True), others == 0, v["hang"] is None, v["complete"]]
    v["all_met"] = all(c is True for c in checks)
    return v


# --- the report --------------------------------------------------------------------

def fmt_pct_mix(mix: list[list[Any]] | list[tuple[str, float]]) -> str:
    return ", ".join(f"{f} {x:g}%" for f, x in mix if x)


def yes(b: bool | None) -> str:
    return "n/a" if b is None else ("**yes**" if b else "**NO**")


def render(data: dict[str, Any]) -> str:
    a, m, s, v = data["args"], data["machine"], data["setup"], data["verdict"]
    reps = data["reports"]
    end = reps[-1]
    L: list[str] = []
    kind = ("providers that never fail (the control run, `--faults none`)"
            if a.get("faults") == "none" else "flapping providers")
    L.append(f"# Soak: {end['calls']:,} calls through two shared routers, {kind}")
    L.append("")
    L.append(f"Run on {m['date']}, commit `{m['commit']}`"
             + (" (with local changes to the sources)" if m["sources_modified"] else "")
             + f", {a['threads']} threads, {data['run']['wall_s']:.0f} s"
             + f" ({end['calls_per_s']:,.0f} calls/s). Command: `{data['command']}`")
    L.append("")
    L.append("## Verdict")
    L.append("")
    if v.get("rss_growth_pct") is None:
        L.append("- RSS growth: not measured (no report after the warm-up but the last).")
    else:
        L.append(f"- RSS growth from {v['baseline_calls']:,} calls (after the warm-up) to the end: "
                 f"{v['rss_base_mib']:.2f} -> {v['rss_end_mib']:.2f} MiB, "
                 f"**{v['rss_growth_pct']:+.2f}%** (target: under {RSS_TARGET_PCT:g}%): "
                 f"met: {yes(v['rss_target_met'])}. Highest after the warm-up "
                 f"{v['rss_max_after_warmup_mib']:.2f} MiB; least-squares slope "
                 f"{v['rss_slope_mib_per_100k_calls']:+.3f} MiB per 100,000 calls.")
        L.append(f"- Open fds: {v['fds_base']} at {v['baseline_calls']:,} calls, {v['fds_end']} at "
                 f"the end (growth {v['fd_growth']:+d}, highest {v['fds_max_after_warmup']}; "
                 f"target: at most +{a['fd_slack']}, the pools' idle connections come and go): "
                 f"met: {yes(v['fd_target_met'])}.")
        if v.get("malloc_in_use_base_mib") is not None:
            t = data.get("after_trim")
            L.append(f"- Where RSS went (glibc's `mallinfo2`, every arena; {heap_owner(m)}): "
                     f"heap in use {v['malloc_in_use_base_mib']:.2f} -> "
                     f"{v['malloc_in_use_end_mib']:.2f} MiB, free space malloc holds "
                     f"{v['malloc_free_base_mib']:.2f} -> {v['malloc_free_end_mib']:.2f} MiB"
                     + (f"; RSS after `malloc_trim(0)` at the end: {t['rss_mib']:.2f} MiB"
                        if t else "") + ".")
        L.append(f"- OS threads: {v['threads_os_base']} -> {v['threads_os_end']} "
                 f"(no growth: {yes(v['threads_target_met'])}); objects tracked by Python's GC "
                 f"{v['gc_objects_base']:,} -> {v['gc_objects_end']:,}.")
    drop = data.get("after_drop")
    if drop:
        b = data["before_routers"]
        L.append(f"- Both routers dropped at the end: fds {drop['fds']} ({drop['sockets']} sockets), "
                 f"against {b['fds']} ({b['sockets']} sockets) before they were built: "
                 f"all given back: {yes(v['fds_returned'])}; OS threads {drop['threads_os']} "
                 f"(before: {b['threads_os']}); RSS {drop['rss_mib']:.2f} MiB "
                 f"(before: {b['rss_mib']:.2f}).")
    c = end["classes"]
    L.append(f"- Results: {c['success']:,} success, {c['AllProvidersFailed']:,} AllProvidersFailed, "
             f"{c['HardFailure']:,} HardFailure, **{c['other']} of any other type** "
             f"(each a defect{': ' + '; '.join(data['others']) if data['others'] else ''}).")
    L.append(f"- Hang: {v['hang'] or 'none'} (no call may take more than a few timeouts; the "
             f"watchdog calls it a hang after {a['hang_seconds']} s without a completed call).")
    L.append(f"- All {a['calls']:,} calls made: {yes(v['complete'])}"
             + (f" (hard stop at {a['max_seconds']} s)" if data["run"]["stopped_at_limit"] else "")
             + (" (interrupted)" if data["run"].get("interrupted") else "")
             + f". Every target met: {yes(v['all_met'])}.")
    L.append("")
    L.append("## Reports")
    L.append("")
    L.append(f"Every {a['report_every']:,} calls. RSS is VmRSS of /proc/self/status; heap, "
             f"glibc's `mallinfo2` (bytes in use, and free bytes the arenas keep; {heap_owner(m)}); fds the "
             "entries of /proc/self/fd (sockets among them); threads Python's / the OS's; "
             "latency, CPU per call (the process's, all threads), upstream requests per call "
             "and new connections (nginx's stub_status) are over the window since the previous "
             "report.")
    L.append("")
    L.append("| calls | elapsed s | calls/s | window calls/s | RSS MiB | heap in use + free MiB "
             "| fds (sockets) | threads | GC objects | success | AllProvidersFailed | HardFailure | other | window p50 / p99 / "
             "max ms | CPU us/call | upstream req/call | new conns /1000 calls | load avg |")
    L.append("|" + "---|" * 18)
    for r in reps:
        c = r["classes"]
        L.append(
            f"| {r['calls']:,}{' (end)' if r['final'] and r['calls'] % a['report_every'] else ''} "
            f"| {r['elapsed_s']:.1f} | {r['calls_per_s']:,.0f} | {r['window_calls_per_s'] or 0:,.0f} "
            f"| {r['rss_mib']:.2f} | {r.get('malloc_in_use_mib')} + {r.get('malloc_free_mib')} "
            f"| {r['fds']} ({r['sockets']}) | {r['threads_py']} / {r['threads_os']} "
            f"| {r['gc_objects']:,} | {c['success']:,} | {c['AllProvidersFailed']:,} | "
            f"{c['HardFailure']:,} | {c['other']} | {r['window_p50_ms']:.1f} / {r['window_p99_ms']:.1f}"
            f" / {r['window_max_ms']:.0f} | {r['cpu_us_per_call']} | {r['upstream_requests_per_call']} "
            f"| {r['new_connections_per_1000_calls']} | {r['load_avg'][0]:.2f} |")
    L.append("")
    L.append("By router:")
    L.append("")
    L.append("| policy | success | AllProvidersFailed | HardFailure | other |")
    L.append("|---|---|---|---|---|")
    for pol, cnt in data["by_policy"].items():
        L.append(f"| {pol} | {cnt.get('success', 0):,} | {cnt.get('AllProvidersFailed', 0):,} | "
                 f"{cnt.get('HardFailure', 0):,} | {cnt.get('other', 0)} |")
    L.append("")
    L.append("The most frequent attempt sequences of an `AllProvidersFailed` (provider:outcome/"
             "status or fault, in start order):")
    L.append("")
    L.append("| policy | attempts | calls |")
    L.append("|---|---|---|")
    for pol, traces in data.get("failed_traces", {}).items():
        for trace, n in list(traces.items())[:8]:
            L.append(f"| {pol} | {trace} | {n:,} |")
    L.append("")
    L.append("## Setup")
    L.append("")
    L.append("One private nginx (`worker_processes 1`, keep-alive without limit, no access log; "
             "config and logs in a temp dir) with its echo module, on 127.0.0.1; three servers are "
             "the providers. Each request draws its answer at random (`split_clients` on nginx's "
             "`$request_id`, so the draws are not seeded and counts vary a little between runs) "
             "from the mix of the provider's current mode; the mode follows the clock (a `map` on "
             "`$msec`): its storm one second in ten, and an outage of all three "
             f"{OUTAGE_TEXT.split('(')[0].strip()}, 2 s in every 100 s. Every provider has "
             f"`timeout_ms` {TIMEOUT_MS}.")
    L.append("")
    L.append("| provider | normal | storm | outage |")
    L.append("|---|---|---|---|")
    for p in s["providers"]:
        L.append(f"| {p['name']} (retry-after-ms {p['retry_after_ms']}) | "
                 f"{fmt_pct_mix(p['modes']['normal'])} | {p['storm']['name']}, "
                 f"{p['storm']['when']}: {fmt_pct_mix(p['modes']['storm'])} | "
                 f"{fmt_pct_mix(p['modes']['outage'])} |")
    L.append("")
    L.append("| answer | what nginx does |")
    L.append("|---|---|")
    for f, text in s["faults"].items():
        L.append(f"| {f} | {text} |")
    L.append("")
    r0, r1 = s["routers"]
    L.append(f"Routers, built once: `sequential` over {', '.join(r0['providers'])}; `hedged` "
             f"(hedge_k {r1['hedge_k']}, hedge_delay_ms {r1['hedge_delay_ms']}) over "
             f"{', '.join(r1['providers'])}. {a['threads']} threads; {s['calling']}. Warm-up: "
             f"the first {a['warmup']:,} calls (RSS growth is measured from the first report "
             f"at or after them). Hard stop at {a['max_seconds']} s.")
    L.append("")
    L.append("Upstream attempts seen (from `route()` results and the exceptions' `attempts`, "
             "so about half the calls), by provider, outcome and status or fault:")
    L.append("")
    L.append("| provider | outcome | status / fault | attempts |")
    L.append("|---|---|---|---|")
    for key, n in sorted(data["attempts"].items(), key=lambda kv: (kv[0].split(":")[0], -kv[1])):
        prov, outcome, what = key.split(":", 2)
        L.append(f"| {prov} | {outcome} | {what} | {n:,} |")
    L.append("")
    L.append(f"nginx's error log: {data['nginx_error_log_lines']} lines.")
    L.append("")
    L.append("## Machine")
    L.append("")
    L.append(f"- {m['nproc']} CPUs ({m['cpu']}), {m['memory']}, Linux {m['kernel']}, {m['libc']}; "
             f"load average {data['load_start'][0]:.2f} at the start, {data['load_end'][0]:.2f} "
             "at the end (the machine is shared)")
    L.append(f"- Python {m['python']} (`{m['python_executable']}`), f3dx_router {m['f3dx_router']} "
             f"(`{m['extension']}`, built {m['extension_built']}; its Rust code allocates with "
             f"{m.get('extension_allocator', 'glibc malloc')})")
    L.append(f"- nginx {m['nginx']}, libnginx-mod-http-echo {m['nginx_echo_module']}")
    L.append("")
    L.append("Raw numbers: `soak.json` (re-render with `python bench/soak.py --render "
             "bench/soak.json`). How to run it: bench/README.md, \"Soak\".")
    L.append("")
    return "\n".join(L)


def write_outputs(data: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "soak.json").write_text(json.dumps(data, indent=1) + "\n")
    (out / "SOAK.md").write_text(render(data))
    print(f"wrote {out / 'SOAK.md'} and {out / 'soak.json'}", flush=True)


# --- main ---------------------------------------------------------------------------

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=1_000_000)
    ap.add_argument("--threads", type=int, default=16)
    ap.add_argument("--report-every", type=int, default=100_000)
    ap.add_argument("--warmup", type=int, default=None,
                    help="calls before the RSS baseline (default: 100,000, or a fifth of --calls "
                         "when that is less, but at least --report-every)")
    ap.add_argument("--max-seconds", type=float, default=900, help="hard stop")
    ap.add_argument("--hang-seconds", type=float, default=60,
                    help="no completed call for this long is a hang")
    ap.add_argument("--fd-slack", type=int, default=32,
                    help="fds may end this many above the baseline report")
    ap.add_argument("--faults", choices=("flapping", "none"), default="flapping",
                    help="none: a control run, every answer a 200 at once")
    ap.add_argument("--out", type=Path, default=HERE, help="where SOAK.md and soak.json go")
    ap.add_argument("--render", type=Path, help="only re-render SOAK.md from this soak.json")
    args = ap.parse_args()
    if args.render:
        (args.render.parent / "SOAK.md").write_text(render(json.loads(args.render.read_text())))
        return 0
    if args.warmup is None:
        args.warmup = min(100_000, max(args.report_every, args.calls // 5))
    if args.calls < 1 or args.threads < 1 or args.report_every < 1:
        ap.error("--calls, --threads and --report-every must be positive")

    nginx_binary()  # fails with a hint when nginx is missing
    if not os.path.exists(ECHO_MODULE):
        sys.exit(f"{ECHO_MODULE} missing: bench/soak.sh installs it (libnginx-mod-http-echo)")
    import f3dx_router  # noqa: F401 - fail here, before nginx, if the extension is missing

    command = "bash bench/soak.sh" + "".join(f" {x}" for x in sys.argv[1:])
    load_start = list(os.getloadavg())
    providers = make_providers(args.faults)
    nginx = FlappingNginx(providers)
    try:
        nginx.start()
        fds, sockets = open_fds()
        st = proc_status()
        before = {"fds": fds, "sockets": sockets, "threads_os": st["Threads"],
                  "rss_mib": round(st["VmRSS"] / 1024, 2)}
        routers = build_routers(providers)
        print(f"soak: {args.calls:,} calls, {args.threads} threads, routers "
              f"{[r.policy for r in routers]}, providers "
              f"{[(p.name, p.port) for p in providers]}, report every {args.report_every:,}, "
              f"warm-up {args.warmup:,}, hard stop {args.max_seconds:g} s", flush=True)
        soak = Soak(args, routers, nginx)
        run = soak.run()
        after_drop = trimmed = None
        if run["hang"] is None:
            # How much of the end's RSS was free heap that malloc kept: give it
            # back (after the last report, so the run itself is untouched).
            if malloc_trim():
                st = proc_status()
                heap = malloc_stats()
                trimmed = {"rss_mib": round(st["VmRSS"] / 1024, 2),
                           "malloc_in_use_mib": heap["in_use_mib"] if heap else None}
            soak.routers = []
            del routers
            gc.collect()
            time.sleep(1.0)  # let the runtimes wind down
            fds, sockets = open_fds()
            st = proc_status()
            after_drop = {"fds": fds, "sockets": sockets, "threads_os": st["Threads"],
                          "rss_mib": round(st["VmRSS"] / 1024, 2)}
        data: dict[str, Any] = {
            "command": command,
            "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "machine": machine_info(),
            "setup": setup_description(providers),
            "load_start": load_start,
            "load_end": list(os.getloadavg()),
            "run": run,
            "before_routers": before,
            "after_drop": after_drop,
            "after_trim": trimmed,
            "reports": soak.reports,
            "by_policy": {k: dict(c) for k, c in soak.by_policy.items()},
            "attempts": dict(soak.attempts.most_common()),
            "others": soak.others,
            "failed_traces": {k: dict(c.most_common(12)) for k, c in soak.failed_traces.items()},
            "stacks": soak.stacks,
            "nginx_error_log_lines": nginx.error_log_lines(),
        }
    finally:
        nginx.stop()
    data["verdict"] = v = verdict(data)
    write_outputs(data, args.out)
    print(json.dumps(v, indent=1), flush=True)
    if v["hang"] is not None:
        os._exit(2)  # threads stuck in a call would keep the interpreter from exiting
    return 0 if v["all_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
