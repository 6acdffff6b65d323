"""The Cloudflare Worker side: one `wrangler dev` running the f3dx worker
next to plain JavaScript workers (``workers/``), against the same upstreams.

Only the first config of `wrangler dev -c A -c B ...` gets the HTTP port, so
it is a dispatcher (``workers/dispatch.js``) passing each request to the
worker its ``x-bench-target`` header names: ``forward`` and ``twofetch``
(the runtime's floors for a call and a failover), ``samework`` (JavaScript
doing the f3dx worker's work: context), ``f3dx`` and ``f3dx-failover``
(``worker/build/shim.mjs``), ``pipe`` and the streaming f3dx targets (a
session of their own: ``StreamWranglerBench``), and ``null`` (answered by
the dispatcher) and ``hop`` (through a binding): the hop every target pays.
docs/benchmarks.md says why. The worker must be built and
worker/node_modules installed (run.sh does both).
"""

from __future__ import annotations

import gzip
import http.client
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import lib
import streaming
from lib import API_KEY, free_port

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORKER_DIR = ROOT / "worker"
BUILD = WORKER_DIR / "build"
WRANGLER = WORKER_DIR / "node_modules" / ".bin" / "wrangler"
JS = HERE / "workers"
TOKEN = "bench-router-token"
BODY = json.dumps(lib.BODY).encode()
READY_TIMEOUT_S = 120.0
# The idle worker's build command sleeps this long, so that its bundle is the
# last one ready and wrangler attaches its inspector to it (see WranglerBench).
IDLE_BUILD_DELAY_S = 5  # a cold workerd start on a loaded 2-core machine

# target -> (binding in the dispatcher, worker name suffix)
SERVICES = {"forward": "FORWARD", "twofetch": "TWOFETCH", "samework": "SAMEWORK",
            "samework-failover": "SAMEWORK_FAILOVER", "f3dx": "F3DX",
            "f3dx-failover": "F3DX_FAILOVER", "hop": "NULL"}
CALL = ["forward", "f3dx"]
FAILOVER = ["twofetch", "f3dx-failover"]
# The JavaScript workers doing f3dx's work: in the latency rounds only (context,
# not a target), next to CALL and FAILOVER.
SAMEWORK = ["samework", "samework-failover"]
RUNTIME = ["null", "hop"]


def compatibility_date() -> str:
    """The standalone worker's, from worker/wrangler.toml."""
    m = re.search(r'^compatibility_date\s*=\s*"([^"]+)"', (WORKER_DIR / "wrangler.toml").read_text(),
                  re.M)
    return m.group(1) if m else "2026-04-20"


def wrangler_version() -> str | None:
    try:
        pkg = json.loads((WORKER_DIR / "node_modules" / "wrangler" / "package.json").read_text())
        return str(pkg["version"])
    except (OSError, ValueError, KeyError):
        return None


def missing() -> str | None:
    """Why the worker side cannot run, or None."""
    need = [BUILD / "shim.mjs", BUILD / "index_bg.wasm", WRANGLER]
    gone = [str(p.relative_to(ROOT)) for p in need if not p.exists()]
    if gone:
        return (f"missing {', '.join(gone)}: run `bash scripts/build-worker.sh` and `npm ci` in "
                "worker/ (bench/run.sh does both)")
    return None


def upload_size() -> dict[str, int]:
    """What `wrangler deploy` uploads for the standalone worker, as
    scripts/build-worker.sh reports it: build/index_bg.wasm and the JS of
    build/ except embed.js (the TypeScript library), each gzip -9."""
    wasm = (BUILD / "index_bg.wasm").read_bytes()
    js_files = sorted(p for p in BUILD.rglob("*") if p.suffix in (".js", ".mjs")
                      and p.name != "embed.js")
    js = b"".join(p.read_bytes() for p in js_files)
    wasm_gz = len(gzip.compress(wasm, 9, mtime=0))
    js_gz = len(gzip.compress(js, 9, mtime=0))
    return {"wasm_bytes": len(wasm), "wasm_gzip": wasm_gz, "js_bytes": len(js), "js_gzip": js_gz,
            "gzip_total": wasm_gz + js_gz}


def _toml(value: str) -> str:
    # A JSON string is a valid TOML basic string (json.dumps escapes only
    # quotes, backslashes and control characters, or as \uXXXX).
    return json.dumps(value)


def router_config(*urls: str) -> str:
    """One provider "ok", or "fail" then "ok" with health off (as the native
    failover: health would eject "fail" and skip it)."""
    names = ("fail", "ok") if len(urls) == 2 else ("ok",)
    return json.dumps({"policy": "sequential", **({"health": False} if len(urls) == 2 else {}),
                       "providers": [lib.provider(n, u) for n, u in zip(names, urls)]})


class WranglerBench:
    """`wrangler dev -c dispatch -c forward -c twofetch -c samework
    -c samework-failover -c f3dx -c f3dx-failover -c null -c idle` on
    127.0.0.1, in its own process group.

    `wrangler dev` attaches its devtools inspector (with the Network domain
    on) to one worker of a multi-config session: the one whose bundle was
    ready last. Every fetch() that worker makes then sends devtools events,
    which wrangler formats and appends to its debug log, for milliseconds of
    CPU a call: a worker under test with the inspector would look several
    times slower than the others. So a last worker, ``idle``, never
    called, is bundled last (its build command sleeps), and takes the
    inspector; `inspector_target` reads from wrangler's debug log where it
    went.
    """

    # target -> binding in the dispatcher: the workers of this session.
    services = SERVICES

    def __init__(self, ok_url: str, fail_url: str, log_path: Path) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="f3dx-bench-wrangler-"))
        self.port = free_port()
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_level = "warn"
        self.debug_log = log_path.with_suffix(".debug.log")
        # Unique names: wrangler's dev registry is shared by every wrangler
        # dev on the machine (the project's tests may run one meanwhile).
        sfx = f"-{os.getpid()}"
        date = compatibility_date()
        names = {t: f"bench-{t}{sfx}" for t in self.services}
        self.idle_name = f"bench-idle{sfx}"
        specs: list[tuple[str, str, Path, dict[str, str]]] = [
            ("dispatch", f"bench-dispatch{sfx}", JS / "dispatch.js", {}),
            *self.worker_specs(names, ok_url, fail_url),
            ("hop", names["hop"], JS / "null.js", {}),
            ("idle", self.idle_name, JS / "null.js", {}),
        ]
        self.configs: list[Path] = []
        for key, name, main, variables in specs:
            lines = [f"name = {_toml(name)}", f"main = {_toml(str(main))}",
                     f'compatibility_date = "{date}"']
            if key == "idle":
                # Bundled last, so that wrangler attaches its inspector here.
                lines += ["[build]", f"command = {_toml(f'sleep {IDLE_BUILD_DELAY_S}')}"]
            if key == "dispatch":
                for target, binding in self.services.items():
                    lines += ["[[services]]", f"binding = {_toml(binding)}",
                              f"service = {_toml(names[target])}"]
            if variables:
                lines.append("[vars]")
                lines += [f"{k} = {_toml(v)}" for k, v in variables.items()]
            path = self.dir / f"{key}.toml"
            path.write_text("\n".join(lines) + "\n")
            self.configs.append(path)

    def worker_specs(self, names: dict[str, str], ok_url: str,
                     fail_url: str) -> list[tuple[str, str, Path, dict[str, str]]]:
        """(key, worker name, main module, vars) of the measured workers,
        between the dispatcher and `hop`."""
        js_vars = {"OK_URL": ok_url, "FAIL_URL": fail_url, "API_KEY": API_KEY}
        return [
            ("forward", names["forward"], JS / "forward.js", js_vars),
            ("twofetch", names["twofetch"], JS / "twofetch.js", js_vars),
            ("samework", names["samework"], JS / "samework.js", {**js_vars, "PROVIDERS": "ok"}),
            ("samework-failover", names["samework-failover"], JS / "samework.js",
             {**js_vars, "PROVIDERS": "fail,ok"}),
            ("f3dx", names["f3dx"], BUILD / "shim.mjs",
             {"ROUTER_CONFIG": router_config(ok_url), "ROUTER_TOKEN": TOKEN}),
            ("f3dx-failover", names["f3dx-failover"], BUILD / "shim.mjs",
             {"ROUTER_CONFIG": router_config(fail_url, ok_url), "ROUTER_TOKEN": TOKEN}),
        ]

    def warm(self, chunks: int = 0) -> None:
        """One call to every target (each stream checked), once all answer."""
        for target in [*self.services, "null"]:
            stream = bool(chunks) and target not in RUNTIME
            c = StreamClient(self.port, target) if stream else Client(self.port, target)
            try:
                c.check(chunks) if isinstance(c, StreamClient) else c.call()
            finally:
                c.close()

    def inspector_target(self) -> str | None:
        """The worker wrangler's inspector attached to last, from its debug log."""
        try:
            with open(self.debug_log, "rb") as f:
                f.seek(self.debug_offset)
                text = f.read().decode(errors="replace")
        except OSError:
            return None
        hits = re.findall(r"NEW RUNTIME WEBSOCKET \S*/core:user:([\w.-]+)", text)
        return hits[-1] if hits else None

    def start(self) -> float:
        """Start and wait until every target answers; returns the seconds taken."""
        t0 = time.perf_counter()
        try:
            self.debug_offset = self.debug_log.stat().st_size
        except OSError:
            self.debug_offset = 0
        argv = [str(WRANGLER), "dev"]
        for cfg in self.configs:
            argv += ["-c", str(cfg)]
        argv += ["--ip", "127.0.0.1", "--port", str(self.port),
                 "--inspector-port", str(free_port()), "--log-level", self.log_level,
                 "--show-interactive-dev-session=false"]
        env = {**os.environ, "CI": "true", "WRANGLER_SEND_METRICS": "false", "NO_COLOR": "1",
               "WRANGLER_REGISTRY_PATH": str(self.dir / "registry"),
               # No download of the `Request.cf` placeholder (it would try the network).
               "CLOUDFLARE_CF_FETCH_ENABLED": "false",
               "WRANGLER_LOG_PATH": str(self.debug_log)}
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(argv, cwd=self.dir, stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True, env=env)
        deadline = time.monotonic() + READY_TIMEOUT_S
        last = ""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"wrangler dev exited ({self.proc.returncode}): "
                                   f"{self.tail_log()}")
            try:
                c = Client(self.port, "hop", timeout=10)
                try:
                    status, _, _ = c.request()
                finally:
                    c.close()
                if status == 200:
                    break
                last = f"status {status}"
            except OSError as e:
                last = repr(e)
            time.sleep(0.2)
        else:
            raise TimeoutError(f"wrangler dev not ready in {READY_TIMEOUT_S:.0f}s ({last}): "
                               f"{self.tail_log()}")
        self.warm()
        return time.perf_counter() - t0

    def tail_log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def cpu_seconds(self) -> float:
        """CPU time of every process in wrangler's group (node and workerd)."""
        if self.proc is None:
            return 0.0
        ticks = (lib.pid_ticks(int(p)) for p in os.listdir("/proc") if p.isdigit())
        return sum(t for g, t in ticks if g == self.proc.pid) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc is not None:
            lib.stop_group(self.proc, grace=10)
        if getattr(self, "log", None) is not None:
            self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def start(make: Any) -> tuple[WranglerBench, dict[str, Any]]:
    """``make()`` (a WranglerBench) started, restarted once if wrangler's
    inspector landed on a measured worker; and how the start went."""
    for attempt in (1, 2):
        wb = make()
        info: dict[str, Any] = {"start_s": wb.start(), "inspector": wb.inspector_target()}
        info["inspector_on_idle"] = info["inspector"] == wb.idle_name
        lib.log(f"  wrangler dev ready in {info['start_s']:.1f}s on port {wb.port}; "
                f"its inspector on {info['inspector']}")
        if info["inspector_on_idle"] or attempt == 2:
            return wb, info
        lib.log("  the inspector is on a measured worker: restarting wrangler dev")
        wb.stop()
    raise AssertionError("unreachable")


class CallError(RuntimeError):
    pass


class Client:
    """One persistent HTTP/1.1 connection (http.client, TCP_NODELAY) to the
    dispatcher, for one target; the request body built once."""

    def __init__(self, port: int, target: str, timeout: float = 30.0) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        self.target = target
        self.headers = {"content-type": "application/json", "authorization": f"Bearer {TOKEN}",
                        "x-bench-target": target}
        self.expect = b'{"ok":true}' if target in RUNTIME else b"Hello from the benchmark"

    def request(self) -> tuple[int, http.client.HTTPResponse, bytes]:
        for attempt in (0, 1):
            try:
                self.conn.request("POST", "/v1/chat/completions", BODY, self.headers)
                r = self.conn.getresponse()
                return r.status, r, r.read()
            except (http.client.RemoteDisconnected, ConnectionError, http.client.BadStatusLine):
                self.conn.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def call(self) -> bytes:
        status, r, data = self.request()
        if status != 200 or self.expect not in data:
            raise CallError(f"{self.target}: status {status}: {data[:200]!r}")
        return data

    def close(self) -> None:
        self.conn.close()


# ------------------------------------------------------------------ streaming

# The streaming session (a `wrangler dev` of its own): target -> binding.
STREAM_SERVICES = {"pipe": "PIPE", "pipe-slow": "PIPE_SLOW", "f3dx-stream": "F3DX_STREAM",
                   "f3dx-stream-slow": "F3DX_STREAM_SLOW", "hop": "NULL"}
# Per variant (streaming.VARIANTS): (the f3dx worker, the piping JS worker).
STREAM_PAIRS = {"fast": ("f3dx-stream", "pipe"), "slow": ("f3dx-stream-slow", "pipe-slow")}
STREAM_BODY = json.dumps(streaming.BODY).encode()


class StreamWranglerBench(WranglerBench):
    """`wrangler dev -c dispatch -c pipe -c pipe-slow -c f3dx-stream
    -c f3dx-stream-slow -c null -c idle`: the f3dx worker streaming
    (``stream: true``, one provider) next to ``workers/pipe.js``, which
    fetches the upstream and answers ``new Response(upstream.body, ...)``,
    the body piped through as it arrives: the runtime's floor for a stream.
    ``-slow`` targets stream from the delayed upstream (the mock provider's stream mode), the
    others from nginx (no delay). Same dispatcher, hop and idle worker as
    WranglerBench."""

    services = STREAM_SERVICES

    def __init__(self, fast_url: str, slow_url: str, chunks: int, log_path: Path) -> None:
        self.chunks = chunks
        super().__init__(fast_url, slow_url, log_path)

    def worker_specs(self, names: dict[str, str], ok_url: str,
                     fail_url: str) -> list[tuple[str, str, Path, dict[str, str]]]:
        fast, slow = ok_url, fail_url
        return [
            ("pipe", names["pipe"], JS / "pipe.js", {"UPSTREAM_URL": fast, "API_KEY": API_KEY}),
            ("pipe-slow", names["pipe-slow"], JS / "pipe.js",
             {"UPSTREAM_URL": slow, "API_KEY": API_KEY}),
            ("f3dx-stream", names["f3dx-stream"], BUILD / "shim.mjs",
             {"ROUTER_CONFIG": router_config(fast), "ROUTER_TOKEN": TOKEN}),
            ("f3dx-stream-slow", names["f3dx-stream-slow"], BUILD / "shim.mjs",
             {"ROUTER_CONFIG": router_config(slow), "ROUTER_TOKEN": TOKEN}),
        ]

    def warm(self, chunks: int = 0) -> None:
        super().warm(self.chunks)


class StreamClient:
    """One persistent HTTP/1.1 connection to the dispatcher for one streaming
    target, read the way the native floor reads a stream (streaming.RawSse:
    every event boundary as it arrives, to the end of the response)."""

    def __init__(self, port: int, target: str) -> None:
        self.target = target
        headers = {"content-type": "application/json", "authorization": f"Bearer {TOKEN}",
                   "x-bench-target": target, "accept": "text/event-stream"}
        self.raw = streaming.RawSse(f"http://127.0.0.1:{port}/v1/chat/completions", headers,
                                    STREAM_BODY)

    def call(self) -> int:
        """One stream read to its end; perf_counter_ns() at its first event."""
        return self.raw.stream()[0]

    def check(self, chunks: int) -> None:
        _, head, raw = self.raw.stream()
        text, n, done = streaming.body_text(head, raw)
        if text != streaming.expected_text(chunks) or n != chunks or not done:
            raise CallError(f"{self.target}: {n} chunks with text, [DONE] {done}: "
                            f"{raw[:200]!r}")

    def close(self) -> None:
        self.raw.close()


def dry_run_size(log_path: Path) -> dict[str, Any]:
    """`wrangler deploy --dry-run` of the standalone worker: the upload size
    as wrangler reports it ("Total Upload: X KiB / gzip: Y KiB")."""
    d = Path(tempfile.mkdtemp(prefix="f3dx-bench-size-"))
    try:
        (d / "wrangler.toml").write_text(
            f'name = "bench-size"\nmain = {_toml(str(BUILD / "shim.mjs"))}\n'
            f'compatibility_date = "{compatibility_date()}"\n')
        env = {**os.environ, "CI": "true", "WRANGLER_SEND_METRICS": "false", "NO_COLOR": "1",
               "WRANGLER_LOG_PATH": str(d / "wrangler.log")}
        p = subprocess.run([str(WRANGLER), "deploy", "--dry-run", "--outdir", str(d / "out"),
                            "-c", str(d / "wrangler.toml")], cwd=d, env=env, capture_output=True,
                           text=True, timeout=180, stdin=subprocess.DEVNULL)
        with open(log_path, "a") as f:
            f.write(p.stdout + p.stderr)
        m = re.search(r"Total Upload:\s*([\d.]+)\s*KiB\s*/\s*gzip:\s*([\d.]+)\s*KiB", p.stdout)
        if p.returncode != 0 or not m:
            return {"dry_run_error": f"exit {p.returncode}: {(p.stderr or p.stdout)[-300:]}"}
        return {"dry_run_total_kib": float(m.group(1)), "dry_run_gzip_kib": float(m.group(2))}
    except (OSError, subprocess.TimeoutExpired) as e:
        return {"dry_run_error": repr(e)}
    finally:
        shutil.rmtree(d, ignore_errors=True)
