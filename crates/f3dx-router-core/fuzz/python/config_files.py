"""atheris target `config_files`: the Python package's config-file loaders
(TOML, JSON, YAML) and ``python -m f3dx_router check`` on any bytes.

The first byte picks the file's suffix (``T`` .toml, ``J`` .json, ``Y``
.yaml, ``y`` .yml, any other byte by its value); the rest is the file. For
every input, ``check`` (which reads the file with ``load_router``'s code and
builds the router) returns 0 or 1 and raises nothing; when it refuses the
file, every stderr line is an ``error:`` line, none is the last-resort one
(an exception other than ConfigError: a bug), and none holds ``PLANTED``
(the seeds plant ``sk-PLANTED-...`` in values, keys, tags and anchors: no
message may repeat a value). libFuzzer's ``-rss_limit_mb`` bounds memory
(scripts/fuzz.sh passes 1024).

Run it through ``bash scripts/fuzz.sh run config_files SECONDS``.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
import tempfile

import atheris

with atheris.instrument_imports(include=["f3dx_router", "yaml", "tomllib", "json"]):
    import json  # noqa: F401 - instrumented for coverage
    import tomllib  # noqa: F401
    import yaml  # noqa: F401

    from f3dx_router import __main__ as cli

SUFFIXES = {ord("T"): ".toml", ord("J"): ".json", ord("Y"): ".yaml", ord("y"): ".yml"}
ORDER = (".toml", ".json", ".yaml", ".yml")
PLANTED = "PLANTED"
PROVIDER_SUFFIX = re.compile(r" \(provider [^\n]*\)$")
DIR = tempfile.mkdtemp(prefix="f3dx-fuzz-config-")
# check resolves api_key_env from the environment: one variable is set.
os.environ["F3DX_FUZZ_KEY"] = "sk-env-0123456789abcdef"


def test_one_input(data: bytes) -> None:
    if not data:
        return
    suffix = SUFFIXES.get(data[0], ORDER[data[0] % len(ORDER)])
    path = os.path.join(DIR, "router" + suffix)
    with open(path, "wb") as f:
        f.write(data[1:])
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = cli.main(["check", path])
    if status == 0:
        return
    assert status == 1, status
    lines = err.getvalue().splitlines()
    assert lines, "refused without an error line"
    for line in lines:
        assert line.startswith(f"error: {path}: "), line
        assert "(a bug: please report it)" not in line, line
        # A valid provider name is named after an error inside that
        # provider, as stats, logs and x-f3dx-provider name it: a name is
        # not a secret (a seed planting a key there plants a valid name).
        message = PROVIDER_SUFFIX.sub("", line)
        assert PLANTED not in message, line


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
