"""Building a :class:`Router` from a config file or a mapping.

The schema is the Worker's ``ROUTER_CONFIG``: one object with ``providers``
and the router-level keys, which are the constructor's keyword arguments.
Validation stays in the Rust core (the same checks and messages on every
host); this module only reads the file, maps the object onto the
constructor and puts the file's name in front of the core's message.

Parsers are imported inside the functions that use them: ``import
f3dx_router`` should not pay for tomllib, json or yaml.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from ._errors import ConfigError
from ._native import Router

__all__ = ["HOST_KEYS", "ROUTER_KEYS", "SUFFIXES", "load_config", "load_router", "router_from_config", "router_from_file"]

#: The top-level keys: the core's, in its order (its ``unknown key``
#: message lists them so), then the Python host's own (``HOST_KEYS``). The
#: constructor takes ``providers`` positionally and the rest as keywords;
#: tests check this against the constructor's signature.
ROUTER_KEYS: tuple[str, ...] = (
    "providers",
    "policy",
    "hedge_k",
    "hedge_delay_ms",
    "hedge_delay_fallback_ms",
    "hedge_budget",
    "health",
    "quality",
    "otel",
)

#: Keys only this host reads: ``otel`` (OpenTelemetry spans) is taken by
#: the Router itself and never reaches the core, whose config (the Worker's
#: ``ROUTER_CONFIG``) refuses it with a message saying the Worker does not
#: trace.
HOST_KEYS: tuple[str, ...] = ("otel",)

#: File formats by extension.
SUFFIXES: dict[str, str] = {".toml": "TOML", ".json": "JSON", ".yaml": "YAML", ".yml": "YAML"}


def _invalid(field: str, message: str) -> ConfigError:
    """A ConfigError worded as the core words its own."""
    return ConfigError(f"invalid router config: {field}: {message}", field=field)


def router_from_config(config: Mapping[str, Any]) -> Router:
    """``Router(**config)``, with the checks the core applies to the Worker's
    ``ROUTER_CONFIG``: an unknown or missing top-level key is a ConfigError,
    never a TypeError."""
    if not isinstance(config, Mapping):
        raise _invalid("config", "must be an object")
    # The core refuses unknown keys itself, but the constructor's keyword
    # arguments stop them first with a TypeError; say what the core says.
    for key in config:
        if key not in ROUTER_KEYS:
            raise _invalid(f"config.{key}", f"unknown key; expected one of: {', '.join(ROUTER_KEYS)}")
    if "providers" not in config:
        raise _invalid("providers", "is required: give at least one provider")
    kwargs = {k: v for k, v in config.items() if k != "providers"}
    return Router(config["providers"], **kwargs)


def router_from_file(path: str | os.PathLike[str]) -> Router:
    """Read a TOML, JSON or YAML config file (by extension) and build the
    router. Every ConfigError's message starts with the file's path; its
    ``field`` is the core's key path (``providers[1].timeout_ms``)."""
    return load_router(path)[1]


def load_router(path: str | os.PathLike[str]) -> tuple[Any, Router]:
    """The parsed file and the router built from it (``check`` prints the
    very object that was validated)."""
    config = load_config(path)
    try:
        return config, router_from_config(config)
    except ConfigError as e:
        raise ConfigError(f"{os.fspath(path)}: {e.message}", field=e.field) from e


def load_config(path: str | os.PathLike[str]) -> Any:
    """The parsed content of a config file, not yet validated (it need not
    even be a mapping: ``router_from_config`` says so)."""
    name = os.fspath(path)
    suffix = os.path.splitext(name)[1].lower()
    fmt = SUFFIXES.get(suffix)
    if fmt is None:
        supported = ", ".join(SUFFIXES)
        raise ConfigError(f"{name}: unsupported file type {suffix or '(none)'!r}; expected one of: {supported}")
    try:
        with open(name, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ConfigError(f"{name}: cannot read: {e.strerror or e}") from e
    try:
        text = data.decode("utf-8-sig")  # a BOM from a Windows editor is harmless
    except UnicodeDecodeError as e:
        # The message names the position only: the bytes may be a key.
        raise ConfigError(f"{name}: not UTF-8 text (byte {e.start})") from None
    if fmt == "TOML":
        return _parse_toml(name, text)
    if fmt == "JSON":
        return _parse_json(name, text)
    return _parse_yaml(name, text)


def _parse_toml(name: str, text: str) -> Any:
    try:
        import tomllib  # Python 3.11+
    except ImportError:
        try:
            import tomli as tomllib  # type: ignore[no-redef,import-not-found,unused-ignore]
        except ImportError:
            raise ConfigError(f"{name}: reading TOML on Python 3.10 needs tomli: pip install tomli") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        # tomllib's messages end with "(at line L, column C)" and quote no
        # values.
        raise ConfigError(f"{name}: invalid TOML: {e}") from None


def _parse_json(name: str, text: str) -> Any:
    import json

    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"{name}: invalid JSON: {e.msg} (at line {e.lineno}, column {e.colno})") from None


def _parse_yaml(name: str, text: str) -> Any:
    try:
        import yaml  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError:
        raise ConfigError(f"{name}: reading YAML needs PyYAML: pip install pyyaml") from None
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as e:
        # str(e) quotes the offending line, which may hold a key: build the
        # message from the problem and its position only.
        mark = e.problem_mark
        where = f" (at line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise ConfigError(f"{name}: invalid YAML: {e.problem or 'cannot parse'}{where}") from None
    except yaml.YAMLError:
        raise ConfigError(f"{name}: invalid YAML") from None
