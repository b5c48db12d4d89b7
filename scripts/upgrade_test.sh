#!/usr/bin/env bash
# The upgrade test on PostgreSQL 15: builds release 0.1.0 from the commit that shipped it (once,
# into a cache directory outside the checkout), sets up a database under it, installs this
# build, runs ALTER EXTENSION pg_jwt_guard UPDATE and checks that keys, policies and behaviour
# survive and that the upgraded schema equals a fresh install's. Ends with "N passed, N failed".
#
# Needs the repository's history (a clone, not an export). This build must be installed first
# (scripts/test.sh does that).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
unset RUST_BACKTRACE
ensure_deps

OLD_VERSION=0.1.0
OLD_COMMIT=79364a34220f8c28de6bfd490b9cfbb9668ba202
old="${JWT_GUARD_PG_CACHE:-/var/cache/pg_jwt_guard}/release-$OLD_VERSION-pg15"

if [ ! -f "$old/pg_jwt_guard.so" ]; then
    if ! git cat-file -e "$OLD_COMMIT^{commit}" 2>/dev/null; then
        echo "the commit of release $OLD_VERSION ($OLD_COMMIT) is not in this clone; fetch the full history" >&2
        echo "0 passed, 1 failed"
        exit 1
    fi
    log "building release $OLD_VERSION from $OLD_COMMIT into $old (once; a few minutes)"
    rm -rf "$old" && mkdir -p "$old/src"
    git archive "$OLD_COMMIT" | tar -x -C "$old/src"
    (cd "$old/src" && CARGO_TARGET_DIR="$old/target" cargo pgrx package --pg-config "$PG_CONFIG" >/dev/null)
    staged="$old/target/release/pg_jwt_guard-pg15"
    cp "$staged$($PG_CONFIG --pkglibdir)/pg_jwt_guard.so" "$old/pg_jwt_guard.so.tmp"
    cp "$staged$($PG_CONFIG --sharedir)/extension/pg_jwt_guard--$OLD_VERSION.sql" "$old/"
    rm -rf "$old/target" "$old/src"
    mv "$old/pg_jwt_guard.so.tmp" "$old/pg_jwt_guard.so"
fi

JWT_GUARD_OLD_LIBRARY="$old/pg_jwt_guard.so" JWT_GUARD_OLD_SQL="$old/pg_jwt_guard--$OLD_VERSION.sql" python3 tests/tools/upgrade.py
