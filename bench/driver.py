"""pg_jwt_guard through a real driver: psycopg 3 with psycopg_pool, against the PostgREST-style
set_config pattern, on a throw-away cluster of its own (port 58445, beside bench.py's 58440).

4 client threads share a pool of 4 connections; each client alternates between the tenants acme
and globex from one transaction to the next, and takes a connection from the pool per transaction:
  c_hs256, c_es256   BEGIN; SELECT jwt_guard.authenticate(%s); SELECT payload FROM items_guard WHERE id = %s; COMMIT
  b_postgrest        BEGIN; SELECT set_config('role', 'app_user', true), set_config('request.jwt.claims', %s, true);
                     SELECT payload FROM items_json WHERE id = %s; COMMIT
psycopg prepares a statement on a connection after 5 executions (prepare_threshold=5, its
default): these run as server-side named prepared statements over the extended protocol, what an
application with a pool sends. Under a token named statements need
pg_jwt_guard.statement_prefixes = '*' for the login role, the setting the docs give for direct
connections. The same three with prepare_threshold=None (unnamed statements, what the default
statement_prefixes or an old pgbouncer needs) are reported as [info].

Configurations run interleaved, in a new shuffled order each round; we report medians over the
rounds and ratios of medians from this run. Nothing here asserts on timing: the exit status is
non-zero only when something broke.

    python3 bench/driver.py [--seconds N] [--rounds R]
"""

import argparse
import base64
import datetime
import json
import os
import platform
import random
import resource
import statistics
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import bench  # noqa: E402  (also puts tests/tools on the path)
from bench import CONF, BenchCluster, CpuMeter, OTHER_CPU_WARN, least_disturbed, make_keys, summarize, token_claims  # noqa: E402

import psycopg  # noqa: E402

try:
    import psycopg_pool
    from psycopg_pool import ConnectionPool
except ImportError:
    raise SystemExit("driver: the Python package psycopg-pool is missing; install it with\n"
                     "    python3 -m pip install psycopg-pool\nand run again.")

ROWS = 100_000
CLIENTS = 4  # threads, sharing a pool of as many connections
TENANTS = ("acme", "globex")  # even ids belong to acme, odd ids to globex
ALGS = ("HS256", "ES256")
POLICIES = {
    "items_guard": "tenant_id = (SELECT jwt_guard.tenant())",  # as protect_table() writes it
    "items_json": "tenant_id = current_setting('request.jwt.claims', true)::json->>'tenant_id'",
}
STATEMENT_PREFIXES = "*"
AUTHENTICATE = "SELECT jwt_guard.authenticate(%s)"
SET_CLAIMS = "SELECT set_config('role', 'app_user', true), set_config('request.jwt.claims', %s, true)"


class DriverCluster(BenchCluster):
    port = 58445  # not the tests' 58433/58434 nor bench.py's 58440: all can run at once


class DriverCpuMeter(CpuMeter):
    """bench.CpuMeter counts the cluster and pgbench (a child process) as ours; here the clients
    are threads of this process, so their CPU time is ours too."""

    def _read(self):
        t, busy, ours = super()._read()
        me = resource.getrusage(resource.RUSAGE_SELF)
        return t, busy, ours + me.ru_utime + me.ru_stime


def guard_tx(conn, token, item):
    with conn.transaction():
        conn.execute(AUTHENTICATE, (token,))
        return conn.execute("SELECT payload FROM items_guard WHERE id = %s", (item,)).fetchone()


def postgrest_tx(conn, claims, item):
    with conn.transaction():
        conn.execute(SET_CLAIMS, (claims,))
        return conn.execute("SELECT payload FROM items_json WHERE id = %s", (item,)).fetchone()


def payload_json(token):
    """The token's claims as JSON text: what PostgREST would put into request.jwt.claims."""
    part = token.split(".")[1]
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)).decode()


def configurations(tokens):
    """name -> (label, transaction, credential per tenant, prepared)."""
    claims = tuple(payload_json(t) for t in tokens["HS256"])
    configs = {}
    for prepared, suffix in ((True, ""), (False, "_unprepared")):
        info = "" if prepared else " [info]"
        mode = "prepared" if prepared else "unprepared"
        for alg in ALGS:
            configs[f"c_{alg.lower()}{suffix}"] = (f"(c) authenticate() {alg}, {mode}{info}", guard_tx,
                                                   tokens[alg], prepared)
        configs[f"b_postgrest{suffix}"] = (f"(b) PostgREST-style set_config, {mode}{info}", postgrest_tx,
                                           claims, prepared)
    return configs


def setup(c, keys):
    """Extension, roles, one table per policy, the two keys; returns alg -> token per tenant."""
    now = int(time.time())
    tokens = {alg: tuple(keys[alg][0].token(**token_claims(now, tenant_id=t))
                         for t in TENANTS) for alg in ALGS}
    with c.connect() as conn:
        x = conn.execute
        x("CREATE EXTENSION pg_jwt_guard")
        x("CREATE ROLE app_user NOLOGIN")
        # Membership: PostgREST's set_config('role') needs it (authenticate() does not). Not in
        # pg_jwt_guard.login_roles, so the session is not locked and may use named statements.
        x("CREATE ROLE bench LOGIN NOINHERIT IN ROLE app_user")
        # Under a token only named statements whose names match statement_prefixes run (default:
        # pgbouncer's). The pool here connects directly, one client per backend at a time, which
        # is the case the docs set '*' for; psycopg names its statements _pg3_<n>.
        x(f"ALTER ROLE bench SET pg_jwt_guard.statement_prefixes = '{STATEMENT_PREFIXES}'")
        for table, using in POLICIES.items():
            x(f"CREATE TABLE {table} (id int PRIMARY KEY, tenant_id text NOT NULL, payload text NOT NULL)")
            x(f"INSERT INTO {table} SELECT g, CASE WHEN g % 2 = 0 THEN 'acme' ELSE 'globex' END, md5(g::text) "
              f"FROM generate_series(1, {ROWS}) g")
            x(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
            x(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
            x(f"CREATE POLICY tenant ON {table} USING ({using})")
            x(f"GRANT SELECT ON {table} TO app_user")
        for alg in ALGS:
            minter, key_text = keys[alg]
            x("SELECT jwt_guard.add_key(%s, %s, %s)", (minter.kid, alg, key_text))
        # Frozen, analysed and read once, so no run pays for hint bits or first reads.
        x("VACUUM (FREEZE, ANALYZE)")
        for table in POLICIES:
            x(f"SELECT count(*) FROM {table}")
    return tokens


def open_pool(c, prepared):
    # autocommit: conn.transaction() then sends BEGIN and COMMIT itself, and a connection between
    # transactions is idle, never left inside one.
    kwargs = {"autocommit": True, "prepare_threshold": 5 if prepared else None}
    pool = ConnectionPool(f"host={c.dir} port={c.port} user=bench dbname=postgres", min_size=CLIENTS,
                          max_size=CLIENTS, kwargs=kwargs, open=True)
    pool.wait(timeout=30)
    return pool


def run(pool, tx, creds, seconds, meter):
    """CLIENTS threads run transactions for `seconds`; returns (TPS, client CPU share, other CPU share)."""
    counts, errors = [0] * CLIENTS, []
    start = threading.Barrier(CLIENTS + 1)
    deadline = [0.0]

    def client(i):
        rng = random.Random()
        start.wait()
        n = 0
        try:
            while time.monotonic() < deadline[0]:
                with pool.connection() as conn:
                    tx(conn, creds[(i + n) % 2], rng.randint(1, ROWS))
                n += 1
        except Exception as e:  # noqa: BLE001 - reported after the join, without the token
            errors.append(e)
        counts[i] = n

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    meter.start()
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.monotonic()
    deadline[0] = t0 + seconds
    start.wait()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0  # to the end of the last transaction, which may pass the deadline
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    foreign = meter.foreign_share()
    if errors:
        raise RuntimeError(f"{len(errors)} client(s) failed: {errors[0]!r}")
    client_cpu = (cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime) / (elapsed * os.cpu_count())
    return sum(counts) / elapsed, client_cpu, foreign


def check(pool, tx, creds, prepared):
    """Through the pool, after warm-up (so by now through prepared statements where prepared):
    each tenant sees its own id and not the other's, the role ends with the transaction, and
    the statements are prepared on the server exactly when they should be."""
    for tenant, cred in zip(TENANTS, creds):
        own, other = (2, 1) if tenant == "acme" else (1, 2)
        for _ in range(CLIENTS):  # likely every connection of the pool
            with pool.connection() as conn:
                seen = [tx(conn, cred, own) is not None, tx(conn, cred, other) is not None]
                if seen != [True, False]:
                    return f"{tenant}: own id {own} / other id {other} visible {seen}, expected [True, False]"
                user = conn.execute("SELECT current_user").fetchone()[0]
                if user != "bench":
                    return f"after the transaction current_user is {user}, expected bench"
                n = conn.execute("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s",
                                 ("%FROM items_%",)).fetchone()[0]
                if (n > 0) != prepared:
                    return f"{n} server-side prepared select(s) on a {'prepared' if prepared else 'unprepared'} pool"
    return None


def redact(text, tokens):
    for pair in tokens.values():
        for t in pair:
            text = text.replace(t, "<token>")
    return text


def print_report(result):
    m = result["mode"]
    print()
    print(f"Point select under RLS, {ROWS:,} rows; psycopg {result['driver']['psycopg']} ({result['driver']['impl']}) "
          f"+ psycopg_pool {result['driver']['psycopg_pool']}, {CLIENTS} threads sharing {CLIENTS} connections, "
          f"{m['rounds']} interleaved rounds of {m['seconds']} s; median TPS")
    print(f"{'configuration':50s} {'TPS':>7s} {'spread':>7s} {'vs (b)':>7s} {'client CPU':>10s} {'other CPU':>9s}")
    for name, s in result["configs"].items():
        print(f"{s['label']:50s} {s['median']:7.0f} {s['spread_pct']:6.1f}% {s['vs_b']:6.2f}x "
              f"{100 * s['client_cpu']:9.0f}% {100 * s['other_cpu_max']:8.0f}%")
    print("vs (b): against the PostgREST-style row of the same mode. client CPU: this Python process's share "
          f"of all {os.cpu_count()} cores (it competes with the server for them).")
    print(f"prepared: psycopg's named statements, allowed under a token by pg_jwt_guard.statement_prefixes = "
          f"'{STATEMENT_PREFIXES}' for the login role (direct connections); unprepared: unnamed statements.")
    if result["other_cpu_max"] > OTHER_CPU_WARN:
        print(f"\nWARNING: other processes used up to {100 * result['other_cpu_max']:.0f}% of the CPU during a "
              "measurement (column 'other CPU'). Those numbers are skewed: rerun on an idle machine.")


def print_verdict(result):
    # The prepared line last: that is what an application with a pool sends.
    for mode, tag in (("unprepared", "[info] "), ("prepared", "")):
        r = result["ratios"][mode]
        print(f"{tag}driver: authenticate/PostgREST-style = {r['HS256']:.2f}x HS256, {r['ES256']:.2f}x ES256 "
              f"(psycopg 3 + psycopg_pool, {CLIENTS} clients, {mode})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5, help="length of one measured run (default 5)")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    args = ap.parse_args()
    if args.seconds <= 0 or args.rounds < 1:
        ap.error("--seconds must be > 0 and --rounds >= 1")
    started = time.time()
    source = bench.provenance()

    keys = make_keys()
    c = DriverCluster()
    pools = {}
    tokens = {}
    try:
        c.start(preload=True, extra=CONF)
        try:
            print(f"==> cluster in {c.dir} on port {c.port}; loading {len(POLICIES)} x {ROWS:,} rows", flush=True)
            tokens = setup(c, keys)
            configs = configurations(tokens)
            meter = DriverCpuMeter(c)
            for name, (_, tx, creds, prepared) in configs.items():
                pools[name] = open_pool(c, prepared)
                run(pools[name], tx, creds, 1, meter)  # warm-up, unmeasured: caches, prepared statements
                problem = check(pools[name], tx, creds, prepared)
                if problem:
                    raise SystemExit(f"check {name}: {problem}")
            print(f"==> setup, warm-up and checks done in {time.time() - started:.0f} s", flush=True)

            samples = {name: [] for name in configs}  # (tps, client CPU, other CPU)
            for r in range(args.rounds):
                for name in random.sample(list(configs), len(configs)):
                    _, tx, creds, _ = configs[name]
                    samples[name].append(least_disturbed(lambda: run(pools[name], tx, creds, args.seconds, meter)))
                print(f"==> round {r + 1}/{args.rounds}: " +
                      ", ".join(f"{n} {samples[n][-1][0]:.0f}" for n in configs), flush=True)
            with c.connect() as conn:
                server = conn.execute("SELECT version()").fetchone()[0]
        finally:
            for pool in pools.values():
                pool.close()
            c.stop()
    except RuntimeError as e:  # a client's error: may quote what the server said, never a token
        raise SystemExit(f"driver failed: {redact(str(e), tokens)}")
    finally:
        c.remove()

    result = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "mode": {"rounds": args.rounds, "seconds": args.seconds},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "server": server},
        "source": source,
        "driver": {"psycopg": psycopg.__version__, "psycopg_pool": psycopg_pool.__version__,
                   "impl": psycopg.pq.__impl__, "libpq": psycopg.pq.version()},
        "rows": ROWS, "clients": CLIENTS, "pool_size": CLIENTS, "prepare_threshold": 5,
        "statement_prefixes": STATEMENT_PREFIXES,
        "configs": {},
    }
    for name, runs in samples.items():
        label, _, _, prepared = configs[name]
        s = summarize([t for t, _, _ in runs])
        s.update(label=label, prepared=prepared,
                 client_cpu=statistics.median(cl for _, cl, _ in runs),
                 other_cpu=[round(o, 3) for _, _, o in runs], other_cpu_max=max(o for _, _, o in runs))
        result["configs"][name] = s
    for name, s in result["configs"].items():
        s["vs_b"] = s["median"] / result["configs"]["b_postgrest" + ("" if s["prepared"] else "_unprepared")]["median"]
    result["ratios"] = {mode: {alg: result["configs"][f"c_{alg.lower()}{suffix}"]["vs_b"] for alg in ALGS}
                        for mode, suffix in (("prepared", ""), ("unprepared", "_unprepared"))}
    result["other_cpu_max"] = max(s["other_cpu_max"] for s in result["configs"].values())
    result["seconds"] = round(time.time() - started, 1)

    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = os.path.join(HERE, "results", f"driver-{stamp}.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump(result, f, indent=2)
    print_report(result)
    print(f"\nrun took {result['seconds']:.0f} s; commit {source['commit']}"
          f"{' (uncommitted changes)' if source['tree_dirty'] else ''}, library sha256 {source['library_sha256']} "
          f"({source['library_mtime']}); JSON: {os.path.relpath(out)}\n")
    print_verdict(result)


if __name__ == "__main__":
    main()
