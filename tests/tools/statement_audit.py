"""Statement audit (pg_jwt_guard.audit_statements) next to pgaudit.

A throw-away cluster (port 58490) with shared_preload_libraries = 'pgaudit, pg_jwt_guard':
a client authenticates with a token and runs a SELECT and an INSERT; a superuser runs its own
SELECT. Checks, from the server log:
- the token's statements give one JSON line each (`event: statement`, command, relations with
  the privileges each needed, the identity's sub, role, tenant, jti), joined to the
  authentication line by pid and vxid; the extension's own reads give none, nor does a
  statement refused by a permission check;
- pgaudit still logs the superuser's statement (the hooks chain);
- with the setting off, no statement line is written.

Interface: run_all(env, minters) -> (passed, failed); one line per check.
"""

import os
import sys
import time

import psycopg

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import scenarios  # noqa: E402

PGAUDIT_LIB = os.path.join(scenarios.PGBIN, "..", "lib", "pgaudit.so")


class AuditCluster(scenarios.Cluster):
    port = 58490


CONFIG = """
shared_preload_libraries = 'pgaudit, pg_jwt_guard'
pgaudit.log = 'read, write'
pg_jwt_guard.issuers = 'https://issuer.test'
pg_jwt_guard.audience = 'orders-api'
pg_jwt_guard.allowed_roles = 'app_user'
pg_jwt_guard.login_roles = 'authenticator'
pg_jwt_guard.audit_statements = on
"""


def token_session(c, token, second=None):
    with psycopg.connect(host=c.dir, port=c.port, user="authenticator", dbname="postgres") as conn:
        conn.prepare_threshold = None
        pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        conn.execute("SELECT jwt_guard.authenticate(%s)", (token,))
        conn.execute("SELECT count(*) FROM orders").fetchone()
        conn.execute("INSERT INTO orders VALUES (1000, 'acme')")
        if second:
            # Verified under the first identity, after a change that empties the caches: the
            # extension's own catalog, key and revocation reads run then, and must not show as
            # the token's statements.
            with c.connect() as admin:
                admin.execute("SELECT jwt_guard.revoke_token('statement-audit-probe')")
            conn.execute("SELECT jwt_guard.authenticate(%s)", (second,))
            # Refused by the permission check: no statement line; the identity ends with the
            # failed transaction, so its ROLLBACK writes none either.
            try:
                conn.execute("SELECT count(*) FROM secrets")
            except psycopg.errors.InsufficientPrivilege:
                pass
        conn.rollback()
    return pid


def check_statement_lines(c, env):
    pid = token_session(c, env["TOK_TENANT_ACME"], second=env["TOK_TENANT_GLOBEX"])
    lines = scenarios.audit_lines(c, pid)
    events = [(o["event"], o.get("command")) for o in lines]
    if events != [("verified", None), ("statement", "SELECT"), ("statement", "INSERT"), ("statement", "SELECT"),
                  ("verified", None)]:
        return f"lines of the token session: {events}"
    auth, select, insert, second, auth2 = lines
    if second["relations"] != [] or auth2["sub"] != "bob":
        return f"second authenticate: {second}, then {auth2}"
    for o in (select, insert):
        for k in ("sub", "role", "tenant", "jti", "pid", "vxid", "session_user"):
            if o[k] != auth[k]:
                return f"{o['command']} line's {k} {o[k]!r} differs from the authentication's {auth[k]!r}"
    if select["relations"] != [{"relation": "public.orders", "privileges": ["SELECT"]}]:
        return f"SELECT relations: {select['relations']}"
    if insert["relations"] != [{"relation": "public.orders", "privileges": ["INSERT"]}]:
        return f"INSERT relations: {insert['relations']}"
    if (auth["sub"], auth["role"], auth["tenant"]) != ("alice", "app_user", "acme"):
        return f"identity on the lines: {auth}"
    return None


def check_pgaudit_still_logs(c, env):
    with c.connect() as conn:
        conn.execute("SELECT count(*) FROM orders WHERE id = 424242")
    time.sleep(0.5)
    with open(os.path.join(c.dir, "log"), errors="replace") as f:
        log = f.read()
    if "AUDIT: SESSION" not in log or "WHERE id = 424242" not in log:
        return "pgaudit did not log the superuser's SELECT"
    return None


def check_off_writes_nothing(c, env):
    with c.connect() as conn:
        conn.execute("ALTER SYSTEM SET pg_jwt_guard.audit_statements = off")
        conn.execute("SELECT pg_reload_conf()")
    time.sleep(0.5)
    pid = token_session(c, env["TOK_TENANT_ACME"])
    events = [o["event"] for o in scenarios.audit_lines(c, pid)]
    if events != ["verified"]:
        return f"with audit_statements off: {events}"
    return None


def run_all(env, minters=None):
    passed = failed = 0
    if not os.path.exists(PGAUDIT_LIB):
        print("statement_audit setup ... FAILED: pgaudit is not installed (apt-get install postgresql-15-pgaudit)")
        return 0, 1
    c = AuditCluster()
    try:
        c.start(preload=True, extra=CONFIG)
        with c.connect() as conn:
            conn.execute("CREATE EXTENSION pgaudit")
            conn.execute("CREATE EXTENSION pg_jwt_guard")
            conn.execute("CREATE ROLE authenticator LOGIN NOINHERIT")
            conn.execute("CREATE ROLE app_user NOLOGIN")
            conn.execute("CREATE TABLE orders (id int PRIMARY KEY, tenant_id text NOT NULL)")
            conn.execute("ALTER TABLE orders ENABLE ROW LEVEL SECURITY")
            conn.execute("ALTER TABLE orders FORCE ROW LEVEL SECURITY")
            conn.execute("CREATE POLICY p ON orders USING ((SELECT jwt_guard.tenant()) = tenant_id)")
            conn.execute("GRANT SELECT, INSERT ON orders TO app_user")
            conn.execute("CREATE TABLE secrets (id int)")
            conn.execute("SELECT jwt_guard.add_key('test-es256', 'ES256', %s)", (env["KEY_ES256"],))
        for name, fn in [("statement_lines", check_statement_lines), ("pgaudit_still_logs", check_pgaudit_still_logs),
                         ("off_writes_nothing", check_off_writes_nothing)]:
            started = time.time()
            try:
                problem = fn(c, env)
            except Exception as e:  # noqa: BLE001 - an unexpected error is a failed check
                problem = f"raised {e!r}"
            if problem:
                failed += 1
                print(f"statement_audit {name} ... FAILED: {problem}")
            else:
                passed += 1
                print(f"statement_audit {name} ... ok ({time.time() - started:.1f} s)")
    finally:
        try:
            c.stop()
        except Exception:  # noqa: BLE001
            pass
        c.remove()
    return passed, failed


if __name__ == "__main__":
    import fixtures  # noqa: E402

    fixture_env, _ = fixtures.build()
    p, f = run_all(fixture_env)
    print(f"{p} passed, {f} failed")
    sys.exit(0 if f == 0 else 1)
