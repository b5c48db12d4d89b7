#!/usr/bin/env python3
"""Runs the demo on a throw-away cluster: keys and tokens from PyJWT, SQL from demo.sql."""

import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "tools"))
import fixtures  # noqa: E402
from scenarios import Cluster, PGBIN, PORT  # noqa: E402

CONFIG = """
pg_jwt_guard.issuers = 'https://issuer.test'
pg_jwt_guard.audience = 'orders-api'
pg_jwt_guard.allowed_roles = 'app_user, boss'
pg_jwt_guard.login_roles = 'authenticator'
"""

SETUP = """
CREATE EXTENSION pg_jwt_guard;
CREATE ROLE authenticator LOGIN NOINHERIT;
CREATE ROLE app_user NOLOGIN;
CREATE ROLE boss SUPERUSER NOLOGIN;
CREATE TABLE invoices (id serial PRIMARY KEY, tenant_id text NOT NULL, customer text, amount numeric);
ALTER TABLE invoices ENABLE ROW LEVEL SECURITY;
ALTER TABLE invoices FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON invoices
    USING (tenant_id = jwt_guard.tenant()) WITH CHECK (tenant_id = jwt_guard.tenant());
GRANT SELECT, INSERT ON invoices TO app_user;
GRANT USAGE ON SEQUENCE invoices_id_seq TO app_user;
INSERT INTO invoices (tenant_id, customer, amount) VALUES
    ('acme', 'Road Runner Inc', 120), ('acme', 'Coyote LLC', 75),
    ('globex', 'Hank Scorpio', 9000);
"""


def main():
    env, minters = fixtures.build()
    es = minters["ES256"]
    now = int(time.time())
    demo_env = dict(os.environ)
    demo_env.pop("RUST_BACKTRACE", None)
    demo_env.update({
        "TOK_ACME": es.token(sub="alice@acme", tenant_id="acme"),
        "TOK_GLOBEX": es.token(sub="bob@globex", tenant_id="globex"),
        "TOK_EXPIRED": es.token(sub="alice@acme", iat=now - 7200, exp=now - 3600),
        "TOK_OTHER_AUD": es.token(sub="alice@acme", aud="billing-api"),
        "TOK_SUPERUSER": es.token(sub="mallory", role="boss"),
    })
    c = Cluster()
    try:
        c.start(preload=True, extra=CONFIG)
        print(f"==> throw-away PostgreSQL 15 in {c.dir}, port {PORT}, pg_jwt_guard preloaded")
        with c.connect() as conn:
            conn.execute(SETUP)
            conn.execute("SELECT jwt_guard.add_key('test-es256', 'ES256', %s)", (env["KEY_ES256"],))
        print("==> demo tenants acme and globex; tokens signed by PyJWT with an ES256 test key\n")
        subprocess.run([f"{PGBIN}/psql", "-X", "-a", "-q", "-h", c.dir, "-p", str(PORT), "-U", "authenticator",
                        "-d", "postgres", "-f", os.path.join(HERE, "demo.sql")], env=demo_env, check=True)
    finally:
        c.stop()
        c.remove()
    print("\n==> done; the cluster was stopped and removed")


if __name__ == "__main__":
    main()
