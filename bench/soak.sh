#!/usr/bin/env bash
# The soak of issue 9, one command (not in CI; about 10 minutes):
#
#     bash bench/soak.sh                     # 1,000,000 calls: bench/SOAK.md, bench/soak.json
#     bash bench/soak.sh --calls 100000 --report-every 20000 --out /tmp/soak   # a short check
#     bash bench/soak.sh --help              # every option of soak.py
#
# Installs what it needs, idempotently (a second run installs nothing):
#   - Debian's nginx-light when no nginx is on the machine, as bench/run.sh
#     does, and its echo module (libnginx-mod-http-echo, a dependency of
#     nginx-light) when it is missing: the slow answers and stalls are
#     echo_sleep. The soak runs its own nginx from a temp dir, never the
#     system service.
#   - the extension in the project's .venv (scripts/lib/env.sh, then
#     `maturin develop --release`), only when `import f3dx_router` fails
#     there: an existing build is used as it is (SOAK.md says when it was
#     built). F3DX_SOAK_PYTHON=/path/to/python uses that interpreter instead
#     (it must import f3dx_router already).
# Then runs bench/soak.py with the arguments given here.
set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH/.." && pwd)"
# shellcheck source=scripts/lib/apt.sh
source "$ROOT/scripts/lib/apt.sh"

# --- nginx and its echo module ------------------------------------------------
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
    echo "== installing nginx-light =="
    apt_install nginx-light  # Debian starts the packaged service where it can; unused here
fi
if [ ! -f /usr/lib/nginx/modules/ngx_http_echo_module.so ]; then
    echo "== installing libnginx-mod-http-echo =="
    apt_install libnginx-mod-http-echo
fi

# --- the extension --------------------------------------------------------------
PY="${F3DX_SOAK_PYTHON:-}"
if [ -n "$PY" ]; then
    "$PY" -c 'import f3dx_router' || {
        echo "F3DX_SOAK_PYTHON=$PY cannot import f3dx_router" >&2; exit 1; }
else
    PY="$ROOT/.venv/bin/python"
    if ! "$PY" -c 'import f3dx_router' >/dev/null 2>&1; then
        echo "== building the extension into .venv (maturin develop --release) =="
        # shellcheck source=scripts/lib/env.sh
        source "$ROOT/scripts/lib/env.sh"
        ensure_python_env
        (cd "$ROOT" && nice -n 10 maturin develop --release)
    fi
fi

# --- run ------------------------------------------------------------------------
exec "$PY" "$BENCH/soak.py" "$@"
