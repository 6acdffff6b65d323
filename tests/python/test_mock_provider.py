"""Tests of tests/mock_provider.py itself, with stdlib clients only."""

from __future__ import annotations

import http.client
import json
import signal
import socket
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import pytest

import mock_provider
from mock_provider import MockProviders

MOCK_PATH = str(Path(mock_provider.__file__).resolve())
CHAT = "/v1/chat/completions"
BODY = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}


def vector(**mocks: dict) -> dict:
    return {"name": "t", "mocks": mocks}


def script(*responses: dict) -> dict:
    return {"responses": list(responses)}


def connect(mocks: MockProviders, name: str = "a", timeout: float = 5.0):
    """An HTTPConnection to a mock, as a context manager that closes it."""
    return closing(http.client.HTTPConnection("127.0.0.1", mocks.ports[name], timeout=timeout))


def post(conn: http.client.HTTPConnection, body: object = BODY, headers: dict | None = None):
    conn.request(
        "POST",
        CHAT,
        body=json.dumps(body),
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    return conn.getresponse()


def poll(predicate, timeout: float = 2.0, step: float = 0.02):
    """predicate() until it returns something truthy, for at most timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(step)


def raw_request(body: bytes = b'{"x":1}', extra: str = "") -> bytes:
    return (
        f"POST {CHAT} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n{extra}\r\n"
    ).encode() + body


def test_status_headers_json_and_record():
    v = vector(a=script({"status": 201, "headers": {"x-request-id": "r1"}, "json": {"ok": True}}))
    with MockProviders(v) as mocks, connect(mocks) as conn:
        before = time.monotonic()
        resp = post(conn, headers={"Authorization": "Bearer k", "X-Mixed-Case": "v"})
        assert resp.status == 201
        assert resp.getheader("x-request-id") == "r1"
        assert resp.getheader("content-type") == "application/json"
        data = resp.read()
        assert int(resp.getheader("content-length")) == len(data)
        assert json.loads(data) == {"ok": True}
        after = time.monotonic()

        log = mocks.log()
        assert set(log) == {"a"}
        (rec,) = log["a"]
        assert rec["index"] == 0
        assert rec["method"] == "POST"
        assert rec["path"] == CHAT
        assert rec["headers"]["authorization"] == "Bearer k"
        assert rec["headers"]["x-mixed-case"] == "v"
        assert all(name == name.lower() for name in rec["headers"])
        assert json.loads(rec["body"]) == BODY
        assert rec["json"] == BODY
        # time.monotonic() is one clock for every process on the host
        assert before <= rec["received_at"] <= after
        assert rec["disconnected_early"] is False
        assert rec["disconnected_at"] is None
        assert rec["exhausted"] is False


def test_text_body_default_and_custom_content_type():
    v = vector(
        a=script(
            {"status": 429, "headers": {"retry-after": "1"}, "text": "slow down"},
            {"status": 200, "headers": {"Content-Type": "application/json"}, "text": "{not json"},
            {"status": 204},
        )
    )
    with MockProviders(v) as mocks, connect(mocks) as conn:
        resp = post(conn)
        assert resp.status == 429
        assert resp.getheader("retry-after") == "1"
        assert resp.getheader("content-type").startswith("text/plain")
        assert resp.read() == b"slow down"

        resp = post(conn)
        assert resp.status == 200
        assert resp.getheader("content-type") == "application/json"
        assert resp.read() == b"{not json"

        resp = post(conn)
        assert resp.status == 204
        assert resp.read() == b""

        conn.request("GET", "/v1/models")  # a body-less request is recorded too
        resp = conn.getresponse()
        assert resp.status == 500 and resp.read() == b"mock script exhausted"
        rec = mocks.log()["a"][3]
        assert (rec["method"], rec["path"], rec["body"], rec["json"]) == ("GET", "/v1/models", "", None)


def test_delay():
    v = vector(a=script({"delay_ms": 200, "json": {"slow": True}}, {"json": {"fast": True}}))
    with MockProviders(v) as mocks, connect(mocks) as conn:
        t0 = time.perf_counter()
        resp = post(conn)
        assert json.loads(resp.read()) == {"slow": True}
        assert time.perf_counter() - t0 >= 0.195

        t0 = time.perf_counter()
        resp = post(conn)
        assert json.loads(resp.read()) == {"fast": True}
        assert time.perf_counter() - t0 < 0.15


def test_reset_is_a_connection_error():
    v = vector(a=script({"delay_ms": 100, "fault": "reset"}))
    with MockProviders(v) as mocks, connect(mocks) as conn:
        t0 = time.perf_counter()
        with pytest.raises(ConnectionResetError):
            post(conn)
        assert time.perf_counter() - t0 >= 0.095
        (rec,) = mocks.log()["a"]
        assert rec["disconnected_early"] is False


def test_truncate_is_an_incomplete_read():
    payload = {"id": "x", "choices": [{"message": {"content": "y" * 100}}]}
    full = json.dumps(payload, separators=(",", ":")).encode()
    v = vector(a=script({"json": payload, "fault": "truncate"}))
    with MockProviders(v) as mocks, connect(mocks) as conn:
        resp = post(conn)
        assert resp.status == 200
        assert int(resp.getheader("content-length")) == len(full)
        with pytest.raises(http.client.IncompleteRead) as info:
            resp.read()
        assert info.value.partial == full[: len(full) // 2]


def test_stall_then_client_close_is_recorded_as_disconnected_early():
    v = vector(a=script({"fault": "stall"}))
    with MockProviders(v) as mocks:
        with socket.create_connection(("127.0.0.1", mocks.ports["a"]), timeout=5) as sock:
            sock.sendall(raw_request())
            assert poll(lambda: mocks.log()["a"]), "the mock never logged the request"
            sock.settimeout(0.2)
            with pytest.raises(socket.timeout):  # stalled: no answer at all
                sock.recv(1)
            assert mocks.log()["a"][0]["disconnected_early"] is False
            closed_at = time.monotonic()
        recorded = poll(lambda: mocks.log()["a"][0]["disconnected_early"])
        assert recorded is True
        rec = mocks.log()["a"][0]
        assert closed_at <= rec["disconnected_at"] <= closed_at + 2


def test_client_close_during_delay_is_recorded_and_nothing_is_sent():
    v = vector(a=script({"delay_ms": 10_000, "json": {"late": True}}, {"json": {"next": True}}))
    with MockProviders(v) as mocks:
        with socket.create_connection(("127.0.0.1", mocks.ports["a"]), timeout=5) as sock:
            sock.sendall(raw_request())
            assert poll(lambda: mocks.log()["a"])
        t0 = time.monotonic()
        assert poll(lambda: mocks.log()["a"][0]["disconnected_early"]) is True
        assert time.monotonic() - t0 < 2
        # the script moved on; the next request gets the next entry at once
        with connect(mocks) as conn:
            assert json.loads(post(conn).read()) == {"next": True}
        assert [r["disconnected_early"] for r in mocks.log()["a"]] == [True, False]


def test_refuse_is_connection_refused():
    v = vector(a=script({"json": {}}), b={"refuse": True})
    with MockProviders(v) as mocks:
        assert set(mocks.ports) == {"a", "b"}
        assert mocks.ports["b"] not in (mocks.ports["a"], mocks.control_port)
        assert mocks.base_url("b") == f"http://127.0.0.1:{mocks.ports['b']}/v1"
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", mocks.ports["b"]), timeout=5).close()
        assert mocks.log() == {"a": [], "b": []}


def test_exhausted_script():
    v = vector(a=script({"json": {"n": 1}}), b=script())
    with MockProviders(v) as mocks, connect(mocks) as conn:
        assert post(conn).read() == b'{"n":1}'
        resp = post(conn)
        assert resp.status == 500
        assert resp.read() == b"mock script exhausted"
        with connect(mocks, "b") as conn_b:
            resp = post(conn_b)
            assert (resp.status, resp.read()) == (500, b"mock script exhausted")
        log = mocks.log()
        assert [r["exhausted"] for r in log["a"]] == [False, True]
        assert [r["exhausted"] for r in log["b"]] == [True]


def test_keep_alive_two_requests_on_one_connection():
    v = vector(a=script({"json": {"n": 1}}, {"delay_ms": 50, "json": {"n": 2}}))
    with MockProviders(v) as mocks, connect(mocks) as conn:
        assert json.loads(post(conn).read()) == {"n": 1}
        first_sock = conn.sock
        assert first_sock is not None
        local = first_sock.getsockname()
        assert json.loads(post(conn).read()) == {"n": 2}
        assert conn.sock is first_sock and conn.sock.getsockname() == local
        assert [r["index"] for r in mocks.log()["a"]] == [0, 1]


def test_connection_close_is_honoured():
    v = vector(a=script({"json": {"n": 1}}, {"json": {"n": 2}}))
    with MockProviders(v) as mocks:
        with socket.create_connection(("127.0.0.1", mocks.ports["a"]), timeout=5) as sock:
            sock.sendall(raw_request(extra="Connection: close\r\n"))
            received = b""
            while chunk := sock.recv(65536):  # ends with the server's FIN
                received += chunk
        head, _, body = received.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 ")
        assert b"\r\nconnection: close" in head.lower()
        assert body == b'{"n":1}'


def test_pipelined_and_chunked_requests():
    v = vector(a=script({"json": {"n": 1}}, {"json": {"n": 2}}))
    chunked = (
        f"POST {CHAT} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        "4\r\n{\"x\"\r\n3\r\n:1}\r\n0\r\n\r\n"
    ).encode()
    with MockProviders(v) as mocks:
        with socket.create_connection(("127.0.0.1", mocks.ports["a"]), timeout=5) as sock:
            sock.sendall(raw_request() + chunked)
            received = b""
            deadline = time.monotonic() + 5
            while received.count(b"HTTP/1.1 200") < 2 or not received.endswith(b'{"n":2}'):
                assert time.monotonic() < deadline
                chunk = sock.recv(65536)
                assert chunk
                received += chunk
        assert [r["json"] for r in mocks.log()["a"]] == [{"x": 1}, {"x": 1}]


def test_script_counts_across_connections():
    v = vector(a=script({"json": {"n": 1}}, {"json": {"n": 2}}))
    with MockProviders(v) as mocks:
        with connect(mocks) as c1, connect(mocks) as c2:
            assert json.loads(post(c1).read()) == {"n": 1}
            assert json.loads(post(c2).read()) == {"n": 2}


def test_reset_rewinds_scripts_and_clears_logs():
    v = vector(a=script({"json": {"n": 1}}))
    with MockProviders(v) as mocks, connect(mocks) as conn:
        assert json.loads(post(conn).read()) == {"n": 1}
        assert len(mocks.log()["a"]) == 1
        mocks.reset()
        assert mocks.log() == {"a": []}
        assert json.loads(post(conn).read()) == {"n": 1}
        assert mocks.log()["a"][0]["index"] == 0


def test_loop_replays_the_script():
    v = vector(a=script({"json": {"n": 1}}, {"status": 503, "text": "busy"}))
    with MockProviders(v, loop=True) as mocks, connect(mocks) as conn:
        statuses = []
        for _ in range(5):
            resp = post(conn)
            resp.read()
            statuses.append(resp.status)
        assert statuses == [200, 503, 200, 503, 200]
        log = mocks.log()["a"]
        assert [r["index"] for r in log] == [0, 1, 2, 3, 4]
        assert not any(r["exhausted"] for r in log)


def test_control_server_unknown_path_is_404():
    with MockProviders(vector(a=script())) as mocks:
        with closing(http.client.HTTPConnection("127.0.0.1", mocks.control_port, timeout=5)) as conn:
            conn.request("GET", "/nope")
            resp = conn.getresponse()
            assert resp.status == 404
            resp.read()


def test_cli_inline_json_prints_one_line_and_stops_on_stdin_eof():
    v = vector(a=script({"json": {"n": 1}}), b={"refuse": True})
    proc = subprocess.Popen(
        [sys.executable, MOCK_PATH, "--json", json.dumps(v)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        line = proc.stdout.readline()
        info = json.loads(line)
        assert set(info) == {"control", "providers"}
        assert set(info["providers"]) == {"a", "b"}
        port = info["providers"]["a"]
        with closing(http.client.HTTPConnection("127.0.0.1", port, timeout=5)) as conn:
            assert json.loads(post(conn).read()) == {"n": 1}
        proc.stdin.close()
        assert proc.wait(timeout=5) == 0
        assert proc.stdout.read() == b""  # exactly one line, ever
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
        proc.stdin.close()
        proc.stdout.close()


def test_cli_stops_on_sigterm_with_a_stalled_connection_open():
    v = vector(a=script({"fault": "stall"}))
    proc = subprocess.Popen(
        [sys.executable, MOCK_PATH, "--json", json.dumps(v)],
        stdin=subprocess.DEVNULL,  # not a pipe: stdin is not watched
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        info = json.loads(proc.stdout.readline())
        with socket.create_connection(("127.0.0.1", info["providers"]["a"]), timeout=5) as sock:
            sock.sendall(raw_request())
            time.sleep(0.1)
            assert proc.poll() is None  # /dev/null on stdin did not stop it
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=5) == 0
            sock.settimeout(5)
            assert sock.recv(1) == b""  # the stalled connection was closed
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
        proc.stdout.close()


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"mocks": {"a": {"responses": [{"stauts": 200}]}}}, "unknown keys"),
        ({"mocks": {"a": {"responses": [{"fault": "explode"}]}}}, "fault"),
        ({"mocks": {"a": {"refuse": True, "responses": []}}}, "exclude"),
        ({"config": {}}, "mocks"),
    ],
)
def test_cli_rejects_a_bad_vector(bad, message):
    done = subprocess.run(
        [sys.executable, MOCK_PATH, "--json", json.dumps(bad)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=10,
    )
    assert done.returncode == 2
    assert done.stdout == b""
    assert message in done.stderr.decode()


def test_mock_providers_reports_a_failed_start():
    with pytest.raises(RuntimeError, match="exited with status 2"):
        MockProviders({"mocks": {"a": {"responses": "nope"}}})


# --------------------------------------------------------------------------
# the bench modes (bench/ and the README test use them)


def bench(**modes: dict) -> dict:
    return vector(**{name: {"bench": spec} for name, spec in modes.items()})


def status(conn: http.client.HTTPConnection) -> int:
    resp = post(conn)
    resp.read()
    return resp.status


def test_flaky_mode_answers_503_with_the_share_set_at_run_time_and_counts():
    with MockProviders(bench(a={"mode": "flaky", "delay_ms": 0})) as mocks, connect(mocks) as conn:
        assert [status(conn) for _ in range(5)] == [200] * 5
        mocks.set_fail("a", 1.0)
        assert [status(conn) for _ in range(2)] == [503] * 2
        last = post(conn)
        assert last.status == 503 and last.getheader("retry-after") is None
        assert json.loads(last.read())["error"]["code"] == "overloaded"
        stats = mocks.stats()
        assert stats["providers"]["a"] == {"requests": 8, "failed": 3, "slow": 0}
        assert stats["requests"] == 8 and "a" not in mocks.log()  # counted, not logged


def test_tail_mode_delays_the_slow_share():
    spec = {"mode": "tail", "delay_ms": 0, "slow_ms": 300, "slow_frac": 1.0}
    with MockProviders(bench(a=spec)) as mocks, connect(mocks) as conn:
        t0 = time.monotonic()
        resp = post(conn)
        assert resp.status == 200 and time.monotonic() - t0 >= 0.29
        assert json.loads(resp.read()) == mock_provider.BENCH_COMPLETION
        assert mocks.stats()["slow"] == 1


def test_stream_mode_sends_the_bench_stream_on_its_schedule():
    with MockProviders(bench(s={"mode": "stream", "delay_ms": 20, "chunks": 10})) as mocks, \
            connect(mocks, "s") as conn:
        t0 = time.monotonic()
        resp = post(conn, {**BODY, "stream": True})
        body = resp.read()
        assert time.monotonic() - t0 >= 10 * 0.02 - 0.01  # chunk k at k x 20 ms
        assert resp.getheader("content-type") == "text/event-stream"
        assert body == b"".join(mock_provider.bench_sse_events(10))


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_chat_mode_answers_whole_streamed_or_json_by_the_request(kind):
    with MockProviders(bench(c={"mode": "chat", "kind": kind})) as mocks, \
            connect(mocks, "c") as conn:
        def text(answer: dict) -> str:
            return (answer["choices"][0]["message"]["content"] if kind == "openai"
                    else answer["content"][0]["text"])

        assert text(json.loads(post(conn).read())) == mock_provider.CHAT_TEXT
        asked = json.loads(post(conn, {**BODY, "response_format": {"type": "json_object"}}).read())
        assert json.loads(text(asked)) == {"name": "Ada Lovelace", "age": 36}
        streamed = post(conn, {**BODY, "stream": True})
        assert streamed.getheader("content-type") == "text/event-stream"
        events = streamed.read().decode()
        assert ("data: [DONE]" in events) == (kind == "openai")
        assert ("event: message_stop" in events) == (kind == "anthropic")


@pytest.mark.parametrize("spec", [
    {"mode": "nope"},
    {"mode": "tail", "slow_frac": 2},
    {"mode": "stream", "chunks": 0},
    {"mode": "chat", "kind": "gemini"},
    {"mode": "flaky", "delay": 5},
])
def test_a_bad_bench_spec_is_refused_up_front(spec):
    with pytest.raises(mock_provider.VectorError):
        mock_provider.validate_mocks({"a": {"bench": spec}})
