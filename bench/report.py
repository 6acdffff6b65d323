#!/usr/bin/env python3
"""RESULTS.md (or the file of a run of some measures alone) from results.json.

    python bench/report.py [results.json]     # re-render without re-running

One renderer over two tables: ``RATIOS``, the numbers the contract names
(one per run, the median over the runs against its limit), and ``TABLES``,
the per-contender tables of the median run. A new measure is a row in one of
them, not a new function. run.py calls ``write_md`` at the end of a run and
prints ``ratio_lines``.
"""

from __future__ import annotations

import json
import math
import statistics
import sys
from pathlib import Path
from typing import Any, Callable, NamedTuple

HERE = Path(__file__).resolve().parent
ROUTER, OLD = "f3dx_router", "f3dx-0.0.19"
Run = dict[str, Any]

# Which file a run of some measures alone writes (never the full run's).
ALONE = (({"stream"}, "STREAM_RESULTS.md", "stream_results.json"),
         ({"async"}, "ASYNC_RESULTS.md", "async_results.json"),
         ({"tail", "degrade", "tput_health"}, "ADAPTIVE_RESULTS.md", "adaptive_results.json"))


def output_names(measures: list[str]) -> tuple[str, str]:
    """(markdown, json) for a run of these measures."""
    for group, md, js in ALONE:
        if measures and set(measures) <= group:
            return md, js
    return "RESULTS.md", "results.json"


def dig(d: Any, *path: str) -> Any:
    """d[path[0]][path[1]]..., or None where a step is missing."""
    for key in path:
        if not isinstance(d, dict) or key not in d:
            return None
        d = d[key]
    return d


def div(a: Any, b: Any) -> float | None:
    return a / b if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b else None


def p50(run: Run, *path: str) -> float | None:
    return dig(run, *path, "summary", "p50")


# ------------------------------------------------------------------ ratios

class Ratio(NamedTuple):
    key: str
    what: str
    unit: str  # "x", "ms", "us" or "%"
    limit: float | None  # None: context, no target
    higher: bool  # whether higher is better
    value: Callable[[Run], float | None]


def worker_net(run: Run, mine: str, floor: str, field: str = "") -> float | None:
    """The Worker's p50 over a JavaScript floor's in one `wrangler dev`, the
    dispatcher's service-binding hop (hop p50 - null p50) taken off both.
    ``field`` ("ttfc" or "total") picks the stream measure's targets."""
    if field:
        w = dig(run, "stream", "worker") or {}
        table = w.get("slow" if mine.endswith("-slow") else "fast") or {}
        base = w.get("fast") or {}
        key = (field, "p50")
        hop_key = ("total", "p50")
    else:
        table = base = dig(run, "worker", "latency") or {}
        key = hop_key = ("summary", "p50")
    m, f = dig(table, mine, *key), dig(table, floor, *key)
    hop, null = dig(base, "hop", *hop_key), dig(base, "null", *hop_key)
    if m is None or f is None:
        return None
    off = hop - null if hop is not None and null is not None else 0.0
    return (m - off) / (f - off) if f - off > 0 else m / f


def stream_ratio(run: Run, variant: str, field: str, floor: str = "floor") -> float | None:
    st = dig(run, "stream", variant) or {}
    return div(dig(st, ROUTER, field, "p50"), dig(st, floor, field, "p50"))


def tail_variant(run: Run, prefix: str) -> dict[str, Any] | None:
    variants = dig(run, "tail", "variants") or {}
    return next((v for k, v in variants.items() if k.startswith(prefix) and v.get("summary")), None)


def async_ratio(run: Run, num: str, den: str, field: str, conc: str) -> float | None:
    a = dig(run, "async", "async") or {}
    return div(dig(a, num, conc, field), dig(a, den, conc, field))


def sync_ratio(run: Run, field: str) -> float | None:
    s = dig(run, "async", "sync") or {}
    mine, sdk = s.get("openai+f3dx_router.sync"), s.get("openai.sync")
    if not mine or not sdk:
        return None
    if field == "cpu":
        return div(mine["cpu_us_per_call"], sdk["cpu_us_per_call"])
    # Round k of each ran back to back: the median of the per-round ratios
    # is robust to a burst of load on a few rounds.
    per_round = [x["summary"]["p50"] / y["summary"]["p50"]
                 for x, y in zip(mine.get("rounds", []), sdk.get("rounds", []))]
    return statistics.median(per_round) if per_round else None


def hedge(run: Run, prefix: str, what: str) -> float | None:
    v = tail_variant(run, prefix)
    if v is None:
        return None
    return v["extra_pct"] if what == "extra" else div(v["summary"]["p99"], v["summary"]["p50"])


RATIOS = [
    Ratio("table", "routing table (200 groups of 3, 600 deployments) p50 / no table, 3 providers",
          "x", 1.03, False, lambda r: dig(r, "table", "ratio")),
    Ratio("table_single", "routing table p50 / no table, one provider", "x", None, False,
          lambda r: dig(r, "table", "ratio_single")),
    Ratio("explain_us", "explain() on the 200-group table", "us", 20.0, False,
          lambda r: dig(r, "table", "explain_us")),
    Ratio("stats_ms", "stats() of 600 deployments", "ms", 2.0, False,
          lambda r: div(dig(r, "table", "stats_us"), 1000.0)),
    Ratio("p50", "f3dx_router p50 / floor+json p50 (raw socket with json.loads)", "x", 1.25, False,
          lambda r: div(p50(r, "latency", ROUTER), p50(r, "latency", "floor+json"))),
    Ratio("p50_raw", "f3dx_router p50 / raw floor p50 (no JSON)", "x", None, False,
          lambda r: div(p50(r, "latency", ROUTER), p50(r, "latency", "floor"))),
    Ratio("failover", "failover (429 then 200) p50 / floor+json call p50", "x", 2.3, False,
          lambda r: div(p50(r, "failover", ROUTER), p50(r, "latency", "floor+json"))),
    Ratio("p99", "f3dx_router p99 / floor p50", "x", None, False,
          lambda r: div(dig(r, "latency", ROUTER, "summary", "p99"), p50(r, "latency", "floor"))),
    Ratio("tput_old", "calls/s at 16 threads / f3dx-0.0.19's", "x", 1.3, True,
          lambda r: div(dig(r, "throughput", ROUTER, "16", "rps"), dig(r, "throughput", OLD, "16", "rps"))),
    Ratio("tput_litellm", "calls/s at 16 threads / LiteLLM's", "x", 50.0, True,
          lambda r: div(dig(r, "throughput", ROUTER, "16", "rps"),
                        dig(r, "throughput", "litellm", "16", "rps"))),
    Ratio("import_ms", "import f3dx_router, fresh interpreter", "ms", 30.0, False,
          lambda r: dig(r, "import", ROUTER, "ms")),
    Ratio("hedge_p99", "tail: hedged K=2 at the p95 delay, p99 / p50", "x", 2.0, False,
          lambda r: hedge(r, "hedged K=2, delay", "p99")),
    Ratio("hedge_extra", "tail: hedged K=2 at the p95 delay, extra upstream requests", "%", 10.0,
          False, lambda r: hedge(r, "hedged K=2, delay", "extra")),
    Ratio("auto_p99", "tail: hedged K=2, delay \"auto\", p99 / p50", "x", 2.5, False,
          lambda r: hedge(r, "hedged K=2, auto", "p99")),
    Ratio("auto_extra", "tail: hedged K=2, delay \"auto\", extra upstream requests", "%", 10.0,
          False, lambda r: hedge(r, "hedged K=2, auto", "extra")),
    Ratio("health_tput16", "calls/s at 16 threads, health on / off", "x", 0.95, True,
          lambda r: dig(r, "tput_health", "ratio_on_off", "16")),
    Ratio("worker_p50", "Worker p50 / forwarding JS worker's (hop off both)", "x", 1.1, False,
          lambda r: worker_net(r, "f3dx", "forward")),
    Ratio("worker_failover", "Worker failover p50 / two-fetch JS worker's", "x", 1.1, False,
          lambda r: worker_net(r, "f3dx-failover", "twofetch")),
    Ratio("stream_ttfc", "stream, no delay: first chunk p50 / raw reader's", "x", 2.0, False,
          lambda r: stream_ratio(r, "fast", "ttfc")),
    Ratio("stream_total", "stream, no delay: whole stream p50 / raw reader's", "x", None, False,
          lambda r: stream_ratio(r, "fast", "total")),
    Ratio("stream_slow_ttfc", "stream, 5 ms chunks: first chunk p50 / raw reader's", "x", None,
          False, lambda r: stream_ratio(r, "slow", "ttfc")),
    Ratio("worker_stream_ttfc", "Worker stream: first chunk p50 / piping JS worker's", "x", 1.4,
          False, lambda r: worker_net(r, "f3dx-stream", "pipe", "ttfc")),
    Ratio("worker_stream_total", "Worker stream: whole stream p50 / piping JS worker's", "x", 1.5,
          False, lambda r: worker_net(r, "f3dx-stream", "pipe", "total")),
    Ratio("async_openai16", "async, 16 concurrent: f3dx_router / AsyncOpenAI calls/s", "x", None,
          True, lambda r: async_ratio(r, ROUTER, "openai", "rps", "16")),
    Ratio("sdk_cpu16", "async, 16 concurrent: SDK through the transport / SDK direct, CPU per call",
          "x", None, False,
          lambda r: async_ratio(r, "openai+f3dx_router", "openai", "cpu_us_per_call", "16")),
    Ratio("sync_cpu", "sync SDK through the transport / SDK direct, CPU per call", "x", None,
          False, lambda r: sync_ratio(r, "cpu")),
    Ratio("sync_p50", "sync SDK through the transport / SDK direct, p50", "x", None, False,
          lambda r: sync_ratio(r, "p50")),
]


def fmt_value(v: float | None, unit: str) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    return {"x": f"{v:.2f}x", "ms": f"{v:.1f} ms", "us": f"{v:.1f} us", "%": f"{v:.1f}%"}[unit]


def ratio_rows(runs: list[Run]) -> list[tuple[Ratio, float, list[float | None], str]]:
    """The measured ratios: (ratio, median over the runs, per run, verdict)."""
    rows = []
    for ratio in RATIOS:
        per = [ratio.value(r) for r in runs]
        got = [v for v in per if v is not None]
        if not got:
            continue
        med = statistics.median(got)
        verdict = "" if ratio.limit is None else (
            "yes" if (med >= ratio.limit if ratio.higher else med <= ratio.limit) else "**no**")
        rows.append((ratio, med, per, verdict))
    return rows


def ratio_lines(runs: list[Run]) -> list[str]:
    """The ratios as plain lines (run.py prints them at the end)."""
    return [f"{r.what}: {fmt_value(med, r.unit)}"
            + (f" (limit {fmt_value(r.limit, r.unit)}: {'met' if v == 'yes' else 'NOT met'})"
               if v else "") for r, med, _, v in ratio_rows(runs)]


# ------------------------------------------------------------------ tables

def n(x: Any, digits: int = 0) -> str:
    if not isinstance(x, (int, float)) or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:,.{digits}f}"


def times(x: Any) -> str:
    return "n/a" if x is None else f"{x:.2f}x"


class Table(NamedTuple):
    title: str
    rows: Callable[[Run], dict[str, Any]]  # row name -> its entry
    columns: list[tuple[str, Callable[[dict[str, Any], dict[str, Any]], str]]]  # (entry, all rows)


def latency_columns(floor: str) -> list[tuple[str, Callable[[dict[str, Any], dict[str, Any]], str]]]:
    return [
        ("n", lambda e, _: n(dig(e, "summary", "n"))),
        ("p50 us", lambda e, _: n(dig(e, "summary", "p50"))),
        ("p99 us", lambda e, _: n(dig(e, "summary", "p99"))),
        (f"p50 / {floor}", lambda e, rows: times(div(dig(e, "summary", "p50"),
                                                     dig(rows, floor, "summary", "p50")))),
        ("CPU us/call", lambda e, _: n(e.get("cpu_us_per_call"))),
        ("upstream req/call", lambda e, _: n(div(e.get("upstream_requests"),
                                                 e.get("calls_incl_warmup")), 2)),
    ]


def by_threads(path: tuple[str, ...], field: str, digits: int = 0) -> Callable[[Run], Any]:
    """Rows of a {name: {threads: {...}}} measure, one column per thread count."""
    return lambda r: {name: {t: n(d.get(field), digits) for t, d in per.items()}
                      for name, per in (dig(r, *path) or {}).items() if isinstance(per, dict)}


def stream_columns(floor: str) -> list[tuple[str, Callable[[dict[str, Any], dict[str, Any]], str]]]:
    def rel(field: str) -> Callable[[dict[str, Any], dict[str, Any]], str]:
        return lambda e, rows: times(div(dig(e, field, "p50"), dig(rows, floor, field, "p50")))
    return [
        ("n", lambda e, _: n(dig(e, "ttfc", "n"))),
        ("first chunk p50 us", lambda e, _: n(dig(e, "ttfc", "p50"))),
        (f"/ {floor}", rel("ttfc")),
        ("whole stream p50 us", lambda e, _: n(dig(e, "total", "p50"))),
        (f"/ {floor} ", rel("total")),
        ("CPU us/call", lambda e, _: n(e.get("cpu_us_per_call"))),
    ]


def tail_rows(r: Run) -> dict[str, Any]:
    return {k: v for k, v in (dig(r, "tail", "variants") or {}).items() if v.get("summary")}


def degrade_rows(r: Run) -> dict[str, Any]:
    return {k: v for k, v in (dig(r, "degrade", "variants") or {}).items() if "phases" in v}


TABLES = [
    Table("Sequential latency, one provider", lambda r: r.get("latency") or {},
          latency_columns("floor")),
    Table("Failover: 429 (no Retry-After) then 200", lambda r: r.get("failover") or {},
          latency_columns("floor")),
    Table("Throughput: calls/s, threads sharing one client",
          by_threads(("throughput",), "rps"), []),
    Table("Import time and peak RSS",
          lambda r: {k: {"ms": v.get("ms"), "rss": dig(r, "rss", k, "peak_rss_mib")}
                     for k, v in (r.get("import") or {}).items()},
          [("import ms", lambda e, _: n(e["ms"], 1)), ("peak RSS MiB", lambda e, _: n(e["rss"], 1))]),
    Table("Tail experiment: heavy-tailed mock, f3dx_router", tail_rows,
          [("p50 us", lambda e, _: n(e["summary"]["p50"])),
           ("p99 us", lambda e, _: n(e["summary"]["p99"])),
           ("p99 / p50", lambda e, _: times(div(e["summary"]["p99"], e["summary"]["p50"]))),
           ("extra upstream requests", lambda e, _: f"{e['extra_pct']:.1f}%")]),
    Table("Health tracking: calls/s, health on and off",
          by_threads(("tput_health", "throughput"), "rps"), []),
    Table("Degradation: A answers 503 to a share of requests for a spell", degrade_rows,
          [("calls in the spell", lambda e, _: n(dig(e, "phases", "bad", "calls"))),
           ("hit A", lambda e, _: f"{n(dig(e, 'phases', 'bad', 'hit_a_pct'), 1)}%"),
           ("success", lambda e, _: f"{n(dig(e, 'phases', 'bad', 'success_pct'), 2)}%"),
           ("p99 ms", lambda e, _: n(dig(e, "phases", "bad", "p99_ms"), 2)),
           ("A serving again after (s)", lambda e, _: n(dig(e, "recovery", "first_served_a_s"), 2))]),
    Table("Worker (wrangler dev): sequential latency", lambda r: dig(r, "worker", "latency") or {},
          latency_columns("forward")),
    Table("Worker: calls/s", by_threads(("worker", "throughput"), "rps"), []),
    Table("Streaming, no delay (nginx)", lambda r: dig(r, "stream", "fast") or {},
          stream_columns("floor")),
    Table("Streaming, a delay before each chunk (mock)", lambda r: dig(r, "stream", "slow") or {},
          stream_columns("floor")),
    Table("Worker streaming, no delay", lambda r: dig(r, "stream", "worker", "fast") or {},
          stream_columns("pipe")),
    Table("Worker streaming, a delay before each chunk",
          lambda r: dig(r, "stream", "worker", "slow") or {}, stream_columns("pipe-slow")),
    Table("Async: calls/s from one event loop, by concurrency",
          by_threads(("async", "async"), "rps"), []),
    Table("Async: CPU us per call, by concurrency",
          by_threads(("async", "async"), "cpu_us_per_call"), []),
    Table("Sync openai SDK, sequential", lambda r: dig(r, "async", "sync") or {},
          latency_columns("openai.sync")),
]


def render_table(L: list[str], table: Table, run: Run) -> None:
    rows = {k: v for k, v in table.rows(run).items() if isinstance(v, dict) and "error" not in v}
    if not rows:
        return
    columns = table.columns
    if not columns:  # by_threads: the thread counts are the columns
        keys = sorted({k for v in rows.values() for k in v}, key=lambda k: (len(k), k))
        columns = [(k, lambda e, _, k=k: e.get(k, "n/a")) for k in keys]
    L += [f"## {table.title}", "", "| | " + " | ".join(h for h, _ in columns) + " |",
          "|---|" + "---|" * len(columns)]
    L += [f"| {name} | " + " | ".join(col(e, rows) for _, col in columns) + " |"
          for name, e in rows.items()]
    L.append("")


# ------------------------------------------------------------------ the file

def median_run(runs: list[Run]) -> Run:
    """The median run by the first ratio measured (else the last run)."""
    for ratio in RATIOS:
        keyed = sorted((v, i) for i, r in enumerate(runs) if (v := ratio.value(r)) is not None)
        if keyed:
            return runs[keyed[(len(keyed) - 1) // 2][1]]
    return runs[-1]


def header(res: dict[str, Any], runs: list[Run]) -> list[str]:
    m, s = res.get("machine") or {}, res.get("settings") or {}
    v = m.get("versions") or {}
    smoke = " (smoke run: too few calls for real numbers)" if res.get("mode") == "smoke" else ""
    size = res.get("worker_size") or {}
    measures = res.get("measures") or []
    command = "bash bench/run.sh" + (" --smoke" if smoke else "") + (
        f" --measures {','.join(measures)}" if measures and output_names(measures)[0] != "RESULTS.md"
        else "")
    lines = [f"# Benchmark results{smoke}", "",
             f"`{command}`: {len(runs)} run{'s' if len(runs) > 1 else ''} in "
             f"{res.get('wall_s', 0) / 60:.1f} min.", "",
             f"- Date {m.get('date_utc')}, commit {m.get('commit')}; {m.get('nproc')} CPUs "
             f"({m.get('cpu')}), Linux {m.get('kernel')}; load average "
             + ", ".join(f"{r['loadavg_start'][0]:.2f} to {r['loadavg_end'][0]:.2f}"
                         for r in runs if "loadavg_start" in r and "loadavg_end" in r),
             "- Versions: " + ", ".join(f"{k} {val}" for k, val in v.items() if val),
             f"- Settings: {s.get('calls')} timed calls per contender in {s.get('rounds')} rounds "
             f"(order rotated) after {s.get('warmup')} warm-up calls"]
    if size.get("dry_run_gzip_kib") or size.get("gzip_total"):
        kib = size.get("dry_run_gzip_kib") or size["gzip_total"] / 1024
        lines.append(f"- The Worker's upload: {kib:.0f} KiB gzip (`wrangler deploy --dry-run`)")
    lines += ["", "Times in microseconds unless marked. Absolute times drift on a shared "
              "machine; the ratios, measured side by side in one run, are what to compare "
              "(docs/benchmarks.md: the method).", ""]
    return lines


def write_md(res: dict[str, Any], out: Path) -> Path:
    runs = res.get("runs") or []
    L = header(res, runs)
    if res.get("failed"):
        L += ["## Contenders that did not (fully) run", ""]
        L += [f"- **{name}**: {why}" for name, why in res["failed"].items()] + [""]
    rows = ratio_rows(runs)
    if rows:
        L += [f"## The contract's ratios: median of {len(runs)} run{'s' if len(runs) > 1 else ''}",
              "", "| ratio | median | per run | limit | met |", "|---|---|---|---|---|"]
        L += [f"| {r.what} | {fmt_value(med, r.unit)} | "
              + ", ".join(fmt_value(v, r.unit) for v in per)
              + f" | {'' if r.limit is None else fmt_value(r.limit, r.unit)} | {verdict} |"
              for r, med, per, verdict in rows]
        L.append("")
    rep = median_run(runs) if runs else {}
    if len(runs) > 1:
        L += [f"The tables below are the median run's (run {runs.index(rep) + 1}; peak RSS "
              "and the degradation scenario run in the first run only).", ""]
        rep = {**{k: v for r in runs for k, v in r.items() if k in ("rss", "degrade") and v}, **rep}
    for table in TABLES:
        render_table(L, table, rep)
    core = dig(res, "core", "groups") or {}
    if core:
        L += ["## The core alone (criterion, median per iteration)", "", "| benchmark | median |",
              "|---|---|"]
        L += [f"| {g}/{name} | {d['median_ns'] / 1000:.2f} us |"
              for g, group in core.items() for name, d in group.items()] + [""]
    path = out / output_names(res.get("measures") or [])[0]
    path.write_text("\n".join(L))
    return path


if __name__ == "__main__":
    src = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "results.json"
    print(write_md(json.loads(src.read_text()), src.parent))
