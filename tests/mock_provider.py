#!/usr/bin/env python3
"""Scriptable mock LLM provider servers for the shared test vectors.

Stdlib only, Python 3.10+. See tests/vectors/README.md for the vector format.

Command line::

    python tests/mock_provider.py VECTOR.json [--loop]
    python tests/mock_provider.py --json '{"mocks": {...}}' [--loop]

One HTTP/1.1 server per provider in the vector's ``mocks`` listens on
127.0.0.1 on an ephemeral port and plays that provider's script, one
``<response>`` per request, counted across connections. A provider with
``{"refuse": true}`` gets a port on which nothing listens. A control server
listens on one more port:

* ``GET /log``    -> ``{"a": [record, ...], ...}``
* ``POST /reset`` -> clears the logs and rewinds every script
* ``GET /stats``, ``POST /fail?provider=NAME&frac=F`` -> the bench modes' (below)

Once everything listens, exactly one JSON line goes to stdout::

    {"control": 40001, "providers": {"a": 40002, "b": 40003}}

Then it serves until SIGTERM or SIGINT, or until EOF on stdin when stdin is a
pipe or a socket (so a parent that dies takes the mocks with it; a background
job whose stdin is /dev/null keeps running). ``--loop`` replays a script from
its start when it runs out (for demos); otherwise a request beyond the end of
a script gets a 500 with the text ``mock script exhausted``.

Bench modes (``bench/`` uses them; a provider with ``{"bench": {...}}``
instead of ``responses``) answer every request the same way, without a
script and without a log (a benchmark sends millions)::

    {"bench": {"mode": "flaky", "delay_ms": 5, "seed": 1}}
        after delay_ms, a chat completion, or with probability ``fail_frac``
        (0 at the start; ``POST /fail?provider=a&frac=0.4`` sets it) a 503
        with no Retry-After (a Retry-After would cool the provider down)
    {"bench": {"mode": "tail", "delay_ms": 5, "slow_ms": 200, "slow_frac": 0.05, "seed": 1}}
        a chat completion after delay_ms, or slow_ms with probability slow_frac
    {"bench": {"mode": "stream", "delay_ms": 5, "chunks": 200}}
        a chunked SSE stream (``bench_sse_events(chunks)``): content chunk k
        at k * delay_ms after the request (an absolute schedule), the finish
        chunk and [DONE] with the last one
    {"bench": {"mode": "chat", "kind": "openai"}}   (or "anthropic")
        a provider of that kind answering whatever comes (the README's
        examples run against it): a whole answer, or a stream when the
        request asks for one; a JSON object as the text when it asks for
        JSON (``response_format``). The Anthropic kind answers as Anthropic
        does: JSON fitting ``output_config.format``'s schema as text, a
        forced tool's call (``tool_choice`` of type ``tool``) with an input
        fitting its schema, thinking blocks first when ``thinking`` is on
        (streamed as ``thinking_delta`` / ``signature_delta`` /
        ``input_json_delta`` events)

``GET /stats`` on the control port counts them (on arrival, so a cancelled
hedge leg counts too: the load hedging adds)::

    {"requests": N, "failed": F, "slow": S, "providers": {"a": {...}, ...}}

Every request is recorded as::

    {"index", "method", "path", "headers" (names lower case), "body" (text),
     "json" (parsed, or null), "received_at" (time.monotonic(), once the whole
     request was read), "disconnected_early", "disconnected_at", "exhausted"}

``index`` counts the provider's requests since the start (or the last reset);
without ``--loop`` it is also the position in the script. ``received_at`` and
``disconnected_at`` come from time.monotonic(), one clock for every process
on the host, so a test can compare them with its own readings.

``disconnected_early`` is true when the client closed the connection while the
mock was still delaying or stalling that request (``disconnected_at`` says
when the mock noticed, else it is null), which is how the runners prove that
a cancelled attempt really closed its connection. (A client that only
half-closes its side counts as gone too; HTTP clients do not do that.)

For tests there is ``MockProviders``, which runs this file in a subprocess::

    with MockProviders(vector) as mocks:
        url = mocks.base_url("a")          # "http://127.0.0.1:<port>/v1"
        ...
        records = mocks.log()["a"]
        mocks.reset()
"""

from __future__ import annotations

import argparse
import asyncio
import http
import json
import os
import random
import select
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request
from typing import Any

HOST = "127.0.0.1"

MAX_HEAD_BYTES = 64 * 1024
MAX_HEADERS = 200
MAX_BODY_BYTES = 32 * 1024 * 1024
READ_CHUNK = 64 * 1024
IDLE_TIMEOUT_S = 300.0  # a keep-alive connection with no request for this long is closed
REQUEST_TIMEOUT_S = 30.0  # the rest of a request, once it has started, must arrive within this
STALL_LIMIT_S = 60.0  # a stall holds the connection at most this long
WRITE_TIMEOUT_S = 30.0
SHUTDOWN_GRACE_S = 2.0
# A burst of a thousand concurrent connections (the async tests) must not
# overflow the accept queue: asyncio's default of 100 drops the excess SYNs,
# and their clients retry a second or more later.
LISTEN_BACKLOG = 2048

EXHAUSTED_TEXT = "mock script exhausted"
RESPONSE_KEYS = {"delay_ms", "status", "headers", "json", "text", "fault", "events"}
# One event of a streamed answer: `data` (a JSON value, or a string sent as
# is, e.g. "[DONE]"), optional `event` (the SSE event name) and `delay_ms`
# before it; or a `fault` in the middle of the stream. `flood_s`: the event
# sent again and again, as fast as the client reads, for that many seconds
# or until it leaves (a hostile upstream).
EVENT_KEYS = {"data", "event", "delay_ms", "fault", "raw", "flood_s"}
FLOOD_LIMIT_S = 60.0
# Bytes of repeated events per write of a flood.
FLOOD_WRITE_BYTES = 64 * 1024
FAULTS = {"reset", "stall", "truncate"}


# --------------------------------------------------------------------------
# the vector's mocks, checked up front so a typo fails loudly


class VectorError(ValueError):
    pass


def validate_mocks(mocks: Any) -> dict[str, dict]:
    if not isinstance(mocks, dict) or not mocks:
        raise VectorError("'mocks' must be a non-empty object of provider name -> script")
    for name, spec in mocks.items():
        where = f"mocks.{name}"
        if not isinstance(spec, dict):
            raise VectorError(f"{where}: must be an object")
        unknown = set(spec) - {"refuse", "responses", "bench"}
        if unknown:
            raise VectorError(f"{where}: unknown keys {sorted(unknown)}")
        if "bench" in spec:
            if len(spec) != 1:
                raise VectorError(f"{where}: 'bench' excludes 'refuse' and 'responses'")
            validate_bench(spec["bench"], f"{where}.bench")
            continue
        if spec.get("refuse"):
            if spec["refuse"] is not True:
                raise VectorError(f"{where}.refuse: must be true when present")
            if "responses" in spec:
                raise VectorError(f"{where}: 'refuse' and 'responses' exclude each other")
            continue
        responses = spec.get("responses")
        if not isinstance(responses, list):
            raise VectorError(f"{where}.responses: must be a list")
        for i, resp in enumerate(responses):
            validate_response(resp, f"{where}.responses[{i}]")
    return mocks


BENCH_MODES = {"flaky", "tail", "stream", "chat"}
CHAT_KINDS = {"openai", "anthropic"}
BENCH_NUMBERS = {"delay_ms", "slow_ms", "slow_frac", "fail_frac", "chunks", "seed"}


def validate_bench(spec: Any, where: str) -> None:
    if not isinstance(spec, dict) or spec.get("mode") not in BENCH_MODES:
        raise VectorError(f"{where}: an object with 'mode' one of {sorted(BENCH_MODES)}")
    unknown = set(spec) - BENCH_NUMBERS - {"mode", "kind"}
    if unknown:
        raise VectorError(f"{where}: unknown keys {sorted(unknown)}")
    if spec.get("kind", "openai") not in CHAT_KINDS:
        raise VectorError(f"{where}.kind: one of {sorted(CHAT_KINDS)}")
    for key in BENCH_NUMBERS & set(spec):
        value = spec[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise VectorError(f"{where}.{key}: must be a number >= 0")
    if spec.get("chunks", 1) < 1 or spec.get("slow_frac", 0) > 1 or spec.get("fail_frac", 0) > 1:
        raise VectorError(f"{where}: chunks >= 1, slow_frac and fail_frac in [0, 1]")


def validate_response(resp: Any, where: str) -> None:
    if not isinstance(resp, dict):
        raise VectorError(f"{where}: must be an object")
    unknown = set(resp) - RESPONSE_KEYS
    if unknown:
        raise VectorError(f"{where}: unknown keys {sorted(unknown)}")
    delay = resp.get("delay_ms", 0)
    if isinstance(delay, bool) or not isinstance(delay, (int, float)) or delay < 0:
        raise VectorError(f"{where}.delay_ms: must be a number >= 0")
    status = resp.get("status", 200)
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 999:
        raise VectorError(f"{where}.status: must be an integer HTTP status")
    headers = resp.get("headers", {})
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise VectorError(f"{where}.headers: must be an object of strings")
    if "json" in resp and "text" in resp:
        raise VectorError(f"{where}: 'json' and 'text' exclude each other")
    if "text" in resp and not isinstance(resp["text"], str):
        raise VectorError(f"{where}.text: must be a string")
    if "fault" in resp and resp["fault"] not in FAULTS:
        raise VectorError(f"{where}.fault: must be one of {sorted(FAULTS)}")
    if "events" in resp:
        if "json" in resp or "text" in resp:
            raise VectorError(f"{where}: 'events' excludes 'json' and 'text'")
        events = resp["events"]
        if not isinstance(events, list):
            raise VectorError(f"{where}.events: must be a list")
        for i, ev in enumerate(events):
            at = f"{where}.events[{i}]"
            if not isinstance(ev, dict) or set(ev) - EVENT_KEYS:
                raise VectorError(f"{at}: an object with keys among {sorted(EVENT_KEYS)}")
            if ("fault" in ev) + ("data" in ev) + ("raw" in ev) != 1:
                raise VectorError(f"{at}: exactly one of 'data', 'raw' or 'fault'")
            if "fault" in ev and ev["fault"] not in FAULTS:
                raise VectorError(f"{at}.fault: must be one of {sorted(FAULTS)}")
            if "flood_s" in ev:
                flood = ev["flood_s"]
                if "fault" in ev or isinstance(flood, bool) or not isinstance(flood, (int, float)) \
                        or not 0 < flood <= FLOOD_LIMIT_S:
                    raise VectorError(f"{at}.flood_s: a number of seconds in (0, {FLOOD_LIMIT_S:g}], "
                                      "with 'data' or 'raw'")


# --------------------------------------------------------------------------
# HTTP/1.1 on asyncio streams


class BadRequest(Exception):
    pass


class ClientGone(Exception):
    """The peer closed (or reset) the connection."""


class Request:
    __slots__ = ("method", "path", "version", "headers", "body")

    def __init__(self, method: str, path: str, version: str, headers: dict[str, str], body: bytes):
        self.method = method
        self.path = path
        self.version = version
        self.headers = headers
        self.body = body

    def wants_close(self) -> bool:
        tokens = {t.strip().lower() for t in self.headers.get("connection", "").split(",")}
        if self.version == "HTTP/1.0":
            return "keep-alive" not in tokens
        return "close" in tokens


class Connection:
    """A stream with our own read buffer, so that watching for the peer's close
    while a response is delayed never loses bytes the peer sent meanwhile."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader = reader
        self.writer = writer
        self.buf = bytearray()
        self.peer_closed = False

    async def _fill(self, timeout: float) -> None:
        """Read more bytes into the buffer; ClientGone on EOF or reset."""
        if self.peer_closed:
            raise ClientGone()
        try:
            data = await asyncio.wait_for(self.reader.read(READ_CHUNK), timeout)
        except asyncio.TimeoutError:  # an OSError too since 3.11: keep it apart
            raise
        except (ConnectionError, OSError) as exc:
            self.peer_closed = True
            raise ClientGone() from exc
        if not data:
            self.peer_closed = True
            raise ClientGone()
        self.buf += data

    async def read_request(self) -> Request | None:
        """The next request, or None when the peer closed between requests."""
        # RFC 9112 2.2: ignore empty lines before a request line.
        while True:
            while self.buf[:2] == b"\r\n":
                del self.buf[:2]
            end = self.buf.find(b"\r\n\r\n")
            if end >= 0:
                break
            if len(self.buf) > MAX_HEAD_BYTES:
                raise BadRequest("request head too large")
            started = bool(self.buf)
            try:
                await self._fill(REQUEST_TIMEOUT_S if started else IDLE_TIMEOUT_S)
            except ClientGone:
                if started:
                    raise
                return None
            except asyncio.TimeoutError:
                if started:
                    raise BadRequest("timed out reading the request head") from None
                return None
        head = bytes(self.buf[:end]).decode("latin-1")
        del self.buf[: end + 4]
        lines = head.split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise BadRequest(f"bad request line {lines[0]!r}")
        method, path, version = parts
        if len(lines) - 1 > MAX_HEADERS:
            raise BadRequest("too many headers")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep or not name or name != name.strip():
                raise BadRequest(f"bad header line {line!r}")
            name = name.lower()
            value = value.strip()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        if headers.get("expect", "").lower() == "100-continue":
            await self.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = await self._read_chunked()
        else:
            try:
                length = int(headers.get("content-length", "0"))
            except ValueError:
                raise BadRequest("bad content-length") from None
            if length < 0 or length > MAX_BODY_BYTES:
                raise BadRequest("bad content-length")
            body = await self._read_exact(length)
        return Request(method, path, version, headers, body)

    async def _read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            try:
                await self._fill(REQUEST_TIMEOUT_S)
            except asyncio.TimeoutError:
                raise BadRequest("timed out reading the request body") from None
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    async def _read_line(self) -> bytes:
        while True:
            end = self.buf.find(b"\r\n")
            if end >= 0:
                line = bytes(self.buf[:end])
                del self.buf[: end + 2]
                return line
            if len(self.buf) > MAX_HEAD_BYTES:
                raise BadRequest("chunk line too long")
            try:
                await self._fill(REQUEST_TIMEOUT_S)
            except asyncio.TimeoutError:
                raise BadRequest("timed out reading the request body") from None

    async def _read_chunked(self) -> bytes:
        body = bytearray()
        while True:
            size_line = (await self._read_line()).split(b";", 1)[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                raise BadRequest("bad chunk size") from None
            if size == 0:
                while await self._read_line():  # trailers, up to the empty line
                    pass
                return bytes(body)
            if len(body) + size > MAX_BODY_BYTES:
                raise BadRequest("request body too large")
            body += await self._read_exact(size)
            if await self._read_exact(2) != b"\r\n":
                raise BadRequest("bad chunk terminator")

    async def wait_peer_close(self, timeout: float) -> bool:
        """Wait up to timeout seconds; True as soon as the peer closes.

        Bytes the peer sends meanwhile (a pipelined request) are kept for later.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            if len(self.buf) > MAX_HEAD_BYTES + MAX_BODY_BYTES:
                # Buffer no more; notice only an abort from our side (shutdown).
                if self.writer.transport.is_closing():
                    return True
                await asyncio.sleep(min(remaining, 0.1))
                continue
            try:
                await self._fill(remaining)
            except asyncio.TimeoutError:
                return False
            except ClientGone:
                return True

    async def write(self, data: bytes) -> None:
        try:
            self.writer.write(data)
            await asyncio.wait_for(self.writer.drain(), WRITE_TIMEOUT_S)
        except (ConnectionError, OSError, asyncio.TimeoutError) as exc:
            self.peer_closed = True
            raise ClientGone() from exc

    def abort_with_reset(self) -> None:
        """Close so that the peer sees a TCP RST, not a FIN."""
        sock = self.writer.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
        self.writer.transport.abort()

    async def close(self) -> None:
        if not self.writer.transport.is_closing():  # not after abort_with_reset()
            self.writer.close()
        try:
            await asyncio.wait_for(self.writer.wait_closed(), SHUTDOWN_GRACE_S)
        except (ConnectionError, OSError, asyncio.TimeoutError):
            pass


def render_response(
    status: int, headers: dict[str, str], body: bytes, content_type: str, close: bool
) -> tuple[bytes, bytes]:
    try:
        reason = http.HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    lines = [f"HTTP/1.1 {status} {reason}"]
    names = set()
    for name, value in headers.items():
        if name.lower() in ("content-length", "connection", "transfer-encoding"):
            continue
        names.add(name.lower())
        lines.append(f"{name}: {value}")
    if "content-type" not in names:
        lines.append(f"content-type: {content_type}")
    lines.append(f"content-length: {len(body)}")
    if close:
        lines.append("connection: close")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head, body


def json_bytes(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


# --------------------------------------------------------------------------
# the bench modes' answers

BENCH_MODEL = "gpt-4o"
# The answer of every bench mode (and of bench/'s nginx): a complete OpenAI
# chat completion, so every client under test accepts it.
BENCH_COMPLETION = {
    "id": "chatcmpl-bench",
    "object": "chat.completion",
    "created": 1700000000,
    "model": BENCH_MODEL,
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hello from the benchmark upstream."},
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 9, "completion_tokens": 7, "total_tokens": 16},
}
BENCH_OVERLOADED = {
    "error": {"message": "overloaded (bench mock)", "type": "server_error", "code": "overloaded"}
}
_BENCH_COMPLETION_BYTES = json_bytes(BENCH_COMPLETION)
_BENCH_OVERLOADED_BYTES = json_bytes(BENCH_OVERLOADED)
BENCH_WORDS = ("the quick brown fox jumps over the lazy dog while a small bird sings "
               "above an old stone bridge near the river").split()


def bench_piece(i: int) -> str:
    """The text of content chunk i of a bench stream: 4 words, each with its leading space."""
    return "".join(" " + BENCH_WORDS[(4 * i + k) % len(BENCH_WORDS)] for k in range(4))


def _bench_event(delta: dict[str, str], finish: str | None = None) -> bytes:
    chunk = {"id": "chatcmpl-bench-stream", "object": "chat.completion.chunk",
             "created": 1700000000, "model": BENCH_MODEL, "system_fingerprint": "fp_bench",
             "choices": [{"index": 0, "delta": delta, "logprobs": None,
                          "finish_reason": finish}]}
    return b"data: " + json_bytes(chunk) + b"\n\n"


def bench_sse_events(chunks: int) -> list[bytes]:
    """A bench stream's events: `chunks` content chunks, the finish chunk, [DONE]."""
    out = [_bench_event({"role": "assistant", "content": bench_piece(0)})]
    out += [_bench_event({"content": bench_piece(i)}) for i in range(1, chunks)]
    out.append(_bench_event({}, "stop"))
    out.append(b"data: [DONE]\n\n")
    return out


CHAT_TEXT = "Hello from the mock provider."
CHAT_JSON_TEXT = '{"name": "Ada Lovelace", "age": 36}'


def chat_text(request: Any) -> str:
    """The chat mode's answer text: JSON when the request asks for JSON."""
    wants_json = isinstance(request, dict) and isinstance(request.get("response_format"), dict) \
        and request["response_format"].get("type") in ("json_object", "json_schema")
    return CHAT_JSON_TEXT if wants_json else CHAT_TEXT


def schema_instance(schema: Any, defs: dict | None = None, depth: int = 0) -> Any:
    """A value that fits a JSON Schema (the subset structured outputs use:
    types, properties, items, enum, const, anyOf/oneOf, local $ref), so a
    mock answer to a schema parses as the caller's model. An open object is
    the chat mode's JSON answer."""
    if not isinstance(schema, dict) or depth > 20:
        return None
    defs = {**(defs or {}), **schema.get("$defs", {}), **schema.get("definitions", {})}
    if "$ref" in schema:
        return schema_instance(defs.get(str(schema["$ref"]).rsplit("/", 1)[-1]), defs, depth + 1)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            return schema_instance(schema[key][0], defs, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties")
        if not props:
            return json.loads(CHAT_JSON_TEXT)
        return {k: schema_instance(v, defs, depth + 1) for k, v in props.items()}
    if kind == "array":
        return [schema_instance(schema.get("items", {}), defs, depth + 1)]
    return {"string": "mock", "integer": 36, "number": 1.5, "boolean": True}.get(kind)


THINKING_TEXT = "Mock reasoning, never shown to the caller."


def anthropic_blocks(request: Any) -> tuple[list[dict], str]:
    """The content blocks and stop reason of a Messages answer to `request`,
    as Anthropic gives them: thinking first when thinking is on; a forced
    tool's call (its input fitting the tool's schema); JSON text fitting
    `output_config.format`; else the chat text."""
    req = request if isinstance(request, dict) else {}
    blocks: list[dict] = []
    if isinstance(req.get("thinking"), dict) and req["thinking"].get("type") == "enabled":
        blocks += [{"type": "thinking", "thinking": THINKING_TEXT, "signature": "mock-signature"},
                   {"type": "redacted_thinking", "data": "mock-redacted"}]
    choice = req.get("tool_choice") if isinstance(req.get("tool_choice"), dict) else {}
    if choice.get("type") == "tool":
        tool = next((t for t in req.get("tools") or [] if isinstance(t, dict)
                     and t.get("name") == choice.get("name")), {})
        blocks.append({"type": "tool_use", "id": "toolu_mock", "name": choice.get("name"),
                       "input": schema_instance(tool.get("input_schema", {"type": "object"}))})
        return blocks, "tool_use"
    fmt = (req.get("output_config") or {}).get("format") if isinstance(req.get("output_config"), dict) else None
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        text = json.dumps(schema_instance(fmt.get("schema")))
    else:
        text = chat_text(request)
    blocks.append({"type": "text", "text": text})
    return blocks, "end_turn"


def chat_answer(kind: str, request: Any) -> bytes:
    text = chat_text(request)
    model = request.get("model", BENCH_MODEL) if isinstance(request, dict) else BENCH_MODEL
    if kind == "anthropic":
        blocks, stop = anthropic_blocks(request)
        return json_bytes({"id": "msg_mock", "type": "message", "role": "assistant", "model": model,
                           "content": blocks, "stop_reason": stop,
                           "usage": {"input_tokens": 9, "output_tokens": 7}})
    return json_bytes({**BENCH_COMPLETION, "model": model,
                       "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                    "finish_reason": "stop"}]})


def _halves(text: str) -> list[str]:
    return [text[: len(text) // 2], text[len(text) // 2:]]


def _block_events(index: int, block: dict) -> list[tuple[str, dict]]:
    """One content block as Anthropic streams it: its start (empty), its
    deltas in two pieces, its stop."""
    kind = block["type"]
    start = {"thinking": {"type": "thinking", "thinking": ""}, "text": {"type": "text", "text": ""},
             "tool_use": {**block, "input": {}}}.get(kind, block)
    if kind == "thinking":
        deltas = [{"type": "thinking_delta", "thinking": p} for p in _halves(block["thinking"])]
        deltas.append({"type": "signature_delta", "signature": block["signature"]})
    elif kind == "text":
        deltas = [{"type": "text_delta", "text": p} for p in _halves(block["text"])]
    elif kind == "tool_use":
        deltas = [{"type": "input_json_delta", "partial_json": p}
                  for p in _halves(json.dumps(block["input"]))]
    else:
        deltas = []
    return [("content_block_start", {"type": "content_block_start", "index": index,
                                     "content_block": start}),
            *[("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d})
              for d in deltas],
            ("content_block_stop", {"type": "content_block_stop", "index": index})]


def chat_events(kind: str, request: Any) -> list[bytes]:
    """A streamed answer of the chat mode, each block's text in two pieces."""
    if kind == "openai":
        pieces = _halves(chat_text(request))
        return [_bench_event({"role": "assistant", "content": pieces[0]}),
                _bench_event({"content": pieces[1]}), _bench_event({}, "stop"), b"data: [DONE]\n\n"]
    model = request.get("model", BENCH_MODEL) if isinstance(request, dict) else BENCH_MODEL
    blocks, stop = anthropic_blocks(request)
    events: list[tuple[str, dict]] = [
        ("message_start", {"type": "message_start", "message": {
            "id": "msg_mock", "type": "message", "role": "assistant", "model": model,
            "content": [], "usage": {"input_tokens": 9, "output_tokens": 0}}}),
        *[e for i, b in enumerate(blocks) for e in _block_events(i, b)],
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop},
                           "usage": {"output_tokens": 7}}),
        ("message_stop", {"type": "message_stop"}),
    ]
    return [f"event: {name}\n".encode() + b"data: " + json_bytes(data) + b"\n\n"
            for name, data in events]


def _http_chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


class BenchMock:
    """A provider in a bench mode: one way to answer, counters, no log."""

    def __init__(self, name: str, spec: dict):
        self.name = name
        self.mode = spec["mode"]
        self.kind = spec.get("kind", "openai")
        self.delay_s = float(spec.get("delay_ms", 5)) / 1000.0
        self.slow_s = float(spec.get("slow_ms", 200)) / 1000.0
        self.slow_frac = float(spec.get("slow_frac", 0.05))
        self.fail_frac = float(spec.get("fail_frac", 0.0))
        self.rng = random.Random(spec.get("seed", 1))
        self.counts = {"requests": 0, "failed": 0, "slow": 0}
        chunks = int(spec.get("chunks", 200))
        events = bench_sse_events(chunks)
        # Content chunks one by one; the finish chunk, [DONE] and the body's
        # end go with the last one.
        self.pieces = [_http_chunk(e) for e in events[:chunks]]
        self.pieces[-1] += b"".join(_http_chunk(e) for e in events[chunks:]) + b"0\r\n\r\n"

    def delay(self) -> float:
        """This request's wait before its answer (tail: the heavy tail)."""
        if self.mode == "tail" and self.rng.random() < self.slow_frac:
            self.counts["slow"] += 1
            return self.slow_s
        return self.delay_s

    def answer(self) -> tuple[int, bytes]:
        """Status and body of a non-streamed answer, decided on arrival."""
        if self.mode == "flaky" and self.fail_frac > 0 and self.rng.random() < self.fail_frac:
            self.counts["failed"] += 1
            return 503, _BENCH_OVERLOADED_BYTES
        return 200, _BENCH_COMPLETION_BYTES


# --------------------------------------------------------------------------
# the mocks


class ProviderMock:
    def __init__(self, name: str, responses: list[dict] | None, loop_script: bool):
        self.name = name
        self.responses = responses  # None: refused, nothing listens
        self.loop_script = loop_script
        self.log: list[dict] = []
        self.next_index = 0

    def reset(self) -> None:
        self.log = []
        self.next_index = 0

    def take(self, req: Request) -> tuple[dict, dict | None]:
        """Record req and return (its record, its script entry or None)."""
        index = self.next_index
        self.next_index += 1
        responses = self.responses or []
        entry: dict | None
        if index < len(responses):
            entry = responses[index]
        elif self.loop_script and responses:
            entry = responses[index % len(responses)]
        else:
            entry = None
        text = req.body.decode("utf-8", errors="replace")
        try:
            parsed = json.loads(text) if text else None
        except ValueError:
            parsed = None
        record = {
            "index": index,
            "method": req.method,
            "path": req.path,
            "headers": dict(req.headers),
            "body": text,
            "json": parsed,
            "received_at": time.monotonic(),
            "disconnected_early": False,
            "disconnected_at": None,
            "exhausted": entry is None,
        }
        self.log.append(record)
        return record, entry


class MockServer:
    def __init__(self, mocks: dict[str, dict], loop_script: bool, base_port: int = 0):
        self.base_port = base_port
        self.providers = {
            name: ProviderMock(
                name, None if spec.get("refuse") else list(spec["responses"]), loop_script
            )
            for name, spec in mocks.items() if "bench" not in spec
        }
        self.bench = {name: BenchMock(name, spec["bench"])
                      for name, spec in mocks.items() if "bench" in spec}
        self.ports: dict[str, int] = {}
        self.control_port = 0
        self.servers: list[asyncio.AbstractServer] = []
        self.handlers: dict[asyncio.Task, Connection] = {}

    async def start(self) -> None:
        placeholders = []
        # Fixed ports when asked (base_port, +1, ... in the order of `mocks`,
        # then the control port), for a config written by hand; else any.
        ports = iter(range(self.base_port, self.base_port + len(self.providers) + 1)) if self.base_port else None

        def port() -> int:
            return next(ports) if ports is not None else 0

        try:
            for name, mock in self.providers.items():
                if mock.responses is None:
                    # Keep the socket bound (not listening) until every server
                    # listens, so no server of ours can take its port.
                    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    placeholders.append(s)
                    s.bind((HOST, port()))
                    self.ports[name] = s.getsockname()[1]
                    continue
                server = await asyncio.start_server(
                    lambda r, w, m=mock: self._serve(r, w, m), HOST, port(), backlog=LISTEN_BACKLOG
                )
                self.servers.append(server)
                self.ports[name] = server.sockets[0].getsockname()[1]
            for name, bench in self.bench.items():
                server = await asyncio.start_server(
                    lambda r, w, b=bench: self._serve(r, w, b), HOST, port(), backlog=LISTEN_BACKLOG
                )
                self.servers.append(server)
                self.ports[name] = server.sockets[0].getsockname()[1]
            control = await asyncio.start_server(
                lambda r, w: self._serve(r, w, None), HOST, port()
            )
            self.servers.append(control)
            self.control_port = control.sockets[0].getsockname()[1]
        finally:
            for s in placeholders:
                s.close()

    async def stop(self) -> None:
        for server in self.servers:
            server.close()
        # Abort the connections rather than cancel their handlers: a handler
        # sees the peer go away and ends normally (cancelling a stream
        # handler makes 3.11's asyncio log a spurious error).
        for conn in list(self.handlers.values()):
            conn.writer.transport.abort()
        if self.handlers:
            await asyncio.wait(list(self.handlers), timeout=SHUTDOWN_GRACE_S)
        for task in list(self.handlers):  # a handler that did not end: last resort
            task.cancel()
        for server in self.servers:
            try:
                await asyncio.wait_for(server.wait_closed(), SHUTDOWN_GRACE_S)
            except asyncio.TimeoutError:
                pass

    async def _serve(self, reader, writer, mock: ProviderMock | BenchMock | None) -> None:
        task = asyncio.current_task()
        assert task is not None
        conn = Connection(reader, writer)
        self.handlers[task] = conn
        try:
            while True:
                try:
                    req = await conn.read_request()
                except BadRequest as exc:
                    await self._send_simple(conn, 400, f"bad request: {exc}", close=True)
                    return
                if req is None:
                    return
                if mock is None:
                    keep = await self._control(conn, req)
                elif isinstance(mock, BenchMock):
                    keep = await self._bench(conn, req, mock)
                else:
                    keep = await self._provider(conn, req, mock)
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
            await conn.close()

    async def _send_simple(
        self, conn: Connection, status: int, text: str, close: bool = False
    ) -> None:
        head, body = render_response(status, {}, text.encode(), "text/plain; charset=utf-8", close)
        await conn.write(head + body)

    async def _control(self, conn: Connection, req: Request) -> bool:
        path = req.path.split("?", 1)[0]
        if req.method == "GET" and path == "/log":
            body = json_bytes({name: m.log for name, m in self.providers.items()})
            head, body = render_response(200, {}, body, "application/json", req.wants_close())
            await conn.write(head + body)
        elif req.method == "POST" and path == "/reset":
            for m in self.providers.values():
                m.reset()
            for b in self.bench.values():
                b.counts = dict.fromkeys(b.counts, 0)
            head, body = render_response(200, {}, b"{}", "application/json", req.wants_close())
            await conn.write(head + body)
        elif req.method == "GET" and path == "/stats":
            await self._send_json(conn, req, self.bench_stats())
        elif req.method == "POST" and path == "/fail":
            query = dict(p.partition("=")[::2] for p in req.path.partition("?")[2].split("&"))
            try:
                bench, frac = self.bench[query["provider"]], float(query["frac"])
            except (KeyError, ValueError):
                await self._send_simple(conn, 400, "POST /fail?provider=NAME&frac=F: a bench provider")
                return True
            bench.fail_frac = min(1.0, max(0.0, frac))
            await self._send_json(conn, req, {"ok": True})
        else:
            await self._send_simple(conn, 404, "not found: GET /log, POST /reset, GET /stats, POST /fail")
        return True

    def bench_stats(self) -> dict:
        per = {name: dict(b.counts) for name, b in self.bench.items()}
        totals = {k: sum(c[k] for c in per.values()) for k in ("requests", "failed", "slow")}
        return {**totals, "providers": per}

    async def _send_json(self, conn: Connection, req: Request, value: Any) -> None:
        head, body = render_response(200, {}, json_bytes(value), "application/json", req.wants_close())
        await conn.write(head + body)

    async def _bench(self, conn: Connection, req: Request, bench: BenchMock) -> bool:
        """One answer of a bench mode; False when the connection must end."""
        bench.counts["requests"] += 1
        if bench.mode == "stream":
            return await self._bench_stream(conn, req, bench)
        if bench.mode == "chat":
            return await self._chat(conn, req, bench.kind)
        status, body = bench.answer()
        # A plain sleep (not wait_peer_close: its read task per wait costs
        # the benchmark milliseconds on a busy machine); a cancelled hedge
        # leg's answer then goes to a closed socket, which ends the connection.
        await asyncio.sleep(bench.delay())
        head, body = render_response(status, {}, body, "application/json", req.wants_close())
        await conn.write(head + body)
        return True

    async def _chat(self, conn: Connection, req: Request, kind: str) -> bool:
        try:
            request = json.loads(req.body) if req.body else None
        except ValueError:
            request = None
        if not (isinstance(request, dict) and request.get("stream") is True):
            head, body = render_response(200, {}, chat_answer(kind, request), "application/json",
                                         req.wants_close())
            await conn.write(head + body)
            return True
        head = ("HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n"
                + ("connection: close\r\n" if req.wants_close() else "") + "\r\n")
        body = b"".join(_http_chunk(e) for e in chat_events(kind, request)) + b"0\r\n\r\n"
        await conn.write(head.encode("latin-1") + body)
        return not req.wants_close()

    async def _bench_stream(self, conn: Connection, req: Request, bench: BenchMock) -> bool:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        head = ("HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
                "transfer-encoding: chunked\r\n" + ("connection: close\r\n" if req.wants_close() else "")
                + "\r\n")
        await conn.write(head.encode("latin-1"))
        for k, piece in enumerate(bench.pieces, 1):
            wait = t0 + k * bench.delay_s - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            await conn.write(piece)  # ClientGone when the client hung up
        return True

    async def _provider(self, conn: Connection, req: Request, mock: ProviderMock) -> bool:
        """Play one script entry; False when the connection must end."""
        record, entry = mock.take(req)
        if entry is None:
            await self._send_simple(conn, 500, EXHAUSTED_TEXT, close=req.wants_close())
            return True

        if not await self._wait_and_fault(conn, record, entry):
            return False
        fault = entry.get("fault")
        if "events" in entry:
            return await self._stream(conn, req, record, entry)
        if "json" in entry:
            body, content_type = json_bytes(entry["json"]), "application/json"
        else:
            body, content_type = entry.get("text", "").encode("utf-8"), "text/plain; charset=utf-8"
        head, body = render_response(
            entry.get("status", 200), entry.get("headers", {}), body, content_type,
            req.wants_close(),
        )
        if fault == "truncate":
            await conn.write(head + body[: len(body) // 2])
            return False
        await conn.write(head + body)
        return True

    async def _wait_and_fault(self, conn: Connection, record: dict, step: dict) -> bool:
        """A step's `delay_ms`, then its `stall` or `reset`: False when the
        connection must end (the client left meanwhile, or the fault ends it)."""
        delay_s = float(step.get("delay_ms", 0)) / 1000.0
        if delay_s > 0 and await conn.wait_peer_close(delay_s):
            record["disconnected_early"] = True
            record["disconnected_at"] = time.monotonic()
            return False
        fault = step.get("fault")
        if fault == "stall":
            if await conn.wait_peer_close(STALL_LIMIT_S):
                record["disconnected_early"] = True
                record["disconnected_at"] = time.monotonic()
            return False
        if fault == "reset":
            conn.abort_with_reset()
            return False
        return True

    async def _stream(self, conn: Connection, req: Request, record: dict, entry: dict) -> bool:
        """A server-sent-events answer, chunked, one chunk per event, with
        each event's delay before it; a fault cuts the stream where it is."""
        headers = {"content-type": "text/event-stream", "cache-control": "no-cache", **entry.get("headers", {})}
        status = entry.get("status", 200)
        try:
            reason = http.HTTPStatus(status).phrase
        except ValueError:
            reason = "Unknown"
        lines = [f"HTTP/1.1 {status} {reason}"]
        lines += [f"{k}: {v}" for k, v in headers.items()
                  if k.lower() not in ("content-length", "connection", "transfer-encoding")]
        lines.append("transfer-encoding: chunked")
        if req.wants_close():
            lines.append("connection: close")
        await conn.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        for ev in entry["events"]:
            if not await self._wait_and_fault(conn, record, ev):
                return False
            if ev.get("fault") == "truncate":
                return False  # closed without the last chunk: a cut stream
            if "raw" in ev:
                text = ev["raw"]
            else:
                data = ev["data"]
                text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
                text = (f"event: {ev['event']}\n" if "event" in ev else "") + f"data: {text}\n\n"
            payload = text.encode("utf-8")
            if "flood_s" in ev:
                # Many events per chunk, so the flood is as fast as the client reads.
                payload *= max(1, FLOOD_WRITE_BYTES // len(payload))
            try:
                deadline = time.monotonic() + float(ev.get("flood_s", 0))
                while True:  # once, or a flood: bounded by flood_s
                    await conn.write(f"{len(payload):x}\r\n".encode() + payload + b"\r\n")
                    if time.monotonic() >= deadline:
                        break
                    await asyncio.sleep(0)  # the other connections' turn
            except ClientGone:
                record["disconnected_early"] = True
                record["disconnected_at"] = time.monotonic()
                return False
        await conn.write(b"0\r\n\r\n")
        return not req.wants_close()


class _StdinWatcher(asyncio.Protocol):
    def __init__(self, stop: asyncio.Event):
        self.stop = stop

    def data_received(self, data: bytes) -> None:
        pass

    def eof_received(self) -> bool:
        self.stop.set()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.stop.set()


async def _watch_stdin(stop: asyncio.Event) -> asyncio.BaseTransport | None:
    """Stop on EOF when stdin is a pipe or socket; otherwise do not watch it."""
    try:
        mode = os.fstat(0).st_mode
    except OSError:
        return None
    if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)):
        return None
    pipe = os.fdopen(os.dup(0), "rb", buffering=0)
    try:
        transport, _ = await asyncio.get_running_loop().connect_read_pipe(
            lambda: _StdinWatcher(stop), pipe
        )
    except Exception:
        pipe.close()
        return None
    return transport


async def run(mocks: dict[str, dict], loop_script: bool, base_port: int = 0) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    server = MockServer(mocks, loop_script, base_port)
    stdin_transport = None
    try:
        await server.start()
        line = json.dumps({"control": server.control_port, "providers": server.ports})
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
    parser = argparse.ArgumentParser(description="Scriptable mock LLM providers for test vectors.")
    parser.add_argument("vector", nargs="?", help="path to a vector JSON file")
    parser.add_argument("--json", dest="inline", help="the vector as inline JSON, instead of a path")
    parser.add_argument("--loop", action="store_true", help="replay each script when it runs out")
    parser.add_argument(
        "--base-port", type=int, default=0,
        help="listen on fixed ports: this one for the first provider, the next for the second, ...",
    )
    args = parser.parse_args(argv)
    if (args.vector is None) == (args.inline is None):
        parser.error("give exactly one of VECTOR or --json")
    try:
        if args.inline is not None:
            vector = json.loads(args.inline)
        else:
            with open(args.vector, encoding="utf-8") as f:
                vector = json.load(f)
        if not isinstance(vector, dict):
            raise VectorError("the vector must be a JSON object")
        mocks = validate_mocks(vector.get("mocks"))
    except (OSError, ValueError) as exc:
        print(f"mock_provider: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(run(mocks, args.loop, args.base_port))


# --------------------------------------------------------------------------
# for tests: the CLI in a subprocess


class MockProviders:
    """Runs this file's CLI in a subprocess for one vector.

    ``MockProviders(vector, loop=False)`` starts it and waits (up to
    ``startup_timeout`` seconds) for the ports. Use as a context manager, or
    call ``close()``.
    """

    def __init__(self, vector: dict, loop: bool = False, startup_timeout: float = 10.0):
        self.vector = vector
        self.ports: dict[str, int] = {}
        self.control_port = 0
        self._proc: subprocess.Popen | None = None
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        fd, self._path = tempfile.mkstemp(prefix="mock-vector-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(vector, f)
            args = [sys.executable, os.path.abspath(__file__), self._path]
            if loop:
                args.append("--loop")
            self._proc = subprocess.Popen(
                args,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                start_new_session=True,  # its own process group
            )
            info = json.loads(self._read_line(startup_timeout))
            self.control_port = int(info["control"])
            self.ports = {str(k): int(v) for k, v in info["providers"].items()}
        except BaseException:
            self.close()
            raise
        self._remove_file()

    def _read_line(self, timeout: float) -> str:
        assert self._proc is not None and self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        buf = b""
        while b"\n" not in buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"mock_provider did not report its ports within {timeout} s")
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(fd, 4096)
            if not chunk:
                rc = self._proc.wait(timeout=5)
                raise RuntimeError(
                    f"mock_provider exited with status {rc} before reporting its ports "
                    "(its stderr says why)"
                )
            buf += chunk
        return buf.split(b"\n", 1)[0].decode("utf-8")

    def __enter__(self) -> "MockProviders":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def base_url(self, name: str) -> str:
        return f"http://{HOST}:{self.ports[name]}/v1"

    def _control(self, method: str, path: str) -> bytes:
        req = urllib.request.Request(
            f"http://{HOST}:{self.control_port}{path}",
            method=method,
            data=b"" if method == "POST" else None,
        )
        with self._opener.open(req, timeout=10) as resp:
            return resp.read()

    def log(self) -> dict[str, list[dict]]:
        """Every request each provider received since the start or the last reset."""
        return json.loads(self._control("GET", "/log"))

    def reset(self) -> None:
        """Clear the logs and rewind every script."""
        self._control("POST", "/reset")

    def stats_url(self) -> str:
        """Where the bench modes' counters are (GET)."""
        return f"http://{HOST}:{self.control_port}/stats"

    def stats(self) -> dict:
        """The bench modes' counters: requests, failed, slow; per provider too."""
        return json.loads(self._control("GET", "/stats"))

    def set_fail(self, name: str, frac: float) -> None:
        """A flaky bench provider answers 503 with probability frac from now on."""
        self._control("POST", f"/fail?provider={name}&frac={frac}")

    def _remove_file(self) -> None:
        try:
            os.unlink(self._path)
        except FileNotFoundError:
            pass

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                try:
                    proc.terminate()
                except ProcessLookupError:
                    pass
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    try:
                        os.killpg(proc.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    proc.wait(timeout=5)
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    try:
                        stream.close()
                    except OSError:
                        pass
        self._remove_file()


if __name__ == "__main__":
    sys.exit(main())
