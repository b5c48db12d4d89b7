"""Hostile neighbours behind pgbouncer: one pooled server backend, many clients in turn.

pgbouncer runs in transaction mode with `server_reset_query` empty and `default_pool_size = 1`,
so every client of a database lands on the same server backend, and nothing but the extension
stands between one client's transaction and the next. The login role is `authenticator`, listed
in `pg_jwt_guard.login_roles` (the README's recommended setup). Two databases are pooled:

- `lax`:    `pg_jwt_guard.enforce_permissions` off (GRANTs and RLS decide);
- `strict`: `ALTER ROLE authenticator IN DATABASE strict SET pg_jwt_guard.enforce_permissions = on`.

Each attack is one technique. An attacker client (no token, or a valid low-privilege token of
tenant "evil") plants something; a victim client of another tenant then runs a normal
transaction through the same backend (authenticate with the token as a bind parameter,
sometimes `%s::text` so that a cast runs, select its rows, insert, update, commit); then the
attacker reads back whatever it planted (temporary tables, sequences, settings, large objects,
pg_stat_activity, prepared statements, notices, notifications, application_name).

An attack is blocked only if
- no victim token, token signature or victim row ever reaches the attacker,
- every victim reads exactly its own rows or is refused with an error that has a SQLSTATE,
- nothing persistent is left behind (policies, triggers, functions, seeded rows, role settings),
- and each planting step is refused with the SQLSTATE the lockdown promises (42501 for a
  refused statement or role, 28000 for a refused token).

Between two attacks both pools are killed (so the next attack gets a fresh backend), the
catalogs and the seeded rows are compared with their state after setup, and a database that
changed is recreated from its template.

Interface: run(env, minters) -> [(name, None | one-line reason)], run_all(env, minters) ->
(passed, failed). No token is ever printed: every line goes through Suite.scrub().
"""

import hashlib
import json
import math
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import time
from typing import Optional

import psycopg
from psycopg import sql

import fixtures
import pooler
import scenarios

PGBIN = scenarios.PGBIN
PG_PORT = 58440    # the throw-away cluster (Unix socket only)
POOL_PORT = 58441  # pgbouncer, 127.0.0.1 only
RUN = secrets.token_hex(4)
SEED = f"S3CR3T-seed-{RUN}"   # prefix of every seeded row of a victim tenant
ERR = "an error"              # expectation: any SQLSTATE (a step that depends on a refused one)
HERE = os.path.dirname(os.path.abspath(__file__))

# The README's recommended setup. run_neighbours.py --weakened empties login_roles (a session
# without a token is then plain PostgreSQL) and rewrites the tenant policies the way 0.1 wrote
# them, to show that the suite catches what gets through.
LOGIN_ROLES = "authenticator"
WEAKENED = False
# 0.1's protect_table: the claim cast to the column's type, on the named table only.
WEAKEN_SQL = """
DO $$
DECLARE r record; typ text;
BEGIN
  FOR r IN SELECT DISTINCT i.inhrelid::regclass AS t FROM pg_inherits i LOOP
    EXECUTE format('ALTER TABLE %s NO FORCE ROW LEVEL SECURITY', r.t);
    EXECUTE format('ALTER TABLE %s DISABLE ROW LEVEL SECURITY', r.t);
  END LOOP;
  FOR r IN SELECT p.polrelid::regclass AS t FROM pg_policy p WHERE p.polname = 'jwt_guard_tenant' LOOP
    SELECT format_type(a.atttypid, a.atttypmod) INTO typ FROM pg_attribute a
     WHERE a.attrelid = r.t AND a.attname = 'tenant_id';
    EXECUTE format('DROP POLICY jwt_guard_tenant ON %s', r.t);
    EXECUTE format('CREATE POLICY jwt_guard_tenant ON %s AS RESTRICTIVE FOR ALL '
                   'USING (tenant_id = (jwt_guard.tenant())::%s) WITH CHECK (tenant_id = (jwt_guard.tenant())::%s)',
                   r.t, typ, typ);
  END LOOP;
END $$;
"""
CONFIG = """
pg_jwt_guard.issuers = 'https://issuer.test'
pg_jwt_guard.audience = 'orders-api'
pg_jwt_guard.allowed_roles = 'app_user, app_reader, app_all, app_member, app_owner, app_schema, app_definer, app_creator'
pg_jwt_guard.login_roles = '{login_roles}'
max_connections = 40
log_min_messages = warning
"""

PGBOUNCER_INI = """\
[databases]
lax = host={socket_dir} port={pg_port} dbname=lax user=authenticator
strict = host={socket_dir} port={pg_port} dbname=strict user=authenticator

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
logfile = {dir}/pgbouncer.log
pidfile = {dir}/pgbouncer.pid
auth_type = trust
auth_file = {dir}/userlist.txt
admin_users = postgres
pool_mode = transaction
; ONE server connection per database: every client of a database meets the same backend
default_pool_size = 1
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = 100
; a client stuck waiting for the single server connection fails instead of hanging the suite
query_wait_timeout = 20
; no DISCARD ALL between clients: the extension alone must clean up
server_reset_query =
ignore_startup_parameters = extra_float_digits,options
"""

ROLES = [
    "CREATE ROLE authenticator LOGIN NOINHERIT",
    "CREATE ROLE app_user NOLOGIN",      # the role of every tenant's ordinary token
    "CREATE ROLE app_reader NOLOGIN",    # read-only role
    "CREATE ROLE app_all NOLOGIN",       # GRANT ALL on orders: holds TRIGGER
    "CREATE ROLE app_owner NOLOGIN",     # owns a function that a policy uses
    "CREATE ROLE app_schema NOLOGIN",    # owns a schema
    "CREATE ROLE app_definer NOLOGIN",   # owns a SECURITY DEFINER function
    "CREATE ROLE app_member NOLOGIN",    # member of app_all: holds TRIGGER through the membership
    "GRANT app_all TO app_member",
    "CREATE ROLE app_creator NOLOGIN",   # may CREATE in schema public
]
# The README's recommended settings for the login role.
ROLE_SETTINGS = [
    "ALTER ROLE authenticator SET log_min_error_statement = panic",
    "ALTER ROLE authenticator SET log_parameter_max_length_on_error = 0",
    "ALTER ROLE authenticator SET log_parameter_max_length = 0",
]
STRICT_SETTING = "ALTER ROLE authenticator IN DATABASE strict SET pg_jwt_guard.enforce_permissions = on"

# Tables whose rows have (tenant_id, item); the victims read and write them.
TENANT_TABLES = ["orders", "tenant_notes", "shared_notes", "vault.entries", "v_accounts", "c_accounts",
                 "n_accounts", "counters", "ci_accounts", "i_accounts", "p_orders", "inh_parent"]

SCHEMA_SQL = f"""
CREATE EXTENSION pg_jwt_guard;
CREATE EXTENSION citext;
GRANT CREATE ON SCHEMA public TO app_creator;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO app_user;
CREATE SEQUENCE order_ref;
GRANT USAGE ON SEQUENCE order_ref TO app_user;

CREATE TABLE orders (id int GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, tenant_id text NOT NULL,
                     item text NOT NULL, ref bigint);
-- an ordinary application feature: listeners learn about new orders
CREATE FUNCTION orders_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_notify('orders_changed', NEW.tenant_id || ':' || NEW.item); RETURN NEW; END $$;
CREATE TRIGGER orders_notify AFTER INSERT OR UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION orders_notify();
GRANT SELECT ON orders TO app_reader;
GRANT ALL ON orders TO app_all;

CREATE TABLE tenant_notes (id int GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, tenant_id text NOT NULL,
                           item text NOT NULL);
GRANT TRUNCATE ON tenant_notes TO app_user;
CREATE TABLE audit_log (id int GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, note text);
GRANT SELECT, INSERT ON audit_log TO app_definer;

CREATE TABLE shared_notes (tenant_id text NOT NULL, item text NOT NULL);
CREATE FUNCTION visible_to_tenant(t text) RETURNS boolean LANGUAGE sql STABLE AS $$ SELECT t = jwt_guard.tenant() $$;
ALTER FUNCTION visible_to_tenant(text) OWNER TO app_owner;
ALTER TABLE shared_notes ENABLE ROW LEVEL SECURITY;
ALTER TABLE shared_notes FORCE ROW LEVEL SECURITY;
CREATE POLICY shared_allow ON shared_notes USING (true) WITH CHECK (true);
CREATE POLICY shared_tenant ON shared_notes AS RESTRICTIVE
    USING (visible_to_tenant(tenant_id)) WITH CHECK (visible_to_tenant(tenant_id));
GRANT SELECT ON shared_notes TO app_owner;

CREATE SCHEMA vault AUTHORIZATION app_schema;
CREATE TABLE vault.entries (tenant_id text NOT NULL, item text NOT NULL);
GRANT USAGE ON SCHEMA vault TO app_user;
GRANT SELECT, INSERT, UPDATE, DELETE ON vault.entries TO app_user;

CREATE TABLE v_accounts (tenant_id varchar(9) NOT NULL, item text NOT NULL);
CREATE TABLE c_accounts (tenant_id char(9) NOT NULL, item text NOT NULL);
CREATE TABLE n_accounts (tenant_id numeric(6,2) NOT NULL, item text NOT NULL);
CREATE TABLE counters (tenant_id text NOT NULL, item text NOT NULL);
CREATE TABLE ci_accounts (tenant_id citext NOT NULL, item text NOT NULL);
CREATE TABLE i_accounts (tenant_id int NOT NULL, item text NOT NULL);

CREATE TABLE p_orders (tenant_id text NOT NULL, item text NOT NULL) PARTITION BY LIST (tenant_id);
CREATE TABLE p_acme PARTITION OF p_orders FOR VALUES IN ('acme');
CREATE TABLE p_globex PARTITION OF p_orders FOR VALUES IN ('globex');
CREATE TABLE p_other PARTITION OF p_orders DEFAULT;
CREATE TABLE p_sub PARTITION OF p_orders FOR VALUES IN ('wayne', 'stark') PARTITION BY LIST (tenant_id);
CREATE TABLE p_sub_wayne PARTITION OF p_sub FOR VALUES IN ('wayne');
CREATE TABLE p_sub_stark PARTITION OF p_sub FOR VALUES IN ('stark');
CREATE TABLE inh_parent (tenant_id text NOT NULL, item text NOT NULL);
CREATE TABLE inh_child () INHERITS (inh_parent);

-- no RLS (PostgreSQL hides the DETAIL of errors on RLS tables)
CREATE TABLE staff (id int PRIMARY KEY, tenant_id text NOT NULL, name text NOT NULL,
                    salary int NOT NULL CHECK (salary > 0), ssn text NOT NULL);

CREATE FUNCTION definer_insert(note text) RETURNS int LANGUAGE sql SECURITY DEFINER
    SET search_path = pg_catalog, public
    AS $$ INSERT INTO public.audit_log (note) VALUES (note) RETURNING id $$;
ALTER FUNCTION definer_insert(text) OWNER TO app_definer;

INSERT INTO orders (tenant_id, item) VALUES
    ('acme', '{SEED}-orders-acme-1'), ('acme', '{SEED}-orders-acme-2'), ('acme', '{SEED}-orders-acme-3'),
    ('globex', '{SEED}-orders-globex-1'), ('globex', '{SEED}-orders-globex-2'),
    ('evil', 'seed-evil-orders-1');
INSERT INTO tenant_notes (tenant_id, item) VALUES
    ('acme', '{SEED}-notes-acme-1'), ('globex', '{SEED}-notes-globex-1'), ('evil', 'seed-evil-notes-1');
INSERT INTO shared_notes VALUES
    ('acme', '{SEED}-shared-acme-1'), ('globex', '{SEED}-shared-globex-1'), ('evil', 'seed-evil-shared-1');
INSERT INTO vault.entries VALUES ('acme', '{SEED}-vault-acme-1'), ('globex', '{SEED}-vault-globex-1');
INSERT INTO v_accounts VALUES ('acme-corp', '{SEED}-varchar-acme-corp-1'), ('acme-corp', '{SEED}-varchar-acme-corp-2');
INSERT INTO c_accounts VALUES ('acme-corp', '{SEED}-char-acme-corp-1');
INSERT INTO n_accounts VALUES (42, '{SEED}-numeric-42-1'), (7, '{SEED}-numeric-7-1');
INSERT INTO counters VALUES ('42', '{SEED}-counters-42-1'), ('42', '{SEED}-counters-42-2');
INSERT INTO ci_accounts VALUES ('acme', '{SEED}-citext-acme-1');
INSERT INTO i_accounts VALUES (42, '{SEED}-int-42-1');
INSERT INTO p_orders VALUES ('acme', '{SEED}-part-acme-1'), ('globex', '{SEED}-part-globex-1'),
    ('hooli', '{SEED}-part-hooli-1'), ('wayne', '{SEED}-part-wayne-1'), ('stark', '{SEED}-part-stark-1');
INSERT INTO inh_child VALUES ('acme', '{SEED}-inh-acme-1');
INSERT INTO staff VALUES (1, 'acme', 'Alice', 731337, '{SEED}-ssn-acme');

SELECT jwt_guard.protect_table('orders', 'tenant_id');
SELECT jwt_guard.protect_table('tenant_notes', 'tenant_id');
SELECT jwt_guard.protect_table('vault.entries', 'tenant_id');
SELECT jwt_guard.protect_table('v_accounts', 'tenant_id');
SELECT jwt_guard.protect_table('c_accounts', 'tenant_id');
SELECT jwt_guard.protect_table('n_accounts', 'tenant_id');
SELECT jwt_guard.protect_table('counters', 'tenant_id');
SELECT jwt_guard.protect_table('ci_accounts', 'tenant_id');
SELECT jwt_guard.protect_table('i_accounts', 'tenant_id');
SELECT jwt_guard.protect_table('p_orders', 'tenant_id');
SELECT jwt_guard.protect_table('inh_parent', 'tenant_id');

-- after protect_table: a partition attached later, an inheritance child created later
CREATE TABLE p_late (tenant_id text NOT NULL, item text NOT NULL);
INSERT INTO p_late VALUES ('initech', '{SEED}-part-initech-1'), ('evil', 'seed-evil-part-1');
ALTER TABLE p_orders ATTACH PARTITION p_late FOR VALUES IN ('initech', 'evil');
CREATE TABLE p_late2 PARTITION OF p_orders FOR VALUES IN ('umbrella');
INSERT INTO p_orders VALUES ('umbrella', '{SEED}-part-umbrella-1');
CREATE TABLE inh_late () INHERITS (inh_parent);
INSERT INTO inh_late VALUES ('globex', '{SEED}-inh-globex-1');
CREATE TABLE inh_adopted (tenant_id text NOT NULL, item text NOT NULL);
INSERT INTO inh_adopted VALUES ('cyberdyne', '{SEED}-inh-cyberdyne-1');
ALTER TABLE inh_adopted INHERIT inh_parent;
"""

FINGERPRINT_SQL = """
SELECT
 (SELECT coalesce(string_agg(tgrelid::regclass || '.' || tgname, ',' ORDER BY 1), '')
    FROM pg_trigger WHERE NOT tgisinternal) AS triggers,
 (SELECT coalesce(string_agg(ev_class::regclass || '.' || rulename, ',' ORDER BY 1), '')
    FROM pg_rewrite WHERE rulename <> '_RETURN' AND ev_class >= 16384) AS rules,
 (SELECT coalesce(string_agg(polrelid::regclass || '.' || polname || ':' || coalesce(pg_get_expr(polqual, polrelid), ''),
    ',' ORDER BY 1), '') FROM pg_policy) AS policies,
 (SELECT string_agg(c.oid::regclass || ':' || c.relkind::text || c.relrowsecurity || c.relforcerowsecurity || ':'
        || c.relowner::regrole || ':' || coalesce(c.relacl::text, ''), ',' ORDER BY 1)
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname IN ('public', 'vault', 'jwt_guard')) AS relations,
 (SELECT string_agg(p.oid::regprocedure || ':' || p.proowner::regrole || ':' || md5(p.prosrc) || p.prosecdef,
    ',' ORDER BY 1) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname IN ('public', 'vault', 'jwt_guard')) AS functions,
 (SELECT string_agg(nspname || ':' || nspowner::regrole || ':' || coalesce(nspacl::text, ''), ',' ORDER BY 1)
    FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%') AS schemas,
 (SELECT coalesce(string_agg(defaclrole::regrole || ':' || defaclacl::text, ',' ORDER BY 1), '')
    FROM pg_default_acl) AS default_acls,
 (SELECT count(*) FROM pg_largeobject_metadata) AS large_objects
"""

GLOBAL_FINGERPRINT_SQL = """
SELECT
 (SELECT coalesce(string_agg(coalesce(d.datname, '*') || ':' || coalesce(r.rolname, '*') || ':'
        || array_to_string(s.setconfig, ';'), ',' ORDER BY 1), '')
    FROM pg_db_role_setting s LEFT JOIN pg_database d ON d.oid = s.setdatabase
    LEFT JOIN pg_roles r ON r.oid = s.setrole) AS role_settings,
 (SELECT string_agg(rolname || ':' || rolsuper || rolcreaterole || rolcreatedb || rolbypassrls || rolcanlogin,
    ',' ORDER BY 1) FROM pg_roles WHERE rolname NOT LIKE 'pg\\_%') AS roles,
 (SELECT coalesce(string_agg(roleid::regrole || '>' || member::regrole, ',' ORDER BY 1), '')
    FROM pg_auth_members) AS memberships
"""

# Planted code. Each spy swallows its own errors, so the victim notices nothing.
SPY_LOOT = """CREATE FUNCTION pg_temp.spy(v text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO pg_temp.loot VALUES (v);
    RETURN true;
EXCEPTION WHEN others THEN
    RETURN true;
END $$"""
SPY_SETTING = """CREATE FUNCTION pg_temp.spy(v text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_catalog.set_config('loot.t', coalesce(pg_catalog.current_setting('loot.t', true), '') || v || ';', false);
    RETURN true;
EXCEPTION WHEN others THEN
    RETURN true;
END $$"""
CAPTURE_TRIGGER_FN = """CREATE FUNCTION pg_temp.capture() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    BEGIN
        INSERT INTO pg_temp.loot VALUES (NEW.tenant_id || '|' || NEW.item);
    EXCEPTION WHEN others THEN NULL;
    END;
    IF TG_OP = 'INSERT' THEN
        INSERT INTO public.orders (tenant_id, item, ref) VALUES (NEW.tenant_id, NEW.item, NEW.ref) RETURNING id INTO NEW.id;
    ELSE
        UPDATE public.orders SET item = NEW.item WHERE id = OLD.id;
    END IF;
    RETURN NEW;
END $$"""
TAP_TRIGGER_FN = """CREATE FUNCTION pg_temp.tap() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_catalog.set_config('loot.t',
        coalesce(pg_catalog.current_setting('loot.t', true), '') || NEW.tenant_id || '|' || NEW.item || ';', false);
    RETURN NEW;
EXCEPTION WHEN others THEN
    RETURN NEW;
END $$"""
LOOT_TABLE = "CREATE TEMP TABLE loot (v text)"
SHADOW_TABLE_COLUMNS = "(id int GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, tenant_id text, item text, ref bigint)"

# What an attacker reads back after the victim, each in its own transaction.
SWEEP = [
    ("pg_temp.loot", "SELECT v FROM pg_temp.loot"),
    ("pg_temp.orders", "SELECT * FROM pg_temp.orders"),
    ("session settings", "SELECT pg_catalog.current_setting('loot.t', true)"),
    ("large objects", "SELECT l.oid, lo_get(l.oid) FROM pg_largeobject_metadata l "
                      "WHERE pg_has_role(l.lomowner, 'MEMBER')"),
    ("pg_stat_activity", "SELECT pid, application_name, query FROM pg_stat_activity"),
    ("pg_prepared_statements", "SELECT name, statement FROM pg_prepared_statements"),
    ("application_name", "SHOW application_name"),
]

VICTIM_PERMS = ["select:orders", "insert:orders", "update:orders", "select:tenant_notes", "insert:tenant_notes",
                "select:shared_notes", "insert:shared_notes", "select:vault.entries", "insert:vault.entries",
                "select:counters", "insert:counters", "select:p_orders", "insert:p_orders",
                "select:inh_parent", "insert:inh_parent", "select:v_accounts", "insert:v_accounts",
                "select:c_accounts", "insert:c_accounts", "select:n_accounts", "insert:n_accounts"]
EVIL_PERMS = ["select:orders"]


def _diag(e) -> str:
    d = e.diag
    parts = [d.message_primary, d.message_detail, d.message_hint, d.context]
    return " | ".join(p for p in parts if p) or str(e)


class Outcome:
    def __init__(self, cls, name, technique):
        self.cls, self.name, self.technique = cls, name, technique
        self.steps = []       # (label, state, expected)
        self.seen = []        # (channel, text) that reached the attacker
        self.leaks = []       # victim data that reached the attacker
        self.harm = []        # victims served wrong rows, persistent damage, bypassed checks
        self.mismatch = []    # planting steps not refused as promised
        self.victim_errors = []
        self.notes = []
        self.problems = []    # the test itself could not tell (e.g. not one shared backend)

    def verdict(self) -> Optional[str]:
        harm = list(self.harm)
        if self.mismatch and self.victim_errors:
            # the victim failed because of what the neighbour was allowed to plant
            harm += [f"victim failed after the plant: {v}" for v in self.victim_errors]
        if self.leaks or harm:
            return "GOT THROUGH: " + "; ".join(self.leaks + harm + [f"not as promised: {m}" for m in self.mismatch])
        if self.problems:
            return "INCONCLUSIVE: " + "; ".join(self.problems)
        if self.mismatch:
            return "NOT AS PROMISED (no harm seen): " + "; ".join(self.mismatch)
        return None


class Client:
    """One client connection; pooled (through pgbouncer) unless direct. Every tx() is one transaction."""

    def __init__(self, suite, db, token=None, who="attacker", direct=False, prepare=None, watch=True, app=None):
        self.s, self.db, self.token, self.who, self.direct = suite, db, token, who, direct
        kw = dict(user="authenticator", dbname=db, autocommit=False, prepare_threshold=prepare, connect_timeout=5)
        if app:
            kw["application_name"] = app
        if direct:
            self.conn = psycopg.connect(host=suite.cluster.dir, port=PG_PORT, **kw)
        else:
            self.conn = psycopg.connect(host="127.0.0.1", port=POOL_PORT, **kw)
        suite.clients.append(self)
        if watch:
            self.conn.add_notice_handler(lambda d: suite.observe(f"{who} notice", _notice_text(d)))
            self.conn.add_notify_handler(lambda n: suite.observe(f"{who} notification on {n.channel}", n.payload))

    def pid(self):
        pid = self.conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        if not self.direct:
            self.s.pool_pids.setdefault(self.db, set()).add(pid)
        return pid

    def tx(self, stmts, expect=None, label=None, token=None, auth=True):
        """Runs stmts (str or (sql, params), or a list of them) in one transaction, after
        authenticate() when the client has a token. Returns (state, results); state is 'ok' or
        the SQLSTATE of the first error. Everything returned or raised is seen by the client."""
        if isinstance(stmts, (str, tuple)):
            stmts = [stmts]
        label = label or (stmts[0] if isinstance(stmts[0], str) else stmts[0][0]).split("\n")[0][:70]
        token = self.token if token is None else token
        results, state = [], "ok"
        conn = self.conn
        try:
            self.pid()
            if token and auth:
                conn.execute("SELECT jwt_guard.authenticate(%s)", (token,))
            for st in stmts:
                q, p = (st, None) if isinstance(st, str) else st
                if q.lstrip().upper().startswith("COPY") and "TO STDOUT" in q.upper():
                    with conn.cursor() as cur, cur.copy(q) as cp:
                        data = b"".join(bytes(b) for b in cp)
                    results.append(data.decode(errors="replace"))
                    continue
                cur = conn.execute(q, p)
                results.append(cur.fetchall() if cur.description else cur.rowcount)
            conn.commit()
        except psycopg.Error as e:
            state = e.sqlstate or "no SQLSTATE"
            if self.who != "victim":
                self.s.observe(f"{self.who} error in {label}", _diag(e))
            try:
                conn.rollback()
            except psycopg.Error:
                pass
        if self.who != "victim":
            for r in results:
                self.s.observe(f"{self.who} result of {label}", repr(r))
        if expect is not None:
            self.s.step(label, state, expect)
        return state, results

    def sweep(self):
        """Reads back every place a planted spy could have written to: without a token, and
        again under the attacker's token if it has one."""
        for token in ("", self.token) if self.token else ("",):
            for channel, q in SWEEP:
                self.tx(q, label=f"read back {channel}" + (" (token)" if token else ""), token=token)

    def close(self):
        try:
            self.conn.close()
        except Exception:  # noqa: BLE001
            pass


def _notice_text(d):
    return " | ".join(p for p in (d.message_primary, d.message_detail, d.context) if p)


class Suite:
    def __init__(self, env, minters):
        self.env, self.minters = env, minters
        self.es = minters["ES256"]
        self.tokens = set()
        self.secrets = []          # (label, text)
        self.victim_tokens = {}
        self.clients = []
        self.pool_pids = {}
        self.out = None
        self.results = []
        self.cluster = None
        self.pgbouncer = None
        self.retire_minters = {}
        self.seed_lo = None
        self.last_victim_ref = None

    # ---------- output hygiene ----------
    def scrub(self, text: str) -> str:
        for tok in sorted(self.tokens, key=len, reverse=True):
            text = text.replace(tok, "<token>")
            sig = tok.rsplit(".", 1)[-1]
            if len(sig) > 20:
                text = text.replace(sig, "<token signature>")
        return text

    def say(self, line):
        print(self.scrub(line), flush=True)

    # ---------- tokens ----------
    def mint(self, tenant, role="app_user", perms=None, minter=None, **extra):
        claims = dict(role=role, tenant_id=tenant, sub=f"user-{tenant}")
        if perms is not None:
            claims["permissions"] = perms
        claims.update(extra)
        tok = (minter or self.es).token(**claims)
        self.tokens.add(tok)
        return tok

    def evil(self, role="app_user", perms=EVIL_PERMS, **extra):
        return self.mint("evil", role=role, perms=perms, **extra)

    def victim_token(self, tenant):
        if tenant not in self.victim_tokens:
            tok = self.mint(tenant, perms=VICTIM_PERMS)
            self.victim_tokens[tenant] = tok
            self.secrets.append((f"victim token ({tenant})", tok))
            self.secrets.append((f"victim token signature ({tenant})", tok.rsplit(".", 1)[1]))
        return self.victim_tokens[tenant]

    # ---------- bookkeeping of the running attack ----------
    def observe(self, channel, text):
        if self.out is not None and text:
            self.out.seen.append((channel, str(text)))

    def step(self, label, state, expect):
        self.out.steps.append((label, state, expect))
        ok = (state != "ok") if expect == ERR else \
            (state in expect) if isinstance(expect, tuple) else (state == expect)
        if not ok:
            want = "any error" if expect == ERR else "/".join(expect) if isinstance(expect, tuple) else expect
            self.out.mismatch.append(f"{label} -> {state}, expected {want}")

    def leak(self, what):
        self.out.leaks.append(what)

    def harm(self, what):
        self.out.harm.append(what)

    def client(self, db, token=None, **kw):
        return Client(self, db, token, **kw)

    # ---------- superuser side ----------
    def su(self, db="postgres"):
        return psycopg.connect(host=self.cluster.dir, port=PG_PORT, user="postgres", dbname=db, autocommit=True)

    def truth(self, db, table, tenant):
        try:
            with self.su(db) as c:
                rows = c.execute(sql.SQL("SELECT tenant_id::text, item FROM {} WHERE tenant_id::text = %s")
                                 .format(sql.Identifier(*table.split("."))), (tenant,)).fetchall()
            return sorted(rows)
        except psycopg.Error:
            return None

    def admin(self, *commands):
        cmd = ["psql", "-X", "-q", "-h", "127.0.0.1", "-p", str(POOL_PORT), "-U", "postgres", "-d", "pgbouncer"]
        for c in commands:
            cmd += ["-c", c]
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)

    def wait_no_backends(self, db=None):
        deadline = time.time() + 20
        with self.su() as c:
            while True:
                n = c.execute("SELECT count(*) FROM pg_stat_activity WHERE usename = 'authenticator' "
                              "AND (%s::text IS NULL OR datname = %s)", (db, db)).fetchone()[0]
                if n == 0:
                    return
                if time.time() > deadline:
                    raise RuntimeError(f"{n} authenticator backends did not exit")
                time.sleep(0.05)

    def recycle(self, db):
        """A new server backend for the next client of db (as when a pool recycles connections)."""
        self.admin(f"KILL {db}")
        self.wait_no_backends(db)
        self.admin(f"RESUME {db}")
        self.pool_pids.pop(db, None)

    # ---------- the victim ----------
    def victim(self, db, tenant, cast=False, tables=("orders",), direct=False, client=None, extra=()):
        """A normal transaction: authenticate (bind parameter), read own rows of each table,
        insert a marked row, update it, commit. Returns None or the SQLSTATE it was refused with."""
        tok = self.victim_token(tenant)
        truth = {t: self.truth(db, t, tenant) for t in tables}
        own = client is None
        v = client or self.client(db, who="victim", direct=direct, watch=False)
        conn = v.conn
        marker = f"S3CR3T-mark-{tenant}-{secrets.token_hex(4)}"
        self.secrets.append((f"row written by victim {tenant}", marker))
        where = "direct" if direct else "pooled"
        try:
            conn.execute("SELECT jwt_guard.authenticate(%s::text)" if cast else "SELECT jwt_guard.authenticate(%s)",
                         (tok,))
            user, seen_tenant = conn.execute("SELECT current_user, jwt_guard.tenant()").fetchone()
            v.pid()
            if (user, seen_tenant) != ("app_user", tenant):
                self.harm(f"victim {tenant} ({where}) ran as {user}/{seen_tenant}")
            for t in tables:
                rows = sorted(conn.execute(f"SELECT tenant_id::text, item FROM {t}").fetchall())
                if truth[t] is not None and rows != truth[t]:
                    foreign = sorted({r[0] for r in rows if r[0] != tenant})
                    self.harm(f"victim {tenant} read {len(rows)} rows of {t}, expected its own {len(truth[t])}"
                              + (f" (rows of tenants {foreign})" if foreign else ""))
                if t == "orders":
                    row = conn.execute("INSERT INTO orders (tenant_id, item, ref) "
                                       "VALUES (jwt_guard.tenant(), %s, nextval('order_ref')) RETURNING id, ref",
                                       (marker,)).fetchone()
                    self.last_victim_ref = row[1]
                    n = conn.execute("UPDATE orders SET item = item || '+' WHERE id = %s", (row[0],)).rowcount
                    if n != 1:
                        self.harm(f"victim {tenant} updated {n} rows of its own new order, expected 1")
                else:
                    # the tenant as an untyped parameter, so it takes the column's type (numeric, char...)
                    conn.execute(f"INSERT INTO {t} (tenant_id, item) VALUES (%s, %s)", (tenant, marker))
            for q, params, check in extra:
                res = conn.execute(q, params).fetchone()
                problem = check(res) if check else None
                if problem:
                    self.harm(f"victim {tenant}: {problem}")
            conn.commit()
            return None
        except psycopg.Error as e:
            state = e.sqlstate
            try:
                conn.rollback()
            except psycopg.Error:
                pass
            if not state:
                self.harm(f"victim {tenant} ({where}) failed without a SQLSTATE: {str(e)[:80]}")
                return "no SQLSTATE"
            self.out.victim_errors.append(f"{tenant} ({where}) {state} {e.diag.message_primary}")
            return state
        finally:
            if own:
                v.close()

    # ---------- cluster, pgbouncer, databases ----------
    def start(self):
        class _Cluster(scenarios.Cluster):
            port = PG_PORT
        self.cluster = _Cluster()
        self.cluster.start(preload=True, extra=CONFIG.format(login_roles=LOGIN_ROLES))
        with self.su() as c:
            for q in ROLES + ROLE_SETTINGS:
                c.execute(q)
            c.execute("CREATE DATABASE tpl")
        with self.su("tpl") as c:
            c.execute(SCHEMA_SQL)
            if WEAKENED:
                c.execute(WEAKEN_SQL)
            c.execute("SELECT jwt_guard.add_key('test-es256', 'ES256', %s)", (self.env["KEY_ES256"],))
            for letter in "abcde":
                secret = secrets.token_hex(32)
                kid = f"rk-{letter}"
                c.execute("SELECT jwt_guard.add_key(%s, 'HS256', %s)", (kid, secret))
                self.retire_minters[kid] = fixtures.Minter(kid, "HS256", secret)
            self.seed_lo = c.execute("SELECT lo_from_bytea(0, convert_to(%s, 'UTF8'))",
                                     (f"{SEED}-large-object-acme",)).fetchone()[0]
            # owned by the superuser (a token role may own nothing); readable and writable by app_user
            c.execute(f"GRANT SELECT, UPDATE ON LARGE OBJECT {self.seed_lo} TO app_user")
        for label, text in self._seed_secrets():
            self.secrets.append((label, text))
        with self.su() as c:
            c.execute("ALTER DATABASE tpl WITH ALLOW_CONNECTIONS false")
            c.execute("CREATE DATABASE lax TEMPLATE tpl")
            c.execute("CREATE DATABASE strict TEMPLATE tpl")
            c.execute(STRICT_SETTING)
        self._start_pgbouncer()
        self.baseline = self.fingerprint()

    def _seed_secrets(self):
        out = []
        with self.su("tpl") as c:
            for t in TENANT_TABLES:
                for tenant, item in c.execute(f"SELECT tenant_id::text, item FROM {t} WHERE item LIKE %s",
                                              (SEED + "%",)).fetchall():
                    out.append((f"row of tenant {tenant} in {t}", item))
        out += [("ssn of staff 1 (tenant acme)", f"{SEED}-ssn-acme"), ("salary of staff 1", "731337"),
                ("large object of tenant acme", f"{SEED}-large-object-acme")]
        return out

    def _start_pgbouncer(self):
        pg = pwd.getpwnam("postgres")
        pb_dir = os.path.join(self.cluster.dir, "pgbouncer")
        os.makedirs(pb_dir, exist_ok=True)
        with open(os.path.join(pb_dir, "pgbouncer.ini"), "w") as f:
            f.write(PGBOUNCER_INI.format(socket_dir=self.cluster.dir, pg_port=PG_PORT, port=POOL_PORT, dir=pb_dir))
        with open(os.path.join(pb_dir, "userlist.txt"), "w") as f:
            f.write('"authenticator" ""\n"postgres" ""\n')
        for name in ("", "pgbouncer.ini", "userlist.txt"):
            os.chown(os.path.join(pb_dir, name), pg.pw_uid, pg.pw_gid)
        proc = subprocess.Popen(["runuser", "-u", "postgres", "--", pooler.PGBOUNCER,
                                 os.path.join(pb_dir, "pgbouncer.ini")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self.pgbouncer = (proc, pb_dir)
        deadline = time.time() + 15
        while True:
            try:
                with psycopg.connect(host="127.0.0.1", port=POOL_PORT, user="authenticator", dbname="lax",
                                     connect_timeout=2, autocommit=True) as c:
                    c.execute("SELECT 1")
                break
            except psycopg.OperationalError as e:
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"pgbouncer did not start: {e}; log: {pooler._log_tail(pb_dir)}")
                time.sleep(0.1)

    def stop(self):
        for c in self.clients:
            c.close()
        if self.pgbouncer:
            pooler._stop_pgbouncer(*self.pgbouncer)
        if self.cluster:
            try:
                self.cluster.stop()
            except Exception:  # noqa: BLE001
                pass
            self.cluster.remove()

    def fingerprint(self):
        fp = {}
        with self.su() as c:
            row = c.execute(GLOBAL_FINGERPRINT_SQL)
            names = [d.name for d in row.description]
            fp.update({f"global {n}": v for n, v in zip(names, row.fetchone())})
        for db in ("lax", "strict"):
            with self.su(db) as c:
                cur = c.execute(FINGERPRINT_SQL)
                names = [d.name for d in cur.description]
                fp.update({f"{db} {n}": v for n, v in zip(names, cur.fetchone())})
                for t in TENANT_TABLES:
                    try:
                        v = c.execute(f"SELECT md5(coalesce(string_agg(tenant_id::text || '/' || item, '|' "
                                      f"ORDER BY tenant_id::text || '/' || item), '')) FROM {t} "
                                      f"WHERE item LIKE 'S3CR3T-seed-%' OR item LIKE 'seed-%'").fetchone()[0]
                    except psycopg.Error as e:
                        v = f"error {e.sqlstate}"
                    fp[f"{db} seeded rows of {t}"] = v
                fp[f"{db} seeded rows of staff"] = c.execute("SELECT md5(string_agg(s::text, '|' ORDER BY id)) "
                                                              "FROM staff s").fetchone()[0]
                try:
                    fp[f"{db} seeded large object"] = c.execute(f"SELECT md5(lo_get({self.seed_lo}))").fetchone()[0]
                except psycopg.Error as e:
                    fp[f"{db} seeded large object"] = f"error {e.sqlstate}"
        return fp

    def end_attack(self):
        """Closes every client, gives both pools a fresh backend, and undoes persistent damage."""
        for c in self.clients:
            c.close()
        self.clients = []
        self.admin("KILL lax", "KILL strict")
        self.wait_no_backends()
        now = self.fingerprint()
        changed = [k for k in self.baseline if now.get(k) != self.baseline[k]]
        for k in changed:
            if k.endswith("large_objects"):
                self.out.notes.append("large objects were created (removed again)")
            else:
                self.harm(f"left behind a persistent change: {k}")
        dbs = {k.split(" ")[0] for k in changed} & {"lax", "strict"}
        if any(k.startswith("global") for k in changed):
            with self.su() as c:
                c.execute("ALTER ROLE authenticator RESET ALL")
                for db in ("lax", "strict", "tpl"):
                    c.execute(f"ALTER ROLE authenticator IN DATABASE {db} RESET ALL")
                for r in ("app_user", "app_reader", "app_all", "app_owner", "app_schema", "app_definer"):
                    c.execute(f"ALTER ROLE {r} RESET ALL")
                for q in ROLE_SETTINGS:
                    c.execute(q)
                c.execute(STRICT_SETTING)
        for db in sorted(dbs):
            with self.su() as c:
                c.execute(f"DROP DATABASE {db} WITH (FORCE)")
                c.execute(f"CREATE DATABASE {db} TEMPLATE tpl")
                if db == "strict":
                    c.execute(STRICT_SETTING)
        if changed and self.fingerprint() != self.baseline:
            self.out.problems.append("could not restore the databases for the next attack")
        self.admin("RESUME lax", "RESUME strict")
        self.pool_pids = {}

    def check_leaks(self):
        found = set()
        for channel, text in self.out.seen:
            for label, secret in self.secrets:
                if secret and secret in text and (label, channel) not in found:
                    found.add((label, channel))
                    self.leak(f"{label} reached the attacker via {channel}")

    def run_one(self, cls, name, technique, fn):
        self.out = Outcome(cls, name, technique)
        self.pool_pids = {}
        started = time.time()
        try:
            fn(self)
        except Exception as e:  # noqa: BLE001 - the test itself broke
            self.out.problems.append(f"raised {type(e).__name__}: {str(e)[:160]}")
        try:
            self.check_leaks()
            for db, pids in self.pool_pids.items():
                if len(pids) > 1:
                    self.out.problems.append(f"pooled clients of {db} met {len(pids)} backends, not one")
            self.end_attack()
        except Exception as e:  # noqa: BLE001
            self.out.problems.append(f"cleanup raised {type(e).__name__}: {str(e)[:160]}")
        verdict = self.out.verdict()
        took = time.time() - started
        label = f"neighbour c{cls:<2} {name}"
        if verdict is None:
            refused = [f"{lbl.split(' (')[0][:40]} -> {st}" for lbl, st, exp in self.out.steps if st != "ok"][:3]
            extra = f" (refused: {'; '.join(refused)})" if refused else ""
            if self.out.victim_errors:
                extra += f" (victim refused: {self.out.victim_errors[0][:90]})"
            self.say(f"{label:52s} ... ok ({took:.1f} s){extra}")
        else:
            self.say(f"{label:52s} ... FAILED: {verdict}")
            self.say(f"{'':55s}technique: {technique}")
        self.results.append((name, None if verdict is None else self.scrub(verdict), cls, technique,
                             self.out))
        self.out = None


# ======================================================================================
# The attacks. Each function is one technique; the docstring-free one-liner in ATTACKS names it.
# ======================================================================================

ATTACKS = []


def attack(cls, name, technique):
    def register(fn):
        ATTACKS.append((cls, name, technique, fn))
        return fn
    return register


# ---------- 0: control (no attacker): the victims themselves must work ----------

@attack(0, "control_victims", "no attacker: victims of both databases, with and without a cast")
def control(s):
    for db, tenant, cast in (("lax", "acme", False), ("lax", "globex", True), ("strict", "acme", True),
                             ("strict", "globex", False)):
        state = s.victim(db, tenant, cast=cast, tables=("orders", "tenant_notes"))
        if state:
            s.harm(f"control victim was refused: {s.out.victim_errors[-1]}")


# ---------- 1: temporary schema planted without a token ----------

@attack(1, "anon_temp_domain_text", "no token: CREATE DOMAIN pg_temp.text CHECK (pg_temp.spy(VALUE)); "
                                    "the victim's $1::text cast copies its token into a temp table")
def anon_domain(s):
    a = s.client("lax")
    a.tx(SPY_LOOT, "42501", label="CREATE FUNCTION pg_temp.spy (no token)")
    a.tx(LOOT_TABLE, "42501", label="CREATE TEMP TABLE loot (no token)")
    a.tx("GRANT SELECT, INSERT, UPDATE, DELETE ON pg_temp.loot TO PUBLIC", ERR)
    a.tx("CREATE DOMAIN pg_temp.text AS pg_catalog.text CHECK (pg_temp.spy(VALUE))", ERR,
         label="CREATE DOMAIN pg_temp.text (no token)")
    s.victim("lax", "acme", cast=True)
    a.sweep()


@attack(1, "anon_temp_view_spy", "no token: temp view named orders (security_invoker) whose WHERE calls a "
                                 "spy that copies every row the victim reads")
def anon_view(s):
    a = s.client("lax")
    a.tx(SPY_LOOT, "42501", label="CREATE FUNCTION pg_temp.spy (no token)")
    a.tx(LOOT_TABLE, "42501", label="CREATE TEMP TABLE loot (no token)")
    a.tx("GRANT SELECT, INSERT, UPDATE, DELETE ON pg_temp.loot TO PUBLIC", ERR)
    a.tx("CREATE TEMP VIEW orders WITH (security_invoker = true) AS SELECT o.* FROM public.orders o "
         "WHERE pg_temp.spy(o.tenant_id || '|' || o.item)", ERR, label="CREATE TEMP VIEW orders (no token)")
    a.tx("GRANT SELECT, INSERT, UPDATE ON pg_temp.orders TO PUBLIC", ERR)
    s.victim("lax", "globex")
    a.sweep()


@attack(1, "anon_temp_view_instead_of", "no token: temp view orders with an INSTEAD OF trigger that copies "
                                        "each row the victim writes, then writes it on")
def anon_instead_of(s):
    a = s.client("lax")
    a.tx(CAPTURE_TRIGGER_FN, "42501", label="CREATE FUNCTION pg_temp.capture (no token)")
    a.tx(LOOT_TABLE, "42501", label="CREATE TEMP TABLE loot (no token)")
    a.tx("GRANT SELECT, INSERT, UPDATE, DELETE ON pg_temp.loot TO PUBLIC", ERR)
    a.tx("CREATE TEMP VIEW orders WITH (security_invoker = true) AS SELECT * FROM public.orders", "42501",
         label="CREATE TEMP VIEW orders (no token)")
    a.tx("CREATE TRIGGER capture INSTEAD OF INSERT OR UPDATE ON pg_temp.orders FOR EACH ROW "
         "EXECUTE FUNCTION pg_temp.capture()", ERR, label="CREATE TRIGGER INSTEAD OF (no token)")
    a.tx("GRANT SELECT, INSERT, UPDATE, DELETE ON pg_temp.orders TO PUBLIC", ERR)
    s.victim("lax", "acme", cast=True)
    a.sweep()


@attack(1, "anon_temp_table_shadow", "no token: temp table named orders with decoy rows; the victim reads the "
                                     "decoys and writes its row into the attacker's table")
def anon_shadow(s):
    a = s.client("lax")
    a.tx(f"CREATE TEMP TABLE orders {SHADOW_TABLE_COLUMNS}", "42501", label="CREATE TEMP TABLE orders (no token)")
    a.tx(["INSERT INTO pg_temp.orders (tenant_id, item) VALUES ('acme', 'decoy'), ('globex', 'decoy')",
          "GRANT SELECT, INSERT, UPDATE, DELETE ON pg_temp.orders TO PUBLIC"], ERR, label="fill and GRANT the shadow table")
    s.victim("lax", "acme")
    a.sweep()


@attack(1, "anon_temp_sequence", "no token: temp sequence named order_ref; the victim's nextval('order_ref') "
                                 "draws from it and the attacker reads how far it went")
def anon_sequence(s):
    a = s.client("lax")
    a.tx("CREATE TEMP SEQUENCE order_ref START 500000", "42501", label="CREATE TEMP SEQUENCE order_ref (no token)")
    a.tx("GRANT USAGE, SELECT, UPDATE ON SEQUENCE pg_temp.order_ref TO PUBLIC", ERR)
    s.victim("lax", "globex")
    _sequence_readback(s, a)


def _sequence_readback(s, a, token=None):
    state, res = a.tx("SELECT last_value, is_called FROM pg_temp.order_ref", label="read back the sequence",
                      token=token)
    if state == "ok" and res and res[0] and res[0][0][1]:
        s.leak(f"the victim's order refs came from the attacker's sequence (attacker read last_value "
               f"{res[0][0][0]})")


@attack(1, "anon_temp_objects_misc", "no token: temp function, type, index, WITH HOLD cursor, PREPARE: "
                                     "nothing may be created before a token")
def anon_misc(s):
    a = s.client("lax")
    a.tx("CREATE FUNCTION pg_temp.f() RETURNS int LANGUAGE sql AS 'SELECT 1'", "42501")
    a.tx("CREATE TYPE pg_temp.mood AS ENUM ('a', 'b')", "42501")
    a.tx("CREATE TEMP TABLE t (x int) ON COMMIT DROP", "42501")
    a.tx("DECLARE c CURSOR WITH HOLD FOR SELECT 1", "42501")
    a.tx("PREPARE p AS SELECT 1", "42501")
    s.victim("lax", "acme")


# ---------- 2: objects and session state under a token ----------

@attack(2, "token_temp_view_spy", "evil token (app_reader): temp function + temp view orders whose WHERE copies "
                                  "each row the victim reads into a session setting")
def token_view(s):
    a = s.client("lax", s.evil(role="app_reader"))
    a.tx(SPY_SETTING, "42501", label="CREATE FUNCTION pg_temp.spy (token)")
    a.tx("CREATE TEMP VIEW orders WITH (security_invoker = true) AS SELECT o.* FROM public.orders o "
         "WHERE pg_temp.spy(o.tenant_id || '|' || o.item)", ERR, label="CREATE TEMP VIEW orders (token)")
    a.tx("GRANT SELECT, INSERT, UPDATE ON pg_temp.orders TO PUBLIC", ERR)
    s.victim("lax", "acme")
    a.sweep()


@attack(2, "token_temp_domain_text", "evil token: temp function + CREATE DOMAIN pg_temp.text; the victim's "
                                     "$1::text cast puts its token into a session setting")
def token_domain(s):
    a = s.client("lax", s.evil())
    a.tx(SPY_SETTING, "42501", label="CREATE FUNCTION pg_temp.spy (token)")
    a.tx("CREATE DOMAIN pg_temp.text AS pg_catalog.text CHECK (pg_temp.spy(VALUE))", ERR,
         label="CREATE DOMAIN pg_temp.text (token)")
    s.victim("lax", "globex", cast=True)
    a.sweep()


@attack(2, "token_create_table_pg_temp", "evil token (app_reader): CREATE TABLE pg_temp.orders (schema-qualified, "
                                         "no TEMP keyword, no ON COMMIT DROP) shadowing orders")
def token_qualified_table(s):
    a = s.client("lax", s.evil(role="app_reader"))
    a.tx(f"CREATE TABLE pg_temp.orders {SHADOW_TABLE_COLUMNS}", "42501", label="CREATE TABLE pg_temp.orders (token)")
    a.tx(["INSERT INTO pg_temp.orders (tenant_id, item) VALUES ('acme', 'decoy')",
          "GRANT SELECT, INSERT, UPDATE, DELETE ON pg_temp.orders TO PUBLIC"], ERR, label="fill and GRANT the shadow table")
    s.victim("lax", "acme", cast=True)
    a.sweep()


@attack(2, "token_select_into_pg_temp", "evil token (app_reader): SELECT ... INTO pg_temp.orders, a table that "
                                        "outlives the transaction and shadows orders")
def token_select_into(s):
    a = s.client("lax", s.evil(role="app_reader"))
    a.tx("SELECT * INTO pg_temp.orders FROM public.orders WHERE false", "42501",
         label="SELECT INTO pg_temp.orders (token)")
    a.tx("GRANT SELECT, INSERT, UPDATE, DELETE ON pg_temp.orders TO PUBLIC", ERR)
    s.victim("lax", "globex")
    a.sweep()


@attack(2, "token_temp_table_plain", "evil token: CREATE TEMP TABLE loot without ON COMMIT DROP")
def token_temp_plain(s):
    a = s.client("lax", s.evil())
    a.tx("CREATE TEMP TABLE loot (v text)", "42501", label="CREATE TEMP TABLE loot (token)")
    a.tx("CREATE TEMP TABLE loot2 (v text) ON COMMIT DELETE ROWS", "42501",
         label="CREATE TEMP TABLE ... ON COMMIT DELETE ROWS (token)")
    s.victim("lax", "acme")
    a.sweep()


@attack(2, "token_temp_sequence", "evil token: CREATE TEMP SEQUENCE order_ref shadowing the victim's "
                                  "nextval('order_ref')")
def token_sequence(s):
    a = s.client("lax", s.evil())
    a.tx("CREATE TEMP SEQUENCE order_ref START 500000", "42501", label="CREATE TEMP SEQUENCE order_ref (token)")
    a.tx("GRANT USAGE, SELECT, UPDATE ON SEQUENCE pg_temp.order_ref TO PUBLIC", ERR)
    s.victim("lax", "globex", cast=True)
    _sequence_readback(s, a, token="")


@attack(2, "token_rule_on_temp_view", "evil token (app_reader): temp view orders + CREATE RULE ... DO ALSO "
                                      "copying each inserted row into a session setting")
def token_rule(s):
    a = s.client("lax", s.evil(role="app_reader"))
    a.tx("CREATE TEMP VIEW orders WITH (security_invoker = true) AS SELECT * FROM public.orders", "42501",
         label="CREATE TEMP VIEW orders (token)")
    a.tx("GRANT SELECT, INSERT, UPDATE, DELETE ON pg_temp.orders TO PUBLIC", ERR)
    a.tx("CREATE RULE leak AS ON INSERT TO pg_temp.orders DO ALSO "
         "SELECT pg_catalog.set_config('loot.t', NEW.tenant_id || '|' || NEW.item, false)", ERR,
         label="CREATE RULE on the temp view (token)")
    s.victim("lax", "acme")
    a.sweep()


@attack(2, "token_trigger_rule_policy", "evil token: CREATE TRIGGER / RULE / POLICY even on its own ON COMMIT "
                                        "DROP table are refused; the ON COMMIT DROP table itself is allowed")
def token_ddl_own(s):
    a = s.client("lax", s.evil())
    tmp = "CREATE TEMP TABLE scratch (x int) ON COMMIT DROP"
    a.tx([tmp, "INSERT INTO scratch VALUES (1)", "SELECT count(*) FROM scratch"], "ok",
         label="temp table ON COMMIT DROP (allowed)")
    a.tx([tmp, "CREATE TRIGGER t BEFORE UPDATE ON scratch FOR EACH ROW "
               "EXECUTE FUNCTION suppress_redundant_updates_trigger()"], "42501", label="CREATE TRIGGER (token)")
    a.tx([tmp, "CREATE RULE r AS ON INSERT TO scratch DO INSTEAD NOTHING"], "42501", label="CREATE RULE (token)")
    a.tx([tmp, "CREATE POLICY p ON scratch USING (true)"], "42501", label="CREATE POLICY (token)")
    s.victim("lax", "globex")


@attack(2, "token_alter_drop", "evil token: ALTER TABLE / DROP TABLE / DROP POLICY / ALTER FUNCTION on the "
                               "application's objects")
def token_alter_drop(s):
    a = s.client("lax", s.evil())
    a.tx("ALTER TABLE orders DISABLE ROW LEVEL SECURITY", "42501")
    a.tx("ALTER TABLE orders NO FORCE ROW LEVEL SECURITY", "42501")
    a.tx("DROP POLICY jwt_guard_tenant ON orders", "42501")
    a.tx("DROP TABLE tenant_notes", "42501")
    a.tx("ALTER FUNCTION visible_to_tenant(text) OWNER TO app_user", "42501")
    a.tx("ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO PUBLIC", "42501")
    s.victim("lax", "acme", tables=("orders", "tenant_notes"))


@attack(2, "token_with_hold_cursor", "evil token: DECLARE ... WITH HOLD (a cursor that outlives the identity)")
def token_hold(s):
    a = s.client("lax", s.evil())
    a.tx("DECLARE c CURSOR WITH HOLD FOR SELECT tenant_id, item FROM orders", "42501")
    s.victim("lax", "globex")
    a.tx("FETCH ALL FROM c", label="FETCH from the held cursor (no token)", token="")


def _prepared_hijack(s, token):
    """The victim prepares its statements on the shared backend (psycopg prepare_threshold=0:
    its authenticate() is _pg3_0). The attacker swaps _pg3_0 for a statement that also copies
    $1 (the token) into a temp table (no token) or a session setting (token); the victim's next
    transaction runs it."""
    v = s.client("lax", who="victim", prepare=0, watch=False)
    s.victim("lax", "acme", client=v)
    a = s.client("lax", token)
    if token:
        spy = "pg_catalog.set_config('loot.t', $1, false)"
    else:
        a.tx(SPY_LOOT, "42501", label="CREATE FUNCTION pg_temp.spy (no token)")
        a.tx(LOOT_TABLE, "42501", label="CREATE TEMP TABLE loot (no token)")
        a.tx("GRANT SELECT, INSERT, UPDATE, DELETE ON pg_temp.loot TO PUBLIC", ERR)
        spy = "pg_temp.spy($1)"
    a.tx("DEALLOCATE _pg3_0", label="DEALLOCATE the victim's statement")
    a.tx(f"PREPARE _pg3_0(text) AS SELECT jwt_guard.authenticate($1) FROM (SELECT {spy}) AS s", "42501",
         label="PREPARE _pg3_0 (SQL-level)" + (" (token)" if token else " (no token)"))
    s.victim("lax", "acme", client=v)
    a.sweep()


@attack(2, "prepared_hijack_anon", "no token: DEALLOCATE + PREPARE the victim's protocol-level prepared "
                                   "statement name, so its next authenticate($1) leaks $1")
def hijack_anon(s):
    _prepared_hijack(s, None)


@attack(2, "prepared_hijack_token", "evil token: the same statement swap, done under a token")
def hijack_token(s):
    _prepared_hijack(s, s.evil())


@attack(2, "prepared_hijack_protocol", "no token: DEALLOCATE the victim's statement _pg3_0 (allowed) and Parse a "
                                       "new _pg3_0 at protocol level that authenticates with evil's token: the "
                                       "victim's next transaction runs as tenant evil and writes into evil's rows")
def hijack_protocol(s):
    v = s.client("lax", who="victim", prepare=0, watch=False)
    s.victim("lax", "acme", client=v)
    evil = s.evil(perms=None)
    a = s.client("lax", prepare=1000)   # psycopg prepares only on request (prepare=True)
    a.tx("DEALLOCATE _pg3_0", label="DEALLOCATE the victim's statement (no token)")
    # psycopg names the first statement a connection prepares _pg3_0: a protocol-level Parse
    swap = sql.SQL("SELECT jwt_guard.authenticate(CASE WHEN {}::text IS NULL THEN NULL ELSE {} END)").format(
        sql.Placeholder(), sql.Literal(evil))
    try:
        a.conn.execute(swap, ("x",), prepare=True)
        a.conn.commit()
        s.out.notes.append("protocol-level Parse of _pg3_0 accepted")
    except psycopg.Error as e:
        s.observe("attacker error", _diag(e))
        a.conn.rollback()
    s.victim("lax", "acme", client=v)
    e = s.client("lax", evil)
    e.tx("SELECT tenant_id, item FROM orders", label="evil reads its own orders")


@attack(2, "sequence_state_readback", "evil token: currval('order_ref') / lastval() right after a victim drew "
                                      "its order ref on the same backend (a hazard the README documents)")
def sequence_state(s):
    s.victim("lax", "acme")
    ref = s.last_victim_ref
    a = s.client("lax", s.evil())
    for q in ("SELECT currval('order_ref')", "SELECT lastval()"):
        state, res = a.tx(q, label=f"evil: {q}")
        if ref is not None and state == "ok" and res and res[0] and res[0][0][0] == ref:
            s.leak(f"the ref of the victim's new order reached the attacker via {q[7:]}")
    s.client("lax").tx("SELECT lastval()", "42501", label="lastval() (no token)")


@attack(2, "prepared_statement_text", "evil token reads pg_prepared_statements after a victim prepared (protocol "
                                      "level) a statement with a literal value in its text")
def prepared_text(s):
    lit = f"S3CR3T-literal-acme-{secrets.token_hex(4)}"
    s.secrets.append(("literal in a statement the victim acme prepared", lit))
    v = s.client("lax", who="victim", prepare=0, watch=False)
    s.victim("lax", "acme", client=v, extra=[(f"SELECT count(*) FROM orders WHERE item <> '{lit}'", None, None)])
    a = s.client("lax", s.evil())
    a.tx("SELECT name, statement FROM pg_prepared_statements", label="evil reads pg_prepared_statements")


def _listen(s, token):
    a = s.client("lax", token)
    a.tx("LISTEN orders_changed", "42501", label="LISTEN orders_changed" + (" (token)" if token else " (no token)"))
    # The attacker holds the shared backend in a transaction while a victim on another backend
    # commits an order; notifications reach the listening backend's current client at its commit.
    a.conn.execute("SELECT 1")
    s.victim("lax", "globex", direct=True)
    try:
        a.conn.commit()
    except psycopg.Error:
        a.conn.rollback()
    a.tx("SELECT 1", label="idle transaction after the victim", token="")


@attack(2, "listen_anon", "no token: LISTEN on the application's channel, then sit on the pooled backend")
def listen_anon(s):
    _listen(s, None)


@attack(2, "listen_token", "evil token: LISTEN on the application's channel, then sit on the pooled backend")
def listen_token(s):
    _listen(s, s.evil())


def _advisory(s, token):
    a = s.client("lax", token)
    a.tx("SELECT pg_advisory_lock(4242)", "42501",
         label="pg_advisory_lock (session level)" + (" (token)" if token else " (no token)"))

    def free(row):
        return None if row[0] else "could not take advisory lock 4242: a neighbour's session lock outlived it"
    s.victim("lax", "acme", direct=True, extra=[("SELECT pg_try_advisory_xact_lock(4242)", None, free)])
    s.victim("lax", "globex")


@attack(2, "advisory_lock_anon", "no token: session-level pg_advisory_lock held after the transaction")
def advisory_anon(s):
    _advisory(s, None)


@attack(2, "advisory_lock_token", "evil token: session-level pg_advisory_lock held after the transaction")
def advisory_token(s):
    _advisory(s, s.evil())


@attack(2, "token_session_set", "evil token: session-level SET search_path / set_config(..., false) that "
                                "outlive the transaction")
def token_set(s):
    a = s.client("lax", s.evil())
    a.tx("SET search_path = pg_catalog", "42501", label="SET search_path (session, token)")
    a.tx("SELECT set_config('default_transaction_read_only', 'on', false)", "42501",
         label="set_config(default_transaction_read_only, on, false) (token)")
    a.tx("SET row_security = off", "42501", label="SET row_security = off (token)")
    s.victim("lax", "acme")


# ---------- 3: powers of the token's role ----------

@attack(3, "trigger_privilege", "token role app_all (GRANT ALL = TRIGGER): CREATE TRIGGER on orders with a "
                                "temp function copying every tenant's writes into a session setting")
def trigger_privilege(s):
    a = s.client("lax", s.evil(role="app_all"))
    a.tx([TAP_TRIGGER_FN, "CREATE TRIGGER tap AFTER INSERT OR UPDATE ON public.orders FOR EACH ROW "
                          "EXECUTE FUNCTION pg_temp.tap()"], "42501", label="app_all token: CREATE TRIGGER on orders")
    s.victim("lax", "acme")
    s.victim("lax", "globex", cast=True)
    a.sweep()


@attack(3, "trigger_via_membership", "token role app_member, a member of app_all (TRIGGER on orders): CREATE "
                                     "TRIGGER through the inherited privilege")
def trigger_membership(s):
    a = s.client("lax", s.evil(role="app_member"))
    a.tx([TAP_TRIGGER_FN, "CREATE TRIGGER tap AFTER INSERT OR UPDATE ON public.orders FOR EACH ROW "
                          "EXECUTE FUNCTION pg_temp.tap()"], "42501", label="app_member token: CREATE TRIGGER on orders")
    s.victim("lax", "globex")
    a.sweep()


@attack(3, "create_in_public", "token role app_creator (CREATE on schema public): a function, a view and a table "
                               "in public that outlive the transaction")
def create_in_public(s):
    a = s.client("lax", s.evil(role="app_creator"))
    a.tx("CREATE FUNCTION public.evil_fn() RETURNS int LANGUAGE sql AS 'SELECT 1'", "42501",
         label="app_creator token: CREATE FUNCTION public.evil_fn")
    a.tx("CREATE TABLE public.evil_drop (v text)", "42501", label="app_creator token: CREATE TABLE public.evil_drop")
    a.tx("CREATE VIEW public.evil_view AS SELECT 1 AS x", "42501", label="app_creator token: CREATE VIEW")
    s.victim("lax", "acme")


@attack(3, "owner_function_drop_cascade", "token role app_owner owns the function a policy calls: "
                                          "DROP FUNCTION ... CASCADE drops the policy, then read every tenant")
def owner_function(s):
    a = s.client("lax", s.evil(role="app_owner"))
    a.tx("DROP FUNCTION public.visible_to_tenant(text) CASCADE", "42501",
         label="app_owner token: DROP FUNCTION ... CASCADE")
    a.tx("SELECT tenant_id, item FROM shared_notes", label="app_owner token: read shared_notes")
    s.victim("lax", "globex", tables=("orders", "shared_notes"))


@attack(3, "owner_schema", "token role app_schema owns schema vault: DROP the victims' table, CREATE a look-alike "
                           "readable by PUBLIC, read what the victims write into it")
def owner_schema(s):
    a = s.client("lax", s.evil(role="app_schema"))
    a.tx(["DROP TABLE vault.entries", "CREATE TABLE vault.entries (tenant_id text, item text)",
          "GRANT SELECT, INSERT, UPDATE, DELETE ON vault.entries TO PUBLIC", "GRANT USAGE ON SCHEMA vault TO PUBLIC"], "42501",
         label="app_schema token: DROP and re-CREATE vault.entries")
    s.victim("lax", "acme", tables=("orders", "vault.entries"))
    a.tx("SELECT tenant_id, item FROM vault.entries", label="read vault.entries (no token)", token="")


# ---------- 4: session state without a token ----------

def _anon_plant(s, stmt, label, db="lax", recycle=False, victims=(("acme", False), ("globex", True))):
    a = s.client(db)
    a.tx(stmt, "42501", label=label)
    if recycle:
        s.recycle(db)   # settings stored for the role apply to the next server connection
    for tenant, cast in victims:
        s.victim(db, tenant, cast=cast)


@attack(4, "anon_set_read_only", "no token: SET default_transaction_read_only = on (session level)")
def anon_read_only(s):
    _anon_plant(s, "SET default_transaction_read_only = on", "SET default_transaction_read_only (no token)")


@attack(4, "anon_set_row_security", "no token: SET row_security = off")
def anon_row_security(s):
    _anon_plant(s, "SET row_security = off", "SET row_security = off (no token)")


@attack(4, "anon_set_search_path", "no token: SET search_path = pg_catalog")
def anon_search_path(s):
    _anon_plant(s, "SET search_path = pg_catalog", "SET search_path (no token)")


@attack(4, "anon_set_statement_timeout", "no token: SET statement_timeout = 1")
def anon_timeout(s):
    _anon_plant(s, "SET statement_timeout = 1", "SET statement_timeout (no token)")


@attack(4, "anon_session_characteristics", "no token: SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
def anon_characteristics(s):
    _anon_plant(s, "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY",
                "SET SESSION CHARACTERISTICS (no token)")


@attack(4, "anon_set_config_session", "no token: SELECT set_config('search_path', 'pg_catalog', false)")
def anon_set_config(s):
    _anon_plant(s, "SELECT set_config('search_path', 'pg_catalog', false)", "set_config(..., false) (no token)")


@attack(4, "anon_update_pg_settings", "no token: UPDATE pg_settings SET setting = 'on' "
                                      "WHERE name = 'default_transaction_read_only'")
def anon_pg_settings(s):
    _anon_plant(s, "UPDATE pg_settings SET setting = 'on' WHERE name = 'default_transaction_read_only'",
                "UPDATE pg_settings (no token)")


@attack(4, "anon_do_block", "no token: DO block that sets row_security = off for the session")
def anon_do(s):
    _anon_plant(s, "DO $$BEGIN PERFORM set_config('row_security', 'off', false); END$$", "DO block (no token)")


@attack(4, "anon_alter_role_set", "no token: ALTER ROLE authenticator SET default_transaction_read_only = on "
                                  "(applies to every later server connection)")
def anon_alter_role(s):
    _anon_plant(s, "ALTER ROLE authenticator SET default_transaction_read_only = on",
                "ALTER ROLE authenticator SET (no token)", recycle=True)


@attack(4, "anon_alter_role_in_database", "no token: ALTER ROLE authenticator IN DATABASE lax SET "
                                          "search_path = pg_catalog")
def anon_alter_role_db(s):
    _anon_plant(s, "ALTER ROLE authenticator IN DATABASE lax SET search_path = pg_catalog",
                "ALTER ROLE ... IN DATABASE SET (no token)", recycle=True)


def _untracked(s, token):
    a = s.client("lax", token)
    who = "token" if token else "no token"
    a.tx("SET extra_float_digits = -15", label=f"SET extra_float_digits = -15 ({who}, allow-listed)")
    a.tx("SET IntervalStyle = 'sql_standard'", label=f"SET IntervalStyle = sql_standard ({who}, allow-listed)")

    def exact(row):
        if row[0] != math.pi or row[1] != "1 day 02:00:00":
            return (f"read pi() as {row[0]!r} and interval '1 day 2 hours' as {row[1]!r}: a neighbour's "
                    f"extra_float_digits / IntervalStyle outlived its transaction")
        return None
    s.victim("lax", "acme", extra=[("SELECT pi(), (interval '1 day 2 hours')::text", None, exact)])


@attack(4, "anon_untracked_client_settings", "no token: SET extra_float_digits = -15 and IntervalStyle = "
                                             "'sql_standard' (allow-listed, but pgbouncer restores neither): the "
                                             "next client reads rounded floats and other interval text")
def anon_untracked(s):
    _untracked(s, None)


@attack(4, "token_untracked_client_settings", "evil token: the same two session-level SETs under a token")
def token_untracked(s):
    _untracked(s, s.evil())


@attack(4, "anon_copy", "no token: COPY (SELECT ...) TO STDOUT")
def anon_copy(s):
    a = s.client("lax")
    a.tx("COPY (SELECT 1) TO STDOUT", "42501", label="COPY ... TO STDOUT (no token)")
    s.victim("lax", "acme")


@attack(4, "anon_disable_enforcement", "no token: turn pg_jwt_guard.enforce_permissions off for the login role, "
                                       "then write with a select:orders token")
def anon_enforcement(s):
    a = s.client("strict")
    a.tx("ALTER ROLE authenticator SET pg_jwt_guard.enforce_permissions = off", "42501")
    a.tx("ALTER ROLE authenticator IN DATABASE strict RESET pg_jwt_guard.enforce_permissions", "42501")
    a.tx("SET pg_jwt_guard.enforce_permissions = off", "42501")
    s.recycle("strict")
    e = s.client("strict", s.evil())
    state, _ = e.tx("INSERT INTO orders (tenant_id, item) VALUES ('evil', 'not granted')", "42501",
                    label="select:orders token: INSERT INTO orders")
    if state == "ok":
        s.harm("a select:orders token inserted into orders: the whitelist was off")
    s.victim("strict", "globex")


# ---------- 5: fail open on deep claims ----------

def _nest(depth, array=False):
    v = "bottom"
    for _ in range(depth):
        v = [v] if array else {"a": v}
    return v


@attack(5, "deep_claims_fail_open", "select:orders token with a claim nested 33..127 levels deep, then "
                                    "TRUNCATE tenant_notes and INSERT into audit_log")
def deep_claims(s):
    shallow = s.client("strict", s.evil(ctx=_nest(5)))
    shallow.tx("SELECT count(*) FROM orders", "ok", label="claims nested 5 objects: accepted")
    for depth, array in ((33, False), (100, False), (125, False), (126, False), (127, False), (126, True),
                         (127, True)):
        shape = "arrays" if array else "objects"
        tok = s.evil(ctx=_nest(depth, array))
        a = s.client("strict", tok)
        state, res = a.tx(["SELECT current_user, jwt_guard.tenant(), jwt_guard.is_authenticated()",
                           "TRUNCATE tenant_notes"], "28000", label=f"claims nested {depth} {shape}: TRUNCATE")
        if state == "ok":
            s.harm(f"{depth} nested {shape}: TRUNCATE tenant_notes succeeded with a select:orders token "
                   f"(ran as {res[0][0][:2]})")
        state, _ = a.tx("INSERT INTO audit_log (note) VALUES ('deep')", "28000",
                        label=f"claims nested {depth} {shape}: INSERT audit_log")
        if state == "ok":
            s.harm(f"{depth} nested {shape}: INSERT into audit_log succeeded with a select:orders token")
        a.close()
    s.victim("strict", "acme", tables=("orders", "tenant_notes"))


# ---------- 6: protect_table on typed columns, partitions, inheritance ----------

def _typed(s, table, attacker_tenant, victim_tenant, planted):
    a = s.client("lax", s.mint(attacker_tenant, perms=EVIL_PERMS))
    a.tx(f"SELECT tenant_id::text, item FROM {table}", label=f"tenant {attacker_tenant!r} reads {table}")
    state, _ = a.tx((f"INSERT INTO {table} (tenant_id, item) VALUES (%s, 'planted')", (planted,)), "42501",
                    label=f"tenant {attacker_tenant!r} inserts a row of tenant {planted!r}")
    if state == "ok":
        s.harm(f"tenant {attacker_tenant!r} wrote a row into tenant {planted!r}'s rows of {table}")
    s.victim("lax", victim_tenant, tables=(table,))


@attack(6, "varchar_truncation", "tenant 'acme-corpX' vs a varchar(9) column holding 'acme-corp'")
def varchar_trunc(s):
    _typed(s, "v_accounts", "acme-corpX", "acme-corp", "acme-corp")


@attack(6, "char_truncation", "tenant 'acme-corpX' vs a char(9) column holding 'acme-corp'")
def char_trunc(s):
    _typed(s, "c_accounts", "acme-corpX", "acme-corp", "acme-corp")


@attack(6, "numeric_rounding", "tenant '42.004' vs a numeric(6,2) column holding 42.00")
def numeric_round(s):
    _typed(s, "n_accounts", "42.004", "42.00", "42")


@attack(6, "citext_case", "tenant 'ACME' vs a citext column holding 'acme'")
def citext_case(s):
    _typed(s, "ci_accounts", "ACME", "acme", "acme")


@attack(6, "int_leading_zero", "tenant '042' vs an int column holding 42")
def int_zero(s):
    _typed(s, "i_accounts", "042", "42", "42")


@attack(6, "partition_direct", "evil token reads the partitions p_acme, p_globex, p_other and the "
                               "sub-partitioned p_sub / p_sub_wayne of a protected table directly")
def partition_direct(s):
    a = s.client("lax", s.evil())
    for part in ("p_acme", "p_globex", "p_other", "p_sub", "p_sub_wayne", "p_orders"):
        a.tx(f"SELECT tenant_id, item FROM {part}", label=f"evil reads {part}")
    s.victim("lax", "acme", tables=("orders", "p_orders"))


@attack(6, "partition_attached_late", "evil token reads p_late (initech, evil; ATTACH PARTITION after "
                                      "protect_table) and p_late2 (CREATE TABLE ... PARTITION OF after) directly")
def partition_late(s):
    a = s.client("lax", s.evil())
    a.tx("SELECT tenant_id, item FROM p_late", label="evil reads p_late")
    a.tx("SELECT tenant_id, item FROM p_late2", label="evil reads p_late2")
    state, _ = a.tx("INSERT INTO p_late VALUES ('initech', 'planted')", "42501", label="evil inserts an initech row")
    if state == "ok":
        s.harm("evil wrote a row of tenant initech into p_late")
    s.victim("lax", "globex", tables=("orders", "p_orders"))


@attack(6, "inheritance_children", "evil token reads inheritance children of a protected table directly "
                                   "(inh_child before, inh_late and ALTER TABLE ... INHERIT inh_adopted after "
                                   "protect_table)")
def inheritance(s):
    a = s.client("lax", s.evil())
    for t in ("inh_child", "inh_late", "inh_adopted", "inh_parent"):
        a.tx(f"SELECT tenant_id, item FROM {t}", label=f"evil reads {t}")
    s.victim("lax", "acme", tables=("orders", "inh_parent"))


# ---------- 7: retire_key inside an open transaction ----------

def _retire(s, kid, isolation, prime=False, auth_first=False):
    tok = s.mint("evil", minter=s.retire_minters[kid], perms=EVIL_PERMS)
    a = s.client("lax", None)
    if prime:
        a.tx(("SELECT jwt_guard.verify(%s) IS NOT NULL", (tok,)), "ok", label=f"verify the {kid} token (caches it)")
    c = a.conn
    c.isolation_level = isolation
    state = "ok"
    try:
        a.pid()
        if auth_first:
            c.execute("SELECT jwt_guard.authenticate(%s)", (s.evil(),))
        c.execute("SELECT 1")   # the transaction has its snapshot (a statement allowed before a token)
        with s.su("lax") as su:
            su.execute("SELECT jwt_guard.retire_key(%s)", (kid,))
        c.execute("SELECT jwt_guard.authenticate(%s)", (tok,))
        c.execute("SELECT current_user, jwt_guard.tenant()")
    except psycopg.Error as e:
        state = e.sqlstate
        s.observe("attacker error", _diag(e))
    c.rollback()
    iso = "REPEATABLE READ" if isolation == psycopg.IsolationLevel.REPEATABLE_READ else "READ COMMITTED"
    s.step(f"authenticate with a key retired during an open {iso} transaction", state, "28000")
    if state == "ok":
        s.harm(f"a token signed by key {kid}, retired while the transaction ({iso}) was open, was accepted")
    s.victim("lax", "acme")


@attack(7, "retire_read_committed", "retire_key while a READ COMMITTED transaction is open, then authenticate "
                                    "with a token of that key")
def retire_rc(s):
    _retire(s, "rk-a", psycopg.IsolationLevel.READ_COMMITTED)


@attack(7, "retire_repeatable_read", "retire_key while a REPEATABLE READ transaction holds its snapshot")
def retire_rr(s):
    _retire(s, "rk-b", psycopg.IsolationLevel.REPEATABLE_READ)


@attack(7, "retire_repeatable_read_cached", "REPEATABLE READ, the token already verified (cached) before "
                                            "the key is retired")
def retire_rr_cached(s):
    _retire(s, "rk-c", psycopg.IsolationLevel.REPEATABLE_READ, prime=True)


@attack(7, "retire_after_authenticate", "REPEATABLE READ, already authenticated with another token; key retired; "
                                        "second authenticate() with the retired key")
def retire_after_auth(s):
    _retire(s, "rk-d", psycopg.IsolationLevel.REPEATABLE_READ, auth_first=True)


@attack(7, "retire_same_transaction", "retire_key and authenticate() in one (superuser) transaction")
def retire_same(s):
    tok = s.mint("evil", minter=s.retire_minters["rk-e"], perms=EVIL_PERMS)
    state = "ok"
    with psycopg.connect(host=s.cluster.dir, port=PG_PORT, user="postgres", dbname="lax") as c:
        c.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        try:
            c.execute("SELECT 1")
            c.execute("SELECT jwt_guard.retire_key('rk-e')")
            c.execute("SELECT jwt_guard.authenticate(%s)", (tok,))
        except psycopg.Error as e:
            state = e.sqlstate
        c.rollback()
    s.step("authenticate after retire_key in the same transaction", state, "28000")
    if state == "ok":
        s.harm("a token of a key retired earlier in the same transaction was accepted")


# ---------- 8: large objects ----------

@attack(8, "lo_cross_tenant", "victim acme stores a large object; evil (same role app_user) lists "
                              "pg_largeobject_metadata and reads it with lo_get")
def lo_cross(s):
    lo_secret = f"S3CR3T-lo-acme-{secrets.token_hex(4)}"
    s.secrets.append(("large object written by victim acme", lo_secret))
    s.victim("lax", "acme", extra=[("SELECT lo_from_bytea(0, convert_to(%s, 'UTF8'))", (lo_secret,), None)])
    a = s.client("lax", s.evil())
    a.tx(f"SELECT l.oid, convert_from(lo_get(l.oid), 'UTF8') FROM pg_largeobject_metadata l "
         f"WHERE l.oid <> {s.seed_lo}", label="evil reads every large object")


@attack(8, "lo_token_enforced", "select:orders token, enforce_permissions on: lo_get/lo_open+loread/lowrite/"
                                "lo_put/lo_truncate/lo_create/lo_from_bytea/lo_unlink on a large object of acme")
def lo_enforced(s):
    a = s.client("strict", s.evil())
    oid = s.seed_lo
    for label, q, harmful in (
            ("lo_get", f"SELECT convert_from(lo_get({oid}), 'UTF8')", None),
            ("lo_open + loread", f"SELECT convert_from(loread(lo_open({oid}, 262144), 1000), 'UTF8')", None),
            ("lo_open + lowrite", f"SELECT lowrite(lo_open({oid}, 131072), 'x')", "wrote into"),
            ("lo_put", f"SELECT lo_put({oid}, 0, 'x')", "wrote into"),
            ("lo_truncate", f"SELECT lo_truncate(lo_open({oid}, 131072), 0)", "truncated"),
            ("lo_create", "SELECT lo_create(0)", "created a large object beside"),
            ("lo_from_bytea", "SELECT lo_from_bytea(0, 'x')", "created a large object beside"),
            ("lo_unlink", f"SELECT lo_unlink({oid})", "unlinked")):
        state, _ = a.tx(q, "42501", label=f"{label} (select:orders token)")
        if state == "ok" and harmful:
            s.harm(f"{label}: a select:orders token {harmful} acme's large object")
    s.victim("strict", "acme")


@attack(8, "lo_create_any", "large object creation without a token and under a token without enforcement")
def lo_create(s):
    a = s.client("lax")
    a.tx("SELECT lo_from_bytea(0, 'x')", "42501", label="lo_from_bytea (no token)")
    a.tx("SELECT lo_create(0)", "42501", label="lo_create (no token)")
    a.tx(f"SELECT lo_get({s.seed_lo})", "42501", label="lo_get of acme's object (no token)")
    e = s.client("lax", s.evil())
    e.tx("SELECT lo_from_bytea(0, 'x')", "42501", label="lo_from_bytea (token, enforcement off)")
    e.tx("SELECT lo_creat(-1)", "42501", label="lo_creat (token, enforcement off)")
    s.victim("lax", "globex")


# ---------- 9: error details ----------

@attack(9, "error_detail_columns", "token with select:staff(id), update:staff(name, salary), insert:staff: NOT "
                                   "NULL / CHECK / ON CONFLICT DO UPDATE violations whose DETAIL 'Failing row "
                                   "contains (...)' shows ssn and salary")
def error_detail(s):
    a = s.client("strict", s.evil(perms=["select:staff(id)", "update:staff(name, salary)", "insert:staff"]))
    a.tx("SELECT salary FROM staff WHERE id = 1", "42501", label="control: the token may not read salary")
    a.tx("UPDATE staff SET name = NULL WHERE id = 1", ("23502", "42501"), label="NOT NULL violation")
    a.tx("UPDATE staff SET salary = -1 WHERE id = 1", ("23514", "42501"), label="CHECK violation")
    a.tx("INSERT INTO staff (id, tenant_id, name, salary, ssn) VALUES (1, 'evil', 'x', 1, 'x') "
         "ON CONFLICT (id) DO UPDATE SET name = NULL", ("23502", "42501"), label="ON CONFLICT DO UPDATE violation")
    s.victim("strict", "globex")


# ---------- 10: SECURITY DEFINER owned by the token's role ----------

@attack(10, "definer_owned_by_token_role", "token role app_definer owns a SECURITY DEFINER function; with a "
                                           "select:orders token it inserts into audit_log")
def definer(s):
    a = s.client("strict", s.evil(role="app_definer"))
    state, _ = a.tx("SELECT public.definer_insert('definer-bypass')", "42501",
                    label="app_definer token: call its own SECURITY DEFINER function")
    if state == "ok":
        s.harm("a SECURITY DEFINER function owned by the token's role wrote audit_log, which the token "
               "does not grant")
    a.tx("INSERT INTO audit_log (note) VALUES ('direct')", "42501", label="app_definer token: direct INSERT")
    s.victim("strict", "acme")


# ---------- 11: numeric tenant claims ----------

@attack(11, "numeric_tenant_claim", "tokens with tenant_id 42 / 42.0 (JSON numbers), true, [\"42\"], {\"id\": \"42\"} "
                                     "vs the rows of tenant \"42\"")
def numeric_tenant(s):
    for value in (42, 42.0, True, ["42"], {"id": "42"}):
        a = s.client("lax", s.mint(value, perms=EVIL_PERMS))
        a.tx("SELECT tenant_id, item FROM counters", "28000", label=f"tenant_id {json.dumps(value)} reads counters")
        a.close()
    s.victim("lax", "42", tables=("counters",))


# ---------- 12: pg_stat_activity ----------

@attack(12, "stat_activity_literal_token", "a victim on another connection authenticates with the token as a "
                                          "literal; an anonymous pooled session reads pg_stat_activity")
def stat_activity(s):
    tok = s.victim_token("acme")
    with psycopg.connect(host=s.cluster.dir, port=PG_PORT, user="authenticator", dbname="lax") as v:
        v.execute(sql.SQL("SELECT jwt_guard.authenticate({})").format(sql.Literal(tok)))
        a = s.client("lax")
        a.tx("SELECT pid, query FROM pg_stat_activity", "42501", label="pg_stat_activity (no token)")
        a.tx("SELECT pid, query FROM pg_stat_get_activity(NULL)", "42501", label="pg_stat_get_activity (no token)")
        a.tx("SELECT pg_stat_get_backend_activity(b) FROM pg_stat_get_backend_idset() AS b", "42501",
             label="pg_stat_get_backend_activity (no token)")
        e = s.client("lax", s.evil())
        e.tx("SELECT pid, query FROM pg_stat_activity", label="pg_stat_activity (token)")
        v.rollback()
    s.victim("lax", "globex")


@attack(12, "terminate_backend", "no token: pg_cancel_backend / pg_terminate_backend on another client's "
                                  "backend of the same login role")
def terminate(s):
    v = s.client("lax", who="victim", direct=True, watch=False)
    pid = v.conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    v.conn.commit()
    a = s.client("lax")
    a.tx(("SELECT pg_cancel_backend(%s)", (pid,)), "42501", label="pg_cancel_backend (no token)")
    a.tx(("SELECT pg_terminate_backend(%s)", (pid,)), "42501", label="pg_terminate_backend (no token)")
    s.victim("lax", "acme", client=v, direct=True)


# ======================================================================================
# Checks that normal clients keep working.
# ======================================================================================

ANON_ALLOWED = [
    "SET application_name = 'health'", "RESET application_name", "SET client_encoding = 'UTF8'",
    "SET DateStyle = 'ISO, MDY'", "SET TimeZone = 'UTC'",
    "SET standard_conforming_strings = on", "SET extra_float_digits = 1", "SHOW TimeZone",
    "SELECT now(), version(), pg_backend_pid(), pg_is_in_recovery(), current_setting('TimeZone')",
    "SELECT set_config('application_name', 'x', true)", "SELECT 1 + 1, upper('a'), length('abc')",
    "SELECT jwt_guard.is_authenticated(), jwt_guard.tenant()",
]


def check_allow_lists(s):
    a = s.client("lax")
    for q in ANON_ALLOWED:
        a.tx(q, "ok", label=f"{q} (no token)")
    a.conn.autocommit = True
    for q in ("DISCARD ALL", "DEALLOCATE ALL", "CLOSE ALL"):
        try:
            a.conn.execute(q)
            s.step(f"{q} (no token)", "ok", "ok")
        except psycopg.Error as e:
            s.step(f"{q} (no token)", e.sqlstate, "ok")
    a.conn.autocommit = False
    t = s.client("lax", s.evil())
    t.tx(["CREATE TEMP TABLE scratch (x int) ON COMMIT DROP", "INSERT INTO scratch VALUES (1)",
          "SELECT count(*) FROM scratch"], "ok", label="temp table ON COMMIT DROP (token)")
    t.tx(["SET LOCAL statement_timeout = '5s'", "SELECT set_config('app.x', 'y', true)",
          "SET application_name = 'tok'", "SELECT count(*) FROM orders"], "ok",
         label="SET LOCAL, set_config(..., true), SET application_name (token)")
    s.victim("lax", "acme")


NODE_SCRIPT = r"""
const { Client } = require('pg');
(async () => {
  const out = [];
  const c = new Client({ host: '127.0.0.1', port: +process.env.NB_PORT, user: 'authenticator',
                         database: process.env.NB_DB, application_name: 'normal-node',
                         connectionTimeoutMillis: 5000 });
  await c.connect();
  try {
    for (let i = 0; i < +process.env.NB_ROUNDS; i++) {
      const r = {};
      try {
        await c.query('BEGIN');
        await c.query({ text: 'SELECT jwt_guard.authenticate($1) AS claims',
                        values: [process.env.NB_TOKEN] });
        const who = await c.query({ text: 'SELECT current_user AS u, jwt_guard.tenant() AS t, jwt_guard.tenant() = $1 AS mine',
                                    values: [process.env.NB_TENANT] });
        const rows = await c.query({ text: 'SELECT tenant_id, item FROM orders WHERE item <> $1', values: [''] });
        const st = await c.query({ text: 'SELECT current_setting($1) AS tz, current_setting($2) AS app, current_setting($3) AS enc',
                                   values: ['TimeZone', 'application_name', 'client_encoding'] });
        await c.query('COMMIT');
        r.user = who.rows[0].u; r.tenant = who.rows[0].t; r.mine = who.rows[0].mine;
        r.rows = rows.rows.map(x => [x.tenant_id, x.item]); r.settings = st.rows[0];
      } catch (e) {
        r.error = (e.code || '') + ' ' + String(e.message).slice(0, 200);
        try { await c.query('ROLLBACK'); } catch (_) {}
      }
      out.push(r);
    }
  } finally { await c.end(); }
  process.stdout.write(JSON.stringify(out));
})().catch(e => { process.stdout.write(JSON.stringify([{ error: 'fatal ' + (e.code || '') + ' ' + e.message }])); });
"""


def _node_dir():
    """A directory with node_modules/pg (npm install pg@8 when missing). Returns (dir, is_temporary)."""
    for d in (os.environ.get("NEIGHBOURS_NODE_DIR"), HERE):
        if d and os.path.isfile(os.path.join(d, "node_modules", "pg", "package.json")):
            return d, False
    d = tempfile.mkdtemp(prefix="jwt_guard_node_")
    proc = subprocess.run(["npm", "install", "--prefix", d, "--no-audit", "--no-fund", "--no-save",
                           "--no-package-lock", "--loglevel=error", "pg@8"],
                          capture_output=True, text=True, timeout=180)
    if proc.returncode != 0 or not os.path.isdir(os.path.join(d, "node_modules", "pg")):
        shutil.rmtree(d, ignore_errors=True)
        raise RuntimeError(f"npm install pg@8 failed: {proc.stderr.strip()[-200:]}")
    return d, True


def check_normal_clients(s):
    """psycopg 3 (its own TimeZone/DateStyle/encoding/application_name) and node-postgres take
    turns on the one pooled backend, both in the extended protocol with unnamed statements, as
    pgbouncer before 1.21 in transaction mode requires (named statements are refused in locked
    sessions unless a pooler made them: see the prepared-statement attacks), so pgbouncer SETs
    its tracked parameters before every switch."""
    node_dir, temporary = _node_dir()
    try:
        script = os.path.join(node_dir, f"neighbours_{RUN}.js")
        with open(script, "w") as f:
            f.write(NODE_SCRIPT)
        tok_p, tok_n = s.victim_token("acme"), s.victim_token("globex")
        old = {k: os.environ.get(k) for k in ("PGTZ", "PGDATESTYLE")}
        os.environ.update(PGTZ="America/Sao_Paulo", PGDATESTYLE="SQL, DMY")
        try:
            p = psycopg.connect(host="127.0.0.1", port=POOL_PORT, user="authenticator", dbname="lax",
                                autocommit=False, prepare_threshold=None, client_encoding="LATIN1",
                                application_name="normal-psycopg", connect_timeout=5)
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        try:
            def psycopg_round(i):
                try:
                    with p.transaction():
                        p.execute("SELECT jwt_guard.authenticate(%s)", (tok_p,))
                        who = p.execute("SELECT current_user, jwt_guard.tenant()").fetchone()
                        rows = sorted(p.execute("SELECT tenant_id, item FROM orders WHERE item <> %s",
                                                ("",)).fetchall())
                        st = p.execute("SELECT current_setting('TimeZone'), current_setting('DateStyle'), "
                                       "current_setting('client_encoding'), current_setting('application_name')"
                                       ).fetchone()
                except psycopg.Error as e:
                    return f"psycopg round {i}: {e.sqlstate} {e.diag.message_primary}"
                want = s.truth("lax", "orders", "acme")
                if who != ("app_user", "acme") or rows != want:
                    return f"psycopg round {i}: saw {who}, {len(rows)} rows (expected {len(want)})"
                if st != ("America/Sao_Paulo", "SQL, DMY", "LATIN1", "normal-psycopg"):
                    return f"psycopg round {i}: session settings {st}"
                return None

            def node_round(run):
                env = dict(os.environ, NB_PORT=str(POOL_PORT), NB_DB="lax", NB_ROUNDS="3", NB_TOKEN=tok_n,
                           NB_TENANT="globex", NB_RUN=str(run))
                proc = subprocess.run(["node", script], capture_output=True, text=True, timeout=60, env=env,
                                      cwd=node_dir)
                try:
                    results = json.loads(proc.stdout)
                except ValueError:
                    return f"node run {run}: no result ({proc.stderr.strip()[-160:]})"
                want = [list(r) for r in s.truth("lax", "orders", "globex")]
                for i, r in enumerate(results):
                    if r.get("error"):
                        return f"node run {run} round {i}: {r['error']}"
                    if (r["user"], r["tenant"], r["mine"]) != ("app_user", "globex", True) \
                            or sorted(r["rows"]) != want:
                        return f"node run {run} round {i}: saw {r['user']}/{r['tenant']}, {len(r['rows'])} rows"
                    if r["settings"]["app"] != "normal-node" or r["settings"]["enc"] != "UTF8" \
                            or r["settings"]["tz"] == "America/Sao_Paulo":
                        return f"node run {run} round {i}: session settings {r['settings']}"
                return None

            sequence = [lambda: psycopg_round(1), lambda: psycopg_round(2), lambda: node_round(1),
                        lambda: psycopg_round(3), lambda: node_round(2), lambda: psycopg_round(4)]
            for fn in sequence:
                problem = fn()
                if problem:
                    s.harm(f"normal client broken: {problem}")
                    break
        finally:
            p.close()
            os.remove(script)
    finally:
        if temporary:
            shutil.rmtree(node_dir, ignore_errors=True)


CHECKS = [
    (0, "allow_lists_still_work", "transaction control, client SETs, harmless SELECTs, DISCARD/DEALLOCATE/CLOSE "
                                  "without a token; ON COMMIT DROP, SET LOCAL under a token", check_allow_lists),
    (0, "normal_clients_psycopg_node", "psycopg 3 and node-postgres (npm pg@8), extended protocol, taking turns "
                                       "on the pooled backend", check_normal_clients),
]


# ======================================================================================

LIBRARY = os.path.join(subprocess.run([os.path.join(PGBIN, "pg_config"), "--pkglibdir"], capture_output=True,
                                      text=True).stdout.strip(), "pg_jwt_guard.so")


def installed_build():
    """md5 and mtime of the installed library, so a report names the build it ran against."""
    try:
        with open(LIBRARY, "rb") as f:
            digest = hashlib.md5(f.read()).hexdigest()
        return f"{digest} ({time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(os.path.getmtime(LIBRARY)))})"
    except OSError:
        return "missing"


def run(env, minters):
    """Runs every attack and check; returns [(name, None or one-line reason)]."""
    build = installed_build()
    print(f"neighbours: pg_jwt_guard.so {build}")
    s = Suite(env, minters)
    try:
        s.start()
        for cls, name, technique, fn in ATTACKS:
            s.run_one(cls, name, technique, fn)
        for cls, name, technique, fn in CHECKS:
            s.run_one(cls, name, technique, fn)
    finally:
        s.stop()
    through = [(n, c, t) for n, err, c, t, _ in s.results if err and err.startswith("GOT THROUGH")]
    unrefused = [(n, c, t) for n, err, c, t, _ in s.results if err and not err.startswith("GOT THROUGH")]
    blocked = [n for n, err, c, _, _ in s.results if err is None and c > 0]
    print(f"neighbours: {len(blocked)} attacks blocked, {len(through)} got through, "
          f"{len(unrefused)} not refused as promised or inconclusive")
    for n, c, t in through:
        s.say(f"  GOT THROUGH  c{c} {n}: {t}")
    for n, c, t in unrefused:
        s.say(f"  NOT AS PROMISED  c{c} {n}: {t}")
    results = [(n, err) for n, err, _, _, _ in s.results]
    if installed_build() != build:
        print(f"neighbours: the installed pg_jwt_guard.so changed during the run (now {installed_build()})")
        results.append(("installed_build_unchanged", "pg_jwt_guard.so was replaced during the run; run again"))
    return results


def run_all(env, minters):
    results = run(env, minters)
    failed = sum(1 for _, err in results if err)
    return len(results) - failed, failed
