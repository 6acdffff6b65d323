"""``python -m f3dx_router check`` that helps, and ``Router()``'s error:
every error at once (key path and provider name), ``--no-env``, resolved
defaults, warnings for settings without effect and for another tool's key
reference. The rules are the core's (``RouterConfig::check_json``): these
tests see them through the Python host."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import f3dx_router
from f3dx_router import ConfigError, Router

URL = "http://127.0.0.1:9/v1"
KEY = "sk-test-F3DXCHECKKEY-0123456789abcdef"
UNSET = "F3DX_TEST_CHECK_UNSET_VAR"


def provider(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "kind": "openai", "base_url": URL, "api_key": KEY, **extra}


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    package_root = str(Path(f3dx_router.__file__).resolve().parent.parent)
    base = {k: v for k, v in os.environ.items() if k != UNSET}
    base.update(env or {})
    base["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, base.get("PYTHONPATH")) if p)
    return subprocess.run([sys.executable, "-m", "f3dx_router", *args], capture_output=True, text=True, env=base, timeout=60, check=False)


def write(tmp_path: Path, config: Any, name: str = "router.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(config))
    return path


MANY_ERRORS = {
    "providers": [
        provider("a", timeout_ms=0, rpm=-1),
        {"name": "b", "kind": "grpc", "base_url": "ftp://x", "api_key_env": UNSET},
        provider("a"),
    ],
    "policy": "hedged",
    "hedge_k": 9,
    "health": {"window_s": 0},
    "polcy": 1,
}


def test_check_prints_every_error_at_once(tmp_path: Path) -> None:
    path = write(tmp_path, MANY_ERRORS)
    done = run("check", str(path))
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    prefix = f"error: {path}: invalid router config: "
    assert all(line.startswith(prefix) for line in lines), lines
    where = [line[len(prefix):].split(":")[0] for line in lines]
    assert where == [
        "config.#5", "providers[0].timeout_ms", "providers[0].rpm", "providers[1].kind", "providers[1].base_url",
        "providers[1].api_key_env", "providers[2].name", "hedge_k", "health.window_s",
    ]
    # The provider's name goes with what is inside it.
    assert lines[1].endswith("(provider a)") and lines[3].endswith("(provider b)")
    assert "did you mean policy?" in lines[0]
    assert KEY not in done.stderr + done.stdout and UNSET not in done.stderr


def test_router_raises_one_error_listing_all() -> None:
    with pytest.raises(ConfigError) as info:
        Router.from_config(MANY_ERRORS)
    # Router.from_config stops the unknown top-level key first (as before).
    assert info.value.field == "config.#5"
    config = {k: v for k, v in MANY_ERRORS.items() if k != "polcy"}
    with pytest.raises(ConfigError) as info:
        Router(config["providers"], policy="hedged", hedge_k=9, health={"window_s": 0})
    lines = info.value.message.splitlines()
    # The first line is the first error, as it always was; then the others.
    assert info.value.field == "providers[0].timeout_ms"
    assert lines[0].startswith("invalid router config: providers[0].timeout_ms: ")
    assert [line.split(": ")[1] for line in lines] == [
        "providers[0].timeout_ms", "providers[0].rpm", "providers[1].kind", "providers[1].base_url",
        "providers[1].api_key_env", "providers[2].name", "hedge_k", "health.window_s",
    ]


def test_from_file_names_the_file_on_every_line(tmp_path: Path) -> None:
    path = write(tmp_path, {"providers": [provider("a", timeout_ms=0, rpm=0)]})
    with pytest.raises(ConfigError) as info:
        Router.from_file(path)
    lines = info.value.message.splitlines()
    assert len(lines) == 2 and all(line.startswith(f"{path}: invalid router config: providers[0].") for line in lines)


def test_no_env_validates_without_the_variables(tmp_path: Path) -> None:
    config = {"providers": [{"name": "a", "kind": "openai", "base_url": URL, "api_key_env": UNSET}, provider("b")]}
    path = write(tmp_path, config)
    done = run("check", str(path))
    assert done.returncode == 1
    assert "providers[0].api_key_env: names an environment variable that is not set" in done.stderr
    done = run("check", "--no-env", str(path))
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    row = next(line for line in done.stdout.splitlines() if line.strip().startswith("a "))
    assert f"key (would read ${UNSET})" in row
    # --no-env still finds every other error.
    config["providers"][1]["timeout_ms"] = 0
    done = run("check", "--no-env", str(write(tmp_path, config)))
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"error: {tmp_path / 'router.json'}: invalid router config: providers[1].timeout_ms: must be between 1 and 86400000 (a day) (provider b)"
    ]


def test_check_prints_resolved_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, {"providers": [provider("a"), provider("b")], "policy": "hedged", "hedge_delay_ms": 200})
    done = run("check", str(path))
    assert done.returncode == 0, done.stderr
    out = done.stdout.splitlines()
    assert "policy: hedged" in out and "hedge_delay_ms: 200" in out
    assert "hedge_k: 2 (default)" in out
    assert "hedge_budget: 0.1 (default)" in out
    assert "hedge_delay_fallback_ms: (default: not used by this policy)" in out
    assert any(line.startswith('health: {"window_s": 60, "buckets": 10,') and line.endswith("(default)") for line in out)
    assert "otel: false (default)" in out


def test_warnings_for_settings_without_effect(tmp_path: Path) -> None:
    path = write(tmp_path, {"providers": [provider("a"), provider("b", weight=3)], "hedge_k": 2, "hedge_budget": 0.5})
    done = run("check", str(path))
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stdout.splitlines() if line.startswith("warning:")]
    assert warnings == [
        f'warning: {path}: hedge_k: has no effect: the policy is "sequential", not "hedged"',
        f'warning: {path}: hedge_budget: has no effect: the policy is "sequential", not "hedged"',
        f'warning: {path}: providers[1].weight: has no effect: the policy is "sequential", not "weighted" (provider b)',
    ]
    assert f"{path}: valid" in done.stdout


@pytest.mark.parametrize("reference", ["os.environ/OPENAI_API_KEY", "${OPENAI_API_KEY}", "$OPENAI_API_KEY"])
def test_warning_for_another_tools_key_reference(tmp_path: Path, reference: str) -> None:
    path = write(tmp_path, {"providers": [provider("a", api_key=reference)]})
    done = run("check", str(path))
    assert done.returncode == 0, done.stderr
    warning = next(line for line in done.stdout.splitlines() if line.startswith("warning:"))
    assert warning.startswith(f"warning: {path}: providers[0].api_key: looks like another tool's reference")
    assert 'write api_key_env = "NAME" instead' in warning and warning.endswith("(provider a)")
    assert "OPENAI_API_KEY" not in done.stdout


def test_warnings_with_errors_keep_stderr_for_errors(tmp_path: Path) -> None:
    path = write(tmp_path, {"providers": [provider("a", timeout_ms=0)], "hedge_k": 2})
    done = run("check", str(path))
    assert done.returncode == 1
    assert all(line.startswith("error: ") for line in done.stderr.splitlines())
    assert done.stdout.startswith(f'warning: {path}: hedge_k: has no effect')


def test_router_logs_the_warnings(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="f3dx_router"):
        Router([provider("a"), provider("b", api_key="os.environ/B_KEY")], hedge_k=2, hedge_budget=None)
    messages = [r.getMessage() for r in caplog.records if r.name == "f3dx_router"]
    assert messages == [
        'router config: hedge_k: has no effect: the policy is "sequential", not "hedged"',
        "router config: providers[1].api_key: looks like another tool's reference to an environment variable "
        "(os.environ/NAME, ${NAME}, $NAME), which would be sent as the key itself; to read the key from the "
        'variable NAME, write api_key_env = "NAME" instead (provider b)',
    ]
    caplog.clear()
    with caplog.at_level("WARNING", logger="f3dx_router"):
        Router([provider("a"), provider("b")], policy="hedged", hedge_k=2)
    assert [r for r in caplog.records if r.name == "f3dx_router"] == []
