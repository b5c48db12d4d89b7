#!/usr/bin/env bash
# The whole test suite: core unit/property tests, a fuzzing smoke run, then the SQL suites,
# scenarios and the pooled hostile-neighbour suite against throw-away PostgreSQL 15 clusters.
# Ends with "N passed, N failed".
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

# A short coverage-guided fuzzing run of every core target (docs/fuzzing.md); a crash fails it.
log "fuzz smoke run (bash scripts/fuzz.sh --smoke)"
fuzz_log=$(mktemp)
set +e
bash scripts/fuzz.sh --smoke 2>&1 | tee "$fuzz_log"
set -e
fuzz_line=$(grep -Eo 'fuzz smoke: [0-9]+ passed, [0-9]+ failed' "$fuzz_log" | tail -1)
fuzz_passed=$(echo "$fuzz_line" | awk '{print $3+0}')
fuzz_failed=$(echo "$fuzz_line" | awk '{print $5+0}')
if [ -z "$fuzz_line" ]; then fuzz_passed=0; fuzz_failed=1; fi
core_passed=$((core_passed + fuzz_passed))
core_failed=$((core_failed + fuzz_failed))

install_extension
set +e
python3 tests/run_tests.py --core-passed "$core_passed" --core-failed "$core_failed"
status=$?
set -e
exit $status
