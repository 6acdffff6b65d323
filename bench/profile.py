#!/usr/bin/env python3
"""Where a contender's time goes: perf (all threads, native) and py-spy.

    bench/.venv/bin/python bench/profile.py [--contender f3dx_router] [--seconds 8]
    bench/.venv/bin/python bench/profile.py --stream [--contender f3dx_router]

With ``--stream`` the loop reads whole streams instead: the
streaming contender (streaming.py) against the no-delay SSE nginx of the
stream measure, and the per-call numbers are per stream.

Starts the same private nginx as run.py, runs the contender's sequential
call loop in a worker, and while it runs:

* ``perf stat`` (software events: task-clock, context switches, CPU
  migrations) over the worker's threads, reported per call;
* ``perf record -g`` (cpu-clock sampling, every thread: the tokio workers
  included) summarized by shared object and by symbol;
* ``py-spy record --native`` (the Python threads only, with their native
  frames), as collapsed stacks.

Writes ``bench/profiles/<contender>.txt`` (the summary) and the raw files
beside it. Needs root (or ptrace/perf permissions); a tool that is missing
or refused is skipped with its reason.
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import streaming  # noqa: E402
import upstream  # noqa: E402
from lib import Worker  # noqa: E402


def run_tool(argv: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--contender", default="f3dx_router")
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--stat-only", action="store_true", help="perf stat only (per-call counts)")
    ap.add_argument("--stream", action="store_true",
                    help="whole streams of the stream measure (no delay) instead of calls")
    args = ap.parse_args()
    out_dir = HERE / "profiles"
    out_dir.mkdir(exist_ok=True)
    name = args.contender
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name) + (".stream" if args.stream else "")
    report: list[str] = [f"# profile of {name}{' (streams)' if args.stream else ''}, "
                         f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", ""]

    nginx = upstream.SseNginx(streaming.sse_body()) if args.stream else upstream.Nginx()
    nginx.start()
    # Streaming: both of the worker's URLs are the no-delay nginx.
    w = Worker(name, nginx.ok_url, nginx.ok_url if args.stream else nginx.fail_url,
               out_dir / f"{safe}.worker.log")
    try:
        if args.stream:
            w.cmd(timeout=180, op="stream_setup", chunks=streaming.CHUNKS, variants=["fast"])
            w.cmd(timeout=120, op="stream", variant="fast", chunks=streaming.CHUNKS, n=200,
                  warmup=50)  # warm
        else:
            w.cmd(timeout=180, op="setup")
            w.cmd(timeout=60, op="latency", n=2000, warmup=200)  # warm
        pid = w.proc.pid
        results: dict[str, object] = {}

        def loop(tag: str, seconds: float) -> None:
            if args.stream:
                results[tag] = w.cmd(timeout=seconds + 120, op="stream", variant="fast",
                                     chunks=streaming.CHUNKS, n=10_000_000, warmup=0,
                                     max_s=seconds)
                return
            results[tag] = w.cmd(timeout=seconds + 120, op="latency", n=10_000_000,
                                 warmup=0, max_s=seconds)

        def measured(tag: str, tool_argv: list[str] | None, seconds: float) -> str:
            t = threading.Thread(target=loop, args=(tag, seconds))
            t.start()
            time.sleep(0.3)
            text = ""
            if tool_argv:
                p = run_tool(tool_argv, seconds + 60)
                text = p.stdout + p.stderr
            t.join()
            return text

        # 1. perf stat: context switches per call.
        if shutil.which("perf"):
            d = max(2.0, args.seconds / 2)
            txt = measured("stat", ["perf", "stat", "-e",
                                    "task-clock,context-switches,cpu-migrations",
                                    "-p", str(pid), "--", "sleep", str(d)], d + 0.6)
            calls_per_s = results["stat"]["n"] / results["stat"]["wall_s"]  # type: ignore[index]
            report.append(f"## perf stat over {d:.0f} s ({calls_per_s:,.0f} calls/s)")
            report.append("")
            for ev in ("task-clock", "context-switches", "cpu-migrations"):
                m = re.search(r"([\d.,]+)\s+(?:msec\s+)?" + ev, txt)
                if m:
                    val = float(m.group(1).replace(",", ""))
                    per = val / (calls_per_s * d)
                    unit = " ms" if ev == "task-clock" else ""
                    report.append(f"- {ev}: {val:,.1f}{unit} total, "
                                  + (f"{per * 1000:.1f} us CPU per call" if ev == "task-clock"
                                     else f"{per:.2f} per call"))
            report.append("")
            (out_dir / f"{safe}.perf-stat.txt").write_text(txt)

        if shutil.which("perf") and not args.stat_only:
            # 2. perf record, all threads.
            data = out_dir / f"{safe}.perf.data"
            measured("record", ["perf", "record", "-F", "1999", "-g", "-o", str(data),
                                "-p", str(pid), "--", "sleep", str(args.seconds)],
                     args.seconds + 0.6)
            for sort, title, limit in (("comm,dso", "by thread and shared object", "1.5"),
                                       ("comm,dso,symbol", "by thread, object and symbol", "0.6")):
                p = run_tool(["perf", "report", "-i", str(data), "--no-children", "--stdio",
                              "--sort", sort, "--percent-limit", limit, "-g", "none"], 120)
                lines = [re.sub(r"\s+-\s+-\s*$", "", ln).rstrip()
                         for ln in p.stdout.splitlines() if ln.strip() and not ln.startswith("#")]
                lines = [re.sub(r"\s{3,}", "  ", ln) for ln in lines]
                report.append(f"## perf report, self time {title} (>= {limit}%)")
                report.append("")
                report.append("```")
                report.extend(lines[:40])
                report.append("```")
                report.append("")
        if not shutil.which("perf"):
            report.append("perf: not installed (skipped)\n")

        # 3. py-spy, the Python threads with native frames.
        pyspy = HERE / ".venv" / "bin" / "py-spy"
        if pyspy.exists() and not args.stat_only:
            raw = out_dir / f"{safe}.pyspy.txt"
            txt = measured("pyspy", [str(pyspy), "record", "--native", "-r", "200",
                                     "-d", str(int(args.seconds)), "-f", "raw", "-o", str(raw),
                                     "-p", str(pid)], args.seconds + 0.6)
            if raw.exists():
                leaf: collections.Counter[str] = collections.Counter()
                total = 0
                for line in raw.read_text().splitlines():
                    stack, _, n = line.rpartition(" ")
                    frames = stack.split(";")
                    k = int(n)
                    total += k
                    # The innermost frame of the calling thread, file names dropped.
                    leaf[re.sub(r" \(.*?\)", "", frames[-1])] += k
                report.append(f"## py-spy --native, innermost frames of the Python thread "
                              f"({total} samples)")
                report.append("")
                report.append("```")
                for fr, k in leaf.most_common(25):
                    report.append(f"{100 * k / total:5.1f}%  {fr}")
                report.append("```")
                report.append("")
            else:
                report.append(f"py-spy failed: {txt.strip()[-400:]}\n")
    finally:
        w.stop()
        nginx.stop()
    path = out_dir / (f"{safe}.stat.txt" if args.stat_only else f"{safe}.txt")
    path.write_text("\n".join(report))
    print(path)
    print("\n".join(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
