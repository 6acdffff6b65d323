#!/usr/bin/env python3
"""A leak soak: calls through two shared routers against failing, slow and
answering providers on 127.0.0.1, watching RSS, file descriptors and threads.

    bench/.venv/bin/python bench/soak.py                 # 300,000 calls, a few minutes
    bench/.venv/bin/python bench/soak.py --calls 50000   # a short check

(``bash bench/run.sh`` installs f3dx_router into bench/.venv; any
interpreter that imports it will do.) Not in CI. The providers: ``flaky``
(the mock's flaky mode; its 503 share flips between 0 and 60% every
``--flap-s`` seconds, so health ejects it and lets it back), ``slow`` (the
mock's tail mode: 5% of answers take 400 ms, past the 250 ms timeout), and
the bench's nginx (``limited``, 429 without Retry-After; ``ok``, 200 at
once). Routers, built once and shared by every thread: ``sequential``
[flaky, slow, limited, ok] and ``hedged`` (K=2, 20 ms) [slow, ok]; calls
alternate between them and between ``route()`` and ``chat_completions()``.

Every ``--report-every`` calls a line: calls/s, RSS (VmRSS), open fds,
threads, results by class. At the end: RSS growth from the first report to
the last (target under 5%), fd growth (at most 32), thread growth (none),
and any exception other than AllProvidersFailed and HardFailure (a defect).
Exit status 0 when every target is met, 1 otherwise. The last million-call
soak (the nginx fault mixes; it is in git history): bench/SOAK.md.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lib  # noqa: E402
import upstream  # noqa: E402

EXPECTED = {"ok", "AllProvidersFailed", "HardFailure"}


def sample() -> dict[str, float]:
    """RSS, open fds, and OS threads other than this soak's Python ones."""
    return {"rss_mib": lib.status_mib("VmRSS"), "fds": len(os.listdir("/proc/self/fd")),
            "threads": len(os.listdir("/proc/self/task")) - threading.active_count() + 1}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=300_000)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--report-every", type=int, default=30_000)
    ap.add_argument("--flap-s", type=float, default=3.0)
    ap.add_argument("--max-seconds", type=float, default=900.0)
    args = ap.parse_args()
    from f3dx_router import Router, _native

    # The allocator the extension's Rust code uses (glibc's when built without one).
    print(f"allocator: {getattr(_native, '_allocator', 'glibc malloc')}", flush=True)
    nginx = upstream.Nginx()
    nginx.start()
    mocks = upstream.bench_mocks(flaky={"mode": "flaky", "delay_ms": 1, "seed": 1},
                                 slow={"mode": "tail", "delay_ms": 1, "slow_ms": 400,
                                       "slow_frac": 0.05, "seed": 2})
    stop = threading.Event()
    lock = threading.Lock()
    results: Counter[str] = Counter()
    counter = itertools.count()
    reports: list[dict[str, float]] = []
    try:
        def p(name: str, url: str) -> dict[str, object]:
            return lib.provider(name, url, timeout_ms=250)
        flaky, slow = p("flaky", mocks.base_url("flaky")), p("slow", mocks.base_url("slow"))
        ok, limited = p("ok", nginx.ok_url), p("limited", nginx.fail_url)
        routers = [Router([flaky, slow, limited, ok]),
                   Router([slow, ok], policy="hedged", hedge_k=2, hedge_delay_ms=20)]
        t0 = time.monotonic()

        def caller() -> None:
            while not stop.is_set() and (i := next(counter)) < args.calls:
                router = routers[i % 2]
                try:
                    router.route(lib.BODY) if i & 2 else router.chat_completions(lib.BODY)
                    kind = "ok"
                except Exception as e:  # noqa: BLE001  (counted; unexpected ones fail the soak)
                    kind = type(e).__name__
                with lock:
                    results[kind] += 1
                    done, seen = sum(results.values()), dict(results)
                if done % args.report_every == 0 or done == args.calls:
                    s = {"calls": done, "s": time.monotonic() - t0, **sample()}
                    reports.append(s)
                    print(f"{done:>9,} calls {done / s['s']:7,.0f}/s  RSS {s['rss_mib']:6.2f} MiB  "
                          f"fds {s['fds']:4}  threads {s['threads']:3}  {seen}", flush=True)

        threads = [threading.Thread(target=caller, daemon=True) for _ in range(args.threads)]
        for t in threads:
            t.start()
        flip = 0
        while any(t.is_alive() for t in threads) and time.monotonic() - t0 < args.max_seconds:
            time.sleep(args.flap_s)
            flip ^= 1
            mocks.set_fail("flaky", 0.6 * flip)
        stop.set()
        for t in threads:
            t.join(timeout=10)
    finally:
        stop.set()
        mocks.close()
        nginx.stop()
    if len(reports) < 2:
        print(f"too few reports ({len(reports)}): raise --calls or lower --report-every")
        return 1
    first, last = reports[0], reports[-1]
    growth = (last["rss_mib"] / first["rss_mib"] - 1) * 100
    checks = {
        f"RSS {first['rss_mib']:.2f} -> {last['rss_mib']:.2f} MiB ({growth:+.2f}%, under 5%)":
            growth < 5,
        f"fds {first['fds']:.0f} -> {last['fds']:.0f} (at most +32)": last["fds"] - first["fds"] <= 32,
        f"threads {first['threads']:.0f} -> {last['threads']:.0f} (no growth)":
            last["threads"] <= first["threads"],
        f"every call made ({last['calls']:,} of {args.calls:,})": last["calls"] == args.calls,
        f"no unexpected exception ({ {k: v for k, v in results.items() if k not in EXPECTED} })":
            set(results) <= EXPECTED,
    }
    for what, met in checks.items():
        print(f"{'met' if met else 'NOT MET'}: {what}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
