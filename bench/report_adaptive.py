"""The issue 11 parts of the report: adaptive hedging in the tail
experiment, health tracking's throughput (``tput_health``) and the
degradation scenario (``degrade``). report.py puts them in RESULTS.md, or,
for a run of those measures alone, in ADAPTIVE_RESULTS.md.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

AUTO = "hedged K=2, auto"  # run.py's label of the variant
AUTO_P99_LIMIT, AUTO_EXTRA_LIMIT = 2.5, 10.0
HEALTH_TPUT_LIMIT = 0.95

# key, the issue's target, unit, limit, whether higher is better (report.TARGETS' shape)
TARGETS = [
    ("auto_p99", "issue 11, tail: hedged K=2, delay \"auto\" (no delay chosen): p99 <= "
     f"{AUTO_P99_LIMIT}x p50", "x", AUTO_P99_LIMIT, False),
    ("auto_extra", "issue 11, tail: hedged K=2, delay \"auto\": extra upstream requests <= "
     f"{AUTO_EXTRA_LIMIT:.0f}%", "%", AUTO_EXTRA_LIMIT, False),
    ("health_tput16", "issue 11: throughput at 16 threads, health on / health off >= "
     f"{HEALTH_TPUT_LIMIT}x (no drop beyond the passes' spread)", "x", HEALTH_TPUT_LIMIT, True),
]
KEYS = {key for key, *_ in TARGETS}


def values(run: dict[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    auto = ((run.get("tail") or {}).get("variants") or {}).get(AUTO)
    if auto and auto.get("summary"):
        sm = auto["summary"]
        out["auto_p99"] = sm["p99"] / sm["p50"]
        out["auto_extra"] = auto["extra_pct"]
    r16 = ((run.get("tput_health") or {}).get("ratio_on_off") or {}).get("16")
    if r16 is not None:
        out["health_tput16"] = r16
    return out


def _f(x: float | None, digits: int = 2) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:,.{digits}f}"


# ------------------------------------------------------------ the tail's auto

def tail_auto(L: list[str], tail: dict[str, Any]) -> None:
    """Below the tail table: what "auto" did, and the issue 11 target line."""
    auto = (tail.get("variants") or {}).get(AUTO)
    if not auto or not auto.get("summary"):
        return
    a = L.append
    sm = auto["summary"]
    r, extra = sm["p99"] / sm["p50"], auto["extra_pct"]
    met = r <= AUTO_P99_LIMIT and extra <= AUTO_EXTRA_LIMIT
    h, ht = auto["stats_end"]["hedges"], auto.get("hedges_timed") or {}
    warm_p90 = {n: d.get("p90") for n, d in auto["stats_after_warmup"]["latency_ms"].items()}
    a(f"**Target (issue 11): with `hedge_delay_ms=\"auto\"`, p99 within {AUTO_P99_LIMIT}x p50 "
      f"with at most {AUTO_EXTRA_LIMIT:.0f}% extra upstream requests, no delay chosen by the "
      f"user: p99/p50 {r:.2f}x, extra {extra:+.1f}%: {'met' if met else 'not met'}.**")
    a("")
    a(f"`{AUTO}`: `Router(..., policy=\"hedged\", hedge_k=2, hedge_delay_ms=\"auto\")`, the "
      f"default budget (0.1 a call) and fallback (1000 ms, used until the provider waited on has "
      f"20 successes), timed after {auto.get('warmup', 'the')} warm-up calls. "
      f"`stats()[\"hedges\"]` at the end: sent {h.get('sent')}, won "
      f"{h.get('won')}, skipped_for_budget {h.get('skipped_for_budget')} (of which during the "
      f"{sm['n']} timed calls: sent {ht.get('sent')}, won {ht.get('won')}, skipped "
      f"{ht.get('skipped_for_budget')}). The p90 the router waited on at the end (stats, "
      f"log-scaled histogram, interpolated in its bin): "
      + ", ".join(f"{n} {_f(v)} ms" for n, v in (auto.get("p90_used_ms") or {}).items())
      + "; after the warm-up: " + ", ".join(f"{n} {_f(v)} ms" for n, v in warm_p90.items())
      + ". p0 takes every first leg, so its p90 is the delay; p1 only sees hedges.")
    a("")
    trace = auto.get("p90_every_100") or []
    if trace:
        a("p0's p90 (the delay \"auto\" waits, ms) after every 100 timed calls: "
          + ", ".join(_f(x, 1) for x in trace) + ".")
        a("")
    legs_table(L, tail)


def legs_table(L: list[str], tail: dict[str, Any]) -> None:
    """The hedge legs of the delayed variants, from ``route()``'s attempts:
    when the leg really started, how long it took; a hedged call that the
    leg wins takes their sum."""
    rows = [(lbl, d) for lbl, d in (tail.get("variants") or {}).items()
            if d.get("hedge_legs") and "immediate" not in lbl]
    if not rows:
        return
    a = L.append
    a("| variant (hedged calls) | delay asked (ms) | leg started at, p50 / p90 (ms) | leg's "
      "time, p50 / p90 (ms) | legs that won |")
    a("|---|---|---|---|---|")
    for lbl, d in rows:
        legs = d["hedge_legs"]
        start = sorted(x[0] for x in legs)
        took = sorted(x[1] for x in legs)
        asked = d.get("config", {}).get("hedge_delay_ms")
        if asked == "auto":
            p0 = (d.get("p90_used_ms") or {}).get("p0")
            asked = f"auto (p0's p90 at the end: {_f(p0)})"
        q = lambda s, x: s[min(len(s) - 1, int(len(s) * x))]  # noqa: E731
        a(f"| {lbl} ({len(legs)}) | {asked} | {q(start, .5):.2f} / {q(start, .9):.2f} | "
          f"{q(took, .5):.2f} / {q(took, .9):.2f} | {sum(x[2] for x in legs)} |")
    a("")


# ----------------------------------------------------------- tput_health

def tput_health_section(L: list[str], runs: list[dict[str, Any]]) -> None:
    th = [(i, r["tput_health"]) for i, r in enumerate(runs) if r.get("tput_health")]
    if not th:
        return
    a = L.append
    a("## Throughput with health tracking on and off (issue 11)")
    a("")
    d0 = th[0][1]
    a(f"f3dx_router (one provider, nginx) with the default health tracking and with "
      f"`health=False`, side by side: {d0.get('passes')} passes of {d0.get('seconds'):g} s per "
      f"point, the two in rotated order each pass, the median pass reported (calls/s).")
    a("")
    a("| run | threads | health on | health off | on / off | passes on | passes off |")
    a("|---|---|---|---|---|---|---|")
    ratios: dict[str, list[float]] = {}
    for i, d in th:
        tp = d.get("throughput") or {}
        on, off = tp.get("f3dx_router", {}), tp.get("f3dx_router.nohealth", {})
        for t in d.get("threads", []):
            x, y = on.get(str(t), {}), off.get(str(t), {})
            rr = (d.get("ratio_on_off") or {}).get(str(t))
            if rr is not None:
                ratios.setdefault(str(t), []).append(rr)
            a(f"| {i + 1} | {t} | {_f(x.get('rps'), 0)} | {_f(y.get('rps'), 0)} | "
              f"{_f(rr, 3)}x | " + ", ".join(f"{p:.0f}" for p in x.get("passes_rps", []))
              + " | " + ", ".join(f"{p:.0f}" for p in y.get("passes_rps", [])) + " |")
        if d.get("failed"):
            a(f"| {i + 1} | failed: {d['failed']} | | | | | |")
    a("")
    if ratios:
        a("Median on / off over the runs: " + ", ".join(
            f"{t} thread{'s' if t != '1' else ''} {statistics.median(v):.3f}x"
            for t, v in ratios.items()) + ".")
        a("")


# --------------------------------------------------------------- degrade

def degrade_section(L: list[str], runs: list[dict[str, Any]]) -> None:
    dg = [(i, r["degrade"]) for i, r in enumerate(runs) if r.get("degrade")]
    if not dg:
        return
    a = L.append
    s = dg[0][1]["settings"]
    a(f"## Degradation scenario (issue 11): A {s['frac']:.0%} 503 for {s['bad_s']:g} s, "
      "health tracking off vs on")
    a("")
    a(f"Two providers on `flakymock.py`, A then B, both answering in {s['delay_ms']:g} ms; "
      f"`Router([A, B], policy=\"sequential\")` shared by {s['threads']} threads calling "
      f"`route()` in a loop. After {s['warm_s']:g} s, A answers 503 (no Retry-After, after the "
      f"same delay) to {s['frac']:.0%} of its requests for {s['bad_s']:g} s, then recovers. "
      f"The loop goes on at least {s['after_min_s']:g} s after the recovery and stops once A "
      f"has served calls again for {s['hold_s']:g} s (at most {s['after_max_s']:g} s). "
      "`health off` is `health=False` (the static order: A first on every call); `health on` "
      "the default (eject after 5 soft failures in a row or >= 50% errors over >= 20 "
      "outcomes in 60 s; 30 s x streak; then one half-open probe). A's state is "
      f"`stats()` sampled every {s['sample_s']:g} s. 'Overall' is the same window in both: "
      f"from the start to {s['after_min_s']:g} s after the recovery.")
    a("")
    for i, d in dg:
        if len(dg) > 1:
            a(f"### Run {i + 1}")
            a("")
        degrade_run(L, d)


def _pct(n: int, of: int) -> str:
    return f"{100.0 * n / of:.3f}% ({n:,} of {of:,})" if of else "n/a"


def degrade_run(L: list[str], d: dict[str, Any]) -> None:
    a = L.append
    vs = d.get("variants") or {}
    labels = list(vs)
    errs = [lbl for lbl in labels if vs[lbl].get("error")]
    for lbl in errs:
        a(f"- {lbl}: failed: {vs[lbl]['error']}")
    labels = [lbl for lbl in labels if lbl not in errs]
    if errs:
        a("")
    if not labels:
        return
    V = [vs[lbl] for lbl in labels]
    a("| | " + " | ".join(labels) + " |")
    a("|---|" + "---|" * len(labels))

    def row(name: str, cell: Any) -> None:
        a(f"| {name} | " + " | ".join(cell(v) for v in V) + " |")

    ph = lambda v, k: v["phases"][k]  # noqa: E731
    row("calls in the bad spell", lambda v: f"{ph(v, 'bad')['calls']:,}")
    row("calls that made an attempt on A, bad spell",
        lambda v: _pct(ph(v, "bad")["hit_a"], ph(v, "bad")["calls"]))
    row("calls served by A, bad spell",
        lambda v: _pct(ph(v, "bad")["served_a"], ph(v, "bad")["calls"]))
    row("success rate seen by callers, bad spell",
        lambda v: _pct(ph(v, "bad")["ok"], ph(v, "bad")["calls"]))
    row("p50 / p99 / p99.9 (ms), bad spell", lambda v: (
        f"{_f(ph(v, 'bad')['p50_ms'])} / {_f(ph(v, 'bad')['p99_ms'])} / "
        f"{_f(ph(v, 'bad')['p99.9_ms'])}"))
    row("calls/s, bad spell", lambda v: _f(ph(v, "bad")["calls_per_s"], 0))
    row("p50 / p99 (ms), warm-up", lambda v: (
        f"{_f(ph(v, 'warmup')['p50_ms'])} / {_f(ph(v, 'warmup')['p99_ms'])}"))
    row("p50 / p99 / p99.9 (ms), overall", lambda v: (
        f"{_f(ph(v, 'overall')['p50_ms'])} / {_f(ph(v, 'overall')['p99_ms'])} / "
        f"{_f(ph(v, 'overall')['p99.9_ms'])}"))
    row("success rate, overall", lambda v: _pct(ph(v, "overall")["ok"], ph(v, "overall")["calls"]))
    row("A serving again: first call after the recovery served by A (s after it)",
        lambda v: (f"{v['recovery']['first_served_a_s']:.3f} s"
                   if v["recovery"]["first_served_a_s"] is not None else
                   f"not within {v['end_s'] - v['recovered_at_s']:.0f} s"))
    row("first call after the recovery with an attempt on A (s after it; with health on, "
        "the half-open probe)",
        lambda v: (f"{v['recovery']['first_hit_a_s']:.3f} s"
                   if v["recovery"]["first_hit_a_s"] is not None else "none"))
    row("A's 503s seen (mock) / requests to A, whole run",
        lambda v: f"{v['upstream']['a']['failed']:,} / {v['upstream']['a']['requests']:,}")
    row("A's ejections (stats at the end)",
        lambda v: str((v.get("stats_end") or {}).get("a", {}).get("ejections")))
    a("")
    for lbl, v in zip(labels, V):
        bad_at, rec_at = v["bad_at_s"], v["recovered_at_s"]
        ch = v.get("state_changes") or []
        a(f"A's state, {lbl} (s from the start of the bad spell; the recovery at "
          f"+{rec_at - bad_at:.2f} s): " + ", ".join(
              f"{t - bad_at:+.2f} s {st}" for t, st in ch) + ".")
        a("")
        # The first sample that saw A ejected, and the seconds left then: when
        # the ejection ends, to the millisecond (the samples are 0.2 s apart).
        first = next((x for x in v.get("state_samples") or [] if x["state"] == "ejected"
                      and x.get("until_s") is not None), None)
        back = v["recovery"]["first_served_a_s"]
        if first is not None and back is not None:
            ends = first["t"] + first["until_s"]
            a(f"A was ejected {ends - 30 - bad_at:.2f} s into the bad spell (stats' `until_s`: "
              f"the ejection ends 30 s after it started, whatever A does meanwhile), so the "
              f"ejection ended {ends - rec_at:+.2f} s from the recovery; the next call then "
              f"probed A (half-open: one probe; a 0.2 s sample rarely sees that state, as "
              f"calls come every few ms), the probe succeeded and A was readmitted: A served "
              f"again {back:.2f} s after the recovery.")
            a("")
    timeline(L, labels, V)


def timeline(L: list[str], labels: list[str], V: list[dict[str, Any]], step: int = 5) -> None:
    """Per 5 s (from the scenario's start; the bad spell starts at ~warm_s):
    calls/s, the share hitting A, the share served by A, the worst 1 s p99."""
    a = L.append
    n = max(len(v["per_second"]) for v in V)
    warm = round(V[0]["bad_at_s"])
    rec = round(V[0]["recovered_at_s"])
    a(f"Per {step} s (the bad spell is {warm} s to {rec} s): calls/s, % of calls with an attempt "
      "on A, % served by A, the worst one-second p99 (ms).")
    a("")
    a("| s | " + " | ".join(f"{lbl}: calls/s, on A, by A, p99" for lbl in labels) + " |")
    a("|---|" + "---|" * len(labels))
    for lo in range(0, n, step):
        cells = []
        for v in V:
            ps = v["per_second"][lo:lo + step]
            calls = sum(p["calls"] for p in ps)
            if not calls:
                cells.append("")
                continue
            hit = sum(p["hit_a"] for p in ps)
            by = sum(p["served_a"] for p in ps)
            p99 = max((p["p99_ms"] for p in ps if p["calls"]), default=float("nan"))
            # The last bin ends with the run, part way through a second.
            dur = max(1e-3, min(lo + len(ps), v["end_s"]) - lo)
            cells.append(f"{calls / dur:,.0f}, {100 * hit / calls:.0f}%, "
                         f"{100 * by / calls:.0f}%, {_f(p99, 1)}")
        a(f"| {lo}-{lo + step} | " + " | ".join(cells) + " |")
    a("")
