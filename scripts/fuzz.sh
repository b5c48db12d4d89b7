#!/usr/bin/env bash
# Coverage-guided fuzzing of jwt_guard_core with libFuzzer (cargo-fuzz), on stable Rust.
#
#   bash scripts/fuzz.sh <target> [seconds]     one target, default 600 s
#   bash scripts/fuzz.sh --all [seconds]        every target in turn, default 600 s each
#   bash scripts/fuzz.sh --smoke                every target for 20 s (FUZZ_SMOKE_SECONDS),
#                                               last line: "fuzz smoke: N passed, N failed"
#   bash scripts/fuzz.sh --repro <target> <file>   run one saved input (a crash) once
#   bash scripts/fuzz.sh --tmin <target> <file>    minimize a crashing input
#   bash scripts/fuzz.sh --build                build the targets only
#   bash scripts/fuzz.sh --list                 list the targets
#
# One fuzzing process at a time, one worker (no -jobs/-fork): the machine has 2 cores.
# Crashes go to fuzz/artifacts/<target>/, the grown corpus to fuzz/work/<target>/ and logs to
# fuzz/work/logs/ (all git-ignored); seeds in fuzz/corpus/<target>/ are only read.
# See docs/fuzzing.md.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
source scripts/lib.sh # log()

TARGETS=(token json claims keys permissions)
CARGO_FUZZ_VERSION=0.13.2
FUZZ_DIR=$ROOT/fuzz
TARGET_DIR=$FUZZ_DIR/target
TRIPLE=$(rustc -vV 2>/dev/null | sed -n 's/^host: //p')
BIN_DIR=$TARGET_DIR/${TRIPLE:-x86_64-unknown-linux-gnu}/release
# Build flags: no sanitizer (the only thing that needs nightly), so this works on stable;
# debug assertions on, so integer overflow and debug_assert! fail loudly.
BUILD_FLAGS=(--fuzz-dir "$FUZZ_DIR" --target-dir "$TARGET_DIR" -s none --debug-assertions)

max_len() {
    case "$1" in
        token) echo 10000 ;; # the default max_token_bytes is 8192
        keys) echo 8192 ;;   # JWKS with several RSA keys
        *) echo 4096 ;;
    esac
}

ensure_tools() {
    export PATH="$HOME/.cargo/bin:$PATH"
    command -v cargo >/dev/null || {
        log "cargo not found: install Rust (rustup, stable) first"
        exit 2
    }
    # libfuzzer-sys compiles libFuzzer's C++ sources with the system compiler.
    if ! command -v c++ >/dev/null || ! command -v cc >/dev/null; then
        log "installing a C/C++ compiler for libFuzzer (build-essential)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq build-essential >/dev/null
    fi
    if ! cargo fuzz --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
        log "installing cargo-fuzz $CARGO_FUZZ_VERSION"
        cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
    fi
}

build() {
    log "building fuzz targets (stable, -s none, sancov instrumentation)"
    # --target-dir overrides any CARGO_TARGET_DIR: the main build cache is never touched.
    cargo fuzz build "${BUILD_FLAGS[@]}" "$@"
}

is_target() {
    local t
    for t in "${TARGETS[@]}"; do [ "$t" = "$1" ] && return 0; done
    return 1
}

# run_target <target> <seconds> <corpus dir> <log file>: returns libFuzzer's exit status.
run_target() {
    local t=$1 secs=$2 work=$3 logf=$4
    mkdir -p "$work" "$FUZZ_DIR/artifacts/$t" "$(dirname "$logf")"
    local args=(
        -max_total_time="$secs"
        -timeout=10
        -rss_limit_mb=2048
        -max_len="$(max_len "$t")"
        -print_final_stats=1
        -artifact_prefix="$FUZZ_DIR/artifacts/$t/"
    )
    [ -f "$FUZZ_DIR/dict/$t.dict" ] && args+=(-dict="$FUZZ_DIR/dict/$t.dict")
    # The first directory receives new inputs; the committed seeds are only read.
    "$BIN_DIR/$t" "${args[@]}" "$work" "$FUZZ_DIR/corpus/$t" >"$logf" 2>&1
}

# One line of figures from a run log: executions, coverage, features, corpus size, crash file.
summary() {
    local t=$1 logf=$2 rc=$3
    local execs cov ft corp crash
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$logf" | tail -1)
    local last
    last=$(grep -E '^#[0-9]+.*cov: ' "$logf" | tail -1 || true)
    cov=$(grep -o 'cov: [0-9]*' <<<"$last" | cut -d' ' -f2 || true)
    ft=$(grep -o 'ft: [0-9]*' <<<"$last" | cut -d' ' -f2 || true)
    corp=$(grep -o 'corp: [0-9]*/[0-9a-zA-Z]*' <<<"$last" | cut -d' ' -f2 || true)
    crash=$(grep -o 'Test unit written to .*' "$logf" | tail -1 | sed 's/Test unit written to //' || true)
    printf '%-12s %s  execs=%s cov=%s ft=%s corpus=%s%s  log=%s\n' "$t" \
        "$([ "$rc" = 0 ] && echo ok || echo "FAILED(rc=$rc)")" "${execs:-?}" "${cov:-?}" "${ft:-?}" \
        "${corp:-?}" "${crash:+ crash=$crash}" "${logf#"$ROOT"/}"
}

fuzz_one() {
    local t=$1 secs=$2 rc=0
    local logf
    logf=$FUZZ_DIR/work/logs/$t-$(date +%Y%m%d-%H%M%S).log
    log "fuzzing $t for ${secs}s (log: ${logf#"$ROOT"/})"
    run_target "$t" "$secs" "$FUZZ_DIR/work/$t" "$logf" || rc=$?
    summary "$t" "$logf" "$rc"
    [ "$rc" = 0 ] || tail -n 40 "$logf" >&2
    return "$rc"
}

usage() {
    sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
}

[ $# -ge 1 ] || usage
case "$1" in
    -h | --help) usage ;;
    --list)
        printf '%s\n' "${TARGETS[@]}"
        ;;
    --build)
        ensure_tools
        build
        ;;
    --smoke)
        ensure_tools
        build
        secs=${FUZZ_SMOKE_SECONDS:-20}
        passed=0
        failed=0
        tmp=$(mktemp -d)
        for t in "${TARGETS[@]}"; do
            # A fresh corpus each time (seeds only), so the smoke run is the same everywhere.
            logf=$FUZZ_DIR/work/logs/smoke-$t.log
            rc=0
            run_target "$t" "$secs" "$tmp/$t" "$logf" || rc=$?
            summary "$t" "$logf" "$rc"
            if [ "$rc" = 0 ]; then
                passed=$((passed + 1))
            else
                failed=$((failed + 1))
                tail -n 40 "$logf" >&2
            fi
        done
        rm -rf "$tmp"
        echo "fuzz smoke: $passed passed, $failed failed"
        [ "$failed" = 0 ]
        ;;
    --all)
        secs=${2:-600}
        ensure_tools
        build
        status=0
        for t in "${TARGETS[@]}"; do
            fuzz_one "$t" "$secs" || status=1
        done
        exit "$status"
        ;;
    --repro | --tmin)
        [ $# -eq 3 ] && is_target "$2" || usage
        ensure_tools
        build "$2"
        if [ "$1" = --repro ]; then
            exec "$BIN_DIR/$2" -runs=1 "$3"
        fi
        mkdir -p "$FUZZ_DIR/artifacts/$2"
        exec "$BIN_DIR/$2" -minimize_crash=1 -runs=100000 -max_total_time=120 \
            -exact_artifact_path="$FUZZ_DIR/artifacts/$2/minimized-$(basename "$3")" "$3"
        ;;
    *)
        is_target "$1" || {
            log "unknown target '$1' (targets: ${TARGETS[*]})"
            exit 2
        }
        secs=${2:-600}
        ensure_tools
        build "$1"
        fuzz_one "$1" "$secs"
        ;;
esac
