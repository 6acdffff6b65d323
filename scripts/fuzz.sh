#!/usr/bin/env bash
# cargo-fuzz targets of the routing core (crates/f3dx-router-core/fuzz), and
# atheris targets of the Python package (fuzz/python/*.py there):
#
#     bash scripts/fuzz.sh build                  build every cargo-fuzz target
#     bash scripts/fuzz.sh run TARGET SECONDS     fuzz one target for SECONDS
#     bash scripts/fuzz.sh list                   name the targets
#
# It installs what it needs, idempotently: cargo-fuzz into the repository's
# ignored .cache/cargo-fuzz, and a C++ compiler (libFuzzer is C++) through
# scripts/lib/apt.sh when there is none; for an atheris target, the
# repository's .venv (scripts/lib/env.sh), the package built into it
# (maturin develop --release, when it does not import) and atheris.
#
# Every run has a memory limit: libFuzzer's -rss_limit_mb and
# -malloc_limit_mb, FUZZ_RSS_LIMIT_MB (default 1024); an input that takes
# the process past it is a crash ("out-of-memory"), like a panic.
#
# `run` fuzzes with the committed seeds (fuzz/seeds/TARGET, read only) and a
# scratch corpus that grows between runs (fuzz/corpus/TARGET, ignored by
# git); a crash lands in fuzz/artifacts/TARGET. At the end it prints the
# executions, the coverage (`cov:`, `ft:` of libFuzzer's last status line)
# and the crashes; it exits non-zero if the target crashed. The full log is
# kept in fuzz/target/logs/TARGET-<UTC time>.log (one per run, so runs
# at the same time do not mix their logs).
#
# A run stops at the first crash. FUZZ_KEEP_GOING=1 runs libFuzzer in fork
# mode with -ignore_crashes=1 instead: it records every crash and fuzzes on
# for the whole time (for a target with a known, unfixed crash).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

FUZZ_DIR="$ROOT/crates/f3dx-router-core/fuzz"
PY_TARGETS_DIR="$FUZZ_DIR/python"
CARGO_FUZZ_VERSION="0.13.2"
ATHERIS_VERSION="3.0.0"
RSS_LIMIT_MB="${FUZZ_RSS_LIMIT_MB:-1024}"
CARGO_FUZZ_ROOT="$ROOT/.cache/cargo-fuzz"

usage() {
    sed -n '2,7p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

# --- what the build needs ------------------------------------------------------

ensure_cargo_fuzz() {
    local have
    have="$("$CARGO_FUZZ_ROOT/bin/cargo-fuzz" --version 2>/dev/null || true)"
    if [ "$have" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]; then
        echo "installing cargo-fuzz $CARGO_FUZZ_VERSION into .cache/cargo-fuzz"
        # --debug: cargo-fuzz only drives cargo, so an optimised build of it
        # would cost compile time for nothing.
        cargo install cargo-fuzz --version "=$CARGO_FUZZ_VERSION" --locked --debug \
            --root "$CARGO_FUZZ_ROOT"
    fi
    export PATH="$CARGO_FUZZ_ROOT/bin:$PATH"
}

ensure_cxx() {
    # libfuzzer-sys compiles libFuzzer (C++) with the `cc` crate: it needs
    # `c++` (g++ from build-essential, which scripts/lib/env.sh installs).
    if ! command -v c++ >/dev/null 2>&1; then
        echo "installing: g++ (libFuzzer is C++)"
        # shellcheck source=scripts/lib/apt.sh
        source "$ROOT/scripts/lib/apt.sh"
        apt_install g++
    fi
}

# cargo-fuzz passes -Z flags (-Zsanitizer, -Cpasses=sancov-module ...) that a
# stable rustc takes only with RUSTC_BOOTSTRAP=1. AddressSanitizer also needs
# its runtime, which rustup's stable rust-std ships
# (librustc-stable_rt.asan.a); a toolchain without it (Debian's rustc, for
# one) builds with `-s none`: still coverage-guided, and a panic is still a
# crash, only memory errors in unsafe code go unseen (the core has no unsafe
# code). FUZZ_SANITIZER overrides the choice.
pick_sanitizer() {
    if [ -n "${FUZZ_SANITIZER:-}" ]; then
        echo "$FUZZ_SANITIZER"
        return
    fi
    local libdir
    libdir="$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/lib"
    if compgen -G "$libdir/librustc-*_rt.asan.a" >/dev/null; then
        echo address
    else
        echo none
    fi
}

setup() {
    ensure_cxx
    ensure_cargo_fuzz
    export RUSTC_BOOTSTRAP=1
    SANITIZER="$(pick_sanitizer)"
    # The same flags for build and run, so `run` reuses what `build` made.
    FUZZ_FLAGS=(--fuzz-dir "$FUZZ_DIR" --release --debug-assertions -s "$SANITIZER")
}

cargo_targets() {
    sed -n 's/^name = "\(.*\)"$/\1/p' "$FUZZ_DIR/Cargo.toml" | grep -v -- '-fuzz$'
}

python_targets() {
    local f
    for f in "$PY_TARGETS_DIR"/*.py; do
        [ -e "$f" ] && basename "$f" .py
    done
}

targets() {
    cargo_targets
    python_targets
}

# An atheris target runs in the repository's .venv, on the package built
# there (whatever `maturin develop` built last; rebuilt only when it does
# not import at all).
setup_python() {
    # shellcheck source=scripts/lib/env.sh
    source "$ROOT/scripts/lib/env.sh"
    ensure_python_env >/dev/null
    if ! python -c 'import f3dx_router._native' 2>/dev/null; then
        echo "building the package into .venv (maturin develop --release)"
        maturin develop --release
    fi
    if [ "$(python -c 'import importlib.metadata as m; print(m.version("atheris"))' 2>/dev/null)" != "$ATHERIS_VERSION" ]; then
        echo "installing atheris $ATHERIS_VERSION into .venv"
        python -m pip install -q --disable-pip-version-check "atheris==$ATHERIS_VERSION"
    fi
}

# --- commands --------------------------------------------------------------------

cmd_build() {
    setup
    echo "sanitizer: $SANITIZER; $(cargo fuzz --version)"
    cargo fuzz build "${FUZZ_FLAGS[@]}"
    echo "built: $(cargo_targets | tr '\n' ' ')"
}

cmd_run() {
    local target="$1" seconds="$2"
    # Not `grep -q`: it may exit before the list is written, and pipefail
    # would take the writer's SIGPIPE for a failure.
    targets | grep -x -- "$target" >/dev/null || { echo "unknown target: $target (see: list)" >&2; exit 2; }
    [[ "$seconds" =~ ^[0-9]+$ ]] || { echo "SECONDS must be a whole number" >&2; exit 2; }
    local python=0
    python_targets | grep -x -- "$target" >/dev/null && python=1
    if [ "$python" = 1 ]; then
        setup_python
        SANITIZER="none; atheris $ATHERIS_VERSION"
    else
        setup
    fi
    local corpus="$FUZZ_DIR/corpus/$target" seeds="$FUZZ_DIR/seeds/$target"
    local artifacts="$FUZZ_DIR/artifacts/$target" logs="$FUZZ_DIR/target/logs"
    mkdir -p "$corpus" "$artifacts" "$logs"
    local stamp log marker
    stamp="$(date -u +%Y%m%dT%H%M%SZ)-$$"
    log="$logs/$target-$stamp.log"
    marker="$logs/$target-$stamp.start"
    touch "$marker"
    local extra=(-rss_limit_mb="$RSS_LIMIT_MB" -malloc_limit_mb="$RSS_LIMIT_MB")
    if [ "${FUZZ_KEEP_GOING:-0}" = 1 ]; then
        [ "$python" = 0 ] || { echo "FUZZ_KEEP_GOING is for cargo-fuzz targets" >&2; exit 2; }
        extra+=(-fork=1 -ignore_crashes=1)
    fi
    echo "fuzzing $target for ${seconds}s (sanitizer: $SANITIZER; ${extra[*]}); log: ${log#"$ROOT"/}"
    # New inputs go to the first corpus directory (the scratch one); the
    # seeds are only read. -timeout: an input taking 10 s is a hang.
    local dirs=("$corpus") rc=0
    [ -d "$seeds" ] && dirs+=("$seeds")
    local flags=(-max_total_time="$seconds" -timeout=10 -print_final_stats=1 "${extra[@]}")
    local started
    if [ "$python" = 1 ]; then
        started=$SECONDS
        python "$PY_TARGETS_DIR/$target.py" "${dirs[@]}" "${flags[@]}" -artifact_prefix="$artifacts/" \
            >"$log" 2>&1 || rc=$?
    else
        # Built first, so the timing below is the fuzzing alone.
        cargo fuzz build "${FUZZ_FLAGS[@]}" "$target"
        started=$SECONDS
        cargo fuzz run "${FUZZ_FLAGS[@]}" "$target" "${dirs[@]}" -- "${flags[@]}" >"$log" 2>&1 || rc=$?
    fi
    summarize "$target" "$log" "$artifacts" "$marker" "$rc" "$((SECONDS - started))"
}

summarize() {
    local target="$1" log="$2" artifacts="$3" marker="$4" rc="$5" secs="$6"
    local status execs eps cov ft crashes
    # The last status line: "#N <event> cov: X ft: Y corp: ... exec/s: Z ..."
    # ("#N: cov: ..." in fork mode, where N counts every job's executions).
    status="$(grep -a -E '^#[0-9]+' "$log" | tail -n 1 || true)"
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
    if [ -z "$execs" ] || [ "${FUZZ_KEEP_GOING:-0}" = 1 ]; then
        execs="$(sed -n 's/^#\([0-9]*\).*/\1/p' <<<"$status")"
    fi
    eps="$((${execs:-0} / (secs > 0 ? secs : 1)))"
    cov="$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$status")"
    ft="$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$status")"
    crashes="$(find "$artifacts" -type f -newer "$marker" | sort)"
    printf '\n--- %s\n' "$target"
    printf 'last status: %s\n' "${status:-none}"
    printf 'seconds: %s  executions: %s  exec/s: %s  cov: %s  ft: %s\n' \
        "${secs:-?}" "${execs:-?}" "${eps:-?}" "${cov:-?}" "${ft:-?}"
    if [ -n "$crashes" ]; then
        printf 'crashes (%s):\n' "$(wc -l <<<"$crashes")"
        sed 's/^/  /' <<<"$crashes"
        grep -a -E -m 20 "panicked at|ERROR: libFuzzer|SUMMARY|Uncaught Python exception|Error:" "$log" | sed 's/^/  /' || true
    else
        echo "crashes: 0"
    fi
    if [ "$rc" -ne 0 ]; then
        echo "the fuzzer exited with $rc; see ${log#"$ROOT"/}" >&2
        exit "$rc"
    fi
}

case "${1:-}" in
build) [ $# -eq 1 ] || usage; cmd_build ;;
run) [ $# -eq 3 ] || usage; cmd_run "$2" "$3" ;;
list) targets ;;
*) usage ;;
esac
