"""Helpers shared by the runners of the test vectors in tests/vectors/.

``load_vectors()`` reads every vector file; ``subset_mismatch()`` is the
README's "subset" match, returning where the first mismatch is.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

VECTORS_DIR = Path(__file__).resolve().parent.parent / "vectors"


def vector_paths(directory: Path = VECTORS_DIR) -> list[Path]:
    """Every ``*.json`` vector file, sorted by name."""
    return sorted(directory.glob("*.json"))


def load_vectors(directory: Path = VECTORS_DIR) -> list[tuple[str, dict]]:
    """``[(stem, vector), ...]`` sorted by stem. A file that is not valid JSON
    raises (with its path), so a broken vector fails loudly."""
    vectors = []
    for path in vector_paths(directory):
        try:
            with path.open(encoding="utf-8") as f:
                vector = json.load(f)
        except ValueError as exc:
            raise ValueError(f"{path}: not valid JSON: {exc}") from exc
        if not isinstance(vector, dict):
            raise ValueError(f"{path}: a vector must be a JSON object")
        vectors.append((path.stem, vector))
    return vectors


def subset_mismatch(expected: Any, actual: Any, path: str = "$") -> str | None:
    """None when ``expected`` is a subset of ``actual``, else where and why not.

    Objects match when every key of the expected object is in the actual one
    with a matching value (extra actual keys are fine); arrays match element
    by element and must have the same length; other values must be equal.
    JSON types are kept apart: ``true`` does not match ``1``, ``1`` matches
    ``1.0``.

    >>> subset_mismatch({"a": [1, {"b": 2}]}, {"a": [1, {"b": 3, "c": 4}], "d": 5})
    '$.a[1].b: expected 2, got 3'
    """
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return f"{path}: expected an object, got {_show(actual)}"
        for key, value in expected.items():
            where = f"{path}.{key}" if _plain_key(key) else f"{path}[{json.dumps(key)}]"
            if key not in actual:
                return f"{where}: missing (expected {_show(value)})"
            found = subset_mismatch(value, actual[key], where)
            if found is not None:
                return found
        return None
    if isinstance(expected, list):
        if not isinstance(actual, (list, tuple)):
            return f"{path}: expected an array, got {_show(actual)}"
        if len(expected) != len(actual):
            return f"{path}: expected {len(expected)} elements, got {len(actual)}: {_show(actual)}"
        for i, (exp, act) in enumerate(zip(expected, actual)):
            found = subset_mismatch(exp, act, f"{path}[{i}]")
            if found is not None:
                return found
        return None
    if not _scalar_equal(expected, actual):
        return f"{path}: expected {_show(expected)}, got {_show(actual)}"
    return None


def _scalar_equal(expected: Any, actual: Any) -> bool:
    if isinstance(expected, bool) or isinstance(actual, bool):
        return isinstance(expected, bool) and isinstance(actual, bool) and expected == actual
    if expected is None or actual is None:
        return expected is None and actual is None
    if isinstance(expected, (int, float)) and isinstance(actual, (int, float)):
        return expected == actual
    return type(expected) is type(actual) and expected == actual


def _plain_key(key: str) -> bool:
    return key.isidentifier()


def _show(value: Any, limit: int = 200) -> str:
    try:
        text = json.dumps(value, sort_keys=True)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
