"""The streaming measure's stream and contenders.

The stream: ``CHUNKS`` ``chat.completion.chunk`` events of 4 words each,
one with ``finish_reason: stop``, then ``data: [DONE]`` (the mock's
``bench_sse_events``). Two variants: ``fast``, nginx serving it as a static
file at once (``upstream.SseNginx``), and ``slow``, the mock's stream mode
(a delay before each chunk, chunked transfer encoding).

A contender takes the two base URLs and offers ``stream(variant) ->
(first_ns, result)``: one stream read to its end, ``first_ns`` the
``perf_counter_ns()`` when the first chunk with text reached the caller,
``result`` what ``check()`` verifies. Every contender but the raw floor
takes the text out of each chunk (``choices[0].delta.content``), as a
caller does; the floor finds the event boundaries and parses nothing.
"""

from __future__ import annotations

import json
import socket
import sys
import time
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

from contenders import litellm_router
from lib import API_KEY, TIMEOUT_S, provider

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from mock_provider import bench_piece, bench_sse_events  # noqa: E402

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


def sse_body(chunks: int = CHUNKS) -> bytes:
    """The stream (the mock provider's stream mode sends the same events)."""
    return b"".join(bench_sse_events(chunks))


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
    body; SSE text never holds a ``\\r``). The floor here, and the Worker's
    client (cfworker.py)."""

    def __init__(self, url: str, headers: dict[str, str], body: bytes) -> None:
        u = urlsplit(url)
        self.addr = (u.hostname or "127.0.0.1", u.port or 80)
        head = f"POST {u.path} HTTP/1.1\r\nHost: {self.addr[0]}:{self.addr[1]}\r\n"
        for k, v in headers.items():
            head += f"{k}: {v}\r\n"
        self.request = (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body
        self.sock: socket.socket | None = None

    def stream(self, texts: list[str] | None = None) -> tuple[int, bytes, bytes]:
        """(first_ns, head, raw body). first_ns: when the first event boundary
        arrived; with ``texts``, each event is parsed (json.loads), its text
        appended there, and first_ns is when the first text arrived."""
        for attempt in (0, 1):
            if self.sock is None:
                self.sock = socket.create_connection(self.addr, timeout=TIMEOUT_S)
                self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                return self._stream(self.sock, texts)
            except (ConnectionError, socket.timeout):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def _stream(self, s: socket.socket, texts: list[str] | None) -> tuple[int, bytes, bytes]:
        s.sendall(self.request)
        recv, loads = s.recv, json.loads
        buf = bytearray()
        while (end := buf.find(b"\r\n\r\n")) < 0:
            chunk = recv(65536)
            if not chunk:
                raise ConnectionError("closed by upstream")
            buf += chunk
        head = bytes(buf[:end]).lower()
        if head[9:12] != b"200":
            raise StreamError(f"status {head[9:12]!r}: {bytes(buf[:300])!r}")
        start = pos = end + 4
        i = head.find(b"\r\ncontent-length:")
        if i >= 0:
            j = head.find(b"\r\n", i + 2)
            total = start + int(head[i + 17: j if j >= 0 else len(head)])
        elif b"chunked" in head:
            total = -1
        else:
            raise StreamError("neither content-length nor chunked")
        first = 0
        while True:
            while (k := buf.find(b"\n\n", pos)) >= 0:  # every event boundary that arrived
                if texts is None:
                    first = first or time.perf_counter_ns()
                elif (d := buf.find(b"data: ", pos, k)) >= 0 and buf[d + 6: k] != b"[DONE]":
                    # Needs a chunked body's HTTP chunks to hold whole events
                    # (the mock writes one per chunk); the check catches the rest.
                    c = loads(bytes(buf[d + 6: k]))["choices"][0]["delta"].get("content")
                    if c:
                        first = first or time.perf_counter_ns()
                        texts.append(c)
                pos = k + 2
            if (len(buf) >= total) if total >= 0 else buf.endswith(b"\r\n0\r\n\r\n"):
                break
            if texts is None:
                pos = max(pos, len(buf) - 1)
            chunk = recv(65536)
            if not chunk:
                raise ConnectionError("closed mid-body")
            buf += chunk
        return first or time.perf_counter_ns(), head, bytes(buf[start:])

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def body_text(head: bytes, raw: bytes) -> tuple[str, int, bool]:
    """(the text, content chunks, whether it ended with [DONE]) of a raw SSE
    body: for checks, not in the timed loop."""
    body = dechunk(raw) if b"chunked" in head and b"content-length" not in head else raw
    parts, done = [], False
    for ev in body.split(b"\n\n"):
        if ev == b"data: [DONE]":
            done = True
        elif ev.startswith(b"data: "):
            c = json.loads(ev[6:])["choices"][0]["delta"].get("content")
            if c:
                parts.append(c)
    return "".join(parts), len(parts), done


# --------------------------------------------------------------- contenders

def _stream_url(base: str) -> str:
    return base.rstrip("/") + "/chat/completions"


class Floor:
    """The floor: RawSse, one connection per upstream."""

    parse = False

    def __init__(self, fast_url: str, slow_url: str) -> None:
        body = json.dumps(BODY).encode()
        headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json",
                   "Accept": "text/event-stream"}
        self.conns = {"fast": RawSse(_stream_url(fast_url), headers, body),
                      "slow": RawSse(_stream_url(slow_url), headers, body)}

    def stream(self, variant: str) -> tuple[int, Any]:
        texts: list[str] | None = [] if self.parse else None
        first, head, raw = self.conns[variant].stream(texts)
        return first, (head, raw) if texts is None else texts

    def close(self) -> None:
        for c in self.conns.values():
            c.close()


class FloorJson(Floor):
    """The floor plus json.loads of every event, the text taken out."""

    parse = True


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
    """LiteLLM's Router as the non-streamed contender's (contenders.litellm_router),
    one deployment per variant; ``completion(..., stream=True)`` iterated."""

    def __init__(self, fast_url: str, slow_url: str) -> None:
        self.router = litellm_router({"fast": fast_url, "slow": slow_url})

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


class F3dxRouter:
    """This repo's router: chat_completions with stream: True, the ChatStream
    iterated in a ``with`` block."""

    def __init__(self, fast_url: str, slow_url: str) -> None:
        from f3dx_router import Router

        self.routers = {"fast": Router([provider("fast", fast_url)]),
                        "slow": Router([provider("slow", slow_url)])}

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
