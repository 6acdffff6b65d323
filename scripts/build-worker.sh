#!/usr/bin/env bash
# Build the Cloudflare Worker (crate `f3dx-router-worker` in worker/, lib
# `f3dx_router_worker`) into worker/build/, ready for `wrangler dev` and
# `wrangler deploy` (wrangler.toml: main = "build/shim.mjs").
#
#     bash scripts/build-worker.sh            # release build
#
# Pipeline (see worker/TOOLCHAIN-NOTES.md for versions, timings, sizes):
#   1. cargo build --lib --release --target wasm32-unknown-unknown
#        - a rustup toolchain that has the wasm32 target installed, or else
#        - Debian's rustc-web/cargo-web with -Zbuild-std (same route as
#          scripts/build-core-wasm.sh);
#   2. wasm-bindgen --target module, the CLI at exactly the version of the
#      `wasm-bindgen` crate in Cargo.lock, built once with `cargo install`
#      and cached under .cache/ (it is never downloaded from GitHub);
#   3. wasm-opt -Oz from the npm package `binaryen` (worker/node_modules);
#   4. the module-worker entry build/shim.mjs (what worker-build generates,
#      without its esbuild step: wrangler bundles the JS itself), and
#      build/embed.js, the same code as a library for a TypeScript worker;
#   5. a report of the sizes, including the gzip size of what is uploaded.
#
# Output (worker/build/, replaced as a whole at the end of a successful run):
#   shim.mjs         entry of the standalone worker: `export default` a
#                    WorkerEntrypoint whose fetch() calls the Rust handler
#   embed.js         what a TypeScript worker imports: the #[wasm_bindgen]
#                    classes and functions, rebuilt after a Rust panic
#   embed.d.ts       its types
#   index.js         wasm-bindgen glue (ES module); instantiates index_bg.wasm
#                    synchronously at import
#   index.d.ts       its types
#   index_bg.wasm    the optimized module (imported as a WebAssembly.Module)
#   snippets/        inline JS of the `worker` crate, imported by index.js
#
# Idempotent: cargo's own cache under target/, the CLI under .cache/, npm
# packages installed only when the lock changed, and steps 2-4 skipped when
# the compiled .wasm and the options are unchanged (a no-op run takes ~1 s,
# which matters because `wrangler dev` re-runs this as its [build] command).
#
# Environment (all optional):
#   F3DX_WORKER_DIR         crate directory (default: worker/)
#   F3DX_WORKER_OUT         output directory (default: $F3DX_WORKER_DIR/build)
#   F3DX_WORKER_TARGET_DIR  cargo target dir (default: target/, or
#                           target/wasm on the Debian route, shared with
#                           build-core-wasm.sh)
#   F3DX_CACHE_DIR          tool cache (default: .cache/)
#   F3DX_WASM_OPT=0         skip wasm-opt
#   F3DX_WASM_DEBUGINFO=1   keep the wasm name section (readable wasm stack
#                           traces; ~25% more gzip bytes)
#   F3DX_WORKER_ROUTE       force `rustup` or `debian`
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SELF="$ROOT/scripts/$(basename "${BASH_SOURCE[0]}")"  # this script, by absolute path (we cd below)

# Paths given in the environment are relative to the caller's directory
# (wrangler runs its [build] command in the directory of wrangler.toml).
abspath() { case "$1" in /*) printf '%s\n' "$1" ;; *) printf '%s\n' "$PWD/$1" ;; esac; }
CRATE_DIR="$(cd "${F3DX_WORKER_DIR:-$ROOT/worker}" && pwd)"
OUT_DIR="$(abspath "${F3DX_WORKER_OUT:-$CRATE_DIR/build}")"
CACHE_DIR="$(abspath "${F3DX_CACHE_DIR:-$ROOT/.cache}")"
if [ -n "${F3DX_WORKER_TARGET_DIR:-}" ]; then
    F3DX_WORKER_TARGET_DIR="$(abspath "$F3DX_WORKER_TARGET_DIR")"
fi
cd "$ROOT"
LIB=f3dx_router_worker
# What wasm-opt may emit: rustc's wasm32 defaults plus the exception handling
# used by wasm-bindgen's abort handler. An explicit list (as worker-build
# has), not --all-features, so no encoding newer than workerd's is emitted.
WASM_FEATURES=(mutable-globals sign-ext nontrapping-float-to-int bulk-memory
    multivalue reference-types exception-handling)

# shellcheck source=scripts/lib/wasm-toolchain.sh
source "$ROOT/scripts/lib/wasm-toolchain.sh"  # TARGET, the toolchain route

log() { printf '[build-worker] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Bytes of a file, and of its gzip -9.
size() { wc -c <"$1" | tr -d ' '; }
gzsize() { gzip -9c "$@" | wc -c | tr -d ' '; }

[ -f "$CRATE_DIR/Cargo.toml" ] || die "no crate at $CRATE_DIR (set F3DX_WORKER_DIR)"
MANIFEST="$CRATE_DIR/Cargo.toml"

# --- 1. toolchain --------------------------------------------------------------

# rustup's cargo, when it is on PATH (the one that owns Cargo.lock).
RUSTUP_CARGO=""
if command -v cargo >/dev/null 2>&1 && [ "$(command -v cargo)" != /usr/bin/cargo ]; then
    RUSTUP_CARGO="$(command -v cargo)"
fi

ROUTE="${F3DX_WORKER_ROUTE:-}"
if [ -z "$ROUTE" ]; then
    if rustup_has_target; then ROUTE=rustup; else ROUTE=debian; fi
fi
LOCKED=()
case "$ROUTE" in
rustup)
    CARGO=(cargo)
    BUILD_FLAGS=()
    TARGET_DIR="${F3DX_WORKER_TARGET_DIR:-${CARGO_TARGET_DIR:-$ROOT/target}}"
    log "route: rustup toolchain with $TARGET installed ($(rustc -V))"
    ;;
debian)
    ensure_debian_toolchain || die "cannot install the wasm32 toolchain"
    # Debian's cargo by full path and RUSTC explicitly, so that rustup's
    # proxies on PATH are not picked up; RUSTC_BOOTSTRAP=1 unlocks -Z flags.
    CARGO=(env RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 /usr/bin/cargo)
    # Own target dir: std is rebuilt from source by another compiler.
    TARGET_DIR="${F3DX_WORKER_TARGET_DIR:-$ROOT/target/wasm}"
    BUILD_FLAGS=("-Zbuild-std=std,panic_abort")
    # Cargo.lock belongs to rustup's cargo: let it update the lock (no-op
    # when current), then build with --locked so Debian's cargo never
    # rewrites it.
    if [ -n "$RUSTUP_CARGO" ]; then
        "$RUSTUP_CARGO" metadata --format-version 1 --manifest-path "$MANIFEST" >/dev/null
        LOCKED=(--locked)
    fi
    log "route: Debian $(/usr/bin/rustc -V) with -Zbuild-std"
    ;;
*) die "F3DX_WORKER_ROUTE must be rustup or debian, not '$ROUTE'" ;;
esac

# --- wasm-bindgen version from Cargo.lock ----------------------------------------

# The lock sits beside the workspace's root manifest (the repo root when the
# worker is a workspace member, worker/ when it is a workspace of its own).
WS_MANIFEST="$("${CARGO[@]}" locate-project --workspace --message-format plain --manifest-path "$MANIFEST")"
LOCKFILE="$(dirname "$WS_MANIFEST")/Cargo.lock"
if [ ! -f "$LOCKFILE" ]; then
    if [ -n "$RUSTUP_CARGO" ]; then
        "$RUSTUP_CARGO" generate-lockfile --manifest-path "$MANIFEST"
    else
        "${CARGO[@]}" generate-lockfile --manifest-path "$MANIFEST"
    fi
fi
# One version only: wasm-bindgen-shared has `links`, so cargo allows no second.
WB_VERSION="$(awk '
    /^\[\[package\]\]/ { name = "" }
    /^name = / { gsub(/"/, "", $3); name = $3 }
    /^version = / && name == "wasm-bindgen" { gsub(/"/, "", $3); print $3; exit }
' "$LOCKFILE")"
[ -n "$WB_VERSION" ] || die "no wasm-bindgen package in $LOCKFILE (does the crate depend on worker/wasm-bindgen?)"

# --- 2a. wasm-bindgen-cli, built from crates.io and cached -----------------------

WB_ROOT="$CACHE_DIR/wasm-bindgen-cli-$WB_VERSION"
WASM_BINDGEN="$WB_ROOT/bin/wasm-bindgen"
if [ ! -x "$WASM_BINDGEN" ] || ! "$WASM_BINDGEN" --version 2>/dev/null | grep -qx "wasm-bindgen $WB_VERSION"; then
    # A host tool: rustup's cargo when there is one, else Debian's.
    if [ -n "$RUSTUP_CARGO" ]; then
        HOST_CARGO=("$RUSTUP_CARGO")
    else
        HOST_CARGO=(env RUSTC=/usr/bin/rustc /usr/bin/cargo)
    fi
    log "installing wasm-bindgen-cli $WB_VERSION into $WB_ROOT (once; several minutes)"
    start=$SECONDS
    tmp_root="$WB_ROOT.tmp.$$"
    rm -rf "$tmp_root"
    # --bin: only the CLI (not the test runner); no default features: no TLS
    # stack (ring) to compile, the CLI itself never downloads anything.
    install_args=(wasm-bindgen-cli --version "=$WB_VERSION" --root "$tmp_root"
        --bin wasm-bindgen --no-default-features --no-track)
    if ! "${HOST_CARGO[@]}" install "${install_args[@]}" --locked; then
        # The CLI's published lock can name a dependency version the registry
        # no longer serves (0.2.130 locks webpki-roots 1.0.11; seen here).
        log "cargo install --locked failed; retrying with a fresh resolution"
        "${HOST_CARGO[@]}" install "${install_args[@]}"
    fi
    mkdir -p "$WB_ROOT"
    rm -rf "${WB_ROOT:?}/bin"
    mv "$tmp_root/bin" "$WB_ROOT/bin"
    rm -rf "$tmp_root"
    log "wasm-bindgen-cli $WB_VERSION installed in $((SECONDS - start))s"
fi

# --- 3a. npm packages: binaryen (wasm-opt) and wrangler ------------------------------

WASM_OPT_ON="${F3DX_WASM_OPT:-1}"
WASM_OPT="$CRATE_DIR/node_modules/.bin/wasm-opt"
if [ "$WASM_OPT_ON" != 0 ]; then
    [ -f "$CRATE_DIR/package-lock.json" ] ||
        die "$CRATE_DIR/package-lock.json missing (binaryen and wrangler are pinned there)"
    # npm ci only when the lock changed since the last install.
    if [ ! -x "$WASM_OPT" ] || [ "$CRATE_DIR/package-lock.json" -nt "$CRATE_DIR/node_modules/.package-lock.json" ]; then
        log "npm ci in $CRATE_DIR"
        (cd "$CRATE_DIR" && npm ci --no-audit --no-fund)
    fi
    [ -x "$WASM_OPT" ] || die "$WASM_OPT missing: add binaryen to $CRATE_DIR/package.json"
fi

# --- 1b. compile ----------------------------------------------------------------------

start=$SECONDS
# WASM_BINDGEN_USE_JS_SYS=1: what worker-build sets; wasm-bindgen's macros then
# use js_sys's futures support for async exports (read at macro expansion).
WASM_BINDGEN_USE_JS_SYS=1 "${CARGO[@]}" build --lib --release --target "$TARGET" \
    --manifest-path "$MANIFEST" --target-dir "$TARGET_DIR" "${LOCKED[@]}" "${BUILD_FLAGS[@]}"
RAW="$TARGET_DIR/$TARGET/release/$LIB.wasm"
[ -f "$RAW" ] || die "no $RAW after the build (is crate-type = [\"cdylib\"] set?)"
# rustc writes a `target_features` custom section that wasm-bindgen reads to
# know which wasm features (multi-value, reference types) it may use;
# `strip = true` in the cargo profile removes it and changes the glue.
# wasm-opt strips names and debug info anyway, so there is nothing to gain.
if ! grep -q target_features "$RAW"; then
    log "WARNING: $RAW has no target_features section: remove 'strip = true' from [profile.release]"
fi
log "cargo build ($ROUTE route): $((SECONDS - start))s"

# --- 2-4. bindgen, optimize, entry (skipped when nothing changed) -------------------

DEBUGINFO="${F3DX_WASM_DEBUGINFO:-0}"
binaryen_version=none
if [ "$WASM_OPT_ON" != 0 ]; then
    binaryen_version="$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$CRATE_DIR/node_modules/binaryen/package.json" | head -n1)"
fi
STAMP_TEXT="$(sha256sum "$RAW" | cut -d' ' -f1) wasm-bindgen=$WB_VERSION binaryen=$binaryen_version debuginfo=$DEBUGINFO script=$(sha256sum "$SELF" | cut -d' ' -f1)"
if [ -f "$OUT_DIR/.stamp" ] && [ "$(cat "$OUT_DIR/.stamp")" = "$STAMP_TEXT" ]; then
    log "$OUT_DIR is up to date"
else
    start=$SECONDS
    STAGE="$OUT_DIR.tmp.$$"
    rm -rf "$STAGE"
    trap 'rm -rf "$STAGE"' EXIT
    # --target module: ES module that imports the .wasm as a module
    # (workerd's way); the two flags are worker-build's: the `worker` crate
    # calls wasm_bindgen::handler, and the glue gains __wbg_reset_state so an
    # instance killed by a panic is rebuilt on the next call.
    "$WASM_BINDGEN" "$RAW" --out-dir "$STAGE" --out-name index --target module \
        --experimental-reset-state-function --force-enable-abort-handler
    # wasm-bindgen emits a source-phase import (`import source m from
    # "./index_bg.wasm"`); wrangler's bundler and workerd take the plain
    # import, which yields the same WebAssembly.Module (worker-build does this
    # rewrite too).
    sed -i -E 's/^import source ([A-Za-z_$][A-Za-z0-9_$]*) from/import \1 from/' "$STAGE/index.js"
    grep -q '^import source ' "$STAGE/index.js" && die "could not rewrite the wasm import in index.js"
    bindgen_bytes="$(size "$STAGE/index_bg.wasm")"

    if [ "$WASM_OPT_ON" != 0 ]; then
        opt_args=(-Oz)
        for f in "${WASM_FEATURES[@]}"; do opt_args+=("--enable-$f"); done
        [ "$DEBUGINFO" = 1 ] && opt_args+=(--debuginfo)
        "$WASM_OPT" "$STAGE/index_bg.wasm" -o "$STAGE/index_bg.opt.wasm" "${opt_args[@]}"
        mv "$STAGE/index_bg.opt.wasm" "$STAGE/index_bg.wasm"
    fi

    # The module-worker entry. Same shape as worker-build's shim.js (0.8.x):
    # a WorkerEntrypoint whose handlers call the Rust exports with
    # (arg, env, ctx), and that rebuilds the wasm instance after a panic
    # (the `worker` crate's panic hook sets initState.criticalError).
    cat >"$STAGE/shim.mjs" <<'EOF'
// Generated by scripts/build-worker.sh: the entry of the standalone worker.
import { WorkerEntrypoint } from "cloudflare:workers";
import * as wasm from "./index.js";

const initState = wasm.__worker_init_state();

function checkReinitialize() {
  if (initState.criticalError) {
    console.log("Reinitializing Wasm application");
    wasm.__wbg_reset_state();
    initState.criticalError = false;
    initState.instanceId++;
  }
}

function handleMaybeCritical(e) {
  if (e instanceof WebAssembly.RuntimeError) {
    console.error("Critical", e);
    initState.criticalError = true;
  }
}

addEventListener("error", (e) => handleMaybeCritical(e.error));

export default class extends WorkerEntrypoint {
  async fetch(request) {
    checkReinitialize();
    try {
      return await wasm.fetch(request, this.env, this.ctx);
    } catch (e) {
      handleMaybeCritical(e);
      throw e;
    }
  }
}
EOF
    # The embedded mode: a TypeScript worker imports the Rust classes and
    # functions from embed.js. Same recovery as the shim: a Rust panic
    # poisons the wasm instance (panic=abort leaves its heap mid-update, and
    # every later call traps); the next use rebuilds it, and objects made
    # before are made again, lazily, with their constructor arguments
    # (worker-build wraps its exported classes in the same way).
    mapfile -t classes < <(sed -n -E 's/^export class ([A-Za-z_$][A-Za-z0-9_$]*).*/\1/p' "$STAGE/index.js")
    mapfile -t functions < <(sed -n -E 's/^export (async )?function ([A-Za-z_$][A-Za-z0-9_$]*).*/\2/p' "$STAGE/index.js" |
        grep -vx -e fetch -e '__.*' || true)
    {
        cat <<'EOF'
// Generated by scripts/build-worker.sh: the Rust API for a TypeScript worker,
// safe across Rust panics (see recoverAfterPanic).
import * as wasm from "./index.js";

const initState = wasm.__worker_init_state();

/** Rebuild the wasm instance if a Rust panic poisoned it; runs before every call. */
export function recoverAfterPanic() {
  if (initState.criticalError) {
    console.log("Reinitializing Wasm application");
    wasm.__wbg_reset_state();
    initState.criticalError = false;
    initState.instanceId++;
  }
}

function markIfCritical(e) {
  if (e instanceof WebAssembly.RuntimeError) initState.criticalError = true;
  throw e;
}

function guarded(call) {
  try {
    const r = call();
    return r instanceof Promise ? r.catch(markIfCritical) : r;
  } catch (e) {
    markIfCritical(e);
  }
}

function wrapFunction(f) {
  return (...args) => guarded(() => (recoverAfterPanic(), f(...args)));
}

// An object made before a rebuild belongs to the dead instance: make it again.
function current(slot) {
  recoverAfterPanic();
  if (slot.id !== initState.instanceId) {
    slot.instance = Reflect.construct(slot.ctor, slot.args);
    slot.id = initState.instanceId;
  }
  return slot.instance;
}

function wrapClass(ctor) {
  return new Proxy(ctor, {
    construct(_, args) {
      recoverAfterPanic();
      const slot = { ctor, args, id: initState.instanceId, instance: null };
      slot.instance = guarded(() => Reflect.construct(ctor, args));
      return new Proxy(slot, {
        get(slot, prop) {
          const value = Reflect.get(current(slot), prop);
          if (typeof value !== "function") return value;
          return (...a) =>
            guarded(() => {
              const self = current(slot);
              return Reflect.apply(self[prop], self, a);
            });
        },
        set: (slot, prop, value) => Reflect.set(current(slot), prop, value),
        has: (slot, prop) => Reflect.has(current(slot), prop),
      });
    },
  });
}

EOF
        for c in "${classes[@]}"; do printf 'export const %s = wrapClass(wasm.%s);\n' "$c" "$c"; done
        for f in "${functions[@]}"; do printf 'export const %s = wrapFunction(wasm.%s);\n' "$f" "$f"; done
    } >"$STAGE/embed.js"
    {
        echo '// Generated by scripts/build-worker.sh: types of embed.js.'
        # The config, completion and error interfaces (and everything else
        # index.js declares), as types only; the values below win.
        echo 'export type * from "./index.js";'
        for name in "${classes[@]}" "${functions[@]}"; do
            printf 'export { %s } from "./index.js";\n' "$name"
        done
        echo 'export declare function recoverAfterPanic(): void;'
    } >"$STAGE/embed.d.ts"

    printf '%s\n' "$STAMP_TEXT" >"$STAGE/.stamp"
    # Replace the output as a whole: wrangler never sees a half-written dir.
    rm -rf "$OUT_DIR.old"
    [ -d "$OUT_DIR" ] && mv "$OUT_DIR" "$OUT_DIR.old"
    mv "$STAGE" "$OUT_DIR"
    rm -rf "$OUT_DIR.old"
    trap - EXIT
    log "wasm-bindgen $WB_VERSION + wasm-opt: $((SECONDS - start))s"
    log "wasm: cargo $(size "$RAW") B -> wasm-bindgen $bindgen_bytes B -> wasm-opt $(size "$OUT_DIR/index_bg.wasm") B"
fi

# --- 5. report ------------------------------------------------------------------------

# What wrangler uploads: the .wasm as is, and the JS bundled into one file
# (about the sum of these; `wrangler deploy --dry-run` prints the exact total).
mapfile -t js_files < <(find "$OUT_DIR" \( -name '*.js' -o -name '*.mjs' \) ! -name embed.js | sort)
wasm_gz="$(gzsize "$OUT_DIR/index_bg.wasm")"
js_gz="$(cat "${js_files[@]}" | gzsize)"
log "upload: index_bg.wasm $(size "$OUT_DIR/index_bg.wasm") B (gzip $wasm_gz B) + JS $(cat "${js_files[@]}" | wc -c | tr -d ' ') B (gzip $js_gz B)"
log "upload gzip total: $((wasm_gz + js_gz)) B (limit: 3 MiB free plan, 10 MiB paid)"
log "built: $OUT_DIR (worker entry: shim.mjs; for TypeScript: embed.js)"
