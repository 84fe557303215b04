#!/usr/bin/env python3
"""How stackc's time grows with the shapes of input that were once super-linear.

usage: bench/growth.py [--stackc PATH] [--runs K] [--scale S] [--only SHAPE ...]

For each shape, the input at 1x, 10x and 100x of its base size, `stackc` run on
it K times (default 3; the median is kept), and the table of N against time
with each step's ratio: a linear shape gives about 10 per step, a quadratic
one 100. The shapes (issue 21):

  kind chain      kind k1 { ... }, kind k2: k1, ... N deep          check
  duplicates      N services of one name (N - 1 errors)             check
  errors          N services, each with an unknown field            check
  escapes         one string of N escapes (`\\n`)                    check
  fmt diff        an unformatted list of N entries                  fmt --check
  graph chain     N services, each depending on the one before      graph
  lsp outline     a file of N services, the outline asked once      lsp
  lsp edits       N edits sent at once, then a hover                lsp

The output is a Markdown table (docs/performance.md keeps the figures).
Absolute times drift on a shared machine; the ratios within a row are the
measure. --scale shrinks every size (0.1 for a quick look).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def kind_chain(n):
    lines = ['kind k0 {\n  image = "k:1"\n  port http = 8000\n}\n']
    lines += [f"kind k{i}: k{i - 1} {{ }}\n" for i in range(1, n)]
    lines.append(f"service s: k{n - 1} {{ }}\n")
    lines.append("topology t {\n  host h { run = [s] }\n}\n")
    return "".join(lines)


def duplicates(n):
    body = 'service api {\n  image = "api:1"\n}\n' * n
    return body + "topology t {\n  host h { run = [api] }\n}\n"


def errors(n):
    services = "".join(
        f'service s{i} {{\n  image = "s:1"\n  bogus = 1\n}}\n' for i in range(n)
    )
    names = ", ".join(f"s{i}" for i in range(n))
    return services + f"topology t {{\n  host h {{ run = [{names}] }}\n}}\n"


def escapes(n):
    value = "\\n" * n
    return (
        f'service s {{\n  image = "s:1"\n  env {{ LONG = "{value}" }}\n}}\n'
        "topology t {\n  host h { run = [s] }\n}\n"
    )


def fmt_list(n):
    # One entry per line, badly indented: every line changes.
    entries = "".join(f'   "--flag-{i}",\n' for i in range(n))
    return f'service s {{\nimage = "s:1"\n command = [\n{entries} ]\n}}\n'


def chain(n):
    services = ['service s0 {\n  image = "s:1"\n  port http = 8000\n}\n']
    services += [
        f'service s{i} {{\n  image = "s:1"\n  port http = 8000\n  env {{ UP = s{i - 1}.url }}\n}}\n'
        for i in range(1, n)
    ]
    names = ", ".join(f"s{i}" for i in range(n))
    return "".join(services) + f"topology t {{\n  host h {{ run = [{names}] }}\n}}\n"


def services(n):
    body = "".join(f'service s{i} {{\n  image = "s:1"\n}}\n' for i in range(n))
    names = ", ".join(f"s{i}" for i in range(n))
    return body + f"topology t {{\n  host h {{ run = [{names}] }}\n}}\n"


def frame(message):
    body = json.dumps(message).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


class Lsp:
    """stackc lsp, driven over its standard input and output."""

    def __init__(self, stackc):
        self.proc = subprocess.Popen(
            [stackc, "lsp"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        self.next_id = 1
        self.request("initialize", {"processId": None, "rootUri": None, "capabilities": {}})

    def send(self, message):
        self.proc.stdin.write(frame(message))
        self.proc.stdin.flush()

    def receive(self):
        length = 0
        while True:
            line = self.proc.stdout.readline()
            if not line:
                sys.exit("stackc lsp closed its output")
            line = line.strip()
            if not line:
                break
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        return json.loads(self.proc.stdout.read(length))

    def request(self, method, params):
        ident = self.next_id
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": ident, "method": method, "params": params})
        while True:
            message = self.receive()
            if message.get("id") == ident:
                return message

    def notify(self, method, params):
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def close(self):
        self.request("shutdown", None)
        self.notify("exit", None)
        self.proc.wait()


URI = "file:///growth/app.stack"


def lsp_outline(stackc, n):
    server = Lsp(stackc)
    server.notify(
        "textDocument/didOpen",
        {"textDocument": {"uri": URI, "languageId": "stack", "version": 1, "text": services(n)}},
    )
    start = time.perf_counter()
    server.request("textDocument/documentSymbol", {"textDocument": {"uri": URI}})
    elapsed = time.perf_counter() - start
    server.close()
    return elapsed


def lsp_edits(stackc, n):
    text = services(200)
    server = Lsp(stackc)
    server.notify(
        "textDocument/didOpen",
        {"textDocument": {"uri": URI, "languageId": "stack", "version": 1, "text": text}},
    )
    start = time.perf_counter()
    for v in range(n):
        server.notify(
            "textDocument/didChange",
            {
                "textDocument": {"uri": URI, "version": v + 2},
                "contentChanges": [{"text": text + f"\n# edit {v}\n"}],
            },
        )
    position = {"textDocument": {"uri": URI}, "position": {"line": 0, "character": 9}}
    server.request("textDocument/hover", position)
    elapsed = time.perf_counter() - start
    server.close()
    return elapsed


SHAPES = [
    # name, base N, the file, the command (None: a function of stackc and N)
    ("kind chain", 1000, kind_chain, ["check"]),
    ("duplicates", 200, duplicates, ["check"]),
    ("errors", 200, errors, ["check"]),
    ("escapes", 4000, escapes, ["check"]),
    ("fmt diff", 400, fmt_list, ["fmt", "--check"]),
    ("graph chain", 1000, chain, ["graph"]),
    ("lsp outline", 100, None, lsp_outline),
    ("lsp edits", 10, None, lsp_edits),
]


def timed_command(stackc, args, text):
    with tempfile.TemporaryDirectory() as dir:
        path = os.path.join(dir, "app.stack")
        with open(path, "w") as f:
            f.write(text)
        start = time.perf_counter()
        subprocess.run(
            [stackc, *args, path],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=dir,
        )
        return time.perf_counter() - start


def main(argv):
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--stackc", default=os.path.join(HERE, "..", "target", "release", "stackc")
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--only", action="append", help="a shape's name (repeatable)")
    args = parser.parse_args(argv)
    print("| shape | N | time s | x previous |")
    print("|---|---|---|---|")
    for name, base, make, command in SHAPES:
        if args.only and name not in args.only:
            continue
        previous = None
        for factor in (1, 10, 100):
            n = max(2, int(base * factor * args.scale))
            times = []
            for _ in range(args.runs):
                if make is None:
                    times.append(command(args.stackc, n))
                else:
                    times.append(timed_command(args.stackc, command, make(n)))
            t = statistics.median(times)
            ratio = f"{t / previous:.1f}" if previous else ""
            print(f"| {name} | {n} | {t:.3f} | {ratio} |", flush=True)
            previous = t


if __name__ == "__main__":
    main(sys.argv[1:])
