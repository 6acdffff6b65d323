"""Configuration from a file (issue 13): Router.from_file / from_config, the
errors they raise (file, key path, parser position, never a key) and
``python -m f3dx_router check``. Nothing here sends a request: providers
point at 127.0.0.1:9 and building a Router opens no connection."""

from __future__ import annotations

import importlib.util
import inspect
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import f3dx_router
from f3dx_router import ConfigError, Router
from f3dx_router.__main__ import mask_key

# Recognizable, so that a leak of any part of it shows up in a search.
FAKE_KEY = "sk-test-F3DXFAKEKEY-0123456789abcdef"
KEY_MIDDLE = "F3DXFAKEKEY"
URL = "http://127.0.0.1:9/v1"
ENV_VAR = "F3DX_TEST_CONFIG_KEY"
HAVE_YAML = importlib.util.find_spec("yaml") is not None

TOML = f"""\
policy = "hedged"
hedge_k = 2
hedge_delay_ms = "auto"

[health]
consecutive_failures = 3

[[providers]]
name = "openai"
kind = "openai"
base_url = "{URL}"
api_key = "{FAKE_KEY}"
timeout_ms = 20000

[[providers]]
name = "claude"
kind = "anthropic"
base_url = "{URL}"
api_key_env = "{ENV_VAR}"
"""

CONFIG: dict[str, Any] = {
    "policy": "hedged",
    "hedge_k": 2,
    "hedge_delay_ms": "auto",
    "health": {"consecutive_failures": 3},
    "providers": [
        {"name": "openai", "kind": "openai", "base_url": URL, "api_key": FAKE_KEY, "timeout_ms": 20000},
        {"name": "claude", "kind": "anthropic", "base_url": URL, "api_key_env": ENV_VAR},
    ],
}

YAML = f"""\
policy: hedged
hedge_k: 2
hedge_delay_ms: auto
health:
  consecutive_failures: 3
providers:
  - name: openai
    kind: openai
    base_url: {URL}
    api_key: {FAKE_KEY}
    timeout_ms: 20000
  - name: claude
    kind: anthropic
    base_url: {URL}
    api_key_env: {ENV_VAR}
"""


@pytest.fixture(autouse=True)
def _env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, FAKE_KEY)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def config_error(call: Any, *args: Any) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        call(*args)
    e = info.value
    assert KEY_MIDDLE not in str(e) and KEY_MIDDLE not in repr(e)
    return e


def expected_router() -> Router:
    return Router(CONFIG["providers"], **{k: v for k, v in CONFIG.items() if k != "providers"})


# -- the three formats and from_config --------------------------------------


def test_toml_file(tmp_path: Path) -> None:
    r = Router.from_file(write(tmp_path, "router.toml", TOML))
    assert r.providers == ["openai", "claude"]
    assert r.policy == "hedged"
    assert repr(r) == repr(expected_router())


def test_json_file(tmp_path: Path) -> None:
    r = Router.from_file(str(write(tmp_path, "router.json", json.dumps(CONFIG))))
    assert repr(r) == repr(expected_router())


@pytest.mark.parametrize("suffix", [".yaml", ".yml", ".YAML"])
def test_yaml_file(tmp_path: Path, suffix: str) -> None:
    path = write(tmp_path, "router" + suffix, YAML)
    if HAVE_YAML:
        assert repr(Router.from_file(path)) == repr(expected_router())
    else:
        e = config_error(Router.from_file, path)
        assert e.message == f"{path}: reading YAML needs PyYAML: pip install pyyaml"


def test_yaml_without_pyyaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "yaml", None)  # import yaml raises ImportError
    path = write(tmp_path, "router.yml", YAML)
    assert "pip install pyyaml" in config_error(Router.from_file, path).message


def test_toml_without_tomllib_or_tomli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Python 3.10 without tomli installed.
    monkeypatch.setitem(sys.modules, "tomllib", None)
    monkeypatch.setitem(sys.modules, "tomli", None)
    path = write(tmp_path, "router.toml", TOML)
    assert config_error(Router.from_file, path).message == (
        f"{path}: reading TOML on Python 3.10 needs tomli: pip install tomli"
    )


def test_from_config_with_a_dict() -> None:
    r = Router.from_config(CONFIG)
    assert repr(r) == repr(expected_router())
    assert r.policy == "hedged"


def test_from_config_null_means_default() -> None:
    # JSON null (YAML ~) for a router-level key is the default, as in the Worker.
    r = Router.from_config({"providers": CONFIG["providers"][:1], "policy": None, "hedge_k": None})
    assert r.policy == "sequential"


def test_router_keys_are_the_constructors() -> None:
    from f3dx_router._config import ROUTER_KEYS

    assert list(inspect.signature(Router).parameters) == list(ROUTER_KEYS)


# -- errors: file, key path, parser position ---------------------------------


def test_core_error_names_the_file_and_key_path(tmp_path: Path) -> None:
    config = json.loads(json.dumps(CONFIG))
    config["providers"][1]["timeout_ms"] = 0
    path = write(tmp_path, "router.json", json.dumps(config))
    e = config_error(Router.from_file, path)
    assert e.field == "providers[1].timeout_ms"
    assert e.message.startswith(f"{path}: invalid router config: providers[1].timeout_ms: must be between 1 and ")
    assert str(e) == e.message


def test_core_error_from_toml(tmp_path: Path) -> None:
    path = write(tmp_path, "router.toml", TOML.replace('policy = "hedged"', 'policy = "fastest"'))
    e = config_error(Router.from_file, path)
    assert e.field == "policy"
    assert e.message == f'{path}: invalid router config: policy: is not a policy: "sequential", "weighted" or "hedged"'
    assert "fastest" not in e.message


def test_unknown_top_level_key(tmp_path: Path) -> None:
    # The key is named by its position (it may be a value pasted in the
    # wrong place), with the known key it is close to.
    def expected(field: str) -> str:
        return (
            f"invalid router config: {field}: unknown key (did you mean hedge_k?); expected one of: providers, "
            "policy, hedge_k, hedge_delay_ms, hedge_delay_fallback_ms, hedge_budget, health, quality, "
            "models, fallbacks, context_window_fallbacks, content_policy_fallbacks, "
            "failover_on, retries, backoff_ms, backoff_max_ms, unsupported_params, forward_headers, otel"
        )

    e = config_error(Router.from_config, {**CONFIG, "hedge": 2})
    assert (e.field, e.message) == ("config.#6", expected("config.#6"))
    path = write(tmp_path, "router.toml", "hedge = 2\n" + TOML)
    e = config_error(Router.from_file, path)
    assert (e.field, e.message) == ("config.#1", f"{path}: {expected('config.#1')}")


def test_unknown_provider_key_is_the_cores(tmp_path: Path) -> None:
    path = write(tmp_path, "router.toml", TOML.replace("timeout_ms = 20000", "timeout = 20000"))
    e = config_error(Router.from_file, path)
    assert e.field == "providers[0].#5"
    assert e.message.startswith(
        f"{path}: invalid router config: providers[0].#5: unknown key (did you mean timeout_ms?); expected one of: name,"
    )


def test_missing_providers_and_not_an_object(tmp_path: Path) -> None:
    e = config_error(Router.from_config, {"policy": "hedged"})
    assert (e.field, e.message) == ("providers", "invalid router config: providers: is required: give at least one provider")
    path = write(tmp_path, "router.json", json.dumps([CONFIG]))
    e = config_error(Router.from_file, path)
    assert (e.field, e.message) == ("config", f"{path}: invalid router config: config: must be an object")


def test_toml_parse_error_has_file_and_line(tmp_path: Path) -> None:
    # The broken line holds the key: the message must not repeat it.
    path = write(tmp_path, "router.toml", TOML.replace(f'api_key = "{FAKE_KEY}"', f'api_key = "{FAKE_KEY}'))
    e = config_error(Router.from_file, path)
    assert e.message.startswith(f"{path}: invalid TOML: ")
    assert "line 12" in e.message


def test_json_parse_error_has_file_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "router.json", '{"providers": [\n  {"api_key": "' + FAKE_KEY + '",}\n]}')
    e = config_error(Router.from_file, path)
    assert e.message == f"{path}: invalid JSON: Expecting property name enclosed in double quotes (at line 2, column {18 + len(FAKE_KEY)})"


@pytest.mark.skipif(not HAVE_YAML, reason="PyYAML is not installed (its absence is tested above)")
def test_yaml_parse_error_has_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "router.yaml", f"providers:\n  - name: a\n  api_key: {FAKE_KEY}\n x: 1\n")
    e = config_error(Router.from_file, path)
    assert e.message.startswith(f"{path}: invalid YAML: ")
    assert "(at line 3, column 3)" in e.message


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "router.json"
    path.write_bytes(b'{"providers": "\xff"}')
    assert config_error(Router.from_file, path).message == f"{path}: not UTF-8 text (byte 15)"


def test_unsupported_extension_and_missing_file(tmp_path: Path) -> None:
    path = write(tmp_path, "router.ini", TOML)
    assert config_error(Router.from_file, path).message == (
        f"{path}: unsupported file type '.ini'; expected one of: .toml, .json, .yaml, .yml"
    )
    missing = tmp_path / "nope.toml"
    assert config_error(Router.from_file, missing).message == f"{missing}: cannot read: No such file or directory"


def test_api_key_env_unset_is_named_by_its_key_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Not by the variable's name: a key of letters, digits and `_` (Groq's
    # gsk_...) put in api_key_env looks like one.
    path = write(tmp_path, "router.toml", TOML)
    monkeypatch.delenv(ENV_VAR)
    e = config_error(Router.from_file, path)
    assert e.field == "providers[1].api_key_env"
    assert e.message == (
        f"{path}: invalid router config: providers[1].api_key_env: names an environment variable that is not set "
        "or is empty; set it or give api_key"
    )
    monkeypatch.setenv(ENV_VAR, FAKE_KEY)
    assert Router.from_file(path).providers == ["openai", "claude"]


def test_a_key_is_never_in_a_message(tmp_path: Path) -> None:
    # A key in the wrong field, a key with a broken neighbour, and a key in a
    # header value: each error names the field, never the value.
    cases: list[dict[str, Any]] = [
        {"providers": [{"name": "a", "kind": "openai", "base_url": URL, "api_key_env": FAKE_KEY}]},
        {"providers": [{"name": "a", "kind": "openai", "base_url": URL, "api_key": FAKE_KEY, "timeout_ms": -1}]},
        {"providers": [{"name": "a", "kind": "openai", "base_url": URL, "api_key": FAKE_KEY,
                        "headers": {"content-length": FAKE_KEY}}]},
        {"providers": [{"name": "a", "kind": "gemini", "base_url": URL, "api_key": FAKE_KEY}]},
    ]
    for i, config in enumerate(cases):
        config_error(Router.from_config, config)
        config_error(Router.from_file, write(tmp_path, f"r{i}.json", json.dumps(config)))


def test_mask_key() -> None:
    assert mask_key(FAKE_KEY) == "sk-test-…cdef"
    assert mask_key("gsk_" + "x" * 40 + "wxyz") == "gsk_…wxyz"
    assert mask_key("AIza" + "y" * 30) == "…yyyy"
    # Too short to show any of it.
    assert mask_key("sk-1234567890abcd") == "(hidden)"
    assert mask_key("") == "(hidden)"


# -- python -m f3dx_router ----------------------------------------------------


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    package_root = str(Path(f3dx_router.__file__).resolve().parent.parent)
    base = {**os.environ, **(env or {})}
    base["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, base.get("PYTHONPATH")) if p)
    return subprocess.run(
        [sys.executable, "-m", "f3dx_router", *args],
        capture_output=True, text=True, env=base, timeout=60, check=False,
    )


def test_check_valid(tmp_path: Path) -> None:
    path = write(tmp_path, "router.toml", TOML)
    done = run("check", str(path))
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    out = done.stdout.splitlines()
    assert out[0] == f"{path}: valid"
    assert out[1] == "providers:"
    assert out[2].split() == ["openai", "openai", URL, "key", "sk-test-…cdef", "timeout_ms=20000"]
    assert out[3].split() == ["claude", "anthropic", URL, "key", "(from", f"${ENV_VAR})"]
    assert "policy: hedged" in out
    assert "hedge_k: 2" in out
    assert "hedge_delay_ms: auto" in out
    assert 'health: {"consecutive_failures": 3}' in out
    # What the file does not set, resolved.
    assert "hedge_budget: 0.1 (default)" in out
    assert "hedge_delay_fallback_ms: 1000 (default)" in out
    assert 'quality: {"window": 50, "min_samples": 10, "min_pass_rate": 0.8, "probe_after_s": 60, "on_failure": "return", "max_keys": 10000, "max_bytes": 67108864} (default)' in out
    assert KEY_MIDDLE not in done.stdout


def test_check_never_prints_header_values(tmp_path: Path) -> None:
    config = json.loads(json.dumps(CONFIG))
    config["providers"][0]["headers"] = {"OpenAI-Organization": FAKE_KEY}
    done = run("check", str(write(tmp_path, "router.json", json.dumps(config))))
    assert done.returncode == 0, done.stderr
    assert "headers=OpenAI-Organization" in done.stdout
    assert KEY_MIDDLE not in done.stdout


def test_check_invalid(tmp_path: Path) -> None:
    path = write(tmp_path, "router.toml", TOML.replace("timeout_ms = 20000", "timeout_ms = 0"))
    done = run("check", str(path))
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.startswith(f"error: {path}: invalid router config: providers[0].timeout_ms: ")
    assert KEY_MIDDLE not in done.stderr


def test_check_unset_env(tmp_path: Path) -> None:
    path = write(tmp_path, "router.toml", TOML)
    env = {k: v for k, v in os.environ.items() if k != ENV_VAR}
    package_root = str(Path(f3dx_router.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    done = subprocess.run(
        [sys.executable, "-m", "f3dx_router", "check", str(path)],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )
    assert done.returncode == 1
    assert "providers[1].api_key_env: names an environment variable that is not set" in done.stderr
    assert ENV_VAR not in done.stderr
    assert done.stdout == ""


def test_check_parse_error(tmp_path: Path) -> None:
    path = write(tmp_path, "router.json", '{"providers": [\n}')
    done = run("check", str(path))
    assert done.returncode == 1
    assert done.stderr.startswith(f"error: {path}: invalid JSON: ")
    assert "(at line 2, column 1)" in done.stderr


@pytest.mark.parametrize("args", [(), ("check",), ("nope",), ("check", "a.toml", "b.toml")])
def test_check_usage_errors(args: tuple[str, ...]) -> None:
    done = run(*args)
    assert done.returncode == 2
    assert "usage:" in done.stderr
    assert done.stdout == ""


def test_help() -> None:
    done = run("--help")
    assert done.returncode == 0
    assert "check" in done.stdout and "ROUTER_CONFIG" in done.stdout
    done = run("check", "--help")
    assert done.returncode == 0
    assert "offline" in done.stdout and "Exit status" in done.stdout


def test_import_stays_lazy() -> None:
    # The parsers and argparse load only when a file is read or the command runs.
    code = "import sys, f3dx_router; print(sorted({'json', 'tomllib', 'tomli', 'yaml', 'argparse'} & set(sys.modules)))"
    package_root = str(Path(f3dx_router.__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": package_root}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60, check=True)
    assert done.stdout.strip() == "[]"
