#!/usr/bin/env bash
# The whole test suite: core unit/property tests, a fuzzing smoke run, then, for each PostgreSQL
# version asked for, the SQL suites, scenarios and the pooled hostile-neighbour suite against
# throw-away clusters. Ends with "N passed, N failed".
#
#   bash scripts/test.sh              # PostgreSQL 15
#   bash scripts/test.sh --pg 17      # one version (15, 17 or 18; 17/18 are built from source)
#   bash scripts/test.sh --all        # every supported version, then the upgrade, standby,
#                                     # preload-neighbour and package checks
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
unset RUST_BACKTRACE

versions=(15)
case "${1:-}" in
    "") ;;
    --pg) versions=("${2:?--pg needs a version: $SUPPORTED_PG}") ;;
    --all) versions=($SUPPORTED_PG) ;;
    *) echo "usage: bash scripts/test.sh [--pg 15|17|18 | --all]" >&2; exit 2 ;;
esac
ensure_deps
started=$SECONDS

log "core tests (cargo test -p jwt_guard_core)"
core_log=$(mktemp)
set +e
cargo test -p jwt_guard_core 2>&1 | tee "$core_log"
core_status=${PIPESTATUS[0]}
set -e
passed=$( (grep -Eo 'test result: [a-zA-Z]+\. [0-9]+ passed' "$core_log" || true) | awk '{s+=$4} END {print s+0}')
failed=$( (grep -Eo '[0-9]+ failed;' "$core_log" || true) | awk '{s+=$1} END {print s+0}')
if [ "$core_status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi

# A short coverage-guided fuzzing run of every core target (docs/fuzzing.md); a crash fails it.
log "fuzz smoke run (bash scripts/fuzz.sh --smoke)"
fuzz_log=$(mktemp)
set +e
bash scripts/fuzz.sh --smoke 2>&1 | tee "$fuzz_log"
set -e
fuzz_line=$(grep -Eo 'fuzz smoke: [0-9]+ passed, [0-9]+ failed' "$fuzz_log" | tail -1 || true)
if [ -z "$fuzz_line" ]; then
    failed=$((failed + 1))
else
    passed=$((passed + $(echo "$fuzz_line" | awk '{print $3}')))
    failed=$((failed + $(echo "$fuzz_line" | awk '{print $5}')))
fi

# Adds the closing "N passed, N failed" of a step's output to the totals; none counts as a failure.
count() {
    local out=$1 line
    line=$(grep -Eo '[0-9]+ passed, [0-9]+ failed' "$out" | tail -1 || true)
    if [ -z "$line" ]; then
        failed=$((failed + 1))
    else
        passed=$((passed + $(echo "$line" | awk '{print $1}')))
        failed=$((failed + $(echo "$line" | awk '{print $3}')))
    fi
}

# Runs one step, shows its output, and adds its closing line to the totals.
step() {
    local out
    out=$(mktemp)
    set +e
    "$@" 2>&1 | tee "$out"
    set -e
    count "$out"
}

# Formatting and clippy (warnings are errors), for the core and the extension.
lints() {
    local ok=0 bad=0 cmd
    for cmd in "cargo fmt --all -- --check" \
               "cargo clippy -p jwt_guard_core --all-targets -- -D warnings" \
               "cargo clippy --no-default-features --features pg15 --all-targets -- -D warnings"; do
        if $cmd; then ok=$((ok + 1)); else echo "lint FAILED: $cmd"; bad=$((bad + 1)); fi
    done
    echo "lints: $ok passed, $bad failed"
}
log "lints (cargo fmt --check, cargo clippy -D warnings)"
step lints

for v in "${versions[@]}"; do
    select_pg "$v"
    install_extension
    log "SQL suites and scenarios on PostgreSQL $v"
    step python3 tests/run_tests.py
done

if [ "${1:-}" = "--all" ]; then
    # The upgrade, standby and neighbour checks reinstall the build they test, so they run last.
    for v in "${versions[@]}"; do
        select_pg "$v"
        install_extension
        log "cluster checks on PostgreSQL $v (standby, preloaded neighbours, dump and restore)"
        step python3 tests/run_tests.py --only cluster
    done
    select_pg 15
    log "upgrade from 0.1.0 (PostgreSQL 15)"
    step bash scripts/upgrade_test.sh
    log "Debian package (PostgreSQL 15)"
    step bash scripts/package.sh --check
fi

log "versions: ${versions[*]}; $((SECONDS - started)) s"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
