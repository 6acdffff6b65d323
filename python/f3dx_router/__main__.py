"""``python -m f3dx_router``: command-line tools.

``check FILE`` validates a config file offline (nothing is sent) by the
core's rules, the Worker's too: every error at once (each with its key path,
and the provider's name), warnings for settings that have no effect, and for
a valid file what the router would use, defaults included, never a key.
Exit status: 0 valid (warnings or not), 1 invalid (errors on stderr), 2
usage error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from . import __version__
from ._config import ROUTER_KEYS, Report, _Problems, _read_config, check_config
from ._errors import ConfigError

_DESCRIPTION = """\
Tools for f3dx_router configs. A config file is TOML (.toml), JSON (.json)
or YAML (.yaml, .yml; needs PyYAML) holding the same object as the Worker's
ROUTER_CONFIG and the Router constructor: "providers", the router-level
keys (policy, hedge_k, hedge_delay_ms, ...) and the routing table
("models", "fallbacks", ...).
"""

_CHECK_HELP = """\
Validate FILE offline (nothing is sent to any provider): print every error
at once (stderr), warnings for settings that have no effect or values that
look like a mistake, and for a valid file the providers (name, kind,
base_url, the key masked), every router-level setting and each model
group with its deployments, defaults included. Keys given through api_key_env must be set in the environment,
unless --no-env. Exit status: 0 valid (with or without warnings), 1 invalid,
2 usage error.
"""

_EPILOG = """\
examples:
  python -m f3dx_router check router.toml
  python -m f3dx_router check --no-env router.toml   # in CI, without the keys
"""

# Provider settings shown after the key, by config key (header names apart).
_PROVIDER_EXTRAS = ("model", "weight", "timeout_ms", "stream_idle_timeout_ms", "rpm", "tpm", "max_body_bytes")
_AZURE_KEYS = ("azure_api", "api_version", "auth")


def mask_key(key: str) -> str:
    """What identifies a key to its owner without giving it away: the
    vendor prefix (``sk-``, ``gsk_``, ``sk-ant-``) and the last four
    characters, as provider dashboards show, only when at least 12
    characters stay hidden; otherwise nothing of it."""
    head = key[:8]
    cut = max(head.rfind("-"), head.rfind("_")) + 1
    prefix = key[:cut]
    if len(key) - len(prefix) - 4 < 12:
        return "(hidden)"
    return f"{prefix}…{key[-4:]}"


def _key_source(provider: Mapping[str, Any], no_env: bool) -> str:
    if "api_key_env" in provider:
        verb = "would read" if no_env else "from"
        return f"({verb} ${provider['api_key_env']})"
    key = provider.get("api_key")
    return mask_key(key) if isinstance(key, str) else "(hidden)"


def _scalar(value: Any) -> str:
    # JSON spelling (true, {"window_s": 30}) matches the docs' and the
    # Worker's; a bare string reads better unquoted, as policy's does.
    if isinstance(value, str):
        return value
    import json

    return json.dumps(value, separators=(", ", ": "), ensure_ascii=False)


def describe(path: str, config: Mapping[str, Any], report: Report, no_env: bool = False) -> list[str]:
    """The lines ``check`` prints for a config the core accepted: the
    providers as given (keys masked), then every router-level setting as
    resolved, ``(default)`` after those the file does not set."""
    resolved: Mapping[str, Any] = report.resolved
    lines = [f"{path}: valid", "providers:"]
    given: Sequence[Mapping[str, Any]] = config["providers"]
    name_w = max(len(str(p["name"])) for p in given)
    url_w = max(len(str(p["base_url"])) for p in given)
    for p, r in zip(given, resolved["providers"]):
        parts = [f"  {str(p['name']):<{name_w}}", f"{p['kind']:<9}", f"{r['base_url']:<{url_w}}", f"key {_key_source(p, no_env)}"]
        parts += [f"{k}={_scalar(p[k])}" for k in _PROVIDER_EXTRAS if p.get(k) is not None]
        # An Azure provider's API and auth, defaults included: they decide its URL.
        parts += [f"{k}={r[k]}" for k in _AZURE_KEYS if r.get(k) is not None]
        if r["header_names"]:
            # Header values can be secrets (the core redacts them too).
            parts.append(f"headers={','.join(sorted(p['headers']))}")
        lines.append("  ".join(parts))
    for key in ROUTER_KEYS:
        if key == "providers":
            continue
        if key == "models":
            lines += _describe_models(config.get(key), resolved.get(key))
            continue
        if key in _FALLBACK_KEYS and config.get(key) is None:
            lines.append(f"{key}: (default: none)")
            continue
        value = resolved.get(key, config.get(key, False))
        if key in config and config[key] is not None:
            lines.append(f"{key}: {_scalar(config[key])}")
        elif value is None:
            lines.append(f"{key}: (default: not used by this policy)")
        else:
            lines.append(f"{key}: {_scalar(value)} (default)")
    return lines


_FALLBACK_KEYS = ("fallbacks", "context_window_fallbacks", "content_policy_fallbacks")
_POLICY_KEYS = ("policy", "hedge_k", "hedge_delay_ms", "hedge_delay_fallback_ms", "hedge_budget")


def _describe_models(given: Any, resolved: Mapping[str, Any] | None) -> list[str]:
    """The routing table as resolved: each group with its routing settings
    (``(router's)`` when it has none of its own), each deployment with the
    model it sends and its limits (the provider's filled in), and the
    groups it falls back to."""
    if resolved is None:
        return ["models: (default: one group of every provider, for any model)"]
    lines = ["models:"]
    for name, group in resolved.items():
        own = given.get(name) if isinstance(given, Mapping) else None
        own_keys = own if isinstance(own, Mapping) else {}
        settings = ", ".join(f"{k}={_scalar(group[k])}" for k in _POLICY_KEYS if group[k] is not None)
        if group["policy"] == "hedged" and group["hedge_budget"] is None:
            settings += ", hedge_budget=unlimited"
        if not any(k in own_keys for k in _POLICY_KEYS):
            settings += " (router's)"
        lines.append(f"  {name}: {settings}")
        if "quality" in own_keys:
            lines.append(f"    quality: {_scalar(group['quality'])}")
        width = max(len(d["provider"]) for d in group["deployments"])
        for d in group["deployments"]:
            model = d["model"] if d["model"] is not None else "(the caller's)"
            parts = [f"    {d['provider']:<{width}}", f"model={model}"]
            parts += [f"{k}={_scalar(d[k])}" for k in ("weight", "timeout_ms", "context_window", "rpm", "tpm") if d[k] is not None]
            # Names only: a header value can be a secret.
            if d["param_names"]:
                parts.append(f"params={','.join(d['param_names'])}")
            if d["header_names"]:
                parts.append(f"headers={','.join(d['header_names'])}")
            lines.append("  ".join(parts))
        for key in _FALLBACK_KEYS:
            if group[key]:
                lines.append(f"    {key}: {', '.join(group[key])}")
    return lines


def _check(path: str, no_env: bool) -> int:
    try:
        config = _read_config(path)
        report = check_config(config, env=not no_env)
        errors = [f"{path}: {e}" for e in report.errors]
        lines = describe(path, config, report, no_env) if not errors else []
    except ConfigError as e:
        # The message names the file and the key path, never a value.
        errors = e.message.splitlines()
        report = Report([], [], [], None)
    except _Problems as p:
        errors = [line for e in p.errors for line in e.message.splitlines()]
        report = Report([], [], [], None)
    except Exception as e:  # the last resort: one line, never a traceback
        # Its message may quote the file (a key): only its type is named.
        print(f"error: {path}: cannot check the config: unexpected {type(e).__name__} (a bug: please report it)", file=sys.stderr)
        return 1
    for error in errors:
        print(f"error: {error}", file=sys.stderr)
    # Warnings go with the report on stdout: stderr holds errors only.
    for warning in report.warnings:
        print(f"warning: {path}: {warning}")
    if errors:
        return 1
    print("\n".join(lines))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m f3dx_router",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"f3dx_router {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    check = commands.add_parser(
        "check",
        help="validate a config file offline and print the resolved router",
        description=_CHECK_HELP,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument(
        "--no-env",
        action="store_true",
        help="read no environment variable: an api_key_env is reported as the variable it would read "
        "(check a config in CI without its keys)",
    )
    check.add_argument("file", metavar="FILE", help="a .toml, .json, .yaml or .yml config file")
    args = parser.parse_args(argv)  # exits 2 on a usage error
    if args.command is None:
        parser.print_usage(sys.stderr)
        print(f"{parser.prog}: error: a command is required (see --help)", file=sys.stderr)
        return 2
    return _check(args.file, args.no_env)


if __name__ == "__main__":
    sys.exit(main())
