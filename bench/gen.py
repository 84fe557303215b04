#!/usr/bin/env python3
"""Writes data/services-N.stack: the peer benchmark's workload
(../shared/bench/peers/README.md) as a .stack file.

Service i (0-based): svc-<i>, image registry.example.com/svc-<i>:1.<i%7>.0,
port 8000 + (i % 1000), replicas 1 + (i % 3), env LOG_LEVEL, APP_ENV,
OTEL_EXPORTER, then one <DEP>_URL per dependency svc-<i-1>, svc-<i-7> (as a
reference: stackc resolves it to http://svc-j:<port of j>), an HTTP health check
on /health. One topology, one host running every service.
"""
import os
import sys


def service(i):
    deps = [f"svc-{j}" for j in (i - 1, i - 7) if j >= 0]
    env = ['    LOG_LEVEL = "info"', '    APP_ENV = "production"', '    OTEL_EXPORTER = "otlp"']
    env += [f"    {d.upper().replace('-', '_')}_URL = {d}.url" for d in deps]
    return "\n".join([
        f"service svc-{i} {{",
        f'  image = "registry.example.com/svc-{i}:1.{i % 7}.0"',
        f"  port http = {8000 + i % 1000}",
        f"  replicas = {1 + i % 3}",
        "  env {",
        *env,
        "  }",
        "  health {",
        '    http = "/health"',
        "    interval = 10s",
        "    timeout = 3s",
        "    retries = 3",
        "  }",
        "}",
        "",
    ])


def main(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    out = os.path.join(here, "data")
    os.makedirs(out, exist_ok=True)
    for n in [int(a) for a in argv[1:]] or [10, 100, 1000, 10000]:
        parts = [f"# The peer benchmark's workload, N = {n}.\nstack bench\n\n"]
        parts += [service(i) for i in range(n)]
        names = ", ".join(f"svc-{i}" for i in range(n))
        parts.append(f'topology bench {{\n  host main {{\n    address = "10.0.0.1"\n    run = [{names}]\n  }}\n}}\n')
        with open(os.path.join(out, f"services-{n}.stack"), "w") as f:
            f.write("".join(parts))


if __name__ == "__main__":
    main(sys.argv)
