"""``python -m f3dx_router``: command-line tools.

``check FILE`` validates a config file offline (building a Router opens no
connection) and prints what the router would use, never a key.
Exit status: 0 valid, 1 invalid (the error on stderr), 2 usage error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from . import ConfigError, Router, __version__
from ._config import ROUTER_KEYS, _Problems, check_file

_DESCRIPTION = """\
Tools for f3dx_router configs. A config file is TOML (.toml), JSON (.json)
or YAML (.yaml, .yml; needs PyYAML) holding the same object as the Worker's
ROUTER_CONFIG and the Router constructor: "providers" and the router-level
keys (policy, hedge_k, hedge_delay_ms, ...).
"""

_CHECK_HELP = """\
Validate FILE offline (nothing is sent to any provider) and print the
providers (name, kind, base_url, the key masked), the policy and the
router-level settings. Keys given through api_key_env must be set in the
environment. Exit status: 0 valid, 1 invalid (the error on stderr), 2 usage
error.
"""

_EPILOG = """\
example:
  python -m f3dx_router check router.toml
"""

# Provider keys shown as given; api_key and headers are handled apart
# (secrets), name/kind/base_url lead the line.
_PROVIDER_EXTRAS = ("model", "weight", "timeout_ms", "stream_idle_timeout_ms", "rpm", "tpm", "max_body_bytes")


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


def _key_source(provider: Mapping[str, Any]) -> str:
    if "api_key_env" in provider:
        return f"(from ${provider['api_key_env']})"
    key = provider.get("api_key")
    return mask_key(key) if isinstance(key, str) else "(hidden)"


def _scalar(value: Any) -> str:
    # JSON spelling (true, {"window_s": 30}) matches the docs' and the
    # Worker's; a bare string reads better unquoted, as policy's does.
    if isinstance(value, str):
        return value
    import json

    return json.dumps(value, separators=(", ", ": "), ensure_ascii=False)


def describe(path: str, config: Mapping[str, Any], router: Router) -> list[str]:
    """The lines ``check`` prints for a config the core accepted."""
    lines = [f"{path}: valid", "providers:"]
    providers: Sequence[Mapping[str, Any]] = config["providers"]
    name_w = max(len(str(p["name"])) for p in providers)
    url_w = max(len(str(p["base_url"])) for p in providers)
    for p in providers:
        parts = [f"  {str(p['name']):<{name_w}}", f"{p['kind']:<9}", f"{p['base_url']:<{url_w}}", f"key {_key_source(p)}"]
        parts += [f"{k}={_scalar(p[k])}" for k in _PROVIDER_EXTRAS if p.get(k) is not None]
        headers = p.get("headers")
        if headers:
            # Header values can be secrets (the core redacts them too).
            parts.append(f"headers={','.join(sorted(headers))}")
        lines.append("  ".join(parts))
    lines.append(f"policy: {router.policy}")
    for key in ROUTER_KEYS:
        if key in ("providers", "policy"):
            continue
        value = config.get(key)
        lines.append(f"{key}: {'(default)' if value is None else _scalar(value)}")
    return lines


def _check(path: str) -> int:
    try:
        config, router = check_file(path)
        lines = describe(path, config, router)
    except ConfigError as e:
        # The message names the file and the key path, never a value.
        errors = [e]
    except _Problems as p:
        errors = p.errors
    except Exception as e:  # the last resort: one line, never a traceback
        # Its message may quote the file (a key): only its type is named.
        print(f"error: {path}: cannot check the config: unexpected {type(e).__name__} (a bug: please report it)", file=sys.stderr)
        return 1
    else:
        print("\n".join(lines))
        return 0
    for error in errors:
        print(f"error: {error.message}", file=sys.stderr)
    return 1


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
    check.add_argument("file", metavar="FILE", help="a .toml, .json, .yaml or .yml config file")
    args = parser.parse_args(argv)  # exits 2 on a usage error
    if args.command is None:
        parser.print_usage(sys.stderr)
        print(f"{parser.prog}: error: a command is required (see --help)", file=sys.stderr)
        return 2
    return _check(args.file)


if __name__ == "__main__":
    sys.exit(main())
