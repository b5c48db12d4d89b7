"""pg_jwt_guard benchmark: token verification in the database against what users run
today, side by side on one throw-away cluster.

Point selects under RLS, measured with pgbench in both protocols (-M simple, and -M prepared as
JDBC, asyncpg, pgx, node-postgres named queries and psycopg 3 use it), one random id per transaction:
  a_baseline     BEGIN; SET LOCAL ROLE app_user; select on items_literal; COMMIT
  b_postgrest    BEGIN; set_config('role', ...) + set_config('request.jwt.claims', <json>); select on items_json
  c_<alg>        BEGIN; jwt_guard.authenticate(<one repeated token>); select on items_guard
  c_es256_distinct   one of 1,000 distinct ES256 tokens per transaction, token cache off
  c_es256_distinct_cached   the same with the token cache at its default size (1,000: all fit)
  c_es256_distinct_noaudit  c_es256_distinct with pg_jwt_guard.audit_log = off (what the audit line costs a miss)
  c_hs256_noaudit    c_hs256 with pg_jwt_guard.audit_log = off (how much the audit line costs)
  c_hs256_locked     c_hs256 as a login role listed in login_roles (what the isolation checks cost)
  d_hs256_enforce    c_hs256 for a login role with pg_jwt_guard.enforce_permissions = on
  c_hs256_stmtaudit  c_hs256 with pg_jwt_guard.audit_statements = on (a JSON line per statement)
  c_hs256_fresh      a new HS256 token (with jti) every transaction, taken in order from a table
  c_hs256_replay     the same for an issuer with replay_protection (each jti recorded once)
  c_hs256_revoked    c_hs256 in a copy of the database with 100,000 revocations stored
                     (99,000 jtis, 1,000 subjects; none of them this token's)
  r_baseline / r_hs256   a realistic transaction: SET LOCAL ROLE or authenticate(), 3 point
                     selects, 1 insert, 1 update
  t_postgrest / t_hs256  100 tenants rotating over the same backends: the claims (or the cached
                     token) of one of 100 tenants per transaction, from an indexed table
  a_baseline_ddl / c_es256_ddl   a_baseline and c_es256 while another session creates and drops
                     a temporary table 200 times a second (DDL that concerns no token role)
Core verification (criterion, cargo bench -p jwt_guard_core) beside `openssl speed` on this machine.
Memory: a backend's private memory after authenticating 100,000 distinct tokens.
Serial 1M-row scans, count(*) of one tenant, timed by EXPLAIN (ANALYZE, TIMING OFF):
  literal / postgrest_json / guard (tenant()) / guard_wrapped ((SELECT tenant()))

Configurations run interleaved, in a new shuffled order each round; we report medians over the
rounds and ratios of medians from this same run. Nothing here asserts on timing: targets print
PASS or MISS and the exit status only reflects errors.
"""

import argparse
import datetime
import hashlib
import json
import os
import platform
import random
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "tools"))

from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa  # noqa: E402

import scenarios  # noqa: E402
from fixtures import AUDIENCE, ISSUER, Minter  # noqa: E402

PGBENCH = f"{scenarios.PGBIN}/pgbench"
ROWS = 1_000_000
DISTINCT_TOKENS = 1000
REVOKED_JTIS, REVOKED_SUBJECTS = 99_000, 1_000
REVOKED_DB = "bench_revoked"
REPLAY_ISSUER = "https://replay.bench/"
# Single-use tokens per configuration: enough for every run of the mode, in both protocols, at
# ~20,000 TPS, retries included.
FRESH_TOKENS = {"quick": 600_000, "full": 2_000_000}
CLIENTS = 2  # the machine has 2 cores; more clients only measure the scheduler
PROTOCOLS = ("simple", "prepared")
TENANTS = 100
MEMORY_TOKENS = 100_000
FAST_SCAN_REPEATS = 3  # samples per scan round of each ~0.1 s scan (see the scan loop)
OTHER_CPU_WARN = 0.05  # share of all cores used by other processes above which a sample is suspect

MODES = {
    #          rounds, seconds per pgbench run, scan rounds
    "quick": dict(rounds=4, seconds=2, scan_rounds=3),
    "full": dict(rounds=7, seconds=6, scan_rounds=7),
}


class BenchCluster(scenarios.Cluster):
    port = 58440  # not the test suite's 58433/58434, so a benchmark and the tests can run together


# jit off: compiling a 1M-row scan's expressions takes about as long as the literal scan itself,
# which would swamp the ratios. Parallel workers off: the scans are meant to be serial, and with
# 2 cores a worker would compete with the pgbench clients. shared_buffers holds all four tables.
# synchronous_commit off: the realistic transaction writes, and a WAL flush per commit would
# measure this VM's disk instead of the CPU work compared here (the same for every configuration).
CONF = f"""
shared_buffers = 1GB
synchronous_commit = off
jit = off
max_parallel_workers_per_gather = 0
pg_jwt_guard.issuers = '{ISSUER}'
pg_jwt_guard.audience = '{AUDIENCE}'
pg_jwt_guard.allowed_roles = 'app_user'
"""

POLICIES = {
    "items_literal": "tenant_id = 'acme'",
    "items_json": "tenant_id = current_setting('request.jwt.claims', true)::json->>'tenant_id'",
    "items_guard": "tenant_id = jwt_guard.tenant()",
    "items_wrapped": "tenant_id = (SELECT jwt_guard.tenant())",
}


def pem_public(private_key):
    return private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def make_keys():
    """One fresh key per algorithm: (kid, alg) -> (minter, text for jwt_guard.add_key)."""
    secret = os.urandom(32).hex()  # 64 printable bytes, above the HS256 minimum
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    p256 = ec.generate_private_key(ec.SECP256R1())
    ed = ed25519.Ed25519PrivateKey.generate()
    return {
        "HS256": (Minter("bench-hs256", "HS256", secret), secret),
        "RS256": (Minter("bench-rs256", "RS256", rsa_key), pem_public(rsa_key)),
        "ES256": (Minter("bench-es256", "ES256", p256), pem_public(p256)),
        "EdDSA": (Minter("bench-eddsa", "EdDSA", ed), pem_public(ed)),
    }


def token_claims(now, **extra):
    # Every token carries the permissions claim, so c_hs256 and d_hs256_enforce send the same
    # token and differ only in the setting. exp: the default max_lifetime is 1 h, longer than a run.
    claims = dict(iat=now, exp=now + 3600, sub="user-1", tenant_id="acme", permissions=["select:items_guard"])
    claims.update(extra)
    return claims


def setup(c, keys, fresh_tokens):
    now = int(time.time())
    tokens = {alg: m.token(**token_claims(now)) for alg, (m, _) in keys.items()}
    es = keys["ES256"][0]
    distinct = [es.token(**token_claims(now, sub=f"user-{n}", jti=f"bench-{n}")) for n in range(DISTINCT_TOKENS)]
    # What PostgREST would put into request.jwt.claims for the same token. pgbench reads
    # ":name" in a script as a variable, also inside a literal (-M prepared binds it): colons
    # other than the separators' are written as the JSON escape \u003a, the same JSON value.
    postgrest_claims = re.sub(r":(?! )", r"\\u003a",
                              json.dumps(keys["HS256"][0].claims(**token_claims(now)), separators=(",", ": ")))

    with c.connect() as conn:
        x = conn.execute
        x("CREATE EXTENSION pg_jwt_guard")
        x("CREATE ROLE app_user NOLOGIN")
        # The bench login roles are members of app_user: SET LOCAL ROLE and PostgREST's
        # set_config('role') need it. They are not in pg_jwt_guard.login_roles, so nothing locks them.
        # Direct connections, one client per backend: named statements are the client's own, so
        # the roles accept the names pgbench -M prepared gives them (P_<n>), as the reference
        # advises for direct connections. Under a token every session checks the name.
        for role in ("bench", "bench_enforce", "bench_noaudit", "bench_nocache", "bench_nocache_noaudit", "bench_locked",
                     "bench_stmtaudit"):
            x(f"CREATE ROLE {role} LOGIN NOINHERIT IN ROLE app_user")
            x(f"ALTER ROLE {role} SET pg_jwt_guard.statement_prefixes = 'P_'")
        # The README's setup: the login role is listed in login_roles, so every statement before
        # and under the token runs through the isolation allow-lists.
        x("ALTER ROLE bench_locked SET pg_jwt_guard.login_roles = 'bench_locked'")
        x("ALTER ROLE bench_enforce SET pg_jwt_guard.enforce_permissions = on")
        x("ALTER ROLE bench_noaudit SET pg_jwt_guard.audit_log = off")
        x("ALTER ROLE bench_stmtaudit SET pg_jwt_guard.audit_statements = on")
        # The distinct-token case must not profit from the token cache: its default size (1,000)
        # holds all 1,000 tokens, so after warm-up every backend would only ever hit.
        x("ALTER ROLE bench_nocache SET pg_jwt_guard.token_cache_size = 0")
        # The same without the audit line each verification writes (audit_log = verified).
        x("ALTER ROLE bench_nocache_noaudit SET pg_jwt_guard.token_cache_size = 0")
        x("ALTER ROLE bench_nocache_noaudit SET pg_jwt_guard.audit_log = off")

        # Same rows in every table: even ids belong to acme, odd ids to globex.
        x("CREATE TABLE items_literal (id int NOT NULL, tenant_id text NOT NULL, payload text NOT NULL)")
        x(f"INSERT INTO items_literal SELECT g, CASE WHEN g % 2 = 0 THEN 'acme' ELSE 'globex' END, md5(g::text) "
          f"FROM generate_series(1, {ROWS}) g")
        for table, using in POLICIES.items():
            if table != "items_literal":
                x(f"CREATE TABLE {table} (LIKE items_literal)")
                x(f"INSERT INTO {table} SELECT * FROM items_literal")
            x(f"ALTER TABLE {table} ADD PRIMARY KEY (id)")
            x(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
            x(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
            x(f"CREATE POLICY tenant ON {table} USING ({using})")
            x(f"GRANT SELECT ON {table} TO app_user")

        # The realistic transaction writes: one insert and one counter update per transaction.
        for kind, using in (("literal", "tenant_id = 'acme'"), ("guard", "tenant_id = (SELECT jwt_guard.tenant())")):
            x(f"CREATE TABLE events_{kind} (id bigserial PRIMARY KEY, tenant_id text NOT NULL, item int NOT NULL, "
              "at timestamptz NOT NULL DEFAULT now())")
            x(f"CREATE TABLE counters_{kind} (id int PRIMARY KEY, tenant_id text NOT NULL, hits bigint NOT NULL)")
            x(f"INSERT INTO counters_{kind} SELECT g, CASE WHEN g % 2 = 0 THEN 'acme' ELSE 'globex' END, 0 "
              "FROM generate_series(1, 10000) g")
            for table in (f"events_{kind}", f"counters_{kind}"):
                x(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
                x(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
                x(f"CREATE POLICY tenant ON {table} USING ({using}) WITH CHECK ({using})")
                x(f"GRANT SELECT, INSERT, UPDATE ON {table} TO app_user")
            x(f"GRANT USAGE ON SEQUENCE events_{kind}_id_seq TO app_user")

        # 100 tenants: each one's token (for authenticate) and claims (for the PostgREST style).
        hs = keys["HS256"][0]
        x("CREATE TABLE tenant_tokens (n int PRIMARY KEY, token text NOT NULL, claims text NOT NULL)")
        with conn.cursor().copy("COPY tenant_tokens (n, token, claims) FROM STDIN") as copy:
            for n in range(1, TENANTS + 1):
                tenant = {1: "acme", 2: "globex"}.get(n, f"tenant-{n}")
                claims = token_claims(now, sub=f"user-of-{tenant}", tenant_id=tenant)
                copy.write_row((n, hs.token(**claims), json.dumps(hs.claims(**claims))))
        x("GRANT SELECT ON tenant_tokens TO bench")

        x("CREATE TABLE bench_tokens (n int PRIMARY KEY, token text NOT NULL)")
        with conn.cursor().copy("COPY bench_tokens (n, token) FROM STDIN") as copy:
            for n, tok in enumerate(distinct, 1):
                copy.write_row((n, tok))
        x("GRANT SELECT ON bench_tokens TO bench, bench_nocache, bench_nocache_noaudit")

        # Single-use tokens, consumed in order through a sequence: one table per issuer.
        hs = keys["HS256"][0]
        x("SELECT jwt_guard.set_issuer(%s, audience => ARRAY[%s], replay_protection => true)",
          (REPLAY_ISSUER, AUDIENCE))
        for table, iss in (("fresh_tokens", ISSUER), ("replay_tokens", REPLAY_ISSUER)):
            x(f"CREATE TABLE {table} (n bigint PRIMARY KEY, token text NOT NULL)")
            x(f"CREATE SEQUENCE {table}_seq")
            with conn.cursor().copy(f"COPY {table} (n, token) FROM STDIN") as copy:
                for n in range(1, fresh_tokens + 1):
                    copy.write_row((n, hs.token(**token_claims(now, iss=iss, jti=f"{table}-{n}"))))
            x(f"GRANT SELECT ON {table} TO bench")
            x(f"GRANT USAGE ON SEQUENCE {table}_seq TO bench")

        for alg, (m, text) in keys.items():
            x("SELECT jwt_guard.add_key(%s, %s, %s)", (m.kid, alg, text))
        # Frozen, analysed and read once, so no run pays for hint bits or first reads.
        x("VACUUM (FREEZE, ANALYZE)")
        for table in list(POLICIES) + ["bench_tokens", "fresh_tokens", "replay_tokens", "tenant_tokens"]:
            x(f"SELECT count(*) FROM {table}")
    # The same database again, with 100,000 revocations stored: what the revocation check costs.
    with scenarios.psycopg.connect(host=c.dir, port=c.port, user="postgres", dbname="template1",
                                   autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {REVOKED_DB} TEMPLATE postgres")
    with scenarios.psycopg.connect(host=c.dir, port=c.port, user="postgres", dbname=REVOKED_DB,
                                   autocommit=True) as conn:
        conn.execute("INSERT INTO jwt_guard.revoked_tokens (jti, expires_at) SELECT 'revoked-' || g, "
                     f"now() + interval '1 day' FROM generate_series(1, {REVOKED_JTIS}) g")
        conn.execute("INSERT INTO jwt_guard.revoked_subjects (sub, issued_before) SELECT 'revoked-user-' || g, "
                     f"now() FROM generate_series(1, {REVOKED_SUBJECTS}) g")
        for table in list(POLICIES) + ["bench_tokens"]:
            conn.execute(f"SELECT count(*) FROM {table}")
    return tokens, postgrest_claims


def scripts(tokens, postgrest_claims):
    """pgbench scripts: name -> (login role, script text). Tokens and claims are literals:
    pgbench's simple protocol has no bind parameters."""
    pick = f"\\set id random(1, {ROWS})\n"
    claims_sql = postgrest_claims.replace("'", "''")

    def guard(token):
        return pick + f"BEGIN;\nSELECT jwt_guard.authenticate('{token}');\nSELECT payload FROM items_guard WHERE id = :id;\nCOMMIT;\n"

    s = {
        "a_baseline": ("bench", pick + "BEGIN;\nSET LOCAL ROLE app_user;\n"
                       "SELECT payload FROM items_literal WHERE id = :id;\nCOMMIT;\n"),
        "b_postgrest": ("bench", pick + "BEGIN;\nSELECT set_config('role', 'app_user', true), "
                        f"set_config('request.jwt.claims', '{claims_sql}', true);\n"
                        "SELECT payload FROM items_json WHERE id = :id;\nCOMMIT;\n"),
    }
    for alg in ("HS256", "RS256", "ES256", "EdDSA"):
        s[f"c_{alg.lower()}"] = ("bench", guard(tokens[alg]))
    # The token comes from an indexed table in the same statement: one extra index lookup, no
    # extra round trip.
    distinct = (pick + f"\\set n random(1, {DISTINCT_TOKENS})\n"
                "BEGIN;\nSELECT jwt_guard.authenticate(token) FROM bench_tokens WHERE n = :n;\n"
                "SELECT payload FROM items_guard WHERE id = :id;\nCOMMIT;\n")
    # The PostgREST-style transaction with the same extra index lookup: the fair baseline for the
    # distinct-token case, which pays that lookup only to vary the token.
    s["b_postgrest_lookup"] = ("bench", pick + f"\\set n random(1, {DISTINCT_TOKENS})\n"
                               "BEGIN;\nSELECT set_config('role', 'app_user', true), "
                               f"set_config('request.jwt.claims', '{claims_sql}', true) FROM bench_tokens WHERE n = :n;\n"
                               "SELECT payload FROM items_json WHERE id = :id;\nCOMMIT;\n")
    s["c_es256_distinct"] = ("bench_nocache", distinct)
    s["c_es256_distinct_noaudit"] = ("bench_nocache_noaudit", distinct)
    s["c_es256_distinct_cached"] = ("bench", distinct)
    s["c_hs256_noaudit"] = ("bench_noaudit", guard(tokens["HS256"]))
    s["c_hs256_locked"] = ("bench_locked", guard(tokens["HS256"]))
    s["d_hs256_enforce"] = ("bench_enforce", guard(tokens["HS256"]))
    s["c_hs256_revoked"] = ("bench", guard(tokens["HS256"]))
    for name, table in (("c_hs256_fresh", "fresh_tokens"), ("c_hs256_replay", "replay_tokens")):
        # The init plan takes the next number once, before authenticate() switches the role.
        s[name] = ("bench", pick + "BEGIN;\nSELECT jwt_guard.authenticate(token) FROM "
                   f"{table} WHERE n = (SELECT nextval('{table}_seq'));\n"
                   "SELECT payload FROM items_guard WHERE id = :id;\nCOMMIT;\n")
    s["c_hs256_stmtaudit"] = ("bench_stmtaudit", guard(tokens["HS256"]))
    s["a_baseline_ddl"] = s["a_baseline"]
    s["c_es256_ddl"] = ("bench", guard(tokens["ES256"]))
    # A realistic transaction: 3 point selects, an insert and a counter update, all under RLS.
    work = ("SELECT payload FROM {items} WHERE id = :id;\nSELECT payload FROM {items} WHERE id = :id2;\n"
            "SELECT payload FROM {items} WHERE id = :id3;\n"
            "INSERT INTO events_{kind} (tenant_id, item) VALUES ('acme', :id);\n"
            "UPDATE counters_{kind} SET hits = hits + 1 WHERE id = :c;\nCOMMIT;\n")
    picks = pick + f"\\set id2 random(1, {ROWS})\n\\set id3 random(1, {ROWS})\n\\set c 2 * random(1, 5000)\n"
    s["r_baseline"] = ("bench", picks + "BEGIN;\nSET LOCAL ROLE app_user;\n" + work.format(items="items_literal", kind="literal"))
    s["r_hs256"] = ("bench", picks + f"BEGIN;\nSELECT jwt_guard.authenticate('{tokens['HS256']}');\n"
                    + work.format(items="items_guard", kind="guard"))
    # 100 tenants over the same backends: one tenant's claims or token per transaction.
    rotate = pick + f"\\set t random(1, {TENANTS})\nBEGIN;\n"
    s["t_postgrest"] = ("bench", rotate + "SELECT set_config('role', 'app_user', true), "
                        "set_config('request.jwt.claims', claims, true) FROM tenant_tokens WHERE n = :t;\n"
                        "SELECT payload FROM items_json WHERE id = :id;\nCOMMIT;\n")
    s["t_hs256"] = ("bench", rotate + "SELECT jwt_guard.authenticate(token) FROM tenant_tokens WHERE n = :t;\n"
                    "SELECT payload FROM items_guard WHERE id = :id;\nCOMMIT;\n")
    return s


def sanity_check(c, tokens, postgrest_claims):
    """Each configuration must really filter: id 2 (acme) visible, id 1 (globex) not; and the
    enforcing role must really enforce. Otherwise the numbers compare different work."""
    steps = {
        "a_baseline": ("bench", "SET LOCAL ROLE app_user", (), "items_literal"),
        "b_postgrest": ("bench", "SELECT set_config('role', 'app_user', true), set_config('request.jwt.claims', %s, true)",
                        (postgrest_claims,), "items_json"),
        "c_guard": ("bench", "SELECT jwt_guard.authenticate(%s)", (tokens["ES256"],), "items_guard"),
        "c_wrapped": ("bench", "SELECT jwt_guard.authenticate(%s)", (tokens["EdDSA"],), "items_wrapped"),
        "d_enforce": ("bench_enforce", "SELECT jwt_guard.authenticate(%s)", (tokens["HS256"],), "items_guard"),
    }
    for name, (role, sql, params, table) in steps.items():
        with c.connect(user=role, autocommit=False) as conn:
            conn.execute(sql, params)
            seen = [conn.execute(f"SELECT count(*) FROM {table} WHERE id = %s", (i,)).fetchone()[0] for i in (1, 2)]
            if seen != [0, 1]:
                raise SystemExit(f"sanity check {name}: ids 1,2 visible {seen}, expected [0, 1]")
            if name == "d_enforce":
                try:
                    conn.execute("SELECT count(*) FROM items_literal")
                    raise SystemExit("sanity check d_enforce: a table outside the permissions claim was readable")
                except Exception as e:  # noqa: BLE001 - only the refusal is expected
                    if getattr(e, "sqlstate", None) != "42501":
                        raise
    with c.connect(user="bench") as conn:
        n = conn.execute("SELECT count(*) FROM bench_tokens").fetchone()[0]
        if n != DISTINCT_TOKENS:
            raise SystemExit(f"sanity check: {n} distinct tokens")


class CpuMeter:
    """Share of the machine's CPU used by anything other than this cluster and pgbench while a
    run lasts: a build or test run beside the benchmark (the machine has 2 cores) skews every
    number, so each sample records it and the report warns.

    Ours: the postmaster with its live and reaped children (a backend's time moves into the
    postmaster's cutime when it exits), plus pgbench, as this process's reaped children.
    Everything: /proc/stat."""

    TICK = os.sysconf("SC_CLK_TCK")

    def __init__(self, cluster):
        with open(os.path.join(cluster.data, "postmaster.pid")) as f:
            self.postmaster = int(f.readline())

    def _read(self):
        with open("/proc/stat") as f:
            user, nice, system, idle, iowait, irq, softirq, steal = map(int, f.readline().split()[1:9])
        busy = (user + nice + system + irq + softirq + steal) / self.TICK
        ours = 0
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()  # fields[0] is the state, [1] the parent
            except OSError:
                continue  # exited meanwhile
            if int(pid) == self.postmaster:
                ours += sum(map(int, fields[11:15]))  # utime, stime, cutime, cstime
            elif int(fields[1]) == self.postmaster:
                ours += sum(map(int, fields[11:13]))
        ours /= self.TICK
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return time.monotonic(), busy, ours + children.ru_utime + children.ru_stime

    def start(self):
        self.begin = self._read()

    def foreign_share(self):
        time.sleep(0.05)  # let the postmaster reap the backends that just closed (their time moves to it)
        (t0, busy0, ours0), (t1, busy1, ours1) = self.begin, self._read()
        return max(0.0, ((busy1 - busy0) - (ours1 - ours0)) / ((t1 - t0) * os.cpu_count()))


NEIGHBOUR_DDL_RATE = 200  # temporary tables created and dropped per second beside the *_ddl runs


def neighbour_ddl(c, script_path, seconds):
    """A superuser session creating and dropping a temporary table at a fixed rate: catalog
    invalidations every backend receives, about nothing a token role holds."""
    path = os.path.join(os.path.dirname(script_path), "neighbour_ddl.sql")
    with open(path, "w") as f:
        f.write("CREATE TEMP TABLE neighbour_scratch (x int);\nDROP TABLE neighbour_scratch;\n")
    return subprocess.Popen([PGBENCH, "-n", "-c", "1", "-j", "1", "-T", str(seconds), "-R", str(NEIGHBOUR_DDL_RATE),
                             "-h", c.dir, "-p", str(c.port), "-U", "postgres", "-f", path, "postgres"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def pgbench(c, role, script_path, seconds, meter, protocol):
    db = REVOKED_DB if script_path.endswith("_revoked.sql") else "postgres"
    cmd = [PGBENCH, "-n", "-M", protocol, "-c", str(CLIENTS), "-j", str(CLIENTS), "-T", str(seconds),
           "-h", c.dir, "-p", str(c.port), "-U", role, "-f", script_path, db]
    meter.start()
    neighbour = neighbour_ddl(c, script_path, seconds) if script_path.endswith("_ddl.sql") else None
    out = subprocess.run(cmd, capture_output=True, text=True)
    if neighbour:
        neighbour.wait()
    foreign = meter.foreign_share()
    tps = re.search(r"^tps = ([\d.]+)", out.stdout, re.M)
    lat = re.search(r"^latency average = ([\d.]+) ms", out.stdout, re.M)
    if out.returncode != 0 or not tps or "aborted" in out.stderr:
        raise SystemExit(f"pgbench failed ({out.returncode}) for {script_path}:\n{out.stdout}\n{out.stderr}")
    return float(tps.group(1)), float(lat.group(1)) if lat else None, foreign


def openssl_verify_us():
    """Microseconds per verification by `openssl speed` on one core: the bound for the
    signature itself (P-256 ECDSA for ES256, RSA-2048 for RS256)."""
    out = subprocess.run(["openssl", "speed", "-seconds", "2", "ecdsap256", "rsa2048"],
                         capture_output=True, text=True).stdout
    ec_rate = re.search(r"256 bits ecdsa \(nistp256\)\s+\S+\s+\S+\s+[\d.]+\s+([\d.]+)", out)
    rsa_rate = re.search(r"rsa 2048 bits\s+\S+\s+\S+\s+[\d.]+\s+([\d.]+)", out)
    if not ec_rate or not rsa_rate:
        raise SystemExit(f"could not read openssl speed output:\n{out}")
    return {"ES256": 1e6 / float(ec_rate.group(1)), "RS256": 1e6 / float(rsa_rate.group(1))}


def criterion_verify_us():
    """The core's parse + signature + claims per algorithm (criterion medians, microseconds)."""
    env = dict(os.environ, PATH=os.path.expanduser("~/.cargo/bin") + ":" + os.environ.get("PATH", ""))
    out = subprocess.run(["cargo", "bench", "-q", "-p", "jwt_guard_core", "--bench", "verify", "--",
                          "^verify/", "--warm-up-time", "1", "--measurement-time", "3"],
                         cwd=os.path.join(HERE, ".."), capture_output=True, text=True, env=env)
    units = {"ns": 1e-3, "µs": 1.0, "us": 1.0, "ms": 1e3}
    found = {alg: float(v) * units[u] for alg, v, u in re.findall(
        r"^verify/(\w+)\s+time:\s+\[\S+ \S+ (\S+) (ns|µs|us|ms)", out.stdout, re.M)}
    if not found:
        raise SystemExit(f"criterion printed no verify times:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    return found


def core_figures(skip):
    if skip:
        return None
    print("==> core verification: criterion and openssl speed", flush=True)
    return {"criterion_us": criterion_verify_us(), "openssl_us": openssl_verify_us()}


def anonymous_kb(pid):
    """Private anonymous memory of a process (heap: palloc and Rust's allocator alike; shared
    buffers are shared memory and do not count)."""
    with open(f"/proc/{pid}/smaps_rollup") as f:
        return int(re.search(r"^Anonymous:\s+(\d+) kB", f.read(), re.M).group(1))


def memory_after_tokens(c, keys):
    """A backend's private memory before and after authenticating MEMORY_TOKENS distinct
    tokens, beside the bound the reference states (token_cache_size x max_token_bytes)."""
    hs = keys["HS256"][0]
    now = int(time.time())
    with c.connect(user="bench") as conn:
        pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        setting = "SELECT setting::bigint FROM pg_settings WHERE name = %s"  # raw, without units
        size = conn.execute(setting, ("pg_jwt_guard.token_cache_size",)).fetchone()[0]
        max_bytes = conn.execute(setting, ("pg_jwt_guard.max_token_bytes",)).fetchone()[0]
        for n in range(1000):  # libraries, catalogs and the first cache entries in place
            conn.execute("SELECT jwt_guard.authenticate(%s)", (hs.token(**token_claims(now, sub=f"warm-{n}")),))
        before = anonymous_kb(pid)
        for n in range(MEMORY_TOKENS):
            conn.execute("SELECT jwt_guard.authenticate(%s)", (hs.token(**token_claims(now, sub=f"mem-{n}")),))
        after = anonymous_kb(pid)
    return {"tokens": MEMORY_TOKENS, "before_kb": before, "after_kb": after, "growth_kb": after - before,
            "bound_kb": size * max_bytes // 1024, "token_cache_size": size, "max_token_bytes": max_bytes}


SCANS = {
    # name -> (setup statement, parameters, table)
    "literal": ("SET LOCAL ROLE app_user", (), "items_literal"),
    "postgrest_json": ("SELECT set_config('role', 'app_user', true), set_config('request.jwt.claims', %s, true)",
                       None, "items_json"),
    "guard": ("SELECT jwt_guard.authenticate(%s)", None, "items_guard"),
    "guard_wrapped": ("SELECT jwt_guard.authenticate(%s)", None, "items_wrapped"),
}


def scan_ms(conn, name, token, postgrest_claims):
    sql, params, table = SCANS[name]
    if params is None:
        params = (postgrest_claims,) if name == "postgrest_json" else (token,)
    with conn.transaction(force_rollback=True):
        conn.execute(sql, params)
        plan = "\n".join(r[0] for r in conn.execute(f"EXPLAIN (ANALYZE, TIMING OFF) SELECT count(*) FROM {table}"))
    # The policy must have let exactly one tenant's rows through, or the scans are not comparable.
    seen = re.search(rf"Seq Scan on {table} .*actual rows=(\d+)", plan)
    if not seen or int(seen.group(1)) != ROWS // 2:
        raise SystemExit(f"scan {name}: expected a seq scan returning {ROWS // 2} rows:\n{plan}")
    return float(re.search(r"Execution Time: ([\d.]+) ms", plan).group(1))


def least_disturbed(measure, tries=3):
    """Runs measure() (which returns a tuple ending in the other-CPU share) again while other
    processes took more than OTHER_CPU_WARN of the machine, at most `tries` times in all, and
    keeps the least disturbed result: a short build or test run beside us then costs a retry
    instead of a skewed sample."""
    best = measure()
    for _ in range(tries - 1):
        if best[-1] <= OTHER_CPU_WARN:
            break
        again = measure()
        if again[-1] < best[-1]:
            best = again
    return best


def summarize(samples):
    med = statistics.median(samples)
    return {"median": med, "min": min(samples), "max": max(samples), "samples": samples,
            "spread_pct": 100.0 * (max(samples) - min(samples)) / med if med else 0.0}


def distinct_limit(point, core, protocol):
    """L = 1 / (1/T_postgrest + t_verify/cores): the PostgREST-style transaction (with the same
    token-table lookup) plus one ES256 verification at openssl's rate, spread over the cores."""
    t_b = point[protocol]["b_postgrest_lookup"]["median"]
    return 1.0 / (1.0 / t_b + core["openssl_us"]["ES256"] * 1e-6 / os.cpu_count())


def targets(point, scan, core):
    rows = []

    def ratio(text, num, den, op, lim):
        """One target row; skipped when --only left out a configuration it compares."""
        try:
            rows.append((text, num() / den(), op, lim))
        except (KeyError, TypeError):
            pass

    for protocol in PROTOCOLS:
        p = point[protocol]
        for alg in ("HS256", "RS256", "ES256", "EdDSA"):
            c = lambda alg=alg: p[f"c_{alg.lower()}"]["median"]  # noqa: E731
            ratio(f"{protocol}: {alg} repeated >= 1.00x PostgREST-style", c, lambda: p["b_postgrest"]["median"], ">=", 1.00)
            if protocol == "prepared":
                ratio(f"prepared: {alg} repeated >= 0.90x SET LOCAL ROLE baseline", c,
                      lambda: p["a_baseline"]["median"], ">=", 0.90)
        ratio(f"{protocol}: 1,000 distinct ES256, no cache >= 0.90x L (openssl-bound limit)",
              lambda: p["c_es256_distinct"]["median"], lambda: distinct_limit(point, core, protocol), ">=", 0.90)
    pp = point["prepared"]
    ratio("prepared: realistic transaction >= 0.90x the same under SET LOCAL ROLE",
          lambda: pp["r_hs256"]["median"], lambda: pp["r_baseline"]["median"], ">=", 0.90)
    ratio("prepared: 100 tenants rotating >= 0.90x PostgREST-style rotating",
          lambda: pp["t_hs256"]["median"], lambda: pp["t_postgrest"]["median"], ">=", 0.90)
    for protocol in PROTOCOLS:
        p = point[protocol]
        ratio(f"{protocol}: beside a neighbour's DDL, ES256 >= 0.70x SET LOCAL ROLE beside it",
              lambda: p["c_es256_ddl"]["median"], lambda: p["a_baseline_ddl"]["median"], ">=", 0.70)
    for alg in ("ES256", "RS256"):
        ratio(f"core verify {alg} within 1.3x of openssl speed",
              lambda: core["criterion_us"][alg], lambda: core["openssl_us"][alg], "<=", 1.30)
    # tenant() is never folded into plans (a folded value would outlive its identity in cached
    # expressions), so the form protect_table() writes, an init plan, is the one held to a constant.
    ratio("scan, (SELECT tenant()) as protect_table writes it <= 1.05x literal",
          lambda: scan["guard_wrapped"]["median"], lambda: scan["literal"]["median"], "<=", 1.05)
    ratio("scan, JSON policy / (SELECT tenant()) >= 10x",
          lambda: scan["postgrest_json"]["median"], lambda: scan["guard_wrapped"]["median"], ">=", 10.0)
    for protocol in PROTOCOLS:
        p = point[protocol]
        hs = lambda: p["c_hs256"]["median"]  # noqa: E731
        ratio(f"{protocol}: isolation allow-lists cost <= 3% (locked / c_hs256 >= 0.97)",
              lambda: p["c_hs256_locked"]["median"], hs, ">=", 0.97)
        ratio(f"{protocol}: enforce_permissions costs <= 5% (d / c_hs256 >= 0.95)",
              lambda: p["d_hs256_enforce"]["median"], hs, ">=", 0.95)
        ratio(f"{protocol}: 100,000 revocations cost <= 3% (revoked / c_hs256 >= 0.97)",
              lambda: p["c_hs256_revoked"]["median"], hs, ">=", 0.97)
    return [{"target": t, "measured": round(m, 3), "op": op, "limit": lim,
             "pass": m >= lim if op == ">=" else m <= lim} for t, m, op, lim in rows]


LABELS = {
    "a_baseline": "(a) SET LOCAL ROLE, literal policy",
    "b_postgrest": "(b) PostgREST-style set_config + JSON",
    "c_hs256": "(c) authenticate HS256",
    "c_rs256": "(c) authenticate RS256",
    "c_es256": "(c) authenticate ES256",
    "c_eddsa": "(c) authenticate EdDSA",
    "b_postgrest_lookup": "(b) the same + token-table lookup",
    "c_es256_distinct": "(c) ES256, 1,000 distinct, no token cache",
    "c_es256_distinct_noaudit": "(c) the same, audit_log = off [info]",
    "c_es256_distinct_cached": "(c) ES256, 1,000 distinct, cached [info]",
    "c_hs256_noaudit": "(c) HS256, audit_log = off [info]",
    "c_hs256_locked": "(c) HS256, login role locked (isolation)",
    "d_hs256_enforce": "(d) HS256, enforce_permissions = on",
    "c_hs256_revoked": "(c) HS256, 100,000 revocations stored",
    "c_hs256_stmtaudit": "(c) HS256, audit_statements = on [info]",
    "c_hs256_fresh": "(c) HS256, a new token every transaction",
    "c_hs256_replay": "(c) the same, replay_protection on",
    "r_baseline": "(r) realistic tx, SET LOCAL ROLE",
    "r_hs256": "(r) realistic tx, authenticate HS256",
    "t_postgrest": "(t) 100 tenants, PostgREST-style",
    "t_hs256": "(t) 100 tenants, authenticate HS256",
    "a_baseline_ddl": "(a) SET LOCAL ROLE, neighbour DDL",
    "c_es256_ddl": "(c) ES256, neighbour DDL",
    "literal": "literal 'acme'",
    "postgrest_json": "current_setting(...)::json->>'tenant_id'",
    "guard": "jwt_guard.tenant()",
    "guard_wrapped": "(SELECT jwt_guard.tenant())",
}


def print_report(result):
    m = result["mode"]
    print()
    print(f"Point select under RLS, {ROWS:,} rows; pgbench -c {CLIENTS} -j {CLIENTS} -T {m['seconds']}, "
          f"{m['rounds']} interleaved rounds; median TPS in each protocol, ratios within the protocol")
    print(f"{'configuration':40s} {'simple':>7s} {'vs (a)':>6s} {'vs (b)':>6s} {'spread':>6s}  "
          f"{'prepared':>8s} {'vs (a)':>6s} {'vs (b)':>6s} {'spread':>6s} {'prep/simple':>11s} {'other CPU':>9s}")
    point = result["point_select"]
    for name in point["simple"]:
        cells = []
        for protocol in PROTOCOLS:
            p = point[protocol]
            s = p[name]
            cells.append(f"{s['median']:{7 if protocol == 'simple' else 8}.0f} {s['median'] / p['a_baseline']['median']:5.2f}x "
                         f"{s['median'] / p['b_postgrest']['median']:5.2f}x {s['spread_pct']:5.1f}%")
        ratio = point["prepared"][name]["median"] / point["simple"][name]["median"]
        other = max(point[p][name]["other_cpu_max"] for p in PROTOCOLS)
        print(f"{LABELS[name]:40s} {cells[0]}  {cells[1]} {ratio:10.2f}x {100 * other:8.0f}%")
    core = result.get("core")
    if core:
        print()
        print("1,000 distinct ES256 tokens against the openssl-bound limit L = 1 / (1/T_(b)+lookup + t_verify/cores)")
        for protocol in PROTOCOLS:
            if "c_es256_distinct" not in point[protocol]:
                continue
            limit = distinct_limit(point, core, protocol)
            measured = point[protocol]["c_es256_distinct"]["median"]
            quiet = point[protocol].get("c_es256_distinct_noaudit", {}).get("median")
            extra = f"; without the audit line {quiet:7.0f} TPS: {quiet / limit:.2f}x" if quiet else ""
            print(f"  {protocol:9s} measured {measured:7.0f} TPS, L {limit:7.0f} TPS: {measured / limit:.2f}x{extra}")
        print()
        print("Core verification (parse + signature + claims, criterion median) beside openssl speed verify, µs")
        for alg, us in sorted(core["criterion_us"].items()):
            bound = core["openssl_us"].get(alg)
            extra = f"   openssl {bound:6.1f}   {us / bound:.2f}x" if bound else ""
            print(f"  {alg:6s} core {us:6.1f}{extra}")
    mem = result.get("memory")
    if mem:
        print()
        print(f"Memory: one backend, {mem['tokens']:,} distinct tokens authenticated: private memory "
              f"{mem['before_kb']:,} kB -> {mem['after_kb']:,} kB (+{mem['growth_kb']:,} kB); stated bound "
              f"token_cache_size x max_token_bytes = {mem['token_cache_size']} x {mem['max_token_bytes']} B = "
              f"{mem['bound_kb']:,} kB")
    scan = result["scan"]
    if scan:
        print_scans(m, scan)
    worst = result["other_cpu_max"]
    if worst > OTHER_CPU_WARN:
        print(f"\nWARNING: other processes used up to {100 * worst:.0f}% of the CPU during a measurement "
              "(column 'other CPU'; scans: {:.0f}%). Those numbers are skewed: rerun on an idle machine."
              .format(100 * result["scan_other_cpu"]))
    print()
    print("Targets (ratios of medians from this run)")
    for t in result["targets"]:
        print(f"  {'PASS' if t['pass'] else 'MISS'}  {t['target']:72s} measured {t['measured']:.2f}x")


def print_scans(m, scan):
    print()
    print(f"Serial scan, count(*) over {ROWS:,} rows ({ROWS // 2:,} visible), EXPLAIN (ANALYZE, TIMING OFF), "
          f"{m['scan_rounds']} rounds, interleaved; median execution time")
    print(f"{'policy':42s} {'ms':>8s} {'spread':>7s} {'vs literal':>10s} {'min ms':>8s} {'samples':>7s}")
    lit = scan["literal"]["median"]
    for name, s in scan.items():
        print(f"{LABELS[name]:42s} {s['median']:8.1f} {s['spread_pct']:6.1f}% {s['median'] / lit:9.2f}x "
              f"{s['min']:8.1f} {len(s['samples']):7d}")


def provenance():
    """What was measured: the commit of this tree and the installed library (another build may
    have replaced it since the last run)."""
    lib = "/usr/lib/postgresql/15/lib/pg_jwt_guard.so"
    with open(lib, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:16]
    git = lambda *a: subprocess.run(["git", "-C", HERE, *a], capture_output=True, text=True).stdout.strip()  # noqa: E731
    return {"commit": git("rev-parse", "--short", "HEAD"), "tree_dirty": bool(git("status", "--porcelain")),
            "library_sha256": digest,
            "library_mtime": datetime.datetime.fromtimestamp(os.path.getmtime(lib)).isoformat(timespec="seconds")}


# What a configuration is compared to: --only runs these as well.
COMPARED_TO = {
    "c_es256_distinct": {"b_postgrest_lookup"}, "c_es256_distinct_cached": {"b_postgrest_lookup"},
    "c_es256_distinct_noaudit": {"b_postgrest_lookup", "c_es256_distinct"},
    "c_hs256_noaudit": {"c_hs256"}, "c_hs256_locked": {"c_hs256"}, "d_hs256_enforce": {"c_hs256"},
    "c_hs256_revoked": {"c_hs256"}, "c_hs256_stmtaudit": {"c_hs256"}, "c_hs256_replay": {"c_hs256_fresh"},
    "r_hs256": {"r_baseline"}, "t_hs256": {"t_postgrest"}, "c_es256_ddl": {"a_baseline_ddl"},
}


def selected(only):
    """The configurations --only names, with the baselines every ratio needs."""
    if not only:
        return None
    names = {n.strip() for n in only.split(",") if n.strip()}
    unknown = names - set(LABELS)
    if unknown:
        raise SystemExit(f"--only: unknown configuration(s) {', '.join(sorted(unknown))}; known: "
                         + ", ".join(n for n in LABELS if n not in SCANS))
    for n in list(names):
        names |= COMPARED_TO.get(n, set())
    return names | {"a_baseline", "b_postgrest"}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer, shorter rounds (about 12 minutes in all)")
    ap.add_argument("--rounds", type=int, help="interleaved rounds (overrides the mode's)")
    ap.add_argument("--seconds", type=int, help="seconds per pgbench run (overrides the mode's)")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "latest.json"))
    ap.add_argument("--no-core", action="store_true", help="skip criterion and openssl speed")
    ap.add_argument("--no-memory", action="store_true", help=f"skip the {MEMORY_TOKENS:,}-token memory check")
    ap.add_argument("--only", help="comma-separated configurations (with what they are compared to); no scans, "
                    "no memory check, no driver")
    ap.add_argument("--keep", action="store_true", help="leave the cluster running at the end (for a profiler)")
    args = ap.parse_args()
    only = selected(args.only)
    if only:
        args.no_memory = True
    mode_name = "quick" if args.quick else "full"
    mode = dict(MODES[mode_name])
    for key in ("rounds", "seconds"):
        if getattr(args, key):
            mode[key] = getattr(args, key)
    started = time.time()
    source = provenance()

    core = core_figures(args.no_core)
    keys = make_keys()
    memory = None
    c = BenchCluster()
    workdir = tempfile.mkdtemp(prefix="jwt_guard_bench_")
    try:
        c.start(preload=True, extra=CONF)
        try:
            print(f"==> cluster in {c.dir} on port {c.port}; loading {len(POLICIES)} x {ROWS:,} rows", flush=True)
            needs_fresh = not only or only & {"c_hs256_fresh", "c_hs256_replay"}
            tokens, postgrest_claims = setup(c, keys, FRESH_TOKENS[mode_name] if needs_fresh else 1000)
            sanity_check(c, tokens, postgrest_claims)
            print(f"==> setup and checks done in {time.time() - started:.0f} s", flush=True)
            meter = CpuMeter(c)

            paths = {}
            for name, (role, text) in scripts(tokens, postgrest_claims).items():
                if only and name not in only:
                    continue
                paths[name] = (role, os.path.join(workdir, f"{name}.sql"))
                with open(paths[name][1], "w") as f:
                    f.write(text)

            # One short unmeasured pass: backends' caches warm up, and a broken script fails here
            # rather than in the last round.
            runs = [(name, protocol) for name in paths for protocol in PROTOCOLS]
            for name, protocol in runs:
                pgbench(c, paths[name][0], paths[name][1], 1, meter, protocol)

            samples = {run: [] for run in runs}  # (tps, latency ms, other CPU share)
            for r in range(mode["rounds"]):
                for name, protocol in random.sample(runs, len(runs)):
                    samples[(name, protocol)].append(least_disturbed(
                        lambda: pgbench(c, paths[name][0], paths[name][1], mode["seconds"], meter, protocol)))
                print(f"==> round {r + 1}/{mode['rounds']}: " +
                      ", ".join(f"{n}/{p[0]} {samples[(n, p)][-1][0]:.0f}" for n, p in runs), flush=True)

            times = {name: [] for name in SCANS} if not only else {}
            scan_other_cpu = 0.0
            with c.connect(user="bench") as conn:
                for name in times:  # warm-up, unmeasured
                    scan_ms(conn, name, tokens["ES256"], postgrest_claims)
                # This VM's host slows everything down by up to 1.8x for a second or so at a time,
                # unseen in /proc. The ~0.1 s scans therefore run FAST_SCAN_REPEATS times a round
                # (the ~2 s JSON scan once), so that such a phase spoils a minority of the samples.
                plan = ["postgrest_json"] + [n for n in SCANS if n != "postgrest_json"] * FAST_SCAN_REPEATS
                for _ in range(mode["scan_rounds"] if times else 0):
                    def scan_round():  # the CPU meter's 10 ms ticks are too coarse for one scan
                        meter.start()
                        ms = [(n, scan_ms(conn, n, tokens["ES256"], postgrest_claims))
                              for n in random.sample(plan, len(plan))]
                        return ms, meter.foreign_share()
                    ms, other = least_disturbed(scan_round)
                    scan_other_cpu = max(scan_other_cpu, other)
                    for name, v in ms:
                        times[name].append(v)
            if not args.no_memory:
                print(f"==> memory after {MEMORY_TOKENS:,} distinct tokens", flush=True)
                try:
                    memory = memory_after_tokens(c, keys)
                except Exception as e:  # noqa: BLE001 - the measurements above are kept
                    print(f"memory check failed: {e!r}", flush=True)
            with c.connect() as conn:
                server = conn.execute("SELECT version()").fetchone()[0]
            if args.keep:
                print(f"==> --keep: cluster left running: {PGBENCH} -h {c.dir} -p {c.port} -U bench; scripts in {workdir}; "
                      f"stop it with: runuser -u postgres -- {scenarios.PGBIN}/pg_ctl -D {c.data} stop -m fast; rm -rf {c.dir} {workdir}", flush=True)
        finally:
            if not args.keep:
                c.stop()
    finally:
        if not args.keep:
            c.remove()
            subprocess.run(["rm", "-rf", workdir])

    point = {protocol: {} for protocol in PROTOCOLS}
    for (name, protocol), runs in samples.items():
        entry = point[protocol][name] = summarize([t for t, _, _ in runs])
        entry["latency_ms"] = statistics.median(lat for _, lat, _ in runs)
        entry["other_cpu"] = [round(o, 3) for _, _, o in runs]
        entry["other_cpu_max"] = max(o for _, _, o in runs)
    scan = {name: summarize(v) for name, v in times.items()}
    result = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "mode": dict(mode, name=mode_name),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "server": server},
        "source": source,
        "rows": ROWS, "clients": CLIENTS, "distinct_tokens": DISTINCT_TOKENS,
        "point_select": point, "scan": scan,
        "only": sorted(only) if only else None,
        "ratios_vs_a": {p: {k: v["median"] / point[p]["a_baseline"]["median"] for k, v in point[p].items()}
                        for p in PROTOCOLS},
        "ratios_vs_b": {p: {k: v["median"] / point[p]["b_postgrest"]["median"] for k, v in point[p].items()}
                        for p in PROTOCOLS},
        "scan_ratios_vs_literal": {k: v["median"] / scan["literal"]["median"] for k, v in scan.items()},
        "scan_other_cpu": scan_other_cpu,
        "other_cpu_max": max([scan_other_cpu] + [v["other_cpu_max"] for p in PROTOCOLS for v in point[p].values()]),
        "core": core, "memory": memory,
    }
    result["targets"] = targets(point, scan, core)
    result["seconds"] = round(time.time() - started, 1)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    print_report(result)
    print(f"\n{mode_name} run took {result['seconds']:.0f} s; commit {source['commit']}"
          f"{' (uncommitted changes)' if source['tree_dirty'] else ''}, library sha256 {source['library_sha256']} "
          f"({source['library_mtime']}); JSON: {os.path.relpath(args.out)}")


if __name__ == "__main__":
    main()
