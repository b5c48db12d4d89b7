"""Scenario checks that need their own cluster or several sessions at once:

- P25: without shared_preload_libraries every function refuses with 55000;
- retire_key in one session stops a token in another session that is already open;
- concurrent clients of two tenants and unauthenticated clients never see each other's rows;
- behind pgbouncer (transaction pooling) and in pg_stat_activity: see pooler.py.

Each check prints `ok`/`FAILED` with a reason; run_all returns (passed, failed).
"""

import json
import os
import pwd
import queue
import shutil
import subprocess
import tempfile
import threading
import time

import psycopg

import pooler

PGBIN = os.environ.get("JWT_GUARD_PGBIN", "/usr/lib/postgresql/15/bin")
PG_MAJOR = int(os.environ.get("JWT_GUARD_PG_MAJOR", "15"))
PORT = 58433


class Cluster:
    port = PORT  # subclasses (bench/bench.py) pick their own so both can run at once

    def __init__(self, make_data=None):
        """A new data directory: initdb, or `make_data(data)` (the command that fills it)."""
        self.dir = tempfile.mkdtemp(prefix="jwt_guard_scenario_")
        pg = pwd.getpwnam("postgres")
        os.chown(self.dir, pg.pw_uid, pg.pw_gid)
        self.data = os.path.join(self.dir, "data")
        self._run(make_data(self.data) if make_data else
                  [f"{PGBIN}/initdb", "-A", "trust", "-U", "postgres", "-D", self.data])

    def _run(self, cmd):
        env = {k: v for k, v in os.environ.items() if k != "RUST_BACKTRACE"}
        subprocess.run(["runuser", "-u", "postgres", "--"] + cmd, check=True, env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def start(self, preload, extra=""):
        conf = os.path.join(self.data, "pg_jwt_guard.conf")
        with open(conf, "w") as f:
            f.write(f"port = {self.port}\nunix_socket_directories = '{self.dir}'\nlisten_addresses = ''\n")
            if preload:
                f.write("shared_preload_libraries = 'pg_jwt_guard'\n")
            f.write(extra)
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write("include_if_exists = 'pg_jwt_guard.conf'\n")
        self._run([f"{PGBIN}/pg_ctl", "-D", self.data, "-l", os.path.join(self.dir, "log"), "-w", "start"])

    def stop(self):
        self._run([f"{PGBIN}/pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop"])

    def connect(self, user="postgres", autocommit=True):
        return psycopg.connect(host=self.dir, port=self.port, user=user, dbname="postgres", autocommit=autocommit)

    def remove(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def sqlstate_of(conn, sql, params=()):
    try:
        conn.execute(sql, params)
        return "ok", ""
    except psycopg.Error as e:
        if not conn.autocommit:
            conn.rollback()
        return e.sqlstate, str(e)


CONFIG = """
pg_jwt_guard.issuers = 'https://issuer.test'
pg_jwt_guard.audience = 'orders-api'
pg_jwt_guard.allowed_roles = 'app_user'
pg_jwt_guard.login_roles = 'authenticator'
"""


def setup_db(c, env):
    with c.connect() as conn:
        conn.execute("CREATE EXTENSION pg_jwt_guard")
        conn.execute("CREATE ROLE authenticator LOGIN NOINHERIT")
        conn.execute("CREATE ROLE app_user NOLOGIN")
        conn.execute("CREATE TABLE orders (id int PRIMARY KEY, tenant_id text NOT NULL)")
        conn.execute("ALTER TABLE orders ENABLE ROW LEVEL SECURITY")
        conn.execute("ALTER TABLE orders FORCE ROW LEVEL SECURITY")
        conn.execute("CREATE POLICY p ON orders USING (tenant_id = jwt_guard.tenant())")
        conn.execute("GRANT SELECT ON orders TO app_user")
        conn.execute("INSERT INTO orders SELECT g, CASE WHEN g % 3 = 0 THEN 'globex' ELSE 'acme' END "
                     "FROM generate_series(1, 300) g")
        conn.execute("SELECT jwt_guard.add_key('test-es256', 'ES256', %s)", (env["KEY_ES256"],))
        conn.execute("SELECT jwt_guard.add_key('retire-me', 'HS512', %s)", (env["KEY_HS512"],))


def check_not_preloaded(c, env):
    c.start(preload=False)
    try:
        with c.connect() as conn:
            conn.execute("CREATE EXTENSION pg_jwt_guard")
            results = [sqlstate_of(conn, "SELECT jwt_guard.tenant()"),
                       sqlstate_of(conn, "SELECT jwt_guard.authenticate(%s)", (env["TOK_TENANT_ACME"],)),
                       sqlstate_of(conn, "SELECT jwt_guard.add_key('k', 'HS256', repeat('k', 32))")]
            conn.execute("DROP EXTENSION pg_jwt_guard")
        states = [s for s, _ in results]
        if states != ["55000"] * 3:
            return f"expected 55000 three times, got {states}"
        if "shared_preload_libraries" not in results[0][1]:
            return f"message does not name shared_preload_libraries: {results[0][1]}"
        return None
    finally:
        c.stop()


def check_retire_across_sessions(c, env):
    token = env["TOK_RETIRE_ME"]
    with c.connect(user="authenticator") as a, c.connect() as admin:
        first, _ = sqlstate_of(a, "SELECT jwt_guard.verify(%s)", (token,))
        admin.execute("SELECT jwt_guard.retire_key('retire-me')")
        second, message = sqlstate_of(a, "SELECT jwt_guard.verify(%s)", (token,))
    if first != "ok":
        return f"token should verify before retirement, got {first}"
    if second != "28000" or "retired" not in message:
        return f"open session still accepted a retired key: {second} {message}"
    if token in message:
        return "error message contains the token"
    return None


def check_revocation_across_sessions(c, env):
    """A token already verified and cached in an open session is refused at its next
    authenticate() once another session revokes it (by jti, then by subject), even inside a
    transaction that was open before the revocation."""
    token = env["TOK_REV_FRESH"]
    with c.connect(user="authenticator") as a, c.connect() as admin:
        a.prepare_threshold = None  # unnamed statements only, as a locked session requires
        warm = [sqlstate_of(a, "SELECT jwt_guard.authenticate(%s)", (token,))[0] for _ in range(3)]
        a.execute("BEGIN")
        a.execute("SELECT 1")
        admin.execute("SELECT jwt_guard.revoke_token('rev-jti-fresh')")
        in_open, message = sqlstate_of(a, "SELECT jwt_guard.authenticate(%s)", (token,))
        a.execute("ROLLBACK")
        next_tx, _ = sqlstate_of(a, "SELECT jwt_guard.authenticate(%s)", (token,))
        admin.execute("SELECT jwt_guard.unrevoke_token('rev-jti-fresh')")
        back, back_message = sqlstate_of(a, "SELECT jwt_guard.authenticate(%s)", (token,))
        admin.execute("SELECT jwt_guard.revoke_subject('rev-user', now() + interval '1 second')")
        by_subject, subject_message = sqlstate_of(a, "SELECT jwt_guard.authenticate(%s)", (token,))
        admin.execute("SELECT jwt_guard.unrevoke_subject('rev-user')")
        # An entry revoked with an expiry long past does not apply; revoking it again, without
        # one, does, in this backend that has already read the list.
        admin.execute("SELECT jwt_guard.revoke_token('rev-jti-fresh', now() - interval '1 hour')")
        past_expiry, _ = sqlstate_of(a, "SELECT jwt_guard.authenticate(%s)", (token,))
        admin.execute("SELECT jwt_guard.revoke_token('rev-jti-fresh')")
        revoked_again, _ = sqlstate_of(a, "SELECT jwt_guard.authenticate(%s)", (token,))
        admin.execute("SELECT jwt_guard.unrevoke_token('rev-jti-fresh')")
    if warm != ["ok"] * 3:
        return f"token should be accepted (and cached) before revocation, got {warm}"
    if in_open != "28000" or "revoked" not in message:
        return f"an open transaction accepted a revoked, cached token: {in_open} {message}"
    if next_tx != "28000":
        return f"the next transaction accepted a revoked token: {next_tx}"
    if back != "ok":
        return f"unrevoked token refused: {back} {back_message}"
    if by_subject != "28000" or "subject" not in subject_message:
        return f"subject revocation not applied to a cached token: {by_subject} {subject_message}"
    if (past_expiry, revoked_again) != ("ok", "28000"):
        return f"revoked with a past expiry, then again without: {past_expiry}, {revoked_again}"
    return None


def audit_lines(c, pid):
    """The audit objects one backend wrote to the server log, in order."""
    time.sleep(0.5)  # let the logger flush
    out = []
    with open(os.path.join(c.dir, "log"), errors="replace") as f:
        for line in f:
            if f"[{pid}] LOG:  {{" in line:
                out.append(json.loads(line.split("LOG:  ", 1)[1]))
    return out


def check_audit_trail(c, env):
    """One JSON object per decision of authenticate(), field by field, for an acceptance and
    for each kind of refusal; refusal floods are limited per backend and the gap is counted."""
    fields = {"event", "reason", "iss", "sub", "jti", "kid", "alg", "role", "tenant", "session_user",
              "client_addr", "pid", "vxid"}
    cases = [("TOK_TENANT_ACME", None), ("TOK_EXPIRED", "expired"), ("TOK_BAD_SIG", "bad_signature"),
             ("TOK_ROLE_SUPERUSER", "role_refused"), ("TOK_REV_OTHER", "revoked")]
    with c.connect(user="authenticator") as a, c.connect() as admin:
        a.prepare_threshold = None
        admin.execute("SELECT jwt_guard.revoke_token('rev-jti-other')")
        pid = a.execute("SELECT pg_backend_pid()").fetchone()[0]
        for name, _ in cases:
            sqlstate_of(a, "SELECT jwt_guard.authenticate(%s)", (env[name],))
        sqlstate_of(a, "SELECT jwt_guard.authenticate(%s)", (env["TOK_TENANT_ACME"],))  # cached: no line
        lines = audit_lines(c, pid)
        for _ in range(60):
            sqlstate_of(a, "SELECT jwt_guard.authenticate(%s)", (env["TOK_EXPIRED"],))
        time.sleep(1.2)
        sqlstate_of(a, "SELECT jwt_guard.authenticate(%s)", (env["TOK_BAD_SIG"],))
        flood = audit_lines(c, pid)[len(lines):]
        admin.execute("SELECT jwt_guard.unrevoke_token('rev-jti-other')")
    if [(l.get("event"), l.get("reason")) for l in lines] != \
            [("verified", None)] + [("refused", r) for _, r in cases[1:]]:
        return f"audit events: {[(l.get('event'), l.get('reason')) for l in lines]}"
    ok = lines[0]
    if set(ok) != fields:
        return f"fields of the acceptance line: {sorted(ok)}"
    expected = {"sub": "alice", "role": "app_user", "tenant": "acme", "kid": "test-es256", "alg": "ES256",
                "iss": "https://issuer.test", "session_user": "authenticator", "pid": pid}
    wrong = {k: ok[k] for k, v in expected.items() if ok[k] != v}
    if wrong or not ok["vxid"]:
        return f"acceptance line: {wrong} vxid={ok['vxid']!r}"
    # Refused at the choice of role (su_role is not allowed): verified claims, no role chosen.
    if (lines[3]["sub"], lines[3]["tenant"], lines[3]["role"]) != ("user-1", "acme", None):
        return f"role refusal line: {lines[3]}"
    if lines[4]["jti"] != "rev-jti-other" or lines[4]["sub"] != "rev-other":
        return f"revocation line: {lines[4]}"
    if not (20 <= len(flood) <= 40) or "suppressed" not in flood[-1] or flood[-1]["reason"] != "bad_signature":
        return f"61 refusals wrote {len(flood)} lines; last: {flood[-1] if flood else None}"
    for t in (env[n] for n, _ in cases):
        if any(t in json.dumps(l) or t.split(".")[2] in json.dumps(l) for l in lines + flood):
            return "a token or signature is in an audit line"
    return None


def check_audit_cuts_long_values(c, env, minters):
    """Attacker-chosen strings in an audit line are cut to 256 characters (never split inside a
    character), verified claims and the unverified issuer of a refusal alike; short ones are whole."""
    es = minters["ES256"]
    long_sub, long_tenant = "\u00fc" * 300, "t" * 256
    long_iss = "https://" + "\u20ac" * 400
    nul_iss = "https://a\u0000b.test"  # unverified: no claim rule has looked at it yet
    accepted = es.token(sub=long_sub, tenant_id=long_tenant, jti="j" * 257)
    refused = [es.token(iss=long_iss), es.token(iss=nul_iss)]
    with c.connect(user="authenticator") as a:
        pid = a.execute("SELECT pg_backend_pid()").fetchone()[0]
        sqlstate_of(a, "SELECT jwt_guard.authenticate(%s)", (accepted,))
        a.rollback()
        for token in refused:
            sqlstate_of(a, "SELECT jwt_guard.authenticate(%s)", (token,))
        lines = audit_lines(c, pid)
    if [(l.get("event"), l.get("reason")) for l in lines] != \
            [("verified", None), ("refused", "issuer_not_accepted"), ("refused", "nul_in_string")]:
        return f"audit events: {[(l.get('event'), l.get('reason')) for l in lines]}"
    got = (lines[0]["sub"], lines[0]["tenant"], lines[0]["jti"], lines[1]["iss"], lines[2]["iss"])
    want = (long_sub[:256], long_tenant, "j" * 256, long_iss[:256], nul_iss)
    if got != want:
        return f"cut fields (lengths): {[len(g or '') for g in got]}, expected {[len(w) for w in want]}"
    with open(os.path.join(c.dir, "log"), "rb") as f:
        if any(f"[{pid}]".encode() in l and b"\x00" in l for l in f):
            return "a raw NUL byte reached the server log"
    return None


def check_replay_protection(c, env, minters):
    """An issuer with replay_protection accepts each jti once: not again in the same session,
    not in another, not after the first use was rolled back, not after a restart; tokens
    without jti are refused; verify() does not use a jti up; other issuers are unaffected."""
    es, iss = minters["ES256"], "https://replay.test"
    once = es.token(iss=iss, sub="rita", jti="replay-once")
    checked = es.token(iss=iss, sub="rita", jti="replay-checked")
    no_jti = es.token(iss=iss, sub="rita")
    reusable = es.token(sub="carl", jti="reusable")
    auth = "SELECT jwt_guard.authenticate(%s)"
    with c.connect() as admin:
        admin.execute("SELECT jwt_guard.set_issuer(%s, audience => ARRAY['orders-api'], replay_protection => true)",
                      (iss,))
    with c.connect(user="authenticator", autocommit=False) as a, c.connect(user="authenticator") as b:
        a.prepare_threshold = b.prepare_threshold = None
        first, _ = sqlstate_of(a, auth, (once,))
        a.rollback()  # a use counts even when its transaction is rolled back
        same_session, message = sqlstate_of(a, auth, (once,))
        other_session, _ = sqlstate_of(b, auth, (once,))
        without_jti, no_jti_message = sqlstate_of(b, auth, (no_jti,))
        verified = [sqlstate_of(b, "SELECT jwt_guard.verify(%s)", (checked,))[0] for _ in range(2)]
        used, _ = sqlstate_of(b, auth, (checked,))
        verify_after, _ = sqlstate_of(b, "SELECT jwt_guard.verify(%s)", (checked,))
        others = [sqlstate_of(b, auth, (reusable,))[0] for _ in range(3)]
    if first != "ok" or same_session != "28000" or "replayed" not in message:
        return f"first use {first}, then in the same session {same_session} {message}"
    if other_session != "28000":
        return f"another session accepted a used jti: {other_session}"
    if without_jti != "28000" or "no jti" not in no_jti_message:
        return f"token without jti: {without_jti} {no_jti_message}"
    if verified != ["ok", "ok"] or used != "ok" or verify_after != "28000":
        return f"verify, verify, authenticate, verify: {verified + [used, verify_after]}"
    if others != ["ok"] * 3:
        return f"an issuer without replay protection: {others}"
    deadline = time.time() + 15
    with c.connect() as admin:
        while admin.execute("SELECT count(*) FROM jwt_guard.seen_jtis").fetchone()[0] < 2:
            if time.time() > deadline:
                return "used jtis were not recorded in jwt_guard.seen_jtis within 15 s"
            time.sleep(0.2)
    c._run([f"{PGBIN}/pg_ctl", "-D", c.data, "-l", os.path.join(c.dir, "log"), "-w", "restart"])
    with c.connect(user="authenticator") as a:
        a.prepare_threshold = None
        after_restart, _ = sqlstate_of(a, auth, (once,))
    if after_restart != "28000":
        return f"a used jti was accepted after a restart: {after_restart}"
    return None


def check_concurrent_tenants(c, env, clients=8, connections=3, per_client=60, attempts=3):
    """Concurrent clients of two tenants and unauthenticated ones, sharing a few direct connections
    as an application's connection pool does: each transaction takes whichever connection is free,
    so one backend serves one client's tenant, then another client's other tenant. psycopg
    prepares its statements after five runs, so the operator allows any statement name for this
    login role (pg_jwt_guard.statement_prefixes = '*'), as the README says for direct connections.
    The threads' scheduling decides whether a backend passes straight from one client's tenant to
    another's; a run where none did proves nothing and is run again, at most `attempts` times.
    Every run's transactions are checked for leaks."""
    with c.connect() as admin:
        admin.execute("ALTER ROLE authenticator SET pg_jwt_guard.statement_prefixes = '*'")
    try:
        for _ in range(attempts):
            errors, served = _concurrent_run(c, env, clients, connections, per_client)
            if errors:
                return f"{len(errors)} leaks or errors, first: {errors[0]}"
            if len(served) != connections:
                return f"{len(served)} backends served the clients, not {connections}"
            problem = _handover_missing(served)
            if problem is None:
                return None
        return f"{problem} ({attempts} runs)"
    finally:
        with c.connect() as admin:
            admin.execute("ALTER ROLE authenticator RESET pg_jwt_guard.statement_prefixes")


def _concurrent_run(c, env, clients, connections, per_client):
    """One run of check_concurrent_tenants: (errors, backend pid -> [(its clock, client, tenant)])."""
    tokens = {"acme": env["TOK_TENANT_ACME"], "globex": env["TOK_TENANT_GLOBEX"], None: None}
    expected = {"acme": 200, "globex": 100}
    errors = []
    served = {}
    lock = threading.Lock()
    pool = queue.Queue()
    for _ in range(connections):
        pool.put(c.connect(user="authenticator", autocommit=False))

    def client(n):
        try:
            for i in range(per_client):
                tenant = [None, "acme", "globex"][(n + i) % 3]
                conn = pool.get()
                try:
                    with conn.transaction():
                        if tenant:
                            conn.execute("SELECT jwt_guard.authenticate(%s)", (tokens[tenant],))
                        user, seen, pid, at = conn.execute(
                            "SELECT current_user, jwt_guard.tenant(), pg_backend_pid(), clock_timestamp()").fetchone()
                        with lock:
                            served.setdefault(pid, []).append((at, n, tenant))
                        if tenant is None:
                            if user != "authenticator" or seen is not None:
                                errors.append(f"unauthenticated txn on pid {pid} saw {user}/{seen}")
                            continue
                        rows = conn.execute("SELECT tenant_id, count(*) FROM orders GROUP BY 1").fetchall()
                        if user != "app_user" or seen != tenant or rows != [(tenant, expected[tenant])]:
                            errors.append(f"{tenant} txn on pid {pid} saw {user}/{seen}/{rows}")
                finally:
                    pool.put(conn)
        except Exception as e:  # noqa: BLE001 - any failure is a test failure
            errors.append(f"client {n}: {e}")

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    while not pool.empty():
        pool.get().close()
    return errors, served


def _handover_missing(served):
    """None when every backend served two clients and one went straight from a client's tenant
    to another client's other tenant; otherwise what was missing."""
    handovers = 0
    for pid, txns in served.items():
        txns.sort()
        if len({n for _, n, _ in txns}) < 2:
            return f"backend {pid} served only one client"
        handovers += sum(1 for (_, n1, t1), (_, n2, t2) in zip(txns, txns[1:])
                         if t1 and t2 and t1 != t2 and n1 != n2)
    if handovers == 0:
        return "no backend went from one client's tenant straight to another client's other tenant"
    return None


def _log_from(c, offset):
    """The server log from byte `offset` on, once the logger has flushed."""
    time.sleep(0.5)
    with open(os.path.join(c.dir, "log"), "rb") as f:
        f.seek(offset)
        return f.read().decode(errors="replace")


def _log_size(c):
    return os.path.getsize(os.path.join(c.dir, "log"))


def _simple_query(conn, text):
    """One statement through the simple query protocol (libpq's PQexec), the SQL text exactly
    as given; returns the SQLSTATE or 'ok'."""
    res = conn.pgconn.exec_(text.encode())
    state = res.error_field(psycopg.pq.DiagnosticField.SQLSTATE)
    return state.decode() if state else "ok"


def check_token_hygiene(c, env):
    """P24: tokens never reach the server log, accepted or refused; the audit line names role and
    subject but not the token.

    As bind parameters: with PostgreSQL's defaults. As literals in the SQL text, sent through the
    simple query protocol: with the login role set up as the README says
    (log_min_error_statement = panic and no parameter logging), so that no STATEMENT line repeats
    a failed statement. Without that setting PostgreSQL's own STATEMENT line does repeat the
    literal; the check shows it does, which also proves it would see a token in the log."""
    tokens = [env["TOK_TENANT_ACME"], env["TOK_EXPIRED"], env["TOK_BAD_SIG"], env["TOK_ROLE_SUPERUSER"]]

    def leaked(log, toks):
        return [t[:12] for t in toks if t in log or t.split(".")[2] in log]

    start = _log_size(c)
    with c.connect(user="authenticator", autocommit=False) as conn:
        for tok in tokens:
            sqlstate_of(conn, "SELECT jwt_guard.authenticate(%s)", (tok,))
            conn.rollback()
    log = _log_from(c, start)
    if leaked(log, tokens):
        return f"bound token text found in the server log ({len(leaked(log, tokens))} tokens)"
    if '"event":"verified"' not in log or '"sub":"alice"' not in log:
        return "audit line for the accepted token not found in the server log"
    if "token expired at" not in log:
        return "refusal reason not logged"

    literal = "SELECT jwt_guard.authenticate('{}')"
    settings = {"log_min_error_statement": "panic", "log_parameter_max_length_on_error": "0",
                "log_parameter_max_length": "0"}
    with c.connect() as admin:
        for name, value in settings.items():
            admin.execute(f"ALTER ROLE authenticator SET {name} = {value}")
    try:
        start = _log_size(c)
        with c.connect(user="authenticator") as conn:
            states = [_simple_query(conn, literal.format(tok)) for tok in tokens]
        log = _log_from(c, start)
    finally:
        with c.connect() as admin:
            for name in settings:
                admin.execute(f"ALTER ROLE authenticator RESET {name}")
    if states != ["ok", "28000", "28000", "42501"]:
        return f"literal tokens: {states}"
    if leaked(log, tokens):
        return f"literal token text found in the server log ({len(leaked(log, tokens))} tokens)"
    if log.count('"event":"verified"') != 1 or log.count('"event":"refused"') != 3 or "STATEMENT:" in log:
        return "literal tokens: expected 1 verified and 3 refused audit lines and no STATEMENT line"

    start = _log_size(c)
    with c.connect(user="authenticator") as conn:
        state = _simple_query(conn, literal.format(env["TOK_EXPIRED"]))
    log = _log_from(c, start)
    if state != "28000" or "STATEMENT:" not in log or not leaked(log, [env["TOK_EXPIRED"]]):
        return "without log_min_error_statement = panic the STATEMENT line should show the literal"
    print("  token_hygiene: no token in the log, bound or literal; without log_min_error_statement = panic "
          "PostgreSQL's STATEMENT line repeats a refused literal token")
    return None


class Checks:
    """Runs named checks, one line each: a check returns None when it passed, or a one-line
    problem; an exception fails it too. Counts what passed and failed."""

    def __init__(self, kind, width=32):
        self.kind, self.width = kind, width
        self.passed = self.failed = 0

    def run(self, name, fn, *args):
        started = time.time()
        try:
            problem = fn(*args)
        except Exception as e:  # noqa: BLE001 - any failure is a failure of this check
            problem = f"raised {e!r}"
        if problem is None:
            self.passed += 1
            print(f"{self.kind} {name:{self.width}s} ... ok ({time.time() - started:.1f} s)")
        else:
            self.failed += 1
            print(f"{self.kind} {name:{self.width}s} ... FAILED: {problem}")

    def totals(self):
        return self.passed, self.failed


def run_all(env, minters):
    checks = Checks("scenario")
    report = checks.run
    c = Cluster()
    try:
        report("not_preloaded", check_not_preloaded, c, env)
        c.start(preload=True, extra=CONFIG)
        try:
            setup_db(c, env)
            report("retire_key_across_sessions", check_retire_across_sessions, c, env)
            report("revocation_across_sessions", check_revocation_across_sessions, c, env)
            report("audit_trail", check_audit_trail, c, env)
            report("audit_cuts_long_values", check_audit_cuts_long_values, c, env, minters)
            report("replay_protection", check_replay_protection, c, env, minters)
            report("concurrent_tenants", check_concurrent_tenants, c, env)
            report("token_hygiene", check_token_hygiene, c, env)
            report("pgbouncer_transaction_pooling", pooler.check_pgbouncer_transaction_pooling, c, env)
            report("token_not_in_pg_stat_activity", pooler.check_token_not_in_pg_stat_activity, c, env)
        finally:
            c.stop()
    finally:
        c.remove()
    return checks.totals()
