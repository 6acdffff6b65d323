"""The contenders: one class each, the same two calls for all.

Each takes ``ok_url`` (the nginx server that answers a chat completion) and
``fail_url`` (the one that answers 429 without Retry-After), both
``http://127.0.0.1:PORT/v1``, and offers:

* ``call()``: one chat completion against ``ok_url``; returns the response.
* ``failover()`` (when the contender can fail over): the first provider is
  ``fail_url``, the second ``ok_url``; returns the response.

Every contender takes a Python dict and gives back the parsed response, as
a caller would, except ``floor`` (a hand-built HTTP/1.1 request on a raw
socket, no JSON); ``floor+json`` adds exactly the JSON step. The throughput
measure's threads share one contender (the floor: a connection per thread).
"""

from __future__ import annotations

import json
import os
import socket
import threading
from typing import Any
from urllib.parse import urlsplit

from lib import API_KEY, BODY, TIMEOUT_S, provider

# Contender names in report order. "aux" ones are breakdowns, not contenders.
CONTENDERS = ["floor", "httpx", "f3dx-0.0.19", "litellm", "f3dx_router"]
AUX = ["floor+json", "f3dx_router.route"]
HAS_FAILOVER = {"floor", "floor+json", "httpx", "f3dx-0.0.19", "litellm",
                "f3dx_router", "f3dx_router.route"}

IMPORTS = {
    "floor": "import socket, json",
    "floor+json": "import socket, json",
    "httpx": "import httpx",
    "f3dx-0.0.19": "from f3dx.router import Router",
    "litellm": "from litellm import Router",
    "f3dx_router": "from f3dx_router import Router",
    "f3dx_router.route": "from f3dx_router import Router",
}


class UpstreamError(RuntimeError):
    pass


# --------------------------------------------------------------------- floor

class _RawConn:
    """One persistent HTTP/1.1 connection; the response read by Content-Length."""

    def __init__(self, url: str) -> None:
        u = urlsplit(url)
        self.addr = (u.hostname or "127.0.0.1", u.port or 80)
        path = u.path.rstrip("/") + "/chat/completions"
        self.head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.addr[0]}:{self.addr[1]}\r\n"
            f"Authorization: Bearer {API_KEY}\r\nContent-Type: application/json\r\n"
            f"Accept: application/json\r\n"
        ).encode()
        self.fixed = self.request(json.dumps(BODY).encode())
        self.sock: socket.socket | None = None

    def request(self, body: bytes) -> bytes:
        return self.head + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body

    def _connect(self) -> socket.socket:
        s = socket.create_connection(self.addr, timeout=TIMEOUT_S)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = s
        return s

    def roundtrip(self, req: bytes) -> tuple[int, bytes]:
        for attempt in (0, 1):
            s = self.sock or self._connect()
            try:
                return self._roundtrip(s, req)
            except (ConnectionError, socket.timeout):
                s.close()
                self.sock = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    @staticmethod
    def _roundtrip(s: socket.socket, req: bytes) -> tuple[int, bytes]:
        s.sendall(req)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError("closed by upstream")
            data += chunk
            end = data.find(b"\r\n\r\n")
            if end >= 0:
                break
        head = data[:end].lower()
        status = int(head[9:12])
        i = head.find(b"\r\ncontent-length:")
        if i < 0:
            raise UpstreamError("no content-length")
        j = head.find(b"\r\n", i + 2)
        length = int(head[i + 17: j if j >= 0 else len(head)])
        body = data[end + 4:]
        while len(body) < length:
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError("closed mid-body")
            body += chunk
        return status, body


class Floor:
    """A persistent raw socket per thread, the request built once."""

    json_step = False

    def __init__(self, ok_url: str, fail_url: str) -> None:
        self.ok_url, self.fail_url = ok_url, fail_url
        self.local = threading.local()

    def _conns(self) -> tuple[_RawConn, _RawConn]:
        c = getattr(self.local, "conns", None)
        if c is None:
            c = self.local.conns = (_RawConn(self.ok_url), _RawConn(self.fail_url))
        return c

    def _send(self, conn: _RawConn) -> tuple[int, Any]:
        if self.json_step:
            status, body = conn.roundtrip(conn.request(json.dumps(BODY).encode()))
            return status, json.loads(body)
        return conn.roundtrip(conn.fixed)

    def call(self) -> Any:
        ok, _ = self._conns()
        status, body = self._send(ok)
        if status != 200:
            raise UpstreamError(f"status {status}")
        return body

    def failover(self) -> Any:
        ok, fail = self._conns()
        status, body = self._send(fail)
        if status == 200:
            return body
        if status not in (408, 429) and status < 500:
            raise UpstreamError(f"hard status {status}")
        status, body = self._send(ok)
        if status != 200:
            raise UpstreamError(f"status {status}")
        return body


class FloorJson(Floor):
    """The floor plus json.dumps of the request and json.loads of the response."""

    json_step = True


# --------------------------------------------------------------------- httpx

class Httpx:
    """A persistent httpx.Client (HTTP/1.1), failover written by hand."""

    def __init__(self, ok_url: str, fail_url: str) -> None:
        import httpx

        self.client = httpx.Client(
            timeout=TIMEOUT_S,
            limits=httpx.Limits(max_connections=256, max_keepalive_connections=256),
            headers={"Authorization": f"Bearer {API_KEY}"},
        )
        self.ok = ok_url + "/chat/completions"
        self.fail = fail_url + "/chat/completions"

    def call(self) -> Any:
        r = self.client.post(self.ok, json=BODY)
        if r.status_code != 200:
            raise UpstreamError(f"status {r.status_code}")
        return r.json()

    def failover(self) -> Any:
        r = self.client.post(self.fail, json=BODY)
        if r.status_code not in (408, 429) and r.status_code < 500:
            return r.json()
        r = self.client.post(self.ok, json=BODY)
        if r.status_code != 200:
            raise UpstreamError(f"status {r.status_code}")
        return r.json()

    def close(self) -> None:
        self.client.close()


# ------------------------------------------------------------------ LiteLLM

def litellm_router(deployments: dict[str, str], **kw: Any) -> Any:
    """LiteLLM's Router, one ``openai/`` deployment per name, side effects off
    where it has a switch: ``num_retries=0`` and ``max_retries=0`` (LiteLLM's
    and the SDK's retries: the SDK would retry a 429 twice with backoff),
    ``disable_cooldowns=True`` (a 429 would put the deployment in cooldown
    and later calls would skip it), ``retry_after=0``."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm
    from litellm import Router

    litellm.suppress_debug_info = True
    litellm.telemetry = False
    litellm.set_verbose = False
    model_list = [{"model_name": name, "litellm_params": {
        "model": "openai/" + BODY["model"], "api_base": url, "api_key": API_KEY,
        "max_retries": 0, "timeout": TIMEOUT_S}} for name, url in deployments.items()]
    return Router(model_list=model_list, num_retries=0, retry_after=0, disable_cooldowns=True,
                  timeout=TIMEOUT_S, **kw)


class LiteLLM:
    """LiteLLM's Router pointed at nginx; failover is a fallback model group."""

    def __init__(self, ok_url: str, fail_url: str) -> None:
        self.router = litellm_router({"ok": ok_url, "fail": fail_url},
                                     fallbacks=[{"fail": ["ok"]}])
        self.messages = BODY["messages"]

    def call(self) -> Any:
        return self.router.completion(model="ok", messages=self.messages)

    def failover(self) -> Any:
        return self.router.completion(model="fail", messages=self.messages)


# ------------------------------------------- f3dx_router and f3dx 0.0.19

class F3dxRouter:
    """This repo's router, ``Router.chat_completions``."""

    @staticmethod
    def router_class() -> Any:
        from f3dx_router import Router

        return Router

    def __init__(self, ok_url: str, fail_url: str) -> None:
        Router = self.router_class()
        self.router = Router([provider("ok", ok_url)], **self.router_kwargs())
        # Health off: with it on, five 429s eject "fail" and later calls
        # skip it, which no longer measures a failover.
        self.fo_router = Router([provider("fail", fail_url), provider("ok", ok_url)],
                                **{**self.router_kwargs(), **self.failover_kwargs})

    failover_kwargs: dict[str, Any] = {"health": False}

    @staticmethod
    def router_kwargs() -> dict[str, Any]:
        return {}

    def call(self) -> Any:
        return self.router.chat_completions(BODY)

    def failover(self) -> Any:
        return self.fo_router.chat_completions(BODY)


class F3dxOld(F3dxRouter):
    """The earlier router (f3dx==0.0.19, ``from f3dx.router import Router``,
    the same provider keys and ``chat_completions``), driven as f3dx_router is."""

    failover_kwargs: dict[str, Any] = {}  # no health tracking to turn off

    @staticmethod
    def router_class() -> Any:
        from f3dx.router import Router

        return Router


class F3dxRouterRoute(F3dxRouter):
    """The same router through ``Router.route`` (RouteResult with attempts)."""

    def call(self) -> Any:
        return self.router.route(BODY).response

    def failover(self) -> Any:
        return self.fo_router.route(BODY).response


class F3dxRouterNoHealth(F3dxRouter):
    """f3dx_router with health tracking off: only the health throughput
    measure runs it (health on takes one mutex per router on every outcome)."""

    @staticmethod
    def router_kwargs() -> dict[str, Any]:
        return {"health": False}


HEALTH_OFF = "f3dx_router.nohealth"

FACTORIES = {
    "floor": Floor,
    "floor+json": FloorJson,
    "httpx": Httpx,
    "f3dx-0.0.19": F3dxOld,
    "litellm": LiteLLM,
    "f3dx_router": F3dxRouter,
    "f3dx_router.route": F3dxRouterRoute,
    HEALTH_OFF: F3dxRouterNoHealth,
}


def check_response(name: str, resp: Any) -> None:
    """The response really is the upstream's chat completion."""
    if name == "floor":
        ok = b"chatcmpl-bench" in resp
    elif isinstance(resp, dict):
        ok = resp["choices"][0]["message"]["content"].startswith("Hello from the benchmark")
    else:  # LiteLLM's ModelResponse, the openai SDK's ChatCompletion
        ok = resp.choices[0].message.content.startswith("Hello from the benchmark")
    if not ok:
        raise UpstreamError(f"unexpected response: {resp!r:.200}")
