#!/usr/bin/env python3
"""The benchmark: f3dx_router against the floor and the incumbents.

Run it through ``bash bench/run.sh`` (which prepares ``bench/.venv`` and
nginx); this file expects that venv's interpreter. Options: ``--help``;
bench/README.md lists the measures, docs/benchmarks.md the method.

Once per invocation: the core's criterion benchmark and the Worker's upload
size. Then ``--runs`` runs (3, or 1 with ``--smoke``), each with a fresh
private nginx on 127.0.0.1 and each contender in its own worker process
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
import select
import shutil
import signal
import statistics
import subprocess
import sys
import threading
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
import report  # noqa: E402
import streaming  # noqa: E402
import upstream  # noqa: E402

ROOT = HERE.parent
CORE_BENCH = ROOT / "crates" / "f3dx-router-core" / "benches" / "routing.rs"
CORE_GROUPS = ("route", "core_parts")
MEASURES = ("latency", "failover", "throughput", "tput_health", "worker", "import", "rss",
            "tail", "degrade", "core", "stream", "async")

ROUTER_NAME = "f3dx_router"
ENV = dict(os.environ, LITELLM_LOCAL_MODEL_COST_MAP="True", PYTHONUNBUFFERED="1")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class WorkerError(RuntimeError):
    pass


class Worker:
    """worker.py in its own process group, one JSON command at a time."""

    def __init__(self, name: str, ok_url: str, fail_url: str, stderr_path: Path) -> None:
        self.name = name
        self.stderr = open(stderr_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "worker.py"), name, ok_url, fail_url],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr,
            text=True, env=ENV, start_new_session=True,
        )

    def cmd(self, timeout: float, **command: Any) -> dict[str, Any]:
        assert self.proc.stdin and self.proc.stdout
        if self.proc.poll() is not None:
            raise WorkerError(f"worker exited with {self.proc.returncode}")
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            self.stop()
            raise WorkerError(f"{command['op']} timed out after {timeout:.0f}s")
        line = self.proc.stdout.readline()
        if not line:
            raise WorkerError(f"worker exited with {self.proc.wait(5)} (see logs/{self.name}.log)")
        out = json.loads(line)
        if not out.get("ok"):
            raise WorkerError(out.get("error", "unknown error"))
        return out

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin
                self.proc.stdin.write('{"op": "quit"}\n')
                self.proc.stdin.flush()
                self.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired, BrokenPipeError):
                pass
        upstream.stop_group(self.proc)  # type: ignore[arg-type]
        self.stderr.close()


def pct(samples: list[float], q: float) -> float:
    """Percentile with linear interpolation (numpy's default)."""
    s = sorted(samples)
    if not s:
        return float("nan")
    k = (len(s) - 1) * q / 100.0
    f = math.floor(k)
    c = min(f + 1, len(s) - 1)
    return s[f] + (s[c] - s[f]) * (k - f)


def nearest_rank(samples: list[float], q: float) -> float:
    """The sample at rank ceil(q% of n): a value that was observed."""
    s = sorted(samples)
    return s[max(0, math.ceil(len(s) * q / 100.0) - 1)]


def summary(samples: list[float]) -> dict[str, float]:
    return {"n": len(samples), "p50": pct(samples, 50), "p90": pct(samples, 90),
            "p95": pct(samples, 95), "p99": pct(samples, 99), "p99.9": pct(samples, 99.9),
            "mean": statistics.fmean(samples) if samples else float("nan"),
            "max": max(samples) if samples else float("nan")}


# ----------------------------------------------------------------- machine

def machine_info(nginx_ver: str) -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    versions: dict[str, str | None] = {}
    for dist in ("httpx", "f3dx", "litellm", "f3dx-router", "openai"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    versions["python"] = platform.python_version()
    versions["nginx"] = nginx_ver
    node = shutil.which("node")
    versions["node"] = subprocess.run([node, "--version"], capture_output=True,
                                      text=True).stdout.strip() if node else None
    versions["wrangler"] = cfworker.wrangler_version()
    repo = HERE.parent
    commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--", ".",
                            ":(exclude)bench"], capture_output=True, text=True).stdout.strip()
    return {"date_utc": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "nproc": os.cpu_count(), "cpu": cpu, "mem": mem, "kernel": platform.release(),
            "loadavg_start": os.getloadavg(), "versions": versions,
            "commit": commit + (" (modified)" if dirty else "")}


# ----------------------------------------------------------------- measures

def measure_latency(workers: dict[str, Worker], variant: str, args: argparse.Namespace,
                    failed: dict[str, str], nginx: upstream.Nginx) -> dict[str, Any]:
    """Rounds of sequential calls, the contender order rotated each round."""
    names = [n for n in workers if n not in failed
             and (variant == "call" or n in contenders.HAS_FAILOVER)]
    out: dict[str, Any] = {n: {"samples_us": [], "rounds": [], "cpu_us_per_call": []}
                           for n in names}
    per_round = max(1, args.calls // args.rounds)
    for rnd in range(args.rounds):
        order = names[rnd % len(names):] + names[:rnd % len(names)] if names else []
        for name in order:
            if name in failed:
                continue
            before = nginx.requests()
            slow = name == "litellm"
            try:
                r = workers[name].cmd(
                    timeout=args.max_s_per_measure + 120, op="latency", variant=variant,
                    warmup=args.warmup if rnd == 0
                    else max(1, args.warmup // 10),
                    n=per_round, max_s=args.max_s_per_measure / args.rounds if slow
                    else args.max_s_per_measure)
            except WorkerError as e:
                failed[name] = f"{variant} latency: {e}"
                log(f"  {name}: FAILED {e}")
                continue
            s = out[name]
            s["samples_us"].extend(r["samples_us"])
            s["rounds"].append(summary(r["samples_us"]))
            s["cpu_us_per_call"].append(r["cpu_us_per_call"])
            # Upstream requests per call (1 for a call, 2 for a failover),
            # the check call and the warm-up calls included.
            s["upstream_requests"] = s.get("upstream_requests", 0) + nginx.requests() - before
            s["calls_incl_warmup"] = s.get("calls_incl_warmup", 0) + r["n"] + r["untimed"]
            log(f"  {variant} round {rnd + 1}/{args.rounds} {name}: n={r['n']} "
                f"p50={pct(r['samples_us'], 50):.0f}us p99={pct(r['samples_us'], 99):.0f}us")
    for name in list(out):
        if not out[name]["samples_us"]:
            del out[name]
            continue
        out[name]["summary"] = summary(out[name]["samples_us"])
        out[name]["cpu_us_per_call"] = statistics.median(out[name]["cpu_us_per_call"])
    return out


def measure_throughput(workers: dict[str, Worker], args: argparse.Namespace,
                       failed: dict[str, str], nginx: upstream.Nginx) -> dict[str, Any]:
    """Each point in passes, the contender order rotated each pass; the
    median pass is reported (a burst of load elsewhere hits one pass)."""
    out: dict[str, Any] = {}
    k = 0
    for threads in args.threads:
        runs: dict[str, list[dict[str, Any]]] = {}
        for _ in range(args.tput_passes):
            names = [n for n in workers if n not in failed]
            order = names[k % len(names):] + names[:k % len(names)] if names else []
            k += 1
            for name in order:
                try:
                    conns0, reqs0 = nginx.counters()
                    r = workers[name].cmd(timeout=args.tput_seconds + 180, op="throughput",
                                          threads=threads, seconds=args.tput_seconds)
                    conns1, reqs1 = nginx.counters()
                    # New upstream connections per 1000 requests over the pass
                    # (its warm-up calls included): a pool too small for the
                    # threads shows up here as reconnects.
                    r["new_conns_per_1k"] = (conns1 - conns0) / max(1, reqs1 - reqs0) * 1000
                except WorkerError as e:
                    out.setdefault(name, {})[str(threads)] = {"error": str(e)}
                    log(f"  {name} x{threads}: FAILED {e}")
                    if "timed out" in str(e):
                        failed[name] = f"throughput x{threads}: {e}"
                    continue
                runs.setdefault(name, []).append(r)
        for name, rs in runs.items():
            rs.sort(key=lambda r: r["rps"])
            mid = rs[len(rs) // 2]
            out.setdefault(name, {})[str(threads)] = {
                "rps": mid["rps"], "cpu_us_per_call": mid["cpu_us_per_call"],
                "passes_rps": [r["rps"] for r in rs],
                "new_conns_per_1k": mid["new_conns_per_1k"],
                "error_count": sum(r["error_count"] for r in rs),
                "errors": [e for r in rs for e in r["errors"]][:3]}
            d = out[name][str(threads)]
            log(f"  throughput {name} x{threads}: {d['rps']:.0f} calls/s (passes: "
                + ", ".join(f"{x:.0f}" for x in d["passes_rps"])
                + f"; {d['new_conns_per_1k']:.1f} new connections per 1000 calls)"
                + (f" ({d['error_count']} errors: {d['errors'][:1]})" if d["error_count"] else ""))
    return out


def measure_tput_health(args: argparse.Namespace, nginx: upstream.Nginx,
                        logs: Path) -> dict[str, Any]:
    """f3dx_router with health tracking on (the default) and off
    (``health=False``), side by side: the throughput measure's passes (order
    rotated each pass, median pass) at --health-threads. Health keeps one
    mutex per router, taken on every outcome: issue 11 asks that 16 threads
    lose no throughput to it."""
    names = [ROUTER_NAME, contenders.HEALTH_OFF]
    workers = {n: Worker(n, nginx.ok_url, nginx.fail_url, logs / f"tput-health-{n}.log")
               for n in names}
    failed: dict[str, str] = {}
    out: dict[str, Any] = {"threads": args.health_threads, "passes": args.health_passes,
                           "seconds": args.tput_seconds}
    try:
        for n, w in workers.items():
            try:
                w.cmd(timeout=180, op="setup")
            except WorkerError as e:
                failed[n] = f"setup: {e}"
                log(f"  tput_health setup {n}: FAILED {e}")
        sub = argparse.Namespace(**{**vars(args), "threads": args.health_threads,
                                    "tput_passes": args.health_passes})
        out["throughput"] = measure_throughput(
            {n: w for n, w in workers.items() if n not in failed}, sub, failed, nginx)
    finally:
        for w in workers.values():
            w.stop()
    tp = out["throughput"]
    out["ratio_on_off"] = {}
    for t in args.health_threads:
        on = tp.get(ROUTER_NAME, {}).get(str(t), {}).get("rps")
        off = tp.get(contenders.HEALTH_OFF, {}).get(str(t), {}).get("rps")
        if on and off:
            out["ratio_on_off"][str(t)] = on / off
            log(f"  tput_health x{t}: health on {on:.0f} calls/s, off {off:.0f}: "
                f"on/off {on / off:.3f}")
    out["failed"] = failed
    return out


def measure_imports(names: list[str], repeats: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in names:
        stmt = contenders.IMPORTS[name]
        code = ("import time; t = time.perf_counter(); " + stmt +
                "; print(time.perf_counter() - t)")
        times = []
        err = None
        for i in range(repeats + 1):  # the first run only warms the page cache
            p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                               env=ENV, timeout=120)
            if p.returncode != 0:
                err = p.stderr.strip().splitlines()[-1] if p.stderr.strip() else f"exit {p.returncode}"
                break
            if i:
                times.append(float(p.stdout.strip().splitlines()[-1]) * 1000)
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
            r = w.cmd(timeout=args.rss_max_s + 120, op="rss", n=args.rss_calls,
                      max_s=args.rss_max_s)
            r["rss_after_setup_mib"] = setup["rss_after_setup_mib"]
            out[name] = r
            log(f"  rss {name}: {r['peak_rss_mib']:.1f} MiB after {r['calls']} calls "
                f"({r['seconds']:.1f}s; {setup['rss_after_setup_mib']:.1f} MiB after setup)")
        except WorkerError as e:
            out[name] = {"error": str(e)}
            log(f"  rss {name}: FAILED {e}")
        finally:
            w.stop()
    return out


def measure_tail(args: argparse.Namespace, logs: Path) -> dict[str, Any]:
    tail = {"mode": "tail", "delay_ms": args.tail_fast_ms, "slow_ms": args.tail_slow_ms,
            "slow_frac": args.tail_slow_frac}
    mock = upstream.bench_mocks(a={**tail, "seed": 1}, b={**tail, "seed": 2})
    w = Worker("f3dx_router", "http://127.0.0.1:9/v1", "http://127.0.0.1:9/v1",
               logs / "tail.log")
    out: dict[str, Any] = {"mock": {"fast_ms": args.tail_fast_ms, "slow_ms": args.tail_slow_ms,
                                    "slow_frac": args.tail_slow_frac}}
    try:
        base = {"op": "tail", "urls": [mock.base_url("a"), mock.base_url("b")],
                "stats_url": mock.stats_url(),
                "warmup": args.tail_warmup, "n": args.tail_calls, "max_s": args.tail_max_s}
        runs: list[tuple[str, dict[str, Any]]] = [
            ("no hedging", {"policy": "sequential"}),
            ("hedged K=2, immediate", {"policy": "hedged", "hedge_k": 2, "delay_ms": 0}),
        ]
        variants: dict[str, Any] = {}
        for label, extra in runs:
            variants[label] = w.cmd(timeout=args.tail_max_s + 120, **base, **extra)
            _log_tail(label, variants[label])
        # Delayed hedging at the observed p95 of the unhedged run (nearest
        # rank, rounded up to whole ms: hedge_delay_ms is an integer).
        nohedge = variants["no hedging"]["samples_us"]
        p95_ms = nearest_rank(nohedge, 95) / 1000.0
        midpoint = (args.tail_fast_ms + args.tail_slow_ms) / 2
        note = None
        if p95_ms >= midpoint:
            # With 5% slow calls the sample p95 lands in the slow mode about
            # half the time, and a hedge at 200 ms would never fire. The
            # population p95 of this mock is the top of its fast mode: use
            # that (the p99 of the fast-mode samples, robust to one outlier).
            fast = [x for x in nohedge if x / 1000.0 < midpoint]
            top = nearest_rank(fast, 99) / 1000.0
            slow_pct = 100.0 * (len(nohedge) - len(fast)) / len(nohedge)
            note = (f"the sample p95, {p95_ms:.1f} ms, fell in the slow mode ({slow_pct:.1f}% of "
                    f"the calls were slow); used the top of the fast mode instead (p99 of the "
                    f"fast-mode calls: {top:.2f} ms)")
            p95_ms = top
        delay = max(1, math.ceil(p95_ms))
        label = f"hedged K=2, delay {delay} ms (p95)"
        variants[label] = w.cmd(timeout=args.tail_max_s + 120, **base, policy="hedged",
                                hedge_k=2, delay_ms=delay)
        _log_tail(label, variants[label])
        # Adaptive (issue 11): the router's own p90, default budget (0.1) and
        # fallback (1000 ms). It waits the fallback until the first provider
        # has 20 successes, so its warm-up is never shorter than that (with a
        # margin); the timed calls come after it, as for the other variants.
        auto = variants[AUTO] = w.cmd(timeout=args.tail_max_s + 120,
                                      **{**base, "warmup": max(args.tail_warmup, AUTO_WARMUP)},
                                      policy="hedged", hedge_k=2, delay_ms="auto")
        auto["warmup"] = max(args.tail_warmup, AUTO_WARMUP)
        end, warm = auto["stats_end"], auto["stats_after_warmup"]
        auto["hedges_timed"] = {k: end["hedges"][k] - warm["hedges"].get(k, 0)
                                for k in end["hedges"]}
        auto["p90_used_ms"] = {n: d.get("p90") for n, d in end["latency_ms"].items()}
        _log_tail(AUTO, auto)
        log(f"  tail auto: stats hedges at the end {end['hedges']} (timed calls: "
            f"{auto['hedges_timed']}); providers' p90 at the end {auto['p90_used_ms']} ms, "
            f"after the warm-up "
            f"{ {n: d.get('p90') for n, d in warm['latency_ms'].items()} } ms")
        for v in variants.values():
            v["summary"] = summary(v["samples_us"])
            v["extra_pct"] = (v["upstream_requests"] / v["n"] - 1) * 100
        out.update({"variants": variants,
                    "observed_p95_ms": nearest_rank(nohedge, 95) / 1000.0,
                    "delay_ms": delay, "delay_note": note})
    except WorkerError as e:
        out["error"] = str(e)
        log(f"  tail: FAILED {e}")
    finally:
        w.stop()
        mock.close()
    return out


AUTO = "hedged K=2, auto"
AUTO_WARMUP = 30  # > the 20 successes "auto" needs before it trusts its p90


def _log_tail(label: str, r: dict[str, Any]) -> None:
    s = r["samples_us"]
    log(f"  tail {label}: n={r['n']} p50={pct(s, 50) / 1000:.2f}ms p99={pct(s, 99) / 1000:.2f}ms "
        f"p99.9={pct(s, 99.9) / 1000:.2f}ms upstream={r['upstream_requests']} "
        f"(+{(r['upstream_requests'] / r['n'] - 1) * 100:.1f}%)")


# ----------------------------------------------------- the Cloudflare Worker

def rotated(names: list[str], k: int) -> list[str]:
    return names[k % len(names):] + names[:k % len(names)] if names else []


def measure_worker_size(logs: Path) -> dict[str, Any]:
    why = cfworker.missing()
    if why:
        return {"error": why}
    out: dict[str, Any] = cfworker.upload_size()
    if os.environ.get("BENCH_WORKER_BUILD_ERROR"):  # set by run.sh
        out["build_error"] = os.environ["BENCH_WORKER_BUILD_ERROR"]
        log(f"  worker: the build failed ({out['build_error']}): measuring the previous build")
    out.update(cfworker.dry_run_size(logs / "wrangler-dry-run.log"))
    log(f"  worker upload: wasm {out['wasm_bytes']:,} B + JS {out['js_bytes']:,} B; gzip -9 "
        f"{out['gzip_total']:,} B; wrangler deploy --dry-run: "
        + (f"{out['dry_run_total_kib']} KiB, gzip {out['dry_run_gzip_kib']} KiB"
           if "dry_run_gzip_kib" in out else out.get("dry_run_error", "?")))
    return out


def measure_worker(args: argparse.Namespace, nginx: upstream.Nginx, logs: Path) -> dict[str, Any]:
    """The f3dx worker next to the JavaScript floors, in one `wrangler dev`."""
    why = cfworker.missing()
    if why:
        log(f"  worker: SKIPPED: {why}")
        return {"error": why}
    out: dict[str, Any] = {}
    wb = None
    try:
        for attempt in (1, 2):
            wb = cfworker.WranglerBench(nginx.ok_url, nginx.fail_url, logs / "wrangler.log")
            out["start_s"] = wb.start()
            out["inspector"] = wb.inspector_target()
            out["inspector_on_idle"] = out["inspector"] == wb.idle_name
            log(f"  wrangler dev ready in {out['start_s']:.1f}s on port {wb.port}; "
                f"its inspector on {out['inspector']}")
            if out["inspector_on_idle"] or attempt == 2:
                break
            log("  the inspector is on a measured worker: restarting wrangler dev")
            wb.stop()
        assert wb is not None
        out["latency"] = worker_latency(wb, nginx, args)
        out["throughput"] = worker_throughput(wb, nginx, args)
    except Exception as e:  # noqa: BLE001
        out["error"] = f"{type(e).__name__}: {e}"
        log(f"  worker: FAILED {out['error']}")
    finally:
        if wb is not None:
            wb.stop()
    return out


def worker_latency(wb: cfworker.WranglerBench, nginx: upstream.Nginx,
                   args: argparse.Namespace) -> dict[str, Any]:
    """Sequential calls through the dispatcher, one keep-alive connection per
    target, in rounds with the order rotated; the CPU time of wrangler and
    workerd over each block of calls, per call."""
    targets = cfworker.RUNTIME + cfworker.CALL + cfworker.FAILOVER + cfworker.SAMEWORK
    clients = {t: cfworker.Client(wb.port, t) for t in targets}
    out: dict[str, Any] = {t: {"samples_us": [], "rounds": [], "cpu_us_per_call": [],
                               "upstream_requests": 0, "calls_incl_warmup": 0, "new_conns": 0}
                           for t in targets}
    per_round = max(1, args.worker_calls // args.worker_rounds)
    pc = time.perf_counter_ns
    try:
        for rnd in range(args.worker_rounds):
            for t in rotated(targets, rnd):
                c = clients[t]
                warm = args.worker_warmup if rnd == 0 else max(1, args.worker_warmup // 10)
                conns0, reqs0 = nginx.counters()
                for _ in range(warm):
                    c.call()
                samples: list[float] = []
                cpu0 = wb.cpu_seconds()
                deadline = time.perf_counter() + args.max_s_per_measure
                for _ in range(per_round):
                    t0 = pc()
                    c.call()
                    samples.append((pc() - t0) / 1000.0)
                    if t0 / 1e9 > deadline and len(samples) >= 10:
                        break
                cpu = wb.cpu_seconds() - cpu0
                conns1, reqs1 = nginx.counters()
                d = out[t]
                d["samples_us"].extend(samples)
                d["rounds"].append(summary(samples))
                d["cpu_us_per_call"].append(cpu / len(samples) * 1e6)
                d["upstream_requests"] += reqs1 - reqs0
                d["calls_incl_warmup"] += warm + len(samples)
                d["new_conns"] += conns1 - conns0
                log(f"  worker round {rnd + 1}/{args.worker_rounds} {t}: n={len(samples)} "
                    f"p50={pct(samples, 50):.0f}us p99={pct(samples, 99):.0f}us "
                    f"wrangler CPU/call={cpu / len(samples) * 1e6:.0f}us")
    finally:
        for c in clients.values():
            c.close()
    for d in out.values():
        d["summary"] = summary(d["samples_us"])
        d["cpu_us_per_call"] = statistics.median(d["cpu_us_per_call"])
    return out


def worker_pass(wb: cfworker.WranglerBench, target: str, threads: int,
                seconds: float) -> dict[str, Any]:
    """T threads, each with its own keep-alive connection, call one target in
    a loop for S seconds (after one untimed call each)."""
    counts = [0] * threads
    errors: list[str] = []
    box: dict[str, float] = {}

    def start_clock() -> None:
        box["t0"] = time.perf_counter()
        box["deadline"] = box["t0"] + seconds
        box["cpu0"] = wb.cpu_seconds()

    ready = threading.Barrier(threads + 1, action=start_clock)

    def run(i: int) -> None:
        c = cfworker.Client(wb.port, target)
        try:
            try:
                c.call()
            except Exception as e:  # noqa: BLE001
                errors.append(repr(e))
            ready.wait(timeout=120)
            deadline, n = box["deadline"], 0
            try:
                while time.perf_counter() < deadline:
                    c.call()
                    n += 1
            except Exception as e:  # noqa: BLE001
                errors.append(repr(e))
            counts[i] = n
        finally:
            c.close()

    ts = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(threads)]
    for t in ts:
        t.start()
    ready.wait(timeout=120)
    for t in ts:
        t.join(timeout=seconds + 60)
    wall = time.perf_counter() - box["t0"]
    cpu = wb.cpu_seconds() - box["cpu0"]
    total = sum(counts)
    return {"calls": total, "wall_s": wall, "rps": total / wall if wall else 0.0,
            "cpu_us_per_call": cpu / total * 1e6 if total else None,
            "errors": errors[:3], "error_count": len(errors)}


def worker_throughput(wb: cfworker.WranglerBench, nginx: upstream.Nginx,
                      args: argparse.Namespace) -> dict[str, Any]:
    targets = cfworker.CALL + cfworker.FAILOVER
    out: dict[str, Any] = {}
    k = 0
    for threads in args.worker_threads:
        runs: dict[str, list[dict[str, Any]]] = {}
        for _ in range(args.tput_passes):
            for t in rotated(targets, k):
                conns0, reqs0 = nginx.counters()
                r = worker_pass(wb, t, threads, args.tput_seconds)
                conns1, reqs1 = nginx.counters()
                r["new_conns_per_1k"] = (conns1 - conns0) / max(1, reqs1 - reqs0) * 1000
                runs.setdefault(t, []).append(r)
            k += 1
        for t, rs in runs.items():
            rs.sort(key=lambda r: r["rps"])
            mid = rs[len(rs) // 2]
            out.setdefault(t, {})[str(threads)] = {
                "rps": mid["rps"], "cpu_us_per_call": mid["cpu_us_per_call"],
                "passes_rps": [r["rps"] for r in rs], "new_conns_per_1k": mid["new_conns_per_1k"],
                "error_count": sum(r["error_count"] for r in rs),
                "errors": [e for r in rs for e in r["errors"]][:3]}
            d = out[t][str(threads)]
            log(f"  worker throughput {t} x{threads}: {d['rps']:.0f} calls/s (passes: "
                + ", ".join(f"{x:.0f}" for x in d["passes_rps"]) + ")"
                + (f" ({d['error_count']} errors: {d['errors'][:1]})" if d["error_count"] else ""))
    return out


# ------------------------------------------------------- streaming (issue 10)

def stream_variant(args: argparse.Namespace, variant: str) -> dict[str, Any]:
    """Calls, rounds, warm-up and the time cap per round of one variant."""
    if variant == "fast":
        rounds = max(1, args.stream_rounds)
        return {"calls": args.stream_calls, "rounds": rounds, "warmup": args.stream_warmup,
                "max_s": args.stream_max_s / rounds, "call_s": 0.05}
    rounds = max(1, args.stream_slow_rounds)
    call_s = args.stream_chunks * args.stream_delay_ms / 1000.0
    per_round = max(1, args.stream_slow_calls // rounds)
    return {"calls": args.stream_slow_calls, "rounds": rounds, "warmup": args.stream_slow_warmup,
            "max_s": per_round * call_s * 1.5 + 10, "call_s": call_s}


def stream_summary(d: dict[str, Any]) -> None:
    d["ttfc"] = summary(d["ttfc_us"])
    d["total"] = summary(d["total_us"])
    d["cpu_us_per_call"] = statistics.median(d["cpu_us_per_call"])


def measure_stream(args: argparse.Namespace, names: list[str], logs: Path) -> dict[str, Any]:
    """Streams read to their end, the time to the first chunk with text and to
    the end of each: every contender (its own worker process, in rounds with
    the order rotated) against nginx (no delay) and the mock provider's
    stream mode (a delay before each chunk); then the Worker streaming against a JavaScript worker
    that pipes the body through, in a `wrangler dev` of their own."""
    chunks = args.stream_chunks
    body = streaming.sse_body(chunks)
    nginx = upstream.SseNginx(body, workers=args.nginx_workers)
    mock: upstream.MockProviders | None = None
    out: dict[str, Any] = {"upstream": {"chunks": chunks, "delay_ms": args.stream_delay_ms,
                                        "body_bytes": len(body),
                                        "events": len(streaming.sse_events(chunks))}}
    failed: dict[str, str] = {}
    workers: dict[str, Worker] = {}
    try:
        nginx.start()
        mock = upstream.bench_mocks(
            stream={"mode": "stream", "delay_ms": args.stream_delay_ms, "chunks": chunks})
        slow_url = mock.base_url("stream")
        log(f"  stream upstreams: nginx {nginx.ok_url} ({len(body):,} B a stream), "
            f"mock {slow_url} ({args.stream_delay_ms:g} ms a chunk)")
        for name in names:
            workers[name] = Worker(name, nginx.ok_url, slow_url, logs / f"stream-{name}.log")
        setup: dict[str, Any] = {}
        for name, w in workers.items():
            try:
                r = w.cmd(timeout=180, op="stream_setup", chunks=chunks)
                setup[name] = {k: v for k, v in r.items() if k != "ok"}
                log(f"  stream setup {name}: {r['setup_s'] * 1000:.1f} ms")
            except WorkerError as e:
                failed[name] = f"stream setup: {e}"
                log(f"  stream setup {name}: FAILED {e}")
        out["setup"] = setup
        for variant in streaming.VARIANTS:
            out[variant] = stream_rounds(workers, variant, args, failed, nginx, mock)
        for w in workers.values():
            w.stop()
        workers.clear()
        why = cfworker.missing()
        if why:
            log(f"  stream worker: SKIPPED: {why}")
            out["worker"] = {"error": why}
        else:
            out["worker"] = stream_worker(args, nginx, mock, logs)
    finally:
        for w in workers.values():
            w.stop()
        if mock is not None:
            mock.close()
        nginx.stop()
    out["failed"] = failed
    return out


def stream_rounds(workers: dict[str, Worker], variant: str, args: argparse.Namespace,
                  failed: dict[str, str], nginx: upstream.SseNginx,
                  mock: upstream.MockProviders) -> dict[str, Any]:
    v = stream_variant(args, variant)
    names = [n for n in workers if n not in failed]
    out: dict[str, Any] = {n: {"ttfc_us": [], "total_us": [], "rounds": [],
                               "cpu_us_per_call": [], "upstream_requests": 0,
                               "calls_incl_warmup": 0} for n in names}
    per_round = max(1, v["calls"] // v["rounds"])
    count = nginx.requests if variant == "fast" else lambda: int(mock.stats()["requests"])
    for rnd in range(v["rounds"]):
        for name in rotated(names, rnd):
            if name in failed:
                continue
            warm = v["warmup"] if rnd == 0 else max(1, v["warmup"] // 10)
            before = count()
            try:
                r = workers[name].cmd(
                    timeout=v["max_s"] + (warm + 1) * v["call_s"] * 3 + 120, op="stream",
                    variant=variant, chunks=args.stream_chunks, warmup=warm, n=per_round,
                    max_s=v["max_s"])
            except WorkerError as e:
                failed[name] = f"stream {variant}: {e}"
                log(f"  {name}: FAILED {e}")
                continue
            d = out[name]
            d["ttfc_us"].extend(r["ttfc_us"])
            d["total_us"].extend(r["total_us"])
            d["rounds"].append({"ttfc": summary(r["ttfc_us"]), "total": summary(r["total_us"])})
            d["cpu_us_per_call"].append(r["cpu_us_per_call"])
            d["upstream_requests"] += count() - before
            d["calls_incl_warmup"] += r["n"] + r["untimed"]
            log(f"  stream {variant} round {rnd + 1}/{v['rounds']} {name}: n={r['n']} "
                f"first chunk p50={pct(r['ttfc_us'], 50):.0f}us "
                f"p99={pct(r['ttfc_us'], 99):.0f}us; whole p50={pct(r['total_us'], 50):.0f}us "
                f"p99={pct(r['total_us'], 99):.0f}us; CPU/call={r['cpu_us_per_call']:.0f}us")
    for name in list(out):
        if not out[name]["total_us"]:
            del out[name]
            continue
        stream_summary(out[name])
    return out


def stream_worker(args: argparse.Namespace, nginx: upstream.SseNginx,
                  mock: upstream.MockProviders, logs: Path) -> dict[str, Any]:
    """The f3dx worker streaming next to workers/pipe.js, in one `wrangler
    dev` (its dispatcher, hop and idle worker as in the worker measure):
    sequential streams, one keep-alive connection per target, in rounds with
    the order rotated; `null` and `hop` (whole small answers) measure the
    dispatch hop in the no-delay rounds."""
    out: dict[str, Any] = {}
    wb = None
    try:
        for attempt in (1, 2):
            wb = cfworker.StreamWranglerBench(nginx.ok_url, mock.base_url("stream"), args.stream_chunks,
                                              logs / "wrangler-stream.log")
            out["start_s"] = wb.start()
            out["inspector"] = wb.inspector_target()
            out["inspector_on_idle"] = out["inspector"] == wb.idle_name
            log(f"  stream wrangler dev ready in {out['start_s']:.1f}s on port {wb.port}; "
                f"its inspector on {out['inspector']}")
            if out["inspector_on_idle"] or attempt == 2:
                break
            log("  the inspector is on a measured worker: restarting wrangler dev")
            wb.stop()
        assert wb is not None
        for variant in streaming.VARIANTS:
            targets = list(cfworker.STREAM_PAIRS[variant])
            if variant == "fast":
                targets = cfworker.RUNTIME + targets
            out[variant] = stream_worker_rounds(wb, variant, targets, args, nginx, mock)
    except Exception as e:  # noqa: BLE001
        out["error"] = f"{type(e).__name__}: {e}"
        log(f"  stream worker: FAILED {out['error']}")
    finally:
        if wb is not None:
            wb.stop()
    return out


def stream_worker_rounds(wb: cfworker.StreamWranglerBench, variant: str, targets: list[str],
                         args: argparse.Namespace, nginx: upstream.SseNginx,
                         mock: upstream.MockProviders) -> dict[str, Any]:
    v = stream_variant(args, variant)
    clients: dict[str, Any] = {t: cfworker.Client(wb.port, t) if t in cfworker.RUNTIME
                               else cfworker.StreamClient(wb.port, t) for t in targets}
    out: dict[str, Any] = {t: {"ttfc_us": [], "total_us": [], "rounds": [], "cpu_us_per_call": [],
                               "upstream_requests": 0, "calls_incl_warmup": 0}
                           for t in targets}
    per_round = max(1, v["calls"] // v["rounds"])
    count = nginx.requests if variant == "fast" else lambda: int(mock.stats()["requests"])
    pc = time.perf_counter_ns
    try:
        for rnd in range(v["rounds"]):
            for t in rotated(targets, rnd):
                c = clients[t]
                runtime = t in cfworker.RUNTIME
                before = count()
                if not runtime:
                    c.check(args.stream_chunks)
                warm = v["warmup"] if rnd == 0 else max(1, v["warmup"] // 10)
                for _ in range(warm):
                    c.call()
                ttfc: list[float] = []
                total: list[float] = []
                cpu0 = wb.cpu_seconds()
                deadline = time.perf_counter() + v["max_s"]
                for _ in range(per_round):
                    t0 = pc()
                    first = c.call()
                    t1 = pc()
                    # A whole small answer (null, hop): its first chunk is its end.
                    ttfc.append(((t1 if runtime else first) - t0) / 1000.0)
                    total.append((t1 - t0) / 1000.0)
                    if t0 / 1e9 > deadline and len(total) >= 3:
                        break
                cpu = wb.cpu_seconds() - cpu0
                d = out[t]
                d["ttfc_us"].extend(ttfc)
                d["total_us"].extend(total)
                d["rounds"].append({"ttfc": summary(ttfc), "total": summary(total)})
                d["cpu_us_per_call"].append(cpu / len(total) * 1e6)
                d["upstream_requests"] += count() - before
                d["calls_incl_warmup"] += warm + len(total) + (0 if runtime else 1)
                log(f"  stream worker {variant} round {rnd + 1}/{v['rounds']} {t}: "
                    f"n={len(total)} first chunk p50={pct(ttfc, 50):.0f}us "
                    f"p99={pct(ttfc, 99):.0f}us; whole p50={pct(total, 50):.0f}us "
                    f"p99={pct(total, 99):.0f}us; wrangler CPU/call={cpu / len(total) * 1e6:.0f}us")
    finally:
        for c in clients.values():
            c.close()
    for d in out.values():
        stream_summary(d)
    return out


# ----------------------------------------------------- the core (criterion)

def cargo_step(argv: list[str], cwd: Path, log_path: Path, timeout: float,
               what: str) -> str | None:
    """Run one cargo command (target dir bench/.target), its output appended
    to `log_path`; None when it succeeded, else the error with the log's tail."""
    env = dict(os.environ, CARGO_TARGET_DIR=str(HERE / ".target"))
    with open(log_path, "a") as f:
        r = subprocess.run(argv, cwd=cwd, env=env, stdout=f, stderr=subprocess.STDOUT,
                           timeout=timeout)
    if r.returncode == 0:
        return None
    tail = log_path.read_text(errors="replace").strip().splitlines()[-5:]
    log(f"  {what} FAILED ({log_path})")
    return f"{what} failed: " + " / ".join(tail)

def measure_core(args: argparse.Namespace, logs: Path) -> dict[str, Any]:
    """`cargo bench -p f3dx-router-core --bench routing` once; the median
    time per iteration of each benchmark of the `route` and `core_parts`
    groups, from criterion's estimates.json."""
    rel = CORE_BENCH.relative_to(ROOT)
    if not CORE_BENCH.exists():
        log(f"  core: SKIPPED: {rel} does not exist")
        return {"skipped": f"{rel} does not exist (yet)"}
    cargo = shutil.which("cargo")
    if cargo is None:
        return {"skipped": "cargo not found"}
    crit = HERE / ".target" / "criterion"
    for g in CORE_GROUPS:  # never read a stale estimate
        shutil.rmtree(crit / g, ignore_errors=True)
    argv = [cargo, "bench", "-p", "f3dx-router-core", "--bench", "routing"]
    crit_args = ["--noplot"] + (["--warm-up-time", "0.5", "--measurement-time", "1"]
                                if args.smoke else [])
    out: dict[str, Any] = {"command": " ".join(["cargo"] + argv[1:] + ["--"] + crit_args)}
    log_path = logs / "core.log"
    log_path.write_text("")
    t0 = time.perf_counter()
    # The build yields to whatever else runs; the measurement does not.
    err = cargo_step(["nice", "-n", "10"] + argv + ["--no-run"], ROOT, log_path,
                     args.core_timeout_s, "cargo bench --no-run")
    out["build_s"] = time.perf_counter() - t0
    if err:
        return {**out, "error": err}
    t0 = time.perf_counter()
    err = cargo_step(argv + ["--"] + crit_args, ROOT, log_path, args.core_timeout_s,
                     "cargo bench")
    out["run_s"] = time.perf_counter() - t0
    if err:
        return {**out, "error": err}
    groups: dict[str, Any] = {}
    for g in CORE_GROUPS:
        for est in sorted((crit / g).glob("*/new/estimates.json")):
            e = json.loads(est.read_text())
            bid = est.parent.parent.name
            try:
                bid = json.loads((est.parent / "benchmark.json").read_text())["function_id"] or bid
            except (OSError, ValueError, KeyError):
                pass
            med = e["median"]
            groups.setdefault(g, {})[bid] = {
                "median_ns": med["point_estimate"],
                "median_ci_ns": [med["confidence_interval"]["lower_bound"],
                                 med["confidence_interval"]["upper_bound"]],
                "mean_ns": e["mean"]["point_estimate"]}
            log(f"  core {g}/{bid}: median {med['point_estimate']:,.0f} ns")
    if not groups.get("route"):
        return {**out, "error": f"no estimates under {crit / 'route'}"}
    out["groups"] = groups
    return out


# ------------------------------------------- the layers under the native path

def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description="f3dx_router benchmark (issue 4)")
    ap.add_argument("--smoke", action="store_true",
                    help="a few hundred calls per measure, short throughput points, one run")
    ap.add_argument("--runs", type=int, default=None,
                    help="full runs (default 3, or 1 with --smoke); each target is reported "
                         "as the median over the runs")
    ap.add_argument("--out", type=Path, default=None,
                    help="where RESULTS.md, results.json and the plots go "
                         "(default: bench/, or bench/smoke/ with --smoke)")
    ap.add_argument("--only", default="", help="comma-separated contenders (default: all)")
    ap.add_argument("--skip", default="",
                    help="comma-separated measures to skip: " + ",".join(MEASURES))
    ap.add_argument("--measures", default="",
                    help="comma-separated measures to run (default: all; the others are "
                         "skipped). `--measures stream` alone writes STREAM_RESULTS.md and "
                         "stream_results.json instead of RESULTS.md and results.json; any of "
                         "tail,degrade,tput_health alone (issue 11) ADAPTIVE_RESULTS.md and "
                         "adaptive_results.json; `--measures async` alone ASYNC_RESULTS.md and "
                         "async_results.json")
    ap.add_argument("--calls", type=int, default=2000, help="timed sequential calls per contender")
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=4,
                    help="latency rounds; contenders rotate between rounds")
    ap.add_argument("--max-s-per-measure", type=float, default=30.0,
                    help="time cap of one contender's latency measure (LiteLLM hits it)")
    ap.add_argument("--threads", default="1,4,16,64")
    ap.add_argument("--tput-seconds", type=float, default=1.0, help="seconds per pass")
    ap.add_argument("--tput-passes", type=int, default=3,
                    help="passes per throughput point (order rotated; median reported)")
    ap.add_argument("--worker-calls", type=int, default=2000,
                    help="timed sequential calls per Worker target (wrangler dev)")
    ap.add_argument("--worker-warmup", type=int, default=200)
    ap.add_argument("--worker-rounds", type=int, default=5)
    ap.add_argument("--worker-threads", default="1,4,16")
    ap.add_argument("--import-repeats", type=int, default=5)
    ap.add_argument("--rss-calls", type=int, default=100_000)
    ap.add_argument("--rss-max-s", type=float, default=60.0)
    ap.add_argument("--tail-calls", type=int, default=2000)
    ap.add_argument("--tail-warmup", type=int, default=50)
    ap.add_argument("--tail-max-s", type=float, default=90.0)
    ap.add_argument("--tail-fast-ms", type=float, default=5.0)
    ap.add_argument("--tail-slow-ms", type=float, default=200.0)
    ap.add_argument("--tail-slow-frac", type=float, default=0.05)
    ap.add_argument("--health-threads", default="1,16",
                    help="tput_health: thread counts, health on vs off")
    ap.add_argument("--health-passes", type=int, default=21,
                    help="tput_health: passes per point (order rotated; median reported)")
    ap.add_argument("--degrade-threads", type=int, default=4)
    ap.add_argument("--degrade-delay-ms", type=float, default=5.0,
                    help="degrade: both providers' answer time")
    ap.add_argument("--degrade-frac", type=float, default=0.4,
                    help="degrade: A's share of 503s during the bad spell")
    ap.add_argument("--degrade-warm-s", type=float, default=10.0)
    ap.add_argument("--degrade-bad-s", type=float, default=30.0)
    ap.add_argument("--degrade-after-min-s", type=float, default=10.0,
                    help="degrade: the loop runs at least this long after the recovery")
    ap.add_argument("--degrade-after-max-s", type=float, default=60.0,
                    help="degrade: and at most this long (stops earlier once A has served "
                         "calls again for --degrade-hold-s)")
    ap.add_argument("--degrade-hold-s", type=float, default=5.0)
    ap.add_argument("--core-timeout-s", type=float, default=1800.0,
                    help="cap of the criterion build, and of its run")
    ap.add_argument("--nginx-workers", type=int, default=1)
    ap.add_argument("--stream-chunks", type=int, default=streaming.CHUNKS,
                    help="content chunks per stream (4 words each)")
    ap.add_argument("--stream-delay-ms", type=float, default=5.0,
                    help="the delayed upstream's time before each chunk")
    ap.add_argument("--stream-calls", type=int, default=1000,
                    help="timed streams per contender and per Worker target, no delay")
    ap.add_argument("--stream-warmup", type=int, default=100)
    ap.add_argument("--stream-rounds", type=int, default=4)
    ap.add_argument("--stream-max-s", type=float, default=40.0,
                    help="time cap of one contender's no-delay streams (all rounds)")
    ap.add_argument("--stream-slow-calls", type=int, default=50,
                    help="timed streams per contender and per Worker target with the delay "
                         "(each takes chunks x delay: 1 s)")
    ap.add_argument("--stream-slow-warmup", type=int, default=2)
    ap.add_argument("--stream-slow-rounds", type=int, default=2)
    ap.add_argument("--async-concurrency", default="1,16,256",
                    help="async: concurrent calls from one event loop, per point")
    ap.add_argument("--async-seconds", type=float, default=1.5,
                    help="async: the timed window of a pass, after its warm-up")
    ap.add_argument("--async-warmup-s", type=float, default=0.5,
                    help="async: the untimed start of a pass (the same coroutines)")
    ap.add_argument("--async-passes", type=int, default=5,
                    help="async: passes per point (order rotated; median reported)")
    ap.add_argument("--async-sync-calls", type=int, default=3000,
                    help="async's sync pair: timed sequential calls per contender")
    ap.add_argument("--async-sync-warmup", type=int, default=200)
    ap.add_argument("--async-sync-rounds", type=int, default=10)
    ap.add_argument("--no-aux", action="store_true",
                    help="leave out the breakdown rows (floor+json, f3dx_router.route)")
    a = ap.parse_args()
    if a.smoke:
        a.calls, a.warmup, a.rounds = 300, 50, 3
        a.max_s_per_measure = 10.0
        a.tput_seconds, a.tput_passes = 0.5, 2
        a.worker_calls, a.worker_warmup, a.worker_rounds = 300, 30, 3
        a.import_repeats = 2
        a.rss_calls, a.rss_max_s = 3000, 10.0
        a.tail_calls, a.tail_warmup, a.tail_max_s = 300, 20, 30.0
        a.health_passes = 2
        # The ejection (30 s) outlasts this bad spell: A is back ~22 s after it.
        a.degrade_warm_s, a.degrade_bad_s, a.degrade_hold_s = 3.0, 8.0, 2.0
        a.degrade_after_min_s, a.degrade_after_max_s = 3.0, 30.0
        a.stream_calls, a.stream_warmup, a.stream_rounds, a.stream_max_s = 200, 20, 2, 20.0
        a.stream_slow_calls, a.stream_slow_warmup, a.stream_slow_rounds = 4, 1, 2
        a.async_seconds, a.async_warmup_s, a.async_passes = 0.5, 0.3, 1
        a.async_sync_calls, a.async_sync_warmup, a.async_sync_rounds = 300, 30, 2
    if a.runs is None:
        a.runs = 1 if a.smoke else 3
    if a.runs < 1:
        ap.error("--runs must be at least 1")
    if a.out is None:
        a.out = HERE / "smoke" if a.smoke else HERE
    a.threads = [int(t) for t in str(a.threads).split(",") if t]
    a.worker_threads = [int(t) for t in str(a.worker_threads).split(",") if t]
    a.health_threads = [int(t) for t in str(a.health_threads).split(",") if t]
    a.async_concurrency = [int(t) for t in str(a.async_concurrency).split(",") if t]
    return a


def run_once(args: argparse.Namespace, names: list[str], skip: set[str], logs: Path,
             index: int, stream_names: list[str] | None = None,
             async_names: list[str] | None = None) -> dict[str, Any]:
    """One full run: a fresh nginx, every measure not skipped."""
    t0 = time.perf_counter()
    run: dict[str, Any] = {"index": index, "loadavg_start": os.getloadavg()}
    failed: dict[str, str] = {}
    workers: dict[str, Worker] = {}
    nginx = upstream.Nginx(workers=args.nginx_workers)
    try:
        nginx.start()
        log(f"nginx: ok {nginx.ok_url}, 429 {nginx.fail_url}")
        if {"latency", "failover", "throughput"} - skip:
            for name in names:
                workers[name] = Worker(name, nginx.ok_url, nginx.fail_url, logs / f"{name}.log")
            setup: dict[str, Any] = {}
            for name, w in workers.items():
                try:
                    r = w.cmd(timeout=180, op="setup")
                    setup[name] = {k: v for k, v in r.items() if k != "ok"}
                    log(f"setup {name}: {r['setup_s'] * 1000:.1f} ms, "
                        f"RSS {r['rss_after_setup_mib']:.0f} MiB")
                except WorkerError as e:
                    failed[name] = f"setup: {e}"
                    log(f"setup {name}: FAILED {e}")
            run["setup"] = setup
        if "latency" not in skip:
            log("== sequential latency, one provider ==")
            run["latency"] = measure_latency(workers, "call", args, failed, nginx)
        if "failover" not in skip:
            log("== failover: 429 (no Retry-After) then 200 ==")
            run["failover"] = measure_latency(workers, "failover", args, failed, nginx)
        if "throughput" not in skip:
            log("== throughput: threads sharing one client/router ==")
            run["throughput"] = measure_throughput(workers, args, failed, nginx)
        for w in workers.values():
            w.stop()
        workers.clear()
        if "tput_health" not in skip and ROUTER_NAME in names:
            log("== throughput: f3dx_router, health tracking on vs off ==")
            run["tput_health"] = measure_tput_health(args, nginx, logs)
        if "async" not in skip:
            log(f"== async: one event loop, {args.async_concurrency} concurrent calls; "
                f"the openai SDK direct and through f3dx_router ==")
            run["async"] = asyncbench.measure(args, nginx, logs, async_names or [], Worker,
                                              measure_latency, log)
        if "worker" not in skip:
            log("== Cloudflare Worker: wrangler dev, f3dx worker vs JavaScript floors ==")
            run["worker"] = measure_worker(args, nginx, logs)
        if "import" not in skip:
            log("== import time (fresh interpreter, median) ==")
            run["import"] = measure_imports(
                [n for n in names if n in contenders.IMPORTS
                 and n not in ("floor+json", "f3dx_router.route")], args.import_repeats)
        if "rss" not in skip:
            log(f"== peak RSS after {args.rss_calls} calls (cap {args.rss_max_s:.0f}s) ==")
            run["rss"] = measure_rss(
                [n for n in names if n not in ("floor+json", "f3dx_router.route")
                 and n not in failed], nginx, args, logs)
        if "tail" not in skip and ("f3dx_router" in names):
            log("== tail experiment (f3dx_router, heavy-tailed mock) ==")
            run["tail"] = measure_tail(args, logs)
        if "degrade" not in skip and ROUTER_NAME in names:
            s = degrade.settings(args)
            log(f"== degradation: A {s['frac']:.0%} 503 for {s['bad_s']:g} s after "
                f"{s['warm_s']:g} s, health off vs on ==")
            run["degrade"] = degrade.measure(args, logs, Worker, log)
        if "stream" not in skip:
            log(f"== streaming: {args.stream_chunks} chunks, no delay (nginx) and "
                f"{args.stream_delay_ms:g} ms before each (mock); then the Worker ==")
            run["stream"] = measure_stream(args, stream_names or [], logs)
    finally:
        for w in workers.values():
            w.stop()
        nginx.stop()
    run["failed"] = failed
    run["loadavg_end"] = os.getloadavg()
    run["wall_s"] = time.perf_counter() - t0
    return run


def main() -> int:
    args = parse_args()
    names = contenders.CONTENDERS + ([] if args.no_aux else contenders.AUX)
    stream_names = streaming.CONTENDERS + ([] if args.no_aux else streaming.AUX)
    async_names = asyncbench.ASYNC_CONTENDERS + asyncbench.SYNC_CONTENDERS
    if args.only:
        wanted = args.only.split(",")
        unknown = set(wanted) - set(names) - set(stream_names) - set(async_names)
        if unknown:
            sys.exit(f"unknown contenders: {sorted(unknown)}; known: "
                     f"{sorted(set(names) | set(stream_names) | set(async_names))}")
        names = [n for n in names if n in wanted]
        stream_names = [n for n in stream_names if n in wanted]
        async_names = [n for n in async_names if n in wanted]
    skip = set(filter(None, args.skip.split(",")))
    only_measures = set(filter(None, args.measures.split(",")))
    unknown = (skip | only_measures) - set(MEASURES)
    if unknown:
        sys.exit(f"unknown measures: {sorted(unknown)}; known: {list(MEASURES)}")
    if only_measures:
        skip |= set(MEASURES) - only_measures
    measured = [m for m in MEASURES if m not in skip]
    args.out.mkdir(parents=True, exist_ok=True)
    logs = args.out / "logs"
    logs.mkdir(exist_ok=True)
    for f in logs.glob("*.log"):
        f.unlink()

    t_start = time.perf_counter()
    results: dict[str, Any] = {"mode": "smoke" if args.smoke else "full",
                               "settings": {k: (str(v) if isinstance(v, Path) else v)
                                            for k, v in vars(args).items()},
                               "measures": measured,
                               "runs": []}
    results["machine"] = machine_info(upstream.nginx_version())
    # The stream measure alone, issue 11's alone, or the async one alone never
    # overwrite the full results.
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
        # Peak RSS only in the first run: it is no target, and takes minutes.
        # Likewise the degradation scenario (2 minutes), unless asked for by name.
        later = {"rss"} | (set() if "degrade" in only_measures else {"degrade"})
        results["runs"].append(run_once(args, names, skip | (later if i else set()), logs, i,
                                        stream_names, async_names))
        save()
        log(f"wrote {path} (run {i + 1} took {results['runs'][-1]['wall_s']:.0f}s)")
    save()
    log(f"wrote {path} ({results['wall_s']:.0f}s)")

    md = report.write_all(results, args.out)
    log(f"wrote {md}; the contract's ratios (median over the runs):")
    for line in report.ratio_lines(results["runs"]):
        print(f"  {line}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
