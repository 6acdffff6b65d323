#!/usr/bin/env bash
# Build f3dx-router-core for wasm32-unknown-unknown (release) and prove that no
# I/O runtime (tokio, mio, reqwest, hyper) leaks into its dependency graph.
#
# Toolchain choice (see /work/shared/TOOLCHAIN.md):
#   1. a rustup toolchain that already has the wasm32 target (a developer's
#      laptop): plain `cargo build --target wasm32-unknown-unknown`;
#   2. otherwise Debian's rustc-web/cargo-web 1.96 with the library sources,
#      building std for wasm32 ourselves with -Zbuild-std (rustup cannot
#      download the wasm32 std on machines that only reach crates.io/Debian).
#
# Idempotent: apt packages are installed only when missing, and the build is
# cached under target/ (target/wasm for the Debian route), so a second run
# takes well under a second.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

CRATE=f3dx-router-core
# Crates that would mean the core does I/O or needs a runtime; `-util`,
# `-macros`, ... variants count too.
FORBIDDEN_RE='^(tokio|mio|reqwest|hyper)(-.*)?$'

# shellcheck source=scripts/lib/wasm-toolchain.sh
source "$ROOT/scripts/lib/wasm-toolchain.sh"  # TARGET, the toolchain route

log() { printf '[build-core-wasm] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

if rustup_has_target; then
    # The developer's own toolchain: same cargo as the native build, default
    # target dir (artifacts land in target/wasm32-unknown-unknown/).
    ROUTE=rustup
    CARGO=(cargo)
    BUILD_FLAGS=()
    LOCKED=()
    TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
    log "route: rustup toolchain with $TARGET installed ($(rustc -V))"
else
    ROUTE=debian
    ensure_debian_toolchain || die "cannot install the wasm32 toolchain"
    # Debian's cargo by full path, RUSTC explicitly so rustup's proxy on PATH
    # is not picked up; RUSTC_BOOTSTRAP=1 unlocks -Zbuild-std on stable.
    CARGO=(env RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 /usr/bin/cargo)
    # Own target dir: std is rebuilt from source by a different compiler, and
    # sharing target/ with rustup's 1.95 would make each invalidate the other.
    # std's own deps (dlmalloc, hashbrown, ...) come from crates.io, resolved
    # with the library's own Cargo.lock; no source replacement is needed
    # (which would also swap out the project's deps).
    TARGET_DIR="$ROOT/target/wasm"
    BUILD_FLAGS=("-Zbuild-std=std,panic_abort" --target-dir "$TARGET_DIR")
    LOCKED=()
    log "route: Debian $(/usr/bin/rustc -V) with -Zbuild-std"

    # Cargo.lock belongs to the rustup cargo (the one every developer and the
    # native build use). Let it bring the lock up to date first (no-op when
    # current), then run Debian's cargo with --locked so it can never rewrite
    # the lock in its own (newer) way; a stale lock fails loudly instead.
    if command -v cargo >/dev/null 2>&1 && [ "$(command -v cargo)" != /usr/bin/cargo ]; then
        cargo metadata --format-version 1 >/dev/null
        LOCKED=(--locked)
    fi
fi

# --- the core must stay runtime-free -----------------------------------------

# Checked before building: a runtime such as mio would otherwise surface as a
# confusing compile error for wasm32 instead of this message.
# -e normal: what ships in the wasm (dev-dependencies may use anything).
tree="$("${CARGO[@]}" tree -p "$CRATE" --target "$TARGET" -e normal "${LOCKED[@]}" \
    --prefix none --format '{p}')"
bad="$(awk '{print $1}' <<<"$tree" | grep -E "$FORBIDDEN_RE" | sort -u || true)"
if [ -n "$bad" ]; then
    log "ERROR: $CRATE depends (for $TARGET) on forbidden I/O crates:"
    # shellcheck disable=SC2001  # indent every line of a multi-line list
    sed 's/^/    /' <<<"$bad" >&2
    log "       see: cargo tree -p $CRATE --target $TARGET -e normal -i <crate>"
    exit 1
fi
log "dependency check: no tokio/mio/reqwest/hyper in $CRATE for $TARGET"

# --- build -------------------------------------------------------------------

start=$SECONDS
# `-p` builds only the core for wasm; cargo still resolves the whole workspace
# (pyo3, hyper, ...) but compiles none of it.
"${CARGO[@]}" build -p "$CRATE" --release --target "$TARGET" "${LOCKED[@]}" "${BUILD_FLAGS[@]}"
log "build ($ROUTE route) finished in $((SECONDS - start))s"

# --- report ------------------------------------------------------------------

out="$TARGET_DIR/$TARGET/release"
lib="${CRATE//-/_}"
if [ -f "$out/$lib.wasm" ]; then
    log "wasm: $out/$lib.wasm ($(wc -c <"$out/$lib.wasm") bytes)"
elif [ -f "$out/lib$lib.rlib" ]; then
    # The core is a plain library: no .wasm is linked until a cdylib (the
    # worker) uses it, so report the compiled wasm32 rlib instead.
    log "no .wasm (the core has no cdylib crate-type); wasm32 rlib: $out/lib$lib.rlib ($(wc -c <"$out/lib$lib.rlib") bytes)"
else
    die "no artifact for $CRATE found in $out"
fi
