"""Upstreams for the benchmark, all on 127.0.0.1, started and stopped by run.py.

* ``Nginx``: a private nginx (its own config, pid file and logs in a temp
  dir; never the system service) with two servers on ephemeral ports:
  ``ok`` answers every request with a fixed chat completion, ``fail``
  answers 429 *without* ``Retry-After`` (a ``Retry-After`` would cool the
  provider down in f3dx_router and the next call would skip it, so the
  failover measurement would no longer measure a failover). The ``fail``
  harness reads nginx's request counter (``stub_status`` on a third port) to
  check how many upstream requests each call made (a failover call: exactly
  two). No access log: its synchronous file writes stalled the server for
  milliseconds now and then, which showed up in every contender's p99.
* ``bench_mocks``: the tests' mock provider (tests/mock_provider.py) in its
  bench modes: heavy-tailed delays (the tail experiment), 503 bursts (the
  degradation scenario), a delayed chunked stream (the streaming measure).

Each runs in its own process group and is stopped with it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

from lib import ROOT, free_port, stop_group, wait_listening

sys.path.insert(0, str(ROOT / "tests"))
# The ok server's fixed answer is the mock's: one chat completion every
# contender accepts (f3dx_router checks the shape).
from mock_provider import BENCH_COMPLETION as CHAT_COMPLETION  # noqa: E402
from mock_provider import MockProviders  # noqa: E402

RATE_LIMITED = {
    "error": {
        "message": "Rate limit reached (benchmark upstream).",
        "type": "rate_limit_error",
        "code": "rate_limit_exceeded",
    }
}


def nginx_binary() -> str:
    for cand in (shutil.which("nginx"), "/usr/sbin/nginx"):
        if cand and os.access(cand, os.X_OK):
            return cand
    raise RuntimeError("nginx not found (run.sh installs Debian's nginx-light)")


def nginx_version() -> str:
    out = subprocess.run([nginx_binary(), "-v"], capture_output=True, text=True)
    return (out.stderr or out.stdout).strip().replace("nginx version: ", "")


def _nginx_literal(obj: object) -> str:
    text = json.dumps(obj, separators=(",", ":"))
    # The text goes between single quotes in nginx.conf: JSON has no single
    # quotes here, and no backslashes or '$' (nginx would expand variables).
    assert "'" not in text and "\\" not in text and "$" not in text
    return text


class Nginx:
    def __init__(self, workers: int = 1) -> None:
        self.workers = workers
        self.dir = Path(tempfile.mkdtemp(prefix="f3dx-bench-nginx-"))
        self.ok_port = free_port()
        self.fail_port = free_port()
        self.status_port = free_port()
        self.status_reads = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def ok_url(self) -> str:
        return f"http://127.0.0.1:{self.ok_port}/v1"

    @property
    def fail_url(self) -> str:
        return f"http://127.0.0.1:{self.fail_port}/v1"

    def config(self) -> str:
        d = self.dir
        return f"""
daemon off;
master_process on;
worker_processes {self.workers};
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    # Never close a keep-alive connection during a run: the default closes
    # one after 1000 requests, which would put reconnects in the numbers.
    keepalive_requests 100000000;
    keepalive_timeout 900s;
    client_body_buffer_size 64k;
    server_tokens off;
    server {{
        listen 127.0.0.1:{self.ok_port} backlog=4096;
        location / {{
            default_type application/json;
            return 200 '{_nginx_literal(CHAT_COMPLETION)}';
        }}
    }}
    server {{
        listen 127.0.0.1:{self.fail_port} backlog=4096;
        location / {{
            default_type application/json;
            return 429 '{_nginx_literal(RATE_LIMITED)}';
        }}
    }}
    server {{
        listen 127.0.0.1:{self.status_port};
        location / {{ stub_status; }}
    }}
}}
"""

    def start(self) -> None:
        conf = self.dir / "nginx.conf"
        conf.write_text(self.config())
        binary = nginx_binary()
        # -e: the startup error log in our dir, not /var/log/nginx.
        argv = [binary, "-p", str(self.dir), "-c", str(conf), "-e", str(self.dir / "error.log")]
        check = subprocess.run(argv + ["-t"], capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"nginx -t failed: {check.stderr.strip()}")
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(self.dir / "stderr.log", "wb"), start_new_session=True,
        )
        wait_listening(self.ok_port)
        wait_listening(self.fail_port)
        wait_listening(self.status_port)

    def counters(self) -> tuple[int, int]:
        """(connections accepted, requests served) so far, on every server,
        not counting the status requests."""
        url = f"http://127.0.0.1:{self.status_port}/"
        with urllib.request.urlopen(url, timeout=5) as r:
            text = r.read().decode()
        self.status_reads += 1
        # "server accepts handled requests\n A H R" on the third line; each
        # status request is one more connection (urllib does not keep it)
        # and one more request, this one included.
        accepts, _handled, requests = (int(x) for x in text.splitlines()[2].split())
        return accepts - self.status_reads, requests - self.status_reads

    def requests(self) -> int:
        return self.counters()[1]

    def stop(self) -> None:
        if self.proc is not None:
            stop_group(self.proc, first=signal.SIGQUIT)  # nginx's graceful stop
        shutil.rmtree(self.dir, ignore_errors=True)


class SseNginx(Nginx):
    """The streaming measure's no-delay upstream: a private
    nginx like ``Nginx`` whose ``ok`` server answers every request with a
    fixed OpenAI SSE stream (``streaming.sse_body()``), ``content-type:
    text/event-stream``, all at once. The body (about 60 KB for 200 chunks)
    is far over what nginx's ``return`` takes (a config token is at most
    4 KB), so it is a static file: the static module answers a POST with
    405, and ``error_page 405 =200`` sends the same file with status 200 (an
    internal redirect as a GET; the request body is discarded and the
    connection kept alive). It has a Content-Length (real providers send
    chunked bodies; the slow mock does). ``fail`` and the status server are
    ``Nginx``'s."""

    def __init__(self, body: bytes, workers: int = 1) -> None:
        super().__init__(workers)
        self.body = body

    def config(self) -> str:
        base = super().config()
        d = self.dir
        ok = f"""
        location / {{
            default_type application/json;
            return 200 '{_nginx_literal(CHAT_COMPLETION)}';
        }}"""
        assert ok in base
        sse = f"""
        root {d}/sse;
        etag off;
        location / {{
            types {{ }}
            default_type text/event-stream;
            add_header cache-control no-cache;
            open_file_cache max=16;
            try_files /stream.sse =404;
            error_page 405 =200 /stream.sse;
        }}"""
        return base.replace(ok, sse, 1)

    def start(self) -> None:
        # nginx's worker (not root) must reach the file: the temp dir is 0700.
        sse = self.dir / "sse"
        sse.mkdir(exist_ok=True)
        (sse / "stream.sse").write_bytes(self.body)
        os.chmod(self.dir, 0o711)
        os.chmod(sse, 0o755)
        os.chmod(sse / "stream.sse", 0o644)
        super().start()


def bench_mocks(**providers: dict) -> MockProviders:
    """tests/mock_provider.py with one provider per keyword, each in a bench
    mode (``{"mode": "tail", "delay_ms": 5, ...}``: see its docstring)."""
    return MockProviders({"mocks": {name: {"bench": spec} for name, spec in providers.items()}})
