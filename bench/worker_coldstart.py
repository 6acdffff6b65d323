#!/usr/bin/env python3
"""What the Worker's upload size costs a fresh isolate: two builds side by side.

    python bench/worker_coldstart.py BUILD_A BUILD_B [--reps 7]

Each BUILD is a directory that scripts/build-worker.sh wrote (shim.mjs,
index.js, index_bg.wasm). For each, alternating A and B so drift hits both:

* ``ready``: `wrangler dev` started until its first answer (``/healthz``):
  workerd loading the script, module included (node's and wrangler's own
  start-up are in it too, the same for both builds);
* ``first`` and ``second``: the first and the second chat completion the
  isolate serves (one provider, a mock on loopback): the first pays for
  compiling, lazily, every function a call runs;
* ``schema``: then the first one with a ``json_schema`` response_format
  (a small structured-output schema, the answer checked against it): it
  pays for compiling the JSON Schema validator's code and the schema.

Prints medians and the B/A ratios. Loopback only; bounded loops.
"""

from __future__ import annotations

import argparse
import os
import gzip
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(os.environ.get("F3DX_ROOT", Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "python"))
from mock_provider import MockProviders  # noqa: E402
from workerlib import WranglerDev  # noqa: E402


COMPLETION = {
    "status": 200,
    "json": {
        "id": "chatcmpl-cold", "object": "chat.completion", "created": 1, "model": "gpt-4o",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": '{"answer": "hi", "n": 1}'}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    },
}
TOKEN = "cold-start-bench-token"
BODY = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "string", "pattern": "^[a-z]+$"}, "n": {"type": "integer", "minimum": 0}},
    "required": ["answer", "n"],
    "additionalProperties": False,
}
SCHEMA_BODY = {**BODY, "response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": SCHEMA}}}


def sizes(build: Path) -> dict[str, int]:
    wasm = (build / "index_bg.wasm").read_bytes()
    js = b"".join(p.read_bytes() for p in sorted(build.glob("*.js")) + sorted(build.glob("*.mjs")))
    return {"wasm": len(wasm), "wasm_gzip": len(gzip.compress(wasm, 9)), "js_gzip": len(gzip.compress(js, 9))}


def isolate(build: Path, base_url: str) -> dict[str, float]:
    config = json.dumps({"providers": [{"name": "a", "kind": "openai", "base_url": base_url, "api_key": "sk-cold"}]})
    t0 = time.perf_counter()
    with WranglerDev({"ROUTER_CONFIG": config, "ROUTER_TOKEN": TOKEN}, main=build / "shim.mjs") as w:
        ready = time.perf_counter() - t0
        times = []
        for body in (BODY, BODY, SCHEMA_BODY):
            t = time.perf_counter()
            status, headers, _ = w.post_json("/v1/chat/completions", body, token=TOKEN)
            times.append(time.perf_counter() - t)
            if status != 200:
                raise RuntimeError(f"{build}: status {status}")
        # The schema call was checked, and passed.
        valid = {k.lower(): v for k, v in headers.items()}.get("x-f3dx-schema-valid")
        if valid != "true":
            raise RuntimeError(f"{build}: x-f3dx-schema-valid is {valid!r}")
    return {"ready_ms": ready * 1e3, "first_ms": times[0] * 1e3, "second_ms": times[1] * 1e3, "schema_ms": times[2] * 1e3}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("a", type=Path)
    ap.add_argument("b", type=Path)
    ap.add_argument("--reps", type=int, default=7)
    args = ap.parse_args()
    builds = {"A": args.a, "B": args.b}
    rows: dict[str, dict[str, list[float]]] = {k: {} for k in builds}
    with MockProviders({"mocks": {"a": {"responses": [COMPLETION]}}}, loop=True) as mocks:
        for i in range(min(args.reps, 50)):
            order = list(builds.items()) if i % 2 == 0 else list(reversed(builds.items()))
            for k, b in order:
                for m, v in isolate(b, mocks.base_url("a")).items():
                    rows[k].setdefault(m, []).append(v)
    for k, b in builds.items():
        print(f"{k}: {b} {sizes(b)}")
    print(f"{'measure':<16}{'A median':>12}{'B median':>12}{'B/A':>8}{'B-A (ms)':>10}")
    for m in rows["A"]:
        a, b = statistics.median(rows["A"][m]), statistics.median(rows["B"][m])
        print(f"{m:<16}{a:>12.2f}{b:>12.2f}{b / a:>8.2f}{b - a:>10.2f}")


if __name__ == "__main__":
    main()
