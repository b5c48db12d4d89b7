"""CPU per transaction, split by where it is spent, for configurations of a cluster that
`bench.py --keep` left running.

For each configuration it runs pgbench (-M prepared by default, 2 clients) while `perf record
-a` samples every CPU, then divides the samples of each part by the transactions pgbench
counted: the server's time in pg_jwt_guard.so (the library's own code), in the postgres binary,
in libc and in the kernel, and pgbench's. A rate per transaction moves much less than the
throughput on a noisy host, so it shows what a change to the library saves.

    python3 bench/bench.py --quick --only c_hs256 --keep
    python3 bench/profile.py --cluster /tmp/jwt_guard_scenario_… --scripts /tmp/jwt_guard_bench_… \
        --only a_baseline,c_hs256 --rounds 3

Needs `perf` (Debian: linux-perf) and root. Nothing here is a test.
"""

import argparse
import collections
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "tools"))

import scenarios  # noqa: E402

PGBENCH = f"{scenarios.PGBIN}/pgbench"
FREQUENCY = 1999  # samples per second per CPU: one sample is about 500 µs of CPU


def part_of(comm, dso):
    """Which column a sample belongs to."""
    if comm == "pgbench":
        return "client"
    if comm != "postgres":
        return None
    if dso == "pg_jwt_guard.so":
        return "library"
    if dso == "postgres":
        return "postgres"
    if dso.startswith("libc"):
        return "libc"
    if "kernel" in dso:
        return "kernel"
    return "other"


def measure(args, name, role):
    """One pgbench run under perf: TPS and CPU µs per transaction by part."""
    script = os.path.join(args.scripts, f"{name}.sql")
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "perf.data")
        bench = subprocess.Popen(
            [PGBENCH, "-n", "-M", args.protocol, "-c", "2", "-j", "2", "-T", str(args.seconds + 2),
             "-h", args.cluster, "-p", str(args.port), "-U", role, "-f", script, "postgres"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1)
        subprocess.run(["perf", "record", "-a", "-F", str(FREQUENCY), "-o", data, "--", "sleep", str(args.seconds)],
                       check=True, capture_output=True)
        out, err = bench.communicate()
        tps = re.search(r"^tps = ([\d.]+)", out, re.M)
        if bench.returncode != 0 or not tps:
            raise SystemExit(f"pgbench failed for {name}:\n{out}\n{err}")
        samples = subprocess.run(["perf", "script", "-i", data, "-F", "comm,ip,dso"],
                                 check=True, capture_output=True, text=True).stdout
    counts = collections.Counter()
    for line in samples.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        part = part_of(fields[0], fields[-1].strip("()").split("/")[-1])
        if part:
            counts[part] += 1
    transactions = float(tps.group(1)) * args.seconds
    per_sample_us = 1e6 / FREQUENCY
    return float(tps.group(1)), {k: v * per_sample_us / transactions for k, v in counts.items()}


PARTS = ("library", "postgres", "libc", "kernel", "other", "client")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cluster", required=True, help="the cluster's directory (its Unix socket is there)")
    ap.add_argument("--port", type=int, default=58440)
    ap.add_argument("--scripts", required=True, help="the pgbench scripts bench.py --keep left")
    ap.add_argument("--only", default="a_baseline,c_hs256", help="comma-separated configurations")
    ap.add_argument("--role", default="bench", help="login role (bench.py's roles: bench, bench_nocache, …)")
    ap.add_argument("--protocol", default="prepared", choices=("simple", "extended", "prepared"))
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians are printed")
    args = ap.parse_args()
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    runs = collections.defaultdict(list)
    for r in range(args.rounds):
        for name in names:
            runs[name].append(measure(args, name, args.role))
            print(f"==> round {r + 1}/{args.rounds}: {name} {runs[name][-1][0]:.0f} TPS", file=sys.stderr)
    print(f"CPU µs per transaction (-M {args.protocol}, 2 clients, {args.rounds} rounds of {args.seconds} s, "
          f"medians; server parts are the postgres processes' samples)")
    print(f"{'configuration':28}{'TPS':>8}" + "".join(f"{p:>10}" for p in PARTS) + f"{'server':>10}")
    for name in names:
        tps = statistics.median(t for t, _ in runs[name])
        med = {p: statistics.median(c.get(p, 0.0) for _, c in runs[name]) for p in PARTS}
        server = statistics.median(sum(v for k, v in c.items() if k != "client") for _, c in runs[name])
        print(f"{name:28}{tps:8.0f}" + "".join(f"{med[p]:10.2f}" for p in PARTS) + f"{server:10.2f}")


if __name__ == "__main__":
    main()
