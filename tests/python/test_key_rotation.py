"""Router.set_api_key (issue 25): a provider's key replaced for the calls
that start from then on, nothing the router learned lost, calls in flight
keeping (and hiding) the key they started with; bad input refused with a
ConfigError that never repeats a key. Against the mock providers and the
fault server (which echoes the key a request carried) on 127.0.0.1. The
shared vectors (tests/vectors/keys_*.json) show the same on every runner.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from f3dx_router import ConfigError, HardFailure, Router
from fault_server import FaultServer, directive
from mock_provider import MockProviders
from test_secret_scan import KEY1, KEY2, assert_clean, exception_surfaces, find_leak, log_surfaces

REQUEST = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
# Bounds of the waits on another thread's call (events, polled).
WAIT_S = 10.0
STEP_S = 0.005


def completion(text: str) -> dict[str, Any]:
    return {"id": "c", "object": "chat.completion", "created": 1, "model": "gpt-4o",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}


def provider(name: str, url: str, key: str = "test-key-0123456789") -> dict[str, Any]:
    return {"name": name, "kind": "openai", "base_url": url, "api_key": key, "timeout_ms": 5000}


def keys_sent(mocks: MockProviders, name: str) -> list[str]:
    return [r["headers"]["authorization"].removeprefix("Bearer ") for r in mocks.log()[name]]


def wait_for(what: str, done: Any) -> None:
    deadline = time.monotonic() + WAIT_S
    while not done():
        if time.monotonic() > deadline:
            pytest.fail(f"waited {WAIT_S} s for {what}")
        time.sleep(STEP_S)


# --------------------------------------------------------------------------
# what a new key changes, and what it does not


@pytest.fixture(autouse=True)
def _logs_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)


def test_a_call_in_flight_keeps_and_hides_its_key_the_next_call_sends_and_hides_the_new(
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    with FaultServer(["p1"]) as server:
        router = Router([provider("p1", server.base_url("p1"), KEY1)])
        # p1 holds the request, then answers 401 echoing the key it was sent.
        body = {**REQUEST, "messages": [{"role": "user", "content": directive(
            "inflight", p1={"fault": "echo", "status": 401, "form": "php", "delay_ms": 300})}]}
        errors: list[BaseException] = []

        def call() -> None:
            try:
                router.chat_completions(body)
            except HardFailure as e:
                errors.append(e)

        thread = threading.Thread(target=call)
        thread.start()
        wait_for("the request to reach p1", lambda: server.log("inflight"))
        router.set_api_key("p1", KEY2)
        thread.join(WAIT_S)
        assert not thread.is_alive()
        [old] = errors
        assert old.status == 401 and "<redacted>" in str(old)
        # The next call sends the new key, echoed back as well.
        body["messages"][0]["content"] = directive("after", p1={"fault": "echo", "status": 401, "form": "unicode"})
        with pytest.raises(HardFailure) as new:
            router.chat_completions(body)
        # Redacted (an echo of a key the call's search missed would leak:
        # assert_clean looks for both keys everywhere).
        assert "<redacted>" in str(new.value)
        surfaces = {**exception_surfaces(old, "old"), **exception_surfaces(new.value, "new"),
                    "repr(router)": repr(router), **log_surfaces(caplog, capfd)}
        assert_clean(surfaces, "a key rotated while a call was in flight")


def test_calls_on_many_threads_while_keys_rotate_each_send_one_whole_key() -> None:
    threads, per_thread = 4, 25
    responses = [{"json": completion("ok")}] * (threads * per_thread + 1)
    with MockProviders({"mocks": {"a": {"responses": responses}}}) as mocks:
        router = Router([provider("a", mocks.base_url("a"), "key-0000-abcdefgh")])
        keys = [f"key-{i:04d}-abcdefgh" for i in range(1, 41)]
        stop = threading.Event()

        def rotate() -> None:
            for key in keys:
                router.set_api_key("a", key)
                time.sleep(0.002)  # spread the keys over the calls; nothing waits on it
            stop.set()

        def calls(_: int) -> int:
            n = 0
            for _ in range(per_thread):
                router.chat_completions(REQUEST)
                n += 1
            return n

        rotator = threading.Thread(target=rotate)
        rotator.start()
        with ThreadPoolExecutor(threads) as pool:
            assert sum(pool.map(calls, range(threads))) == threads * per_thread
        rotator.join(WAIT_S)
        assert stop.is_set()
        router.chat_completions(REQUEST)
        sent = keys_sent(mocks, "a")
        assert len(sent) == threads * per_thread + 1
        assert set(sent) <= {"key-0000-abcdefgh", *keys}, set(sent) - {"key-0000-abcdefgh", *keys}
        assert sent[-1] == keys[-1]
        stats = router.stats()["providers"]["a"]
        assert stats["successes"] == threads * per_thread + 1, stats


def test_what_the_router_learned_is_kept() -> None:
    mocks_spec = {
        "a": {"responses": [{"status": 429, "headers": {"retry-after": "30"}, "json": {"error": {"message": "slow"}}}]},
        "b": {"responses": [{"json": completion("b1")}, {"json": completion("b2")}]},
    }
    with MockProviders({"mocks": mocks_spec}) as mocks:
        router = Router([provider("a", mocks.base_url("a")), provider("b", mocks.base_url("b"))])
        assert router.chat_completions(REQUEST)["choices"][0]["message"]["content"] == "b1"
        stats, cooldowns = router.stats(), router.cooldowns()
        router.set_api_key("a", "a-new-key-0123456789")
        assert router.stats()["providers"] == stats["providers"]
        assert router.cooldowns().keys() == cooldowns.keys() == {"a"}
        # Still cooling with its new key: the next call goes to b alone.
        assert router.chat_completions(REQUEST)["choices"][0]["message"]["content"] == "b2"
        assert len(mocks.log()["a"]) == 1


@pytest.mark.parametrize("provider_name, key, field, needle", [
    ("nobody", "sk-valid-0123456789", "provider", 'the providers are ["a", "b"]'),
    (KEY1, "sk-valid-0123456789", "provider", "no such provider"),
    ("a", "", "api_key", "is empty"),
    ("a", KEY1 + "\n", "api_key", "line break"),
    ("a", KEY2 + "\r\nx-injected: 1", "api_key", "line break"),
    ("a", KEY1 + "\u00e9", "api_key", "non-ASCII"),
])
def test_bad_input_is_a_config_error_without_the_key_and_changes_nothing(
    provider_name: str, key: str, field: str, needle: str
) -> None:
    with MockProviders({"mocks": {"a": {"responses": [{"json": completion("ok")}]}, "b": {"responses": []}}}) as mocks:
        router = Router([provider("a", mocks.base_url("a")), provider("b", mocks.base_url("b"))])
        with pytest.raises(ConfigError) as raised:
            router.set_api_key(provider_name, key)
        assert raised.value.field == field and needle in str(raised.value), raised.value
        assert_clean(exception_surfaces(raised.value), "set_api_key refused")
        router.chat_completions(REQUEST)
        assert keys_sent(mocks, "a") == ["test-key-0123456789"]


def test_arguments_must_be_strings() -> None:
    router = Router([provider("a", "http://127.0.0.1:9/v1")])
    for args in ((b"a", "key-0123456789"), ("a", None), ("a", 12345678)):
        with pytest.raises(TypeError) as raised:
            router.set_api_key(*args)  # type: ignore[arg-type]
        assert find_leak(str(raised.value)) is None


def test_a_key_from_api_key_env_is_replaced_by_the_literal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("F3DX_TEST_ROTATED_KEY", "env-key-0123456789")
    responses = [{"json": completion("1")}, {"json": completion("2")}]
    with MockProviders({"mocks": {"a": {"responses": responses}}}) as mocks:
        spec = {"name": "a", "kind": "openai", "base_url": mocks.base_url("a"), "api_key_env": "F3DX_TEST_ROTATED_KEY"}
        router = Router([spec])
        router.chat_completions(REQUEST)
        router.set_api_key("a", "literal-key-0123456789")
        monkeypatch.setenv("F3DX_TEST_ROTATED_KEY", "changed-env-key-0123")  # not read again
        router.chat_completions(REQUEST)
        assert keys_sent(mocks, "a") == ["env-key-0123456789", "literal-key-0123456789"]


def test_async_code_rotates_a_key_between_and_during_its_calls() -> None:
    responses = [{"json": completion("slow"), "delay_ms": 200}, {"json": completion("next")}]
    with MockProviders({"mocks": {"a": {"responses": responses}}}) as mocks:
        router = Router([provider("a", mocks.base_url("a"), "async-old-0123456789")])

        async def main() -> list[str]:
            first = asyncio.ensure_future(router.achat_completions(REQUEST))
            while not mocks.log()["a"]:  # the request is out (bounded by the mock's delay)
                await asyncio.sleep(STEP_S)
            router.set_api_key("a", "async-new-0123456789")
            second = await router.achat_completions(REQUEST)
            return [(await first)["choices"][0]["message"]["content"], second["choices"][0]["message"]["content"]]

        assert asyncio.run(asyncio.wait_for(main(), WAIT_S)) == ["slow", "next"]
        assert keys_sent(mocks, "a") == ["async-old-0123456789", "async-new-0123456789"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")
def test_a_forked_child_keeps_the_key_set_before_and_sets_its_own() -> None:
    responses = [{"json": completion(str(i))} for i in range(3)]
    with MockProviders({"mocks": {"a": {"responses": responses}}}) as mocks:
        router = Router([provider("a", mocks.base_url("a"), "fork-old-0123456789")])
        router.set_api_key("a", "fork-parent-0123456789")
        router.chat_completions(REQUEST)
        pid = os.fork()
        if pid == 0:  # the child: leave without running pytest's teardown
            code = 1
            try:
                router.chat_completions(REQUEST)  # the parent's key, in a fresh runtime
                router.set_api_key("a", "fork-child-0123456789")
                router.chat_completions(REQUEST)
                code = 0
            finally:
                os._exit(code)
        deadline = time.monotonic() + WAIT_S
        while not (done := os.waitpid(pid, os.WNOHANG))[0]:
            if time.monotonic() > deadline:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
                pytest.fail("the forked child hung")
            time.sleep(0.02)
        assert os.waitstatus_to_exitcode(done[1]) == 0
        assert keys_sent(mocks, "a") == ["fork-parent-0123456789", "fork-parent-0123456789", "fork-child-0123456789"]
