#!/usr/bin/env bash
# The benchmark, one command (bench/README.md says what each measure is):
#
#     bash bench/run.sh            # 3 full runs, ~25 min: bench/RESULTS.md
#     bash bench/run.sh --smoke    # one short run, ~4 min: bench/smoke/
#     bash bench/run.sh --measures stream   # streaming alone: bench/STREAM_RESULTS.md
#     bash bench/run.sh --measures tail,degrade,tput_health   # bench/ADAPTIVE_RESULTS.md
#     bash bench/run.sh --measures async    # bench/ASYNC_RESULTS.md
#     bash bench/run.sh --help     # every option of run.py
#
# Installs what it needs, idempotently (a second run installs nothing):
# Debian's nginx-light when no nginx is there (the harness runs its own nginx
# from a temp dir); bench/.venv with the pinned contenders (LiteLLM is heavy
# and stays out of the project's .venv); f3dx_router from this checkout as a
# release wheel (cargo target dir bench/.target, so the dev build in target/
# stays valid), or F3DX_ROUTER_WHEEL=/path/to.whl instead (no Rust needed);
# Node.js, worker/node_modules and the Worker's build unless both `worker`
# and `stream` are skipped (a failure there is reported, the run goes on).
set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH/.." && pwd)"
PYTHON="${PYTHON:-python3}"
VENV="$BENCH/.venv"
# Pinned so that reruns compare the same incumbents; bump deliberately.
REQUIREMENTS=("httpx==0.28.1" "f3dx==0.0.19" "litellm==1.110.2" "openai>=3,<4"
              "maturin>=1.9,<2" "py-spy>=0.4")

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo "$@"
    else echo "need root (or sudo) to run: $*" >&2; return 1; fi
}

quiet_nice() { nice -n 10 "$@"; }  # installs and builds yield to whatever else runs

# --- nginx ------------------------------------------------------------------
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
    echo "== installing nginx-light =="
    if ! apt-cache show nginx-light >/dev/null 2>&1; then
        as_root apt-get -o DPkg::Lock::Timeout=600 update -q
    fi
    as_root env DEBIAN_FRONTEND=noninteractive nice -n 10 \
        apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends nginx-light
    # Debian starts the packaged service where it can; the bench does not use it.
fi

# --- the venv ---------------------------------------------------------------
if [ -d "$VENV" ] && ! "$VENV/bin/python" -c '' >/dev/null 2>&1; then
    echo "broken bench/.venv: recreating"
    rm -rf "$VENV"
fi
if [ ! -d "$VENV" ]; then
    echo "== creating bench/.venv =="
    "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.stamp-requirements"
want="$({ printf '%s\n' "${REQUIREMENTS[@]}"; "$VENV/bin/python" -VV; } | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
    echo "== installing ${REQUIREMENTS[*]} into bench/.venv =="
    quiet_nice "$VENV/bin/python" -m pip install -q --disable-pip-version-check "${REQUIREMENTS[@]}"
    echo "$want" >"$stamp"
fi

# --- f3dx_router --------------------------------------------------------------
wheel="${F3DX_ROUTER_WHEEL:-}"
if [ -z "$wheel" ]; then
    command -v cargo >/dev/null 2>&1 || {
        echo "cargo not found: install Rust (rustup), or set F3DX_ROUTER_WHEEL" >&2; exit 1; }
    echo "== building the f3dx_router wheel (cargo release build: minutes the first time) =="
    mkdir -p "$BENCH/.wheels"
    rm -f "$BENCH"/.wheels/f3dx_router-*.whl
    if ! (cd "$ROOT" && CARGO_TARGET_DIR="$BENCH/.target" PYO3_PYTHON="$VENV/bin/python" \
            quiet_nice "$VENV/bin/maturin" build --release --out "$BENCH/.wheels") \
            >"$BENCH/.wheels/build.log" 2>&1; then
        cat "$BENCH/.wheels/build.log" >&2
        echo "the wheel build failed (log above)" >&2
        exit 1
    fi
    wheel="$(ls "$BENCH"/.wheels/f3dx_router-*.whl | head -n1)"
fi
wstamp="$VENV/.stamp-f3dx-router"
# The hash of the package's files (the zip and its SBOM carry timestamps).
whash="$("$VENV/bin/python" -c 'import hashlib, sys, zipfile
z, h = zipfile.ZipFile(sys.argv[1]), hashlib.sha256()
for n in sorted(z.namelist()):
    if n.startswith("f3dx_router/"):
        h.update(n.encode() + z.read(n))
print(h.hexdigest())' "$wheel")"
if [ "$(cat "$wstamp" 2>/dev/null || true)" != "$whash" ]; then
    echo "== installing $(basename "$wheel") =="
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --force-reinstall --no-deps "$wheel"
    echo "$whash" >"$wstamp"
fi

# --- Node.js: wrangler ----------------------------------------------------------
if ! command -v node >/dev/null 2>&1; then
    echo "== installing nodejs and npm (wrangler runs on Node) =="
    if ! apt-cache show nodejs >/dev/null 2>&1; then
        as_root apt-get -o DPkg::Lock::Timeout=600 update -q || true
    fi
    as_root env DEBIAN_FRONTEND=noninteractive nice -n 10 \
        apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends nodejs npm ||
        echo "could not install Node.js: the worker measures will not run" >&2
fi

# npm ci in a directory when its lock is newer than what was installed.
npm_ci() {
    local dir="$1"
    if [ ! -f "$dir/node_modules/.package-lock.json" ] ||
        [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
        echo "== npm ci in ${dir#"$ROOT"/} =="
        (cd "$dir" && quiet_nice npm ci --no-audit --no-fund)
    fi
}

# Whether the arguments skip a measure: --skip a,b or --skip=a,b, or
# --measures a,b (or --measures=a,b) without it.
skips() {
    local want="$1" prev="" arg only=""
    for arg in "${ARGS[@]}"; do
        case "$arg" in
            --skip=*) [[ ",${arg#--skip=}," == *",$want,"* ]] && return 0 ;;
            --measures=*) only="${arg#--measures=}" ;;
        esac
        [ "$prev" = "--skip" ] && [[ ",$arg," == *",$want,"* ]] && return 0
        [ "$prev" = "--measures" ] && only="$arg"
        prev="$arg"
    done
    [ -n "$only" ] && [[ ",$only," != *",$want,"* ]] && return 0
    return 1
}
ARGS=("$@")

export BENCH_WORKER_BUILD_ERROR=""
if ! skips worker || ! skips stream; then
    if ! command -v npm >/dev/null 2>&1; then
        BENCH_WORKER_BUILD_ERROR="npm not found"
    elif ! npm_ci "$ROOT/worker"; then
        BENCH_WORKER_BUILD_ERROR="npm ci in worker/ failed"
    else
        echo "== building the worker (scripts/build-worker.sh) =="
        if ! quiet_nice bash "$ROOT/scripts/build-worker.sh" >"$BENCH/.worker-build.log" 2>&1; then
            tail -n 20 "$BENCH/.worker-build.log" >&2
            BENCH_WORKER_BUILD_ERROR="scripts/build-worker.sh failed (bench/.worker-build.log)"
        fi
    fi
    [ -z "$BENCH_WORKER_BUILD_ERROR" ] || echo "worker: $BENCH_WORKER_BUILD_ERROR" >&2
fi

# --- run ----------------------------------------------------------------------
export LITELLM_LOCAL_MODEL_COST_MAP=True
exec "$VENV/bin/python" "$BENCH/run.py" "$@"
