"""Checks that need clusters of their own: a hot standby, pg_dump/pg_restore, and pg_jwt_guard
preloaded next to the extensions operators already preload.

- standby: a streaming replica made with pg_basebackup. authenticate() and every accessor work
  there; a key retired or added on the primary counts in a standby session that is already open,
  at its next transaction; the lockdown holds; a replay-protected issuer is refused (fail closed).
- dump_restore: pg_dump -Fc of a database that uses the extension, pg_restore into a new
  database: keys, issuer profiles, revocations and policies come back and tokens work.
- preload_neighbours: pg_stat_statements (and on 15 pgaudit and set_user) preloaded before and
  after pg_jwt_guard: each one's hook still runs, and the pg_regress suites pass in both orders.

Each check prints `ok`/`FAILED` with a reason; run_all returns (passed, failed).
"""

import os
import re
import subprocess
import time

import psycopg

import fixtures
import scenarios
from scenarios import Checks, Cluster, sqlstate_of

PGBIN = scenarios.PGBIN
PRIMARY_PORT, STANDBY_PORT, NEIGHBOUR_PORT = 58510, 58511, 58512

CONFIG = scenarios.CONFIG + "log_min_messages = warning\n"


class Node(Cluster):
    def __init__(self, port, data_from=None):
        self.port = port
        if data_from is None:
            super().__init__()
            return
        # A standby: a base backup of `data_from`, which writes standby.signal and primary_conninfo.
        super().__init__(lambda data: [f"{PGBIN}/pg_basebackup", "-h", data_from.dir, "-p", str(data_from.port),
                                       "-U", "postgres", "-D", data, "-R", "-X", "stream", "-c", "fast"])


def wait_replayed(primary, standby, timeout=30):
    with primary.connect() as p:
        lsn = p.execute("SELECT pg_current_wal_insert_lsn()").fetchone()[0]
    deadline = time.time() + timeout
    with standby.connect() as s:
        while time.time() < deadline:
            if s.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,)).fetchone()[0]:
                return
            time.sleep(0.1)
    raise RuntimeError("the standby did not replay the primary's WAL in time")


def check_standby(env, minters):
    primary = Node(PRIMARY_PORT)
    standby = None
    try:
        primary.start(preload=True, extra=CONFIG + "wal_level = replica\nmax_wal_senders = 4\n")
        scenarios.setup_db(primary, env)
        es = minters["ES256"]
        with primary.connect() as conn:
            conn.execute("SELECT jwt_guard.set_issuer('https://replay.test', audience => ARRAY['orders-api'], "
                         "replay_protection => true)")
        standby = Node(STANDBY_PORT, data_from=primary)
        standby.start(preload=True, extra=CONFIG + "hot_standby = on\n")
        wait_replayed(primary, standby)
        token = env["TOK_TENANT_ACME"]
        retire_me = env["TOK_RETIRE_ME"]
        with standby.connect(user="authenticator", autocommit=False) as s:
            s.prepare_threshold = None
            s.execute("SELECT jwt_guard.authenticate(%s)", (token,))
            row = s.execute(
                "SELECT current_user, jwt_guard.sub(), jwt_guard.tenant(), jwt_guard.claim('tenant_id'), "
                "jwt_guard.claims()->>'aud', jwt_guard.is_authenticated(), jwt_guard.has_scope('none'), "
                "jwt_guard.can('none'), (SELECT count(*) FROM orders), pg_is_in_recovery()").fetchone()
            s.commit()
            after = s.execute("SELECT current_user, jwt_guard.is_authenticated()").fetchone()
            s.commit()
            # The lockdown: the login role cannot take a token role by SQL on the standby either.
            set_role, _ = sqlstate_of(s, "SET ROLE app_user")
            s.rollback()
            before_retire, _ = sqlstate_of(s, "SELECT jwt_guard.authenticate(%s)", (retire_me,))
            s.rollback()
            with primary.connect() as p:
                p.execute("SELECT jwt_guard.retire_key('retire-me')")
            wait_replayed(primary, standby)
            after_retire, retire_message = sqlstate_of(s, "SELECT jwt_guard.authenticate(%s)", (retire_me,))
            s.rollback()
            added = minters["HS256"]
            new_token = added.token(headers={"kid": "added-on-primary"})
            before_add, _ = sqlstate_of(s, "SELECT jwt_guard.authenticate(%s)", (new_token,))
            s.rollback()
            with primary.connect() as p:
                p.execute("SELECT jwt_guard.add_key('added-on-primary', 'HS256', %s)", (env["KEY_HS256"],))
            wait_replayed(primary, standby)
            after_add, add_message = sqlstate_of(s, "SELECT jwt_guard.authenticate(%s)", (new_token,))
            s.rollback()
            replayed, replay_message = sqlstate_of(
                s, "SELECT jwt_guard.authenticate(%s)",
                (es.token(iss="https://replay.test", jti="standby-1", sub="rita"),))
            s.rollback()
        expected = ("app_user", "alice", "acme", "acme", "orders-api", True, False, False, 200, True)
        if tuple(row) != expected:
            return f"on the standby, under a token: {tuple(row)}, expected {expected}"
        if tuple(after) != ("authenticator", False):
            return f"after COMMIT on the standby: {tuple(after)}"
        if set_role != "42501":
            return f"SET ROLE app_user by the login role on the standby: {set_role}"
        if before_retire != "ok" or after_retire != "28000" or "retired" not in retire_message:
            return f"retire on the primary, open standby session: {before_retire} then {after_retire} {retire_message}"
        if before_add != "28000" or after_add != "ok":
            return f"add_key on the primary, open standby session: {before_add} then {after_add} {add_message}"
        if replayed != "28000" or "standby" not in replay_message:
            return f"a replay-protected issuer on a standby: {replayed} {replay_message}"
        return None
    finally:
        for node in (standby, primary):
            if node is not None:
                try:
                    node.stop()
                except Exception:  # noqa: BLE001
                    pass
                node.remove()


def check_dump_restore(env, minters):
    c = Node(PRIMARY_PORT)
    try:
        c.start(preload=True, extra=CONFIG)
        scenarios.setup_db(c, env)
        with c.connect() as conn:
            conn.execute("SELECT jwt_guard.set_issuer('https://other.test', audience => ARRAY['orders-api'])")
            conn.execute("SELECT jwt_guard.revoke_token('dumped-jti')")
            conn.execute("SELECT jwt_guard.revoke_subject('dumped-sub')")
            conn.execute("CREATE DATABASE restored")
        dump = os.path.join(c.dir, "db.dump")
        c._run([f"{PGBIN}/pg_dump", "-h", c.dir, "-p", str(c.port), "-U", "postgres", "-Fc", "-f", dump, "postgres"])
        c._run([f"{PGBIN}/pg_restore", "-h", c.dir, "-p", str(c.port), "-U", "postgres", "-d", "restored",
                "--exit-on-error", dump])
        es = minters["ES256"]
        with psycopg.connect(host=c.dir, port=c.port, user="postgres", dbname="restored", autocommit=True) as r:
            keys = r.execute("SELECT kid, status FROM jwt_guard.keys ORDER BY kid").fetchall()
            issuers = r.execute("SELECT iss FROM jwt_guard.issuer_profiles ORDER BY iss").fetchall()
            revoked = r.execute("SELECT kind, value FROM jwt_guard.revocations ORDER BY kind").fetchall()
            policies = r.execute("SELECT polname FROM pg_policy WHERE polrelid = 'orders'::regclass").fetchall()
        with psycopg.connect(host=c.dir, port=c.port, user="authenticator", dbname="restored") as a:
            a.prepare_threshold = None
            a.execute("SELECT jwt_guard.authenticate(%s)", (env["TOK_TENANT_ACME"],))
            visible = a.execute("SELECT count(*) FROM orders").fetchone()[0]
            a.rollback()
            dumped_jti, _ = sqlstate_of(a, "SELECT jwt_guard.authenticate(%s)", (es.token(jti="dumped-jti"),))
            dumped_sub, _ = sqlstate_of(a, "SELECT jwt_guard.authenticate(%s)", (es.token(sub="dumped-sub", iat=int(time.time()) - 3600),))
        if keys != [("retire-me", "active"), ("test-es256", "active")]:
            return f"keys after restore: {keys}"
        if ("https://other.test",) not in issuers:
            return f"issuer profiles after restore: {issuers}"
        if sorted(revoked) != [("subject", "dumped-sub"), ("token", "dumped-jti")]:
            return f"revocations after restore: {revoked}"
        if policies != [("p",)] or visible != 200:
            return f"policies {policies}, rows visible under the acme token {visible} (expected 200)"
        if (dumped_jti, dumped_sub) != ("28000", "28000"):
            return f"restored revocations not enforced: {dumped_jti}, {dumped_sub}"
        return None
    finally:
        try:
            c.stop()
        except Exception:  # noqa: BLE001
            pass
        c.remove()


def neighbour_libraries():
    """What this machine can preload beside us: pg_stat_statements always; pgaudit and set_user
    where Debian packages them (PostgreSQL 15)."""
    libdir = subprocess.run([f"{PGBIN}/pg_config", "--pkglibdir"], capture_output=True, text=True).stdout.strip()
    return [lib for lib in ("pgaudit", "set_user", "pg_stat_statements")
            if os.path.exists(os.path.join(libdir, f"{lib}.so"))]


def check_neighbour_hooks(env, order):
    """The neighbours' own hooks still run with ours in `order`, and ours still refuse."""
    c = Node(NEIGHBOUR_PORT)
    try:
        extra = CONFIG + "pgaudit.log = 'read'\n" if "pgaudit" in order else CONFIG
        c.start(preload=False, extra=f"shared_preload_libraries = '{', '.join(order)}'\n" + extra)
        scenarios.setup_db(c, env)
        with c.connect() as conn:
            conn.execute("CREATE EXTENSION pg_stat_statements")
            if "pgaudit" in order:
                conn.execute("CREATE EXTENSION pgaudit")
            if "set_user" in order:
                conn.execute("CREATE EXTENSION set_user")
                conn.execute("CREATE ROLE neighbour_admin LOGIN")
                conn.execute("GRANT EXECUTE ON FUNCTION set_user_u(text) TO neighbour_admin")
        with c.connect(user="authenticator", autocommit=False) as a:
            a.prepare_threshold = None
            a.execute("SELECT jwt_guard.authenticate(%s)", (env["TOK_TENANT_ACME"],))
            visible = a.execute("SELECT count(*) AS neighbour_probe FROM orders").fetchone()[0]
            a.commit()
            set_role, _ = sqlstate_of(a, "SET ROLE app_user")
        problems = []
        if visible != 200:
            problems.append(f"rows under the acme token: {visible}")
        if set_role != "42501":
            problems.append(f"SET ROLE by the login role: {set_role}")
        with c.connect() as conn:
            calls = conn.execute("SELECT coalesce(sum(calls), 0) FROM pg_stat_statements "
                                 "WHERE query LIKE '%%neighbour_probe%%'").fetchone()[0]
        if calls < 1:
            problems.append("pg_stat_statements did not count the statement run under a token")
        if "set_user" in order:
            # set_user_u() (escalation to a superuser) and ALTER SYSTEM both run outside a transaction block.
            with c.connect(user="neighbour_admin") as n:
                n.execute("SELECT set_user_u('postgres')")
                blocked, message = sqlstate_of(n, "ALTER SYSTEM SET work_mem = '8MB'")
            if blocked == "ok" or "set_user" not in message:
                problems.append(f"set_user's ProcessUtility hook did not block ALTER SYSTEM: {blocked} {message}")
        if "pgaudit" in order:
            with open(os.path.join(c.dir, "log")) as f:
                log = f.read()
            if not re.search(r"AUDIT: SESSION,\d+,\d+,READ,SELECT.*neighbour_probe", log):
                problems.append("pgaudit wrote no READ line for the statement run under a token")
        return "; ".join(problems) or None
    finally:
        try:
            c.stop()
        except Exception:  # noqa: BLE001
            pass
        c.remove()


def run_all(env, minters, run_regress):
    checks = Checks("cluster", width=40)
    report = checks.run

    report("standby", check_standby, env, minters)
    report("dump_restore", check_dump_restore, env, minters)
    neighbours = neighbour_libraries()
    for order in (neighbours + ["pg_jwt_guard"], ["pg_jwt_guard"] + neighbours[::-1]):
        label = ",".join(order)
        report(f"neighbour_hooks[{label}]", check_neighbour_hooks, env, order)
        # Fresh tokens: the suites use some whose validity is measured in seconds.
        fresh = dict(env)
        fresh.update(fixtures.build()[0])
        p, f = run_regress(fresh, preload=", ".join(order))
        print(f"cluster pg_regress with {label}: {p} passed, {f} failed")
        checks.passed += p
        checks.failed += f
    return checks.totals()
