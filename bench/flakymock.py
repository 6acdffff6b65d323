#!/usr/bin/env python3
"""A chat-completions upstream whose providers can be made to fail, for the
degradation scenario (degrade.py, issue 11).

Stdlib asyncio, HTTP/1.1 with keep-alive, 127.0.0.1 only. Each of
``--ports`` (0 = ephemeral) is one provider with its own counters and its
own failure share, 0 at the start. Every request (any path but the two
below) waits ``--delay-ms``, then answers the nginx upstream's fixed chat
completion, or, with probability ``fail`` (a seeded RNG per provider), 503
with an OpenAI-shaped error and **no Retry-After**: with one the router
would cool the provider down, and the scenario is about health tracking,
not cooldowns. The 503 waits the same delay as a 200: an overloaded
upstream that sheds load still costs the caller a round trip.

Control, on any port:

* ``GET /__fail?provider=I&frac=F``: provider I (its index in ``--ports``)
  answers 503 with probability F from now on; answers ``{"ok": true}``.
* ``GET /__stats``: ``{"providers": [{"requests": N, "failed": F, "frac":
  X}, ...]}`` (requests counted on arrival).

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
from urllib.parse import parse_qs, urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from upstream import CHAT_COMPLETION  # noqa: E402


def response(status: str, body: bytes) -> bytes:
    return (f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\n\r\n").encode() + body


OK = response("200 OK", json.dumps(CHAT_COMPLETION).encode())
UNAVAILABLE = response("503 Service Unavailable", json.dumps(
    {"error": {"message": "overloaded (bench flakymock)", "type": "server_error",
               "code": "overloaded"}}).encode())


class Provider:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.frac = 0.0
        self.requests = 0
        self.failed = 0

    def answer(self) -> bytes:
        self.requests += 1
        if self.frac > 0 and self.rng.random() < self.frac:
            self.failed += 1
            return UNAVAILABLE
        return OK


class State:
    def __init__(self, n: int, delay_ms: float, seed: int) -> None:
        self.providers = [Provider(seed + i) for i in range(n)]
        self.delay = delay_ms / 1000.0

    def control(self, target: str) -> bytes | None:
        """The answer to a control request, or None for a chat request."""
        u = urlsplit(target)
        q = {k: v[-1] for k, v in parse_qs(u.query).items()}
        if u.path == "/__stats":
            return response("200 OK", json.dumps({"providers": [
                {"requests": p.requests, "failed": p.failed, "frac": p.frac}
                for p in self.providers]}).encode())
        if u.path == "/__fail":
            try:
                p = self.providers[int(q["provider"])]
                frac = float(q["frac"])
            except (KeyError, ValueError, IndexError):
                return response("400 Bad Request", b'{"ok": false}')
            p.frac = min(1.0, max(0.0, frac))
            return response("200 OK", b'{"ok": true}')
        return None


async def handle(state: State, provider: Provider, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                return
            lines = head.decode("latin-1").split("\r\n")
            _method, target, _ = (lines[0].split(" ", 2) + ["", ""])[:3]
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
            out = state.control(target)
            if out is None:
                out = provider.answer()  # decided on arrival, counted on arrival
                await asyncio.sleep(state.delay)
                if writer.is_closing():
                    return
            writer.write(out)
            try:
                await writer.drain()
            except ConnectionError:
                return
            if close:
                return
    finally:
        writer.close()


async def main(args: argparse.Namespace) -> None:
    specs = args.ports.split(",")
    state = State(len(specs), args.delay_ms, args.seed)
    servers = []
    ports = []
    for p, prov in zip(specs, state.providers):
        srv = await asyncio.start_server(
            lambda r, w, prov=prov: handle(state, prov, r, w), "127.0.0.1", int(p), backlog=1024)
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
    sys.stdout.flush()
    os._exit(0)  # open keep-alive connections would make shutdown noisy


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ports", default="0,0")
    ap.add_argument("--delay-ms", type=float, default=5.0)
    ap.add_argument("--seed", type=int, default=1)
    try:
        asyncio.run(main(ap.parse_args()))
    except KeyboardInterrupt:
        pass
