# shellcheck shell=bash
# Shared by scripts/test.sh and scripts/demo.sh: the system packages and
# the project's virtual environment in .venv, installed only when missing,
# then activated for the calling script. Source it (with ROOT set), then call
# ensure_system_packages and ensure_python_env.

PYTHON="${PYTHON:-python3}"  # interpreter the venv is created from
VENV="$ROOT/.venv"
# Python tools of the test run and the demo. Changing this list re-runs pip
# (see the stamp).
# openai: the tests read the Worker's streams with its SDK, as a user would,
# and drive the router through it (f3dx_router.openai_client); httpx: the
# httpx transports (f3dx_router.httpx_compat); anyio: its pytest plugin runs
# the async transport tests; uvloop: the asyncio tests run on it too;
# opentelemetry-api/-sdk: the otel=True tests (the SDK's in-memory exporter)
# and mypy's view of f3dx_router/_otel.py; pyyaml: Router.from_file reads
# YAML through it (without it the YAML tests would test only the error that
# asks for it); rich: the stats' __rich__ is rendered by rich itself.
PY_REQUIREMENTS=("maturin>=1.9,<2" "pytest>=8.3" "mypy>=1.15" "openai>=3,<4" "uvloop>=0.19" "httpx>=0.27"
                 "anyio>=4" "opentelemetry-api>=1.27" "opentelemetry-sdk>=1.27" "pyyaml>=6"
                 "rich>=13")

# shellcheck source=scripts/lib/apt.sh
source "$ROOT/scripts/lib/apt.sh"

# A C toolchain (ring, via rustls) and a Python that can make venvs;
# Rust itself comes from rustup. The wasm toolchain is build-core-wasm.sh's.
ensure_system_packages() {
    local apt_missing=() tool
    command -v cc >/dev/null 2>&1 || apt_missing+=(build-essential)
    # The worker's tests run wrangler (Node.js 20 or later).
    command -v node >/dev/null 2>&1 || apt_missing+=(nodejs npm)
    if ! "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1 &&
        [ "$(command -v "$PYTHON")" = "/usr/bin/$PYTHON" ]; then
        apt_missing+=(python3-venv)  # Debian splits venv/ensurepip out of python3
    fi
    if [ "${#apt_missing[@]}" -gt 0 ]; then
        echo "installing: ${apt_missing[*]}"
        apt_install "${apt_missing[@]}"
    else
        echo "nothing to install"
    fi
    for tool in cargo rustc "$PYTHON"; do
        command -v "$tool" >/dev/null 2>&1 || { echo "missing: $tool" >&2; exit 1; }
    done
    cargo fmt --version >/dev/null 2>&1 || { echo "missing: rustfmt (rustup component add rustfmt)" >&2; exit 1; }
    cargo clippy --version >/dev/null 2>&1 || { echo "missing: clippy (rustup component add clippy)" >&2; exit 1; }
    echo "$(cargo -V); $(rustc -V); $("$PYTHON" -V)"
}

ensure_python_env() {
    # Recreate the venv when its interpreter is gone (e.g. the base Python moved).
    if [ -d "$VENV" ] && ! "$VENV/bin/python" -c '' >/dev/null 2>&1; then
        echo "broken venv: recreating"
        rm -rf "$VENV"
    fi
    if [ ! -d "$VENV" ]; then
        "$PYTHON" -m venv "$VENV"
    fi
    # pip runs only when the requirement list (or the venv's Python) changed since
    # the last successful install: the stamp holds a hash of both.
    local stamp want
    stamp="$VENV/.f3dx-requirements.sha256"
    want="$({ printf '%s\n' "${PY_REQUIREMENTS[@]}"; "$VENV/bin/python" -VV; } | sha256sum | cut -d' ' -f1)"
    if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
        "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade "${PY_REQUIREMENTS[@]}"
        echo "$want" >"$stamp"
    else
        echo "requirements up to date"
    fi
    # Use the venv for everything below. PYO3_PYTHON makes cargo's builds of the
    # PyO3 crate see the same interpreter maturin will, so they share one build.
    export VIRTUAL_ENV="$VENV"
    export PATH="$VENV/bin:$PATH"
    export PYO3_PYTHON="$VENV/bin/python"
    "$VENV/bin/python" -m pip list --disable-pip-version-check 2>/dev/null |
        grep -iE '^(maturin|pytest|mypy) ' || true
}

