"""Hostile config files: whatever a file holds, Router.from_file raises
ConfigError and nothing else, ``python -m f3dx_router check`` prints one
``error:`` line per problem (never a traceback) and exits 1, memory and time
stay bounded (YAML aliases, nesting, huge numbers), and no message repeats a
value from the file: the key planted in every value below never shows up.
Nothing here sends a request."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import f3dx_router
from f3dx_router import ConfigError, Router
from f3dx_router import __main__ as cli
from f3dx_router import _config

# Recognizable, so that a leak of any part of it shows up in a search; the
# second has no `-` (Groq-, Mistral-, Together-shaped keys).
KEY = "sk-live-F3DXPLANT-0123456789abcdef"
KEY_NO_DASH = "gsk_F3DXPLANT0123456789abcdefGHIJ"
MARKER = "F3DXPLANT"
URL = "http://127.0.0.1:9/v1"
HAVE_YAML = importlib.util.find_spec("yaml") is not None
needs_yaml = pytest.mark.skipif(not HAVE_YAML, reason="PyYAML is not installed")


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def provider(**extra: Any) -> dict[str, Any]:
    return {"name": "a", "kind": "openai", "base_url": URL, "api_key": KEY, **extra}


def json_config(**extra: Any) -> str:
    return json.dumps({"providers": [provider(**extra)]})


def yaml_config(extra: str) -> str:
    """A one-provider YAML config with ``extra`` lines in the provider."""
    lines = ["providers:", "  - name: a", "    kind: openai", f"    base_url: {URL}", *(f"    {line}" for line in extra.splitlines())]
    if "api_key" not in extra:
        lines.append(f"    api_key: {KEY}")
    return "\n".join(lines) + "\n"


def refused(path: Path) -> ConfigError:
    """Router.from_file's ConfigError (and nothing else), which must not
    carry the planted key; and `check`'s output for the same file."""
    try:
        Router.from_file(path)
    except ConfigError as e:
        error = e
    else:
        raise AssertionError(f"{path.name}: accepted")
    for text in (str(error), repr(error), error.field):
        assert MARKER not in text, text
    assert error.message.startswith(f"{path}: ")
    lines = check_lines(path)
    # The message lists every error, one a line (the first one first);
    # check's line may add the provider's name.
    first = error.message.splitlines()[0]
    assert lines[0] == f"error: {first}" or lines[0].startswith(f"error: {first} (provider "), lines[0]
    return error


def check_lines(path: Path) -> list[str]:
    """`check`'s stderr lines (in this process: an exception escaping it
    fails the test); each is an `error:` line without the planted key."""
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = cli.main(["check", str(path)])
    assert status == 1
    assert out.getvalue() == ""
    lines = err.getvalue().splitlines()
    assert lines, "no error line"
    for line in lines:
        assert line.startswith(f"error: {path}: "), line
        assert MARKER not in line, line
    return lines


def run_check(path: Path) -> subprocess.CompletedProcess[str]:
    package_root = str(Path(f3dx_router.__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)}
    return subprocess.run(
        [sys.executable, "-m", "f3dx_router", "check", str(path)],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )


# -- YAML aliases: bounded before anything is expanded -------------------------

# The "billion laughs" under `providers` (where the old loader handed it to
# the router, which expanded it): each level nine aliases of the one
# before, 9^9 strings once expanded (gigabytes, then a SIGABRT).
ALIAS_BOMB = "providers:\n- &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
    f"- &{b} [*{a},*{a},*{a},*{a},*{a},*{a},*{a},*{a},*{a}]\n" for a, b in zip("abcdefgh", "bcdefghi")
)
# The same in flow style, as one line, with mappings.
ALIAS_BOMB_FLOW = "{providers: [" + ",".join(
    ["&a {a: 1, b: 1, c: 1, d: 1, e: 1, f: 1, g: 1, h: 1, i: 1}"]
    + [f"&{b} [*{a},*{a},*{a},*{a},*{a},*{a},*{a},*{a},*{a},*{a}]" for a, b in zip("abcdefghi", "bcdefghij")]
) + "]}"


@needs_yaml
@pytest.mark.parametrize("text", [ALIAS_BOMB, ALIAS_BOMB_FLOW], ids=["block", "flow"])
def test_alias_bomb_is_refused_in_bounded_memory(tmp_path: Path, text: str) -> None:
    assert len(text) < 600
    path = write(tmp_path, "bomb.yaml", text)
    # In a child process with an address-space cap (so that a regression
    # fails the test rather than the machine): its peak RSS, read from
    # /proc/self/status before it exits.
    code = textwrap.dedent(f"""
        import json, resource, sys
        resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
        from f3dx_router import ConfigError, Router
        try:
            Router.from_file({str(path)!r})
            outcome = "accepted"
        except ConfigError as e:
            outcome = e.message
        hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM:")][0]
        print(json.dumps({{"outcome": outcome, "hwm_kb": int(hwm.split()[1])}}))
    """)
    package_root = str(Path(f3dx_router.__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": package_root}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["outcome"].startswith(f"{path}: invalid YAML: more than 100,000 values once aliases are expanded (at line ")
    assert result["hwm_kb"] < 300 * 1024, result
    done = run_check(path)
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr.startswith(f"error: {path}: invalid YAML: more than 100,000 values")
    assert "Traceback" not in done.stderr


@needs_yaml
def test_aliases_under_the_limit_and_merge_keys_work(tmp_path: Path) -> None:
    # Anchors for shared provider settings, merged with `<<` (the mapping's
    # own keys win; of several merged mappings, the first wins).
    text = textwrap.dedent(f"""\
        policy: &p hedged
        providers:
          - &first {{name: a, kind: openai, base_url: "{URL}", api_key: {KEY}, timeout_ms: 1000, rpm: 60}}
          - <<: [*first, {{tpm: 5, rpm: 1}}]
            name: b
            timeout_ms: 2000
        """)
    config, router = _config.load_router(write(tmp_path, "ok.yaml", text))
    assert router.providers == ["a", "b"] and router.policy == "hedged"
    assert config["providers"][1] == {
        "name": "b", "timeout_ms": 2000, "kind": "openai", "base_url": URL, "api_key": KEY, "rpm": 60, "tpm": 5,
    }
    # 99,004 values with aliases expanded (keys count): still read.
    many = "x: &x [" + ",".join(["1"] * 999) + "]\n" + "y: [" + ",".join(["*x"] * 98) + "]\n"
    assert _config.load_config(write(tmp_path, "many.yaml", many))["y"][97][998] == 1


@needs_yaml
@pytest.mark.parametrize(
    ("text", "message"),
    [
        # Each anchor one level deeper than the last: small in count, deep.
        ("a0: &a0 [1]\n" + "".join(f"a{i}: &a{i} [*a{i - 1}]\n" for i in range(1, 40)),
         "an alias nests more than 32 levels deep (at line 32, column"),
        ("a: &a [1, *a]\n", "an alias refers to the node that contains it (at line 1, column 11)"),
        ("a: *nope\n", "an alias refers to an anchor not defined before it (at line 1, column 4)"),
        ("a: &x 1\nb: &x 2\n", "an anchor is defined twice (at line 2, column 4)"),
        ("a: 1\n---\nb: 2\n", "more than one document (a config is one mapping) (at line 2, column 1)"),
    ],
    ids=["deep-through-aliases", "recursive", "undefined", "anchor-twice", "two-documents"],
)
def test_bad_aliases_and_documents(tmp_path: Path, text: str, message: str) -> None:
    e = refused(write(tmp_path, "bad.yaml", text))
    assert e.message.startswith(f"{tmp_path / 'bad.yaml'}: invalid YAML: {message}"), e.message


# -- nesting: bounded before a recursive parser sees it ------------------------


DEEP = 100_000


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("flow.yaml", "[" * DEEP, "invalid YAML: nested more than 32 levels deep (at line 1, column 33)"),
        ("block.yaml", "".join(f"{' ' * i}k:\n" for i in range(1000)), "invalid YAML: nested more than 32 levels deep (at line 33, column 33)"),
        ("arrays.json", "[" * DEEP + "]" * DEEP, "invalid JSON: nested more than 32 levels deep (at line 1, column 33)"),
        ("objects.json", '{"a":' * DEEP, "invalid JSON: nested more than 32 levels deep (at line 1, column 161)"),
        ("brackets-in-strings.json", '["[[[[", ' * 40 + "1" + "]" * 40, "invalid JSON: nested more than 32 levels deep (at line 1, column 289)"),
        ("arrays.toml", "a = " + "[" * DEEP, "invalid TOML: nested more than 32 levels deep (at line 1, column 37)"),
        ("inline.toml", "a = " + "{b = " * DEEP, "invalid TOML: nested more than 32 levels deep (at line 1, column 165)"),
        ("dotted.toml", ".".join(["a"] * 10_000) + " = 1\n", "invalid router config: config.#1.#1"),
    ],
)
def test_deep_nesting_is_a_config_error(tmp_path: Path, name: str, text: str, message: str) -> None:
    if name.endswith(".yaml") and not HAVE_YAML:
        pytest.skip("PyYAML is not installed")
    path = write(tmp_path, name, text)
    e = refused(path)
    assert e.message.startswith(f"{path}: {message}"), e.message
    assert "nested more than 32 levels deep" in e.message


def test_nesting_up_to_the_limit_is_read(tmp_path: Path) -> None:
    text = "[" * 32 + "]" * 32
    assert _config.load_config(write(tmp_path, "ok.json", text)) == json.loads(text)
    # Brackets inside strings and comments do not count.
    toml = 'a = "' + "[" * 100 + '" # ' + "{" * 100 + "\nb = '''\n" + "[" * 100 + "'''\n"
    assert _config.load_config(write(tmp_path, "ok.toml", toml))["a"] == "[" * 100


# -- values a config cannot hold: refused with their key path ------------------


def digits(n: int) -> str:
    return "1" * n


@pytest.mark.parametrize(
    ("name", "text", "field", "message"),
    [
        ("bigint.json", json_config(rpm="BIG").replace('"BIG"', digits(5000)), "providers[0].rpm", "is an integer too long to read (too many digits)"),
        ("nan.json", json_config(weight="N").replace('"N"', "NaN"), "providers[0].weight", "must be a finite number (not NaN or infinity)"),
        ("inf.json", json_config(weight="N").replace('"N"', "1e999"), "providers[0].weight", "must be a finite number (not NaN or infinity)"),
        ("surrogate.json", json_config(api_key="S").replace('"S"', '"\\ud800' + KEY + '"'), "providers[0].api_key", "is not valid Unicode text"),
        ("date.toml", f'[[providers]]\nname = "a"\nmodel = 1979-05-27\napi_key = "{KEY}"\n', "providers[0].model", "is a date or time; quote it to make it a string"),
        ("timestamp.yaml", yaml_config("model: !!timestamp 2001-12-14"), "providers[0].model", "is a date or time; quote it"),
        ("implicit-date.yaml", yaml_config("model: 2024-05-01"), "providers[0].model", "is a date or time; quote it"),
        ("int-tag.yaml", yaml_config(f"api_key: !!int {KEY}"), "providers[0].api_key", "is tagged !!int but is not one"),
        ("int-tag-no-dash.yaml", yaml_config(f"api_key: !!int {KEY_NO_DASH}"), "providers[0].api_key", "is tagged !!int but is not one"),
        ("float-tag.yaml", yaml_config(f"api_key: !!float {KEY}"), "providers[0].api_key", "is tagged !!float but is not one"),
        ("bool-tag.yaml", yaml_config(f"api_key: !!bool {KEY}"), "providers[0].api_key", "is tagged !!bool but is not true or false"),
        ("bigint.yaml", yaml_config(f"rpm: {digits(5000)}"), "providers[0].rpm", "is a number too long to read"),
        ("base60.yaml", yaml_config("rpm: 1" + ":11" * 3000), "providers[0].rpm", "is a number too long to read"),
        ("binary.yaml", yaml_config(f"api_key: !!binary {KEY}"), "providers[0].api_key", "has a YAML tag a config cannot hold"),
        ("custom-tag.yaml", yaml_config(f"api_key: !vault {KEY}"), "providers[0].api_key", "has a YAML tag a config cannot hold"),
        ("tag-is-key.yaml", yaml_config(f"api_key: !<tag:{KEY}> x"), "providers[0].api_key", "has a YAML tag a config cannot hold"),
        ("python-tag.yaml", yaml_config("api_key: !!python/object/apply:os.system [echo]"), "providers[0].api_key", "has a YAML tag a config cannot hold"),
        ("set.yaml", yaml_config(f"headers: !!set {{{KEY}}}"), "providers[0].headers", "has a YAML tag a config cannot hold"),
        ("omap.yaml", yaml_config(f"headers: !!omap [x-a: {KEY}]"), "providers[0].headers", "has a YAML tag a config cannot hold"),
        ("inf.yaml", yaml_config("weight: .inf"), "providers[0].weight", "must be a finite number"),
        ("int-key.yaml", yaml_config("1: x"), "providers[0].#4", "is not a string key; quote it"),
        ("list-key.yaml", yaml_config(f"? [{KEY}]\n: x"), "providers[0].#4", "is not a string key; quote it"),
        ("merge-scalar.yaml", yaml_config(f"<<: {KEY}"), "providers[0].#4", "is a YAML merge (<<) of something else than mappings"),
        ("merge-value.yaml", yaml_config("model: <<"), "providers[0].model", "is YAML's merge key (<<) where a value goes"),
    ],
)
def test_values_a_config_cannot_hold(tmp_path: Path, name: str, text: str, field: str, message: str) -> None:
    if name.endswith(".yaml") and not HAVE_YAML:
        pytest.skip("PyYAML is not installed")
    path = write(tmp_path, name, text)
    e = refused(path)
    assert e.field == field, e.message
    assert e.message.startswith(f"{path}: invalid router config: {field}: {message}"), e.message


def test_toml_integer_too_long(tmp_path: Path) -> None:
    path = write(tmp_path, "big.toml", f"hedge_k = {digits(5000)}\n")
    assert refused(path).message == f"{path}: invalid TOML: an integer too long to read (too many digits)"


def test_file_too_large(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    path.write_bytes(b" " * (16 * 1024 * 1024) + b"{}")
    assert refused(path).message == f"{path}: larger than 16 MiB; a router config is a few kilobytes"


# -- repeated keys: refused in every format ------------------------------------


@pytest.mark.parametrize(
    ("name", "text", "field", "message"),
    [
        ("top.json", '{"policy": "hedged", "providers": [], "policy": "sequential"}', "policy", "is given twice (keys #1 and #3); give each key once"),
        ("provider.json", json_config(api_key=KEY).replace("}]}", f', "api_key": "{KEY_NO_DASH}"}}]}}'), "providers[0].api_key", "is given twice (keys #4 and #5); give each key once"),
        ("unknown.json", f'{{"providers": [], "{KEY}": 1, "{KEY}": 2}}', "config.#3", "repeats key #2; give each key once"),
        ("header.json", json_config(headers={"x-a": "1"}).replace('"1"}', f'"1", "x-a": "{KEY}"}}'), "providers[0].headers.#2", "repeats key #1; give each key once"),
        ("top.yaml", yaml_config("timeout_ms: 1\ntimeout_ms: 2"), "providers[0].timeout_ms", "is given twice (keys #4 and #5); give each key once"),
        ("unknown.yaml", yaml_config(f"{KEY}: 1\n{KEY}: 2"), "providers[0].#5", "repeats key #4; give each key once"),
    ],
)
def test_repeated_keys(tmp_path: Path, name: str, text: str, field: str, message: str) -> None:
    if name.endswith(".yaml") and not HAVE_YAML:
        pytest.skip("PyYAML is not installed")
    path = write(tmp_path, name, text)
    e = refused(path)
    assert e.field == field, e.message
    assert e.message == f"{path}: invalid router config: {field}: {message}", e.message


def test_toml_refuses_repeated_keys_itself(tmp_path: Path) -> None:
    path = write(tmp_path, "r.toml", f'policy = "hedged"\npolicy = "{KEY}"\n')
    assert refused(path).message.startswith(f"{path}: invalid TOML: a key is given twice (at line 2, column ")
    path = write(tmp_path, "t.toml", f'[health]\n[health]\n["{KEY}"]\n["{KEY}"]\n')
    assert refused(path).message.startswith(f"{path}: invalid TOML: a table is defined twice (at line 2, column ")


# -- no message repeats a value ----------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"base_url": KEY}, "providers[0].base_url"),  # once echoed twice: e.g. "https://sk-..."
        ({"base_url": f"https://{KEY}.test/v 1"}, "providers[0].base_url"),
        ({"base_url": f"https://{KEY}.test\\v1"}, "providers[0].base_url"),
        ({"base_url": f"https://{KEY}.test:99999/v1"}, "providers[0].base_url"),
        ({"base_url": f"ftp://{KEY}.test/v1"}, "providers[0].base_url"),
        ({"kind": KEY}, "providers[0].kind"),
        ({"api_key_env": KEY}, "providers[0].api_key_env"),
        ({"api_key_env": KEY_NO_DASH}, "providers[0].api_key_env"),
        ({KEY: 1}, "providers[0].#5"),
        ({"headers": {KEY: "v\n"}}, "providers[0].headers.#1"),
        ({"headers": {f"{KEY} x": "v"}}, "providers[0].headers.#1"),
        ({"headers": {"x-a": f"{KEY}\n"}}, "providers[0].headers.#1"),
        ({"name": f"{KEY}\n"}, "providers[0].name"),
    ],
)
def test_no_message_repeats_a_value(tmp_path: Path, extra: dict[str, Any], field: str) -> None:
    config = {"providers": [{k: v for k, v in provider(**extra).items() if not (k == "api_key" and "api_key_env" in extra)}]}
    path = write(tmp_path, "r.json", json.dumps(config))
    assert refused(path).field == field
    with pytest.raises(ConfigError) as info:
        Router.from_config(config)
    assert MARKER not in str(info.value) and info.value.field == field


def test_policy_and_unknown_top_level_keys(tmp_path: Path) -> None:
    path = write(tmp_path, "r.json", json.dumps({"providers": [provider()], "policy": KEY}))
    assert refused(path).message.endswith('policy: is not a policy: "sequential", "weighted" or "hedged"')
    # Two unknown keys: two error lines from `check`.
    path = write(tmp_path, "u.json", json.dumps({KEY: 1, "providers": [provider()], "polcy": "hedged"}))
    e = refused(path)
    assert e.field == "config.#1"
    assert check_lines(path)[1] == (
        f"error: {path}: invalid router config: config.#3: unknown key (did you mean policy?); expected one of: "
        "providers, policy, hedge_k, hedge_delay_ms, hedge_delay_fallback_ms, hedge_budget, health, quality, "
        "models, fallbacks, context_window_fallbacks, content_policy_fallbacks, "
        "failover_on, retries, backoff_ms, backoff_max_ms, unsupported_params, forward_headers, otel"
    )


@needs_yaml
def test_several_problems_give_several_lines(tmp_path: Path) -> None:
    text = yaml_config(f"model: !!binary {KEY}\nrpm: !!int {KEY}\nrpm: 5") + f"policy: !vault {KEY}\n"
    path = write(tmp_path, "many.yaml", text)
    # An object's own problems (a repeated key) come before its values'.
    assert check_lines(path) == [
        f"error: {path}: invalid router config: providers[0].rpm: is given twice (keys #5 and #6); give each key once",
        f"error: {path}: invalid router config: providers[0].model: {_config._YAML_TAG_REFUSED}",
        f"error: {path}: invalid router config: providers[0].rpm: is tagged !!int but is not one",
        f"error: {path}: invalid router config: policy: {_config._YAML_TAG_REFUSED}",
    ]


@needs_yaml
def test_yaml_parse_errors_quote_nothing(tmp_path: Path) -> None:
    # PyYAML's own message quotes the line (and the character or tag).
    for text in (f"a: 1\n\tb: {KEY}\n", f'a: "{KEY}\\q"\n', f"a: !{KEY}!x 1\n", f"a: {KEY}\x07\n"):
        e = refused(write(tmp_path, "p.yaml", text))
        assert e.message.startswith(f"{tmp_path / 'p.yaml'}: invalid YAML: "), e.message


def test_json_and_toml_parse_errors_quote_nothing(tmp_path: Path) -> None:
    for name, text in (("p.json", f'{{"a": "{KEY}\\q"}}'), ("p.toml", f'a = "{KEY}\x07"'), ("q.toml", f"{KEY} = 1\n{KEY} = 2"),
                       ("r.toml", f'a = {{"{KEY}" = 1, "{KEY}" = 2}}'), ("s.toml", f"[a]\nb = 1\n[a.b.{KEY}]\n")):
        e = refused(write(tmp_path, name, text))
        assert " invalid JSON: " in e.message or " invalid TOML: " in e.message, e.message


# -- the last resort -----------------------------------------------------------------


def test_an_unexpected_exception_is_named_by_its_type_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "r.json", json_config())

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise KeyError(KEY)

    monkeypatch.setattr(_config, "_parse_file", broken)
    e = refused(path)
    assert e.message == f"{path}: cannot read the config: unexpected KeyError (a bug: please report it)"
    monkeypatch.undo()
    monkeypatch.setattr(cli, "check_config", broken)
    assert check_lines(path) == [f"error: {path}: cannot check the config: unexpected KeyError (a bug: please report it)"]


def test_check_in_a_process_prints_only_error_lines(tmp_path: Path) -> None:
    for name, text in (("deep.json", "[" * DEEP), ("big.json", json_config(rpm="B").replace('"B"', digits(5000))),
                       ("kind.json", json_config(kind=KEY))):
        done = run_check(write(tmp_path, name, text))
        assert (done.returncode, done.stdout) == (1, "")
        assert done.stderr.startswith("error: ") and "Traceback" not in done.stderr and MARKER not in done.stderr


# -- the Python loader and the core say the same --------------------------------------


def core_message(**extra: Any) -> str:
    with pytest.raises(ConfigError) as info:
        Router.from_config({"providers": [provider()], **extra})
    return info.value.message


def test_key_lists_are_the_cores() -> None:
    def listed(message: str) -> tuple[str, ...]:
        return tuple(message.split("expected one of: ", 1)[1].split(", "))

    with pytest.raises(ConfigError) as info:
        Router([provider(zz=1)])
    assert listed(info.value.message) == _config._PROVIDER_KEYS
    assert listed(core_message(health={"zz": 1})) == _config._HEALTH_KEYS
    assert listed(core_message(quality={"zz": 1})) == _config._QUALITY_KEYS


@pytest.mark.parametrize("typo", ["timeout", "timeout_msec", "Timeout-MS", "apikey", "nme", "tim", "xyz", "rmp", KEY, "a" * 70])
def test_suggestions_are_the_cores(typo: str) -> None:
    with pytest.raises(ConfigError) as info:
        Router([provider(**{typo: 1})])
    hint = _config._suggestion(typo, _config._PROVIDER_KEYS)
    assert (f"(did you mean {hint}?)" in info.value.message) if hint else ("did you mean" not in info.value.message)
