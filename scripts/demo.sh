#!/usr/bin/env bash
# Sets everything up and shows the guard working: builds and installs pg_jwt_guard, starts a
# throw-away PostgreSQL 15 with the library preloaded, and runs a small multi-tenant example
# with tokens minted by PyJWT. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
unset RUST_BACKTRACE
ensure_deps
install_extension
python3 scripts/demo.py
