#!/usr/bin/env python3
"""Whole-process runs of one or more stackc binaries, one after another with
nothing between them, in a random order in each round.

usage: bench/wall.py [--runs R] BIN [BIN ...] -- ARGS...
  e.g. bench/wall.py --runs 40 old/stackc target/release/stackc -- check bench/data/services-10000.stack

For a change too small for bench/ab.py's nine rounds: each binary runs R times
(default 40) after one warm-up round, and the table gives the median, mean and
fastest wall time, the median CPU time (user + system) and peak RSS, from
os.wait4. Runs back to back keep the machine's processors awake; a pause
before a run makes a short one slower on this virtual machine
(docs/performance.md, "The machine's idle state").
"""
import argparse
import os
import random
import statistics
import subprocess
import sys
import time


def run(cmd):
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):  # 1: the stack has errors, still a measured run
        sys.exit(f"{' '.join(cmd)} exited with {code}")
    return wall * 1000, (usage.ru_utime + usage.ru_stime) * 1000, usage.ru_maxrss / 1024


def main(argv):
    if "--" not in argv:
        sys.exit(__doc__)
    split = argv.index("--")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("bins", nargs="+")
    args = ap.parse_args(argv[:split])
    rest = argv[split + 1:]
    results = {b: [] for b in args.bins}
    for r in range(args.runs + 1):
        order = list(args.bins)
        random.shuffle(order)
        for b in order:
            figure = run([b, *rest])
            if r:  # round 0 is the warm-up
                results[b].append(figure)
    print("| binary | median ms | mean ms | fastest ms | CPU ms | peak MiB |")
    print("|---|---|---|---|---|---|")
    for b, runs in results.items():
        walls = [w for w, _, _ in runs]
        print(f"| {b} | {statistics.median(walls):.1f} | {statistics.mean(walls):.1f} | {min(walls):.1f} "
              f"| {statistics.median(c for _, c, _ in runs):.0f} | {statistics.median(m for _, _, m in runs):.0f} |")


if __name__ == "__main__":
    main(sys.argv[1:])
