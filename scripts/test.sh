#!/usr/bin/env bash
# The one command that runs every test of f3dx-router:
#
#     bash scripts/test.sh
#
# It installs what is missing (idempotently: a second run installs nothing),
# then runs, failing fast: Rust format, lints and tests; the core's wasm32
# build; the Python extension built into .venv; the stub check; pytest.
# Every section prints its elapsed time; a failure names its section.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PYTHON="${PYTHON:-python3}"  # interpreter the venv is created from
VENV="$ROOT/.venv"
# Python tools of the test run. Changing this list re-runs pip (see the stamp).
PY_REQUIREMENTS=("maturin>=1.9,<2" "pytest>=8.3" "mypy>=1.15")

# --- sections with timings ---------------------------------------------------

SECTION=""
SECTION_START=$SECONDS
SUMMARY=()

end_section() {
    if [ -n "$SECTION" ]; then
        local took=$((SECONDS - SECTION_START))
        printf -- '--- %s: ok (%ss)\n' "$SECTION" "$took"
        SUMMARY+=("$(printf '%5ss  %s' "$took" "$SECTION")")
    fi
}

section() {
    end_section
    SECTION="$1"
    SECTION_START=$SECONDS
    printf '\n=== %s ===\n' "$SECTION"
}

on_exit() {
    local rc=$?
    if [ "$rc" -ne 0 ]; then
        printf '\n*** FAILED in section "%s" after %ss (exit %s) ***\n' \
            "${SECTION:-setup}" "$((SECONDS - SECTION_START))" "$rc" >&2
    fi
}
trap on_exit EXIT

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        echo "need root (or sudo) to run: $*" >&2
        return 1
    fi
}

# --- system packages -----------------------------------------------------------

section "system packages"
# Native builds need only a C toolchain (ring, via reqwest/rustls) and a Python
# that can make venvs; the wasm toolchain is installed by build-core-wasm.sh.
apt_missing=()
command -v cc >/dev/null 2>&1 || apt_missing+=(build-essential)
if ! "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1 &&
    [ "$(command -v "$PYTHON")" = "/usr/bin/$PYTHON" ]; then
    apt_missing+=(python3-venv)  # Debian splits venv/ensurepip out of python3
fi
if [ "${#apt_missing[@]}" -gt 0 ]; then
    echo "installing: ${apt_missing[*]}"
    if ! apt-cache show "${apt_missing[@]}" >/dev/null 2>&1; then
        as_root apt-get -o DPkg::Lock::Timeout=600 update -q
    fi
    as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${apt_missing[@]}"
else
    echo "nothing to install"
fi
for tool in cargo rustc "$PYTHON"; do
    command -v "$tool" >/dev/null 2>&1 || { echo "missing: $tool" >&2; exit 1; }
done
cargo fmt --version >/dev/null 2>&1 || { echo "missing: rustfmt (rustup component add rustfmt)" >&2; exit 1; }
cargo clippy --version >/dev/null 2>&1 || { echo "missing: clippy (rustup component add clippy)" >&2; exit 1; }
echo "$(cargo -V); $(rustc -V); $("$PYTHON" -V)"

# --- Python venv -----------------------------------------------------------------

section "python venv (.venv)"
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

# --- Rust ------------------------------------------------------------------------

section "cargo fmt --check"
cargo fmt --all --check

section "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

section "cargo test"
cargo test --workspace

section "core for wasm32"
bash scripts/build-core-wasm.sh

# --- Python ----------------------------------------------------------------------

section "maturin develop --release"
maturin develop --release

section "stubtest f3dx_router._native"
stubtest_args=(f3dx_router._native)
if [ -f tests/stubtest-allowlist.txt ]; then
    stubtest_args+=(--allowlist tests/stubtest-allowlist.txt)
fi
python -m mypy.stubtest "${stubtest_args[@]}"

section "pytest"
python -m pytest tests/python -q

end_section
SECTION=""
printf '\n=== all passed in %ss ===\n' "$SECONDS"
printf '%s\n' "${SUMMARY[@]}"
