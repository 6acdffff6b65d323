#!/usr/bin/env python3
"""Providers that misbehave at the socket level, for the fault matrix
(tests/python/test_fault_matrix.py) and the secret scan
(tests/python/test_secret_scan.py).

Stdlib only, Python 3.10+; raw bytes on 127.0.0.1, ephemeral ports, nothing
but loopback. The HTTP/1.1 request parsing is mock_provider's.

Command line::

    python tests/fault_server.py NAME [NAME ...]

One listener per NAME, a port on which nothing listens (bound, never
listening, for as long as the server runs: connecting to it is refused and no
other server can take it), and a control listener (``GET /log``). Once
everything listens, exactly one JSON line goes to stdout::

    {"ports": {"faulty": 40001, "healthy": 40002}, "refused": 40003, "control": 40004}

then it serves until SIGTERM or SIGINT, or EOF on stdin when stdin is a pipe.

What a listener does with a request is said by the request itself, so that one
router config (one ``wrangler dev``) can meet every fault: the first string in
the request's JSON body that contains ``FAULT-DIRECTIVE:`` is followed by a
JSON object that maps listener names to a behaviour::

    FAULT-DIRECTIVE:{"marker": "m-1", "faulty": {"fault": "stall_head"}, "healthy": {"delay_ms": 800}}

A listener the directive does not name (or a request without a directive)
answers a valid chat completion. A behaviour is an object with ``fault`` (one
of FAULTS, default ``ok``) and its parameters:

==================== ==========================================================
``ok``               a valid completion (Anthropic's shape on ``/messages``)
                     whose content is ``text`` (default ``ok from <listener>``),
                     after ``delay_ms``
``reset``            read the request, then RST (SO_LINGER 0, close)
``stall_head``       read the request, send nothing
``stall_body``       a 200 head with Content-Length, half the body, nothing more
``truncated``        a whole valid body under a Content-Length 100 bytes longer,
                     then close (FIN)
``garbage``          a 200 whose body is not JSON
``wrong_shape``      a 200 whose body is JSON but no chat completion
``huge_headers``     a 200 whose head carries ``head_bytes`` (default 1 MiB) of
                     headers, then a valid body
``slow_drip``        a valid body, one byte every ``interval_ms`` (default 25)
``informational``    each of ``codes`` (default ``[103, 100]``; 100, 102, 103) as
                     an interim response, 20 ms apart, then a valid 200
``cl_mismatch``      a valid 200 whose Content-Length covers the body, followed
                     on the same connection by a whole second response (content
                     SMUGGLED_TEXT); the connection then serves the next request,
                     and is closed once idle for CL_MISMATCH_LINGER_S
``gzip_bomb``        ``content-encoding: gzip``: ~1 MiB that inflates to 1 GiB
                     (a JSON prefix, then ``a`` forever)
``huge_content_length`` a 200 declaring a Content-Length of 10**12, a few bytes,
                     then close
``echo``             ``status`` (default 401) with a body that echoes the API
                     key the request carried (``Authorization: Bearer`` or
                     ``x-api-key``) in the escaping ``form`` (ECHO_FORMS); the
                     key is in an ``x-echo-key`` response header too
``sse_flood``        a 200 ``text/event-stream`` (chunked) of OpenAI chunks
                     whose delta is ``delta`` (default ``{"role":
                     "assistant"}``, which carries no output; ``{}`` is an
                     empty delta), as fast as the client reads, for at most
                     ``seconds`` (default 10, capped at STALL_CAP_S) and
                     ``max_bytes`` (default and cap MAX_FLOOD_BYTES); then,
                     with ``finish: true``, a ``finish_reason`` chunk and
                     ``data: [DONE]``, and the end of the body. The record
                     gets ``sent_bytes``: the flood's bytes written
==================== ==========================================================

Every stall has a cap (STALL_CAP_S), every loop a bound, and a client that
goes away ends what was being played to it. Each request is recorded:
``GET /log`` on the control port answers ``[{"listener", "conn", "index",
"fault", "marker", "disconnected_early"}, ...]``, where ``conn`` numbers the
connections (so a test sees whether a client reused one) and
``disconnected_early`` says that the client closed while a stall, a delay or a
drip was being played to it.

For tests there is ``FaultServer``, which runs this file in a subprocess.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import time
import traceback
import urllib.parse
import urllib.request
import zlib
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from mock_provider import (  # noqa: E402  (the path above, when run as a script)
    BadRequest,
    ClientGone,
    Connection,
    Request,
    _watch_stdin,
    json_bytes,
    render_response,
)

HOST = "127.0.0.1"
DIRECTIVE = "FAULT-DIRECTIVE:"
STALL_CAP_S = 20.0  # the longest any stall, delay or drip holds a connection
MAX_DELAY_MS = 10_000
MAX_DRIP_BYTES = 4096
SHUTDOWN_GRACE_S = 2.0
MAX_FLOOD_BYTES = 1 << 30
FLOOD_WRITE_BYTES = 64 * 1024  # the flood's events go out in writes of about this size
CL_MISMATCH_LINGER_S = 1.0  # idle time after which a cl_mismatch connection is closed
SMUGGLED_TEXT = "SMUGGLED: this answer belongs to no request"
BOMB_INFLATED = 1 << 30  # the gzip bomb's size once inflated
BOMB_PREFIX = b'{"id":"bomb","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"'

INFORMATIONAL = {
    100: b"HTTP/1.1 100 Continue\r\n\r\n",
    102: b"HTTP/1.1 102 Processing\r\n\r\n",
    103: b"HTTP/1.1 103 Early Hints\r\nlink: </style.css>; rel=preload\r\n\r\n",
}

FAULTS = {
    "ok", "reset", "stall_head", "stall_body", "truncated", "garbage", "wrong_shape",
    "huge_headers", "slow_drip", "informational", "cl_mismatch", "gzip_bomb",
    "huge_content_length", "echo", "sse_flood",
}
ECHO_FORMS = {
    "plain",          # the key as it is, in a JSON string (json.dumps: only `"` escaped)
    "php",            # every `/` as `\/`
    "unicode",        # every character as \uXXXX (lower-case hex)
    "unicode_upper",  # every character as \uXXXX (upper-case hex)
    "go",             # `/`, `"`, `<`, `>`, `&` as \u002f, \u0022, \u003c, \u003e, \u0026
    "quoted",         # the message says: key \"<key>\" is invalid
    "double",         # JSON text holding the key, inside a JSON string
    "text",           # text/plain, the key raw
    "padded",         # text/plain, the key straddling the 200th character
    "mixed",          # every other character as \uXXXX, the hex's case alternating
    "percent",        # percent-encoded, in an echoed request URL (`?key=...`)
    "percent_twice",  # percent-encoded twice (`%252F`), in an echoed URL
    "html",           # every non-alphanumeric character as &#NN; or &#xNN; (alternating)
    "base64",         # the key in base64 (aligned at byte 0 of the encoded bytes)
    "basic",          # an echoed `Authorization: Basic` of ":<key>" (byte 1)
    "basic_user",     # an echoed `Authorization: Basic` of "user:<key>" (byte 2), URL-safe alphabet
    "prefix",         # the key's first 20 characters, then "..."
    "suffix",         # "...", then the key's last 20 characters
}


# --------------------------------------------------------------------------
# what is sent


def completion(text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fault",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def anthropic_message(text: str) -> dict[str, Any]:
    return {
        "id": "msg_fault",
        "type": "message",
        "role": "assistant",
        "model": "claude",
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 1, "output_tokens": 1},
    }


def answer_body(req: Request, text: str) -> bytes:
    path = req.path.split("?", 1)[0]
    return json_bytes(anthropic_message(text) if path.endswith("/messages") else completion(text))


def head_bytes(status: int, reason: str, headers: list[tuple[str, str]]) -> bytes:
    lines = [f"HTTP/1.1 {status} {reason}"] + [f"{n}: {v}" for n, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def gzip_bomb() -> bytes:
    """A gzip member of ~1 MiB that inflates to BOMB_INFLATED bytes.

    After a full flush the compressor starts afresh, so each MiB of ``a``
    compresses to the same ~1 KiB block: one block, repeated, is the stream.
    """
    mib = 1 << 20
    chunk = b"a" * mib
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = c.compress(BOMB_PREFIX) + c.flush(zlib.Z_FULL_FLUSH)
    block = c.compress(chunk) + c.flush(zlib.Z_FULL_FLUSH)
    end = c.flush(zlib.Z_FINISH)
    n = (BOMB_INFLATED - len(BOMB_PREFIX)) // mib
    crc = zlib.crc32(BOMB_PREFIX)
    for _ in range(n):
        crc = zlib.crc32(chunk, crc)
    size = len(BOMB_PREFIX) + n * mib
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    return header + first + block * n + end + struct.pack("<II", crc, size & 0xFFFFFFFF)


def api_key(req: Request) -> str:
    auth = req.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:]
    return req.headers.get("x-api-key", auth)


def escape_all(key: str, upper: bool = False) -> str:
    return "".join(f"\\u{ord(c):04X}" if upper else f"\\u{ord(c):04x}" for c in key)


def escape_go(key: str) -> str:
    out = json.dumps(key)[1:-1]
    for c in '/<>&':
        out = out.replace(c, f"\\u{ord(c):04x}")
    return out.replace('\\"', "\\u0022")


def echo_body(key: str, form: str) -> tuple[bytes, str]:
    """An error body that echoes ``key`` in ``form``; and its content type."""
    said = "Incorrect API key provided: "
    if form in ("text", "padded"):
        # padded: the key begins 10 characters before an excerpt's 200th.
        pad = "x" * (190 - len("Unauthorized. ") - len(said)) if form == "padded" else ""
        return f"Unauthorized. {pad}{said}{key} (see the docs)\n".encode(), "text/plain"
    if form == "double":
        inner = json.dumps({"detail": f"{said}{key}"})
        return json_bytes({"error": {"message": inner, "type": "invalid_request_error"}}), "application/json"
    if form == "quoted":
        message = json.dumps(f'The key "{key}" is invalid')[1:-1]
    elif form == "plain":
        message = said + json.dumps(key)[1:-1]
    elif form == "php":
        message = said + json.dumps(key)[1:-1].replace("/", "\\/")
    elif form == "unicode":
        message = said + escape_all(key)
    elif form == "unicode_upper":
        message = said + escape_all(key, upper=True)
    elif form == "go":
        message = said + escape_go(key)
    elif form == "mixed":
        message = said + "".join(
            (f"\\u{ord(c):04x}" if i % 4 == 1 else f"\\u{ord(c):04X}") if i % 2 else json.dumps(c)[1:-1]
            for i, c in enumerate(key)
        )
    elif form == "percent":
        message = "API key not valid for https://api.example.test/v1/chat?key=" + urllib.parse.quote(key, safe="")
    elif form == "percent_twice":
        twice = urllib.parse.quote(urllib.parse.quote(key, safe=""), safe="")
        message = "API key not valid for https://api.example.test/v1/chat?next=" + twice
    elif form == "html":
        message = said + "".join(
            c if c.isalnum() else (f"&#{ord(c)};" if i % 2 else f"&#x{ord(c):x};") for i, c in enumerate(key)
        )
    elif form in ("base64", "basic", "basic_user"):
        userinfo = {"base64": "", "basic": ":", "basic_user": "user:"}[form] + key
        encode = base64.urlsafe_b64encode if form == "basic_user" else base64.b64encode
        message = said + "Authorization: Basic " + encode(userinfo.encode()).decode().replace("/", "\\/")
    elif form == "prefix":
        message = said + json.dumps(key[:20])[1:-1] + "..."
    elif form == "suffix":
        message = said + "..." + json.dumps(key[-20:])[1:-1]
    else:
        raise ValueError(f"unknown echo form {form!r}")
    raw = '{"error": {"message": "' + message + '", "type": "invalid_request_error", "code": "invalid_api_key"}}'
    return raw.encode(), "application/json"


def find_directive(value: Any, depth: int = 0) -> dict[str, Any] | None:
    """The directive in a request's JSON body, if any (first match, depth-first)."""
    if depth > 20:
        return None
    if isinstance(value, str):
        at = value.find(DIRECTIVE)
        if at < 0:
            return None
        try:
            found = json.loads(value[at + len(DIRECTIVE):])
        except ValueError:
            return None
        return found if isinstance(found, dict) else None
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    for item in items:
        found = find_directive(item, depth + 1)
        if found is not None:
            return found
    return None


# --------------------------------------------------------------------------
# the server


class FaultServerCore:
    def __init__(self, names: list[str]) -> None:
        self.names = names
        self.ports: dict[str, int] = {}
        self.refused_port = 0
        self.control_port = 0
        self._refused: socket.socket | None = None
        self.servers: list[asyncio.AbstractServer] = []
        self.handlers: dict[asyncio.Task[None], Connection] = {}
        self.log: list[dict[str, Any]] = []
        self.next_conn = 0
        self.bomb: asyncio.Future[bytes] | None = None
        # connection -> seconds it may stay idle before it is closed
        self.linger: dict[int, float] = {}

    async def start(self) -> None:
        # Built in a thread while the server starts (zlib releases the GIL).
        self.bomb = asyncio.ensure_future(asyncio.to_thread(gzip_bomb))
        self._refused = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._refused.bind((HOST, 0))  # bound, never listening: connections are refused
        self.refused_port = self._refused.getsockname()[1]
        for name in self.names:
            server = await asyncio.start_server(functools.partial(self._serve, name=name), HOST, 0)
            self.servers.append(server)
            self.ports[name] = server.sockets[0].getsockname()[1]
        control = await asyncio.start_server(functools.partial(self._serve, name=None), HOST, 0)
        self.servers.append(control)
        self.control_port = control.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        for server in self.servers:
            server.close()
        for conn in list(self.handlers.values()):
            conn.writer.transport.abort()
        if self.handlers:
            await asyncio.wait(list(self.handlers), timeout=SHUTDOWN_GRACE_S)
        for task in list(self.handlers):
            task.cancel()
        for server in self.servers:
            try:
                await asyncio.wait_for(server.wait_closed(), SHUTDOWN_GRACE_S)
            except asyncio.TimeoutError:
                pass
        if self._refused is not None:
            self._refused.close()
        if self.bomb is not None:
            try:
                await asyncio.wait_for(self.bomb, 30)
            except Exception:
                pass

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, name: str | None) -> None:
        task = asyncio.current_task()
        assert task is not None
        conn = Connection(reader, writer)
        self.handlers[task] = conn
        self.next_conn += 1
        conn_id = self.next_conn
        try:
            for index in range(10_000):  # requests on one connection
                try:
                    if conn_id in self.linger:
                        req = await asyncio.wait_for(conn.read_request(), self.linger[conn_id])
                    else:
                        req = await conn.read_request()
                except asyncio.TimeoutError:
                    return
                except BadRequest as exc:
                    head, body = render_response(400, {}, f"bad request: {exc}".encode(), "text/plain", True)
                    await conn.write(head + body)
                    return
                if req is None:
                    return
                if name is None:
                    keep = await self._control(conn, req)
                else:
                    keep = await self._play(conn, req, name, conn_id, index)
                if not keep or req.wants_close():
                    return
        except ClientGone:
            pass
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug here must not kill the server; show it
            traceback.print_exc(file=sys.stderr)
        finally:
            self.handlers.pop(task, None)
            self.linger.pop(conn_id, None)
            await conn.close()

    async def _control(self, conn: Connection, req: Request) -> bool:
        if req.method == "GET" and req.path.split("?", 1)[0] == "/log":
            head, body = render_response(200, {}, json_bytes(self.log), "application/json", req.wants_close())
        else:
            head, body = render_response(404, {}, b"not found: GET /log", "text/plain", req.wants_close())
        await conn.write(head + body)
        return True

    async def _hold(self, conn: Connection, seconds: float, record: dict[str, Any]) -> bool:
        """Wait (capped); True, recorded, when the client went away meanwhile."""
        if await conn.wait_peer_close(min(seconds, STALL_CAP_S)):
            record["disconnected_early"] = True
            return True
        return False

    async def _play(self, conn: Connection, req: Request, name: str, conn_id: int, index: int) -> bool:
        """Answer one request; False when the connection must end."""
        try:
            parsed = json.loads(req.body) if req.body else None
        except ValueError:
            parsed = None
        directive = find_directive(parsed) or {}
        spec = directive.get(name) or {}
        if not isinstance(spec, dict):
            spec = {}
        fault = spec.get("fault", "ok")
        record: dict[str, Any] = {
            "listener": name, "conn": conn_id, "index": index, "fault": fault,
            "marker": directive.get("marker"), "disconnected_early": False,
        }
        self.log.append(record)
        try:
            return await self._answer(conn, req, name, spec, record)
        except ClientGone:
            # The client left while we wrote (a write, not a wait, saw it go).
            record["disconnected_early"] = True
            raise

    async def _answer(self, conn: Connection, req: Request, name: str, spec: dict[str, Any],
                      record: dict[str, Any]) -> bool:
        fault = record["fault"]
        if fault not in FAULTS:
            head, body = render_response(500, {}, f"unknown fault {fault!r}".encode(), "text/plain", True)
            await conn.write(head + body)
            return False

        delay_ms = min(float(spec.get("delay_ms", 0)), MAX_DELAY_MS)
        if delay_ms > 0 and await self._hold(conn, delay_ms / 1000.0, record):
            return False

        text = str(spec.get("text", f"ok from {name}"))
        body = answer_body(req, text)
        json_head = [("content-type", "application/json"), ("content-length", str(len(body)))]

        if fault == "ok":
            await conn.write(head_bytes(200, "OK", json_head) + body)
            return True
        if fault == "reset":
            conn.abort_with_reset()
            return False
        if fault == "stall_head":
            await self._hold(conn, STALL_CAP_S, record)
            return False
        if fault == "stall_body":
            await conn.write(head_bytes(200, "OK", json_head) + body[: len(body) // 2])
            await self._hold(conn, STALL_CAP_S, record)
            return False
        if fault == "truncated":
            declared = [("content-type", "application/json"), ("content-length", str(len(body) + 100))]
            await conn.write(head_bytes(200, "OK", declared) + body)
            return False
        if fault == "garbage":
            page = b"<html><body><h1>Welcome to nginx!</h1></body></html>\n"
            await conn.write(head_bytes(200, "OK", [("content-type", "application/json"),
                                                    ("content-length", str(len(page)))]) + page)
            return True
        if fault == "wrong_shape":
            other = json_bytes({"object": "list", "data": [{"id": "gpt-4o", "object": "model"}]})
            await conn.write(head_bytes(200, "OK", [("content-type", "application/json"),
                                                    ("content-length", str(len(other)))]) + other)
            return True
        if fault == "huge_headers":
            total = min(int(spec.get("head_bytes", 1 << 20)), 8 << 20)
            value = "h" * 1000
            filler = [(f"x-filler-{i}", value) for i in range(total // (len(value) + 16))]
            await conn.write(head_bytes(200, "OK", filler + json_head) + body)
            return True
        if fault == "slow_drip":
            interval = max(float(spec.get("interval_ms", 25)), 1.0) / 1000.0
            await conn.write(head_bytes(200, "OK", json_head))
            for i in range(min(len(body), MAX_DRIP_BYTES)):
                await conn.write(body[i : i + 1])
                if i + 1 < len(body) and await self._hold(conn, interval, record):
                    return False
            return True
        if fault == "informational":
            for code in list(spec.get("codes", [103, 100]))[:10]:
                await conn.write(INFORMATIONAL[int(code)])
                await asyncio.sleep(0.02)
            await conn.write(head_bytes(200, "OK", json_head) + body)
            return True
        if fault == "cl_mismatch":
            smuggled = answer_body(req, SMUGGLED_TEXT)
            extra = head_bytes(200, "OK", [("content-type", "application/json"),
                                           ("content-length", str(len(smuggled)))]) + smuggled
            await conn.write(head_bytes(200, "OK", json_head) + body + extra)
            # Serve a next request on this connection (that is the point),
            # but close it once idle so no pool keeps the stray bytes.
            self.linger[record["conn"]] = CL_MISMATCH_LINGER_S
            return True
        if fault == "gzip_bomb":
            assert self.bomb is not None
            bomb = await self.bomb
            await conn.write(head_bytes(200, "OK", [("content-type", "application/json"),
                                                    ("content-encoding", "gzip"),
                                                    ("content-length", str(len(bomb)))]))
            for at in range(0, len(bomb), 64 * 1024):
                await conn.write(bomb[at : at + 64 * 1024])
            return True
        if fault == "sse_flood":
            return await self._flood(conn, spec, record)
        if fault == "huge_content_length":
            await conn.write(head_bytes(200, "OK", [("content-type", "application/json"),
                                                    ("content-length", str(10**12))]) + body[:10])
            return False
        # echo
        key = api_key(req)
        status = int(spec.get("status", 401))
        echoed, content_type = echo_body(key, str(spec.get("form", "plain")))
        head = head_bytes(status, "Echo", [("content-type", content_type),
                                           ("content-length", str(len(echoed))),
                                           ("x-echo-key", key)])
        await conn.write(head + echoed)
        return True

    async def _flood(self, conn: Connection, spec: dict[str, Any], record: dict[str, Any]) -> bool:
        """The ``sse_flood`` answer: the same event, bounded in time and bytes."""
        def chunk(delta: Any, finish: str | None) -> bytes:
            return b"data: " + json_bytes({
                "id": "chatcmpl-flood", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }) + b"\n\n"

        def framed(payload: bytes) -> bytes:
            return f"{len(payload):x}\r\n".encode() + payload + b"\r\n"

        event = chunk(spec.get("delta", {"role": "assistant"}), None)
        block = framed(event * max(1, FLOOD_WRITE_BYTES // len(event)))
        limit = min(int(spec.get("max_bytes", MAX_FLOOD_BYTES)), MAX_FLOOD_BYTES)
        until = time.monotonic() + min(float(spec.get("seconds", 10)), STALL_CAP_S)
        record["sent_bytes"] = 0
        await conn.write(head_bytes(200, "OK", [("content-type", "text/event-stream"),
                                                ("transfer-encoding", "chunked")]))
        while record["sent_bytes"] + len(block) <= limit and time.monotonic() < until:
            await conn.write(block)
            record["sent_bytes"] += len(block)
        if spec.get("finish"):
            await conn.write(framed(chunk({}, "stop") + b"data: [DONE]\n\n"))
        await conn.write(b"0\r\n\r\n")
        return True


async def run(names: list[str]) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    server = FaultServerCore(names)
    stdin_transport = None
    try:
        await server.start()
        line = json.dumps({"ports": server.ports, "refused": server.refused_port, "control": server.control_port})
        try:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
        except BrokenPipeError:
            return 1
        stdin_transport = await _watch_stdin(stop)
        await stop.wait()
    finally:
        if stdin_transport is not None:
            stdin_transport.close()
        await server.stop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    return 0


def main(argv: list[str] | None = None) -> int:
    names = sys.argv[1:] if argv is None else argv
    if not names or any(not n.isidentifier() for n in names) or len(set(names)) != len(names):
        print("usage: fault_server.py NAME [NAME ...] (distinct identifiers)", file=sys.stderr)
        return 2
    return asyncio.run(run(names))


# --------------------------------------------------------------------------
# for tests: the CLI in a subprocess


def directive(marker: str, **listeners: dict[str, Any]) -> str:
    """The text to put in a request's message for these behaviours."""
    return DIRECTIVE + json.dumps({"marker": marker, **listeners})


class FaultServer:
    """Runs this file's CLI in a subprocess with the given listener names.

    Use as a context manager, or call ``close()``.
    """

    def __init__(self, names: list[str], startup_timeout: float = 15.0) -> None:
        self.ports: dict[str, int] = {}
        self.refused_port = 0
        self.control_port = 0
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        self._proc: subprocess.Popen[bytes] | None = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), *names],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            info = json.loads(self._read_line(startup_timeout))
            self.ports = {str(k): int(v) for k, v in info["ports"].items()}
            self.refused_port = int(info["refused"])
            self.control_port = int(info["control"])
        except BaseException:
            self.close()
            raise

    def _read_line(self, timeout: float) -> str:
        assert self._proc is not None and self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        buf = b""
        while b"\n" not in buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"fault_server did not report its ports within {timeout} s")
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(fd, 4096)
            if not chunk:
                rc = self._proc.wait(timeout=5)
                raise RuntimeError(f"fault_server exited with status {rc} before reporting its ports")
            buf += chunk
        return buf.split(b"\n", 1)[0].decode()

    def base_url(self, name: str) -> str:
        return f"http://{HOST}:{self.ports[name]}/v1"

    def refused_url(self) -> str:
        return f"http://{HOST}:{self.refused_port}/v1"

    def log(self, marker: str | None = None) -> list[dict[str, Any]]:
        with self._opener.open(f"http://{HOST}:{self.control_port}/log", timeout=10) as r:
            records: list[dict[str, Any]] = json.loads(r.read())
        return [r for r in records if marker is None or r["marker"] == marker]

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            try:
                proc.terminate()
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
            except ProcessLookupError:
                pass
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass

    def __enter__(self) -> FaultServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


if __name__ == "__main__":
    sys.exit(main())
