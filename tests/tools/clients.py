"""Client examples of docs/clients.md, run as the doc shows them and checked.

Every fenced block preceded by `<!-- run: NAME -->` in the doc is written to a file as it is and
run, with python3 (```python) or node (```js, node-postgres from tests/tools/node), against a
throw-away cluster: port 58530 on 127.0.0.1, the installed pg_jwt_guard preloaded, a login role
`authenticator`, a token role `app_user` and an `orders` table tied to the tenant by
protect_table(). Only the environment differs from what a reader runs: DATABASE_URL (the
connection string) and TOKEN (tenant acme's token, subject alice, minted with PyJWT by
fixtures.py for this run).

Each example runs twice: directly, and through pgbouncer in transaction mode (127.0.0.1:58531)
with one server connection, so that every transaction of every example shares one backend. A
run passes when it exits with status 0, prints exactly the block preceded by
`<!-- output: NAME -->`, and shows no token in its output. The outputs include each example's
negative check: the next transaction on the same pooled connection has no identity and may read
no table; node-postgres' pool.query() pattern is refused. The SQLAlchemy example runs only when
SQLAlchemy 2 is installed (otherwise it is reported as skipped and not counted).

Interface: run_all(env, minters) -> (passed, failed), one line per check:
`client <name> ... ok (t s)` or `client <name> ... FAILED: <reason>`.
Run on its own: python3 tests/tools/clients.py [--only NAME[,NAME...]] (as root).
"""

import argparse
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import pooler  # noqa: E402
import scenarios  # noqa: E402

PORT = 58530
POOL_PORT = 58531
DOC = os.path.normpath(os.path.join(HERE, "..", "..", "docs", "clients.md"))
NODE_DIR = os.path.join(HERE, "node")

CONFIG = """
listen_addresses = '127.0.0.1'
pg_jwt_guard.issuers = 'https://issuer.test'
pg_jwt_guard.audience = 'orders-api'
pg_jwt_guard.allowed_roles = 'app_user'
pg_jwt_guard.login_roles = 'authenticator'
log_min_messages = warning
"""

SETUP = [
    "CREATE EXTENSION pg_jwt_guard",
    "CREATE ROLE authenticator LOGIN NOINHERIT",
    "ALTER ROLE authenticator SET log_min_error_statement = panic",
    "ALTER ROLE authenticator SET log_parameter_max_length_on_error = 0",
    "ALTER ROLE authenticator SET log_parameter_max_length = 0",
    "CREATE ROLE app_user NOLOGIN",
    "GRANT USAGE ON SCHEMA public TO app_user",
    "CREATE TABLE orders (id int PRIMARY KEY, tenant_id text NOT NULL, item text NOT NULL)",
    "GRANT SELECT, INSERT, UPDATE, DELETE ON orders TO app_user",
    "INSERT INTO orders VALUES (1, 'acme', 'anvil'), (2, 'acme', 'rocket skates'), "
    "(3, 'acme', 'bird seed'), (4, 'globex', 'hammock'), (5, 'globex', 'doomsday device')",
    "SELECT jwt_guard.protect_table('orders', 'tenant_id')",
]

PGBOUNCER_INI = """\
[databases]
postgres = host={socket_dir} port={pg_port} dbname=postgres

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
logfile = {dir}/pgbouncer.log
pidfile = {dir}/pgbouncer.pid
auth_type = trust
auth_file = {dir}/userlist.txt
pool_mode = transaction
; one server connection: every transaction of every example runs on the same backend
default_pool_size = 1
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = 50
server_reset_query =
ignore_startup_parameters = extra_float_digits,options
"""

# name -> (language, URL scheme the example's DATABASE_URL uses)
EXAMPLES = {
    "psycopg": ("python", "postgresql"),
    "asyncpg": ("python", "postgresql"),
    "node": ("js", "postgresql"),
    "node-pool-query": ("js", "postgresql"),
    "sqlalchemy": ("python", "postgresql+psycopg"),
}
OPTIONAL = {"sqlalchemy": "SQLAlchemy 2 is not installed"}
VERBOSE = bool(os.environ.get("CLIENTS_VERBOSE"))  # print a failing example's stderr (never a token)
JWT_LIKE = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")


class Fail(Exception):
    """An expectation did not hold; the message is the one-line reason."""


def load_blocks(path=DOC):
    """{name: (language, code)} for run blocks and {name: text} for output blocks."""
    with open(path) as f:
        text = f.read()
    runs, outputs = {}, {}
    for kind, name, lang, body in re.findall(r"<!-- (run|output): ([\w.-]+) -->\s*\n```([\w-]*)\n(.*?)```", text, re.S):
        table = runs if kind == "run" else outputs
        if name in table:
            raise Fail(f"{kind} block {name!r} appears twice in {path}")
        table[name] = (lang, body) if kind == "run" else body
    return text, runs, outputs


def _sqlalchemy_2():
    try:
        import sqlalchemy
    except ImportError:
        return False
    return int(sqlalchemy.__version__.split(".")[0]) >= 2


class ClientCluster(scenarios.Cluster):
    port = PORT


def _env():
    return {k: v for k, v in os.environ.items() if k != "RUST_BACKTRACE"}


def node_modules():
    """tests/tools/node/node_modules with pg, installed from the committed lockfile when missing."""
    if os.path.isfile(os.path.join(NODE_DIR, "node_modules", "pg", "package.json")):
        return os.path.join(NODE_DIR, "node_modules")
    proc = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=NODE_DIR,
                          capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise Fail(f"npm ci in {NODE_DIR} failed: {proc.stderr.strip()[-300:]}")
    return os.path.join(NODE_DIR, "node_modules")


def start_pgbouncer(cluster):
    """pgbouncer in the foreground, in its own process group, config in the cluster's directory."""
    pg = pwd.getpwnam("postgres")
    pb_dir = os.path.join(cluster.dir, "pgbouncer")
    os.makedirs(pb_dir, exist_ok=True)
    with open(os.path.join(pb_dir, "pgbouncer.ini"), "w") as f:
        f.write(PGBOUNCER_INI.format(socket_dir=cluster.dir, pg_port=PORT, port=POOL_PORT, dir=pb_dir))
    with open(os.path.join(pb_dir, "userlist.txt"), "w") as f:
        f.write('"authenticator" ""\n')
    for name in ("", "pgbouncer.ini", "userlist.txt"):
        os.chown(os.path.join(pb_dir, name), pg.pw_uid, pg.pw_gid)
    proc = subprocess.Popen(["runuser", "-u", "postgres", "--", pooler.PGBOUNCER,
                             os.path.join(pb_dir, "pgbouncer.ini")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    import psycopg
    deadline = time.time() + 10
    while True:
        try:
            with psycopg.connect(host="127.0.0.1", port=POOL_PORT, user="authenticator", dbname="postgres",
                                 connect_timeout=2, prepare_threshold=None) as conn:
                conn.execute("SELECT 1")
            return proc, pb_dir
        except psycopg.OperationalError as e:
            if proc.poll() is not None or time.time() > deadline:
                pooler._stop_pgbouncer(proc, pb_dir)
                raise Fail(f"pgbouncer did not start: {e}; log: {pooler._log_tail(pb_dir)}")
            time.sleep(0.1)


def _error_line(stderr):
    """The line of a Python traceback or a node error that names the error."""
    lines = [line.strip() for line in stderr.strip().splitlines() if line.strip()]
    for line in reversed(lines):
        if re.match(r"[\w.]*(Error|Exception)\b.*:|error: ", line):
            return line
    return lines[-1] if lines else "(no stderr)"


def _server_log_tail(cluster):
    """The last error the server logged, or its last line."""
    try:
        with open(os.path.join(cluster.dir, "log"), errors="replace") as f:
            lines = [line.strip() for line in f if line.strip()]
    except OSError:
        return "(no log)"
    errors = [line for line in lines if re.search(r"\b(FATAL|PANIC|ERROR):", line)]
    return ((errors or lines or ["(empty log)"])[-1])[:300]


class Runner:
    def __init__(self, runs, outputs, token, work, modules):
        self.runs, self.outputs, self.token, self.work, self.modules = runs, outputs, token, work, modules

    def run(self, name, port):
        """Runs example `name` against 127.0.0.1:`port` and checks its output."""
        if name not in self.runs:
            raise Fail(f"docs/clients.md has no block <!-- run: {name} -->")
        if name not in self.outputs:
            raise Fail(f"docs/clients.md has no block <!-- output: {name} -->")
        lang, code = self.runs[name]
        want_lang, scheme = EXAMPLES[name]
        if lang != want_lang:
            raise Fail(f"run block {name} is ```{lang}, expected ```{want_lang}")
        path = os.path.join(self.work, f"example_{name.replace('-', '_')}.{'py' if lang == 'python' else 'js'}")
        with open(path, "w") as f:
            f.write(code)
        env = _env()
        env.update(DATABASE_URL=f"{scheme}://authenticator@127.0.0.1:{port}/postgres", TOKEN=self.token)
        if lang == "python":
            cmd = [sys.executable, path]
        else:
            cmd = ["node", path]
            env["NODE_PATH"] = self.modules
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60, cwd=self.work)
        except subprocess.TimeoutExpired:
            raise Fail("still running after 60 s") from None
        if self.token in proc.stdout + proc.stderr or self.token.split(".")[2] in proc.stdout + proc.stderr:
            raise Fail("the token appears in the example's output")
        if proc.returncode != 0:
            if VERBOSE:
                print(proc.stderr.rstrip())
            raise Fail(f"exit status {proc.returncode}: {_error_line(proc.stderr)[:300]}")
        got = [line.rstrip() for line in proc.stdout.strip().splitlines()]
        want = [line.rstrip() for line in self.outputs[name].strip().splitlines()]
        for i in range(max(len(got), len(want))):
            g = got[i] if i < len(got) else "(nothing)"
            w = want[i] if i < len(want) else "(nothing)"
            if g != w:
                raise Fail(f"line {i + 1}: printed {g!r}, the doc shows {w!r}")


def check_doc(text, runs, outputs):
    """Every example is run here, has its output block, and the page holds nothing token-like."""
    unknown = sorted(set(runs) - set(EXAMPLES))
    if unknown:
        raise Fail(f"run blocks that no check runs: {', '.join(unknown)}")
    missing = sorted((set(EXAMPLES) - set(runs)) | (set(runs) - set(outputs)))
    if missing:
        raise Fail(f"missing run or output blocks: {', '.join(missing)}")
    if JWT_LIKE.search(text):
        raise Fail("docs/clients.md contains something that looks like a token")


def versions():
    out = []
    for module, label in (("psycopg", "psycopg"), ("psycopg_pool", "psycopg_pool"), ("asyncpg", "asyncpg"),
                          ("sqlalchemy", "SQLAlchemy")):
        try:
            out.append(f"{label} {__import__(module).__version__}")
        except ImportError:
            out.append(f"{label} missing")
    try:
        with open(os.path.join(NODE_DIR, "node_modules", "pg", "package.json")) as f:
            out.append("pg " + re.search(r'"version":\s*"([^"]+)"', f.read()).group(1))
    except (OSError, AttributeError):
        out.append("pg missing")
    return ", ".join(out)


def run(env, minters, only=None):
    """Runs every check; returns [(name, None or one-line reason)]."""
    results = []

    def report(name, fn, *args):
        started = time.time()
        try:
            fn(*args)
            problem = None
        except Fail as e:
            problem = str(e)
        except Exception as e:  # noqa: BLE001 - any other failure is a failure of this check
            problem = f"raised {type(e).__name__}: {str(e)[:300]}"
        if problem is None:
            print(f"client {name:28s} ... ok ({time.time() - started:.1f} s)", flush=True)
        else:
            print(f"client {name:28s} ... FAILED: {problem}", flush=True)
        results.append((name, problem))

    names = [n for n in EXAMPLES if only is None or n in only]
    skipped = {n: why for n, why in OPTIONAL.items() if n in names and not _sqlalchemy_2()}
    names = [n for n in names if n not in skipped]
    cluster = bouncer = None
    work = tempfile.mkdtemp(prefix="jwt_guard_clients_")
    try:
        try:
            text, runs, outputs = load_blocks()
        except (Fail, OSError) as e:
            print(f"client {'doc':28s} ... FAILED: {e}", flush=True)
            results.append(("doc", str(e)))
            return results
        report("doc", check_doc, text, runs, outputs)
        try:
            modules = node_modules() if any(EXAMPLES[n][0] == "js" for n in names) else None
            cluster = ClientCluster()
            cluster.start(preload=True, extra=CONFIG)
            with cluster.connect() as conn:
                for statement in SETUP:
                    conn.execute(statement)
                conn.execute("SELECT jwt_guard.add_key('test-es256', 'ES256', %s)", (env["KEY_ES256"],))
            bouncer = start_pgbouncer(cluster)
        except Exception as e:  # noqa: BLE001 - no cluster, no pooler or no node: one failure
            problem = str(e) if isinstance(e, Fail) else f"{type(e).__name__}: {str(e)[:300]}"
            if cluster is not None:
                problem += f"; server log: {_server_log_tail(cluster)}"
            print(f"client {'setup':28s} ... FAILED: {problem}", flush=True)
            results.append(("setup", problem))
            return results
        print(f"clients: {versions()}; {subprocess.run([pooler.PGBOUNCER, '--version'], capture_output=True, text=True).stdout.splitlines()[0]}")
        token = minters["ES256"].token(sub="alice", tenant_id="acme")
        runner = Runner(runs, outputs, token, work, modules)
        for name in names:
            report(f"{name} (direct)", runner.run, name, PORT)
            report(f"{name} (pgbouncer)", runner.run, name, POOL_PORT)
        for name, why in skipped.items():
            print(f"client {name:28s} ... skipped: {why}")
    finally:
        if bouncer is not None:
            pooler._stop_pgbouncer(*bouncer)
        if cluster is not None:
            try:
                cluster.stop()
            except Exception as e:  # noqa: BLE001
                print(f"clients: could not stop the cluster: {e}")
            cluster.remove()
        shutil.rmtree(work, ignore_errors=True)
    return results


def run_all(env, minters, only=None):
    results = run(env, minters, only)
    failed = sum(1 for _, problem in results if problem)
    return len(results) - failed, failed


if __name__ == "__main__":
    import fixtures  # noqa: E402

    ap = argparse.ArgumentParser()
    ap.add_argument("--only", help=f"comma-separated examples ({', '.join(EXAMPLES)}); the doc check always runs")
    args = ap.parse_args()
    wanted = None
    if args.only:
        wanted = set(args.only.split(","))
        if wanted - set(EXAMPLES):
            print(f"unknown examples: {', '.join(sorted(wanted - set(EXAMPLES)))}")
            sys.exit(2)
    fixture_env, fixture_minters = fixtures.build()
    started = time.time()
    passed, failed = run_all(fixture_env, fixture_minters, wanted)
    print(f"clients: {time.time() - started:.1f} s")
    print(f"{passed} passed, {failed} failed")
    sys.exit(0 if failed == 0 else 1)
