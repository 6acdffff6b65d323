"""What every part of the benchmark shares: percentiles, ports and process
groups, the contender process (worker.py) and the loops that measure.

Three loops measure everything: ``timed`` (sequential calls, in the
contender's process or here against a Worker), ``rounds`` (``timed`` blocks
of every contender, the order rotated each round: latency and streams) and
``passes`` (calls/s at each load point, the order rotated each pass, the
median pass kept: throughput, async, the Worker's calls/s).
"""

from __future__ import annotations

import json
import math
import os
import resource
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
ENV = dict(os.environ, LITELLM_LOCAL_MODEL_COST_MAP="True", PYTHONUNBUFFERED="1")
API_KEY = "sk-bench"
TIMEOUT_S = 10.0
BODY: dict[str, Any] = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def provider(name: str, url: str, timeout_ms: int = int(TIMEOUT_S * 1000)) -> dict[str, Any]:
    """One f3dx_router provider entry on a bench upstream."""
    return {"name": name, "kind": "openai", "base_url": url, "api_key": API_KEY,
            "timeout_ms": timeout_ms}


# ------------------------------------------------------------------ numbers

def pct(samples: Iterable[float], q: float) -> float:
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
            "mean": sum(samples) / len(samples) if samples else float("nan"),
            "max": max(samples) if samples else float("nan")}


def rotated(names: list[str], k: int) -> list[str]:
    return names[k % len(names):] + names[:k % len(names)] if names else []


def cpu_seconds() -> float:
    """This process's CPU time, all threads (a runtime's helpers count)."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def status_mib(key: str = "VmHWM") -> float:
    """A size from /proc/self/status in MiB: by default the peak RSS of this
    process image (getrusage's ru_maxrss would keep the parent's peak across
    fork and exec)."""
    with open("/proc/self/status") as f:
        return next(int(ln.split()[1]) for ln in f if ln.startswith(key + ":")) / 1024.0


def pid_ticks(pid: int) -> tuple[int, int]:
    """(process group, utime + stime in clock ticks) of a process; (0, 0) when gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return 0, 0
    fields = stat[stat.rindex(")") + 2:].split()
    return int(fields[2]), int(fields[11]) + int(fields[12])


# ------------------------------------------------------ ports and processes

def free_port() -> int:
    """An ephemeral port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_listening(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def stop_group(proc: subprocess.Popen[Any], grace: float = 5.0,
               first: int = signal.SIGTERM) -> None:
    """Signal the process group of proc (SIGTERM), then SIGKILL it if it lingers."""
    for sig in (first, signal.SIGKILL):
        if proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=grace)
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


class WorkerError(RuntimeError):
    pass


class Worker:
    """worker.py (one contender) in its own process group, one JSON command at a time."""

    def __init__(self, name: str, ok_url: str, fail_url: str, stderr_path: Path) -> None:
        self.name = name
        self.stderr = open(stderr_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "worker.py"), name, ok_url, fail_url],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr,
            text=True, env=ENV, start_new_session=True)

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
        if not out.pop("ok", False):
            raise WorkerError(out.get("error", "unknown error"))
        return out

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin
                self.proc.stdin.write('{"op": "quit"}\n')
                self.proc.stdin.flush()
                self.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        stop_group(self.proc)
        self.stderr.close()


def start_workers(names: list[str], ok_url: str, fail_url: str, logs: Path, prefix: str,
                  failed: dict[str, str], op: str = "setup",
                  **command: Any) -> tuple[dict[str, Worker], dict[str, Any]]:
    """One Worker per name, each set up (``op``); a failure is recorded in
    ``failed`` and the others go on. Returns the workers and their setups."""
    workers = {n: Worker(n, ok_url, fail_url, logs / f"{prefix}{n}.log") for n in names}
    setup: dict[str, Any] = {}
    for n, w in workers.items():
        try:
            setup[n] = w.cmd(timeout=180, op=op, **command)
            log(f"  {prefix}setup {n}: {setup[n]['setup_s'] * 1000:.1f} ms")
        except WorkerError as e:
            failed[n] = f"{prefix}{op}: {e}"
            log(f"  {prefix}setup {n}: FAILED {e}")
    return workers, setup


def stop_all(workers: dict[str, Worker]) -> None:
    for w in workers.values():
        w.stop()
    workers.clear()


# ------------------------------------------------------------------ loops

SUMMARY_OF = {"samples_us": "summary", "ttfc_us": "ttfc", "total_us": "total"}


def timed(fn: Callable[[], Any], n: int, max_s: float, cpu: Callable[[], float] = cpu_seconds,
          first: Callable[[Any, int], int] | None = None) -> dict[str, Any]:
    """Up to n sequential calls (at most max_s seconds, at least 3), each timed:
    ``samples_us``; with ``first`` (the ns of a stream's first chunk, from the
    call's result and its end) ``ttfc_us`` and ``total_us`` instead."""
    total: list[float] = []
    ttfc: list[float] = []
    pc = time.perf_counter_ns
    cpu0, t_start = cpu(), time.perf_counter()
    deadline = t_start + max_s
    for _ in range(n):
        t0 = pc()
        r = fn()
        t1 = pc()
        total.append((t1 - t0) / 1000.0)
        if first is not None:
            ttfc.append((first(r, t1) - t0) / 1000.0)
        if t0 / 1e9 > deadline and len(total) >= 3:
            break
    out = {"n": len(total), "wall_s": time.perf_counter() - t_start,
           "cpu_us_per_call": (cpu() - cpu0) / len(total) * 1e6 if total else None}
    return {**out, "ttfc_us": ttfc, "total_us": total} if first else {**out, "samples_us": total}


def rounds(names: list[str], n_rounds: int, failed: dict[str, str], label: str,
           one: Callable[[str, int], dict[str, Any]]) -> dict[str, Any]:
    """``one(name, round)`` for every name, round after round with the order
    rotated; it returns ``timed``'s numbers plus ``upstream`` (upstream
    requests) and ``calls`` (every call, warm-up included). Per name: every
    sample, each round's summary, the median CPU per call."""
    out: dict[str, Any] = {}
    for rnd in range(n_rounds):
        for name in rotated([n for n in names if n not in failed], rnd):
            try:
                r = one(name, rnd)
            except Exception as e:  # noqa: BLE001  (WorkerError, a Worker's client)
                failed[name] = f"{label}: {e}"
                log(f"  {label} {name}: FAILED {e}")
                continue
            fields = [f for f in SUMMARY_OF if f in r]
            d = out.setdefault(name, {"rounds": [], "cpu_us_per_call": [], "upstream_requests": 0,
                                      "calls_incl_warmup": 0})
            for f in fields:
                d.setdefault(f, []).extend(r[f])
            d["rounds"].append({SUMMARY_OF[f]: summary(r[f]) for f in fields})
            d["cpu_us_per_call"].append(r["cpu_us_per_call"])
            d["upstream_requests"] += r.get("upstream", 0)
            d["calls_incl_warmup"] += r["calls"]
            log(f"  {label} round {rnd + 1}/{n_rounds} {name}: n={r['n']} " + "; ".join(
                f"{SUMMARY_OF[f]} p50={pct(r[f], 50):.0f}us p99={pct(r[f], 99):.0f}us"
                for f in fields) + f"; CPU/call={r['cpu_us_per_call'] or 0:.0f}us")
    for d in out.values():
        d.update({SUMMARY_OF[f]: summary(d[f]) for f in SUMMARY_OF if f in d})
        d["cpu_us_per_call"] = pct(d["cpu_us_per_call"], 50)
    return out


def passes(points: list[int], names: list[str], n_passes: int, failed: dict[str, str],
           label: str, one: Callable[[str, int], dict[str, Any]],
           counters: Callable[[], tuple[int, int]] | None = None) -> dict[str, Any]:
    """``one(name, point)`` (a dict with ``rps``) n_passes times at each point,
    the order rotated each pass; per name and point the median pass, every
    pass's calls/s and, with nginx's ``counters``, new upstream connections
    per 1000 requests (a pool smaller than the load reconnects)."""
    out: dict[str, Any] = {}
    k = 0
    for point in points:
        runs: dict[str, list[dict[str, Any]]] = {}
        for _ in range(n_passes):
            for name in rotated([n for n in names if n not in failed], k):
                try:
                    c0 = counters() if counters else (0, 0)
                    r = one(name, point)
                    if counters:
                        c1 = counters()
                        r["new_conns_per_1k"] = (c1[0] - c0[0]) / max(1, c1[1] - c0[1]) * 1000
                except Exception as e:  # noqa: BLE001
                    out.setdefault(name, {})[str(point)] = {"error": str(e)}
                    log(f"  {label} {name} x{point}: FAILED {e}")
                    if "timed out" in str(e) or "exited" in str(e):
                        failed[name] = f"{label} x{point}: {e}"
                    continue
                runs.setdefault(name, []).append(r)
            k += 1
        for name, rs in runs.items():
            rs.sort(key=lambda r: r["rps"])
            d = out.setdefault(name, {})[str(point)] = {
                **rs[len(rs) // 2], "passes_rps": [r["rps"] for r in rs],
                "error_count": sum(r.get("error_count", 0) for r in rs),
                "errors": [e for r in rs for e in r.get("errors", [])][:3]}
            log(f"  {label} {name} x{point}: {d['rps']:.0f} calls/s (passes: "
                + ", ".join(f"{x:.0f}" for x in d["passes_rps"]) + ")"
                + (f" ({d['error_count']} errors: {d['errors'][:1]})" if d["error_count"] else ""))
    return out


def thread_pass(make_call: Callable[[], Callable[[], Any]], threads: int, seconds: float,
                cpu: Callable[[], float] = cpu_seconds) -> dict[str, Any]:
    """T threads, each with ``make_call()``'s call: one untimed call each, then
    all call in a loop for ``seconds``, the clock started once all are ready."""
    counts = [0] * threads
    errors: list[str] = []
    box: dict[str, float] = {}

    def start_clock() -> None:  # run by one thread as the barrier opens
        box["t0"], box["cpu0"] = time.perf_counter(), cpu()
        box["deadline"] = box["t0"] + seconds

    ready = threading.Barrier(threads + 1, action=start_clock)

    def run(i: int) -> None:
        fn = make_call()
        try:
            fn()
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))
        ready.wait(timeout=120)
        n = 0
        try:
            while time.perf_counter() < box["deadline"]:
                fn()
                n += 1
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))
        counts[i] = n

    ts = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(threads)]
    for t in ts:
        t.start()
    ready.wait(timeout=120)
    for t in ts:
        t.join(timeout=seconds + 60)
    wall, total = time.perf_counter() - box["t0"], sum(counts)
    return {"calls": total, "wall_s": wall, "rps": total / wall if wall else 0.0,
            "cpu_us_per_call": (cpu() - box["cpu0"]) / total * 1e6 if total else None,
            "errors": errors[:3], "error_count": len(errors),
            "stuck_threads": sum(t.is_alive() for t in ts)}
