#!/usr/bin/env python3
"""Runs the pooled hostile-neighbour suite (neighbours.py) on its own: a throw-away cluster on
port 58440 and pgbouncer on 127.0.0.1:58441, both removed afterwards. Run as root (the cluster
runs as the postgres user) against the pg_jwt_guard installed in /usr/lib/postgresql/15.

    python3 tests/tools/run_neighbours.py [--only NAME[,NAME...]]

The last line is `N passed, N failed`; the exit status is non-zero on any failure.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixtures  # noqa: E402
import neighbours  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", help="comma-separated attack or check names (the rest is skipped)")
    ap.add_argument("--weakened", action="store_true",
                    help="self-test: pg_jwt_guard.login_roles = '' (no lockdown before a token) and tenant "
                         "policies rewritten the way 0.1's protect_table wrote them; the suite must then "
                         "report the no-token and protect_table attacks as got through")
    args = ap.parse_args()
    if args.weakened:
        neighbours.LOGIN_ROLES = ""
        neighbours.WEAKENED = True
        print("self-test (--weakened): login_roles = '' and 0.1-style tenant policies -- failures are expected")
    if args.only:
        wanted = set(args.only.split(","))
        unknown = wanted - {a[1] for a in neighbours.ATTACKS} - {c[1] for c in neighbours.CHECKS}
        if unknown:
            print(f"unknown names: {', '.join(sorted(unknown))}")
            return 2
        neighbours.ATTACKS[:] = [a for a in neighbours.ATTACKS if a[1] in wanted]
        neighbours.CHECKS[:] = [c for c in neighbours.CHECKS if c[1] in wanted]
    env, minters = fixtures.build()
    results = neighbours.run(env, minters)
    failed = sum(1 for _, err in results if err)
    print(f"{len(results) - failed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
