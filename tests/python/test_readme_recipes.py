"""The README's recipes (each a ```json block after ``<!-- recipe: NAME -->``)
are complete configs that ``python -m f3dx_router check`` accepts, with the
keys' environment variables unset (``--no-env``) and set to placeholders;
and the README has one for every provider the issue asks for."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from test_readme import README, readme_blocks

RECIPE = re.compile(r"<!--\s*recipe:\s*([\w-]+)\s*-->")
WANTED = {"openai", "azure-v1", "azure-deployments", "anthropic", "gemini", "groq", "vllm-ollama"}


def recipes() -> dict[str, str]:
    lines = README.read_text(encoding="utf-8").splitlines()
    found: dict[str, str] = {}
    for line, lang, code, _ in readme_blocks("\n".join(lines)):
        # The marker is the closest non-blank line above the fence.
        above = next((lines[k] for k in range(line - 2, -1, -1) if lines[k].strip()), "")
        m = RECIPE.search(above)
        if m:
            assert lang == "json", f"recipe {m.group(1)} at README.md line {line} is not a ```json block"
            assert m.group(1) not in found, f"recipe {m.group(1)} twice"
            found[m.group(1)] = code
    return found


RECIPES = recipes()


def test_a_recipe_for_every_provider() -> None:
    assert set(RECIPES) == WANTED


def _check(path: Path, *flags: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "f3dx_router", "check", *flags, str(path)],
                          capture_output=True, text=True, timeout=60, env=env)


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_recipe_is_accepted_by_check(name: str, tmp_path: Path) -> None:
    config = json.loads(RECIPES[name])
    path = tmp_path / f"{name}.json"
    path.write_text(RECIPES[name], encoding="utf-8")
    variables = [p["api_key_env"] for p in config["providers"] if "api_key_env" in p]
    bare = {k: v for k, v in os.environ.items() if k not in variables}
    proc = _check(path, "--no-env", env=bare)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"{path}: valid"), proc.stdout
    assert "warning" not in proc.stderr.lower(), proc.stderr
    # With the variables set, the keys are read as a deployment would.
    proc = _check(path, env={**bare, **{v: f"placeholder-key-{i:04d}" for i, v in enumerate(variables)}})
    assert proc.returncode == 0, proc.stderr
    for p in config["providers"]:
        assert any(line.split()[:2] == [p["name"], p["kind"]] for line in proc.stdout.splitlines()), proc.stdout
