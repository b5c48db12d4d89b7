#!/usr/bin/env bash
# Builds a Debian binary package of pg_jwt_guard per PostgreSQL major version, into dist/.
#
#   bash scripts/package.sh              # PostgreSQL 15 (the default)
#   bash scripts/package.sh --pg 17      # one version: 15, 17 or 18
#   bash scripts/package.sh --all        # 15, 17 and 18
#   bash scripts/package.sh --check      # as root: builds the 15 package, installs it with apt-get
#                                        # and tries it on a throw-away cluster (port 58500)
#
# Package pg-jwt-guard-pgNN, file dist/pg-jwt-guard-pgNN_<version>_<arch>.deb, version from the
# [package] version of Cargo.toml. It holds exactly what `cargo pgrx install` would install, built
# with `cargo pgrx package` (release profile):
#   <pkglibdir>/pg_jwt_guard.so
#   <sharedir>/extension/pg_jwt_guard.control and pg_jwt_guard--<version>.sql
#   <sharedir>/extension/pg_jwt_guard--*.sql found in sql/ (upgrade scripts), if any
# and the licence as /usr/share/doc/pg-jwt-guard-pgNN/copyright.
# It has no maintainer scripts: it neither edits postgresql.conf nor restarts a server. Set
# shared_preload_libraries = 'pg_jwt_guard' and restart yourself (see README.md).
#
# pg-jwt-guard-pg15 is for Debian 12's own PostgreSQL 15 (Depends: postgresql-15; paths under
# /usr/lib/postgresql/15 and /usr/share/postgresql/15).
#
# pg-jwt-guard-pg17 and pg-jwt-guard-pg18 are NOT packages for Debian's postgresql-17/18: Debian 12
# has no such server packages. They are built against the source builds of scripts/pg_source.sh and
# install under that prefix, /var/cache/pg_jwt_guard/pgNN (lib/postgresql/ and
# share/postgresql/extension/). They depend on no PostgreSQL package and are useful only on a
# machine with that same source build.
#
# Installing a package overwrites the files `cargo pgrx install` put in the same places, and a later
# `cargo pgrx install` overwrites the package's files again: nothing needs removing in between.
# Removing the package (dpkg -r) deletes those files, whoever wrote them last.
#
# Set CARGO_TARGET_DIR to build apart from a shared target/ directory.
set -euo pipefail

cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

EXT=pg_jwt_guard
CHECK_PORT=58500
log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'package.sh: %s\n' "$*" >&2; exit 1; }

usage() {
    sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

# The [package] version of Cargo.toml.
crate_version() {
    awk -F'"' '/^\[/ { section = $0 } section == "[package]" && /^version[ \t]*=/ { print $2; exit }' Cargo.toml
}

pg_config_for() {
    case "$1" in
        15) echo /usr/lib/postgresql/15/bin/pg_config ;;
        17 | 18) echo "$(bash scripts/pg_source.sh "$1")/pg_config" ;;
        *) die "unsupported PostgreSQL version: $1 (15, 17 or 18)" ;;
    esac
}

package_name() { echo "pg-jwt-guard-pg$1"; }

deb_path() { echo "dist/$(package_name "$1")_$(crate_version)_$(dpkg --print-architecture).deb"; }

# Depends of the shared library's own NEEDED libraries (libc, libgcc, libssl), from dpkg-shlibdeps.
shlib_depends() {
    local so tmp out
    so=$(readlink -f "$1")
    command -v dpkg-shlibdeps >/dev/null 2>&1 || return 0
    tmp=$(mktemp -d)
    mkdir "$tmp/debian"
    printf 'Source: %s\n\nPackage: %s\nArchitecture: any\n' "$EXT" "$EXT" >"$tmp/debian/control"
    out=$(cd "$tmp" && dpkg-shlibdeps -O --ignore-missing-info "$so" 2>/dev/null) || out=
    rm -rf "$tmp"
    out=${out#shlibs:Depends=}
    echo "$out"
}

build_package() {
    local pg=$1 version pg_config prefix pkglibdir sharedir extdir target_root work out root pkg deb depends
    version=$(crate_version)
    [ -n "$version" ] || die "no version in the [package] section of Cargo.toml"
    pg_config=$(pg_config_for "$pg")
    [ -x "$pg_config" ] || die "no pg_config at $pg_config"
    prefix=$("$pg_config" --bindir)
    prefix=${prefix%/bin}
    pkglibdir=$("$pg_config" --pkglibdir)
    sharedir=$("$pg_config" --sharedir)
    extdir="$sharedir/extension"
    pkg=$(package_name "$pg")
    deb=$(deb_path "$pg")

    target_root=${CARGO_TARGET_DIR:-target}
    work="$target_root/package/pg$pg"
    out="$work/pgrx"
    root="$work/root"
    rm -rf "$work"
    mkdir -p "$out" "$root" dist

    local features=()
    [ "$pg" = 15 ] || features=(--no-default-features --features "pg$pg")
    log "cargo pgrx package for PostgreSQL $pg (release build; waits for cargo's lock if another build runs)"
    cargo pgrx package --pg-config "$pg_config" --out-dir "$out" "${features[@]}" >&2

    # Exactly the files the extension needs, at pg_config's paths.
    mkdir -p "$root$pkglibdir" "$root$extdir"
    [ -f "$out$pkglibdir/$EXT.so" ] || die "cargo pgrx package wrote no $out$pkglibdir/$EXT.so"
    [ -f "$out$extdir/$EXT.control" ] || die "cargo pgrx package wrote no $EXT.control"
    [ -f "$out$extdir/$EXT--$version.sql" ] || die "cargo pgrx package wrote no $EXT--$version.sql"
    grep -q "^default_version = '$version'" "$out$extdir/$EXT.control" \
        || die "$EXT.control does not have default_version = '$version'"
    cp "$out$pkglibdir/$EXT.so" "$root$pkglibdir/"
    cp "$out$extdir/$EXT.control" "$out$extdir/$EXT"--*.sql "$root$extdir/"
    # Scripts kept in sql/ (pgrx copies the upgrade scripts itself; this adds any other version's
    # script). The generated install script of this version always wins.
    local f name
    if [ -d sql ]; then
        for f in sql/"$EXT"--*.sql; do
            [ -e "$f" ] || continue
            name=$(basename "$f")
            # The copy of this version's script in sql/ is checked against the generated one by
            # the upgrade test; the generated one is packaged.
            [ "$name" = "$EXT--$version.sql" ] && continue
            cp "$f" "$root$extdir/$name"
        done
    fi

    # The licence, where Debian keeps each package's.
    mkdir -p "$root/usr/share/doc/$pkg"
    cp LICENSE "$root/usr/share/doc/$pkg/copyright"

    find "$root" -type d -exec chmod 0755 {} +
    find "$root" -type f -exec chmod 0644 {} +

    depends=$(shlib_depends "$root$pkglibdir/$EXT.so")
    local description
    if [ "$pg" = 15 ]; then
        depends="postgresql-15${depends:+, $depends}"
        description="JWT verification inside PostgreSQL 15 (pg_jwt_guard)"
    else
        description="JWT verification inside PostgreSQL $pg, source build (pg_jwt_guard)"
    fi

    mkdir -p "$root/DEBIAN"
    {
        echo "Package: $pkg"
        echo "Version: $version"
        echo "Architecture: $(dpkg --print-architecture)"
        echo "Maintainer: pg_jwt_guard developers"
        echo "Section: database"
        echo "Priority: optional"
        echo "Installed-Size: $(du -sk --exclude=DEBIAN "$root" | cut -f1)"
        [ -n "$depends" ] && echo "Depends: $depends"
        echo "Description: $description"
        echo " jwt_guard.authenticate(token) verifies a JSON Web Token against keys registered"
        echo " by a superuser, switches to the database role the token names (if allowed),"
        echo " exposes the verified claims to row level security policies, and forgets all of"
        echo " it at the end of the transaction."
        echo " ."
        echo " Needs shared_preload_libraries = 'pg_jwt_guard' and a restart; this package"
        echo " changes no configuration."
        if [ "$pg" != 15 ]; then
            echo " ."
            echo " Built for the PostgreSQL $pg source build of scripts/pg_source.sh, installed under"
            echo " $prefix; not for any Debian postgresql-$pg package."
        fi
    } >"$root/DEBIAN/control"
    (cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) \
        >"$root/DEBIAN/md5sums"
    chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/md5sums"

    rm -f "$deb"
    dpkg-deb --root-owner-group --build "$root" "$deb" >/dev/null

    # The result, as dpkg-deb sees it.
    dpkg-deb -I "$deb" >&2
    local listing
    listing=$(dpkg-deb -c "$deb")
    printf '%s\n' "$listing" >&2
    for f in "$pkglibdir/$EXT.so" "$extdir/$EXT.control" "$extdir/$EXT--$version.sql" "/usr/share/doc/$pkg/copyright"; do
        grep -q " \.$f\$" <<<"$listing" || die "$deb lacks $f"
    done
    grep -q '^ Package: '"$pkg"'$' <(dpkg-deb -I "$deb") || die "$deb: wrong Package field"
    echo "$deb"
}

# --- --check: install the 15 package and try it on a throw-away cluster ---------------------

PASSED=0
FAILED=0
pass() { PASSED=$((PASSED + 1)); printf 'ok   %s\n' "$1"; }
fail() { FAILED=$((FAILED + 1)); printf 'FAIL %s\n' "$1"; [ -z "${2:-}" ] || printf '%s\n' "$2" | sed 's/^/     /'; }

CHECK_DIR=
as_postgres() { (cd / && runuser -u postgres -- "$@"); }
cleanup_check() {
    if [ -n "$CHECK_DIR" ] && [ -d "$CHECK_DIR" ]; then
        if [ -f "$CHECK_DIR/data/postmaster.pid" ]; then
            as_postgres /usr/lib/postgresql/15/bin/pg_ctl -D "$CHECK_DIR/data" -m immediate -w stop \
                >/dev/null 2>&1 || true
        fi
        rm -rf "$CHECK_DIR"
    fi
}

# psql as the postgres OS user on the throw-away cluster; SQL on stdin, so that neither the key
# nor a token is ever on a command line.
check_psql() {
    local user=$1
    shift
    as_postgres /usr/lib/postgresql/15/bin/psql -X -q -At -F'|' -v ON_ERROR_STOP=1 \
        -h "$CHECK_DIR" -p "$CHECK_PORT" -U "$user" -d postgres "$@"
}

run_check() {
    [ "$(id -u)" = 0 ] || die "--check must run as root (it installs the package and runs initdb as postgres)"
    id postgres >/dev/null 2>&1 || die "--check needs the postgres OS user (package postgresql-15)"
    python3 -c 'import jwt' 2>/dev/null || die "--check needs python3 with PyJWT (import jwt)"

    local version deb pkg out
    version=$(crate_version)
    deb=$(build_package 15)
    pkg=$(package_name 15)
    log "checking $deb"

    # 1. apt installs it (again, if the same version is already installed).
    if out=$(DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y --reinstall \
        "./$deb" 2>&1); then
        pass "apt-get install ./$deb"
    else
        fail "apt-get install ./$deb" "$(tail -n 20 <<<"$out")"
    fi
    local status
    status=$(dpkg-query -W -f='${Status} ${Version}' "$pkg" 2>/dev/null || true)
    if [ "$status" = "install ok installed $version" ]; then
        pass "dpkg: $pkg $version installed"
    else
        fail "dpkg: $pkg $version installed" "status: ${status:-none}"
    fi
    if out=$(dpkg --verify "$pkg" 2>&1) && [ -z "$out" ]; then
        pass "dpkg --verify: installed files match the package"
    else
        fail "dpkg --verify: installed files match the package" "$out"
    fi

    # 2. A throw-away cluster that preloads the installed library.
    CHECK_DIR=$(mktemp -d /tmp/pg_jwt_guard-package.XXXXXX)
    trap cleanup_check EXIT
    chown postgres: "$CHECK_DIR"
    chmod 0700 "$CHECK_DIR"
    if ! out=$(as_postgres /usr/lib/postgresql/15/bin/initdb -D "$CHECK_DIR/data" --auth=trust \
        -U postgres -E UTF8 --locale=C.UTF-8 2>&1); then
        fail "initdb" "$(tail -n 20 <<<"$out")"
        finish_check
        return
    fi
    cat >>"$CHECK_DIR/data/postgresql.conf" <<EOF
listen_addresses = ''
port = $CHECK_PORT
unix_socket_directories = '$CHECK_DIR'
fsync = off
shared_preload_libraries = 'pg_jwt_guard'
pg_jwt_guard.issuers = 'https://issuer.test'
pg_jwt_guard.audience = 'orders-api'
pg_jwt_guard.allowed_roles = 'app_user'
pg_jwt_guard.login_roles = 'authenticator'
EOF
    if out=$(as_postgres /usr/lib/postgresql/15/bin/pg_ctl -D "$CHECK_DIR/data" \
        -l "$CHECK_DIR/server.log" -w -t 60 start 2>&1); then
        pass "cluster starts with shared_preload_libraries = 'pg_jwt_guard'"
    else
        fail "cluster starts with shared_preload_libraries = 'pg_jwt_guard'" "$(tail -n 20 "$CHECK_DIR/server.log" 2>/dev/null)"
        finish_check
        return
    fi

    # 3. CREATE EXTENSION, roles, a table under RLS, an HS256 key generated for this run only.
    local secret other token bad
    secret=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
    other=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
    if out=$(check_psql postgres 2>&1 <<SQL
CREATE EXTENSION pg_jwt_guard;
CREATE ROLE authenticator LOGIN NOINHERIT;
CREATE ROLE app_user NOLOGIN;
CREATE TABLE orders (id int PRIMARY KEY, tenant_id text NOT NULL, item text NOT NULL);
INSERT INTO orders VALUES (1, 'acme', 'anvil'), (2, 'globex', 'gear'), (3, 'acme', 'rocket');
ALTER TABLE orders ENABLE ROW LEVEL SECURITY;
ALTER TABLE orders FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON orders USING (tenant_id = (SELECT jwt_guard.tenant()));
GRANT USAGE ON SCHEMA public TO app_user;
GRANT SELECT ON orders TO app_user;
SELECT extversion FROM pg_extension WHERE extname = 'pg_jwt_guard';
SQL
    ) && [ "$(tail -n 1 <<<"$out")" = "$version" ]; then
        pass "CREATE EXTENSION pg_jwt_guard (version $version)"
    else
        fail "CREATE EXTENSION pg_jwt_guard (version $version)" "$out"
    fi
    if out=$(check_psql postgres 2>&1 <<SQL
SELECT jwt_guard.add_key('package-check', 'HS256', \$key\$$secret\$key\$, 'https://issuer.test');
SELECT kid || ' ' || alg || ' ' || status FROM jwt_guard.keys;
SQL
    ) && [ "$(tail -n 1 <<<"$out")" = "package-check HS256 active" ]; then
        pass "jwt_guard.add_key('package-check', 'HS256', <secret of this run>, issuer)"
    else
        fail "jwt_guard.add_key('package-check', 'HS256', <secret of this run>, issuer)" "$out"
    fi

    # 4. Tokens minted with PyJWT: one with the registered secret, one with another.
    local mint='
import os, sys, time, jwt
now = int(time.time())
claims = {"iss": "https://issuer.test", "aud": "orders-api", "sub": "package-check",
          "role": "app_user", "tenant_id": "acme", "iat": now, "exp": now + 300}
print(jwt.encode(claims, os.environ["HS_SECRET"], algorithm="HS256", headers={"kid": "package-check"}))
'
    token=$(HS_SECRET=$secret python3 -c "$mint")
    bad=$(HS_SECRET=$other python3 -c "$mint")

    # Before a token, the login role reads no table.
    out=$(check_psql authenticator -v VERBOSITY=sqlstate 2>&1 <<<"SELECT count(*) FROM orders;") || true
    if grep -q '42501' <<<"$out"; then
        pass "before a token, authenticator cannot read orders (42501)"
    else
        fail "before a token, authenticator cannot read orders (42501)" "$out"
    fi

    # authenticate() inside a transaction: the token's role, its tenant's rows; all gone at COMMIT.
    local expected
    expected=$'t\napp_user|authenticator|acme|anvil,rocket\nauthenticator|none'
    if out=$(check_psql authenticator 2>&1 <<SQL
BEGIN;
SELECT jwt_guard.authenticate('$token') IS NOT NULL;
SELECT current_user, session_user, jwt_guard.tenant(), (SELECT string_agg(item, ',' ORDER BY id) FROM orders);
COMMIT;
SELECT current_user, coalesce(jwt_guard.tenant(), 'none');
SQL
    ) && [ "$out" = "$expected" ]; then
        pass "authenticate(token) in a transaction: app_user sees acme's rows; identity gone after COMMIT"
    else
        fail "authenticate(token) in a transaction: app_user sees acme's rows; identity gone after COMMIT" \
            "expected: $expected"$'\n'"got: $out"
    fi

    # A token signed with another secret is refused.
    out=$(check_psql authenticator -v VERBOSITY=sqlstate 2>&1 <<SQL
BEGIN;
SELECT jwt_guard.authenticate('$bad') IS NOT NULL;
SQL
    ) || true
    if grep -q '28000' <<<"$out"; then
        pass "a token signed with another secret is refused (28000)"
    else
        fail "a token signed with another secret is refused (28000)" "$out"
    fi

    if as_postgres /usr/lib/postgresql/15/bin/pg_ctl -D "$CHECK_DIR/data" -m fast -w stop >/dev/null 2>&1; then
        pass "cluster stops"
    else
        fail "cluster stops" "$(tail -n 20 "$CHECK_DIR/server.log" 2>/dev/null)"
    fi
    finish_check
}

finish_check() {
    cleanup_check
    CHECK_DIR=
    echo "package: $PASSED passed, $FAILED failed"
    [ "$FAILED" = 0 ]
}

# --- arguments --------------------------------------------------------------------------------

versions=(15)
mode=build
while [ $# -gt 0 ]; do
    case "$1" in
        --pg)
            [ $# -ge 2 ] || usage
            case "$2" in 15 | 17 | 18) versions=("$2") ;; *) die "unsupported PostgreSQL version: $2 (15, 17 or 18)" ;; esac
            shift 2
            ;;
        --pg=*)
            case "${1#--pg=}" in 15 | 17 | 18) versions=("${1#--pg=}") ;; *) die "unsupported PostgreSQL version: ${1#--pg=}" ;; esac
            shift
            ;;
        --all) versions=(15 17 18); shift ;;
        --check) mode=check; shift ;;
        -h | --help) usage ;;
        *) usage ;;
    esac
done

command -v dpkg-deb >/dev/null 2>&1 || die "dpkg-deb is missing"
if [ "$mode" = check ]; then
    run_check
else
    debs=()
    for pg in "${versions[@]}"; do
        debs+=("$(build_package "$pg")")
    done
    printf '%s\n' "${debs[@]}"
fi
