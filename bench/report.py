#!/usr/bin/env python3
"""RESULTS.md and the PNG plots from results.json.

    python report.py [results.json]     # re-render without re-running
    python report.py --no-plots         # RESULTS.md only (the PNGs untouched)

run.py calls ``write_all`` at the end of a run.
"""

from __future__ import annotations

import json
import math
import statistics
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ADAPTIVE = {"tail", "degrade", "tput_health"}  # run.py's: issue 11's measures
sys.path.insert(0, str(HERE))
from contenders import AUX, CONTENDERS, SERVERS  # noqa: E402
import asyncbench  # noqa: E402
import report_adaptive  # noqa: E402
import streaming  # noqa: E402

ROUTER = "f3dx_router"
OLD = "f3dx-0.0.19"
# The Worker's targets in wrangler dev: what each is compared with.
WORKER_PAIRS = (("f3dx", "forward"), ("f3dx-failover", "twofetch"))
# JavaScript workers doing f3dx's work, against the same floors: context for
# the f3dx rows, not a target.
SAMEWORK_PAIRS = (("samework", "forward"), ("samework-failover", "twofetch"))
WORKER_LATENCY_ROWS = ("null", "hop", "forward", "samework", "f3dx", "twofetch",
                       "samework-failover", "f3dx-failover")
WORKER_ROWS = {
    "null": "answered by the dispatcher itself (the runtime's floor for a request)",
    "hop": "through a service binding to a worker that answers at once",
    "forward": "JavaScript: forwards the request to nginx (the floor for a call)",
    "samework": "JavaScript doing f3dx's work: parse, re-encode, fetch with a timeout, parse, "
                "check, answer (context, not a target)",
    "f3dx": "the f3dx worker, one provider",
    "twofetch": "JavaScript: fetch the 429 server, then the ok one (the floor for a failover)",
    "samework-failover": "the same JavaScript, [429, ok]: f3dx's failover work (context, not a "
                         "target)",
    "f3dx-failover": "the f3dx worker, providers [429, ok]",
}


def fmt(x: float | None, digits: int = 0) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if digits == 0 and abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:,.{digits if digits else 1}f}"


def ratio(a: float | None, b: float | None) -> str:
    if not a or not b:
        return "n/a"
    r = a / b
    return f"{r:.2f}x" if r < 100 else f"{r:,.0f}x"


def per_call(d: dict[str, Any]) -> str:
    hits, calls = d.get("upstream_requests"), d.get("calls_incl_warmup")
    return f"{hits / calls:.3f}" if hits is not None and calls else "n/a"


def ordered(d: dict[str, Any]) -> list[str]:
    return [n for n in CONTENDERS + AUX if n in d]


def label(name: str) -> str:
    return f"{name} (breakdown)" if name in AUX else name


# ------------------------------------------------------------------ markdown

def all_runs(res: dict[str, Any]) -> list[dict[str, Any]]:
    """The runs of results.json (one for a file from before --runs)."""
    return res.get("runs") or [res]


def representative(runs: list[dict[str, Any]]) -> int:
    """The median run by f3dx_router's p50 / floor p50 (else the last one)."""
    keyed = []
    for i, r in enumerate(runs):
        v = target_values(r).get("p50")
        if v is not None:
            keyed.append((v, i))
    if not keyed:
        return len(runs) - 1
    keyed.sort()
    return keyed[(len(keyed) - 1) // 2][1]


def write_md(res: dict[str, Any], out: Path) -> Path:
    m = res["machine"]
    v = m["versions"]
    runs = all_runs(res)
    ri = representative(runs)
    rep = dict(runs[ri])
    if "rss" not in rep:  # measured in the first run only
        rep["rss"] = next((r["rss"] for r in runs if r.get("rss")), {})
    L: list[str] = []
    a = L.append
    smoke = res["mode"] == "smoke"
    a("# Benchmark results" + (" (smoke run: too few calls for real numbers)" if smoke else ""))
    a("")
    a(f"- Date: {m['date_utc']}; commit {m['commit']}; {len(runs)} run"
      f"{'s' if len(runs) > 1 else ''} in {res['wall_s'] / 60:.1f} min ({res['mode']} mode): "
      + ", ".join(f"{r.get('wall_s', 0):.0f} s" for r in runs)
      + (f", after the core's criterion benchmark ({core_time(res)})" if core_time(res) else ""))
    a(f"- Machine: {m['nproc']} CPUs ({m['cpu']}), {m['mem']}, Linux {m['kernel']}; "
      f"load average {m['loadavg_start'][0]:.2f} at the start, {m['loadavg_end'][0]:.2f} at the end"
      + ("; per run: " + ", ".join(f"{r['loadavg_start'][0]:.2f} to {r['loadavg_end'][0]:.2f}"
                                   for r in runs if "loadavg_start" in r)
         if len(runs) > 1 else ""))
    a(f"- Versions: Python {v['python']}, f3dx_router {v.get('f3dx-router')}, "
      f"f3dx {v.get('f3dx')}, LiteLLM {v.get('litellm')} (openai SDK {v.get('openai')}), "
      f"httpx {v.get('httpx')}, Portkey gateway {v.get('portkey-gateway')} on Node "
      f"{v.get('node')}, wrangler {v.get('wrangler')}, nginx {v['nginx']}")
    s = res["settings"]
    a(f"- Settings: {s['calls']} timed sequential calls per contender in {s['rounds']} rounds "
      f"(order rotated each round) after {s['warmup']} warm-up calls, each round capped at "
      f"{s['max_s_per_measure'] / s['rounds']:.0f} s for LiteLLM; throughput: "
      f"{s.get('tput_passes', 1)} passes of {s['tput_seconds']:g} s per point, median pass; "
      f"nginx with {s['nginx_workers']} worker process"
      + (f"; Worker: {s['worker_calls']} calls per target in {s['worker_rounds']} rounds after "
         f"{s['worker_warmup']} warm-up calls, throughput at {s['worker_threads']} threads"
         if "worker_calls" in s else ""))
    a("")
    a("Absolute times drift on a shared machine; the ratios, measured side by side in "
      "one run against the same nginx, are what to compare. Times in microseconds (us) "
      "unless marked.")
    a("")
    if res.get("failed"):
        a("## Contenders that did not (fully) run")
        a("")
        for n, why in res["failed"].items():
            a(f"- **{n}**: {why}")
        a("")

    targets_section(L, runs)
    worker_section(L, res, runs, ri)
    stream_section(L, runs)
    report_adaptive.tput_health_section(L, runs)
    report_adaptive.degrade_section(L, runs)
    async_section(L, runs, out)
    core_section(L, res, rep)
    stack_section(L, res)
    if len(runs) > 1:
        a(f"# Detailed results: run {ri + 1} of {len(runs)}")
        a("")
        a(f"The median run by f3dx_router's p50 / floor p50. Every run's samples are in "
          f"results.json (`runs`). Peak RSS is measured in the first run only.")
        a("")
    run_sections(L, rep, s)
    bd = breakdown(rep)
    if bd:
        a("## Where f3dx_router's time goes (sequential, one provider)")
        a("")
        a("| step | p50 | added to the previous row | CPU/call |")
        a("|---|---|---|---|")
        prev = None
        for lbl, p50, cpu in bd:
            a(f"| {lbl} | {fmt(p50)} | {format(p50 - prev, '+,.0f') if prev is not None else ''} | "
              f"{fmt(cpu)} |")
            prev = p50
        a("")
    profiles = sorted((out / "profiles").glob("*.txt")) if (out / "profiles").is_dir() else []
    profiles = [p for p in profiles if not p.name.endswith((".pyspy.txt", ".perf-stat.txt"))]
    if profiles:
        a("Profiles (`bench/profile.py`: perf stat, perf record and py-spy, made separately "
          "from this run): " + ", ".join(f"[{p.name}](profiles/{p.name})" for p in profiles) + ".")
        a("")
    a("Plots: [latency_cdf.png](latency_cdf.png), [throughput.png](throughput.png), "
      "[tail.png](tail.png), [worker_cdf.png](worker_cdf.png).")
    a("")
    path = out / "RESULTS.md"
    path.write_text("\n".join(L))
    return path




def run_sections(L: list[str], res: dict[str, Any], s: dict[str, Any]) -> None:
    """The native side's tables of one run."""
    a = L.append
    lat = res.get("latency") or {}
    floor = lat.get("floor", {}).get("summary", {})
    f50 = floor.get("p50")
    if lat:
        a("## Sequential latency, one provider")
        a("")
        a("| contender | n | p50 | p99 | p99.9 | CPU/call | p50 / floor p50 | "
          "p99 / floor p50 | p50 / floor p50, per round | p50 / f3dx_router p50 | "
          "upstream requests per call |")
        a("|---|---|---|---|---|---|---|---|---|---|---|")
        r50 = lat.get(ROUTER, {}).get("summary", {}).get("p50")
        for n in ordered(lat):
            sm = lat[n]["summary"]
            fl_rounds = lat.get("floor", {}).get("rounds", [])
            per_round = ", ".join(
                f"{rr['p50'] / fr['p50']:.2f}" for rr, fr in zip(lat[n]["rounds"], fl_rounds))
            a(f"| {label(n)} | {sm['n']} | {fmt(sm['p50'])} | {fmt(sm['p99'])} | "
              f"{fmt(sm['p99.9'])} | {fmt(lat[n]['cpu_us_per_call'])} | {ratio(sm['p50'], f50)} | "
              f"{ratio(sm['p99'], f50)} | {per_round} | {ratio(sm['p50'], r50)} | "
              f"{per_call(lat[n])} |")
        a("")
        a("CPU/call is the worker process's CPU time (all its threads) per call; the "
          "upstream's is not in it. `floor+json` is the floor plus `json.dumps` of the "
          "request and `json.loads` of the response; `f3dx_router.route` is the same router "
          "through `route()` (a RouteResult with the attempts) instead of "
          "`chat_completions()`.")
        a("")
        if SERVERS & set(lat):
            a("`portkey` is the Portkey gateway's Node build, a server of its own on 127.0.0.1, "
              "called from Python over a persistent HTTP/1.1 connection (http.client, "
              "`json.dumps`/`json.loads` per call): its times include one more loopback hop "
              "(client to gateway) than the in-process contenders, and its CPU/call adds the "
              "gateway process's CPU time to the client's.")
            a("")

    fo = res.get("failover") or {}
    if fo:
        a("## Failover: first provider 429 (no Retry-After), second 200")
        a("")
        a("| contender | n | p50 | p99 | p50 / floor p50 (one call) | "
          "p50 / floor failover p50 | upstream requests per call |")
        a("|---|---|---|---|---|---|---|")
        ff50 = fo.get("floor", {}).get("summary", {}).get("p50")
        for n in ordered(fo):
            sm = fo[n]["summary"]
            per = per_call(fo[n])
            a(f"| {label(n)} | {sm['n']} | {fmt(sm['p50'])} | {fmt(sm['p99'])} | "
              f"{ratio(sm['p50'], f50)} | {ratio(sm['p50'], ff50)} | {per} |")
        a("")
        a("The floor's and httpx's failover is written by hand (two requests, two "
          "persistent connections). The last column, from nginx's request counter "
          "(stub_status), checks that every call made exactly two requests: the 429, then "
          "the 200 (no cooldown skipped the 429, no SDK retry repeated it).")
        a("")

    tp = res.get("throughput") or {}
    if tp:
        threads = sorted({int(t) for d in tp.values() for t in d}, key=int)
        a("## Throughput: threads sharing one client or router (calls/s)")
        a("")
        a("| contender | " + " | ".join(f"{t} thread{'s' if t > 1 else ''}" for t in threads)
          + " | CPU/call at 16 | new connections per 1000 calls, at 16 / 64 | "
          "f3dx_router / this, at 16 |")
        a("|---|" + "---|" * (len(threads) + 3))
        r16 = tp.get(ROUTER, {}).get("16", {}).get("rps")
        for n in ordered(tp):
            cells = []
            for t in threads:
                d = tp[n].get(str(t), {})
                cells.append("failed" if "error" in d else fmt(d.get("rps"))
                             + (f" ({d['error_count']} errors)" if d.get("error_count") else ""))
            c16 = tp[n].get("16", {}).get("cpu_us_per_call")
            nc = " / ".join(fmt(tp[n].get(t, {}).get("new_conns_per_1k"), 1) for t in ("16", "64"))
            a(f"| {label(n)} | " + " | ".join(cells) + f" | {fmt(c16)} us | {nc} | "
              f"{ratio(r16, tp[n].get('16', {}).get('rps'))} |")
        a("")
        a("The floor cannot share a raw socket between threads: each of its threads has its "
          "own connection. httpx's pool holds up to 256 connections; f3dx_router keeps 16 "
          "idle connections per host. On 2 CPUs, the client and nginx share the cores, so "
          "this measures CPU per call more than concurrency. The passes of each point are in "
          "results.json (`passes_rps`).")
        a("")

    imp = res.get("import") or {}
    if imp:
        a("## Import time (fresh interpreter, median)")
        a("")
        a("| contender | statement | ms | / f3dx_router |")
        a("|---|---|---|---|")
        rms = imp.get(ROUTER, {}).get("ms")
        for n in ordered(imp):
            d = imp[n]
            a(f"| {n} | `{d['stmt']}` | " + (f"failed: {d['error']}" if d.get("error")
                                             else f"{d['ms']:.1f} | {ratio(d['ms'], rms)}") + " |")
        a("")
        for n in sorted(SERVERS & set(res.get("setup") or {})):
            su = res["setup"][n]
            a(f"`{n}` has no Python import: it is a Node server. From its spawn to listening: "
              f"{su['setup_s'] * 1000:.0f} ms; its first answer took "
              f"{su.get('first_call_s', float('nan')) * 1000:.0f} ms more.")
            a("")

    rss = res.get("rss") or {}
    if rss:
        a("## Peak RSS")
        a("")
        a("| contender | calls | peak RSS (MiB) | after setup (MiB) | growth over the calls (MiB) |")
        a("|---|---|---|---|---|")
        for n in ordered(rss):
            d = rss[n]
            if "error" in d:
                a(f"| {n} | failed: {d['error']} | | | |")
                continue
            peak, setup = d["peak_rss_mib"], d["rss_after_setup_mib"]
            note = ""
            if "server_peak_rss_mib" in d:  # client + its server, both peaks
                peak += d["server_peak_rss_mib"]
                setup += d.get("server_rss_after_setup_mib") or 0.0
                note = (f" (client {d['peak_rss_mib']:.1f} + gateway "
                        f"{d['server_peak_rss_mib']:.1f})")
            a(f"| {n} | {d['calls']:,} ({d['seconds']:.0f} s) | {peak:.1f}{note} | "
              f"{setup:.1f} | {peak - setup:.1f} |")
        a("")
        a(f"Each in a fresh process: setup, then up to {s['rss_calls']:,} sequential calls or "
          f"{s['rss_max_s']:.0f} s, whichever comes first (LiteLLM reaches the time cap).")
        a("")

    tail_section(L, res.get("tail") or {})

    # Ratio matrices.
    ratio_matrices(L, lat, tp)


def tail_section(L: list[str], tail: dict[str, Any], suffix: str = "") -> None:
    a = L.append
    if tail.get("variants"):
        mk = tail["mock"]
        a("## Tail experiment (f3dx_router, two providers on one heavy-tailed mock)" + suffix)
        a("")
        a(f"The mock answers in {mk['fast_ms']:g} ms with probability "
          f"{1 - mk['slow_frac']:.2f} and in {mk['slow_ms']:g} ms otherwise (an asyncio "
          f"server; its 5 ms sleeps take about 5.5-6 ms). Upstream requests are counted "
          f"at the mock, cancelled hedge legs included.")
        a("")
        a("| variant | n | p50 (ms) | p99 (ms) | p99.9 (ms) | p99 / p50 | extra upstream requests |")
        a("|---|---|---|---|---|---|---|")
        for lbl, d in tail["variants"].items():
            sm = d["summary"]
            a(f"| {lbl} | {sm['n']} | {sm['p50'] / 1000:.2f} | {sm['p99'] / 1000:.2f} | "
              f"{sm['p99.9'] / 1000:.2f} | {sm['p99'] / sm['p50']:.2f} | {d['extra_pct']:+.1f}% |")
        a("")
        a(f"Observed p95 of the unhedged run (nearest rank): {tail['observed_p95_ms']:.2f} ms; "
          f"hedge delay "
          f"{tail['delay_ms']} ms" + (f" ({tail['delay_note']})" if tail.get("delay_note") else "")
          + ".")
        a("")
        a("Note: with 5% slow calls, more than 1% of calls are hedged, so p99 is a hedged call: "
          "at least the delay plus a fresh fast answer, about twice the fast mode. A p99 below "
          "2x p50 then needs a delay below the fast mode's p50, i.e. more hedges. Likewise "
          "p99.9 with K=2 is about the slow mode, since 0.25% of calls draw two slow answers.")
        a("")
        report_adaptive.tail_auto(L, tail)
    elif tail.get("error"):
        a(f"## Tail experiment\n\nFailed: {tail['error']}\n")


def ratio_matrices(L: list[str], lat: dict[str, Any], tp: dict[str, Any]) -> None:
    a = L.append
    if lat:
        names = [n for n in CONTENDERS if n in lat]
        a("## Ratios between contenders")
        a("")
        a("p50 latency of the row / p50 of the column (below 1: the row is faster):")
        a("")
        a("| | " + " | ".join(names) + " |")
        a("|---|" + "---|" * len(names))
        for r in names:
            a(f"| {r} | " + " | ".join(ratio(lat[r]["summary"]["p50"], lat[c]["summary"]["p50"])
                                     for c in names) + " |")
        a("")
    if tp:
        names = [n for n in CONTENDERS if "16" in tp.get(n, {}) and "rps" in tp[n]["16"]]
        a("Throughput at 16 threads of the row / the column's (above 1: the row does more):")
        a("")
        a("| | " + " | ".join(names) + " |")
        a("|---|" + "---|" * len(names))
        for r in names:
            a(f"| {r} | " + " | ".join(ratio(tp[r]["16"]["rps"], tp[c]["16"]["rps"])
                                     for c in names) + " |")
        a("")



def breakdown(res: dict[str, Any]) -> list[tuple[str, float, float]]:
    lat = res.get("latency") or {}
    rows = []
    for n, lbl in (("floor", "floor: raw socket, request prebuilt"),
                   ("floor+json", "+ json.dumps / json.loads in Python"),
                   ("f3dx_router.route", "f3dx_router.route()"),
                   ("f3dx_router", "f3dx_router.chat_completions()")):
        if n in lat:
            rows.append((lbl, lat[n]["summary"]["p50"], lat[n]["cpu_us_per_call"]))
    return rows if len(rows) > 1 else []


# ------------------------------------------------------------------ targets

# key, the issue's target, unit, limit, whether higher is better
TARGETS = [
    ("p50", "f3dx_router p50 <= 1.15x floor p50", "x", 1.15, False),
    ("p99", "f3dx_router p99 <= 1.6x floor p50", "x", 1.6, False),
    ("failover_p50", "f3dx_router failover p50 <= 2.0x floor p50", "x", 2.0, False),
    ("tput_old", "throughput at 16 threads >= 1.3x f3dx-0.0.19", "x", 1.3, True),
    ("tput_litellm", "throughput at 16 threads >= 50x litellm", "x", 50.0, True),
    ("import_ms", "import f3dx_router <= 30 ms", "ms", 30.0, False),
    ("hedge_p99", "delayed hedging p99 <= 2x p50", "x", 2.0, False),
    ("hedge_extra", "delayed hedging extra upstream requests <= 10%", "%", 10.0, False),
    ("worker_p50", "Worker p50 <= 1.1x the forwarding JS worker's (wrangler dev)", "x", 1.1,
     False),
    ("worker_failover_p50",
     "Worker failover p50 <= 1.1x the two-fetch JS worker's (wrangler dev)", "x", 1.1, False),
    # Issue 10 (the `stream` measure); a row is shown only when measured.
    ("stream_ttfc", "issue 10, stream, no delay: f3dx_router time to first chunk p50 <= 1.3x "
     "the floor's", "x", 1.3, False),
    ("stream_total", "issue 10, stream, no delay: f3dx_router whole stream p50 <= 1.2x the "
     "floor's", "x", 1.2, False),
    ("stream_slow_ttfc", "issue 10, stream, delayed chunks: f3dx_router time to first chunk "
     "p50 <= 1.3x the floor's", "x", 1.3, False),
    ("stream_slow_total", "issue 10, stream, delayed chunks: f3dx_router whole stream p50 <= "
     "1.2x the floor's", "x", 1.2, False),
    ("worker_stream_ttfc", "issue 10, Worker stream, no delay: time to first chunk p50 <= 1.3x "
     "the piping JS worker's (wrangler dev)", "x", 1.3, False),
    ("worker_stream_total", "issue 10, Worker stream, no delay: whole stream p50 <= 1.3x the "
     "piping JS worker's (wrangler dev)", "x", 1.3, False),
    ("worker_stream_slow_ttfc", "issue 10, Worker stream, delayed chunks: time to first chunk "
     "p50 <= 1.3x the piping JS worker's (wrangler dev)", "x", 1.3, False),
    ("worker_stream_slow_total", "issue 10, Worker stream, delayed chunks: whole stream p50 <= "
     "1.3x the piping JS worker's (wrangler dev)", "x", 1.3, False),
]
TARGETS += report_adaptive.TARGETS  # issue 11; a row is shown only when measured
STREAM_TARGETS = {key for key, *_ in TARGETS if "stream" in key}
# Rows left out when not measured (files from before these measures existed).
OPTIONAL_TARGETS = STREAM_TARGETS | report_adaptive.KEYS


TARGET_HIGHER = {key: higher for key, _, _, _, higher in TARGETS}


def worker_ratios(run: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Per pair (f3dx, or the same-work JS worker, vs its JS floor): p50s,
    the raw ratio, and the ratio with the dispatch hop (hop p50 - null p50)
    taken off both sides."""
    lat = (run.get("worker") or {}).get("latency") or {}
    p50 = {t: d["summary"]["p50"] for t, d in lat.items() if d.get("samples_us")}
    out: dict[str, dict[str, float]] = {}
    hop = p50["hop"] - p50["null"] if "hop" in p50 and "null" in p50 else None
    for mine, floor in WORKER_PAIRS + SAMEWORK_PAIRS:
        if mine in p50 and floor in p50:
            d = {"p50": p50[mine], "floor_p50": p50[floor], "raw": p50[mine] / p50[floor]}
            if hop is not None and p50[floor] - hop > 0:
                d["hop"] = hop
                d["net"] = (p50[mine] - hop) / (p50[floor] - hop)
            out[mine] = d
    return out


def target_values(run: dict[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    lat, fo, tp = run.get("latency") or {}, run.get("failover") or {}, run.get("throughput") or {}
    f50 = lat.get("floor", {}).get("summary", {}).get("p50")
    r = lat.get(ROUTER, {}).get("summary", {})
    if f50 and r:
        out["p50"] = r["p50"] / f50
        out["p99"] = r["p99"] / f50
    rf = fo.get(ROUTER, {}).get("summary", {})
    if f50 and rf:
        out["failover_p50"] = rf["p50"] / f50
    r16 = tp.get(ROUTER, {}).get("16", {}).get("rps")
    for key, other in (("tput_old", OLD), ("tput_litellm", "litellm")):
        o16 = tp.get(other, {}).get("16", {}).get("rps")
        if r16 and o16:
            out[key] = r16 / o16
    ms = (run.get("import") or {}).get(ROUTER, {}).get("ms")
    if ms is not None:
        out["import_ms"] = ms
    tail = (run.get("tail") or {}).get("variants") or {}
    delayed = [d for k, d in tail.items() if "delay" in k]
    if delayed:
        sm = delayed[0]["summary"]
        out["hedge_p99"] = sm["p99"] / sm["p50"]
        out["hedge_extra"] = delayed[0]["extra_pct"]
    wr = worker_ratios(run)
    for key, mine in (("worker_p50", "f3dx"), ("worker_failover_p50", "f3dx-failover")):
        if mine in wr:
            out[key] = wr[mine].get("net", wr[mine]["raw"])
    out.update(stream_values(run))
    out.update(report_adaptive.values(run))
    return out


def fmt_target(v: float | None, unit: str) -> str:
    if v is None:
        return "n/a"
    if unit == "x":
        return f"{v:.2f}x"
    if unit == "ms":
        return f"{v:.1f} ms"
    return f"{v:.1f}%"


def targets(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each target: its value in every run, the median, and whether the
    median meets it."""
    values = [target_values(r) for r in runs]
    rows = []
    for key, goal, unit, limit, higher in TARGETS:
        per = [v.get(key) for v in values]
        got = [x for x in per if x is not None]
        med = statistics.median(got) if got else None
        met = None if med is None else (med >= limit if higher else med <= limit)
        rows.append({"key": key, "goal": goal, "unit": unit, "limit": limit, "per_run": per,
                     "median": med, "met": met,
                     "by": None if med is None else (med / limit if not higher else limit / med)})
    return rows


def targets_section(L: list[str], runs: list[dict[str, Any]], issue: str = "Issue 4",
                    keys: set[str] | None = None) -> None:
    a = L.append
    n = len(runs)
    a(f"## {issue} targets: median of {n} run{'s' if n > 1 else ''}" if n > 1
      else f"## {issue} targets, this run")
    a("")
    a("| target | median | per run | met |")
    a("|---|---|---|---|")
    for t in targets(runs):
        if keys is not None and t["key"] not in keys:
            continue
        if t["median"] is None and t["key"] in OPTIONAL_TARGETS:
            continue  # the stream (or an issue 11) measure did not run
        per = ", ".join(fmt_target(v, t["unit"]) for v in t["per_run"])
        met = "n/a" if t["met"] is None else ("yes" if t["met"] else "**no**")
        if t["met"] is False:
            met += f" ({(t['by'] - 1) * 100:.0f}% {'short' if TARGET_HIGHER[t['key']] else 'over'})"
        if t["median"] is None:
            a(f"| {t['goal']} | not measured | | n/a |")
            continue
        a(f"| {t['goal']} | {fmt_target(t['median'], t['unit'])} | {per} | {met} |")
    a("")
    if n < 3:
        a(f"{n} run{'s' if n > 1 else ''}; the issue asks for the median of at least three.")
        a("")
    if keys is None:
        a("The Worker rows compare p50s inside one `wrangler dev` with the dispatcher's service-"
          "binding hop taken off both sides (see the Worker section: the raw ratios, hop "
          "included, are closer to 1).")
        a("")
    if any(stream_values(r) for r in runs):
        delay = next((r["stream"].get("upstream", {}).get("delay_ms") for r in runs
                      if r.get("stream")), None)
        a(f"The issue 10 rows: 'delayed chunks' is {fmt(delay, 1)} ms before each chunk; the "
          "Worker's stream rows take the dispatch hop off both sides too. See the streaming "
          "section.")
        a("")


def core_time(res: dict[str, Any]) -> str:
    c = res.get("core") or {}
    if "build_s" in c:
        return f"build {c['build_s']:.0f} s, run {c.get('run_s', 0):.0f} s"
    return ""


# ------------------------------------------------------------------ the Worker

def worker_section(L: list[str], res: dict[str, Any], runs: list[dict[str, Any]],
                   ri: int) -> None:
    a = L.append
    size = res.get("worker_size") or {}
    wk = [r.get("worker") for r in runs if r.get("worker") is not None]
    if not size and not wk:
        return
    a("## The Cloudflare Worker under `wrangler dev`")
    a("")
    if size.get("build_error"):
        a(f"**The worker's build failed** ({size['build_error']}): what follows measured the "
          f"previous build left in worker/build.")
        a("")
    if size.get("error"):
        a(f"Upload size: not measured: {size['error']}")
    elif size:
        dry = (f"`wrangler deploy --dry-run`: {size['dry_run_total_kib']:.1f} KiB, "
               f"**gzip {size['dry_run_gzip_kib']:.1f} KiB**" if "dry_run_gzip_kib" in size
               else f"`wrangler deploy --dry-run` failed: {size.get('dry_run_error')}")
        a(f"Upload size of the standalone worker (worker/build): {dry}; by file, gzip -9: "
          f"index_bg.wasm {size['wasm_bytes']:,} B (gzip {size['wasm_gzip']:,} B) + JS "
          f"{size['js_bytes']:,} B (gzip {size['js_gzip']:,} B) = gzip "
          f"{size['gzip_total']:,} B (Workers' limit: 3 MiB free, 10 MiB paid).")
    a("")
    a("One `wrangler dev` runs every worker in one workerd process. Only its first config "
      "gets the HTTP port, so the first is a dispatcher (`bench/workers/dispatch.js`) that "
      "passes each request unchanged, through a service binding, to the worker named by its "
      "`x-bench-target` header; every measured worker pays that same hop, and the `null` / "
      "`hop` rows measure it. Calls come from Python, one keep-alive connection per target "
      "(http.client), sequentially, in rounds with the order rotated. CPU/call is the CPU "
      "time of wrangler's whole process group (node and workerd) over the block of calls, "
      "per call (the client's and nginx's are not in it). wrangler attaches its devtools "
      "inspector to one worker of a multi-config session, and then reports every fetch() of "
      "that worker to it (and to its debug log): milliseconds of CPU a call. The harness "
      "gives the inspector one more worker that is never called (bundled last); the "
      "`inspector` line says where it went.")
    a("")
    errors = [(i, r["worker"]["error"]) for i, r in enumerate(runs)
              if (r.get("worker") or {}).get("error")]
    for i, e in errors:
        a(f"- run {i + 1}: **not measured**: {e}")
    if errors:
        a("")
    wi = ri
    if not (runs[wi].get("worker") or {}).get("latency"):
        wi = next((i for i, r in enumerate(runs) if (r.get("worker") or {}).get("latency")), ri)
    w = runs[wi].get("worker") or {}
    lat = w.get("latency") or {}
    if lat:
        wr = worker_ratios({"worker": w})
        hop = next((d["hop"] for d in wr.values() if "hop" in d), None)
        a("Sequential latency" + (f", run {wi + 1} of {len(runs)}" if len(runs) > 1 else "")
          + f" (wrangler dev ready in {w.get('start_s', float('nan')):.1f} s; inspector on "
          f"`{w.get('inspector')}`" + ("" if w.get("inspector_on_idle") else
                                       ": **a measured worker, so these numbers are biased**")
          + "):")
        a("")
        a("| target | what | n | p50 | p99 | p99.9 | wrangler CPU/call | upstream requests "
          "per call | p50 / its JS floor | same, hop taken off | p50 / floor, per round |")
        a("|---|---|---|---|---|---|---|---|---|---|---|")
        floors = {mine: floor for mine, floor in WORKER_PAIRS + SAMEWORK_PAIRS}
        for t in WORKER_LATENCY_ROWS:
            if t not in lat:
                continue
            d = lat[t]
            sm = d["summary"]
            fl = floors.get(t)
            rr = wr.get(t, {})
            per_round = ", ".join(f"{x['p50'] / y['p50']:.2f}" for x, y in
                                  zip(d["rounds"], lat[fl]["rounds"])) if fl in lat else ""
            a(f"| {t} | {WORKER_ROWS[t]} | {sm['n']} | {fmt(sm['p50'])} | {fmt(sm['p99'])} | "
              f"{fmt(sm['p99.9'])} | {fmt(d['cpu_us_per_call'])} | {per_call(d)} | "
              f"{fmt_target(rr.get('raw'), 'x') if rr else ''} | "
              f"{fmt_target(rr.get('net'), 'x') if rr else ''} | {per_round} |")
        a("")
        if hop is not None:
            a(f"The dispatch hop (hop p50 - null p50) is {fmt(hop)} us; 'hop taken off' is "
              f"(p50 - {fmt(hop)}) / (floor p50 - {fmt(hop)}): the ratio as if each worker were "
              f"called without the dispatcher, the way a single-worker `wrangler dev` would serve "
              f"it. The targets use it.")
            a("")
        if any(t in lat for t, _ in SAMEWORK_PAIRS):
            # f3dx against the same-work worker: the same floor, so the
            # ratio of their ratios to it (hop taken off when it can be).
            net = {t: d.get("net", d["raw"]) for t, d in wr.items()}
            vs = [f"`{m}` is {fmt_target(net[m] / net[o], 'x')} `{o}`'s p50"
                  for m, o in (("f3dx", "samework"), ("f3dx-failover", "samework-failover"))
                  if m in wr and o in wr]
            a("`samework` and `samework-failover` (`bench/workers/samework.js`) are plain "
              "JavaScript workers that do the f3dx worker's work for a call (read and "
              "`JSON.parse` the request, `JSON.stringify` it again, fetch with an "
              "AbortController and a 10 s abort timer, read and `JSON.parse` the answer, check "
              "its `choices`, answer a new JSON Response with the x-f3dx headers; the failover "
              "reads and parses the 429's error first): what any worker doing a router's job "
              "costs in this runtime, shown as context; the issue's targets stay f3dx against "
              "the plain floors, `forward` and `twofetch`"
              + (f" (here {' and '.join(vs)}, hop taken off)." if vs else "."))
            a("")
    if len(wk) > 1 or len(runs) > 1:
        a("Per run (p50s in us):")
        a("")
        a("| run | forward | f3dx | f3dx / forward | same, hop off | twofetch | f3dx-failover | "
          "f3dx-failover / twofetch | same, hop off | hop |")
        a("|---|---|---|---|---|---|---|---|---|---|")
        for i, r in enumerate(runs):
            wr = worker_ratios(r)
            c, f = wr.get("f3dx", {}), wr.get("f3dx-failover", {})
            if not c and not f:
                a(f"| {i + 1} | not measured | | | | | | | | |")
                continue
            a(f"| {i + 1} | {fmt(c.get('floor_p50'))} | {fmt(c.get('p50'))} | "
              f"{fmt_target(c.get('raw'), 'x')} | {fmt_target(c.get('net'), 'x')} | "
              f"{fmt(f.get('floor_p50'))} | {fmt(f.get('p50'))} | {fmt_target(f.get('raw'), 'x')} | "
              f"{fmt_target(f.get('net'), 'x')} | {fmt(c.get('hop', f.get('hop')))} |")
        a("")
    tp = w.get("throughput") or {}
    if tp:
        threads = sorted({int(t) for d in tp.values() for t in d})
        a("Throughput (calls/s; each thread its own keep-alive connection; median of "
          f"{len(next(iter(next(iter(tp.values())).values()))['passes_rps'])} passes):")
        a("")
        a("| target | " + " | ".join(f"{t} thread{'s' if t > 1 else ''}" for t in threads)
          + " | wrangler CPU/call at the most threads | f3dx / its floor, per thread count |")
        a("|---|" + "---|" * (len(threads) + 2))
        floors = {mine: floor for mine, floor in WORKER_PAIRS}
        for t in ("forward", "f3dx", "twofetch", "f3dx-failover"):
            if t not in tp:
                continue
            cells = [fmt(tp[t].get(str(n), {}).get("rps")) + (
                f" ({tp[t][str(n)]['error_count']} errors)"
                if tp[t].get(str(n), {}).get("error_count") else "") for n in threads]
            fl = floors.get(t)
            rat = ", ".join(ratio(tp[t].get(str(n), {}).get("rps"), tp[fl].get(str(n), {}).get("rps"))
                            for n in threads) if fl in tp else ""
            a(f"| {t} | " + " | ".join(cells)
              + f" | {fmt(tp[t].get(str(threads[-1]), {}).get('cpu_us_per_call'))} us | {rat} |")
        a("")
        a("On 2 CPUs, node, workerd, the Python client and nginx share the cores: throughput "
          "here is CPU per call (the CPU/call column) more than concurrency.")
        a("")
    if lat:
        a("Plot: [worker_cdf.png](worker_cdf.png).")
        a("")


# ------------------------------------------------------- streaming (issue 10)

STREAM_ROWS = {
    "floor": "raw socket, request prebuilt; finds every event boundary, reads to the end; no "
             "JSON",
    "httpx": "httpx.Client.stream, iter_lines, json.loads per data line",
    "openai": "the openai SDK straight at the upstream, stream=True",
    "litellm": "LiteLLM Router, completion(stream=True)",
    ROUTER: "Router.chat_completions with stream: True, the ChatStream iterated",
    "floor+json": "the floor plus json.loads of every event and its text taken out",
}
STREAM_WORKER_ROWS = {
    "null": "answered by the dispatcher itself (whole small answer)",
    "hop": "through a service binding to a worker that answers at once (whole small answer)",
    "pipe": "JavaScript: fetch, `new Response(upstream.body)`: the floor, no delay",
    "f3dx-stream": "the f3dx worker, stream: true, no delay",
    "pipe-slow": "the same JavaScript, delayed chunks",
    "f3dx-stream-slow": "the f3dx worker, delayed chunks",
}


def stream_worker_ratios(run: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Per variant, the f3dx worker against the piping one: p50s of the time
    to first chunk and of the whole stream, raw and with the dispatch hop
    (hop p50 - null p50, whole answers) taken off both sides."""
    w = (run.get("stream") or {}).get("worker") or {}
    fast = w.get("fast") or {}
    hop = None
    if "hop" in fast and "null" in fast:
        hop = fast["hop"]["total"]["p50"] - fast["null"]["total"]["p50"]
    out: dict[str, dict[str, float]] = {}
    for variant, (mine, floor) in (("fast", ("f3dx-stream", "pipe")),
                                   ("slow", ("f3dx-stream-slow", "pipe-slow"))):
        d = w.get(variant) or {}
        if mine not in d or floor not in d:
            continue
        r: dict[str, float] = {}
        for k in ("ttfc", "total"):
            m, f = d[mine][k]["p50"], d[floor][k]["p50"]
            r[f"{k}_p50"], r[f"{k}_floor_p50"], r[f"{k}_raw"] = m, f, m / f
            if hop is not None and f - hop > 0:
                r["hop"] = hop
                r[f"{k}_net"] = (m - hop) / (f - hop)
        out[variant] = r
    return out


def stream_values(run: dict[str, Any]) -> dict[str, float]:
    st = run.get("stream") or {}
    out: dict[str, float] = {}
    for variant, sfx in (("fast", ""), ("slow", "_slow")):
        d = st.get(variant) or {}
        if "floor" in d and ROUTER in d:
            for k in ("ttfc", "total"):
                out[f"stream{sfx}_{k}"] = d[ROUTER][k]["p50"] / d["floor"][k]["p50"]
    for variant, r in stream_worker_ratios(run).items():
        sfx = "" if variant == "fast" else "_slow"
        for k in ("ttfc", "total"):
            out[f"worker_stream{sfx}_{k}"] = r.get(f"{k}_net", r[f"{k}_raw"])
    return out


def stream_table(L: list[str], d: dict[str, Any]) -> None:
    a = L.append
    fl = d.get("floor")
    a("| contender | what | n | first chunk p50 | p99 | p50 / floor p50 | p99 / floor p99 | "
      "whole stream p50 | p99 | p50 / floor p50 | p99 / floor p99 | CPU/call | upstream "
      "requests per call | first chunk, whole: p50 / floor p50, per round |")
    a("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for n in streaming.CONTENDERS + streaming.AUX:
        if n not in d:
            continue
        x = d[n]
        t, w = x["ttfc"], x["total"]
        per_round = ""
        if fl:
            per_round = "; ".join(
                f"{r['ttfc']['p50'] / f['ttfc']['p50']:.2f}, {r['total']['p50'] / f['total']['p50']:.2f}"
                for r, f in zip(x["rounds"], fl["rounds"]))
        ft, fw = (fl["ttfc"], fl["total"]) if fl else ({}, {})
        a(f"| {n}{' (breakdown)' if n in streaming.AUX else ''} | {STREAM_ROWS.get(n, '')} | "
          f"{t['n']} | {fmt(t['p50'])} | {fmt(t['p99'])} | {ratio(t['p50'], ft.get('p50'))} | "
          f"{ratio(t['p99'], ft.get('p99'))} | {fmt(w['p50'])} | {fmt(w['p99'])} | "
          f"{ratio(w['p50'], fw.get('p50'))} | {ratio(w['p99'], fw.get('p99'))} | "
          f"{fmt(x['cpu_us_per_call'])} | {per_call(x)} | {per_round} |")
    a("")
    r, fj = d.get(ROUTER), d.get("floor+json")
    if r and fj:
        a(f"f3dx_router against `floor+json`: first chunk p50 "
          f"{ratio(r['ttfc']['p50'], fj['ttfc']['p50'])}, whole stream p50 "
          f"{ratio(r['total']['p50'], fj['total']['p50'])}, CPU/call "
          f"{ratio(r['cpu_us_per_call'], fj['cpu_us_per_call'])}.")
        a("")


def stream_section(L: list[str], runs: list[dict[str, Any]]) -> None:
    a = L.append
    st_runs = [(i, r["stream"]) for i, r in enumerate(runs) if r.get("stream")]
    if not st_runs:
        return
    # The median run by f3dx_router's first chunk p50 / the floor's (no delay).
    keyed = sorted((stream_values(r).get("stream_ttfc", 0.0), i) for i, r in enumerate(runs)
                   if r.get("stream"))
    si = keyed[(len(keyed) - 1) // 2][1]
    st = runs[si]["stream"]
    up = st.get("upstream") or {}
    which = f", run {si + 1} of {len(runs)}" if len(runs) > 1 else ""
    a("## Streaming (issue 10)")
    a("")
    a(f"A stream is {up.get('chunks')} `chat.completion.chunk` events of 4 words (about 4 "
      f"tokens) of text each, the first with `role: assistant`, then a chunk with "
      f"`finish_reason: stop` and `data: [DONE]`: {up.get('body_bytes', 0):,} bytes of "
      f"OpenAI SSE. **No delay**: a private nginx serves it as a static file (Content-Length), "
      f"all at once. **Delayed**: `bench/streammock.py` (asyncio, on loopback) sends the head "
      f"at once, then chunk k at k x {fmt(up.get('delay_ms'), 1)} ms, one HTTP chunk per event "
      f"(chunked encoding): about {fmt((up.get('chunks') or 0) * (up.get('delay_ms') or 0))} ms "
      f"a stream. Each contender runs in its own process and reads each stream to its end; "
      f"one contender at a time, in rounds with the order rotated. 'first chunk' is the time "
      f"from before the call to when the caller has the first chunk with text (for the floor: "
      f"the first event boundary; the first event carries text); 'whole stream' is to the end "
      f"of the stream (`[DONE]` and the end of the response read). CPU/call is the worker "
      f"process's CPU time (all its threads) per stream. Times in us.")
    a("")
    for f, why in (st.get("failed") or {}).items():
        a(f"- **{f}**: {why}")
    if st.get("failed"):
        a("")
    for variant, title in (("fast", "No delay between chunks (nginx)"),
                           ("slow", f"{fmt(up.get('delay_ms'), 1)} ms before each chunk "
                                    f"(streammock.py)")):
        d = st.get(variant) or {}
        if not d:
            continue
        a(f"### {title}{which}")
        a("")
        stream_table(L, d)
    a("The floor reads with a prebuilt request over one keep-alive socket, finds each "
      "`\\n\\n` as the bytes arrive and stops at the end of the response (Content-Length, "
      "or the last chunk); it parses no JSON and takes no text out. Every other contender "
      "gets each chunk's text (`choices[0].delta.content`), as a caller does: httpx from "
      "`json.loads` of each `data:` line of `iter_lines()`, the openai SDK and LiteLLM as "
      "their chunk objects, f3dx_router as dicts from the ChatStream (`with "
      "router.chat_completions({..., \"stream\": True}) as s: for chunk in s`). LiteLLM's "
      "Router is configured as in the non-streamed measures (no retries, no cooldowns).")
    a("")
    w = st.get("worker") or {}
    if w.get("error"):
        a(f"The Worker: **not measured**: {w['error']}")
        a("")
        return
    if not (w.get("fast") or w.get("slow")):
        return
    wr = stream_worker_ratios({"stream": st})
    hop = next((x["hop"] for x in wr.values() if "hop" in x), None)
    a(f"### The Worker streaming under `wrangler dev`{which}")
    a("")
    a(f"A `wrangler dev` of its own (ready in {w.get('start_s', float('nan')):.1f} s; inspector "
      f"on `{w.get('inspector')}`" + ("" if w.get("inspector_on_idle") else
                                      ": **a measured worker, so these numbers are biased**")
      + "), with the worker measure's dispatcher, `hop` and idle worker: the f3dx worker "
      "(`stream: true`, one provider) against `bench/workers/pipe.js`, which fetches the "
      "upstream and answers `new Response(upstream.body, ...)`, the body piped through as it "
      "arrives: the runtime's floor for a stream. Each target streams from the same nginx "
      "(no delay) or mock (delayed) as above, read by the floor's reader (one keep-alive "
      "connection per target, sequential, rounds with the order rotated); `null` and `hop` "
      "(whole small answers, http.client) measure the dispatch hop. CPU/call is wrangler's "
      "process group's (node and workerd).")
    a("")
    a("| target | what | n | first chunk p50 | p99 | whole stream p50 | p99 | wrangler "
      "CPU/call | upstream requests per call | first chunk p50 / pipe's | same, hop taken off "
      "| whole p50 / pipe's | same, hop taken off |")
    a("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for variant in ("fast", "slow"):
        d = w.get(variant) or {}
        r = wr.get(variant, {})
        for t in STREAM_WORKER_ROWS:
            if t not in d:
                continue
            x = d[t]
            mine = t.startswith("f3dx")
            cells = (f"{fmt_target(r.get('ttfc_raw'), 'x')} | {fmt_target(r.get('ttfc_net'), 'x')} | "
                     f"{fmt_target(r.get('total_raw'), 'x')} | {fmt_target(r.get('total_net'), 'x')}"
                     if mine and r else " | | | ")
            a(f"| {t} | {STREAM_WORKER_ROWS[t]} | {x['ttfc']['n']} | {fmt(x['ttfc']['p50'])} | "
              f"{fmt(x['ttfc']['p99'])} | {fmt(x['total']['p50'])} | {fmt(x['total']['p99'])} | "
              f"{fmt(x['cpu_us_per_call'])} | {per_call(x)} | {cells} |")
    a("")
    if hop is not None:
        a(f"The dispatch hop (hop p50 - null p50) is {fmt(hop)} us; 'hop taken off' is "
          f"(p50 - {fmt(hop)}) / (pipe's p50 - {fmt(hop)}), as in the non-streamed Worker measure. The "
          f"targets use it.")
        a("")


def write_stream_md(res: dict[str, Any], out: Path) -> Path:
    """STREAM_RESULTS.md: a run of the stream measure alone."""
    m = res["machine"]
    v = m["versions"]
    runs = all_runs(res)
    s = res["settings"]
    L: list[str] = []
    a = L.append
    a("# Streaming benchmark results (issue 10)" + (" (smoke run: too few calls for real "
                                                    "numbers)" if res["mode"] == "smoke" else ""))
    a("")
    a("`bash bench/run.sh --measures stream`: the `stream` measure of `bench/run.py` alone "
      "(the other measures' results are in [RESULTS.md](RESULTS.md)).")
    a("")
    a(f"- Date: {m['date_utc']}; commit {m['commit']}; {len(runs)} run"
      f"{'s' if len(runs) > 1 else ''} in {res['wall_s'] / 60:.1f} min ({res['mode']} mode): "
      + ", ".join(f"{r.get('wall_s', 0):.0f} s" for r in runs))
    a(f"- Machine: {m['nproc']} CPUs ({m['cpu']}), {m['mem']}, Linux {m['kernel']}; "
      f"load average {m['loadavg_start'][0]:.2f} at the start, {m['loadavg_end'][0]:.2f} at the "
      "end; per run: " + ", ".join(f"{r['loadavg_start'][0]:.2f} to {r['loadavg_end'][0]:.2f}"
                                  for r in runs if "loadavg_start" in r))
    a(f"- Versions: Python {v['python']}, f3dx_router {v.get('f3dx-router')}, openai SDK "
      f"{v.get('openai')}, LiteLLM {v.get('litellm')}, httpx {v.get('httpx')}, wrangler "
      f"{v.get('wrangler')}, nginx {v['nginx']}")
    a(f"- Settings: {s['stream_chunks']} chunks a stream; no delay: {s['stream_calls']} timed "
      f"streams per contender and per Worker target in {s['stream_rounds']} rounds after "
      f"{s['stream_warmup']} warm-up streams; delayed ({s['stream_delay_ms']:g} ms a chunk): "
      f"{s['stream_slow_calls']} in {s['stream_slow_rounds']} rounds after "
      f"{s['stream_slow_warmup']}")
    a("")
    a("Absolute times drift on a shared machine; the ratios, measured side by side in one "
      "run, are what to compare.")
    a("")
    targets_section(L, runs, issue="Issue 10 (streaming)", keys=STREAM_TARGETS)
    stream_section(L, runs)
    path = out / "STREAM_RESULTS.md"
    path.write_text("\n".join(L))
    return path


# ------------------------------------------------------------------ the core

CORE_ROWS = {
    "sequential_ok": ("one OpenAI provider answers 200", ("latency", "p50")),
    "failover_429_ok": ("two providers, 429 (Retry-After: 1) then 200", ("failover", "p50")),
    "hedged_k2_first_wins": ("hedged, K=2: first leg wins, the other cancelled", None),
    "anthropic_ok": ("one Anthropic provider (request and response translated)", None),
    "decision_only": ("the failover's decisions only (candidates, classify, Retry-After)", None),
    "openai_codec": ("codec alone: encode an OpenAI request, decode the answer", None),
    "anthropic_codec": ("codec alone: Anthropic", None),
}


def section_head(L: list[str], title: str, data: dict[str, Any] | None) -> bool:
    """The heading of a once-per-invocation measure's section; False (after a
    "Not measured" line, or nothing when it was skipped) when it has no data."""
    if data is None:
        return False
    L += [f"## {title}", ""]
    if data.get("skipped") or data.get("error"):
        L += [f"Not measured: {data.get('skipped') or data.get('error')}", ""]
        return False
    return True


def core_section(L: list[str], res: dict[str, Any], rep: dict[str, Any]) -> None:
    a = L.append
    core = res.get("core")
    if not section_head(L, "The core alone, no I/O, per call (criterion)", core):
        return
    a(f"`{core['command']}` (cargo target dir bench/.target), once per invocation: the median "
      f"time of one iteration and its 95% confidence interval. Each `route/*` iteration "
      f"routes one request through the sans-I/O core (a virtual clock, no sockets, no "
      f"runtime), the JSON request in and the parsed response out.")
    a("")
    lat, fo = rep.get("latency") or {}, rep.get("failover") or {}
    a("| benchmark | what | median | 95% CI | f3dx_router, measured through Python against "
      "nginx: p50 / CPU per call | the core's share of that CPU |")
    a("|---|---|---|---|---|---|")
    for g in ("route", "core_parts"):
        got = core.get("groups", {}).get(g) or {}
        for bid in sorted(got, key=lambda b: (list(CORE_ROWS).index(b) if b in CORE_ROWS
                                              else len(CORE_ROWS), b)):
            d = got[bid]
            what, ref = CORE_ROWS.get(bid, ("", None))
            meas = share = ""
            if ref:
                src = (lat if ref[0] == "latency" else fo).get(ROUTER)
                if src:
                    meas = f"{fmt(src['summary']['p50'])} us / {fmt(src['cpu_us_per_call'])} us"
                    share = f"{d['median_ns'] / 1000 / src['cpu_us_per_call'] * 100:.1f}%"
            lo, hi = d["median_ci_ns"]
            a(f"| {g}/{bid} | {what} | {d['median_ns'] / 1000:.2f} us | "
              f"{lo / 1000:.2f}-{hi / 1000:.2f} us | {meas} | {share} |")
    a("")
    a("The measured p50 and CPU/call are from the detailed run below: everything a call does "
      "(Python to Rust, the request to nginx and back over loopback, the tokio runtime, the "
      "JSON on both sides), of which the core is the share in the last column.")
    a("")


# ------------------------------------------------------------------ the stack

STACK_ROWS = {
    "floor": "blocking std TcpStream, request prebuilt, answer read by Content-Length, no JSON",
    "hyper": "one hyper HTTP/1.1 connection on a current-thread runtime, answer parsed (serde_json)",
    "hyper-util": "hyper-util's pooled client (what f3dx_router sends with), answer parsed",
    "reqwest": "reqwest 0.12 on the same runtime (what f3dx_router sent with before), answer parsed",
    "f3dx_router": "NativeRouter::route_blocking: the core's encode and decode, the driver, the pool",
}


def stack_section(L: list[str], res: dict[str, Any]) -> None:
    a = L.append
    st = res.get("stack")
    if not section_head(L, "The layers under the native path (Rust, one thread, no Python)", st):
        return
    layers = st["layers"]
    fl = layers.get("floor", {}).get("summary", {}).get("p50")
    a(f"`bench/stack`, once per invocation against its own nginx: {st['calls']} sequential "
      f"calls per layer in {st['rounds']} rounds (order rotated), thread CPU time per call. "
      "Where a call's time goes between a raw socket and the router; the Python layer's "
      "share is the difference to f3dx_router's row in the latency table.")
    a("")
    a("| layer | what | p50 | p99 | p50 / floor p50 | CPU/call |")
    a("|---|---|---|---|---|---|")
    for name, d in layers.items():
        sm = d["summary"]
        a(f"| {name} | {STACK_ROWS.get(name, '')} | {fmt(sm['p50'], 1)} | {fmt(sm['p99'], 1)} | "
          f"{ratio(sm['p50'], fl)} | {fmt(d['cpu_us_per_call'], 1)} |")
    a("")


# ------------------------------------------------------------------ plots

STYLE = {
    "floor": ("black", "-"), "floor+json": ("gray", "--"), "httpx": ("tab:blue", "-"),
    OLD: ("tab:orange", "-"), "litellm": ("tab:red", "-"), ROUTER: ("tab:green", "-"),
    "portkey": ("tab:purple", "-"),
    "f3dx_router.route": ("tab:olive", "--"),
}


def plot_all(whole: dict[str, Any], out: Path) -> list[Path]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    paths = []
    runs = all_runs(whole)
    ri = representative(runs)
    res = runs[ri]  # the plots show the run the detailed tables show
    date = whole["machine"]["date_utc"]
    host = (f"{whole['machine']['nproc']} CPUs, {date}"
            + (f", run {ri + 1} of {len(runs)}" if len(runs) > 1 else "")
            + (" (SMOKE)" if whole["mode"] == "smoke" else ""))

    panels = [(k, t) for k, t in (("latency", "sequential calls, one provider"),
                                  ("failover", "failover: 429, then 200")) if res.get(k)]
    if panels:
        fig, axes = plt.subplots(1, len(panels), figsize=(7 * len(panels), 5), squeeze=False)
        for ax, (key, title) in zip(axes[0], panels):
            for n in ordered(res[key]):
                xs = sorted(res[key][n]["samples_us"])
                ys = [(i + 1) / len(xs) for i in range(len(xs))]
                c, ls = STYLE.get(n, (None, "-"))
                p50 = res[key][n]["summary"]["p50"]
                ax.plot(xs, ys, color=c, linestyle=ls, linewidth=1.6,
                        label=f"{n} (p50 {fmt(p50)} us)")
            ax.set_xscale("log")
            ax.set_xlabel("latency per call (us, log scale)")
            ax.set_ylabel("fraction of calls")
            ax.set_ylim(0, 1.005)
            ax.grid(True, which="both", alpha=0.3)
            ax.set_title(title)
            ax.legend(fontsize=8, loc="lower right")
        fig.suptitle(f"Latency CDF against nginx on loopback ({host})")
        fig.tight_layout()
        p = out / "latency_cdf.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        paths.append(p)

    tp = res.get("throughput") or {}
    if tp:
        fig, ax = plt.subplots(figsize=(10, 5))
        for n in ordered(tp):
            pts = sorted((int(t), d["rps"]) for t, d in tp[n].items() if "rps" in d)
            if not pts:
                continue
            c, ls = STYLE.get(n, (None, "-"))
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", color=c,
                    linestyle=ls, label=n)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        threads = sorted({int(t) for d in tp.values() for t in d})
        ax.set_xticks(threads)
        ax.set_xticklabels([str(t) for t in threads])
        ax.set_xlabel("threads sharing one client / router")
        ax.set_ylabel("calls per second (log scale)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
        ax.set_title(f"Throughput against nginx on loopback ({host})")
        fig.tight_layout()
        p = out / "throughput.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        paths.append(p)

    tail = (res.get("tail") or {}).get("variants")
    if tail:
        fig, axes = plt.subplots(1, 2, figsize=(13, 5), gridspec_kw={"width_ratios": [2, 1]})
        ax = axes[0]
        colors = ["tab:red", "tab:blue", "tab:green", "tab:purple"]
        for (lbl, d), c in zip(tail.items(), colors):
            xs = sorted(x / 1000 for x in d["samples_us"])
            count = len(xs)
            ys = [1 - i / count for i in range(count)]  # fraction of calls at least this slow
            ax.step(xs, ys, where="post", color=c,
                    label=f"{lbl}: p99 {d['summary']['p99'] / 1000:.1f} ms")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("latency per call (ms, log scale)")
        ax.set_ylabel("fraction of calls at least this slow (log)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8, loc="lower left")
        ax.set_title("latency tail (complementary CDF)")
        ax = axes[1]
        labels = list(tail)
        x = range(len(labels))
        w = 0.25
        for j, (q, c) in enumerate((("p50", "tab:gray"), ("p99", "tab:orange"),
                                    ("p99.9", "tab:red"))):
            ax.bar([i + (j - 1) * w for i in x], [tail[k]["summary"][q] / 1000 for k in labels],
                   width=w, color=c, label=q)
        for i, k in enumerate(labels):
            top = max(tail[k]["summary"][q] for q in ("p50", "p99", "p99.9")) / 1000
            ax.annotate(f"{tail[k]['extra_pct']:+.1f}%\nrequests", (i, top),
                        textcoords="offset points", xytext=(0, 4), ha="center", fontsize=8)
        lo = min(tail[k]["summary"]["p50"] for k in labels) / 1000
        hi = max(tail[k]["summary"]["p99.9"] for k in labels) / 1000
        ax.set_ylim(lo / 1.5, hi * 4)
        ax.set_yscale("log")
        ax.set_xticks(list(x))
        ax.set_xticklabels([k.replace(", ", ",\n") for k in labels], fontsize=8)
        ax.set_ylabel("ms (log scale)")
        ax.legend(fontsize=8, loc="upper left", ncol=3)
        ax.set_title("percentiles, and extra upstream requests")
        mk = res["tail"]["mock"]
        fig.suptitle(f"Tail experiment, f3dx_router: mock {mk['fast_ms']:g} ms "
                     f"({(1 - mk['slow_frac']) * 100:.0f}%) / {mk['slow_ms']:g} ms "
                     f"({mk['slow_frac'] * 100:.0f}%) ({host})")
        fig.tight_layout()
        p = out / "tail.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        paths.append(p)
    wi = next((i for i in [ri] + list(range(len(runs)))
               if ((runs[i].get("worker") or {}).get("latency"))), None)
    if wi is not None:
        wl = runs[wi]["worker"]["latency"]
        fig, axes = plt.subplots(1, 2, figsize=(14, 5), squeeze=False)
        wstyle = {"null": ("gray", ":"), "hop": ("black", ":"), "forward": ("tab:blue", "-"),
                  "samework": ("tab:orange", "-"), "f3dx": ("tab:green", "-"),
                  "twofetch": ("tab:blue", "--"), "samework-failover": ("tab:orange", "--"),
                  "f3dx-failover": ("tab:green", "--")}
        for ax, (title, names) in zip(axes[0], (
                ("one call: forward vs f3dx (samework: JS doing f3dx's work)",
                 ["null", "hop", "forward", "samework", "f3dx"]),
                ("failover: two fetches vs f3dx [429, ok]", ["hop", "twofetch",
                                                              "samework-failover",
                                                              "f3dx-failover"]))):
            for n in names:
                if n not in wl:
                    continue
                xs = sorted(x / 1000 for x in wl[n]["samples_us"])
                ys = [(i + 1) / len(xs) for i in range(len(xs))]
                c, ls = wstyle[n]
                ax.plot(xs, ys, color=c, linestyle=ls, linewidth=1.6,
                        label=f"{n} (p50 {wl[n]['summary']['p50'] / 1000:.2f} ms)")
            ax.set_xscale("log")
            plain = matplotlib.ticker.FuncFormatter(lambda x, _: f"{x:g}")
            ax.xaxis.set_major_formatter(plain)
            ax.xaxis.set_minor_formatter(matplotlib.ticker.FuncFormatter(
                lambda x, _: f"{x:g}" if f"{x:g}"[0] in "1235" else ""))
            ax.set_xlabel("latency per call through wrangler dev (ms, log scale)")
            ax.set_ylabel("fraction of calls")
            ax.set_ylim(0, 1.005)
            ax.grid(True, which="both", alpha=0.3)
            ax.set_title(title)
            ax.legend(fontsize=8, loc="lower right")
        fig.suptitle(f"Cloudflare Worker in one wrangler dev, against nginx on loopback "
                     f"({whole['machine']['nproc']} CPUs, {date}"
                     + (f", run {wi + 1} of {len(runs)}" if len(runs) > 1 else "")
                     + (" (SMOKE)" if whole["mode"] == "smoke" else "") + ")")
        fig.tight_layout()
        p = out / "worker_cdf.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        paths.append(p)
    return paths


def write_adaptive_md(res: dict[str, Any], out: Path) -> Path:
    """ADAPTIVE_RESULTS.md: a run of issue 11's measures alone (tail,
    degrade, tput_health, or some of them)."""
    m = res["machine"]
    v = m["versions"]
    runs = all_runs(res)
    s = res["settings"]
    L: list[str] = []
    a = L.append
    a("# Adaptive hedging and health tracking: benchmark results (issue 11)"
      + (" (smoke run: too few calls for real numbers)" if res["mode"] == "smoke" else ""))
    a("")
    a(f"`bash bench/run.sh --measures {','.join(res['measures'])}`: those measures of "
      "`bench/run.py` alone (the full run's results are in [RESULTS.md](RESULTS.md)).")
    a("")
    a(f"- Date: {m['date_utc']}; commit {m['commit']}; {len(runs)} run"
      f"{'s' if len(runs) > 1 else ''} in {res['wall_s'] / 60:.1f} min ({res['mode']} mode): "
      + ", ".join(f"{r.get('wall_s', 0):.0f} s" for r in runs))
    a(f"- Machine: {m['nproc']} CPUs ({m['cpu']}), {m['mem']}, Linux {m['kernel']}; "
      f"load average {m['loadavg_start'][0]:.2f} at the start, {m['loadavg_end'][0]:.2f} at the "
      "end; per run: " + ", ".join(f"{r['loadavg_start'][0]:.2f} to {r['loadavg_end'][0]:.2f}"
                                  for r in runs if "loadavg_start" in r))
    a(f"- Versions: Python {v['python']}, f3dx_router {v.get('f3dx-router')}, nginx {v['nginx']}")
    a(f"- Settings: tail: {s['tail_calls']} timed calls per variant after {s['tail_warmup']} "
      f"warm-up calls (auto: at least 30); tput_health: threads {s['health_threads']}, "
      f"{s['health_passes']} passes of {s['tput_seconds']:g} s; degrade: "
      f"{s['degrade_threads']} threads, A {s['degrade_frac']:.0%} 503 for {s['degrade_bad_s']:g} "
      f"s after {s['degrade_warm_s']:g} s")
    a("")
    a("Absolute times drift on a shared machine (2 CPUs, another engineer's builds); ratios "
      "measured side by side in one run are what to compare.")
    a("")
    targets_section(L, runs, issue="Issue 11", keys=report_adaptive.KEYS | {"hedge_p99",
                                                                           "hedge_extra"})
    tails = [(i, r["tail"]) for i, r in enumerate(runs) if r.get("tail")]
    for i, t in tails:
        tail_section(L, t, f" (run {i + 1})" if len(tails) > 1 else "")
    report_adaptive.tput_health_section(L, runs)
    report_adaptive.degrade_section(L, runs)
    path = out / "ADAPTIVE_RESULTS.md"
    path.write_text("\n".join(L))
    return path


def async_section(L: list[str], runs: list[dict[str, Any]], out: Path) -> None:
    """RESULTS.md's async section: from this run when it measured async;
    else, short, from the last run of the async measure alone
    (async_results.json next to it), saying which run that was."""
    if any(r.get("async") for r in runs):
        asyncbench.section(L, runs)
        return
    src = out / "async_results.json"
    try:
        other = json.loads(src.read_text())
    except (OSError, ValueError):
        return
    m = other.get("machine") or {}
    oruns = all_runs(other)
    n = len(oruns)
    cmd = "--measures " + ",".join(other.get("measures") or ["async"])
    if other.get("mode") == "smoke":
        cmd += " --smoke"
    load = ""
    if m.get("loadavg_start") and m.get("loadavg_end"):
        load = (f", load average {m['loadavg_start'][0]:.2f} at the start, "
                f"{m['loadavg_end'][0]:.2f} at the end")
    source = (f"**Not measured in the run above**: the ratios below are from the last run of "
              f"the async measure alone, `bash bench/run.sh {cmd} --runs {n}` "
              f"({m.get('date_utc')}, commit {m.get('commit')}, {n} run{'s' if n > 1 else ''}"
              f"{load}); its calls/s, CPU per call and the sync pair's latencies are in "
              f"[ASYNC_RESULTS.md](ASYNC_RESULTS.md). A full run that measures `async` puts its "
              f"own numbers here.")
    asyncbench.section(L, oruns, detailed=False, source=source)


def write_async_md(res: dict[str, Any], out: Path) -> Path:
    """ASYNC_RESULTS.md: a run of the async measure alone."""
    m = res["machine"]
    v = m["versions"]
    runs = all_runs(res)
    s = res["settings"]
    L: list[str] = []
    a = L.append
    a("# Async benchmark results" + (" (smoke run: too few calls for real numbers)"
                                     if res["mode"] == "smoke" else ""))
    a("")
    a("`bash bench/run.sh --measures async`: the `async` measure of `bench/run.py` alone "
      "(the full run's results are in [RESULTS.md](RESULTS.md), whose async section quotes "
      "this file's ratios until a full run measures them itself).")
    a("")
    a(f"- Date: {m['date_utc']}; commit {m['commit']}; {len(runs)} run"
      f"{'s' if len(runs) > 1 else ''} in {res['wall_s'] / 60:.1f} min ({res['mode']} mode): "
      + ", ".join(f"{r.get('wall_s', 0):.0f} s" for r in runs))
    a(f"- Machine: {m['nproc']} CPUs ({m['cpu']}), {m['mem']}, Linux {m['kernel']}; "
      f"load average {m['loadavg_start'][0]:.2f} at the start, {m['loadavg_end'][0]:.2f} at the "
      "end; per run: " + ", ".join(f"{r['loadavg_start'][0]:.2f} to {r['loadavg_end'][0]:.2f}"
                                  for r in runs if "loadavg_start" in r))
    a(f"- Versions: Python {v['python']}, f3dx_router {v.get('f3dx-router')}, openai SDK "
      f"{v.get('openai')}, LiteLLM {v.get('litellm')}, nginx {v['nginx']}")
    a(f"- Settings: concurrency {s['async_concurrency']}; {s['async_passes']} passes a point of "
      f"{s['async_warmup_s']:g} s warm-up + {s['async_seconds']:g} s timed; sync pair: "
      f"{s['async_sync_calls']} timed sequential calls per contender in "
      f"{s['async_sync_rounds']} rounds after {s['async_sync_warmup']} warm-up calls; nginx "
      f"with {s['nginx_workers']} worker process")
    a("")
    a("Absolute numbers drift on a shared machine (2 CPUs, other engineers' builds); the "
      "ratios, measured side by side in one run against the same nginx, are what to compare.")
    a("")
    asyncbench.section(L, runs)
    if len(runs) > 1:
        for i, r in enumerate(runs):
            if not r.get("async"):
                continue
            a(f"## Run {i + 1}: calls/s (median pass) per concurrency, and the passes")
            a("")
            a("Each point: the median pass (every pass's calls/s, lowest first; and, for the same "
              "passes, the other processes' CPU in cores).")
            a("")
            d = r["async"].get("async") or {}
            concs = r["async"].get("concurrency") or []
            a("| contender | " + " | ".join(f"C = {c}: median (passes)" for c in concs) + " |")
            a("|---|" + "---|" * len(concs))
            for name in asyncbench.ASYNC_CONTENDERS:
                if name not in d:
                    continue
                cells = []
                for c in concs:
                    x = d[name].get(str(c)) or {}
                    oc = x.get("passes_others_cores")
                    cells.append("failed" if "error" in x else
                                 f"{fmt(x.get('rps'))} ({', '.join(fmt(p) for p in x.get('passes_rps', []))}"
                                 + (f"; others {', '.join(f'{o:.2f}' for o in oc)}" if oc else "")
                                 + ")")
                a(f"| {name} | " + " | ".join(cells) + " |")
            a("")
    path = out / "ASYNC_RESULTS.md"
    path.write_text("\n".join(L))
    return path


def write_all(res: dict[str, Any], out: Path) -> Path:
    if res.get("measures") == ["stream"]:  # no plots: they would overwrite the full run's
        return write_stream_md(res, out)
    if res.get("measures") == ["async"]:  # no plots either
        return write_async_md(res, out)
    if res.get("measures") and set(res["measures"]) <= ADAPTIVE:  # no plots either
        return write_adaptive_md(res, out)
    plot_all(res, out)
    return write_md(res, out)


if __name__ == "__main__":
    # --no-plots: a full run's RESULTS.md alone, the PNGs left as they are (to
    # re-render it after a run of one measure alone, e.g. async's section).
    argv = [x for x in sys.argv[1:] if x != "--no-plots"]
    src = Path(argv[0]) if argv else HERE / "results.json"
    res = json.loads(src.read_text())
    if "--no-plots" in sys.argv and res.get("measures") not in (["stream"], ["async"]) and not (
            res.get("measures") and set(res["measures"]) <= ADAPTIVE):
        print(write_md(res, src.parent))
    else:
        print(write_all(res, src.parent))
