"""The typed Python API: ``mypy --strict`` accepts a script using every
public name (the lazy ones too) and typed config input; the config's
TypedDicts have the core's keys; ``help(Router)`` documents the constructor;
the methods written in Python are defined on the class."""

from __future__ import annotations

import inspect
import os
import pydoc
import subprocess
import sys
from pathlib import Path

import pytest

import f3dx_router
from f3dx_router import (
    DeploymentConfig,
    HealthConfig,
    ModelGroupConfig,
    ProviderConfig,
    QualityConfig,
    Router,
    RouterConfig,
)
from f3dx_router import _native

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).parent / "typing" / "every_public_name.py"


def _mypy(path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MYPYPATH": str(ROOT / "python")}
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--config-file", os.devnull, str(path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )


def test_the_script_names_every_public_name() -> None:
    text = SCRIPT.read_text()
    public = set(f3dx_router.__all__) | set(f3dx_router._LAZY)
    missing = sorted(name for name in public if f" {name}," not in text and f"{name}\n" not in text)
    assert missing == []


def test_mypy_strict_accepts_every_public_name() -> None:
    pytest.importorskip("mypy")
    done = _mypy(SCRIPT)
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_strict_refuses_a_misspelt_provider_key(tmp_path: Path) -> None:
    # The TypedDicts do catch mistakes (the test above cannot pass vacuously).
    pytest.importorskip("mypy")
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from f3dx_router import Router\n"
        "Router([{'name': 'a', 'kind': 'openai', 'base_url': 'http://x', 'api_key': 'k', 'timeout': 5}])\n"
        "Router([{'name': 'a', 'kind': 'openai', 'base_url': 'http://x', 'api_key': 'k'}], health={'window_s': '30'})\n"
    )
    done = _mypy(bad)
    assert done.returncode == 1
    assert 'bad.py:2: error: Extra key "timeout"' in done.stdout
    assert "bad.py:3: error:" in done.stdout and "HealthConfig" in done.stdout


def _keys(td: type) -> set[str]:
    return set(td.__required_keys__) | set(td.__optional_keys__)  # type: ignore[attr-defined]


def test_typed_dicts_have_the_cores_keys() -> None:
    keys = _native._config_keys()
    assert _keys(ProviderConfig) == set(keys["provider"])
    assert _keys(HealthConfig) == set(keys["health"])
    assert _keys(QualityConfig) == set(keys["quality"])
    assert _keys(ModelGroupConfig) == set(keys["group"])
    assert _keys(DeploymentConfig) == set(keys["deployment"])
    assert ModelGroupConfig.__required_keys__ == {"deployments"}  # type: ignore[attr-defined]
    assert DeploymentConfig.__required_keys__ == {"provider"}  # type: ignore[attr-defined]
    # The router-level keys are the core's plus this host's own (otel).
    assert _keys(RouterConfig) == set(keys["router"]) | {"otel"}
    assert ProviderConfig.__required_keys__ == {"name", "kind", "base_url"}  # type: ignore[attr-defined]
    assert RouterConfig.__required_keys__ == {"providers"}  # type: ignore[attr-defined]


def test_constructor_keywords_are_the_router_config_keys() -> None:
    # The stub's signature, the class's and the TypedDict agree.
    parameters = set(inspect.signature(_native.Router).parameters)
    assert parameters == _keys(RouterConfig)


def test_help_documents_each_constructor_parameter() -> None:
    text = pydoc.render_doc(Router, renderer=pydoc.plaintext)
    # Each parameter is a heading line of its own, then what it is.
    headings = {line.strip(" |") for line in text.splitlines()}
    for name in _keys(RouterConfig):
        assert name in headings, name
    for method in ("chat_completions", "achat_completions", "route", "aroute", "stats", "from_file", "from_config", "record_quality"):
        doc = inspect.getdoc(getattr(Router, method))
        assert doc and len(doc) > 40, method


def test_methods_are_defined_on_the_class() -> None:
    # Not patched on the native class: defined by f3dx_router.Router itself.
    for name in ("from_file", "from_config", "achat_completions", "aroute"):
        assert name in vars(Router), name
        assert not hasattr(_native.Router, name), name
    assert inspect.iscoroutinefunction(Router.achat_completions)
    assert inspect.iscoroutinefunction(Router.aroute)
    assert issubclass(Router, _native.Router)
    r = Router([{"name": "a", "kind": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key": "k"}])
    assert not hasattr(r, "__dict__")  # as small as the native object
    assert isinstance(Router.from_config({"providers": [{"name": "a", "kind": "openai", "base_url": "http://x", "api_key": "k"}]}), Router)
