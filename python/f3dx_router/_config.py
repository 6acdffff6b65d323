"""Building a :class:`Router` from a config file or a mapping.

The schema is the Worker's ``ROUTER_CONFIG``: one object with ``providers``
and the router-level keys, which are the constructor's keyword arguments.
Validation stays in the Rust core (the same checks and messages on every
host); this module reads the file into plain values (str, int, float, bool,
None, lists and dicts), maps the object onto the constructor and puts the
file's name in front of the core's message.

Whatever the file holds, the only exception is :class:`ConfigError`, and no
message repeats a value from the file (it may be a key pasted in the wrong
place): messages name the key path and what is wrong. A key the schema
knows is named (``providers[1].timeout_ms``); any other key is named by its
position in its object, counting from 1 (``providers[1].#3``), as the core
does. Reading is bounded: at most ``MAX_FILE_BYTES``, ``MAX_DEPTH`` levels
of nesting (checked before any recursive parser sees the text), and for
YAML ``MAX_YAML_VALUES`` values once aliases are expanded (checked while
the events stream in, before anything is expanded).

Parsers are imported inside the functions that use them: ``import
f3dx_router`` should not pay for tomllib, json or yaml.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

from . import _native
from ._errors import ConfigError
from ._router import Router

__all__ = [
    "HOST_KEYS",
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "MAX_YAML_VALUES",
    "ROUTER_KEYS",
    "SUFFIXES",
    "Report",
    "check_config",
    "load_config",
    "load_router",
    "router_from_config",
    "router_from_file",
]

#: The config's keys, from the core (``config/keys.rs``) so that they
#: cannot drift: only these words may appear in a key path; any other key
#: is a value and is named by its position.
_KEYS: dict[str, tuple[str, ...]] = _native._config_keys()

#: Keys only this host reads: ``otel`` (OpenTelemetry spans) is taken by
#: the Router itself and never reaches the core, whose config (the Worker's
#: ``ROUTER_CONFIG``) refuses it with a message saying the Worker does not
#: trace.
HOST_KEYS: tuple[str, ...] = _KEYS["host"]

#: The top-level keys: the core's, in its order (its ``unknown key``
#: message lists them so), then the Python host's own (``HOST_KEYS``). The
#: constructor takes ``providers`` positionally and the rest as keywords;
#: tests check this against the constructor's signature.
ROUTER_KEYS: tuple[str, ...] = _KEYS["router"] + HOST_KEYS

_PROVIDER_KEYS = _KEYS["provider"]
_HEALTH_KEYS = _KEYS["health"]
_QUALITY_KEYS = _KEYS["quality"]
_SCHEMA_KEYS = frozenset(ROUTER_KEYS + _PROVIDER_KEYS + _HEALTH_KEYS + _QUALITY_KEYS + _KEYS["group"] + _KEYS["deployment"])
#: Objects whose keys are model group names: named by the name itself,
#: JSON-quoted (``models["gpt-4o"]``), as the core names them.
_GROUP_MAPS = frozenset({"models", "fallbacks", "context_window_fallbacks", "content_policy_fallbacks"})

#: File formats by extension.
SUFFIXES: dict[str, str] = {".toml": "TOML", ".json": "JSON", ".yaml": "YAML", ".yml": "YAML"}

#: Largest config file read (a router config is a few kilobytes).
MAX_FILE_BYTES = 16 * 1024 * 1024
#: Deepest nesting of lists and objects, the config object itself being
#: level 1 (a provider's ``headers`` are at level 4).
MAX_DEPTH = 32
#: Most values (scalars, lists and mappings) a YAML file may hold once its
#: aliases are expanded: a few hundred bytes of nested aliases would
#: otherwise expand to gigabytes.
MAX_YAML_VALUES = 100_000
# Problems reported at once (a file of hostile values could give millions).
_MAX_PROBLEMS = 20


class _Problems(Exception):
    """Several ConfigErrors at once (``check`` prints each); the public
    functions raise the first."""

    def __init__(self, errors: list[ConfigError]) -> None:
        super().__init__(len(errors))
        self.errors = errors


def _invalid(field: str, message: str) -> ConfigError:
    """A ConfigError worded as the core words its own."""
    return ConfigError(f"invalid router config: {field}: {message}", field=field)


# -- key paths: the same words as the core's (crates/.../config/keys.rs) ----


def _key_path(at: str, key: str, index: int) -> str:
    """The path of ``key``, the key at ``index`` (from 0) of the object at
    ``at``: named if the schema knows it or it is a model group's name,
    else numbered from 1."""
    if at in _GROUP_MAPS:
        import json

        return f"{at}[{json.dumps(key, ensure_ascii=False)}]"
    if key in _SCHEMA_KEYS:
        return key if at == "config" else f"{at}.{key}"
    return f"{at}.#{index + 1}"


def _edit_distance(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a):
        diagonal, row[0] = row[0], i + 1
        for j, cb in enumerate(b):
            substitute = diagonal + (ca != cb)
            diagonal = row[j + 1]
            row[j + 1] = min(substitute, row[j] + 1, diagonal + 1)
    return row[len(b)]


def _suggestion(key: str, known: Iterable[str]) -> str | None:
    """The known key ``key`` was probably meant to be (the core's rule)."""
    if len(key.encode("utf-8", "surrogatepass")) > 64:
        return None
    typed = key.lower().replace("-", "_")
    best: tuple[int, str] | None = None
    for k in known:
        d = _edit_distance(typed, k)
        if d <= (1 if len(k) <= 4 else 2) and (best is None or d < best[0]):
            best = (d, k)
    if best is not None:
        return best[1]
    return next((k for k in known if len(typed) >= 4 and k.startswith(typed)), None)


def _unknown_key(at: str, key: str, index: int, known: tuple[str, ...]) -> ConfigError:
    hint = _suggestion(key, known)
    hint_text = f" (did you mean {hint}?)" if hint else ""
    return _invalid(_key_path(at, key, index), f"unknown key{hint_text}; expected one of: {', '.join(known)}")


def _repeated_key(at: str, key: str, first: int, index: int) -> ConfigError:
    if key in _SCHEMA_KEYS or at in _GROUP_MAPS:
        return _invalid(_key_path(at, key, first), f"is given twice (keys #{first + 1} and #{index + 1}); give each key once")
    return _invalid(_key_path(at, key, index), f"repeats key #{first + 1}; give each key once")


# -- building a router -----------------------------------------------------------


def router_from_config(config: Mapping[str, Any], cls: type[Router] = Router) -> Router:
    """``cls(**config)``, with the checks the core applies to the Worker's
    ``ROUTER_CONFIG``: an unknown or missing top-level key is a ConfigError,
    never a TypeError; so is a value that is not a string, number, boolean,
    null, list or mapping."""
    try:
        return _router_from_config(config, cls)
    except _Problems as p:
        raise p.errors[0] from None


def _router_from_config(config: Any, cls: type[Router]) -> Router:
    problems = _check_tree(config)
    if problems:
        raise _Problems(problems)
    if not isinstance(config, Mapping):
        raise _invalid("config", "must be an object")
    # The core refuses unknown keys itself, but the constructor's keyword
    # arguments stop them first with a TypeError; say what the core says.
    unknown = [_unknown_key("config", key, i, ROUTER_KEYS) for i, key in enumerate(config) if key not in ROUTER_KEYS]
    if unknown:
        raise _Problems(unknown[:_MAX_PROBLEMS])
    if "providers" not in config:
        raise _invalid("providers", "is required: give at least one provider")
    kwargs = {k: v for k, v in config.items() if k != "providers"}
    return cls(config["providers"], **kwargs)


def router_from_file(path: str | os.PathLike[str], cls: type[Router] = Router) -> Router:
    """Read a TOML, JSON or YAML config file (by extension) and build the
    router. Every ConfigError's message starts with the file's path; its
    ``field`` is the key path (``providers[1].timeout_ms``)."""
    return load_router(path, cls)[1]


def load_router(path: str | os.PathLike[str], cls: type[Router] = Router) -> tuple[Any, Router]:
    """The parsed file and the router built from it (``check`` prints the
    very object that was validated)."""
    try:
        return check_file(path, cls)
    except _Problems as p:
        raise p.errors[0] from None


def check_file(path: str | os.PathLike[str], cls: type[Router] = Router) -> tuple[Any, Router]:
    """``load_router``, raising ``_Problems`` (every problem found, for
    ``check``) where the others raise the first ConfigError."""
    name = os.fspath(path)
    config = _read_config(name)
    try:
        return config, _router_from_config(config, cls)
    except ConfigError as e:
        raise ConfigError(_in_file(name, e.message), field=e.field) from e
    except _Problems as p:
        raise _Problems([ConfigError(_in_file(name, e.message), field=e.field) for e in p.errors]) from None


def _in_file(name: str, message: str) -> str:
    """``message`` with the file's name in front of each of its lines (a
    ConfigError lists every error of a config, one a line)."""
    return "\n".join(f"{name}: {line}" for line in message.splitlines())


class Report:
    """What ``check`` found in a config: every error and warning as text
    (``field: message``, and the provider's name when known), the
    ``api_key_env`` variables it reads, and every setting with its default
    filled in (None when there is an error)."""

    __slots__ = ("errors", "warnings", "env_names", "resolved")

    def __init__(self, errors: list[str], warnings: list[str], env_names: list[str], resolved: Any) -> None:
        self.errors = errors
        self.warnings = warnings
        self.env_names = env_names
        self.resolved = resolved


def _problem_text(field: str, message: str, provider: str | None) -> str:
    where = f" (provider {provider})" if provider else ""
    return f"invalid router config: {field}: {message}{where}"


def check_config(config: Any, *, env: bool = True) -> Report:
    """Every problem of a parsed config, by the core's rules (the Worker's
    ``ROUTER_CONFIG`` gets the same): with ``env=False`` no environment
    variable is read (each ``api_key_env`` is taken as set)."""
    from . import _native

    problems = _check_tree(config)
    if problems:
        return Report([e.message for e in problems], [], [], None)
    if not isinstance(config, Mapping):
        return Report([_invalid("config", "must be an object").message], [], [], None)
    errors = [_unknown_key("config", key, i, ROUTER_KEYS).message for i, key in enumerate(config) if key not in ROUTER_KEYS]
    otel = config.get("otel")
    if otel is not None and not isinstance(otel, bool):
        errors.append(_invalid("otel", "must be true or false").message)
    core = {k: v for k, v in config.items() if k in ROUTER_KEYS and k not in HOST_KEYS}
    found, warned, env_names, resolved = _native._check_config(core, env=env)
    errors += [_problem_text(*p) for p in found]
    warnings = [f"{field}: {message}{f' (provider {name})' if name else ''}" for field, message, name in warned]
    if not errors and env:
        # What only building it finds (otel=True without opentelemetry).
        try:
            _router_from_config(config, Router)
        except ConfigError as e:
            errors.append(e.message)
        except _Problems as p:
            errors += [e.message for e in p.errors]
    return Report(errors[:_MAX_PROBLEMS], warnings, env_names, None if errors else resolved)


def load_config(path: str | os.PathLike[str]) -> Any:
    """The parsed content of a config file, not yet validated by the core
    (it need not even be a mapping: ``router_from_config`` says so)."""
    try:
        return _read_config(os.fspath(path))
    except _Problems as p:
        raise p.errors[0] from None


def _read_config(name: str) -> Any:
    try:
        config = _parse_file(name)
        problems = _check_tree(config)
    except (ConfigError, _Problems):
        raise
    except Exception as e:  # the last resort: see below
        # A bug in this module or a parser. Its message may quote the file
        # (a key), so only its type is named.
        raise ConfigError(f"{name}: cannot read the config: unexpected {type(e).__name__} (a bug: please report it)") from None
    if problems:
        raise _Problems([ConfigError(f"{name}: {e.message}", field=e.field) for e in problems])
    return config


def _parse_file(name: str) -> Any:
    suffix = os.path.splitext(name)[1].lower()
    fmt = SUFFIXES.get(suffix)
    if fmt is None:
        supported = ", ".join(SUFFIXES)
        raise ConfigError(f"{name}: unsupported file type {suffix or '(none)'!r}; expected one of: {supported}")
    try:
        with open(name, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as e:
        raise ConfigError(f"{name}: cannot read: {e.strerror or type(e).__name__}") from None
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError(f"{name}: larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB; a router config is a few kilobytes")
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


# -- values every format reads into ----------------------------------------------


class _Object(dict[str, Any]):
    """A mapping read from a file, with what reading it found wrong;
    ``_check_tree`` reports it with the key path."""

    __slots__ = ("bad_keys", "bad_merges", "repeats")

    def __init__(self) -> None:
        super().__init__()
        #: (key, index of its first occurrence, index of the repeat)
        self.repeats: list[tuple[str, int, int]] = []
        #: indexes of keys that are not strings (YAML)
        self.bad_keys: list[int] = []
        #: indexes of YAML merge keys (<<) whose value is not a mapping
        self.bad_merges: list[int] = []


class _Refused:
    """A value a file holds that a config cannot (a YAML tag, an integer
    too long to read), with what to say about it."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


_TOO_LONG = _Refused("is an integer too long to read (too many digits)")


def _check_tree(root: Any) -> list[ConfigError]:
    """Every value a config cannot hold, with its key path: only str, int,
    float (finite), bool, None, lists and mappings with string keys, at most
    ``MAX_DEPTH`` levels deep, no repeated key. Iterative: a deep value
    cannot exhaust the stack."""
    import datetime

    problems: list[ConfigError] = []
    stack: list[tuple[Any, str, int]] = [(root, "config", 1)]
    while stack and len(problems) < _MAX_PROBLEMS:
        value, path, depth = stack.pop()
        if isinstance(value, (Mapping, list, tuple)) and depth > MAX_DEPTH:
            problems.append(_invalid(path, f"is nested more than {MAX_DEPTH} levels deep"))
            continue
        children: list[tuple[Any, str, int]] = []
        if isinstance(value, Mapping):
            for index, key in enumerate(value):
                if not isinstance(key, str):
                    problems.append(_invalid(f"{path}.#{index + 1}", "is not a string key; quote it"))
                    continue
                if not _is_text(key):
                    problems.append(_invalid(f"{path}.#{index + 1}", "is not valid Unicode text (a lone surrogate escape)"))
                    continue
                children.append((value[key], _key_path(path, key, index), depth + 1))
            if isinstance(value, _Object):
                problems += [_invalid(f"{path}.#{i + 1}", "is not a string key; quote it") for i in value.bad_keys]
                problems += [_invalid(f"{path}.#{i + 1}", "is a YAML merge (<<) of something else than mappings") for i in value.bad_merges]
                problems += [_repeated_key(path, *repeat) for repeat in value.repeats]
        elif isinstance(value, (list, tuple)):
            children = [(item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value)]
        elif isinstance(value, str):
            if not _is_text(value):
                problems.append(_invalid(path, "is not valid Unicode text (a lone surrogate escape)"))
        elif isinstance(value, float):
            if not math.isfinite(value):
                problems.append(_invalid(path, "must be a finite number (not NaN or infinity)"))
        elif value is None or isinstance(value, int):  # bool is an int
            pass
        elif isinstance(value, _Refused):
            problems.append(_invalid(path, value.reason))
        elif isinstance(value, (datetime.date, datetime.time)):
            problems.append(_invalid(path, "is a date or time; quote it to make it a string"))
        else:
            problems.append(_invalid(path, f"is a {type(value).__name__}; expected a string, number, boolean, null, list or mapping"))
        stack += reversed(children)
    return problems[:_MAX_PROBLEMS]


def _is_text(s: str) -> bool:
    """Whether ``s`` is valid Unicode (JSON's and YAML's ``\\ud800``
    escapes make lone surrogates, which cannot be sent)."""
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _line_col(text: str, offset: int) -> str:
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return f"at line {line}, column {column}"


def _too_deep_at(text: str, tokens: re.Pattern[str]) -> int | None:
    """The offset of the first bracket past ``MAX_DEPTH`` levels, strings
    and comments skipped (``tokens`` finds them and the brackets); linear,
    so a parser that recurses never sees such a text."""
    depth = 0
    for m in tokens.finditer(text):
        bracket = text[m.start()]
        if bracket in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return m.start()
        elif bracket in "]}":
            depth = max(depth - 1, 0)
    return None


def _too_deep(name: str, fmt: str, text: str, offset: int) -> ConfigError:
    return ConfigError(f"{name}: invalid {fmt}: nested more than {MAX_DEPTH} levels deep ({_line_col(text, offset)})")


# -- TOML ---------------------------------------------------------------------------

# Strings (each kind; an unterminated one runs to the end), comments and
# brackets. No pattern can backtrack far: every alternative ends at its
# first possible end.
_TOML_TOKENS = re.compile(
    r'"""[\s\S]*?(?:"""|\Z)'
    r"|'''[\s\S]*?(?:'''|\Z)"
    r'|"[^"\\\n]*(?:\\.[^"\\\n]*)*"?'
    r"|'[^'\n]*'?"
    r"|#[^\n]*"
    r"|[\[\]{}]"
)
_TOML_WHERE = re.compile(r"^(.*) \((at line \d+, column \d+|at end of document)\)$", re.S)
# tomllib's messages that quote the file, as words that do not.
_TOML_REWORDED = (
    ("Cannot declare", "a table is defined twice"),
    ("Cannot redefine namespace", "a table is defined twice"),
    ("Cannot overwrite a value", "a key is given twice"),
    ("Duplicate inline table key", "a key is given twice in an inline table"),
    ("Cannot mutate immutable namespace", "an inline table or array cannot be extended"),
    ("Found invalid character", "a character that cannot be here"),
    ("Illegal character", "a character a string cannot hold"),
)


def _toml_message(message: str) -> str:
    """tomllib's message without anything it quotes from the file."""
    m = _TOML_WHERE.match(message)
    problem, where = (m.group(1), f" ({m.group(2)})") if m else (message, "")
    for prefix, words in _TOML_REWORDED:
        if problem.startswith(prefix):
            return words + where
    # The rest are fixed words, or quote what the parser expected.
    if re.fullmatch(r"[A-Za-z ,]+|Expected '[^']{1,3}'[A-Za-z ,/]*|Unescaped '\\' in a string", problem):
        return problem + where
    return "cannot parse" + where


def _parse_toml(name: str, text: str) -> Any:
    try:
        import tomllib  # Python 3.11+
    except ImportError:
        try:
            import tomli as tomllib  # type: ignore[no-redef,import-not-found,unused-ignore]
        except ImportError:
            raise ConfigError(f"{name}: reading TOML on Python 3.10 needs tomli: pip install tomli") from None
    deep = _too_deep_at(text, _TOML_TOKENS)
    if deep is not None:
        raise _too_deep(name, "TOML", text, deep)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{name}: invalid TOML: {_toml_message(str(e))}") from None
    except ValueError:
        # int() past sys.get_int_max_str_digits(), the only ValueError
        # tomllib lets through; its message says nothing of where.
        raise ConfigError(f"{name}: invalid TOML: an integer too long to read (too many digits)") from None
    except RecursionError:  # the scan above should make this unreachable
        raise ConfigError(f"{name}: invalid TOML: nested more than {MAX_DEPTH} levels deep") from None


# -- JSON ---------------------------------------------------------------------------

_JSON_TOKENS = re.compile(r'"[^"\\]*(?:\\[\s\S][^"\\]*)*"?|[\[\]{}]')


def _json_object(pairs: list[tuple[str, Any]]) -> _Object:
    obj = _Object()
    first: dict[str, int] = {}
    for index, (key, value) in enumerate(pairs):
        if key in first:
            obj.repeats.append((key, first[key], index))
        else:
            first[key] = index
            obj[key] = value
    return obj


def _json_int(digits: str) -> Any:
    try:
        return int(digits)
    except ValueError:  # past sys.get_int_max_str_digits()
        return _TOO_LONG


def _parse_json(name: str, text: str) -> Any:
    import json

    deep = _too_deep_at(text, _JSON_TOKENS)
    if deep is not None:
        raise _too_deep(name, "JSON", text, deep)
    try:
        return json.loads(text, object_pairs_hook=_json_object, parse_int=_json_int)
    except json.JSONDecodeError as e:
        # The C scanner's messages are fixed words; the Python one's may end
        # with ": 'x'" (a character of the file).
        problem = e.msg.split(": ", 1)[0]
        raise ConfigError(f"{name}: invalid JSON: {problem} (at line {e.lineno}, column {e.colno})") from None
    except RecursionError:  # the scan above should make this unreachable
        raise ConfigError(f"{name}: invalid JSON: nested more than {MAX_DEPTH} levels deep") from None


# -- YAML ---------------------------------------------------------------------------


class _YamlRefusal(Exception):
    """A YAML file refused while its events stream in (too deep, too many
    values after aliases, a bad alias), with where."""

    def __init__(self, reason: str, mark: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        self.mark = mark


def _yaml_at(mark: Any) -> str:
    return f" (at line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""


def _yaml_problem(problem: str | None) -> str:
    """A PyYAML scanner or parser problem without what it quotes from the
    file (a character, a tag handle); token names (``'<block end>'``) stay."""
    if not problem:
        return "cannot parse"
    quoted = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
    return quoted.sub(lambda m: m.group() if re.fullmatch(r"'<[a-z ]+>'", m.group()) else "(not shown)", problem)


def _parse_yaml(name: str, text: str) -> Any:
    try:
        import yaml  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError:
        raise ConfigError(f"{name}: reading YAML needs PyYAML: pip install pyyaml") from None
    try:
        return _YamlBuilder(yaml).build(yaml.parse(text, Loader=yaml.SafeLoader))
    except _YamlRefusal as e:
        raise ConfigError(f"{name}: invalid YAML: {e.reason}{_yaml_at(e.mark)}") from None
    except yaml.MarkedYAMLError as e:
        # str(e) quotes the offending line, which may hold a key: build the
        # message from the problem and its position only.
        raise ConfigError(f"{name}: invalid YAML: {_yaml_problem(e.problem)}{_yaml_at(e.problem_mark)}") from None
    except yaml.reader.ReaderError as e:
        raise ConfigError(f"{name}: invalid YAML: a character YAML does not allow (character {e.position + 1})") from None
    except yaml.YAMLError:
        raise ConfigError(f"{name}: invalid YAML: cannot parse") from None


_YAML = "tag:yaml.org,2002:"
_YAML_TAG_REFUSED = "has a YAML tag a config cannot hold (it holds strings, numbers, true/false, null, lists and mappings)"
_MERGE = object()  # the key `<<`
_NO_KEY = object()


class _Collection:
    """A list or mapping whose events are streaming in."""

    __slots__ = ("anchor", "height", "key", "keys", "mark", "merges", "refused", "start_count", "value")

    def __init__(self, value: list[Any] | _Object, anchor: str | None, start_count: int, refused: bool, mark: Any) -> None:
        self.value = value
        self.anchor = anchor
        self.start_count = start_count
        self.refused = refused
        self.mark = mark
        self.height = 1  # levels of lists and mappings, this one included
        # Mappings only: the key waiting for its value (a str, _MERGE, or
        # an int: the index of a key that is not a string), the index of
        # each key given, the mappings `<<` merges in.
        self.key: Any = _NO_KEY
        self.keys: dict[str, int] = {}
        self.merges: list[Mapping[str, Any]] = []


class _YamlBuilder:
    """Plain values from PyYAML's events (``yaml.parse``), without PyYAML's
    composer and constructor: the parser is a state machine, so nothing
    recurses, and every limit holds before anything is built. An alias
    shares its anchor's value (as PyYAML does); ``count`` is the number of
    values with every alias expanded, each alias adding its anchor's
    count."""

    def __init__(self, yaml: Any) -> None:
        self.yaml = yaml
        self.resolver = yaml.resolver.Resolver()
        self.constructor = yaml.constructor.SafeConstructor()
        # anchor -> (value, count, height); open anchors are not in it yet
        self.anchors: dict[str, tuple[Any, int, int]] = {}
        self.open_anchors: set[str] = set()
        self.stack: list[_Collection] = []
        self.count = 0
        self.documents = 0
        self.root: Any = None

    def build(self, events: Iterable[Any]) -> Any:
        e = self.yaml.events
        for event in events:
            if isinstance(event, e.ScalarEvent):
                self.scalar(event)
            elif isinstance(event, e.AliasEvent):
                self.alias(event)
            elif isinstance(event, (e.SequenceStartEvent, e.MappingStartEvent)):
                self.start(event, isinstance(event, e.MappingStartEvent))
            elif isinstance(event, e.CollectionEndEvent):
                self.end()
            elif isinstance(event, e.DocumentStartEvent):
                self.documents += 1
                if self.documents > 1:
                    raise _YamlRefusal("more than one document (a config is one mapping)", event.start_mark)
        return self.root

    def counted(self, n: int, mark: Any) -> None:
        self.count += n
        if self.count > MAX_YAML_VALUES:
            raise _YamlRefusal(f"more than {MAX_YAML_VALUES:,} values once aliases are expanded", mark)

    def anchored(self, anchor: str | None, mark: Any) -> None:
        if anchor is not None and (anchor in self.anchors or anchor in self.open_anchors):
            raise _YamlRefusal("an anchor is defined twice", mark)

    def scalar(self, event: Any) -> None:
        self.anchored(event.anchor, event.start_mark)
        self.counted(1, event.start_mark)
        tag = event.tag
        if tag is None or tag == "!":
            tag = self.resolver.resolve(self.yaml.ScalarNode, event.value, event.implicit)
        value = self.construct(tag, event.value)
        if event.anchor is not None:
            self.anchors[event.anchor] = (value, 1, 0)
        self.add(value, 0)

    def construct(self, tag: str, text: str) -> Any:
        if tag == _YAML + "str":
            return text
        if tag == _YAML + "null":
            return None
        if tag == _YAML + "bool":
            lowered = text.lower()
            if lowered in ("yes", "true", "on", "no", "false", "off"):
                return lowered in ("yes", "true", "on")
            return _Refused("is tagged !!bool but is not true or false")
        if tag in (_YAML + "int", _YAML + "float"):
            kind = tag[len(_YAML) :]
            # int() stops at 4300 digits, and PyYAML reads base 60
            # (1:30:00) by multiplying: bound the work.
            if len(text) > 4300:
                return _Refused("is a number too long to read (too many digits)")
            node = self.yaml.ScalarNode(tag, text)
            try:
                if kind == "int":
                    return self.constructor.construct_yaml_int(node)
                return self.constructor.construct_yaml_float(node)
            except Exception:  # ValueError, ...: its message holds the text
                # Only an explicit tag gets here: what the resolver calls
                # a number always reads as one.
                return _Refused(f"is tagged !!{kind} but is not one")
        if tag == _YAML + "merge":
            return _MERGE
        if tag == _YAML + "timestamp":
            return _Refused("is a date or time; quote it to make it a string")
        if tag == _YAML + "value":
            return _Refused("is YAML's value key (=); quote it to make it a string")
        return _Refused(_YAML_TAG_REFUSED)

    def alias(self, event: Any) -> None:
        anchor = event.anchor
        if anchor in self.open_anchors:
            raise _YamlRefusal("an alias refers to the node that contains it", event.start_mark)
        if anchor not in self.anchors:
            raise _YamlRefusal("an alias refers to an anchor not defined before it", event.start_mark)
        value, count, height = self.anchors[anchor]
        if len(self.stack) + height > MAX_DEPTH:
            raise _YamlRefusal(f"an alias nests more than {MAX_DEPTH} levels deep", event.start_mark)
        self.counted(count, event.start_mark)
        self.add(value, height)

    def start(self, event: Any, mapping: bool) -> None:
        self.anchored(event.anchor, event.start_mark)
        if len(self.stack) >= MAX_DEPTH:
            raise _YamlRefusal(f"nested more than {MAX_DEPTH} levels deep", event.start_mark)
        self.counted(1, event.start_mark)
        expected = _YAML + ("map" if mapping else "seq")
        refused = event.tag not in (None, "!", expected)
        value: list[Any] | _Object = _Object() if mapping else []
        self.stack.append(_Collection(value, event.anchor, self.count - 1, refused, event.start_mark))
        if event.anchor is not None:
            self.open_anchors.add(event.anchor)

    def end(self) -> None:
        done = self.stack.pop()
        if isinstance(done.value, _Object):
            self.merge(done)
        value: Any = _Refused(_YAML_TAG_REFUSED) if done.refused else done.value
        if done.anchor is not None:
            self.open_anchors.discard(done.anchor)
            self.anchors[done.anchor] = (value, self.count - done.start_count, done.height)
        self.add(value, done.height)

    def merge(self, done: _Collection) -> None:
        """YAML's merge key: the keys of ``<<``'s mappings that the mapping
        does not give itself; of several mappings, the first wins."""
        obj = done.value
        assert isinstance(obj, _Object)
        for source in done.merges:
            for key, value in source.items():
                if key not in obj:
                    obj[key] = value

    def add(self, value: Any, height: int) -> None:
        top = self.stack[-1] if self.stack else None
        if top is None or isinstance(top.value, list) or top.key is not _NO_KEY:
            if value is _MERGE:  # `<<` where a value goes
                value = _Refused("is YAML's merge key (<<) where a value goes; quote it to make it a string")
        if top is None:
            self.root = value
            return
        top.height = max(top.height, height + 1)
        if isinstance(top.value, list):
            top.value.append(value)
            return
        if top.key is _NO_KEY:
            self.add_key(top, value)
            return
        key, top.key = top.key, _NO_KEY
        obj = top.value
        if key is _MERGE:
            sources = value if isinstance(value, list) else [value]
            if all(isinstance(s, Mapping) for s in sources):
                top.merges += sources
            else:
                obj.bad_merges.append(top.keys["<<"])
        elif isinstance(key, str):
            obj[key] = value
        # else: the value of a key that is not a string, already reported

    def add_key(self, top: _Collection, key: Any) -> None:
        obj = top.value
        assert isinstance(obj, _Object)
        index = len(top.keys) + len(obj.bad_keys) + len(obj.repeats)  # its position in the file
        name = "<<" if key is _MERGE else key
        if not isinstance(name, str):
            obj.bad_keys.append(index)
            top.key = index
        elif name in top.keys:
            obj.repeats.append((name, top.keys[name], index))
            top.key = index
        else:
            top.keys[name] = index
            top.key = key
