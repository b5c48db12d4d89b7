#!/usr/bin/env python3
"""Runs the pg_regress suites against a throw-away PostgreSQL 15 with pg_jwt_guard preloaded,
then the scenario checks that need more than one psql session, then the pooled hostile-neighbour
suite (tests/tools/neighbours.py), the identity-provider recipes (tests/tools/providers.py)
the remote JWKS worker against local HTTPS servers (tests/tools/remote_jwks.py), the
statement audit next to pgaudit (tests/tools/statement_audit.py) and the client examples of
docs/clients.md, run with psycopg 3, asyncpg and node-postgres (tests/tools/clients.py),
and prints one closing line:
`N passed, N failed` (core test counts passed in by scripts/test.sh are added in).

Keys and tokens are minted fresh by tests/tools/fixtures.py (PyJWT) and handed to psql as
environment variables, so the suites never contain a token.
"""

import argparse
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "tools"))
import fixtures  # noqa: E402
import scenarios  # noqa: E402
import neighbours  # noqa: E402
import providers  # noqa: E402
import remote_jwks  # noqa: E402
import statement_audit  # noqa: E402
import clients  # noqa: E402
import cluster_checks  # noqa: E402
import operators  # noqa: E402

PGBIN = scenarios.PGBIN
PGXS = subprocess.run([f"{PGBIN}/pg_config", "--pgxs"], capture_output=True, text=True).stdout.strip()
PG_REGRESS = os.path.join(os.path.dirname(PGXS), "..", "test", "regress", "pg_regress")
SUITE = os.path.join(HERE, "pg_regress")

CONFIG = """
shared_preload_libraries = 'pg_jwt_guard'
pg_jwt_guard.issuers = 'https://issuer.test'
pg_jwt_guard.audience = 'orders-api'
pg_jwt_guard.login_roles = 'authenticator'
pg_jwt_guard.allowed_roles = 'app_user, app_reader, su_role, bypass_role, createrole_role, createdb_role, repl_role, monitor_member, bypass_member, table_owner, authenticator, tester, ghost_role, func_owner, schema_owner, trigger_holder, owner_member, truncate_holder, maintain_holder, db_owner_role, ext_owner_role'
max_worker_processes = 8
max_parallel_workers = 4
log_min_messages = warning
"""


def reference_functions():
    """The function table of docs/sql-reference.md as "name|volatility|parallel|strict" lines,
    for the function_labels suite."""
    lines = []
    with open(os.path.join(HERE, "..", "docs", "sql-reference.md")) as f:
        for row in f:
            m = re.match(r"\| `([a-z_]+)\(.*?\)` \| .*? \| ([A-Z]+)(?:, (PARALLEL [A-Z]+))? \| ([^|]+?) \|", row)
            if m:
                strict = next((w for w in ("yes", "no") if m.group(4).strip().startswith(w)), "-")
                lines.append(f"{m.group(1)}|{m.group(2)}|{m.group(3) or 'PARALLEL UNSAFE'}|{strict}")
    return "\n".join(lines)


def schedule():
    with open(os.path.join(SUITE, "schedule")) as f:
        return [line.split(":", 1)[1].split() for line in f if line.startswith("test:")]


def run_regress(env, preload="pg_jwt_guard"):
    for stale in ("regression.diffs", "regression.out"):
        if os.path.exists(os.path.join(SUITE, stale)):
            os.remove(os.path.join(SUITE, stale))
    work = tempfile.mkdtemp(prefix="jwt_guard_regress_")
    shutil.copytree(os.path.join(SUITE, "sql"), os.path.join(work, "sql"))
    shutil.copytree(os.path.join(SUITE, "expected"), os.path.join(work, "expected"))
    shutil.copy(os.path.join(SUITE, "schedule"), work)
    with open(os.path.join(work, "regress.conf"), "w") as f:
        f.write(CONFIG.replace("shared_preload_libraries = 'pg_jwt_guard'", f"shared_preload_libraries = '{preload}'"))
    pg = pwd.getpwnam("postgres")
    for root, dirs, files in os.walk(work):
        for name in dirs + files + ["."]:
            os.chown(os.path.join(root, name), pg.pw_uid, pg.pw_gid)
    cmd = ["runuser", "-u", "postgres", "--", PG_REGRESS,
           f"--temp-instance={work}/instance", f"--temp-config={work}/regress.conf",
           f"--bindir={PGBIN}", f"--inputdir={work}", f"--outputdir={work}",
           f"--schedule={work}/schedule", "--dbname=jwt_guard_regress", "--port=58432"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    out = proc.stdout + proc.stderr
    print(out)
    passed = len(re.findall(r"^\s*(?:test\s+)?\S+\s+\.\.\. ok", out, re.M))
    passed += len(re.findall(r"^ok \d+", out, re.M))
    failed = len(re.findall(r"\.\.\. FAILED|^not ok \d+", out, re.M))
    if proc.returncode != 0 and failed == 0:
        failed = 1
    diffs = os.path.join(work, "regression.diffs")
    if os.path.exists(diffs):
        shutil.copy(diffs, os.path.join(SUITE, "regression.diffs"))
        print(f"differences: {os.path.join(SUITE, 'regression.diffs')}")
    results = os.path.join(SUITE, "results")
    shutil.rmtree(results, ignore_errors=True)
    if os.path.isdir(os.path.join(work, "results")):
        shutil.copytree(os.path.join(work, "results"), results)
    return passed, failed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--core-passed", type=int, default=0)
    ap.add_argument("--core-failed", type=int, default=0)
    ap.add_argument("--only", choices=["regress", "scenarios", "neighbours", "providers", "remote", "audit", "clients", "operators", "cluster"], default=None)
    args = ap.parse_args()

    env = {k: v for k, v in os.environ.items() if k != "RUST_BACKTRACE"}
    fixture_env, minters = fixtures.build()
    env.update(fixture_env)
    env["SQL_REFERENCE_FUNCTIONS"] = reference_functions()

    passed, failed = args.core_passed, args.core_failed
    if args.only in (None, "regress"):
        p, f = run_regress(env)
        print(f"pg_regress: {p} passed, {f} failed")
        passed, failed = passed + p, failed + f
    if args.only in (None, "scenarios"):
        p, f = scenarios.run_all(env, minters)
        print(f"scenarios: {p} passed, {f} failed")
        passed, failed = passed + p, failed + f
    if args.only in (None, "neighbours"):
        p, f = neighbours.run_all(env, minters)
        print(f"neighbours: {p} passed, {f} failed")
        passed, failed = passed + p, failed + f
    if args.only in (None, "providers"):
        p, f = providers.run_all(env, minters)
        print(f"providers: {p} passed, {f} failed")
        passed, failed = passed + p, failed + f
    if args.only in (None, "remote"):
        p, f = remote_jwks.run_all(env, minters)
        print(f"remote_jwks: {p} passed, {f} failed")
        passed, failed = passed + p, failed + f
    if args.only in (None, "operators"):
        p, f = operators.run_all(env, minters)
        print(f"operators: {p} passed, {f} failed")
        passed, failed = passed + p, failed + f
    if args.only in (None, "audit") and scenarios.PG_MAJOR == 15:
        # pgaudit comes from Debian's postgresql-15-pgaudit; there is none for the source builds.
        p, f = statement_audit.run_all(env, minters)
        print(f"statement_audit: {p} passed, {f} failed")
        passed, failed = passed + p, failed + f
    if args.only in (None, "clients"):
        p, f = clients.run_all(env, minters)
        print(f"clients: {p} passed, {f} failed")
        passed, failed = passed + p, failed + f
    if args.only == "cluster":
        # Only on request (scripts/test.sh --all): several clusters and two more regress runs.
        p, f = cluster_checks.run_all(env, minters, run_regress)
        print(f"cluster checks: {p} passed, {f} failed")
        passed, failed = passed + p, failed + f
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
