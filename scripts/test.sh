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

# --- system packages -----------------------------------------------------------

section "system packages"
# shellcheck source=scripts/lib/env.sh
source "$ROOT/scripts/lib/env.sh"
ensure_system_packages

# --- Python venv -----------------------------------------------------------------

section "python venv (.venv)"
ensure_python_env

# --- Rust ------------------------------------------------------------------------

section "cargo fmt --check"
cargo fmt --all --check
cargo fmt --manifest-path worker/Cargo.toml --check

# The worker crate is its own workspace (wasm-only in production); its
# lints and unit tests run natively, in a target dir of their own.
WORKER_NATIVE=(--manifest-path worker/Cargo.toml --target-dir target/worker-native)

section "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
cargo clippy "${WORKER_NATIVE[@]}" --all-targets -- -D warnings
# The "auto" hedge study (tests/auto_study.rs) builds only with its feature.
cargo clippy -p f3dx-router-core --all-targets --features study -- -D warnings

section "core structure (no import cycle, no oversized file)"
python3 scripts/check_structure.py

section "cargo test"
cargo test --workspace
cargo test -p f3dx-router-core --features study --test auto_study
cargo test "${WORKER_NATIVE[@]}" --lib

section "core for wasm32"
bash scripts/build-core-wasm.sh

# The core's cargo-fuzz targets (their own workspace, libFuzzer, ASan): built
# only, to keep them compiling; `bash scripts/fuzz.sh run TARGET SECONDS`
# fuzzes one (see crates/f3dx-router-core/fuzz/README.md).
section "fuzz targets build"
cargo fmt --manifest-path crates/f3dx-router-core/fuzz/Cargo.toml --check
bash scripts/fuzz.sh build

# --- Worker ----------------------------------------------------------------------

section "worker: build (npm ci, wasm32, wasm-bindgen, wasm-opt)"
bash scripts/build-worker.sh

section "worker: wrangler deploy --dry-run"
dry_out="$(mktemp -d)"
(cd worker && CI=true WRANGLER_SEND_METRICS=false ./node_modules/.bin/wrangler deploy --dry-run --outdir "$dry_out")
rm -rf "$dry_out"

# --- Python ----------------------------------------------------------------------

section "maturin develop --release"
maturin develop --release

section "mypy (strict) and stubtest"
python -m mypy

stubtest_args=(f3dx_router._native)
if [ -f tests/stubtest-allowlist.txt ]; then
    stubtest_args+=(--allowlist tests/stubtest-allowlist.txt)
fi
python -m mypy.stubtest "${stubtest_args[@]}"

section "pytest"
# F3DX_NO_SKIP=1: a skipped test fails the run (tests/python/conftest.py), so
# a package this script forgot to install cannot leave a test unrun.
F3DX_NO_SKIP=1 python -m pytest tests/python -q

end_section
SECTION=""
printf '\n=== all passed in %ss ===\n' "$SECONDS"
printf '%s\n' "${SUMMARY[@]}"
