"""asyncio: `achat_completions`, `aroute` and `AsyncChatStream`.

Calls run on the router's background runtime (not a thread per call); their
results come back to the awaiting event loop. Cancelling the awaiting task
cancels every leg (the mock sees the disconnect). Each test runs its own
loop with asyncio.run, as an application would.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from f3dx_router import (
    AllProvidersFailed,
    AsyncChatStream,
    ChatStream,
    HardFailure,
    InvalidRequest,
    RouteResult,
    Router,
    StreamInterrupted,
)
from mock_provider import MockProviders

T = TypeVar("T")

KEY = "sk-async-test-0123456789abcdef"
REQUEST: dict[str, Any] = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
STREAM_REQUEST: dict[str, Any] = {**REQUEST, "stream": True}
POOL_IDLE_PER_HOST = 256  # f3dx_router_native::BACKGROUND_POOL_IDLE_PER_HOST, the async calls' pool


def ok(text: str = "hello", **extra: Any) -> dict[str, Any]:
    return {
        "status": 200,
        "json": {
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
        },
        **extra,
    }


def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"id": "chatcmpl-s", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


ROLE = {"data": chunk({"role": "assistant", "content": ""})}
DONE = {"data": "[DONE]"}


def text(t: str, **extra: Any) -> dict[str, Any]:
    return {"data": chunk({"content": t}), **extra}


FULL = {"events": [ROLE, text("Hel"), text("lo"), {"data": chunk({}, "stop")}, DONE]}


def provider(name: str, url: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "kind": "openai", "base_url": url, "api_key": KEY, "timeout_ms": 10000, **extra}


def run(coro: Awaitable[T]) -> T:
    async def main() -> T:
        return await coro
    return asyncio.run(main())


def contents(chunks: list[dict[str, Any]]) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


def wait_until(check: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.005)
    return check()


def open_connections_to(port: int) -> int:
    """Established TCP connections of this process to 127.0.0.1:port."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            remote_port = int(fields[2].split(":")[1], 16)
            if remote_port == port and fields[3] == "01" and fields[9] in inodes:
                count += 1
    return count


# ---------------------------------------------------------------- whole answers


def test_achat_completions_and_aroute_answer_like_their_sync_twins() -> None:
    with MockProviders({"mocks": {"a": {"responses": [{"status": 503, "json": {"error": {"message": "busy"}}}, ok("one"), ok("two")]},
                                  }}) as m:
        r = Router([provider("a", m.base_url("a")), provider("b", m.base_url("a"))])

        async def main() -> tuple[Any, RouteResult]:
            first = await r.achat_completions(REQUEST)
            second = await r.aroute(REQUEST)
            return first, second

        first, second = run(main())
    assert first["choices"][0]["message"]["content"] == "one"
    assert isinstance(second, RouteResult)
    assert second.response["choices"][0]["message"]["content"] == "two"
    assert second.provider == "a" and [a.outcome for a in second.attempts] == ["success"]
    assert second.latency_ms > 0


def test_async_errors_are_the_router_errors() -> None:
    mocks = {
        "hard": {"responses": [{"status": 401, "json": {"error": {"message": f"bad key {KEY}"}}}]},
        "soft": {"responses": [{"status": 503, "json": {"error": {"message": "down"}}}]},
    }
    with MockProviders({"mocks": mocks}) as m:
        hard = Router([provider("hard", m.base_url("hard"))])
        soft = Router([provider("soft", m.base_url("soft"))])

        async def main() -> list[BaseException]:
            errors: list[BaseException] = []
            for call in (
                lambda: hard.achat_completions(REQUEST),
                lambda: soft.aroute(REQUEST),
                lambda: hard.achat_completions({"messages": "not a list"}),
            ):
                try:
                    await call()
                except Exception as e:  # noqa: BLE001 - collected for the asserts
                    errors.append(e)
            return errors

        errors = run(main())
    assert [type(e) for e in errors] == [HardFailure, AllProvidersFailed, InvalidRequest]
    hard_error = errors[0]
    assert isinstance(hard_error, HardFailure) and hard_error.status == 401
    for e in errors:
        assert KEY not in str(e) and KEY not in repr(e)
        assert KEY not in getattr(e, "body", "")


def test_aroute_refuses_a_streamed_request() -> None:
    r = Router([provider("a", "http://127.0.0.1:9/v1")])

    async def main() -> None:
        await r.aroute(STREAM_REQUEST)

    with pytest.raises(InvalidRequest, match="achat_completions"):
        run(main())


def test_the_async_twins_are_coroutine_functions() -> None:
    import inspect

    r = Router([provider("a", "http://127.0.0.1:9/v1")])
    assert inspect.iscoroutinefunction(r.achat_completions) and inspect.iscoroutinefunction(r.aroute)
    # The native futures need a running loop.
    with pytest.raises(RuntimeError, match="no running event loop"):
        r._achat_completions(REQUEST)


def test_a_thousand_concurrent_calls_on_one_loop() -> None:
    # One scripted answer, replayed: each request waits 50 ms.
    with MockProviders({"mocks": {"a": {"responses": [ok(delay_ms=50)]}}}, loop=True) as m:
        r = Router([provider("a", m.base_url("a"))])
        threads_before = threading.active_count()

        async def main() -> tuple[list[Any], float]:
            await r.achat_completions(REQUEST)  # the runtime and pool exist
            start = time.monotonic()
            answers = await asyncio.gather(*(r.achat_completions(REQUEST) for _ in range(1000)))
            return answers, time.monotonic() - start

        answers, wall = run(main())
        assert len(answers) == 1000
        assert all(a["choices"][0]["message"]["content"] == "hello" for a in answers)
        # Sequentially this is 50 s; a thread per call would be 1000 threads.
        assert wall < 1.0, f"1000 concurrent 50 ms calls took {wall:.2f} s"
        assert threading.active_count() <= threads_before
        # The pool keeps at most its bound of idle connections.
        port = m.ports["a"]
        assert wait_until(lambda: open_connections_to(port) <= POOL_IDLE_PER_HOST), open_connections_to(port)
        assert r.stats()["providers"]["a"]["successes"] == 1001


# ---------------------------------------------------------------- cancellation


def test_cancelling_the_task_closes_every_leg() -> None:
    slow = {"responses": [ok(delay_ms=5000)]}
    with MockProviders({"mocks": {"a": slow, "b": slow}}) as m:
        r = Router([provider("a", m.base_url("a")), provider("b", m.base_url("b"))], policy="hedged", hedge_k=2)

        async def main() -> float:
            task = asyncio.create_task(r.achat_completions(REQUEST))
            # Both legs reached the mocks.
            for _ in range(500):
                log = m.log()
                if log["a"] and log["b"]:
                    break
                await asyncio.sleep(0.01)
            cancelled_at = time.monotonic()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            return cancelled_at

        cancelled_at = run(main())
        assert wait_until(lambda: all(m.log()[p][0]["disconnected_early"] for p in "ab"), timeout=2.0)
        log = m.log()
    for p in "ab":
        gone = log[p][0]["disconnected_at"] - cancelled_at
        # The bound is 100 ms; measured ~1-3 ms here.
        assert gone < 0.1, f"{p}: upstream saw the disconnect {gone * 1000:.0f} ms after the cancel"


def test_wait_for_and_timeout_cancel_the_call() -> None:
    with MockProviders({"mocks": {"a": {"responses": [ok(delay_ms=5000), ok(delay_ms=5000)]}}}) as m:
        r = Router([provider("a", m.base_url("a"))])

        async def main() -> None:
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(r.achat_completions(REQUEST), 0.2)
            if sys.version_info >= (3, 11):
                with pytest.raises(TimeoutError):
                    async with asyncio.timeout(0.2):
                        await r.aroute(REQUEST)

        run(main())
        n = 2 if sys.version_info >= (3, 11) else 1
        assert wait_until(lambda: sum(rec["disconnected_early"] for rec in m.log()["a"]) == n, timeout=2.0)


def test_no_noise_at_interpreter_exit() -> None:
    """A call left running when the loop ends, and one finishing after it
    closed: nothing is printed, the process exits at once."""
    with MockProviders({"mocks": {"a": {"responses": [ok(delay_ms=300)]}}}, loop=True) as m:
        script = textwrap.dedent(f"""
            import asyncio, gc
            from f3dx_router import Router
            r = Router([{{"name": "a", "kind": "openai", "base_url": {m.base_url("a")!r}, "api_key": "k"}}])
            REQ = {{"model": "m", "messages": [{{"role": "user", "content": "hi"}}]}}
            async def main():
                await r.achat_completions(REQ)
                # Left pending: asyncio.run cancels it when main returns.
                asyncio.ensure_future(r.achat_completions(REQ))
                # The native future, awaited by no one: its answer arrives
                # after the loop has closed.
                fut = r._achat_completions(REQ)
                await asyncio.sleep(0.05)
            asyncio.run(main())
            import time; time.sleep(0.5)
            gc.collect()
            print("done")
        """)
        proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "done"
    assert proc.stderr == "", proc.stderr


# ---------------------------------------------------------------- streaming


def test_async_streaming() -> None:
    with MockProviders({"mocks": {"a": {"responses": [{"status": 503, "json": {"error": {"message": "x"}}}]},
                                  "b": {"responses": [FULL, FULL]}}}) as m:
        r = Router([provider("a", m.base_url("a")), provider("b", m.base_url("b"))])

        async def main() -> tuple[list[Any], list[bytes], AsyncChatStream]:
            stream = await r.achat_completions(STREAM_REQUEST)
            assert isinstance(stream, AsyncChatStream) and not isinstance(stream, ChatStream)
            assert stream.provider == "b"
            assert [a.outcome for a in stream.attempts] == ["soft", "success"]
            chunks = [c async for c in stream]
            assert stream.closed
            async with await r.achat_completions(STREAM_REQUEST) as s2:
                lines = [line async for line in s2.aiter_sse()]
            return chunks, lines, stream

        chunks, lines, stream = run(main())
    assert contents(chunks) == "Hello"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert lines[-1] == b"data: [DONE]\n\n" and all(line.startswith(b"data: {") for line in lines[:-1])
    assert len(lines) == len(chunks) + 1
    assert stream.attempts[-1].ended_ms is not None


def test_async_stream_interrupted_after_commit() -> None:
    broken = {"events": [ROLE, text("Hel"), {"fault": "reset"}]}
    with MockProviders({"mocks": {"a": {"responses": [broken]}, "b": {"responses": [FULL]}}}) as m:
        r = Router([provider("a", m.base_url("a")), provider("b", m.base_url("b"))])

        async def main() -> list[Any]:
            got: list[Any] = []
            stream = await r.achat_completions(STREAM_REQUEST)
            with pytest.raises(StreamInterrupted) as info:
                async for c in stream:
                    got.append(c)
            assert info.value.provider == "a" and KEY not in str(info.value)
            # Ended: iterating again gives nothing.
            assert [c async for c in stream] == []
            return got

        got = run(main())
        assert m.log()["b"] == []  # not continued elsewhere after the commit
    assert contents(got) == "Hel"


def test_aclose_and_a_cancelled_reader_close_the_upstream() -> None:
    endless = {"events": [ROLE, text("a"), {"fault": "stall", "delay_ms": 0}]}
    with MockProviders({"mocks": {"a": {"responses": [endless, endless]}}}) as m:
        r = Router([provider("a", m.base_url("a"), stream_idle_timeout_ms=30000)])

        async def main() -> None:
            s = await r.achat_completions(STREAM_REQUEST)
            await s.__anext__()
            await s.__anext__()
            await s.aclose()
            assert s.closed
            assert [c async for c in s] == []

            s2 = await r.achat_completions(STREAM_REQUEST)
            await s2.__anext__()
            await s2.__anext__()
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(s2.__anext__(), 0.2)
            assert s2.closed

        run(main())
        assert wait_until(lambda: [rec["disconnected_early"] for rec in m.log()["a"]] == [True, True], timeout=2.0)


def test_aclose_from_another_task_fails_the_waiting_reader() -> None:
    stalled = {"events": [ROLE, text("a"), {"fault": "stall", "delay_ms": 0}]}
    with MockProviders({"mocks": {"a": {"responses": [stalled]}}}) as m:
        r = Router([provider("a", m.base_url("a"), stream_idle_timeout_ms=30000)])

        async def main() -> tuple[BaseException | None, float]:
            s = await r.achat_completions(STREAM_REQUEST)
            await s.__anext__()
            await s.__anext__()
            reader = asyncio.ensure_future(s.__anext__())
            # The reader's future is waiting (the upstream stalls).
            await asyncio.sleep(0)
            assert not reader.done()
            closed_at = time.monotonic()
            await s.aclose()
            error = None
            try:
                await asyncio.wait_for(reader, 5)
            except StreamInterrupted as e:
                error = e
            return error, time.monotonic() - closed_at

        error, took = run(main())
        assert isinstance(error, StreamInterrupted) and "aclose()" in str(error), error
        assert error.provider == "a"
        assert took < 1.0, took
        assert wait_until(lambda: [rec["disconnected_early"] for rec in m.log()["a"]] == [True], timeout=2.0)


# ---------------------------------------------------------------- threads and loops


def test_sync_threads_and_event_loops_share_one_router() -> None:
    with MockProviders({"mocks": {"a": {"responses": [ok(delay_ms=2)]}}}, loop=True) as m:
        r = Router([provider("a", m.base_url("a"))])
        errors: list[BaseException] = []

        def sync_worker() -> None:
            try:
                for _ in range(20):
                    assert r.chat_completions(REQUEST)["choices"][0]["message"]["content"] == "hello"
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)

        def async_worker() -> None:
            async def main() -> None:
                answers = await asyncio.gather(*(r.achat_completions(REQUEST) for _ in range(20)))
                assert len(answers) == 20
            try:
                asyncio.run(main())
                asyncio.run(main())  # a second loop on the same thread
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)

        threads = [threading.Thread(target=f) for f in (sync_worker, sync_worker, async_worker, async_worker)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not errors, errors
        # Health is one record for every caller: 2 x 20 sync + 2 x 2 x 20 async.
        assert r.stats()["providers"]["a"]["successes"] == 120


def test_uvloop() -> None:
    uvloop = pytest.importorskip("uvloop")
    with MockProviders({"mocks": {"a": {"responses": [ok(), FULL, ok(delay_ms=5000)]}}}) as m:
        r = Router([provider("a", m.base_url("a"))])

        async def main() -> None:
            assert (await r.achat_completions(REQUEST))["choices"][0]["message"]["content"] == "hello"
            stream = await r.achat_completions(STREAM_REQUEST)
            assert contents([c async for c in stream]) == "Hello"
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(r.achat_completions(REQUEST), 0.2)

        uvloop.run(main())
        assert wait_until(lambda: m.log()["a"][2]["disconnected_early"], timeout=2.0)


def unix_sockets() -> int:
    """AF_UNIX sockets this process holds (the bridges' socket pairs among them)."""
    unix = {line.split()[6] for line in Path("/proc/net/unix").read_text().splitlines()[1:] if len(line.split()) > 6}
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in unix:
            count += 1
    return count


def test_loops_that_take_turns_on_a_thread_keep_their_bridge() -> None:
    with MockProviders({"mocks": {"a": {"responses": [ok()]}}}, loop=True) as m:
        r = Router([provider("a", m.base_url("a"))])
        loops = [asyncio.new_event_loop(), asyncio.new_event_loop()]
        try:
            for lp in loops:
                lp.run_until_complete(r.achat_completions(REQUEST))
            before = unix_sockets()
            for _ in range(10):
                for lp in loops:
                    answer = lp.run_until_complete(r.achat_completions(REQUEST))
                    assert answer["choices"][0]["message"]["content"] == "hello"
            # Each loop's first call made its socket pair; taking turns makes no more.
            assert unix_sockets() == before
        finally:
            for lp in loops:
                lp.close()
        # Closed and gone: the next loop's first call forgets their bridges.
        del loops
        import gc

        gc.collect()
        run(r.achat_completions(REQUEST))
        assert unix_sockets() <= before - 4 + 2
