#!/usr/bin/env python3
"""The routing-table case: a config of 200 model groups and 600 deployments,
calls spread over the groups, next to routers without `models` (today's
single group) in one process and one run (rounds alternate): one of three
providers (a group's size here: each call encodes its request for every
deployment of its group, as a router without `models` does for every
provider) and one of a single provider. Also what `explain()` and `stats()`
cost on that table.

    python bench/table.py URL CALLS ROUNDS WARMUP   # prints JSON

run.py's `table` measure starts it against its nginx.
"""

from __future__ import annotations

import gc
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import lib  # noqa: E402

GROUPS = 200
PER_GROUP = 3
PROVIDERS = 3


def table_config(url: str) -> dict[str, Any]:
    """200 groups of 3 deployments: every deployment its own model name on
    one of 3 providers (600 slots), all on the bench upstream."""
    providers = [lib.provider(f"p{i}", url) for i in range(PROVIDERS)]
    models = {
        f"model-{g}": [{"provider": f"p{(g + d) % PROVIDERS}", "model": f"model-{g}-{d}"}
                       for d in range(PER_GROUP)]
        for g in range(GROUPS)}
    return {"providers": providers, "models": models}


def body(model: str) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}


def timed(router: Any, bodies: list[dict[str, Any]], n: int) -> list[float]:
    """n calls in us, cycling through ``bodies``; the answers checked."""
    out = []
    gc.disable()
    try:
        for i in range(n):
            b = bodies[i % len(bodies)]
            t = time.perf_counter_ns()
            resp = router.chat_completions(b)
            out.append((time.perf_counter_ns() - t) / 1000.0)
            if not resp["choices"][0]["message"]["content"]:
                raise RuntimeError("empty answer")
    finally:
        gc.enable()
    return out


def per_op_us(fn: Any, n: int) -> float:
    """The median of 5 passes of n calls of fn, in us per call."""
    passes = []
    for _ in range(5):
        t = time.perf_counter_ns()
        for _ in range(n):
            fn()
        passes.append((time.perf_counter_ns() - t) / 1000.0 / n)
    return statistics.median(passes)


def main() -> None:
    url, calls, rounds, warmup = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    from f3dx_router import Router

    single = Router([lib.provider("ok", url)])
    group = Router([{**lib.provider(f"p{i}", url), "model": f"model-0-{i}"}
                    for i in range(PER_GROUP)])
    table = Router.from_config(table_config(url))
    one = [body("gpt-4o")]
    spread = [body(f"model-{g}") for g in range(GROUPS)]
    timed(single, one, warmup)
    timed(group, one, warmup)
    timed(table, spread, max(warmup, GROUPS))
    samples: dict[str, list[float]] = {"single": [], "group": [], "table": []}
    per_round: list[float] = []
    per_round_single: list[float] = []
    for r in range(rounds):
        order = [("single", single, one), ("group", group, one), ("table", table, spread)]
        order = order[r % 3:] + order[:r % 3]
        p50s = {}
        for name, router, bodies in order:
            s = timed(router, bodies, max(1, calls // rounds))
            samples[name] += s
            p50s[name] = statistics.median(s)
        per_round.append(p50s["table"] / p50s["group"])
        per_round_single.append(p50s["table"] / p50s["single"])
    out: dict[str, Any] = {
        name: {"n": len(s), "p50_us": statistics.median(s), "p99_us": lib.nearest_rank(s, 99)}
        for name, s in samples.items()}
    out["ratio_per_round"] = per_round
    out["ratio"] = statistics.median(per_round)
    out["ratio_single"] = statistics.median(per_round_single)
    out["stats_us"] = per_op_us(table.stats, 50)
    out["deployments"] = sum(len(v) for v in table.stats()["models"].values())
    explain = getattr(table, "explain", None)
    if explain is not None:
        b = spread[7]
        out["explain_us"] = per_op_us(lambda: explain(b), 2000)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
