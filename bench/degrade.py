"""The degradation scenario (issue 11): one provider turns flaky, then
recovers; what health tracking changes for the callers.

Two providers A and B on the mock provider's flaky mode, both answering in ``delay_ms``
(5 ms). A router ``[A, B]``, policy ``sequential``, shared by ``threads``
threads (4) calling ``route()`` in a loop. After ``warm_s`` (10 s) A answers
503 (no Retry-After) to ``frac`` (40%) of requests for ``bad_s`` (30 s), then
recovers. The scenario runs once with ``health=False`` (static order: A is
tried first on every call, the old behaviour) and once with the default
health tracking (A is ejected after 5 soft failures in a row, for 30 s, then
half-open with one probe). Each variant gets a fresh router and mock state.

Per call: its start, its time, whether it made an attempt on A, whether A
served it, whether it succeeded. Meanwhile a sampler reads
``router.stats()["providers"]["a"]`` every ``sample_s`` (0.2 s): the timeline
of A's state. After the recovery the loop runs at least ``after_min_s``
(10 s) and stops once A has served calls again for ``hold_s`` (5 s), or at
``after_max_s`` (60 s): every loop here is bounded in time.

``measure()`` is run.py's measure (the mock, then each variant in a worker
process, worker.py's ``op_degrade``); ``scenario()`` is the loop inside the
worker; ``summarize()`` turns its records into what results.json keeps.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import lib
import upstream

VARIANTS = (("health off (static order)", False), ("health on (default)", True))

# One call record: (start_s, took_us, flags), times from the scenario's start.
HIT_A, SERVED_A, OK = 1, 2, 4
Record = tuple[float, float, int]


def settings(args: Any) -> dict[str, Any]:
    """The scenario's knobs from run.py's arguments."""
    return {"threads": args.degrade_threads, "delay_ms": args.degrade_delay_ms,
            "frac": args.degrade_frac, "warm_s": args.degrade_warm_s,
            "bad_s": args.degrade_bad_s, "after_min_s": args.degrade_after_min_s,
            "after_max_s": args.degrade_after_max_s, "hold_s": args.degrade_hold_s,
            "sample_s": 0.2, "timeout_ms": 2000}


def measure(args: Any, logs: Path) -> dict[str, Any]:
    """Both variants against one flaky mock (A and B), each in a fresh worker process."""
    s = settings(args)
    out: dict[str, Any] = {"settings": s, "variants": {}}
    flaky = {"mode": "flaky", "delay_ms": s["delay_ms"]}
    mock = upstream.bench_mocks(a={**flaky, "seed": 1}, b={**flaky, "seed": 2})
    try:
        for label, health in VARIANTS:
            w = lib.Worker("f3dx_router", "http://127.0.0.1:9/v1", "http://127.0.0.1:9/v1",
                       logs / "degrade.log")
            try:
                cap = s["warm_s"] + s["bad_s"] + s["after_max_s"] + 5
                r = w.cmd(timeout=cap + 120, op="degrade", urls=[mock.base_url("a"), mock.base_url("b")],
                          control_url=mock.stats_url().rsplit("/", 1)[0], health=health, **s)
                out["variants"][label] = r
                log_variant(label, r)
            except lib.WorkerError as e:
                out["variants"][label] = {"error": str(e)}
                lib.log(f"  degrade {label}: FAILED {e}")
            finally:
                w.stop()
    finally:
        mock.close()
    return out


def log_variant(label: str, r: dict[str, Any]) -> None:
    bad = r["phases"]["bad"]
    rec = r["recovery"]
    lib.log(f"  degrade {label}: bad spell: {bad['calls']} calls, {bad['hit_a_pct']:.1f}% hit A, "
        f"success {bad['success_pct']:.3f}%, p50 {bad['p50_ms']:.2f} ms, "
        f"p99 {bad['p99_ms']:.2f} ms; A serving again "
        + (f"{rec['first_served_a_s']:.2f} s after recovery" if rec["first_served_a_s"]
           is not None else "never (within the run)")
        + "; A's states: " + ", ".join(f"{t:.1f}s {st}" for t, st in r["state_changes"]))


# ------------------------------------------------- inside the worker process

def _control(url: str, provider: str, frac: float) -> None:
    req = urllib.request.Request(f"{url}/fail?provider={provider}&frac={frac}", data=b"")
    with urllib.request.urlopen(req, timeout=5) as resp:
        resp.read()


def _mock_stats(url: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{url}/stats", timeout=5) as resp:
        return list(json.load(resp)["providers"].values())


def scenario(cmd: dict[str, Any]) -> dict[str, Any]:
    """The call loop of one variant (worker.py's ``op_degrade``)."""
    from f3dx_router import Router

    names = ("a", "b")
    provs = [lib.provider(n, u, int(cmd["timeout_ms"])) for n, u in zip(names, cmd["urls"])]
    kw: dict[str, Any] = {"policy": "sequential"}
    if not cmd["health"]:
        kw["health"] = False
    router = Router(provs, **kw)
    control = cmd["control_url"]
    _control(control, "a", 0.0)
    before = _mock_stats(control)
    warm_s, bad_s = float(cmd["warm_s"]), float(cmd["bad_s"])
    after_min_s, after_max_s = float(cmd["after_min_s"]), float(cmd["after_max_s"])
    hold_s, sample_s = float(cmd["hold_s"]), float(cmd["sample_s"])

    t0 = time.perf_counter()
    hard_stop = t0 + warm_s + bad_s + after_max_s + 2  # whatever the main loop does
    stop = threading.Event()
    marks: dict[str, float] = {}  # "recovered", "a_back": seconds from t0
    per_thread: list[list[Record]] = [[] for _ in range(int(cmd["threads"]))]
    errors: dict[str, int] = {}
    lock = threading.Lock()

    def caller(out: list[Record]) -> None:
        pc = time.perf_counter
        while not stop.is_set() and pc() < hard_stop:
            start = pc()
            try:
                res = router.route(lib.BODY)
                attempts, flags = res.attempts, OK | (SERVED_A if res.provider == "a" else 0)
            except Exception as e:  # noqa: BLE001  (every provider failed: counted)
                attempts, flags = getattr(e, "attempts", None) or [], 0
                with lock:
                    errors[type(e).__name__] = errors.get(type(e).__name__, 0) + 1
            end = pc()
            if any(a.provider == "a" for a in attempts):
                flags |= HIT_A
            rel = start - t0
            out.append((rel, (end - start) * 1e6, flags))
            if flags & SERVED_A and "a_back" not in marks:
                rec = marks.get("recovered")
                if rec is not None and rel >= rec:
                    marks["a_back"] = end - t0

    samples: list[dict[str, Any]] = []

    def sampler() -> None:
        while not stop.wait(sample_s) and time.perf_counter() < hard_stop:
            st = router.stats()["providers"]["a"]
            samples.append({"t": time.perf_counter() - t0, "state": st["state"],
                            "until_s": st.get("until_s"), "error_rate": st.get("error_rate"),
                            "ejections": st.get("ejections")})

    threads = [threading.Thread(target=caller, args=(out,), daemon=True) for out in per_thread]
    threads.append(threading.Thread(target=sampler, daemon=True))
    for t in threads:
        t.start()
    try:
        time.sleep(max(0.0, t0 + warm_s - time.perf_counter()))
        _control(control, "a", float(cmd["frac"]))
        bad_at = time.perf_counter() - t0
        time.sleep(max(0.0, t0 + bad_at + bad_s - time.perf_counter()))
        _control(control, "a", 0.0)
        marks["recovered"] = time.perf_counter() - t0
        rec_at = marks["recovered"]
        while True:  # bounded: after_max_s at most
            now = time.perf_counter() - t0
            back = marks.get("a_back")
            if now >= rec_at + after_max_s:
                break
            if now >= rec_at + after_min_s and back is not None and now >= back + hold_s:
                break
            time.sleep(0.1)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=10)
    end_at = time.perf_counter() - t0
    after = _mock_stats(control)
    records = sorted(r for out in per_thread for r in out)
    final = router.stats()
    return {
        **summarize(records, bad_at, rec_at, end_at, after_min_s),
        "health": bool(cmd["health"]), "router_config": kw, "errors": errors,
        "bad_at_s": bad_at, "recovered_at_s": rec_at, "end_s": end_at,
        "stuck_threads": sum(t.is_alive() for t in threads),
        "state_changes": state_changes(samples),
        "stats_end": {n: {k: final["providers"][n].get(k) for k in
                          ("state", "requests", "successes", "soft_failures", "error_rate",
                           "ejections", "latency_ms")} for n in names},
        "upstream": {n: {"requests": a["requests"] - b["requests"],
                         "failed": a["failed"] - b["failed"]}
                     for n, a, b in zip(names, after, before)},
    }


# ------------------------------------------------------------- the numbers

def phase(records: list[Record], lo: float, hi: float) -> dict[str, Any]:
    """The calls that started in [lo, hi)."""
    sel = [r for r in records if lo <= r[0] < hi]
    n = len(sel)
    lat = sorted(r[1] / 1000.0 for r in sel)
    hit = sum(1 for r in sel if r[2] & HIT_A)
    served = sum(1 for r in sel if r[2] & SERVED_A)
    ok = sum(1 for r in sel if r[2] & OK)
    return {"from_s": lo, "to_s": hi, "calls": n, "hit_a": hit, "served_a": served, "ok": ok,
            "hit_a_pct": 100.0 * hit / n if n else float("nan"),
            "served_a_pct": 100.0 * served / n if n else float("nan"),
            "success_pct": 100.0 * ok / n if n else float("nan"),
            "calls_per_s": n / (hi - lo) if hi > lo else float("nan"),
            "p50_ms": lib.pct(lat, 50), "p99_ms": lib.pct(lat, 99),
            "p99.9_ms": lib.pct(lat, 99.9),
            "max_ms": lat[-1] if lat else float("nan")}


def summarize(records: list[Record], bad_at: float, rec_at: float, end_at: float,
              after_min_s: float) -> dict[str, Any]:
    # "overall" is the same window in both variants (the loop after the
    # recovery runs longer when A takes longer to come back).
    phases = {"warmup": phase(records, 0.0, bad_at), "bad": phase(records, bad_at, rec_at),
              "after": phase(records, rec_at, end_at),
              "overall": phase(records, 0.0, rec_at + after_min_s)}
    first = next((r for r in records if r[0] >= rec_at and r[2] & SERVED_A), None)
    recovery = {"first_served_a_s": first[0] - rec_at if first else None,
                "first_hit_a_s": next((r[0] - rec_at for r in records
                                       if r[0] >= rec_at and r[2] & HIT_A), None)}
    return {"calls": len(records), "phases": phases, "recovery": recovery}


def state_changes(samples: list[dict[str, Any]]) -> list[tuple[float, str]]:
    """A's state timeline: (time of the first sample in a state, the state)."""
    out: list[tuple[float, str]] = []
    for s in samples:
        if not out or out[-1][1] != s["state"]:
            out.append((round(s["t"], 2), s["state"]))
    return out
