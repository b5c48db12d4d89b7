"""Operator features that need their own cluster:

- the README quick start, run as written (its configuration, then its SQL blocks through psql
  with a token minted as its Python block mints it): every step does what its comments say,
  and jwt_guard.check_setup() finds nothing to fix in the set-up it recommends;
- install_compat('postgrest') with pg_jwt_guard.request_claims = on: policies written for
  PostgREST read the verified claims, no client can set request.jwt.claims, and the claims end
  with the transaction and with a rolled-back savepoint.

Each check prints `ok`/`FAILED` with a reason; run_all returns (passed, failed).
"""

import os
import re
import subprocess
import tempfile

import psycopg

from scenarios import PGBIN, Checks, Cluster, sqlstate_of

HERE = os.path.dirname(os.path.abspath(__file__))
README = os.path.join(HERE, "..", "..", "README.md")


def readme_parts():
    """The quick start's configuration, its psql heredocs (in order) and its token minter."""
    text = open(README).read()
    conf = re.search(r"pg_jwt_guard\.conf <<'EOF'\n(.*?)\nEOF\n", text, re.S).group(1)
    sql = re.findall(r"<<'SQL'\n(.*?)\nSQL\n", text, re.S)
    mint = re.search(r"TOKEN=\$\(python3 - <<'EOF'\n(.*?)\nEOF\n\)", text, re.S).group(1)
    return conf, sql, mint


def psql(c, db, user, script, **variables):
    cmd = [f"{PGBIN}/psql", "-X", "-q", "-A", "-t", "-h", c.dir, "-p", str(c.port), "-U", user, "-d", db]
    for k, v in variables.items():
        cmd += ["-v", f"{k}={v}"]
    return subprocess.run(cmd, input=script, capture_output=True, text=True)


def check_readme_quick_start(c, env):
    conf, sql, mint = readme_parts()
    if len(sql) != 3:
        return f"expected 3 psql blocks in the quick start, found {len(sql)}"
    setup, keys, use = sql
    subprocess.run(["runuser", "-u", "postgres", "--", f"{PGBIN}/createdb", "-h", c.dir, "-p", str(c.port), "shop"],
                   check=True)
    out = psql(c, "shop", "postgres", setup, ON_ERROR_STOP=1, pw="quick-start-password")
    if out.returncode != 0:
        return f"step 2 failed: {out.stderr.strip()}"
    work = tempfile.mkdtemp(prefix="jwt_guard_quickstart_")
    pem, pub = os.path.join(work, "issuer-es256.pem"), os.path.join(work, "issuer-es256.pub")
    subprocess.run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", pem], check=True)
    subprocess.run(["openssl", "ec", "-in", pem, "-pubout", "-out", pub], check=True, capture_output=True)
    out = psql(c, "shop", "postgres", keys, pub=open(pub).read())
    if "quickstart-1|ES256|https://auth.example.com/|active" not in out.stdout:
        return f"step 3 did not register the key: {out.stdout.strip()} {out.stderr.strip()}"
    token = subprocess.run(["python3", "-c", mint], cwd=work, capture_output=True, text=True, check=True).stdout.strip()
    out = psql(c, "shop", "authenticator", use, tok=token)
    lines = [line for line in out.stdout.splitlines() if line]
    expected = ["alice", "app_user|acme", "1|acme|anvil", "2|acme|rocket skates", "authenticator|f"]
    if "permission denied" not in out.stderr or lines != expected:
        return f"step 5: expected {expected} and a refusal, got {lines} / {out.stderr.strip()}"
    findings = psql(c, "shop", "postgres", "SELECT severity, object, finding FROM jwt_guard.check_setup();")
    if findings.returncode != 0 or findings.stdout.strip():
        return f"check_setup() finds problems in the recommended set-up: {findings.stdout.strip()} {findings.stderr.strip()}"
    # The same lint does see a gap opened in that set-up.
    psql(c, "shop", "postgres", "GRANT TEMPORARY ON DATABASE shop TO PUBLIC;")
    findings = psql(c, "shop", "postgres", "SELECT object FROM jwt_guard.check_setup();")
    if findings.stdout.strip() != "role authenticator":
        return f"check_setup() missed TEMPORARY granted back to PUBLIC: {findings.stdout.strip()!r}"
    return None


POSTGREST_CONFIG = """
pg_jwt_guard.issuers = 'https://issuer.test'
pg_jwt_guard.audience = 'orders-api'
pg_jwt_guard.allowed_roles = 'app_user'
pg_jwt_guard.login_roles = 'authenticator'
pg_jwt_guard.request_claims = on
"""


def setup_postgrest(c, env):
    with c.connect() as conn:
        conn.execute("CREATE EXTENSION pg_jwt_guard")
        conn.execute("CREATE ROLE authenticator LOGIN NOINHERIT")
        conn.execute("CREATE ROLE app_user NOLOGIN")
        # A policy as PostgREST's documentation writes them.
        conn.execute("CREATE TABLE todos (id int PRIMARY KEY, tenant_id text NOT NULL)")
        conn.execute("ALTER TABLE todos ENABLE ROW LEVEL SECURITY")
        conn.execute("ALTER TABLE todos FORCE ROW LEVEL SECURITY")
        conn.execute("CREATE POLICY by_tenant ON todos USING "
                     "(tenant_id = current_setting('request.jwt.claims', true)::json ->> 'tenant_id')")
        conn.execute("GRANT SELECT ON todos TO app_user")
        conn.execute("INSERT INTO todos SELECT g, CASE WHEN g % 3 = 0 THEN 'globex' ELSE 'acme' END "
                     "FROM generate_series(1, 30) g")
        conn.execute("SELECT jwt_guard.add_key('test-es256', 'ES256', %s)", (env["KEY_ES256"],))


def check_postgrest_claims(c, env):
    with c.connect() as admin:
        said = admin.execute("SELECT jwt_guard.install_compat('postgrest')").fetchone()[0]
        if "verified claims" not in said:
            return f"install_compat('postgrest') said {said!r}"
        lint = admin.execute("SELECT count(*) FROM jwt_guard.check_setup() WHERE object = 'table public.todos'").fetchone()[0]
        if lint != 0:
            return "check_setup() flags the PostgREST policy although request.jwt.claims is owned"
        state, _ = sqlstate_of(admin, "ALTER ROLE authenticator SET request.jwt.claims = '{\"tenant_id\": \"globex\"}'")
        if state != "42501":
            return f"ALTER ROLE ... SET request.jwt.claims gave {state}, expected 42501"
    with c.connect("authenticator", autocommit=False) as conn:
        # A client with no token plants another tenant's claims, then authenticates.
        for plant in ("SET LOCAL request.jwt.claims = '{\"tenant_id\": \"globex\"}'",
                      "SELECT set_config('request.jwt.claims', '{\"tenant_id\": \"globex\"}', true)"):
            state, _ = sqlstate_of(conn, plant)
            if state != "42501":
                return f"before a token, {plant!r} gave {state}, expected 42501"
        conn.execute("SELECT jwt_guard.authenticate(%s)", (env["TOK_TENANT_ACME"],))
        seen = conn.execute("SELECT count(*), min(tenant_id), max(tenant_id) FROM todos").fetchone()
        if seen != (20, "acme", "acme"):
            return f"a PostgREST-style policy under the acme token saw {seen}"
        for forge in ("SET LOCAL request.jwt.claims = '{\"tenant_id\": \"globex\"}'",
                      "SELECT set_config('request.jwt.claims', '{\"tenant_id\": \"globex\"}', true)"):
            conn.execute("SAVEPOINT f")
            try:
                conn.execute(forge)
                state = "ok"
            except psycopg.Error as e:
                state = e.sqlstate
            conn.execute("ROLLBACK TO SAVEPOINT f")
            if state != "42501":
                return f"{forge!r} gave {state}, expected 42501"
        seen = conn.execute("SELECT count(*), min(tenant_id) FROM todos").fetchone()
        if seen != (20, "acme"):
            return f"after the forgery attempts the acme token saw {seen}"
        # A reset skips check hooks: it can only empty the setting, and then no row matches.
        for reset in ("RESET request.jwt.claims", "SET LOCAL request.jwt.claims TO DEFAULT",
                      "SELECT set_config('request.jwt.claims', NULL, true)"):
            conn.execute("SAVEPOINT r")
            try:
                conn.execute(reset)
                rows = conn.execute("SELECT count(*) FROM todos WHERE tenant_id <> 'acme'").fetchone()[0]
                outcome = f"{rows} foreign rows"
            except psycopg.Error as e:
                outcome = e.sqlstate
            conn.execute("ROLLBACK TO SAVEPOINT r")
            if outcome not in ("0 foreign rows", "42501", "22P02"):
                return f"{reset!r} then a query gave {outcome}"
        conn.commit()
        # The next transaction of the same backend: nothing left.
        left = conn.execute("SELECT current_setting('request.jwt.claims', true), current_user").fetchone()
        conn.commit()
        if left != ("", "authenticator"):
            return f"after COMMIT request.jwt.claims / user were {left}"
        conn.execute("SAVEPOINT s")
        conn.execute("SELECT jwt_guard.authenticate(%s)", (env["TOK_TENANT_GLOBEX"],))
        inner = conn.execute("SELECT current_setting('request.jwt.claims', true)::json ->> 'tenant_id'").fetchone()[0]
        conn.execute("ROLLBACK TO SAVEPOINT s")
        after = conn.execute("SELECT current_setting('request.jwt.claims', true)").fetchone()[0]
        conn.rollback()
        if inner != "globex" or after != "":
            return f"savepoint: inside {inner!r}, after ROLLBACK TO {after!r}"
        conn.execute("SELECT jwt_guard.authenticate(%s)", (env["TOK_TENANT_ACME"],))
        conn.execute("SELECT jwt_guard.reset()")
        after_reset = conn.execute("SELECT current_setting('request.jwt.claims', true)").fetchone()[0]
        conn.rollback()
        if after_reset != "":
            return f"after jwt_guard.reset() request.jwt.claims was {after_reset!r}"
    return None


def run_all(env, minters):
    checks = Checks("operators")
    report = checks.run

    conf, _, _ = readme_parts()
    c = Cluster()
    try:
        c.start(preload=True, extra=conf + "\n")
        try:
            report("readme_quick_start", check_readme_quick_start, c, env)
        finally:
            c.stop()
    finally:
        c.remove()
    c = Cluster()
    try:
        c.start(preload=True, extra=POSTGREST_CONFIG)
        try:
            setup_postgrest(c, env)
            report("postgrest_request_claims", check_postgrest_claims, c, env)
        finally:
            c.stop()
    finally:
        c.remove()
    return checks.totals()
