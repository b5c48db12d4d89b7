"""Scenario checks for the way applications really connect:

- behind pgbouncer in transaction mode, where one server backend serves many clients in turn,
  no role, claim or row visibility survives from one transaction into the next: the check records
  which clients each backend served, in the server's order, and requires hand-overs from one
  client's tenant to another client's other tenant on the same backend;
- a token passed as a bind parameter does not show up in pg_stat_activity (a literal does).

Each check returns None on success or a one-line reason; scenarios.run_all reports them.
"""

import os
import pwd
import signal
import subprocess
import threading
import time
from collections import defaultdict
from typing import Optional

import psycopg
from psycopg import sql

import scenarios

PGBOUNCER = "/usr/sbin/pgbouncer"
POOLER_PORT = 58434  # next to the cluster's 58433; loopback only
POOL_SIZE = 3  # server connections, shared by all clients

PGBOUNCER_INI = """\
[databases]
postgres = host={socket_dir} port={pg_port} dbname=postgres user=authenticator

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
; no Unix socket: it would land in /tmp and could clash with a real pgbouncer
unix_socket_dir =
logfile = {dir}/pgbouncer.log
pidfile = {dir}/pgbouncer.pid
auth_type = trust
auth_file = {dir}/userlist.txt
pool_mode = transaction
; few server connections for many clients, so backends are handed from client to client
default_pool_size = {pool_size}
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = 100
; no DISCARD ALL between clients: the extension alone must end the identity
server_reset_query =
ignore_startup_parameters = extra_float_digits,options
"""

EXPECTED_ROWS = {"acme": 200, "globex": 100}  # setup_db: g % 3 = 0 is globex

# One query per transaction, so the check costs few round trips and sees everything at once. The
# backend's pid and clock order the transactions each backend served.
STATE_SQL = ("SELECT current_user, session_user, jwt_guard.tenant(), jwt_guard.sub(), "
             "jwt_guard.is_authenticated(), has_table_privilege('orders', 'SELECT'), "
             "pg_backend_pid(), clock_timestamp()")
# Before a token the session may call only the extension's functions and a few built-ins.
ANON_STATE_SQL = ("SELECT current_user, session_user, jwt_guard.tenant(), jwt_guard.sub(), "
                  "jwt_guard.is_authenticated(), pg_backend_pid(), clock_timestamp()")
ROWS_SQL = "SELECT tenant_id, count(*) FROM orders GROUP BY 1 ORDER BY 1"


def _start_pgbouncer(cluster):
    """Writes the config into the cluster's directory (removed with it) and starts pgbouncer
    in the foreground, in its own process group so that a stuck one can be killed by that id."""
    pg = pwd.getpwnam("postgres")
    pb_dir = os.path.join(cluster.dir, "pgbouncer")
    os.makedirs(pb_dir, exist_ok=True)
    with open(os.path.join(pb_dir, "pgbouncer.ini"), "w") as f:
        f.write(PGBOUNCER_INI.format(socket_dir=cluster.dir, pg_port=scenarios.PORT,
                                     port=POOLER_PORT, dir=pb_dir, pool_size=POOL_SIZE))
    # trust still needs the user to be listed; the password field is unused
    with open(os.path.join(pb_dir, "userlist.txt"), "w") as f:
        f.write('"authenticator" ""\n')
    for name in ("", "pgbouncer.ini", "userlist.txt"):
        os.chown(os.path.join(pb_dir, name), pg.pw_uid, pg.pw_gid)
    # pgbouncer refuses to run as root
    proc = subprocess.Popen(["runuser", "-u", "postgres", "--", PGBOUNCER,
                             os.path.join(pb_dir, "pgbouncer.ini")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    return proc, pb_dir


def _stop_pgbouncer(proc, pb_dir):
    if proc.poll() is not None:
        return
    # Signal pgbouncer itself (its pidfile): runuser, when signalled, waits 2 s before it returns.
    try:
        with open(os.path.join(pb_dir, "pgbouncer.pid")) as f:
            os.kill(int(f.read().strip()), signal.SIGTERM)
        proc.wait(timeout=10)
    except (OSError, ValueError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)  # our own process group: runuser and pgbouncer
        proc.wait()


def _log_tail(pb_dir):
    try:
        with open(os.path.join(pb_dir, "pgbouncer.log"), errors="replace") as f:
            lines = f.read().strip().splitlines()
        return lines[-1] if lines else "(empty log)"
    except OSError:
        return "(no log)"


def _pooler_connect():
    # prepare_threshold=None: server-side prepared statements do not survive a backend switch
    return psycopg.connect(host="127.0.0.1", port=POOLER_PORT, user="authenticator",
                           dbname="postgres", autocommit=False, prepare_threshold=None,
                           connect_timeout=5)


def check_pgbouncer_transaction_pooling(cluster, env, clients=16, per_client=330) -> Optional[str]:
    tokens = {"acme": env["TOK_TENANT_ACME"], "globex": env["TOK_TENANT_GLOBEX"]}
    subs = {"acme": "alice", "globex": "bob"}
    errors = []
    # backend pid -> [(the backend's clock, client number, tenant or None)], one per transaction
    served = defaultdict(list)
    done = [0]
    lock = threading.Lock()

    def one_transaction(conn, tenant, ending):
        if tenant:
            conn.execute("SELECT jwt_guard.authenticate(%s)", (tokens[tenant],))
            state = conn.execute(STATE_SQL).fetchone()
        else:
            state = conn.execute(ANON_STATE_SQL).fetchone()
        pid, at, state = state[-2], state[-1], state[:-2]
        if tenant:
            want = ("app_user", "authenticator", tenant, subs[tenant], True, True)
            rows = conn.execute(ROWS_SQL).fetchall()
            if state != want or rows != [(tenant, EXPECTED_ROWS[tenant])]:
                return pid, at, f"{tenant} txn on pid {pid} saw {state} rows {rows}"
        else:
            # the login role alone: no role, no claims, no table access
            want = ("authenticator", "authenticator", None, None, False)
            if state != want:
                return pid, at, f"unauthenticated txn on pid {pid} saw {state}"
            conn.execute("SAVEPOINT probe")
            try:
                conn.execute(ROWS_SQL)
                return pid, at, f"unauthenticated txn on pid {pid} read orders"
            except psycopg.errors.InsufficientPrivilege:
                conn.execute("ROLLBACK TO SAVEPOINT probe")
        if ending == "commit":
            conn.commit()
        elif ending == "rollback":
            conn.rollback()
        else:
            # an aborted transaction: the backend goes back to the pool only after ROLLBACK
            try:
                conn.execute("SELECT 1/0")
                return pid, at, "division by zero did not fail"
            except psycopg.errors.DivisionByZero:
                conn.rollback()
        return pid, at, None

    def client(n):
        try:
            with _pooler_connect() as conn:
                for i in range(per_client):
                    # the offsets make neighbouring clients differ, so a backend sees every mix
                    tenant = ["acme", None, "globex"][(n + i) % 3]
                    ending = ["commit", "rollback", "error"][(n + i // 3) % 3]
                    pid, at, problem = one_transaction(conn, tenant, ending)
                    with lock:
                        served[pid].append((at, n, tenant))
                        done[0] += 1
                        if problem:
                            errors.append(problem)
                    if problem:
                        conn.rollback()
        except Exception as e:  # noqa: BLE001 - any failure is a test failure
            with lock:
                errors.append(f"client {n}: {e!r}")

    proc, pb_dir = _start_pgbouncer(cluster)
    try:
        deadline = time.time() + 10
        while True:
            try:
                with _pooler_connect() as conn:
                    conn.execute("SELECT 1")
                break
            except psycopg.OperationalError as e:
                if proc.poll() is not None or time.time() > deadline:
                    return f"pgbouncer did not start: {e}; log: {_log_tail(pb_dir)}"
                time.sleep(0.1)
        started = time.time()
        threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=max(1, 90 - (time.time() - started)))
        if any(t.is_alive() for t in threads):
            return "clients still running after 90 s (pgbouncer or backend stuck?)"
        took = time.time() - started
    finally:
        _stop_pgbouncer(proc, pb_dir)

    if errors:
        return f"{len(errors)} leaks or errors, first: {errors[0]}"
    if done[0] != clients * per_client:
        return f"{done[0]} transactions ran, not {clients * per_client}"
    if len(served) != POOL_SIZE:
        return f"{len(served)} server backends served the clients, not the pool's {POOL_SIZE}"
    # In each backend's own order: a hand-over is a transaction of one tenant followed by one of
    # the other tenant from another client. Both passed their checks above (own role, claims and
    # rows only), so the second client saw nothing of the first.
    shared = handovers = 0
    for txns in served.values():
        txns.sort()
        kinds = {tenant for _, _, tenant in txns}
        if kinds == {"acme", "globex", None} and len({n for _, n, _ in txns}) > 1:
            shared += 1
        handovers += sum(1 for (_, n1, t1), (_, n2, t2) in zip(txns, txns[1:])
                         if t1 and t2 and t1 != t2 and n1 != n2)
    if shared != POOL_SIZE:
        return (f"only {shared} of {POOL_SIZE} backends served several clients and acme, globex and "
                f"unauthenticated transactions")
    if handovers == 0:
        return "no backend went from one client's tenant straight to another client's other tenant"
    print(f"  pgbouncer: {done[0]} transactions from {clients} clients in {took:.1f} s through "
          f"{len(served)} server backends, each serving several clients and all three kinds; "
          f"{handovers} hand-overs from one client's tenant to another's; 0 leaks")
    return None


def check_token_not_in_pg_stat_activity(cluster, env) -> Optional[str]:
    """Another client of the same login role cannot read a token from pg_stat_activity: before a
    token it may read no table at all, under one it is a role that sees no other session's
    query. A superuser sees the literal, which proves the check could see it."""
    token = env["TOK_TENANT_GLOBEX"]
    signature = token.split(".")[2]
    literal = sql.SQL("SELECT jwt_guard.verify({})").format(sql.Literal(token))
    activity = "SELECT query FROM pg_stat_activity WHERE pid = %s"
    with cluster.connect(user="authenticator", autocommit=False) as a, \
            cluster.connect(user="authenticator", autocommit=False) as b, \
            cluster.connect(user="postgres") as admin:
        a_pid = a.execute("SELECT pg_backend_pid()").fetchone()[0]
        a.execute(literal)  # A stays idle in transaction with the token in its statement text
        seen = admin.execute(activity, (a_pid,)).fetchone()[0]
        if token not in seen:
            return f"superuser does not see the literal token, so the check proves nothing: {seen[:40]!r}"
        try:
            b.execute(activity, (a_pid,))
            return "an unauthenticated session of the login role read pg_stat_activity"
        except psycopg.errors.InsufficientPrivilege:
            b.rollback()
        for query in ("SELECT pg_stat_get_backend_activity(s) FROM pg_stat_get_backend_idset() s",
                      "SELECT pg_stat_get_activity(NULL)"):
            try:
                rows = b.execute(query).fetchall()
                return f"an unauthenticated session ran {query!r}: {len(rows)} rows"
            except psycopg.errors.InsufficientPrivilege:
                b.rollback()
        b.execute("SELECT jwt_guard.authenticate(%s)", (env["TOK_TENANT_ACME"],))
        seen = b.execute(activity, (a_pid,)).fetchone()[0] or ""
        b.rollback()
        a.rollback()
        if token in seen or signature in seen:
            return "a token identity of another client read the literal token in pg_stat_activity"
    return None
