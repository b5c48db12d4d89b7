"""ALTER EXTENSION pg_jwt_guard UPDATE from release 0.1.0 (run by scripts/upgrade_test.sh).

A throw-away PostgreSQL 15 cluster (port 58520) runs the 0.1.0 library: roles, keys and a table
protected with protect_table(). Then this build's library replaces it, the extension is
updated, and the checks run:

- install_scripts_in_sql: sql/ holds 0.1.0's install script as that release generated it, and
  the current version's as this build generates it;
- upgrade_keeps_setup: the keys, the policy and the token's rows survive; a key retired before
  the upgrade stays refused;
- upgrade_new_features: what 0.2.0 adds works on the upgraded database (jwt_guard_admin, revocation,
  issuer profiles);
- upgrade_schema_equals_fresh: every object of the upgraded extension (functions with their
  arguments, result, volatility, strictness, parallel label, security, settings and ACL; tables
  with columns, defaults, constraints, indexes, triggers and ACL; views; the dumped tables) equals
  what CREATE EXTENSION makes on a fresh database. Columns are compared by name: ADD COLUMN
  appends, a fresh install may place a column elsewhere.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import fixtures  # noqa: E402
import scenarios  # noqa: E402
from scenarios import Cluster, sqlstate_of  # noqa: E402

import psycopg  # noqa: E402

PGBIN = scenarios.PGBIN
OLD_LIBRARY = os.environ["JWT_GUARD_OLD_LIBRARY"]
LIBDIR = subprocess.run([f"{PGBIN}/pg_config", "--pkglibdir"], capture_output=True, text=True).stdout.strip()
LIBRARY = os.path.join(LIBDIR, "pg_jwt_guard.so")


def new_version():
    with open(os.path.join(HERE, "..", "..", "Cargo.toml")) as f:
        for line in f:
            if line.startswith("version"):
                return line.split('"')[1]
    raise RuntimeError("no version in Cargo.toml")


DESCRIBE = r"""
WITH ext AS (SELECT oid, extconfig FROM pg_extension WHERE extname = 'pg_jwt_guard'),
members AS (
    SELECT classid, objid, objsubid FROM pg_depend
    WHERE refclassid = 'pg_extension'::regclass AND refobjid = (SELECT oid FROM ext) AND deptype = 'e')
SELECT pg_describe_object(classid, objid, objsubid) || ' | ' || coalesce(
    CASE classid
    WHEN 'pg_proc'::regclass THEN (
        SELECT format('(%s) -> %s volatile=%s strict=%s secdef=%s parallel=%s lang=%s src=%s config=%s acl=%s',
                      pg_get_function_identity_arguments(p.oid), pg_get_function_result(p.oid), provolatile,
                      proisstrict, prosecdef, proparallel, l.lanname,
                      CASE WHEN l.lanname = 'c' THEN prosrc ELSE md5(prosrc) END, proconfig,
                      (SELECT array_agg(a ORDER BY a::text) FROM unnest(proacl) a))
        FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang WHERE p.oid = objid)
    WHEN 'pg_class'::regclass THEN (
        SELECT format('kind=%s acl=%s columns=[%s] constraints=[%s] indexes=[%s] triggers=[%s] view=%s',
            c.relkind, (SELECT array_agg(a ORDER BY a::text) FROM unnest(c.relacl) a),
            (SELECT string_agg(format('%s %s notnull=%s default=%s', attname, format_type(atttypid, atttypmod),
                                      attnotnull, pg_get_expr(d.adbin, d.adrelid)), ', ' ORDER BY attname)
             FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
             WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
            (SELECT string_agg(conname || ' ' || pg_get_constraintdef(k.oid), '; ' ORDER BY conname)
             FROM pg_constraint k WHERE k.conrelid = c.oid),
            (SELECT string_agg(pg_get_indexdef(i.indexrelid), '; ' ORDER BY pg_get_indexdef(i.indexrelid))
             FROM pg_index i WHERE i.indrelid = c.oid),
            (SELECT string_agg(pg_get_triggerdef(t.oid) || ' enabled=' || t.tgenabled::text, '; ' ORDER BY t.tgname)
             FROM pg_trigger t WHERE t.tgrelid = c.oid AND NOT t.tgisinternal),
            CASE WHEN c.relkind = 'v' THEN pg_get_viewdef(c.oid) END)
        FROM pg_class c WHERE c.oid = objid)
    WHEN 'pg_namespace'::regclass THEN (
        SELECT format('acl=%s', (SELECT array_agg(a ORDER BY a::text) FROM unnest(nspacl) a))
        FROM pg_namespace WHERE oid = objid)
    END, '')
FROM members
UNION ALL
SELECT 'dumped: ' || coalesce((SELECT string_agg(c::regclass::text, ', ' ORDER BY c::regclass::text)
                                FROM unnest((SELECT extconfig FROM ext)) c), '')
UNION ALL
SELECT 'role jwt_guard_admin: ' || coalesce((SELECT format('login=%s super=%s', rolcanlogin, rolsuper)
                                             FROM pg_roles WHERE rolname = 'jwt_guard_admin'), 'missing')
ORDER BY 1
"""


def describe(c, dbname):
    with psycopg.connect(host=c.dir, port=c.port, user="postgres", dbname=dbname, autocommit=True) as conn:
        return [r[0] for r in conn.execute(DESCRIBE).fetchall()]


class Old(Cluster):
    port = 58520


def set_up_old(c, env):
    with c.connect() as conn:
        conn.execute("CREATE EXTENSION pg_jwt_guard VERSION '0.1.0'")
        conn.execute("CREATE ROLE authenticator LOGIN NOINHERIT")
        conn.execute("CREATE ROLE app_user NOLOGIN")
        conn.execute("CREATE TABLE orders (id int PRIMARY KEY, tenant_id text NOT NULL)")
        conn.execute("GRANT SELECT ON orders TO app_user")
        conn.execute("INSERT INTO orders SELECT g, CASE WHEN g % 3 = 0 THEN 'globex' ELSE 'acme' END "
                     "FROM generate_series(1, 300) g")
        conn.execute("SELECT jwt_guard.protect_table('orders', 'tenant_id')")
        conn.execute("SELECT jwt_guard.add_key('test-es256', 'ES256', %s)", (env["KEY_ES256"],))
        conn.execute("SELECT jwt_guard.add_key('retire-me', 'HS512', %s)", (env["KEY_HS512"],))
        conn.execute("SELECT jwt_guard.retire_key('retire-me')")
        return conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'pg_jwt_guard'").fetchone()[0]


def rows_under(c, token):
    with c.connect(user="authenticator", autocommit=False) as a:
        a.prepare_threshold = None
        state, message = sqlstate_of(a, "SELECT jwt_guard.authenticate(%s)", (token,))
        if state != "ok":
            return f"{state} {message}"
        n = a.execute("SELECT count(*) FROM orders").fetchone()[0]
        a.rollback()
        return n


SQL_DIR = os.path.join(HERE, "..", "..", "sql")
EXTENSION_DIR = os.path.join(
    subprocess.run([f"{PGBIN}/pg_config", "--sharedir"], capture_output=True, text=True).stdout.strip(), "extension")


def script_lines(path):
    """An install script as the sorted list of pgrx's blocks, without pgrx's source-location
    comments: both the order of the blocks and those comments move with edits that change no SQL."""
    with open(path) as f:
        text = "".join(line for line in f if not line.startswith("-- src/"))
    return sorted(block.strip() for block in text.split("/* <begin connected objects> */"))


def check_scripts(version):
    """sql/ holds the install script each release generated: 0.1.0 as its own build wrote it,
    the current one as this build writes it."""
    if script_lines(os.environ["JWT_GUARD_OLD_SQL"]) != script_lines(os.path.join(SQL_DIR, "pg_jwt_guard--0.1.0.sql")):
        return "sql/pg_jwt_guard--0.1.0.sql differs from the script release 0.1.0 generated"
    name = f"pg_jwt_guard--{version}.sql"
    if script_lines(os.path.join(EXTENSION_DIR, name)) != script_lines(os.path.join(SQL_DIR, name)):
        return (f"sql/{name} differs from the script this build generated ({EXTENSION_DIR}/{name}): "
                "copy it, and write the matching upgrade script")
    return None


def main():
    env, minters = fixtures.build()
    version = new_version()
    results = [("install_scripts_in_sql", check_scripts(version))]
    saved = tempfile.mkdtemp(prefix="jwt_guard_upgrade_lib_")
    shutil.copy2(LIBRARY, os.path.join(saved, "pg_jwt_guard.so"))
    c = Old()
    try:
        shutil.copy2(OLD_LIBRARY, LIBRARY)
        c.start(preload=True, extra=scenarios.CONFIG)
        old_version = set_up_old(c, env)
        before_rows = rows_under(c, env["TOK_TENANT_ACME"])
        with c.connect() as conn:
            keys_before = conn.execute("SELECT kid, alg, status FROM jwt_guard.keys ORDER BY kid").fetchall()
        c.stop()
        # The new library replaces the old one while no server runs.
        shutil.copy2(os.path.join(saved, "pg_jwt_guard.so"), LIBRARY)
        c.start(preload=True, extra=scenarios.CONFIG)
        with c.connect() as conn:
            conn.execute("ALTER EXTENSION pg_jwt_guard UPDATE")
            updated = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'pg_jwt_guard'").fetchone()[0]
            keys_after = conn.execute("SELECT kid, alg, status FROM jwt_guard.keys ORDER BY kid").fetchall()
            policies = conn.execute("SELECT polname FROM pg_policy WHERE polrelid = 'orders'::regclass").fetchall()
        after_rows = rows_under(c, env["TOK_TENANT_ACME"])
        retired = rows_under(c, env["TOK_RETIRE_ME"])

        problem = None
        if old_version != "0.1.0" or updated != version:
            problem = f"versions: before {old_version}, after {updated} (expected 0.1.0 then {version})"
        elif keys_after != keys_before or len(keys_before) != 2:
            problem = f"keys before {keys_before}, after {keys_after}"
        elif not policies:
            problem = "the policy protect_table() made is gone"
        elif before_rows != 200 or after_rows != 200:
            problem = f"rows under the acme token: before {before_rows}, after {after_rows} (expected 200)"
        elif not isinstance(retired, str) or "retired" not in retired:
            problem = f"a key retired before the upgrade: {retired}"
        results.append(("upgrade_keeps_setup", problem))

        problem = None
        with c.connect() as conn:
            conn.execute("CREATE ROLE upgrade_admin LOGIN INHERIT")
            conn.execute("GRANT jwt_guard_admin TO upgrade_admin")
            conn.execute("SELECT jwt_guard.set_issuer('https://other.test', audience => ARRAY['orders-api'])")
        with psycopg.connect(host=c.dir, port=c.port, user="upgrade_admin", dbname="postgres", autocommit=True) as adm:
            adm.execute("SELECT jwt_guard.revoke_subject('alice')")
        revoked = rows_under(c, env["TOK_TENANT_ACME"])
        with psycopg.connect(host=c.dir, port=c.port, user="upgrade_admin", dbname="postgres", autocommit=True) as adm:
            adm.execute("SELECT jwt_guard.unrevoke_subject('alice')")
            issuers = adm.execute("SELECT iss FROM jwt_guard.issuers ORDER BY iss").fetchall()
        if not isinstance(revoked, str) or "revoked" not in revoked:
            problem = f"revoke_subject by a jwt_guard_admin member after the upgrade: {revoked}"
        elif ("https://other.test",) not in issuers:
            problem = f"issuer profile after the upgrade: {issuers}"
        elif rows_under(c, env["TOK_TENANT_ACME"]) != 200:
            problem = "unrevoked subject still refused"
        results.append(("upgrade_new_features", problem))

        with c.connect() as conn:
            conn.execute("CREATE DATABASE fresh")
        with psycopg.connect(host=c.dir, port=c.port, user="postgres", dbname="fresh", autocommit=True) as conn:
            conn.execute("CREATE EXTENSION pg_jwt_guard")
        upgraded, fresh = describe(c, "postgres"), describe(c, "fresh")
        only_upgraded = [x for x in upgraded if x not in fresh]
        only_fresh = [x for x in fresh if x not in upgraded]
        problem = None
        if only_upgraded or only_fresh or len(upgraded) < 30:
            problem = json.dumps({"only after upgrade": only_upgraded, "only in a fresh install": only_fresh,
                                  "objects": len(upgraded)}, indent=1)
        results.append(("upgrade_schema_equals_fresh", problem))
    except Exception as e:  # noqa: BLE001
        results.append(("upgrade", f"raised {e!r}"))
    finally:
        try:
            c.stop()
        except Exception:  # noqa: BLE001
            pass
        shutil.copy2(os.path.join(saved, "pg_jwt_guard.so"), LIBRARY)
        shutil.rmtree(saved, ignore_errors=True)
        if os.environ.get("JWT_GUARD_KEEP_CLUSTER"):
            print(f"cluster kept in {c.dir}")
        else:
            c.remove()
    passed = failed = 0
    for name, problem in results:
        if problem is None:
            passed += 1
            print(f"upgrade {name:36s} ... ok")
        else:
            failed += 1
            print(f"upgrade {name:36s} ... FAILED: {problem}")
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    time.tzset()
    sys.exit(main())
