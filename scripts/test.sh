#!/usr/bin/env bash
# The whole test suite: core unit/property tests, then the SQL suites against a throw-away
# PostgreSQL 15 as a non-superuser login role. Ends with "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
unset RUST_BACKTRACE
ensure_deps

log "core tests (cargo test -p jwt_guard_core)"
core_log=$(mktemp)
set +e
cargo test -p jwt_guard_core 2>&1 | tee "$core_log"
core_status=${PIPESTATUS[0]}
set -e
core_passed=$(grep -Eo 'test result: [a-zA-Z]+\. [0-9]+ passed' "$core_log" | awk '{s+=$4} END {print s+0}')
core_failed=$(grep -Eo '[0-9]+ failed;' "$core_log" | awk '{s+=$1} END {print s+0}')
if [ "$core_status" -ne 0 ] && [ "$core_failed" -eq 0 ]; then core_failed=1; fi

install_extension
set +e
python3 tests/run_tests.py --core-passed "$core_passed" --core-failed "$core_failed"
status=$?
set -e
exit $status
