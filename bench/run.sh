#!/usr/bin/env bash
# pg_jwt_guard benchmark. Run as root from anywhere, with the extension installed:
#
#   bash bench/run.sh           # full run, about 40 minutes
#   bash bench/run.sh --quick   # about 12 minutes, noisier
#
# Starts throw-away PostgreSQL 15 clusters (Unix socket only, ports 58440 and 58445), prints the
# pgbench table in both protocols, the core against openssl speed, the memory check, the scans and
# the targets with PASS/MISS, then one real driver (psycopg 3 with psycopg_pool) end to end.
# Writes bench/results/latest.json and bench/results/driver-*.json. See bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x /usr/lib/postgresql/15/bin/pgbench ] || { echo "pgbench not found: apt-get install postgresql-15" >&2; exit 1; }
python3 -c 'import psycopg_pool' 2>/dev/null \
    || python3 -m pip install --quiet --disable-pip-version-check "psycopg-pool>=3.2"
python3 bench/bench.py "$@"
if [[ " $* " == *" --only"* ]]; then
    :  # a selection: no driver run
elif [ "${1:-}" = "--quick" ]; then
    python3 bench/driver.py --seconds 2 --rounds 3
else
    python3 bench/driver.py
fi
