#!/usr/bin/env python3
"""stackc against the write floor and the fastest peer, on the peer benchmark's
workload, measured side by side in one run.

usage: bench/bench.py [--out DIR] [--pkl PKL] [N ...]     (default N = 10 100 1000 10000)

bench/gen.py writes the workload (services-N.stack, and the peers' services-N.json).
For each N, RUNS rounds (default 5) after one warm-up round; each round runs, in
turn:
  build   `stackc build` into an empty directory (removed before, untimed):
          2 topologies, 2N + 7 files (compose, nginx, env files, Kubernetes)
  floor   `cp -r` of that output into an empty directory: the same bytes in the
          same files, written by a C program
  env     `cp -r` of the env files alone (one per service, as the product brief
          asks): a floor no build that writes them can go under. Against
          Pkl, the most any such build could be ahead (`pkl / env`)
  bytes   `cat` of every file of that output into one file: the bytes alone
  check   `stackc check` (parse, check, plan; nothing written)
  pkl     with --pkl: Pkl (the fastest peer) on the same services, the peers'
          program (../shared/bench/peers/tools/pkl/stack.pkl) into an empty dir
Whole-process wall time from a monotonic clock and peak RSS from os.wait4, as
the peers' measure.py does. The table gives medians; ratios are the medians of
the ratios within each round. --out puts the outputs elsewhere (a tmpfs, say:
the disk's inode allocation dominates and drifts on a shared machine).
"""
import argparse
import glob
import os
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
STACKC = os.path.join(ROOT, "target", "release", "stackc")
PEERS = os.path.join(ROOT, "..", "shared", "bench", "peers")
RUNS = int(os.environ.get("RUNS", "5"))


def timed(cmd, fresh=None, stdout=subprocess.DEVNULL):
    if fresh:
        shutil.rmtree(fresh, ignore_errors=True)
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=stdout, stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.monotonic() - t0
    if status != 0:
        sys.exit(f"failed: {' '.join(cmd)}")
    return wall, ru.ru_maxrss / 1024.0


def tree(path):
    files = [f for f in glob.glob(os.path.join(path, "**", "*"), recursive=True) if os.path.isfile(f)]
    return files, sum(os.path.getsize(f) for f in files)


def measure(n, work, pkl):
    src = os.path.join(HERE, "data", f"services-{n}.stack")
    out = os.path.join(work, f"stackc-{n}")
    copy = os.path.join(work, f"copy-{n}")
    peer = os.path.join(work, f"pkl-{n}")
    one = os.path.join(work, f"all-{n}.txt")
    envs = os.path.join(work, f"env-{n}")
    rounds = []
    for r in range(RUNS + 1):
        row = {"build": timed([STACKC, "build", src, "--out", out], out)}
        files, size = tree(out)
        row["floor"] = timed(["cp", "-r", out, copy], copy)
        shutil.rmtree(envs, ignore_errors=True)
        os.makedirs(envs)
        row["env"] = timed(["cp", "-r", *sorted(glob.glob(os.path.join(out, "*", "env"))), envs])
        with open(one, "w") as f:
            row["bytes"] = timed(["cat", *files], stdout=f) if len(files) < 20000 else \
                timed(["sh", "-c", f"find {out} -type f -exec cat {{}} + > {one}"])
        row["check"] = timed([STACKC, "check", src])
        if pkl:
            data = os.path.join(HERE, "data", f"services-{n}.json")
            program = os.path.join(PEERS, "tools", "pkl", "stack.pkl")
            row["pkl"] = timed([pkl, "eval", "-m", peer, "-p", f"data={data}", program], peer)
        if r:  # round 0 is the warm-up
            rounds.append(row)
    med = lambda key, i=0: statistics.median(r[key][i] for r in rounds)
    ratio = lambda a, b: statistics.median(r[a][0] / r[b][0] for r in rounds)
    result = {
        "n": n, "files": len(files), "mb": size / 1e6,
        "build": med("build"), "rss": med("build", 1), "floor": med("floor"), "bytes": med("bytes"),
        "check": med("check"), "check_rss": med("check", 1),
        "build/floor": ratio("build", "floor"), "build/bytes": ratio("build", "bytes"),
        "env": med("env"),
    }
    if pkl:
        result.update({"pkl": med("pkl"), "pkl_rss": med("pkl", 1), "pkl/build": ratio("pkl", "build"),
                       "pkl/env": ratio("pkl", "env")})
    return result


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(HERE, "out"), help="where the outputs go")
    ap.add_argument("--pkl", help="the native pkl binary (0.28.2, as the peers' run)")
    ap.add_argument("ns", nargs="*", type=int, default=[10, 100, 1000, 10000])
    args = ap.parse_args(argv[1:])
    subprocess.run([sys.executable, os.path.join(HERE, "gen.py"), *map(str, args.ns)], check=True)
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    work = os.path.abspath(args.out)
    os.makedirs(work, exist_ok=True)
    print(f"load average before: {os.getloadavg()[0]:.2f}; outputs in {work}; {RUNS} rounds", file=sys.stderr)
    rows = []
    for n in args.ns:
        rows.append(measure(n, work, args.pkl))
        print(f"N={n} done", file=sys.stderr)
    head = "| N | files | MB | build s | peak MiB | floor (cp -r) s | build / floor | bytes (cat) s " \
           "| build / bytes | per service | check s | check MiB | env (cp -r) s |"
    if args.pkl:
        head += " pkl s | pkl MiB | pkl / build | pkl / env |"
    print(head)
    print("|---" * (head.count("|") - 1) + "|")
    for r in rows:
        line = (f"| {r['n']} | {r['files']} | {r['mb']:.2f} | {r['build']:.4f} | {r['rss']:.0f} "
                f"| {r['floor']:.4f} | {r['build/floor']:.1f}x | {r['bytes']:.4f} | {r['build/bytes']:.1f}x "
                f"| {r['build'] / r['n'] * 1e6:.0f} µs | {r['check']:.4f} | {r['check_rss']:.0f} "
                f"| {r['env']:.4f} |")
        if args.pkl:
            line += f" {r['pkl']:.3f} | {r['pkl_rss']:.0f} | {r['pkl/build']:.1f}x | {r['pkl/env']:.1f}x |"
        print(line)


if __name__ == "__main__":
    main(sys.argv)
