#!/usr/bin/env python3
"""Per-call cost of two (or more) builds of the extension, side by side.

    python bench/percall_ab.py nginx|mock ROUNDS CALLS NAME=DIR NAME=DIR ...

Each DIR holds an ``f3dx_router`` package (``python/f3dx_router`` copied,
with the build's ``_native.abi3.so``); the first is the reference. Every
round runs each build once, in its own process, in a rotating order: 500
warm-up calls, then CALLS sequential ``chat_completions`` on one router
against one upstream on 127.0.0.1, timed (wall and the process's CPU).
Prints the medians and the median of the per-round ratios. The upstream is
nginx (bench/upstream.py, answers at once) or the tests' mock
(tests/mock_provider.py ``MockProviders``, loop=True; a Python server, so
it shares the CPUs and the numbers are noisier). Not in CI.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BODY = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 16}
CHAT = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}


def one(pkg: str, url: str, n: int) -> None:
    sys.path.insert(0, pkg)
    import f3dx_router

    assert f3dx_router.__file__.startswith(pkg), f3dx_router.__file__
    r = f3dx_router.Router(providers=[{"name": "a", "kind": "openai", "base_url": url,
                                       "api_key": "sk-x", "timeout_ms": 5000}])
    for _ in range(500):
        r.chat_completions(BODY)
    c0, t0 = time.process_time(), time.perf_counter()
    for _ in range(n):
        r.chat_completions(BODY)
    t1, c1 = time.perf_counter(), time.process_time()
    print(json.dumps({"wall_us": (t1 - t0) / n * 1e6, "cpu_us": (c1 - c0) / n * 1e6}))


def measure(url: str, rounds: int, n: int, builds: list[list[str]]) -> None:
    res: dict[str, list[dict[str, float]]] = {name: [] for name, _ in builds}
    for i in range(rounds):
        for name, pkg in builds[i % len(builds):] + builds[:i % len(builds)]:
            out = subprocess.run([sys.executable, __file__, "--one", pkg, url, str(n)],
                                 check=True, capture_output=True, text=True).stdout
            res[name].append(json.loads(out))
    ref = builds[0][0]
    for k in ("wall_us", "cpu_us"):
        base = statistics.median(x[k] for x in res[ref])
        print(k, "  ".join(
            f"{name} {statistics.median(x[k] for x in res[name]):.1f} "
            f"({statistics.median(x[k] for x in res[name]) / base:.3f})" for name, _ in builds))
    for name, _ in builds[1:]:
        cpu = statistics.median(b["cpu_us"] / a["cpu_us"] for a, b in zip(res[ref], res[name]))
        wall = statistics.median(b["wall_us"] / a["wall_us"] for a, b in zip(res[ref], res[name]))
        print(f"per-round {name}/{ref}: cpu {cpu:.3f}  wall {wall:.3f}")


def main() -> None:
    if sys.argv[1] == "--one":
        one(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return
    which, rounds, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    builds = [a.split("=", 1) for a in sys.argv[4:]]
    if which == "mock":
        sys.path.insert(0, str(HERE.parent / "tests"))
        from mock_provider import MockProviders

        with MockProviders({"mocks": {"a": {"responses": [{"json": CHAT}]}}}, loop=True) as m:
            measure(m.base_url("a"), rounds, n, builds)
    else:
        sys.path.insert(0, str(HERE))
        from upstream import Nginx

        ng = Nginx(workers=1)
        ng.start()
        try:
            measure(ng.ok_url, rounds, n, builds)
        finally:
            ng.stop()


if __name__ == "__main__":
    main()
