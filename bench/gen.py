#!/usr/bin/env python3
"""Writes the peer benchmark's workload (../shared/bench/peers/README.md) for stackc.

usage: bench/gen.py [N ...]        (default N = 10 100 1000 10000)

For each N, into bench/data/:
  services-N.json   the peers' input, the same bytes as the peers' gen_data.py
                    writes (their check.py reads it to know what the output means)
  services-N.stack  the same services as a .stack file, with the two topologies
                    that give the peers' four outputs:
                      single      one host: a compose file, one env file per
                                  service, an nginx proxy with one upstream and
                                  one location per service
                      kubernetes  a Deployment and a Service per service

Service i (0-based): svc-<i>, image registry.example.com/svc-<i>:1.<i%7>.0, port
8000 + (i % 1000), replicas 1 + (i % 3), env LOG_LEVEL, APP_ENV, OTEL_EXPORTER,
then one <DEP>_URL per dependency svc-<i-1>, svc-<i-7> (a reference: stackc looks
up the dependency's port and writes http://svc-j:<port>), an HTTP health check on
/health, a route /svc-<i>/ (least connections, prefix stripped, as the peers'
`proxy_pass http://svc-<i>/`).
"""
import json
import os
import sys

FIXED_ENV = [
    {"name": "LOG_LEVEL", "value": "info"},
    {"name": "APP_ENV", "value": "production"},
    {"name": "OTEL_EXPORTER", "value": "otlp"},
]


def data(n):
    """The peers' data file for N services (their gen_data.py's formula)."""
    return {"services": [{
        "name": f"svc-{i}",
        "image": f"registry.example.com/svc-{i}:1.{i % 7}.0",
        "port": 8000 + (i % 1000),
        "replicas": 1 + (i % 3),
        "env": [dict(kv) for kv in FIXED_ENV],
        "depends_on": [f"svc-{j}" for j in (i - 1, i - 7) if j >= 0],
        "health_path": "/health",
    } for i in range(n)]}


def service(s):
    env = [f'    {e["name"]} = "{e["value"]}"' for e in s["env"]]
    env += [f"    {d.upper().replace('-', '_')}_URL = {d}.url" for d in s["depends_on"]]
    name = s["name"]
    return "\n".join([
        f"service {name} {{",
        f'  image = "{s["image"]}"',
        f"  port http = {s['port']}",
        f"  replicas = {s['replicas']}",
        "  env {",
        *env,
        "  }",
        "  health {",
        f'    http = "{s["health_path"]}"',
        "    interval = 10s",
        "    timeout = 3s",
        "    retries = 3",
        "  }",
        f'  route "/{name}/" {{',
        "    strategy = least_conn",
        "    strip_prefix = true",
        "  }",
        "}",
        "",
    ])


def stack(doc):
    services = doc["services"]
    parts = [f"# The peer benchmark's workload, N = {len(services)}.\nstack bench\n\n"]
    parts += [service(s) for s in services]
    names = ", ".join(s["name"] for s in services)
    parts.append(
        "topology single {\n"
        "  host main {\n"
        '    address = "10.0.0.1"\n'
        f"    run = [{names}]\n"
        "  }\n"
        "  proxy edge: nginx { host = main }\n"
        "}\n\n"
        "topology kubernetes {\n"
        "  platform = kubernetes\n"
        f"  run = [{names}]\n"
        "}\n")
    return "".join(parts)


def main(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    out = os.path.join(here, "data")
    os.makedirs(out, exist_ok=True)
    for n in [int(a) for a in argv[1:]] or [10, 100, 1000, 10000]:
        doc = data(n)
        with open(os.path.join(out, f"services-{n}.json"), "w") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")
        with open(os.path.join(out, f"services-{n}.stack"), "w") as f:
            f.write(stack(doc))


if __name__ == "__main__":
    main(sys.argv)
