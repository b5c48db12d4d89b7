#!/usr/bin/env bash
# pg_jwt_guard benchmark. Run as root from anywhere, with the extension installed:
#
#   bash bench/run.sh           # full run, about 10 minutes
#   bash bench/run.sh --quick   # about 2 minutes
#
# Starts one throw-away PostgreSQL 15 (Unix socket only, port 58440), prints a table and the
# issue's targets with PASS/MISS, and writes bench/results/latest.json. See bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x /usr/lib/postgresql/15/bin/pgbench ] || { echo "pgbench not found: apt-get install postgresql-15" >&2; exit 1; }
exec python3 bench/bench.py "$@"
