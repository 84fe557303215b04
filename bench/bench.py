#!/usr/bin/env python3
"""stackc build against the write floor, on the peer benchmark's workload.

usage: bench/bench.py [N ...]        (default N = 10 100 1000 10000)

For each N, in one run and in turn:
  build    `stackc build` into an empty directory (the directory is removed
           before each run, untimed)
  rebuild  `stackc build` again over its own output (every file unchanged)
  floor    `cp -r` of the generated tree into an empty directory: the same bytes
           in the same files, written by a C program: the write floor
Each: 1 warm-up, then RUNS (5) timed runs; whole-process wall time from a
monotonic clock and peak RSS from os.wait4, as the peers' measure.py does.
Medians are printed as a Markdown table, with the ratios to the floor.
"""
import os
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
STACKC = os.path.join(ROOT, "target", "release", "stackc")
RUNS = int(os.environ.get("RUNS", "5"))


def timed(cmd, prepare=None):
    if prepare:
        prepare()
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.monotonic() - t0
    if status != 0:
        sys.exit(f"failed: {' '.join(cmd)}")
    return wall, ru.ru_maxrss / 1024.0


def series(cmd, prepare=None):
    timed(cmd, prepare)
    runs = [timed(cmd, prepare) for _ in range(RUNS)]
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def tree_bytes(path):
    total, files = 0, 0
    for d, _, fs in os.walk(path):
        for f in fs:
            total += os.path.getsize(os.path.join(d, f))
            files += 1
    return total, files


def main(argv):
    ns = [int(a) for a in argv[1:]] or [10, 100, 1000, 10000]
    subprocess.run([sys.executable, os.path.join(HERE, "gen.py"), *map(str, ns)], check=True)
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    work = os.path.join(HERE, "out")
    os.makedirs(work, exist_ok=True)
    print(f"load average before: {os.getloadavg()[0]:.2f}", file=sys.stderr)
    rows = []
    for n in ns:
        src = os.path.join(HERE, "data", f"services-{n}.stack")
        out = os.path.join(work, f"stackc-{n}")
        copy = os.path.join(work, f"copy-{n}")
        clean = lambda d=out: shutil.rmtree(d, ignore_errors=True)
        build = series([STACKC, "build", src, "--out", out], clean)
        rebuild = series([STACKC, "build", src, "--out", out])
        size, files = tree_bytes(out)
        floor = series(["cp", "-r", out, copy], lambda: shutil.rmtree(copy, ignore_errors=True))
        rows.append((n, files, size, build, rebuild, floor))
        print(f"N={n} done", file=sys.stderr)
    print("| N | files | MB | build s | peak MiB | rebuild s | floor (cp -r) s | build / floor | build per service |")
    print("|---|---|---|---|---|---|---|---|---|")
    for n, files, size, b, r, f in rows:
        print(f"| {n} | {files} | {size / 1e6:.2f} | {b[0]:.4f} | {b[1]:.0f} | {r[0]:.4f} | {f[0]:.4f} "
              f"| {b[0] / f[0]:.1f}x | {b[0] / n * 1e6:.0f} µs |")


if __name__ == "__main__":
    main(sys.argv)
