# Shared by scripts/demo.sh and scripts/test.sh: install what is missing, build, install.
# Safe to run again: every step checks before it acts.

PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
PGBIN=/usr/lib/postgresql/15/bin
PG_MAJOR=15
PGRX_VERSION=0.18.0
# Every PostgreSQL major version built and tested; 17 and 18 are built from source.
SUPPORTED_PG="15 17 18"

log() { printf '==> %s\n' "$*" >&2; }

ensure_apt() {
    local missing=()
    for pkg in postgresql-15 postgresql-server-dev-15 postgresql-contrib postgresql-15-pgaudit postgresql-15-set-user libclang-dev clang sudo pgbouncer openssl libssl-dev pkg-config; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing apt packages: ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

ensure_rust_tools() {
    export PATH="$HOME/.cargo/bin:$PATH"
    if ! cargo clippy --version >/dev/null 2>&1 || ! cargo fmt --version >/dev/null 2>&1; then
        rustup component add clippy rustfmt || log "could not add clippy and rustfmt: the lint step will fail"
    fi
    if ! cargo pgrx --version 2>/dev/null | grep -q "$PGRX_VERSION"; then
        log "installing cargo-pgrx $PGRX_VERSION (takes a few minutes)"
        cargo install cargo-pgrx --version "$PGRX_VERSION" --locked
    fi
    pgrx_init
}

# Registers with pgrx every PostgreSQL this machine has built (init rewrites the whole list).
pgrx_init() {
    local cache=${JWT_GUARD_PG_CACHE:-/var/cache/pg_jwt_guard} v
    local args=(--pg15 /usr/lib/postgresql/15/bin/pg_config) want=("pg15 = \"/usr/lib/postgresql/15/bin/pg_config\"")
    for v in 17 18; do
        if [ -x "$cache/pg$v/bin/pg_config" ]; then
            args+=(--pg$v "$cache/pg$v/bin/pg_config")
            want+=("pg$v = \"$cache/pg$v/bin/pg_config\"")
        fi
    done
    for v in "${want[@]}"; do
        if [ ! -f "$HOME/.pgrx/config.toml" ] || ! grep -qxF "$v" "$HOME/.pgrx/config.toml"; then
            cargo pgrx init "${args[@]}" >/dev/null
            return
        fi
    done
}

# Points PG_CONFIG/PGBIN at one supported major version, building 17/18 from source if needed.
select_pg() {
    PG_MAJOR=$1
    case "$PG_MAJOR" in
        15) PGBIN=/usr/lib/postgresql/15/bin ;;
        17 | 18) PGBIN=$(bash scripts/pg_source.sh "$PG_MAJOR") ;;
        *) echo "unsupported PostgreSQL version: $PG_MAJOR (supported: $SUPPORTED_PG)" >&2; exit 2 ;;
    esac
    PG_CONFIG=$PGBIN/pg_config
    export JWT_GUARD_PGBIN=$PGBIN JWT_GUARD_PG_MAJOR=$PG_MAJOR
    pgrx_init
}

ensure_python() {
    if ! python3 -c 'import jwt, cryptography, psycopg' 2>/dev/null; then
        log "installing Python test dependencies (PyJWT, cryptography, psycopg)"
        python3 -m pip install --quiet --disable-pip-version-check "PyJWT[crypto]>=2.6" "cryptography>=38" "psycopg[binary]>=3.1" \
            || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-jwt python3-cryptography python3-psycopg >/dev/null
    fi
    # The client examples of docs/clients.md (tests/tools/clients.py) run with these two as well.
    if ! python3 -c 'import psycopg_pool, asyncpg' 2>/dev/null; then
        log "installing Python client libraries for the client examples (psycopg-pool, asyncpg)"
        python3 -m pip install --quiet --disable-pip-version-check "psycopg-pool>=3.1" "asyncpg>=0.27" \
            || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-psycopg-pool python3-asyncpg >/dev/null
    fi
}

# The pooled neighbour suite drives node-postgres too (it installs the npm package pg itself);
# the client examples use the one locked in tests/tools/node/package-lock.json.
ensure_node() {
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        log "installing nodejs and npm (Debian)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
    fi
    local node_dir
    node_dir="$(dirname "${BASH_SOURCE[0]}")/../tests/tools/node"
    if [ ! -f "$node_dir/node_modules/pg/package.json" ]; then
        log "installing node-postgres for the client examples (npm ci in tests/tools/node)"
        (cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    fi
}

ensure_deps() {
    ensure_apt
    ensure_rust_tools
    ensure_python
    ensure_node
}

install_extension() {
    log "building and installing pg_jwt_guard (release, PostgreSQL $PG_MAJOR)"
    cargo pgrx install --release --pg-config "$PG_CONFIG" --no-default-features --features "pg$PG_MAJOR" >/dev/null
    install_sql_scripts "$($PG_CONFIG --sharedir)/extension"
}

# pgrx writes the current version's install script; the earlier releases' install scripts and
# the upgrade scripts are kept in sql/ and installed beside it.
install_sql_scripts() {
    local dest=$1 current f
    current=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
    for f in sql/pg_jwt_guard--*.sql; do
        [ "$(basename "$f")" = "pg_jwt_guard--$current.sql" ] && continue
        install -m 0644 "$f" "$dest/"
    done
}
