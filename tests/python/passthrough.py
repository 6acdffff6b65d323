"""An OpenAI-compatible upstream whose stream and answer need no
translation, written with unusual but valid formatting, and the bytes a
front door must send for them (shared by the Python transports' and the
Worker's tests).

What a front door keeps and what it normalises, for an OpenAI provider:

* kept, byte for byte: each event's ``data`` text (key order, spacing,
  extra fields, ``\\u`` escapes, a text spread over several ``data:``
  lines, sent as as many lines) and a whole answer's body;
* normalised (the SSE framing is the router's): ``data:`` gets one space
  after its colon, lines end with LF, every event ends with one blank
  line; comments (keep-alives), ``event:``, ``id:`` and ``retry:`` fields
  and a byte-order mark are dropped; the end is the router's own
  ``data: [DONE]`` (or its interrupted event).
"""

from __future__ import annotations

import json
from typing import Any

# The data texts, as the upstream formats them.
DATA = [
    # Extra fields, key order of its own, an `event:` and `id:` before it.
    '{"id":"c-1","object":"chat.completion.chunk","choices":[{"index":0,"delta":'
    '{"role":"assistant","content":""},"finish_reason":null}],"x_extra":{"b":2,"a":1}}',
    # Escapes and spacing a serializer would rewrite.
    '{"model":"m","choices":[{"delta":{"content":"caf\\u00e9 \\ud83d\\ude00 \\/"},"index":0,'
    '"finish_reason":null}],   "id" : "c-1" }',
    # One text on two `data:` lines (joined with a newline: JSON whitespace).
    '{"choices":[{"index":0,\n "delta":{"content":" ok"},"finish_reason":null}],"id":"c-1"}',
    # Whitespace before the value (sent as `data:  {`).
    ' {"id":"c-1","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],'
    '"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}',
]

# The upstream's body, split across reads where it is unusual.
RAW_EVENTS = [
    "\ufeff: keep-alive\r\n\r\n",
    f"event: message\r\nid: 7\r\ndata:{DATA[0]}\r\n\r\n",
    "retry: 100\n",
    f"data: {DATA[1][:20]}",
    f"{DATA[1][20:]}\n\n: ping\n\n",
    "data: " + DATA[2].replace("\n", "\ndata: ", 1) + "\r\r",
    f"data: {DATA[3]}\n\ndata: [DONE]\n\n",
]

# The upstream's events for a mock provider (`tests/mock_provider.py`).
STREAM: dict[str, Any] = {"events": [{"raw": r} for r in RAW_EVENTS]}

# What the front door sends for it.
STREAM_BODY = (
    "".join("".join(f"data: {line}\n" for line in d.split("\n")) + "\n" for d in DATA)
    + "data: [DONE]\n\n"
).encode()

# The text the stream carries.
STREAM_TEXT = "café \U0001F600 / ok"

# A whole answer, formatted as no serializer would: sent as it came.
ANSWER_BODY = (
    '{ "id":"chatcmpl-p","object":"chat.completion", "created":1,"model":"m",\n'
    '  "choices":[{"index":0,"message":{"content":"caf\\u00e9","role":"assistant"},'
    '"finish_reason":"stop"}],"usage":{"total_tokens":2,"prompt_tokens":1,"completion_tokens":1},'
    '"x_extra":[1.50, 2e3]}\n'
)
ANSWER: dict[str, Any] = {"text": ANSWER_BODY}


def chunk_values() -> list[Any]:
    """The chunks as a reader of values (``ChatStream``) gets them."""
    return [json.loads(d) for d in DATA]
