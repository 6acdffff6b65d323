#!/usr/bin/env python3
"""The benchmark: f3dx_router against the floor and the incumbents.

Run it through ``bash bench/run.sh`` (which prepares ``bench/.venv`` and
nginx); this file expects that venv's interpreter. Options: ``--help``;
bench/README.md lists the measures, docs/benchmarks.md the method.

Once per invocation: the core's criterion benchmark and the Worker's upload
size. Then ``--runs`` runs (3, or 1 with ``--smoke``), each with a fresh
private nginx on 127.0.0.1 and each contender in its own process
(worker.py). Peak RSS and the degradation scenario run in the first run
only. The raw numbers go to results.json (rewritten after each run; a run of
some measures alone writes the file report.output_names gives), report.py
renders the Markdown, and the contract's ratios are printed at the end.
Everything it started is stopped at the end, whatever happens.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import asyncbench  # noqa: E402
import cfworker  # noqa: E402
import contenders  # noqa: E402
import degrade  # noqa: E402
import lib  # noqa: E402
import report  # noqa: E402
import streaming  # noqa: E402
import upstream  # noqa: E402
from lib import ENV, ROOT, Worker, WorkerError, log, nearest_rank  # noqa: E402

CORE_BENCH = ROOT / "crates" / "f3dx-router-core" / "benches" / "routing.rs"
CORE_GROUPS = ("route", "core_parts")
CORE_TIMEOUT_S = 1800.0
MEASURES = ("latency", "failover", "throughput", "tput_health", "worker", "import", "rss",
            "tail", "degrade", "core", "stream", "async", "table")
ROUTER_NAME = "f3dx_router"
AUX = ("floor+json", "f3dx_router.route")  # breakdown rows, not contenders
AUTO = "hedged K=2, auto"
AUTO_WARMUP = 30  # > the 20 successes "auto" needs before it trusts its p90

# Every setting of a full run; --smoke replaces some, --set KEY=VALUE any.
SETTINGS: dict[str, Any] = dict(
    calls=2000, warmup=200, rounds=4, max_s_per_measure=30.0,  # latency, failover
    threads=[1, 4, 16, 64], tput_seconds=1.0, tput_passes=3,  # throughput
    worker_calls=2000, worker_warmup=200, worker_rounds=5, worker_threads=[1, 4, 16],
    import_repeats=5, rss_calls=100_000, rss_max_s=60.0,
    tail_calls=2000, tail_warmup=50, tail_max_s=90.0, tail_fast_ms=5.0, tail_slow_ms=200.0,
    tail_slow_frac=0.05, health_threads=[1, 16], health_passes=21,
    # degrade: A answers 503 to degrade_frac of calls for degrade_bad_s after
    # degrade_warm_s; the loop runs on at least after_min_s, at most
    # after_max_s, and stops once A has served again for hold_s.
    degrade_threads=4, degrade_delay_ms=5.0, degrade_frac=0.4, degrade_warm_s=10.0,
    degrade_bad_s=30.0, degrade_after_min_s=10.0, degrade_after_max_s=60.0, degrade_hold_s=5.0,
    # stream: no delay (nginx) and stream_delay_ms before each chunk (the mock)
    stream_chunks=streaming.CHUNKS, stream_delay_ms=5.0, stream_calls=1000, stream_warmup=100,
    stream_rounds=4, stream_max_s=40.0, stream_slow_calls=50, stream_slow_warmup=2,
    stream_slow_rounds=2,
    async_concurrency=[1, 16, 256], async_seconds=1.5, async_warmup_s=0.5, async_passes=5,
    async_sync_calls=3000, async_sync_warmup=200, async_sync_rounds=10,
    # table: 200 groups / 600 deployments against one provider, alternating rounds
    table_calls=4000, table_rounds=8, table_warmup=400)
SMOKE: dict[str, Any] = dict(
    calls=300, warmup=50, rounds=3, max_s_per_measure=10.0, tput_seconds=0.5, tput_passes=2,
    worker_calls=300, worker_warmup=30, worker_rounds=3, import_repeats=2, rss_calls=3000,
    rss_max_s=10.0, tail_calls=300, tail_warmup=20, tail_max_s=30.0, health_passes=2,
    # The ejection (30 s) outlasts this bad spell: A is back ~22 s after it.
    degrade_warm_s=3.0, degrade_bad_s=8.0, degrade_hold_s=2.0, degrade_after_min_s=3.0,
    degrade_after_max_s=30.0, stream_calls=200, stream_warmup=20, stream_rounds=2,
    stream_max_s=20.0, stream_slow_calls=4, stream_slow_warmup=1, stream_slow_rounds=2,
    async_seconds=0.5, async_warmup_s=0.3, async_passes=1, async_sync_calls=300,
    async_sync_warmup=30, async_sync_rounds=2, table_calls=800, table_rounds=4, table_warmup=100)


def machine_info(nginx_ver: str) -> dict[str, Any]:
    def first(path: str, prefix: str) -> str:
        try:
            return next((ln.split(":", 1)[1].strip() for ln in open(path)
                         if ln.startswith(prefix)), "unknown")
        except OSError:
            return "unknown"

    def run(*argv: str) -> str:
        return subprocess.run(argv, capture_output=True, text=True).stdout.strip()

    versions: dict[str, str | None] = {}
    for dist in ("httpx", "f3dx", "litellm", "f3dx-router", "openai"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    node = shutil.which("node")
    versions.update(python=platform.python_version(), nginx=nginx_ver,
                    node=run(node, "--version") if node else None,
                    wrangler=cfworker.wrangler_version())
    dirty = run("git", "-C", str(ROOT), "status", "--porcelain", "--", ".", ":(exclude)bench")
    return {"date_utc": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "nproc": os.cpu_count(), "cpu": first("/proc/cpuinfo", "model name"),
            "mem": first("/proc/meminfo", "MemTotal"), "kernel": platform.release(),
            "loadavg_start": os.getloadavg(), "versions": versions,
            "commit": run("git", "-C", str(ROOT), "rev-parse", "--short", "HEAD")
            + (" (modified)" if dirty else "")}


# ----------------------------------------------------------------- measures

def measure_latency(workers: dict[str, Worker], variant: str, args: argparse.Namespace,
                    failed: dict[str, str], nginx: upstream.Nginx) -> dict[str, Any]:
    """Rounds of sequential calls, the contender order rotated each round;
    upstream requests per call counted by nginx (1 a call, 2 a failover)."""
    names = [n for n in workers if variant == "call" or n in contenders.HAS_FAILOVER]

    def one(name: str, rnd: int) -> dict[str, Any]:
        before = nginx.requests()
        cap = args.max_s_per_measure / (args.rounds if name == "litellm" else 1)
        r = workers[name].cmd(timeout=args.max_s_per_measure + 120, op="latency",
                              variant=variant, n=max(1, args.calls // args.rounds), max_s=cap,
                              warmup=args.warmup if rnd == 0 else max(1, args.warmup // 10))
        return {**r, "upstream": nginx.requests() - before}

    return lib.rounds(names, args.rounds, failed, f"{variant} latency", one)


def measure_throughput(workers: dict[str, Worker], args: argparse.Namespace,
                       failed: dict[str, str], nginx: upstream.Nginx) -> dict[str, Any]:
    """Threads sharing one client: each point in passes, the median pass."""
    def one(name: str, threads: int) -> dict[str, Any]:
        return workers[name].cmd(timeout=args.tput_seconds + 180, op="throughput",
                                 threads=threads, seconds=args.tput_seconds)

    return lib.passes(args.threads, list(workers), args.tput_passes, failed, "throughput", one,
                      nginx.counters)


def measure_tput_health(args: argparse.Namespace, nginx: upstream.Nginx,
                        logs: Path) -> dict[str, Any]:
    """f3dx_router with health tracking on (the default) and off, side by side
    (health takes one mutex per router on every outcome)."""
    failed: dict[str, str] = {}
    workers, _ = lib.start_workers([ROUTER_NAME, contenders.HEALTH_OFF], nginx.ok_url,
                                   nginx.fail_url, logs, "tput-health-", failed)
    try:
        sub = argparse.Namespace(**{**vars(args), "threads": args.health_threads,
                                    "tput_passes": args.health_passes})
        tp = measure_throughput(workers, sub, failed, nginx)
    finally:
        lib.stop_all(workers)
    ratio = {}
    for t in map(str, args.health_threads):
        on, off = (tp.get(n, {}).get(t, {}).get("rps") for n in (ROUTER_NAME, contenders.HEALTH_OFF))
        if on and off:
            ratio[t] = on / off
            log(f"  tput_health x{t}: health on {on:.0f} calls/s, off {off:.0f}: on/off {on / off:.3f}")
    return {"throughput": tp, "ratio_on_off": ratio, "failed": failed}


def measure_imports(names: list[str], repeats: int) -> dict[str, Any]:
    """Import time in a fresh interpreter, median (a first run warms the page cache)."""
    out: dict[str, Any] = {}
    for name in names:
        stmt = contenders.IMPORTS[name]
        code = f"import time; t = time.perf_counter(); {stmt}; print(time.perf_counter() - t)"
        times: list[float] = []
        err = None
        for i in range(repeats + 1):
            p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                               env=ENV, timeout=120)
            if p.returncode != 0:
                err = (p.stderr.strip().splitlines() or [f"exit {p.returncode}"])[-1]
                break
            if i:
                times.append(float(p.stdout.split()[-1]) * 1000)
        out[name] = {"stmt": stmt, "error": err} if err else {
            "stmt": stmt, "ms": statistics.median(times), "all_ms": times}
        log(f"  import {name}: " + (f"FAILED {err}" if err else f"{out[name]['ms']:.1f} ms"))
    return out


def measure_rss(names: list[str], nginx: upstream.Nginx, args: argparse.Namespace,
                logs: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in names:
        w = Worker(name, nginx.ok_url, nginx.fail_url, logs / f"{name}.rss.log")
        try:
            setup = w.cmd(timeout=180, op="setup")
            out[name] = r = w.cmd(timeout=args.rss_max_s + 120, op="rss", n=args.rss_calls,
                                  max_s=args.rss_max_s)
            r["rss_after_setup_mib"] = setup["rss_after_setup_mib"]
            log(f"  rss {name}: {r['peak_rss_mib']:.1f} MiB after {r['calls']} calls")
        except WorkerError as e:
            out[name] = {"error": str(e)}
            log(f"  rss {name}: FAILED {e}")
        finally:
            w.stop()
    return out


def measure_tail(args: argparse.Namespace, logs: Path) -> dict[str, Any]:
    """f3dx_router over two heavy-tailed mocks: no hedging, hedged at once,
    hedged at the unhedged run's p95, and "auto"."""
    tail = {"mode": "tail", "delay_ms": args.tail_fast_ms, "slow_ms": args.tail_slow_ms,
            "slow_frac": args.tail_slow_frac}
    mock = upstream.bench_mocks(a={**tail, "seed": 1}, b={**tail, "seed": 2})
    w = Worker(ROUTER_NAME, "http://127.0.0.1:9/v1", "http://127.0.0.1:9/v1", logs / "tail.log")
    out: dict[str, Any] = {"mock": tail}
    variants: dict[str, Any] = {}
    base = {"op": "tail", "urls": [mock.base_url("a"), mock.base_url("b")],
            "stats_url": mock.stats_url(), "warmup": args.tail_warmup, "n": args.tail_calls,
            "max_s": args.tail_max_s}

    def run(label: str, **extra: Any) -> list[float]:
        v = variants[label] = w.cmd(timeout=args.tail_max_s + 120, **{**base, **extra})
        v["summary"] = lib.summary(v["samples_us"])
        v["extra_pct"] = (v["upstream_requests"] / v["n"] - 1) * 100
        log(f"  tail {label}: n={v['n']} p50={v['summary']['p50'] / 1000:.2f}ms "
            f"p99={v['summary']['p99'] / 1000:.2f}ms upstream +{v['extra_pct']:.1f}%")
        return v["samples_us"]

    try:
        nohedge = run("no hedging", policy="sequential")
        run("hedged K=2, immediate", policy="hedged", hedge_k=2, delay_ms=0)
        # The observed p95 (nearest rank, whole ms). With 5% slow calls it
        # lands in the slow mode about half the time, where a hedge would
        # never fire: then the top of the fast mode (its p99) instead.
        p95_ms = nearest_rank(nohedge, 95) / 1000.0
        midpoint = (args.tail_fast_ms + args.tail_slow_ms) / 2
        if p95_ms >= midpoint:
            out["delay_note"] = f"the sample p95, {p95_ms:.1f} ms, fell in the slow mode"
            p95_ms = nearest_rank([x for x in nohedge if x / 1000.0 < midpoint], 99) / 1000.0
        delay = max(1, math.ceil(p95_ms))
        run(f"hedged K=2, delay {delay} ms (p95)", policy="hedged", hedge_k=2, delay_ms=delay)
        # "auto" waits a fallback until the first provider has 20 successes:
        # its warm-up is never shorter than that.
        run(AUTO, policy="hedged", hedge_k=2, delay_ms="auto",
            warmup=max(args.tail_warmup, AUTO_WARMUP))
        end, warm = variants[AUTO]["stats_end"], variants[AUTO]["stats_after_warmup"]
        variants[AUTO]["hedges_timed"] = {k: end["hedges"][k] - warm["hedges"].get(k, 0)
                                          for k in end["hedges"]}
        out.update(variants=variants, observed_p95_ms=nearest_rank(nohedge, 95) / 1000.0,
                   delay_ms=delay)
    except WorkerError as e:
        out.update(variants=variants, error=str(e))
        log(f"  tail: FAILED {e}")
    finally:
        w.stop()
        mock.close()
    return out


# ----------------------------------------------------- the Cloudflare Worker

def measure_worker_size(logs: Path) -> dict[str, Any]:
    why = cfworker.missing()
    if why:
        return {"error": why}
    out: dict[str, Any] = cfworker.upload_size()
    if os.environ.get("BENCH_WORKER_BUILD_ERROR"):  # set by run.sh
        out["build_error"] = os.environ["BENCH_WORKER_BUILD_ERROR"]
        log(f"  worker: the build failed ({out['build_error']}): measuring the previous build")
    out.update(cfworker.dry_run_size(logs / "wrangler-dry-run.log"))
    log(f"  worker upload: gzip -9 {out['gzip_total']:,} B; wrangler deploy --dry-run: "
        + (f"{out['dry_run_total_kib']} KiB, gzip {out['dry_run_gzip_kib']} KiB"
           if "dry_run_gzip_kib" in out else out.get("dry_run_error", "?")))
    return out


def client_rounds(wb: cfworker.WranglerBench, targets: list[str], n_rounds: int, calls: int,
                  warmup: int, max_s: float, count: Any, label: str, failed: dict[str, str],
                  chunks: int = 0) -> dict[str, Any]:
    """Sequential calls through the dispatcher, one keep-alive connection per
    target, in rounds with the order rotated; CPU is wrangler's and workerd's.
    With ``chunks``, streams (checked first) timed to the first chunk and the end."""
    clients = {t: cfworker.StreamClient(wb.port, t) if chunks and t not in cfworker.RUNTIME
               else cfworker.Client(wb.port, t) for t in targets}

    def one(t: str, rnd: int) -> dict[str, Any]:
        c, before = clients[t], count()
        stream = isinstance(c, cfworker.StreamClient)
        if stream:
            c.check(chunks)
        warm = warmup if rnd == 0 else max(1, warmup // 10)
        for _ in range(warm):
            c.call()
        # A whole small answer (null, hop) has its first chunk at its end.
        first = (lambda r, t1: r if stream else t1) if chunks else None
        r = lib.timed(c.call, max(1, calls // n_rounds), max_s, wb.cpu_seconds, first)
        return {**r, "upstream": count() - before, "calls": warm + r["n"] + stream}

    try:
        return lib.rounds(targets, n_rounds, failed, label, one)
    finally:
        for c in clients.values():
            c.close()


def measure_worker(args: argparse.Namespace, nginx: upstream.Nginx, logs: Path) -> dict[str, Any]:
    """The f3dx worker next to the JavaScript floors, in one `wrangler dev`:
    latency in rounds, then calls/s (each thread its own connection)."""
    why = cfworker.missing()
    if why:
        log(f"  worker: SKIPPED: {why}")
        return {"error": why}
    out: dict[str, Any] = {"failed": {}}
    wb = None
    try:
        wb, info = cfworker.start(lambda: cfworker.WranglerBench(
            nginx.ok_url, nginx.fail_url, logs / "wrangler.log"))
        out.update(info)
        targets = cfworker.RUNTIME + cfworker.CALL + cfworker.FAILOVER + cfworker.SAMEWORK
        out["latency"] = client_rounds(wb, targets, args.worker_rounds, args.worker_calls,
                                       args.worker_warmup, args.max_s_per_measure,
                                       nginx.requests, "worker", out["failed"])

        def one(target: str, threads: int) -> dict[str, Any]:
            clients: list[cfworker.Client] = []  # one connection per thread

            def connect() -> Any:
                clients.append(cfworker.Client(wb.port, target))
                return clients[-1].call
            try:
                return lib.thread_pass(connect, threads, args.tput_seconds, wb.cpu_seconds)
            finally:
                for c in clients:
                    c.close()

        out["throughput"] = lib.passes(args.worker_threads, cfworker.CALL + cfworker.FAILOVER,
                                       args.tput_passes, out["failed"], "worker throughput",
                                       one, nginx.counters)
    except Exception as e:  # noqa: BLE001
        out["error"] = f"{type(e).__name__}: {e}"
        log(f"  worker: FAILED {out['error']}")
    finally:
        if wb is not None:
            wb.stop()
    return out


# ------------------------------------------------------------------ streaming

def stream_settings(args: argparse.Namespace, variant: str) -> tuple[int, int, int, float, float]:
    """(calls, rounds, warm-up, time cap per round, seconds a stream) of a variant."""
    if variant == "fast":
        rounds = max(1, args.stream_rounds)
        return args.stream_calls, rounds, args.stream_warmup, args.stream_max_s / rounds, 0.05
    rounds = max(1, args.stream_slow_rounds)
    call_s = args.stream_chunks * args.stream_delay_ms / 1000.0
    per_round = max(1, args.stream_slow_calls // rounds)
    return (args.stream_slow_calls, rounds, args.stream_slow_warmup,
            per_round * call_s * 1.5 + 10, call_s)


def measure_stream(args: argparse.Namespace, names: list[str], logs: Path) -> dict[str, Any]:
    """Streams read to their end, the time to the first chunk with text and to
    the end: every contender (in rounds, the order rotated) against nginx (no
    delay) and the mock's stream mode (a delay before each chunk); then the
    Worker against a JavaScript worker piping the body through."""
    chunks = args.stream_chunks
    body = streaming.sse_body(chunks)
    nginx = upstream.SseNginx(body)
    mock: upstream.MockProviders | None = None
    out: dict[str, Any] = {"upstream": {"chunks": chunks, "delay_ms": args.stream_delay_ms,
                                        "body_bytes": len(body)}}
    failed: dict[str, str] = {}
    workers: dict[str, Worker] = {}
    try:
        nginx.start()
        mock = upstream.bench_mocks(
            stream={"mode": "stream", "delay_ms": args.stream_delay_ms, "chunks": chunks})
        slow_url = mock.base_url("stream")
        count = {"fast": nginx.requests, "slow": lambda: int(mock.stats()["requests"])}
        workers, out["setup"] = lib.start_workers(names, nginx.ok_url, slow_url, logs, "stream-",
                                                  failed, op="stream_setup", chunks=chunks)
        for variant in streaming.VARIANTS:
            calls, n_rounds, warmup, max_s, call_s = stream_settings(args, variant)

            def one(name: str, rnd: int) -> dict[str, Any]:
                before = count[variant]()
                warm = warmup if rnd == 0 else max(1, warmup // 10)
                r = workers[name].cmd(timeout=max_s + (warm + 1) * call_s * 3 + 120, op="stream",
                                      variant=variant, chunks=chunks, warmup=warm,
                                      n=max(1, calls // n_rounds), max_s=max_s)
                return {**r, "upstream": count[variant]() - before}

            out[variant] = lib.rounds(list(workers), n_rounds, failed, f"stream {variant}", one)
        lib.stop_all(workers)
        why = cfworker.missing()
        out["worker"] = {"error": why} if why else stream_worker(args, nginx, mock, count, logs)
    finally:
        lib.stop_all(workers)
        if mock is not None:
            mock.close()
        nginx.stop()
    out["failed"] = failed
    return out


def stream_worker(args: argparse.Namespace, nginx: upstream.SseNginx,
                  mock: upstream.MockProviders, count: dict[str, Any],
                  logs: Path) -> dict[str, Any]:
    """The f3dx worker streaming next to workers/pipe.js in one `wrangler dev`;
    `null` and `hop` measure the dispatch hop in the no-delay rounds."""
    out: dict[str, Any] = {"failed": {}}
    wb = None
    try:
        wb, info = cfworker.start(lambda: cfworker.StreamWranglerBench(
            nginx.ok_url, mock.base_url("stream"), args.stream_chunks,
            logs / "wrangler-stream.log"))
        out.update(info)
        for variant in streaming.VARIANTS:
            targets = list(cfworker.STREAM_PAIRS[variant])
            if variant == "fast":
                targets = cfworker.RUNTIME + targets
            calls, n_rounds, warmup, max_s, _ = stream_settings(args, variant)
            out[variant] = client_rounds(wb, targets, n_rounds, calls, warmup, max_s,
                                         count[variant], f"stream worker {variant}",
                                         out["failed"], chunks=args.stream_chunks)
    except Exception as e:  # noqa: BLE001
        out["error"] = f"{type(e).__name__}: {e}"
        log(f"  stream worker: FAILED {out['error']}")
    finally:
        if wb is not None:
            wb.stop()
    return out


# ----------------------------------------------------- the core (criterion)

def measure_table(args: argparse.Namespace, nginx: upstream.Nginx, logs: Path) -> dict[str, Any]:
    """bench/table.py in its own process: the 200-group table's per-call p50
    over one provider's, rounds alternating; `explain()` and `stats()` on it."""
    argv = [sys.executable, str(HERE / "table.py"), nginx.ok_url, str(args.table_calls),
            str(args.table_rounds), str(args.table_warmup)]
    with open(logs / "table.log", "w") as err:
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=err, text=True, timeout=600)
    if proc.returncode:
        log(f"  table: FAILED ({logs / 'table.log'})")
        return {"error": f"bench/table.py exited {proc.returncode}"}
    out: dict[str, Any] = json.loads(proc.stdout)
    log(f"  table: p50 {out['table']['p50_us']:.1f} us; without models, three providers "
        f"{out['group']['p50_us']:.1f} us ({out['ratio']:.3f}x), one "
        f"{out['single']['p50_us']:.1f} us ({out['ratio_single']:.3f}x); stats() of "
        f"{out['deployments']} deployments {out['stats_us'] / 1000:.2f} ms; explain() "
        + (f"{out['explain_us']:.1f} us" if "explain_us" in out else "not available"))
    return out


def measure_core(args: argparse.Namespace, logs: Path) -> dict[str, Any]:
    """`cargo bench -p f3dx-router-core --bench routing` once (target dir
    bench/.target); the median time per iteration of each benchmark of the
    `route` and `core_parts` groups, from criterion's estimates.json."""
    cargo = shutil.which("cargo")
    if not CORE_BENCH.exists() or cargo is None:
        return {"skipped": "no cargo" if cargo is None else f"no {CORE_BENCH.relative_to(ROOT)}"}
    crit = HERE / ".target" / "criterion"
    for g in CORE_GROUPS:  # never read a stale estimate
        shutil.rmtree(crit / g, ignore_errors=True)
    argv = [cargo, "bench", "-p", "f3dx-router-core", "--bench", "routing"]
    crit_args = ["--noplot"] + (["--warm-up-time", "0.5", "--measurement-time", "1"]
                                if args.smoke else [])
    log_path = logs / "core.log"
    env = dict(os.environ, CARGO_TARGET_DIR=str(HERE / ".target"))
    # The build yields to whatever else runs; the measurement does not.
    for step in (["nice", "-n", "10", *argv, "--no-run"], [*argv, "--", *crit_args]):
        with open(log_path, "a") as f:
            rc = subprocess.run(step, cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT,
                                timeout=CORE_TIMEOUT_S).returncode
        if rc:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-5:]
            log(f"  core: FAILED ({log_path})")
            return {"error": f"{' '.join(step[-3:])} failed: " + " / ".join(tail)}
    groups: dict[str, Any] = {}
    for g in CORE_GROUPS:
        for est in sorted((crit / g).glob("*/new/estimates.json")):
            try:
                bid = json.loads((est.parent / "benchmark.json").read_text())["function_id"]
            except (OSError, ValueError, KeyError):
                bid = None
            med = json.loads(est.read_text())["median"]["point_estimate"]
            groups.setdefault(g, {})[bid or est.parent.parent.name] = {"median_ns": med}
            log(f"  core {g}/{bid}: median {med:,.0f} ns")
    if not groups.get("route"):
        return {"error": f"no estimates under {crit / 'route'}"}
    return {"groups": groups}


# ------------------------------------------------------------------ the run

def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description="f3dx_router benchmark", epilog="settings (--set): "
                                 + ", ".join(f"{k}={v}" for k, v in SETTINGS.items()))
    ap.add_argument("--smoke", action="store_true",
                    help="a few hundred calls per measure, short throughput points, one run")
    ap.add_argument("--runs", type=int, default=None,
                    help="full runs (default 3, or 1 with --smoke); ratios are their median")
    ap.add_argument("--out", type=Path, default=None,
                    help="where RESULTS.md and results.json go (default bench/, or "
                         "bench/smoke/ with --smoke)")
    ap.add_argument("--only", default="", help="comma-separated contenders (default: all)")
    ap.add_argument("--skip", default="", help="comma-separated measures to skip: "
                    + ",".join(MEASURES))
    ap.add_argument("--measures", default="",
                    help="comma-separated measures to run (default: all); some alone write "
                         "their own file (bench/README.md)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="change one setting (a list: comma-separated)")
    a = ap.parse_args()
    settings = {**SETTINGS, **(SMOKE if a.smoke else {})}
    for kv in a.set:
        key, _, value = kv.partition("=")
        if key not in SETTINGS:
            ap.error(f"unknown setting {key!r}")
        kind = type(SETTINGS[key])
        settings[key] = [int(x) for x in value.split(",") if x] if kind is list else kind(value)
    vars(a).update(settings)
    a.runs = a.runs or (1 if a.smoke else 3)
    a.out = a.out or (HERE / "smoke" if a.smoke else HERE)
    return a


def run_once(args: argparse.Namespace, names: dict[str, list[str]], skip: set[str],
             logs: Path, index: int) -> dict[str, Any]:
    """One full run: a fresh nginx, every measure not skipped."""
    t0 = time.perf_counter()
    run: dict[str, Any] = {"index": index, "loadavg_start": os.getloadavg()}
    failed: dict[str, str] = {}
    workers: dict[str, Worker] = {}
    nginx = upstream.Nginx()
    calls = names["calls"]
    try:
        nginx.start()
        log(f"nginx: ok {nginx.ok_url}, 429 {nginx.fail_url}")
        if {"latency", "failover", "throughput"} - skip:
            workers, run["setup"] = lib.start_workers(calls, nginx.ok_url, nginx.fail_url, logs,
                                                      "", failed)
        if "latency" not in skip:
            log("== sequential latency, one provider ==")
            run["latency"] = measure_latency(workers, "call", args, failed, nginx)
        if "failover" not in skip:
            log("== failover: 429 (no Retry-After) then 200 ==")
            run["failover"] = measure_latency(workers, "failover", args, failed, nginx)
        if "throughput" not in skip:
            log("== throughput: threads sharing one client/router ==")
            run["throughput"] = measure_throughput(workers, args, failed, nginx)
        lib.stop_all(workers)
        mine = ROUTER_NAME in calls
        if "tput_health" not in skip and mine:
            log("== throughput: f3dx_router, health tracking on vs off ==")
            run["tput_health"] = measure_tput_health(args, nginx, logs)
        if "async" not in skip:
            log(f"== async: one event loop, {args.async_concurrency} concurrent calls ==")
            run["async"] = asyncbench.measure(args, nginx, logs, names["async"], measure_latency)
        if "worker" not in skip:
            log("== Cloudflare Worker: wrangler dev, f3dx worker vs JavaScript floors ==")
            run["worker"] = measure_worker(args, nginx, logs)
        if "import" not in skip:
            log("== import time (fresh interpreter, median) ==")
            run["import"] = measure_imports([n for n in calls if n in contenders.IMPORTS
                                             and n not in AUX], args.import_repeats)
        if "rss" not in skip:
            log(f"== peak RSS after {args.rss_calls} calls (cap {args.rss_max_s:.0f}s) ==")
            run["rss"] = measure_rss([n for n in calls if n not in AUX and n not in failed],
                                     nginx, args, logs)
        if "tail" not in skip and mine:
            log("== tail experiment (f3dx_router, heavy-tailed mock) ==")
            run["tail"] = measure_tail(args, logs)
        if "degrade" not in skip and mine:
            log(f"== degradation: A {args.degrade_frac:.0%} 503 for {args.degrade_bad_s:g} s, "
                "health off vs on ==")
            run["degrade"] = degrade.measure(args, logs)
        if "table" not in skip and mine:
            log("== routing table: 200 groups, 600 deployments vs one provider ==")
            run["table"] = measure_table(args, nginx, logs)
        if "stream" not in skip:
            log(f"== streaming: {args.stream_chunks} chunks, no delay (nginx) and "
                f"{args.stream_delay_ms:g} ms before each (mock); then the Worker ==")
            run["stream"] = measure_stream(args, names["stream"], logs)
    finally:
        lib.stop_all(workers)
        nginx.stop()
    run.update(failed=failed, loadavg_end=os.getloadavg(), wall_s=time.perf_counter() - t0)
    return run


def main() -> int:
    args = parse_args()
    names = {"calls": contenders.CONTENDERS + contenders.AUX,
             "stream": streaming.CONTENDERS + streaming.AUX,
             "async": asyncbench.ASYNC_CONTENDERS + asyncbench.SYNC_CONTENDERS}
    if args.only:
        wanted = args.only.split(",")
        known = {n for group in names.values() for n in group}
        if set(wanted) - known:
            sys.exit(f"unknown contenders: {sorted(set(wanted) - known)}; known: {sorted(known)}")
        names = {k: [n for n in group if n in wanted] for k, group in names.items()}
    skip = set(filter(None, args.skip.split(",")))
    only = set(filter(None, args.measures.split(",")))
    if (skip | only) - set(MEASURES):
        sys.exit(f"unknown measures: {sorted((skip | only) - set(MEASURES))}; "
                 f"known: {list(MEASURES)}")
    if only:
        skip |= set(MEASURES) - only
    measured = [m for m in MEASURES if m not in skip]
    logs = args.out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    for f in logs.glob("*.log"):
        f.unlink()

    t_start = time.perf_counter()
    results: dict[str, Any] = {"mode": "smoke" if args.smoke else "full",
                               "settings": {k: (str(v) if isinstance(v, Path) else v)
                                            for k, v in vars(args).items()},
                               "measures": measured, "runs": [],
                               "machine": machine_info(upstream.nginx_version())}
    # A run of some measures alone never overwrites the full results.
    path = args.out / report.output_names(measured)[1]

    def on_signal(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_signal)

    def save() -> None:
        results["machine"]["loadavg_end"] = os.getloadavg()
        results["wall_s"] = time.perf_counter() - t_start
        results["failed"] = {n: f"run {r['index'] + 1}: {why}" for r in results["runs"]
                             for n, why in r["failed"].items()}
        path.write_text(json.dumps(results))

    if "core" not in skip:
        log("== the core alone: cargo bench (criterion), once ==")
        try:
            results["core"] = measure_core(args, logs)
        except subprocess.TimeoutExpired as e:
            results["core"] = {"error": f"timed out after {e.timeout:.0f}s"}
    if "worker" not in skip:
        log("== the Worker's upload size ==")
        results["worker_size"] = measure_worker_size(logs)
    for i in range(args.runs):
        log(f"==== run {i + 1} of {args.runs} ====")
        # Peak RSS (no target, minutes) and the degradation scenario (2
        # minutes) in the first run only, unless asked for by name.
        later = {"rss"} | (set() if "degrade" in only else {"degrade"})
        results["runs"].append(run_once(args, names, skip | (later if i else set()), logs, i))
        save()
        log(f"wrote {path} (run {i + 1} took {results['runs'][-1]['wall_s']:.0f}s)")
    md = report.write_md(results, args.out)
    log(f"wrote {md}; the contract's ratios (median over the runs):")
    for line in report.ratio_lines(results["runs"]):
        print(f"  {line}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
