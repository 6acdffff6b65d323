"""Running the worker under `wrangler dev` for tests: one instance per
config, on a free loopback port, stopped with its whole process group.

The worker must be built first (scripts/build-worker.sh; scripts/test.sh
does it) and worker/node_modules installed (npm ci in worker/).
"""

from __future__ import annotations

import json
import urllib.parse
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
WORKER = ROOT / "worker"
BUILD = WORKER / "build"
WRANGLER = WORKER / "node_modules" / ".bin" / "wrangler"
# Must match worker/wrangler.toml.
COMPATIBILITY_DATE = "2026-04-20"
# A cold start of workerd on a loaded 2-core machine.
READY_TIMEOUT_S = 90.0
# The idle worker's build command sleeps this long, so that its bundle is the
# last one ready and wrangler attaches its inspector to it (see WranglerDev).
IDLE_BUILD_DELAY_S = 3


def require_built() -> None:
    """Fail with what to run when the worker or wrangler is missing."""
    missing = [p for p in (BUILD / "shim.mjs", BUILD / "embed.js", WRANGLER) if not p.exists()]
    if missing:
        raise RuntimeError(
            f"missing {', '.join(map(str, missing))}: run `bash scripts/build-worker.sh` "
            "and `npm ci` in worker/ (scripts/test.sh does both)"
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def dev_vars_line(name: str, value: str) -> str:
    # .dev.vars is dotenv: a single-quoted value is taken literally.
    if "'" in value or "\n" in value:
        raise ValueError(f"{name}: value cannot be written to .dev.vars")
    return f"{name}='{value}'\n"


class WranglerDev:
    """`wrangler dev` serving ``main`` (default: the standalone worker) with
    the given variables, on 127.0.0.1. Use as a context manager.

    `wrangler dev` attaches its devtools inspector, with the Network domain
    on, to one worker: every chunk of every fetch() that worker reads is
    then a devtools event, which wrangler's proxy passes on to wrangler with
    one HTTP request each (a flood of chunks opens thousands of connections
    and stalls the proxy). A deployed worker has none of this. With
    ``inspector_elsewhere``, a second worker, idle and bundled last, takes the
    inspector (bench/cfworker.py does the same), at a few seconds more start-up.
    """

    def __init__(self, variables: dict[str, str], main: Path | None = None, extra_toml: str = "",
                 inspector_elsewhere: bool = False) -> None:
        require_built()
        self.dir = Path(tempfile.mkdtemp(prefix="f3dx-wrangler-"))
        self.idle_name = f"f3dx-idle-{self.dir.name}" if inspector_elsewhere else None
        main = main or BUILD / "shim.mjs"
        # No [build] here: the tests use what scripts/build-worker.sh built.
        (self.dir / "wrangler.toml").write_text(
            f'name = "f3dx-router-test"\nmain = {json.dumps(str(main))}\n'
            f'compatibility_date = "{COMPATIBILITY_DATE}"\n{extra_toml}'
        )
        (self.dir / ".dev.vars").write_text("".join(dev_vars_line(k, v) for k, v in variables.items()))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # What wrangler and the worker print, read as it comes by a thread
        # (so the pipe never fills, and the worker's console lines can be
        # waited for: wrangler prints them a little after the request).
        self.output: list[str] = []
        self._output_lock = threading.Lock()
        env = {**os.environ, "CI": "true", "WRANGLER_SEND_METRICS": "false", "NO_COLOR": "1",
               # Where the inspector went (see inspected_worker); a registry of
               # its own, as several wrangler dev may run at once.
               "WRANGLER_LOG_PATH": str(self.dir / "wrangler.log"),
               "WRANGLER_REGISTRY_PATH": str(self.dir / "registry")}
        configs = ["--config", str(self.dir / "wrangler.toml")]
        if self.idle_name is not None:
            configs += ["--config", str(self._write_idle_worker())]
        self.proc = subprocess.Popen(
            [str(WRANGLER), "dev", *configs, "--ip", "127.0.0.1",
             "--port", str(self.port), "--inspector-port", str(free_port()), "--log-level", "warn"],
            cwd=self.dir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: workerd goes with it
            env=env,
        )
        self._reader = threading.Thread(target=self._read_output, daemon=True)
        self._reader.start()
        try:
            self._wait_ready()
        except BaseException:
            self.close()
            raise

    def _write_idle_worker(self) -> Path:
        idle = self.dir / "idle"
        idle.mkdir()
        (idle / "idle.mjs").write_text('export default { fetch: () => new Response("idle") };\n')
        (idle / "wrangler.toml").write_text(
            f'name = "{self.idle_name}"\nmain = "idle.mjs"\ncompatibility_date = "{COMPATIBILITY_DATE}"\n'
            f'[build]\ncommand = "sleep {IDLE_BUILD_DELAY_S}"\n'
        )
        return idle / "wrangler.toml"

    def inspected_worker(self) -> str | None:
        """The name of the worker wrangler attached its inspector to last."""
        try:
            text = (self.dir / "wrangler.log").read_text(errors="replace")
        except OSError:
            return None
        hits = re.findall(r"NEW RUNTIME WEBSOCKET \S*/core:user:([\w.-]+)", text)
        return hits[-1] if hits else None

    def _wait_ready(self) -> None:
        # Poll the port rather than parse wrangler's output (its wording and
        # log level vary); any HTTP answer means workerd serves the worker.
        # With an idle worker, also until the inspector went to it (its debug
        # log says so a little after the first answer).
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"wrangler dev exited ({self.proc.returncode}):\n{self.logs()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    pass
                status, _, _ = self.request("GET", "/healthz", timeout=10)
                if status and (self.idle_name is None or self.inspected_worker() == self.idle_name):
                    return
            except OSError:
                pass
            time.sleep(0.1)
        where = "" if self.idle_name is None else f" (the inspector is on {self.inspected_worker()})"
        raise TimeoutError(f"wrangler dev not ready within {READY_TIMEOUT_S:.0f} s{where}:\n{self.logs()}")

    def _read_output(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:  # ends at EOF, when wrangler exits
            with self._output_lock:
                self.output.append(line.decode(errors="replace"))

    def output_text(self) -> str:
        """Everything wrangler and the worker printed so far."""
        with self._output_lock:
            return "".join(self.output)

    def wait_for_output(self, text: str, timeout: float = 10.0) -> str:
        """The output once `text` is in it (or at the timeout)."""
        deadline = time.monotonic() + timeout
        while text not in (out := self.output_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
        return out

    def logs(self) -> str:
        if self.proc.poll() is not None:
            self._reader.join(timeout=5)
        return self.output_text()[-4000:]

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None,
        timeout: float = 30.0,
    ) -> tuple[int, dict[str, str], bytes]:
        req = urllib.request.Request(self.url + path, data=body, method=method, headers=headers or {})
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(req, timeout=timeout) as r:
                return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
        except urllib.error.HTTPError as e:
            with e:
                return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()

    def post_json(self, path: str, payload: Any, token: str | None = None, timeout: float = 30.0,
                  headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
        headers = {"content-type": "application/json", **(headers or {})}
        if token is not None:
            headers["authorization"] = f"Bearer {token}"
        status, h, raw = self.request("POST", path, json.dumps(payload).encode(), headers, timeout)
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = raw.decode(errors="replace")
        return status, h, parsed

    def get_json(self, path: str, token: str | None = None, timeout: float = 30.0) -> tuple[int, dict[str, str], Any]:
        headers = {} if token is None else {"authorization": f"Bearer {token}"}
        status, h, raw = self.request("GET", path, None, headers, timeout)
        return status, h, json.loads(raw)

    def workerd_pid(self) -> int:
        """The workerd process that runs the worker. wrangler starts two: one
        serves our port with its proxy worker, which passes each request on
        to the other, which runs ours (and has the inspector)."""
        proxy = f"--socket-addr=entry=127.0.0.1:{self.port}"
        pids = [p for p in descendants(self.proc.pid)
                if process_name(p) == "workerd" and proxy not in command_line(p)]
        if len(pids) != 1:
            raise RuntimeError(f"expected one workerd running the worker under wrangler ({self.proc.pid}), "
                               f"found {pids}")
        return pids[0]

    def workerd_memory(self) -> Memory:
        """workerd's resident and peak resident memory now."""
        return Memory.of(self.workerd_pid())

    def reset_workerd_peak(self) -> Memory:
        """Restart workerd's peak resident memory (VmHWM) from its resident
        memory now (Linux's clear_refs), so the next reading is the peak
        since; returns the memory then."""
        pid = self.workerd_pid()
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return Memory.of(pid)

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
            except ProcessLookupError:
                pass
        self._reader.join(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> WranglerDev:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


MIB = 1024 * 1024
# A line of answer text: 101 bytes of JSON with its escaped newline, so a
# large answer's JSON has escapes as a real one does.
ANSWER_LINE = "x" * 99 + "\n"


def large_answer(total_bytes: int, streamed: bool) -> dict[str, Any]:
    """A mock script entry: an answer whose body (or whose one text event)
    is just under `total_bytes`, whole or as a stream with all its text in
    one event (a streamed answer's worst case: small deltas pass through)."""
    text = ANSWER_LINE * max(1, (total_bytes - 1024) // (len(ANSWER_LINE) + 1))
    head = {"id": "chatcmpl-large", "created": 1, "model": "gpt-4o"}
    if not streamed:
        choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        return {"json": {**head, "object": "chat.completion", "choices": [choice]}}

    def event(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return {"data": {**head, "object": "chat.completion.chunk", "choices": [choice]}}

    return {"events": [event({"role": "assistant"}), event({"content": text}), event({}, "stop"),
                       {"data": "[DONE]"}]}


class Memory:
    """A process's resident memory (VmRSS) and its peak (VmHWM), in bytes."""

    def __init__(self, rss: int, peak: int) -> None:
        self.rss = rss
        self.peak = peak

    @classmethod
    def of(cls, pid: int) -> Memory:
        fields = {}
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                fields[name] = int(value.split()[0]) * 1024  # "123 kB"
        return cls(fields["VmRSS"], fields["VmHWM"])

    def __repr__(self) -> str:
        return f"Memory(rss={self.rss / MIB:.0f} MiB, peak={self.peak / MIB:.0f} MiB)"


def process_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def command_line(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def descendants(pid: int) -> list[int]:
    """Every live process under `pid` (children, theirs, ...)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # The parent is the 2nd field after the ")" that ends the name.
            ppid = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def parse_trace(header: str | None) -> list[dict[str, Any]]:
    """`x-f3dx-trace`: `name[group]=outcome[/status-or-fault]@start_ms, ...`
    (`[group]`, percent-encoded, only with a routing table)."""
    attempts: list[dict[str, Any]] = []
    for entry in filter(None, (header or "").split(", ")):
        name, _, rest = entry.partition("=")
        group = None
        if name.endswith("]") and "[" in name:
            name, _, quoted = name[:-1].partition("[")
            group = urllib.parse.unquote(quoted)
        what, _, started = rest.partition("@")
        outcome, _, detail = what.partition("/")
        status = int(detail) if detail.isdigit() else None
        fault = detail if detail and status is None else None
        attempts.append({"provider": name, "group": group, "outcome": outcome, "status": status, "fault": fault,
                         "started_ms": float(started or 0)})
    return attempts
