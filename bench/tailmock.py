#!/usr/bin/env python3
"""A heavy-tailed chat-completions upstream for the tail experiment.

Stdlib asyncio, HTTP/1.1 with keep-alive, 127.0.0.1 only. Every request
(any method, any path but ``/__stats``) sleeps ``--fast-ms`` with
probability 1 - ``--slow-frac`` and ``--slow-ms`` otherwise, drawn from a
seeded RNG, then answers the same fixed chat completion as the nginx
upstream. Several ``--ports`` (0 = ephemeral) serve one shared counter, so
two "providers" can point at the same distribution.

``GET /__stats`` answers ``{"requests": N, "slow": S}``, the requests counted
so far (on arrival, so a hedge leg that is cancelled still counts: that is
the extra load hedging puts on the upstream).

Once listening it prints one line ``{"ports": [...]}`` to stdout; it stops on
SIGTERM/SIGINT or at EOF on stdin (so it dies with its parent).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from upstream import CHAT_COMPLETION  # noqa: E402

BODY = json.dumps(CHAT_COMPLETION).encode()
RESPONSE = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
    b"content-length: " + str(len(BODY)).encode() + b"\r\n\r\n" + BODY
)


class State:
    def __init__(self, args: argparse.Namespace) -> None:
        self.rng = random.Random(args.seed)
        self.fast = args.fast_ms / 1000.0
        self.slow = args.slow_ms / 1000.0
        self.slow_frac = args.slow_frac
        self.requests = 0
        self.slow_count = 0

    def delay(self) -> float:
        if self.rng.random() < self.slow_frac:
            self.slow_count += 1
            return self.slow
        return self.fast


async def handle(state: State, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                return
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = (lines[0].split(" ", 2) + ["", ""])[:3]
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
                stats = json.dumps({"requests": state.requests, "slow": state.slow_count}).encode()
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
                    + str(len(stats)).encode() + b"\r\n\r\n" + stats
                )
            else:
                state.requests += 1
                await asyncio.sleep(state.delay())
                if writer.is_closing():
                    return  # a cancelled hedge leg: the client hung up
                writer.write(RESPONSE)
            try:
                await writer.drain()
            except ConnectionError:
                return
            if close:
                return
    finally:
        writer.close()


async def main(args: argparse.Namespace) -> None:
    state = State(args)
    servers = []
    ports = []
    for p in args.ports.split(","):
        srv = await asyncio.start_server(
            lambda r, w: handle(state, r, w), "127.0.0.1", int(p), backlog=1024
        )
        servers.append(srv)
        ports.append(srv.sockets[0].getsockname()[1])
    print(json.dumps({"ports": ports}), flush=True)

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if not sys.stdin.isatty():
        # EOF on stdin (the parent went away) stops us too.
        def watch_stdin() -> None:
            sys.stdin.buffer.read()
            loop.call_soon_threadsafe(stop.set)
        threading.Thread(target=watch_stdin, daemon=True).start()
    await stop.wait()
    for srv in servers:
        srv.close()
    # Exit at once: open keep-alive connections and the stdin watcher would
    # otherwise make interpreter shutdown noisy (cancelled tasks, stdin lock).
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ports", default="0,0")
    ap.add_argument("--fast-ms", type=float, default=5.0)
    ap.add_argument("--slow-ms", type=float, default=200.0)
    ap.add_argument("--slow-frac", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=1)
    try:
        asyncio.run(main(ap.parse_args()))
    except KeyboardInterrupt:
        pass
