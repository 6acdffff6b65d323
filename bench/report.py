#!/usr/bin/env python3
"""RESULTS.md and the PNG plots from results.json.

    python report.py [results.json]     # re-render without re-running

run.py calls ``write_all`` at the end of a run.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from contenders import AUX, CONTENDERS  # noqa: E402

ROUTER = "f3dx_router"
OLD = "f3dx-0.0.19"


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

def write_md(res: dict[str, Any], out: Path) -> Path:
    m = res["machine"]
    v = m["versions"]
    L: list[str] = []
    a = L.append
    smoke = res["mode"] == "smoke"
    a("# Benchmark results" + (" (smoke run: too few calls for real numbers)" if smoke else ""))
    a("")
    a(f"- Date: {m['date_utc']}; commit {m['commit']}; run took {res['wall_s']:.0f} s "
      f"({res['mode']} mode)")
    a(f"- Machine: {m['nproc']} CPUs ({m['cpu']}), {m['mem']}, Linux {m['kernel']}; "
      f"load average {m['loadavg_start'][0]:.2f} at the start, {m['loadavg_end'][0]:.2f} at the end")
    a(f"- Versions: Python {v['python']}, f3dx_router {v.get('f3dx-router')}, "
      f"f3dx {v.get('f3dx')}, LiteLLM {v.get('litellm')} (openai SDK {v.get('openai')}), "
      f"httpx {v.get('httpx')}, nginx {v['nginx']}")
    s = res["settings"]
    a(f"- Settings: {s['calls']} timed sequential calls per contender in {s['rounds']} rounds "
      f"(order rotated each round) after {s['warmup']} warm-up calls, each round capped at "
      f"{s['max_s_per_measure'] / s['rounds']:.0f} s for LiteLLM; throughput: "
      f"{s.get('tput_passes', 1)} passes of {s['tput_seconds']:g} s per point, median pass; "
      f"nginx with {s['nginx_workers']} worker process")
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
            a(f"| {n} | {d['calls']:,} ({d['seconds']:.0f} s) | {d['peak_rss_mib']:.1f} | "
              f"{d['rss_after_setup_mib']:.1f} | {d['peak_rss_mib'] - d['rss_after_setup_mib']:.1f} |")
        a("")
        a(f"Each in a fresh process: setup, then up to {s['rss_calls']:,} sequential calls or "
          f"{s['rss_max_s']:.0f} s, whichever comes first (LiteLLM reaches the time cap).")
        a("")

    tail = res.get("tail") or {}
    if tail.get("variants"):
        mk = tail["mock"]
        a("## Tail experiment (f3dx_router, two providers on one heavy-tailed mock)")
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
    elif tail.get("error"):
        a(f"## Tail experiment\n\nFailed: {tail['error']}\n")

    # Ratio matrices.
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

    a("## Issue 4 targets, this run")
    a("")
    a("| target | measured | met |")
    a("|---|---|---|")
    for goal, meas, ok in targets(res):
        a(f"| {goal} | {meas} | {'yes' if ok else ('no' if ok is False else 'n/a')} |")
    a("")
    a("One run; the issue asks for the median of at least three.")
    a("")

    bd = breakdown(res)
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
      "[tail.png](tail.png).")
    a("")
    path = out / "RESULTS.md"
    path.write_text("\n".join(L))
    return path


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


def targets(res: dict[str, Any]) -> list[tuple[str, str, bool | None]]:
    out: list[tuple[str, str, bool | None]] = []
    lat, fo, tp = res.get("latency") or {}, res.get("failover") or {}, res.get("throughput") or {}
    f50 = lat.get("floor", {}).get("summary", {}).get("p50")
    r = lat.get(ROUTER, {}).get("summary", {})
    if f50 and r:
        out.append(("p50 <= 1.15x floor p50", f"{r['p50'] / f50:.2f}x", r["p50"] / f50 <= 1.15))
        out.append(("p99 <= 1.6x floor p50", f"{r['p99'] / f50:.2f}x", r["p99"] / f50 <= 1.6))
    rf = fo.get(ROUTER, {}).get("summary", {})
    if f50 and rf:
        out.append(("failover p50 <= 2.0x floor p50", f"{rf['p50'] / f50:.2f}x",
                    rf["p50"] / f50 <= 2.0))
    r16 = tp.get(ROUTER, {}).get("16", {}).get("rps")
    for other, need in ((OLD, 1.3), ("litellm", 50.0)):
        o16 = tp.get(other, {}).get("16", {}).get("rps")
        if r16 and o16:
            out.append((f"throughput at 16 threads >= {need:g}x {other}",
                        f"{r16 / o16:.2f}x ({r16:,.0f} vs {o16:,.0f} calls/s)", r16 / o16 >= need))
        else:
            out.append((f"throughput at 16 threads >= {need:g}x {other}", "not measured", None))
    ms = (res.get("import") or {}).get(ROUTER, {}).get("ms")
    if ms is not None:
        out.append(("import f3dx_router <= 30 ms", f"{ms:.1f} ms", ms <= 30))
    tail = (res.get("tail") or {}).get("variants") or {}
    delayed = [d for k, d in tail.items() if "delay" in k]
    if delayed:
        d = delayed[0]
        sm = d["summary"]
        out.append(("delayed hedging p99 <= 2x p50", f"{sm['p99'] / sm['p50']:.2f}x",
                    sm["p99"] / sm["p50"] <= 2.0))
        out.append(("delayed hedging extra upstream requests <= 10%", f"{d['extra_pct']:.1f}%",
                    d["extra_pct"] <= 10.0))
    out.append(("worker targets (wrangler dev)", "not measured by this harness yet", None))
    return out


# ------------------------------------------------------------------ plots

STYLE = {
    "floor": ("black", "-"), "floor+json": ("gray", "--"), "httpx": ("tab:blue", "-"),
    OLD: ("tab:orange", "-"), "litellm": ("tab:red", "-"), ROUTER: ("tab:green", "-"),
    "f3dx_router.route": ("tab:olive", "--"),
}


def plot_all(res: dict[str, Any], out: Path) -> list[Path]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    date = res["machine"]["date_utc"]
    host = f"{res['machine']['nproc']} CPUs, {date}" + (" (SMOKE)" if res["mode"] == "smoke" else "")

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
        colors = ["tab:red", "tab:blue", "tab:green"]
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
    return paths


def write_all(res: dict[str, Any], out: Path) -> Path:
    plot_all(res, out)
    return write_md(res, out)


if __name__ == "__main__":
    src = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "results.json"
    print(write_all(json.loads(src.read_text()), src.parent))
