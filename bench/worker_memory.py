#!/usr/bin/env python3
"""Peak memory of the Worker for one large answer, whole and streamed, under
`wrangler dev` (workerd) against the mock provider.

    python bench/worker_memory.py                 # 1 MiB, 8 MiB and the default maximum
    python bench/worker_memory.py --sizes 1,20    # sizes in MiB ("max": the default maximum)

Each case gets a fresh `wrangler dev` (wasm memory never shrinks, so a case
must not inherit another's), with its inspector moved to an idle worker (a
deployed worker has none): the resident memory of the workerd that runs the
worker after one small call (the idle baseline), then its peak (VmHWM,
restarted first) over one call whose answer is that large, read to its end.
A streamed answer has all its text in one event: the worst case (small
deltas pass through). Prints a Markdown table; `--json` writes the numbers
too. The worker must be built (scripts/build-worker.sh).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "tests"), str(HERE.parent / "tests" / "python")]

from mock_provider import MockProviders  # noqa: E402
from workerlib import MIB, WranglerDev, large_answer  # noqa: E402

TOKEN = "bench-memory-token"


def config(mocks: MockProviders, name: str) -> dict[str, str]:
    provider = {"name": name, "kind": "openai", "base_url": mocks.base_url(name), "api_key": "sk-bench",
                "timeout_ms": 120_000}
    return {"ROUTER_CONFIG": json.dumps({"providers": [provider]}), "ROUTER_TOKEN": TOKEN}


def call(w: WranglerDev, stream: bool) -> tuple[int, int]:
    """One call, read to its end: (status, bytes of the answer)."""
    body = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "stream": stream})
    headers = {"content-type": "application/json", "authorization": f"Bearer {TOKEN}"}
    status, _, raw = w.request("POST", "/v1/chat/completions", body.encode(), headers, timeout=120)
    return status, len(raw)


def measure(mocks: MockProviders, name: str, streamed: bool) -> dict[str, Any]:
    with WranglerDev(config(mocks, name), inspector_elsewhere=True) as w:
        w.request("GET", "/healthz")  # the isolate and its router exist
        idle = w.reset_workerd_peak()
        t0 = time.perf_counter()
        status, size = call(w, streamed)
        took = time.perf_counter() - t0
        peak = w.workerd_memory().peak
    return {"status": status, "answer_bytes": size, "idle_rss": idle.rss, "peak": peak,
            "added": peak - idle.rss, "seconds": round(took, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1,8,max", help="answer sizes in MiB; max: the default maximum")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()
    with MockProviders({"mocks": {"small": {"responses": [large_answer(4096, False)]}}}, loop=True) as mocks:
        with WranglerDev(config(mocks, "small"), inspector_elsewhere=True) as w:
            # The Worker's own default (before it had one: the core's 32 MiB).
            default_max = w.get_json("/healthz")[2]["providers"][0].get("max_body_bytes", 32 * MIB)
            call(w, False)
            idle = w.workerd_memory().rss
    sizes = [default_max if s == "max" else int(float(s) * MIB) for s in args.sizes.split(",")]
    rows: list[dict[str, Any]] = []
    for size in sizes:
        script = {"whole": {"responses": [large_answer(size, False)]},
                  "stream": {"responses": [large_answer(size, True)]}}
        with MockProviders({"mocks": script}, loop=True) as mocks:
            for name in script:
                rows.append({"size": size, "streamed": name == "stream", **measure(mocks, name, name == "stream")})
                print(f"{size / MIB:g} MiB {name}: {rows[-1]}", file=sys.stderr)
    print(f"Idle worker: {idle / MIB:.0f} MiB resident; default max_body_bytes {default_max / MIB:g} MiB.\n")
    print("| answer | streamed | status | peak workerd RSS | added over idle | seconds |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['size'] / MIB:g} MiB | {'yes, one event' if r['streamed'] else 'no'} | {r['status']} "
              f"| {r['peak'] / MIB:.0f} MiB | {r['added'] / MIB:.0f} MiB | {r['seconds']} |")
    if args.json:
        args.json.write_text(json.dumps({"idle_rss": idle, "default_max": default_max, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
