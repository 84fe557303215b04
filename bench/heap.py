#!/usr/bin/env python3
"""Where a stackc run's heap is at its peak, by stage: heaptrack on the workload.

usage: bench/heap.py [--cmd check|build] [--top K] [N]     (default: build, N = 10000)

Builds stackc with symbols and the system allocator (`--profile profiling
--features system-alloc`, in target/heap: heaptrack sees malloc only, and the
release binary's mimalloc bypasses it), runs it under heaptrack on
bench/data/services-N.stack (a build goes to a temporary directory), and reads
heaptrack's peak flamegraph (`heaptrack_print --flamegraph-cost-type peak`):
each allocation live at the peak, with its stack. It prints the peak, the
number of allocations, the peak by stage (the outermost stage on each stack:
syntax, lower, check, plan, targets) and by innermost stackc function.
Needs heaptrack (apt-get install heaptrack).

heaptrack counts what was asked of malloc, not the pages written: room
reserved and never written counts in full (in a build, the compose file's
room, `targets::ROOM_PER_SERVICE`: 20.5 MB at N = 10000, 7 of them written).
For what is resident, see bench/bench.py's peak RSS.
"""
import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TARGET = os.path.join(ROOT, "target", "heap")
STAGES = [
    ("targets", "stackc::targets::"),
    ("plan", "stackc::plan::"),
    ("check", "stackc::check::"),
    ("lower", "stackc::lower::"),
    ("syntax", "stackc::syntax::"),
    ("source text", "stackc::analyze"),
]


def stage_of(frames):
    for name, marker in STAGES:
        if any(marker in f for f in frames):
            return name
    return "other"


# Rust's legacy symbol escapes, as heaptrack prints them.
ESCAPES = [("$LT$", "<"), ("$GT$", ">"), ("$u20$", " "), ("$u7b$", "{"), ("$u7d$", "}"),
           ("$RF$", "&"), ("$C$", ","), ("..", "::"), ("_{", "{"), ("::_<", "::<")]


def function_of(frames):
    inner = [f for f in frames if "stackc::" in f]
    if not inner:
        return "(outside stackc)"
    name = re.sub(r"::h[0-9a-f]{16}", "", inner[-1])
    name = re.sub(r"\s*\(.*\)$", "", name)
    for escape, char in ESCAPES:
        name = name.replace(escape, char)
    return name


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cmd", choices=["check", "build"], default="build")
    ap.add_argument("--top", type=int, default=15, help="functions listed")
    ap.add_argument("n", nargs="?", type=int, default=10000)
    args = ap.parse_args(argv[1:])
    for tool in ("heaptrack", "heaptrack_print"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} not found: apt-get install heaptrack")
    subprocess.run([sys.executable, os.path.join(HERE, "gen.py"), str(args.n)], check=True)
    env = dict(os.environ, CARGO_TARGET_DIR=TARGET)
    subprocess.run(
        ["cargo", "build", "--quiet", "--profile", "profiling", "--features", "system-alloc"],
        cwd=ROOT, env=env, check=True,
    )
    stackc = os.path.join(TARGET, "profiling", "stackc")
    src = os.path.join(HERE, "data", f"services-{args.n}.stack")
    with tempfile.TemporaryDirectory() as work:
        cmd = [stackc, args.cmd, src]
        if args.cmd == "build":
            cmd += ["--out", os.path.join(work, "out")]
        data = os.path.join(work, "heap")
        subprocess.run(["heaptrack", "-o", data, *cmd], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=True)
        data = next(os.path.join(work, f) for f in os.listdir(work) if f.startswith("heap"))
        summary = subprocess.run(["heaptrack_print", "-f", data, "--print-peaks", "0",
                                  "--print-allocators", "0", "--print-temporary", "0",
                                  "--print-leaks", "0"],
                                 capture_output=True, text=True, check=True).stdout
        flame = os.path.join(work, "peak.txt")
        subprocess.run(["heaptrack_print", "-f", data, "--flamegraph-cost-type", "peak", "-F", flame],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        stages = collections.Counter()
        functions = collections.Counter()
        with open(flame) as f:
            for line in f:
                stack, _, cost = line.rstrip("\n").rpartition(" ")
                if not cost.isdigit():
                    continue
                frames = stack.split(";")
                stages[stage_of(frames)] += int(cost)
                functions[function_of(frames)] += int(cost)
    for line in summary.splitlines():
        if line.startswith(("calls to allocation functions", "peak heap memory", "peak RSS")):
            print(line)
    total = sum(stages.values()) or 1
    print(f"\nstackc {args.cmd}, N = {args.n}: the heap at its peak, by stage\n")
    print("| stage | MB | share |\n|---|---|---|")
    for name, cost in stages.most_common():
        print(f"| {name} | {cost / 1e6:.1f} | {100 * cost / total:.0f} % |")
    print("\n| innermost stackc function | MB |\n|---|---|")
    for name, cost in functions.most_common(args.top):
        print(f"| `{name}` | {cost / 1e6:.1f} |")


if __name__ == "__main__":
    main(sys.argv)
