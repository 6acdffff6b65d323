#!/usr/bin/env bash
# The demo: live failover and hedging through local mock providers, no API
# keys. Installs what it needs (idempotently), builds the extension into
# .venv, then runs examples/demo.py.
#
#     bash scripts/demo.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# shellcheck source=scripts/lib/env.sh
source "$ROOT/scripts/lib/env.sh"
echo "== preparing (first run: a few minutes to build the extension) =="
ensure_system_packages >/dev/null
ensure_python_env >/dev/null
maturin develop --release --quiet
echo "== routing =="
exec python examples/demo.py
