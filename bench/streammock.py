#!/usr/bin/env python3
"""A streaming chat-completions upstream with a delay between chunks (issue 10).

Stdlib asyncio, HTTP/1.1 with keep-alive, 127.0.0.1 only. Every request
(any method, any path but ``/__stats``) is answered 200 with
``content-type: text/event-stream`` and a chunked body: the head at once,
then the events of ``streaming.sse_events(--chunks)``, content chunk k
(1-based) at ``k * --delay-ms`` after the request was read (an absolute
schedule: a late wake-up does not push the next chunks back), each event
one HTTP chunk; the finish chunk, ``data: [DONE]`` and the last chunk go out
with the last content chunk. With ``--delay-ms 5`` and 200 chunks a stream
takes about one second.

``GET /__stats`` answers ``{"requests": N}`` (counted on arrival). Once
listening it prints one line ``{"port": P}`` to stdout; it stops on
SIGTERM/SIGINT or at EOF on stdin (so it dies with its parent).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from streaming import sse_events  # noqa: E402

HEAD = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
        b"transfer-encoding: chunked\r\n\r\n")


def http_chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


class State:
    def __init__(self, args: argparse.Namespace) -> None:
        events = sse_events(args.chunks)
        self.delay = args.delay_ms / 1000.0
        # Content chunks one by one; the finish chunk, [DONE] and the end of
        # the body go with the last one.
        self.pieces = [http_chunk(e) for e in events[:args.chunks]]
        self.pieces[-1] += b"".join(http_chunk(e) for e in events[args.chunks:]) + b"0\r\n\r\n"
        self.requests = 0


async def handle(state: State, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
    loop = asyncio.get_running_loop()
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                return
            lines = head.decode("latin-1").split("\r\n")
            path = (lines[0].split(" ", 2) + ["", ""])[1]
            length = 0
            close = False
            for line in lines[1:]:
                name, _, value = line.partition(":")
                name = name.strip().lower()
                if name == "content-length":
                    length = int(value.strip() or 0)
                elif name == "connection" and value.strip().lower() == "close":
                    close = True
            if length:
                try:
                    await reader.readexactly(length)
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
            if path == "/__stats":
                stats = json.dumps({"requests": state.requests}).encode()
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                             b"content-length: " + str(len(stats)).encode() + b"\r\n\r\n" + stats)
            else:
                state.requests += 1
                t0 = loop.time()
                writer.write(HEAD)
                for k, piece in enumerate(state.pieces, 1):
                    wait = t0 + k * state.delay - loop.time()
                    if wait > 0:
                        await asyncio.sleep(wait)
                    if writer.is_closing():
                        return  # the client hung up
                    writer.write(piece)
                    await writer.drain()
            try:
                await writer.drain()
            except ConnectionError:
                return
            if close:
                return
    except ConnectionError:
        return
    finally:
        writer.close()


async def main(args: argparse.Namespace) -> None:
    state = State(args)
    srv = await asyncio.start_server(lambda r, w: handle(state, r, w), "127.0.0.1", args.port,
                                     backlog=1024)
    print(json.dumps({"port": srv.sockets[0].getsockname()[1]}), flush=True)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if not sys.stdin.isatty():
        def watch_stdin() -> None:
            sys.stdin.buffer.read()
            loop.call_soon_threadsafe(stop.set)
        threading.Thread(target=watch_stdin, daemon=True).start()
    await stop.wait()
    srv.close()
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--delay-ms", type=float, default=5.0)
    ap.add_argument("--chunks", type=int, default=200)
    try:
        asyncio.run(main(ap.parse_args()))
    except KeyboardInterrupt:
        pass
