#!/usr/bin/env python3
"""Language server latency: from a change to a file to its diagnostics.

Starts `stackc lsp` (release build), opens bench/data/services-N.stack, then
sends 30 changes (each edits one service's env value, so every change gives a
new text) and times each from the didChange notification to the
publishDiagnostics notification that answers it. Prints the median and the
90th percentile. Each change is the range it replaces, as an editor sends it
to a server that offers incremental synchronisation (Neovim, VS Code); with
--full, the whole text, as they send it to one that does not.
Run: python3 bench/lsp.py [--full] [N ...]   (default 1000)
"""
import json, os, statistics, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# STACKC_BIN: another build, to compare (bench/ab.py builds old commits).
BIN = os.environ.get("STACKC_BIN") or os.path.join(ROOT, "target", "release", "stackc")


def send(p, msg):
    body = json.dumps(msg).encode()
    p.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
    p.stdin.flush()


def receive(p):
    length = 0
    while True:
        line = p.stdout.readline()
        if line in (b"\r\n", b"\n"):
            break
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return json.loads(p.stdout.read(length))


def wait(p, method):
    while True:
        m = receive(p)
        if m.get("method") == method:
            return m


def position(text, offset):
    """The LSP position of a character offset (the workload is ASCII)."""
    line = text.count("\n", 0, offset)
    return {"line": line, "character": offset - (text.rfind("\n", 0, offset) + 1)}


def change(text, i, full):
    """The i-th version of the text, and the change that makes it."""
    start = text.index('LOG_LEVEL = "') + len('LOG_LEVEL = "')
    end = text.index('"', start)
    new = f"info-{i}"
    changed = text[:start] + new + text[end:]
    if full:
        return changed, {"text": changed}
    span = {"start": position(text, start), "end": position(text, end)}
    return changed, {"range": span, "text": new}


def run(n, full):
    path = os.path.join(ROOT, "bench", "data", f"services-{n}.stack")
    if not os.path.exists(path):
        subprocess.run([sys.executable, os.path.join(ROOT, "bench", "gen.py"), str(n)], check=True)
    text = open(path).read()
    uri = "file://" + path
    p = subprocess.Popen([BIN, "lsp"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    send(p, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"processId": None, "rootUri": None, "capabilities": {}}})
    receive(p)
    send(p, {"jsonrpc": "2.0", "method": "initialized", "params": {}})
    send(p, {"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": {"uri": uri, "languageId": "stack", "version": 1, "text": text}}})
    wait(p, "textDocument/publishDiagnostics")
    times = []
    for i in range(30):
        text, edit = change(text, i, full)
        start = time.perf_counter()
        send(p, {"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {"textDocument": {"uri": uri, "version": i + 2}, "contentChanges": [edit]}})
        wait(p, "textDocument/publishDiagnostics")
        times.append(time.perf_counter() - start)
    send(p, {"jsonrpc": "2.0", "id": 2, "method": "shutdown"})
    receive(p)
    send(p, {"jsonrpc": "2.0", "method": "exit"})
    p.wait()
    times.sort()
    sync = "whole text" if full else "range"
    print(f"N={n} ({sync}): change -> diagnostics median {statistics.median(times)*1000:.1f} ms, p90 {times[int(len(times)*0.9)]*1000:.1f} ms")


if __name__ == "__main__":
    subprocess.run(["cargo", "build", "--release", "-q"], cwd=ROOT, check=True)
    full = "--full" in sys.argv[1:]
    for n in [int(a) for a in sys.argv[1:] if a != "--full"] or [1000]:
        run(n, full)
