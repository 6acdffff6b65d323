"""The streaming benchmark's stream and contenders (issue 10).

The upstream streams ``CHUNKS`` OpenAI ``chat.completion.chunk`` events of 4
words (about 4 tokens) of text each, the first with ``role: assistant``, then
one chunk with ``finish_reason: stop`` and an empty delta, then
``data: [DONE]``: ``sse_body()``. Two variants (``VARIANTS``):

* ``fast``: no delay between chunks, nginx serving the body as a static file
  (``upstream.SseNginx``; too big for nginx's ``return``);
* ``slow``: ``--delay-ms`` (5) before each content chunk, the head at once,
  from tests/mock_provider.py's stream mode (asyncio, chunked transfer encoding).

Each contender takes the two base URLs (``http://127.0.0.1:PORT/v1``) and
offers ``stream(variant) -> (first_ns, result)``: one streamed chat
completion read to its end, ``first_ns`` the ``perf_counter_ns()`` at which
the caller got the first chunk with text (the time to first chunk is
measured from before the call), ``result`` what ``check()`` verifies:

* ``floor``: one persistent raw socket (TCP_NODELAY), the request prebuilt;
  it finds every event boundary (``\\n\\n``) as the bytes arrive and reads
  to the end of the response by its framing (Content-Length, or the last
  chunk of a chunked body): no JSON, no text extracted. Its first chunk is
  the first event boundary (the stream's first event carries text).
* ``floor+json`` (breakdown): the floor plus ``json.loads`` of every event
  and the text taken out of it: what getting the chunks as dicts costs in
  Python.
* ``httpx``: a persistent ``httpx.Client``, ``client.stream("POST", ...)``,
  ``iter_lines()``, ``json.loads`` per ``data:`` line.
* ``openai``: the openai SDK straight at the upstream,
  ``OpenAI(base_url=..., api_key=..., max_retries=0)``,
  ``chat.completions.create(..., stream=True)``, iterated.
* ``litellm``: LiteLLM's Router (configured as the non-streamed contender in
  contenders.py), ``completion(..., stream=True)``, iterated.
* ``f3dx_router``: ``Router.chat_completions({..., "stream": True})`` in a
  ``with`` block, the ChatStream iterated.

Every contender but the floor takes the text out of each chunk
(``choices[0].delta.content``), as a caller does.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from typing import Any, Callable
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from mock_provider import bench_piece, bench_sse_events  # noqa: E402

API_KEY = "sk-bench"
TIMEOUT_S = 10.0
MODEL = "gpt-4o"
MESSAGES: list[dict[str, str]] = [{"role": "user", "content": "hi"}]
BODY: dict[str, Any] = {"model": MODEL, "messages": MESSAGES, "stream": True}

CHUNKS = 200
VARIANTS = ("fast", "slow")

# Contender names in report order; "floor+json" is a breakdown row.
CONTENDERS = ["floor", "httpx", "openai", "litellm", "f3dx_router"]
AUX = ["floor+json"]


def expected_text(chunks: int = CHUNKS) -> str:
    return "".join(bench_piece(i) for i in range(chunks))


def sse_events(chunks: int = CHUNKS) -> list[bytes]:
    """The stream's events (the mock provider's stream mode sends the same)."""
    return bench_sse_events(chunks)


def sse_body(chunks: int = CHUNKS) -> bytes:
    return b"".join(sse_events(chunks))


# ------------------------------------------------------------- the raw reader

class StreamError(RuntimeError):
    pass


def dechunk(data: bytes) -> bytes:
    """A whole chunked body (after the head), decoded; for checks only."""
    out, pos = bytearray(), 0
    while True:
        eol = data.index(b"\r\n", pos)
        size = int(data[pos:eol].split(b";")[0], 16)
        if size == 0:
            return bytes(out)
        out += data[eol + 2: eol + 2 + size]
        pos = eol + 2 + size + 2


class RawSse:
    """One persistent HTTP/1.1 connection (TCP_NODELAY) that posts a prebuilt
    request and reads a streamed answer: the head, then every event boundary
    (``\\n\\n``) as the bytes arrive, to the end of the response by its
    framing (Content-Length, or the terminal ``0\\r\\n\\r\\n`` of a chunked
    body; SSE text never holds a ``\\r``). Used by the floor here and by the
    Worker's client (cfworker.py)."""

    def __init__(self, url: str, headers: dict[str, str], body: bytes) -> None:
        u = urlsplit(url)
        self.addr = (u.hostname or "127.0.0.1", u.port or 80)
        head = f"POST {u.path} HTTP/1.1\r\nHost: {self.addr[0]}:{self.addr[1]}\r\n"
        for k, v in headers.items():
            head += f"{k}: {v}\r\n"
        self.request = (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body
        self.sock: socket.socket | None = None

    def _connect(self) -> socket.socket:
        s = socket.create_connection(self.addr, timeout=TIMEOUT_S)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = s
        return s

    def stream(self) -> tuple[int, int, bytes, bytes]:
        """(first_ns, events, head, raw body): first_ns when the first event
        boundary arrived (or the end of a body without one)."""
        for attempt in (0, 1):
            s = self.sock or self._connect()
            try:
                return self._stream(s)
            except (ConnectionError, socket.timeout):
                s.close()
                self.sock = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def _stream(self, s: socket.socket) -> tuple[int, int, bytes, bytes]:
        s.sendall(self.request)
        recv = s.recv
        buf = bytearray()
        while True:
            chunk = recv(65536)
            if not chunk:
                raise ConnectionError("closed by upstream")
            buf += chunk
            end = buf.find(b"\r\n\r\n")
            if end >= 0:
                break
        head = bytes(buf[:end]).lower()
        if head[9:12] != b"200":
            raise StreamError(f"status {head[9:12]!r}: {bytes(buf[:300])!r}")
        start = end + 4
        i = head.find(b"\r\ncontent-length:")
        if i >= 0:
            j = head.find(b"\r\n", i + 2)
            total = start + int(head[i + 17: j if j >= 0 else len(head)])
        elif b"chunked" in head:
            total = -1
        else:
            raise StreamError("neither content-length nor chunked")
        first = 0
        events = 0
        pos = start
        while True:
            # Every event boundary that arrived.
            while True:
                k = buf.find(b"\n\n", pos)
                if k < 0:
                    break
                if not events:
                    first = time.perf_counter_ns()
                events += 1
                pos = k + 2
            if (len(buf) >= total) if total >= 0 else buf.endswith(b"\r\n0\r\n\r\n"):
                break
            if len(buf) - 1 > pos:
                pos = len(buf) - 1
            chunk = recv(65536)
            if not chunk:
                raise ConnectionError("closed mid-body")
            buf += chunk
        if not first:
            first = time.perf_counter_ns()
        return first, events, head, bytes(buf[start:])

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def body_text(head: bytes, raw: bytes) -> tuple[str, int, bool]:
    """(the text, content chunks, whether it ended with [DONE]) of a raw SSE
    body: for checks, not in the timed loop."""
    body = dechunk(raw) if b"chunked" in head and b"content-length" not in head else raw
    parts, n, done = [], 0, False
    for ev in body.split(b"\n\n"):
        if not ev.startswith(b"data: "):
            continue
        data = ev[6:]
        if data == b"[DONE]":
            done = True
            continue
        c = json.loads(data)["choices"][0]["delta"].get("content")
        if c:
            parts.append(c)
            n += 1
    return "".join(parts), n, done


# --------------------------------------------------------------- contenders

def _stream_url(base: str) -> str:
    return base.rstrip("/") + "/chat/completions"


class Floor:
    """The floor: RawSse, one connection per upstream."""

    def __init__(self, fast_url: str, slow_url: str) -> None:
        body = json.dumps(BODY).encode()
        headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json",
                   "Accept": "text/event-stream"}
        self.conns = {"fast": RawSse(_stream_url(fast_url), headers, body),
                      "slow": RawSse(_stream_url(slow_url), headers, body)}

    def stream(self, variant: str) -> tuple[int, Any]:
        first, events, head, raw = self.conns[variant].stream()
        return first, (head, raw)

    def close(self) -> None:
        for c in self.conns.values():
            c.close()


class FloorJson(Floor):
    """The floor plus json.loads of every event, the text taken out. It
    splits at ``\\n\\n`` and parses from ``data: ``, so it needs the HTTP
    chunks of a chunked body to hold whole events (the mock writes one event
    per chunk); the check catches anything else."""

    def stream(self, variant: str) -> tuple[int, Any]:
        conn = self.conns[variant]
        s = conn.sock or conn._connect()
        try:
            return self._stream(s, conn)
        except (ConnectionError, socket.timeout):
            conn.close()
            return self._stream(conn._connect(), conn)

    @staticmethod
    def _stream(s: socket.socket, conn: RawSse) -> tuple[int, Any]:
        s.sendall(conn.request)
        recv, loads = s.recv, json.loads
        buf = bytearray()
        while True:
            chunk = recv(65536)
            if not chunk:
                raise ConnectionError("closed by upstream")
            buf += chunk
            end = buf.find(b"\r\n\r\n")
            if end >= 0:
                break
        head = bytes(buf[:end]).lower()
        if head[9:12] != b"200":
            raise StreamError(f"status {head[9:12]!r}")
        start = end + 4
        i = head.find(b"\r\ncontent-length:")
        if i >= 0:
            j = head.find(b"\r\n", i + 2)
            total = start + int(head[i + 17: j if j >= 0 else len(head)])
        else:
            total = -1
        parts: list[str] = []
        first = 0
        pos = start
        while True:
            while True:
                k = buf.find(b"\n\n", pos)
                if k < 0:
                    break
                d = buf.find(b"data: ", pos, k)
                pos = k + 2
                if d < 0:
                    continue
                data = bytes(buf[d + 6: k])
                if data == b"[DONE]":
                    continue
                c = loads(data)["choices"][0]["delta"].get("content")
                if c:
                    if not first:
                        first = time.perf_counter_ns()
                    parts.append(c)
            if (len(buf) >= total) if total >= 0 else buf.endswith(b"\r\n0\r\n\r\n"):
                break
            chunk = recv(65536)
            if not chunk:
                raise ConnectionError("closed mid-body")
            buf += chunk
        return first, parts


class Httpx:
    """A persistent httpx.Client, a streamed response, iter_lines()."""

    def __init__(self, fast_url: str, slow_url: str) -> None:
        import httpx

        self.client = httpx.Client(timeout=TIMEOUT_S,
                                   headers={"Authorization": f"Bearer {API_KEY}"})
        self.urls = {"fast": _stream_url(fast_url), "slow": _stream_url(slow_url)}

    def stream(self, variant: str) -> tuple[int, Any]:
        parts: list[str] = []
        first = 0
        loads = json.loads
        with self.client.stream("POST", self.urls[variant], json=BODY) as r:
            if r.status_code != 200:
                raise StreamError(f"status {r.status_code}")
            for line in r.iter_lines():
                if not line.startswith("data: "):
                    continue
                data = line[6:]
                if data == "[DONE]":
                    continue  # read on to the end: the connection goes back to the pool
                c = loads(data)["choices"][0]["delta"].get("content")
                if c:
                    if not first:
                        first = time.perf_counter_ns()
                    parts.append(c)
        return first, parts

    def close(self) -> None:
        self.client.close()


class OpenAISdk:
    """The openai SDK pointed straight at the upstream, one client per URL."""

    def __init__(self, fast_url: str, slow_url: str) -> None:
        import openai

        self.clients = {v: openai.OpenAI(base_url=u, api_key=API_KEY, max_retries=0,
                                         timeout=TIMEOUT_S)
                        for v, u in (("fast", fast_url), ("slow", slow_url))}

    def stream(self, variant: str) -> tuple[int, Any]:
        parts: list[str] = []
        first = 0
        messages: Any = MESSAGES  # the SDK types messages as TypedDicts
        s = self.clients[variant].chat.completions.create(model=MODEL, messages=messages,
                                                          stream=True)
        for chunk in s:
            c = chunk.choices[0].delta.content if chunk.choices else None
            if c:
                if not first:
                    first = time.perf_counter_ns()
                parts.append(c)
        return first, parts

    def close(self) -> None:
        for c in self.clients.values():
            c.close()


class LiteLLM:
    """LiteLLM's Router, the non-streamed contender's configuration
    (contenders.LiteLLM: no retries, no cooldowns), one deployment per
    variant; ``completion(..., stream=True)`` iterated."""

    def __init__(self, fast_url: str, slow_url: str) -> None:
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        import litellm
        from litellm import Router  # type: ignore[attr-defined]

        litellm.suppress_debug_info = True
        litellm.telemetry = False
        litellm.set_verbose = False  # type: ignore[attr-defined]

        def dep(name: str, url: str) -> dict[str, Any]:
            return {"model_name": name, "litellm_params": {
                "model": "openai/" + MODEL, "api_base": url, "api_key": API_KEY,
                "max_retries": 0, "timeout": TIMEOUT_S}}

        self.router = Router(model_list=[dep("fast", fast_url), dep("slow", slow_url)],
                             num_retries=0, retry_after=0, disable_cooldowns=True,
                             timeout=TIMEOUT_S)

    def stream(self, variant: str) -> tuple[int, Any]:
        parts: list[str] = []
        first = 0
        for chunk in self.router.completion(model=variant, messages=MESSAGES, stream=True):
            c = chunk.choices[0].delta.content if chunk.choices else None
            if c:
                if not first:
                    first = time.perf_counter_ns()
                parts.append(c)
        return first, parts

    def close(self) -> None:
        pass


class F3dxRouter:
    """This repo's router: chat_completions with stream: True, the ChatStream
    iterated in a ``with`` block."""

    def __init__(self, fast_url: str, slow_url: str) -> None:
        from f3dx_router import Router

        def prov(name: str, url: str) -> dict[str, Any]:
            return {"name": name, "kind": "openai", "base_url": url, "api_key": API_KEY,
                    "timeout_ms": int(TIMEOUT_S * 1000)}

        self.routers = {"fast": Router([prov("fast", fast_url)]),
                        "slow": Router([prov("slow", slow_url)])}

    def stream(self, variant: str) -> tuple[int, Any]:
        parts: list[str] = []
        first = 0
        with self.routers[variant].chat_completions(BODY) as s:
            for chunk in s:
                c = chunk["choices"][0]["delta"].get("content")
                if c:
                    if not first:
                        first = time.perf_counter_ns()
                    parts.append(c)
        return first, parts

    def close(self) -> None:
        pass


FACTORIES: dict[str, Callable[[str, str], Any]] = {
    "floor": Floor,
    "floor+json": FloorJson,
    "httpx": Httpx,
    "openai": OpenAISdk,
    "litellm": LiteLLM,
    "f3dx_router": F3dxRouter,
}

def check(name: str, result: Any, chunks: int) -> None:
    """The stream read really is the upstream's, whole."""
    want = expected_text(chunks)
    if name == "floor":
        head, raw = result
        text, n, done = body_text(head, raw)
        if not done:
            raise StreamError("floor: no [DONE]")
    else:
        text, n = "".join(result), len(result)
    if text != want or n != chunks:
        raise StreamError(f"{name}: {n} chunks with text, {len(text)} characters "
                          f"(expected {chunks}, {len(want)}): {text[:80]!r}")
