# Shared by scripts/demo.sh and scripts/test.sh: install what is missing, build, install.
# Safe to run again: every step checks before it acts.

PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
PGBIN=/usr/lib/postgresql/15/bin
PGRX_VERSION=0.18.0

log() { printf '==> %s\n' "$*" >&2; }

ensure_apt() {
    local missing=()
    for pkg in postgresql-15 postgresql-server-dev-15 postgresql-contrib postgresql-15-pgaudit libclang-dev clang sudo pgbouncer openssl; do
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
    if ! cargo pgrx --version 2>/dev/null | grep -q "$PGRX_VERSION"; then
        log "installing cargo-pgrx $PGRX_VERSION (takes a few minutes)"
        cargo install cargo-pgrx --version "$PGRX_VERSION" --locked
    fi
    if [ ! -f "$HOME/.pgrx/config.toml" ] || ! grep -q "pg15" "$HOME/.pgrx/config.toml"; then
        cargo pgrx init --pg15 "$PG_CONFIG" >/dev/null
    fi
}

ensure_python() {
    if ! python3 -c 'import jwt, cryptography, psycopg' 2>/dev/null; then
        log "installing Python test dependencies (PyJWT, cryptography, psycopg)"
        python3 -m pip install --quiet --disable-pip-version-check "PyJWT[crypto]>=2.6" "cryptography>=38" "psycopg[binary]>=3.1" \
            || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-jwt python3-cryptography python3-psycopg >/dev/null
    fi
}

# The pooled neighbour suite drives node-postgres too (it installs the npm package pg itself).
ensure_node() {
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        log "installing nodejs and npm (Debian)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
    fi
}

ensure_deps() {
    ensure_apt
    ensure_rust_tools
    ensure_python
    ensure_node
}

install_extension() {
    log "building and installing pg_jwt_guard (release)"
    cargo pgrx install --release --pg-config "$PG_CONFIG" >/dev/null
}
