#!/usr/bin/env python3
"""Two stackc binaries side by side on the workload: the figures of a change.

usage: bench/ab.py OLD NEW [--out DIR] [N ...]     (default N = 1000 10000)

OLD and NEW are stackc executables (build the old commit in a worktree with its
own CARGO_TARGET_DIR, say). For each N, RUNS rounds (default 7) after one
warm-up round; each round runs, alternating the binaries so that both see the
same load: `check`, then `build` into an empty directory under --out (default a
temporary directory; a tmpfs keeps the disk's drift out). Whole-process wall
time, peak RSS and CPU time (user + system: steadier than wall time on a shared
machine) from os.wait4; the table gives medians and NEW / OLD.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
RUNS = int(os.environ.get("RUNS", "7"))


def timed(cmd):
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.exit(f"{' '.join(cmd)} exited with {code}:\n{err}")
    return elapsed, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--out", help="where the builds write (default: a temporary directory)")
    ap.add_argument("ns", nargs="*", type=int, default=[1000, 10000])
    args = ap.parse_intermixed_args(argv)
    subprocess.run([sys.executable, os.path.join(HERE, "gen.py"), *map(str, args.ns)], check=True)
    base = args.out or tempfile.mkdtemp(prefix="stackc-ab-")
    binaries = {"old": os.path.abspath(args.old), "new": os.path.abspath(args.new)}
    results = {}
    for n in args.ns:
        source = os.path.join(HERE, "data", f"services-{n}.stack")
        for round_ in range(RUNS + 1):
            for name, binary in binaries.items():
                out = os.path.join(base, f"ab-{name}")
                shutil.rmtree(out, ignore_errors=True)
                for what, cmd in [
                    ("check", [binary, "check", source]),
                    ("build", [binary, "build", source, "--out", out]),
                ]:
                    figure = timed(cmd)
                    if round_ > 0:
                        results.setdefault((n, what, name), []).append(figure)
                shutil.rmtree(out, ignore_errors=True)
        print(f"N={n} done", file=sys.stderr)
    print("| N | stage | old s | new s | new / old | old CPU s | new CPU s | old MiB | new MiB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for n in args.ns:
        for what in ["check", "build"]:
            old, new = results[(n, what, "old")], results[(n, what, "new")]
            t_old = statistics.median(f[0] for f in old)
            t_new = statistics.median(f[0] for f in new)
            ratio = statistics.median(b[0] / a[0] for a, b in zip(old, new))
            m_old = statistics.median(f[1] for f in old)
            m_new = statistics.median(f[1] for f in new)
            c_old = statistics.median(f[2] for f in old)
            c_new = statistics.median(f[2] for f in new)
            print(
                f"| {n} | {what} | {t_old:.4f} | {t_new:.4f} | {ratio:.2f} "
                f"| {c_old:.3f} | {c_new:.3f} | {m_old:.0f} | {m_new:.0f} |"
            )
    if not args.out:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1:])
