#!/usr/bin/env bash
# Builds PostgreSQL 17 or 18 from Debian's official source package into a cache directory
# outside the checkout, and prints its bin directory. Reused when already built.
#
#   bash scripts/pg_source.sh 17      # -> /var/cache/pg_jwt_guard/pg17/bin
#
# Debian 12 ships only PostgreSQL 15. The Debian archive also serves the source packages of
# newer releases (17 in trixie, 18 in sid); only their sources are used, never their binaries
# (those need a newer libc). The build is the pristine upstream tarball inside the package,
# with contrib (pg_stat_statements, dblink) and the pg_regress driver.
set -euo pipefail

version=${1:?usage: pg_source.sh 17|18}
case "$version" in 17 | 18) ;; *) echo "unsupported source build: $version" >&2; exit 2 ;; esac

CACHE=${JWT_GUARD_PG_CACHE:-/var/cache/pg_jwt_guard}
prefix="$CACHE/pg$version"
log() { printf '==> %s\n' "$*" >&2; }

if [ -x "$prefix/bin/pg_config" ] && [ -f "$prefix/.built" ]; then
    echo "$prefix/bin"
    exit 0
fi

missing=()
for pkg in bison flex libreadline-dev zlib1g-dev libssl-dev dpkg-dev bzip2 make gcc curl; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done

# A sources entry of our own for the newer suites' source packages; the system's are untouched.
src_list=/etc/apt/sources.list.d/pg-jwt-guard-src.sources
need_update=0
if [ ! -f "$src_list" ]; then
    cat >"$src_list" <<'EOF'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: trixie sid
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    need_update=1
fi
if [ ${#missing[@]} -gt 0 ] || [ "$need_update" = 1 ]; then
    log "apt-get update (deb-src for PostgreSQL $version)"
    apt-get update -qq
fi
if [ ${#missing[@]} -gt 0 ]; then
    log "installing build dependencies: ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

POOL="http://deb.debian.org/debian/pool/main/p/postgresql-$version"

# The archive's index can name a release whose files the mirror no longer (or not yet) serves.
# Then take the newest of the earlier Debian revisions of the same major version that the pool
# serves, and check the tarball against the SHA-256 its .dsc lists.
fetch_from_pool() {
    local listed minor dsc sum
    listed=$(apt-cache showsrc "postgresql-$version" | awk '/^Version:/ {print $2}' | sort -V | tail -1)
    minor=$(echo "$listed" | sed -E 's/^[0-9]+\.([0-9]+).*/\1/')
    for ((m = minor; m > minor - 6 && m >= 0; m--)); do
        for rev in "0+deb13u1" "0+deb13u2" "1" "2"; do
            dsc="postgresql-${version}_${version}.${m}-${rev}.dsc"
            if curl -fsS -m 60 -o "$dsc" "$POOL/${dsc//+/%2b}" 2>/dev/null; then
                log "the pool does not serve $listed; using $version.$m-$rev"
                sum=$(awk '/^Checksums-Sha256:/ {f=1; next} f && /orig\.tar\.bz2$/ {print $1; exit}' "$dsc")
                curl -fsS -m 600 -o "postgresql-${version}_${version}.${m}.orig.tar.bz2" \
                    "$POOL/postgresql-${version}_${version}.${m}.orig.tar.bz2"
                echo "$sum  postgresql-${version}_${version}.${m}.orig.tar.bz2" | sha256sum -c --quiet
                return 0
            fi
        done
    done
    echo "no source of postgresql-$version could be fetched from $POOL" >&2
    exit 1
}

mkdir -p "$CACHE/src"
cd "$CACHE/src"
tarball=$(ls postgresql-"$version"_*.orig.tar.bz2 2>/dev/null | head -1 || true)
if [ -z "$tarball" ]; then
    log "fetching the Debian source package postgresql-$version"
    if ! apt-get source --download-only -qq "postgresql-$version" >/dev/null 2>&1; then
        fetch_from_pool
    fi
    tarball=$(ls postgresql-"$version"_*.orig.tar.bz2 | head -1)
fi
log "building PostgreSQL $version from $tarball into $prefix (a few minutes)"
rm -rf "build$version" && mkdir "build$version"
tar -xjf "$tarball" -C "build$version" --strip-components=1
cd "build$version"
./configure --prefix="$prefix" --without-icu --with-openssl >/dev/null
make -s -j"$(nproc)" >/dev/null
make -s install >/dev/null
make -s -C contrib -j"$(nproc)" >/dev/null
make -s -C contrib install >/dev/null
cd .. && rm -rf "build$version"
touch "$prefix/.built"
echo "$prefix/bin"
