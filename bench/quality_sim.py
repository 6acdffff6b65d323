#!/usr/bin/env python3
"""The quality-aware routing simulation of issue 12.

    .venv/bin/python bench/quality_sim.py            # writes bench/QUALITY_SIM.md and quality_sim.json
    .venv/bin/python bench/quality_sim.py --out /tmp # elsewhere

Two mock providers on 127.0.0.1 answer structured-output requests (a
`response_format` JSON schema). Provider A breaks the schema for 30% of
tenant acme's answers and 1% of everyone else's; provider B breaks 1%. The
calls (2,000 by default, A first in the config, sequential policy) alternate
tenants acme and globex, same model. Each mode runs on a fresh router with
the same seeded mocks:

- no classifier (`quality=False`: nothing is checked, A keeps acme);
- the classifier with `on_failure: "return"` (acme's calls move to B once
  A's pass rate for (A, acme, gpt-4o) drops under 0.8 over 10+ answers);
- the classifier with `on_failure: "failover"` (a failing answer also
  moves its own call to B).

What callers receive is checked here with the same rule in every mode (the
content parses as JSON and has the schema's required properties with their
types), so the pass rates compare like for like; extra upstream requests
are the mocks' request count over the calls, minus one. Needs the extension
built in the interpreter that runs it (`maturin develop --release`).
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from f3dx_router import AllProvidersFailed, Router

HERE = Path(__file__).resolve().parent
SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}, "born": {"type": "integer"}},
          "required": ["name", "born"], "additionalProperties": False}
VALID = '{"name": "Ada Lovelace", "born": 1815}'
BROKEN = '{"name": "Ada Lovelace", "born": "eighteen fifteen"}'
MODES = {
    "no classifier": False,
    "classifier, return": {"on_failure": "return"},
    "classifier, failover": {"on_failure": "failover"},
}


def passes(content: str | None) -> bool:
    """The schema's rule, checked independently of the router."""
    try:
        v = json.loads(content or "")
    except ValueError:
        return False
    return (isinstance(v, dict) and set(v) == {"name", "born"} and isinstance(v["name"], str)
            and isinstance(v["born"], int) and not isinstance(v["born"], bool))


class Mocks:
    """Both providers, one server each; every answer is drawn from a seeded
    RNG per provider, at the failure rate of the request's tenant (the
    request's `user` field)."""

    def __init__(self, rates: dict[str, dict[str, float]], seed: int) -> None:
        self.rates = rates
        self.rngs = {name: random.Random(f"{seed}-{name}") for name in rates}
        self.requests = dict.fromkeys(rates, 0)
        self.lock = threading.Lock()
        self.servers: dict[str, ThreadingHTTPServer] = {}

    def __enter__(self) -> Mocks:
        for name in self.rates:
            self.servers[name] = ThreadingHTTPServer(("127.0.0.1", 0), self.handler(name))
            threading.Thread(target=self.servers[name].serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        for s in self.servers.values():
            s.shutdown()
            s.server_close()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.servers[name].server_address[1]}/v1"

    def handler(self, name: str) -> type[BaseHTTPRequestHandler]:
        mocks = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # The head and the body go out in two writes: without this,
            # Nagle holds the body for the client's delayed ACK (~40 ms).
            disable_nagle_algorithm = True

            def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", "0"))))
                rates = mocks.rates[name]
                rate = rates.get(body.get("user", ""), rates["*"])
                with mocks.lock:
                    mocks.requests[name] += 1
                    broken = mocks.rngs[name].random() < rate
                content = BROKEN if broken else VALID
                reply = json.dumps({
                    "id": "c", "object": "chat.completion", "created": 0, "model": "gpt-4o",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                                 "finish_reason": "stop"}]}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


def run_mode(quality: Any, calls: int, seed: int) -> dict[str, Any]:
    rates = {"A": {"acme": 0.30, "*": 0.01}, "B": {"*": 0.01}}
    with Mocks(rates, seed) as m:
        providers = [{"name": n, "kind": "openai", "base_url": m.url(n), "api_key": "k"} for n in ("A", "B")]
        router = Router(providers, quality=quality)
        got: dict[str, list[bool]] = {"acme": [], "globex": []}
        served_by_a = {"acme": 0, "globex": 0}
        failed = 0
        start = time.perf_counter()
        for i in range(calls):
            tenant = ("acme", "globex")[i % 2]
            body = {"model": "gpt-4o", "user": tenant,
                    "messages": [{"role": "user", "content": "Who wrote the first program?"}],
                    "response_format": {"type": "json_schema", "json_schema": {"name": "person", "schema": SCHEMA}}}
            try:
                res = router.route(body, tenant=tenant)
            except AllProvidersFailed:
                failed += 1
                got[tenant].append(False)
                continue
            served_by_a[tenant] += res.provider == "A"
            got[tenant].append(passes(res.response["choices"][0]["message"]["content"]))
        wall = time.perf_counter() - start
        stats = router.stats()["providers"]["A"]["quality"]
        upstream = sum(m.requests.values())
    rate = lambda xs: sum(xs) / len(xs) if xs else None  # noqa: E731
    return {
        "acme_pass_rate": rate(got["acme"]), "globex_pass_rate": rate(got["globex"]),
        "overall_pass_rate": rate(got["acme"] + got["globex"]),
        "acme_served_by_A": served_by_a["acme"], "globex_served_by_A": served_by_a["globex"],
        "all_providers_failed": failed, "upstream_requests": upstream,
        "extra_upstream_pct": (upstream / calls - 1) * 100, "wall_s": wall,
        "A_keys": stats,
    }


def render(results: dict[str, Any], args: argparse.Namespace, meta: dict[str, str]) -> str:
    pct = lambda x: "-" if x is None else f"{x * 100:.2f}%"  # noqa: E731
    lines = [
        "# Quality-aware routing: the simulation (issue 12)",
        "",
        f"Run on {meta['date']}, commit `{meta['commit']}`, {meta['machine']}. "
        f"Command: `.venv/bin/python bench/quality_sim.py` ({args.calls} calls a mode, seed {args.seed}).",
        "",
        "Provider A breaks the schema in 30% of tenant acme's answers and 1% of everyone else's; B in "
        "1%. Calls alternate acme and globex (model gpt-4o), A first, sequential policy, the "
        "classifier's defaults (window 50, min_samples 10, min_pass_rate 0.8, probe_after_s 60). "
        "Pass rates are what callers received, checked by this script with the same rule in every mode.",
        "",
        "| mode | acme's valid answers | globex's | all | acme's calls A served | "
        "globex's calls A served | AllProvidersFailed | extra upstream requests |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for mode, r in results.items():
        lines.append(f"| {mode} | **{pct(r['acme_pass_rate'])}** | {pct(r['globex_pass_rate'])} | "
                     f"{pct(r['overall_pass_rate'])} | {r['acme_served_by_A']} | {r['globex_served_by_A']} | "
                     f"{r['all_providers_failed']} | {r['extra_upstream_pct']:.2f}% |")
    ret = results["classifier, return"]["acme_pass_rate"] or 0
    fo = results["classifier, failover"]["acme_pass_rate"] or 0
    lines += [
        "",
        "Targets (acme's calls, the degraded key): classifier with `return` at least 97% valid: "
        f"**{'met' if ret >= 0.97 else 'NOT met'}** ({pct(ret)}); with `failover` at least 99.5%: "
        f"**{'met' if fo >= 0.995 else 'NOT met'}** ({pct(fo)}); without the classifier about 70% "
        f"({pct(results['no classifier']['acme_pass_rate'])}).",
        "",
        "What the router remembered of A at the end (`stats()['providers']['A']['quality']`):",
        "",
    ]
    for mode, r in results.items():
        keys = ", ".join(f"{k['tenant']}: {k['state']}, pass rate {pct(k['pass_rate'])} over {k['samples']}"
                         for k in r["A_keys"]) or "nothing (quality off)"
        lines.append(f"- {mode}: {keys}")
    lines += [
        "",
        "The cost of a check, from the core's criterion benchmark (`cargo bench -p f3dx-router-core "
        "--bench routing -- schema`, its last run on this checkout):",
        "",
    ]
    for bench, what in (("check_1kb_20_properties", "a ~1 KB answer against a compiled 20-property schema"),
                        ("cached_lookup", "a call's `response_format` to its compiled schema, from the cache")):
        ns = criterion_median_ns("schema", bench)
        shown = "not measured (run the command above first)" if ns is None else f"{ns / 1000:.2f} us"
        lines.append(f"- `schema/{bench}` ({what}): {shown}")
    lines.append("")
    return "\n".join(lines)


def criterion_median_ns(group: str, bench: str) -> float | None:
    """The median of criterion's last run of `group/bench`, if there is one."""
    path = HERE.parent / "target" / "criterion" / group / bench / "new" / "estimates.json"
    try:
        return float(json.loads(path.read_text())["median"]["point_estimate"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, default=HERE)
    args = ap.parse_args()
    results = {}
    for mode, quality in MODES.items():
        results[mode] = run_mode(quality, args.calls, args.seed)
        r = results[mode]
        print(f"{mode}: acme {r['acme_pass_rate']:.4f}, globex {r['globex_pass_rate']:.4f}, "
              f"extra {r['extra_upstream_pct']:.2f}%, acme on A {r['acme_served_by_A']}")
    commit = subprocess.run(["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "commit": commit,
            "machine": f"{platform.machine()}, Python {platform.python_version()}"}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "quality_sim.json").write_text(json.dumps({"meta": meta, "results": results}, indent=1) + "\n")
    (args.out / "QUALITY_SIM.md").write_text(render(results, args, meta))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
