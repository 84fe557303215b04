#!/usr/bin/env python3
"""Checks stackc's output for the peer benchmark's workload against the peers'
meaning, with the peers' own checker (../shared/bench/peers/check.py).

usage: bench/peers.py [--peers DIR] N [N ...]

For each N: builds bench/data/services-N.stack (bench/gen.py writes it) into
bench/out/peers-N, projects the files stackc wrote onto the peers' four files
(bench/out/peers-N/projected/{compose.yaml,k8s.yaml,nginx.conf,services.env}),
and compares them with what check.py's `expected()` computes from the same data
file, using check.py's own parsers (`actual()`) and comparison (`first_diff()`).

The projection only selects and renames: every value in the projected files is
one stackc wrote. stackc writes more than the peers (labels, strategies,
disruption budgets, proxy headers...): that is left out. Where stackc writes a
different value on purpose, the expected side is changed, and each change is
listed in DIFFERENCES (printed with the result):
"""
import argparse
import importlib.util
import os
import re
import subprocess
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
STACKC = os.path.join(ROOT, "target", "release", "stackc")
Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

DIFFERENCES = [
    "compose: no `ports` (stackc publishes no host port for services behind its "
    "nginx; the peers publish 8000 + i % 1000 on one host, which collides from "
    "N = 1001 on, and for every service with 2 or 3 replicas)",
    "k8s: readinessProbe.periodSeconds is 10, not 5 (the workload's one health "
    "check, every 10 s, serves both probes)",
    "nginx: one `server svc-<i>:<port>` per upstream, not one `svc-<i>-<k>` per "
    "replica (compose's DNS gives every replica's address for the service name; "
    "`svc-<i>-<k>` names no container)",
]
__doc__ += "".join(f"  - {d}\n" for d in DIFFERENCES)


def load_check(peers):
    spec = importlib.util.spec_from_file_location("peers_check", os.path.join(peers, "check.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def project_compose(out):
    with open(os.path.join(out, "single", "compose", "main.yml")) as f:
        compose = yaml.load(f, Loader=Loader)
    services = {}
    for name, s in compose["services"].items():
        if name == "edge":  # the proxy stackc adds
            continue
        test = s["healthcheck"]["test"]
        url = re.search(r"http://\S+", test[1]).group(0)
        services[name] = {
            "image": s["image"],
            "environment": s["environment"],
            "depends_on": list(s.get("depends_on", {})),
            "deploy": {"replicas": s.get("deploy", {}).get("replicas", 1)},
            "healthcheck": {
                "test": ["CMD", "curl", "-f", url],
                **{k: s["healthcheck"][k] for k in ("interval", "timeout", "retries")},
            },
        }
    return yaml.safe_dump({"services": services}, sort_keys=False)


def project_k8s(out, names):
    docs = []
    for name in names:
        with open(os.path.join(out, "kubernetes", "k8s", f"{name}.yaml")) as f:
            objects = {d["kind"]: d for d in yaml.load_all(f, Loader=Loader) if d}
        dep, svc = objects["Deployment"], objects["Service"]
        app = lambda labels: {"app": labels["app.kubernetes.io/name"]}
        c = dep["spec"]["template"]["spec"]["containers"][0]
        port_of = {p["name"]: p["containerPort"] for p in c["ports"]}
        probe = lambda p: {"httpGet": {"path": p["httpGet"]["path"],
                                       "port": port_of.get(p["httpGet"]["port"], p["httpGet"]["port"])},
                           "periodSeconds": p["periodSeconds"]}
        docs.append({
            "apiVersion": dep["apiVersion"], "kind": dep["kind"],
            "metadata": {"name": dep["metadata"]["name"], "labels": app(dep["metadata"]["labels"])},
            "spec": {
                "replicas": dep["spec"]["replicas"],
                "selector": {"matchLabels": app(dep["spec"]["selector"]["matchLabels"])},
                "template": {"metadata": {"labels": app(dep["spec"]["template"]["metadata"]["labels"])},
                             "spec": {"containers": [{
                                 "name": c["name"], "image": c["image"],
                                 "ports": [{"containerPort": p["containerPort"]} for p in c["ports"]],
                                 "env": c["env"],
                                 "readinessProbe": probe(c["readinessProbe"]),
                                 "livenessProbe": probe(c["livenessProbe"]),
                             }]}},
            },
        })
        docs.append({
            "apiVersion": svc["apiVersion"], "kind": svc["kind"],
            "metadata": {"name": svc["metadata"]["name"], "labels": app(svc["metadata"]["labels"])},
            "spec": {"selector": app(svc["spec"]["selector"]),
                     "ports": [{"port": p["port"], "targetPort": port_of.get(p["targetPort"], p["targetPort"]),
                                "protocol": p["protocol"]} for p in svc["spec"]["ports"]]},
        })
    return yaml.safe_dump_all(docs, sort_keys=False)


def project_nginx(out, check, names):
    with open(os.path.join(out, "single", "nginx", "edge.conf")) as f:
        tree = check.parse_nginx(f.read())
    http = next(body for head, *rest in tree if head == "http" for body in rest)
    server = next(body for head, body in (b for b in http if len(b) == 2 and isinstance(b[1], list))
                  if head == "server")
    # Each upstream is named after the service whose location proxies to it.
    locations, service_of = [], {}
    for head, body in (b for b in server if len(b) == 2 and isinstance(b[1], list)):
        path = head.split()[-1]
        target = next((d[1] for d in body if d[0] == "proxy_pass"), None)
        if not target or path == "/health":
            continue
        upstream = target.removeprefix("http://").rstrip("/")
        service_of[upstream] = path.strip("/")
        locations.append((path, target.replace(upstream, path.strip("/"))))
    lines = []
    for head, body in (b for b in http if len(b) == 2 and isinstance(b[1], list)):
        words = head.split()
        if words[0] != "upstream":
            continue
        lines.append(f"upstream {service_of[words[1]]} {{")
        lines += [" ".join(d) + ";" for d in body if d[0] in ("least_conn", "server")]
        lines.append("}")
    listen = next(d for d in server if d[0] == "listen")
    # Prefix locations match by the longest prefix, in any order: stackc writes the
    # longest first, the peers in the services' order.
    order = {name: i for i, name in enumerate(names)}
    locations.sort(key=lambda l: order[l[0].strip("/")])
    lines.append("server {")
    lines.append(f"listen {listen[1]};")
    lines += [f"location {path} {{ proxy_pass {target}; }}" for path, target in locations]
    lines.append("}")
    return "\n".join(lines) + "\n"


def project_env(out, names):
    parts = []
    for name in names:
        with open(os.path.join(out, "single", "env", "main", f"{name}.env")) as f:
            parts.append(f"# --- {name}.env ---\n" + f.read())
    return "".join(parts)


def expected_with_differences(check, data):
    exp = check.expected(data)
    for s in exp["compose"]["services"].values():
        del s["ports"]
    for d in exp["k8s"]:
        if d["kind"] == "Deployment":
            d["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["periodSeconds"] = 10
    nginx = []
    for head, body in exp["nginx"]:
        if head.startswith("upstream "):
            server = next(d for d in body if d[0] == "server")
            name = head.split()[1]
            port = server[1].rsplit(":", 1)[1]
            body = [d for d in body if d[0] != "server"] + [("server", f"{name}:{port}", *server[2:])]
        nginx.append((head, body))
    exp["nginx"] = nginx
    return exp


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--peers", default=os.path.join(ROOT, "..", "shared", "bench", "peers"))
    ap.add_argument("ns", nargs="+", type=int)
    args = ap.parse_args(argv[1:])
    check = load_check(args.peers)
    subprocess.run([sys.executable, os.path.join(HERE, "gen.py"), *map(str, args.ns)], check=True)
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    bad = 0
    for n in args.ns:
        data = os.path.join(HERE, "data", f"services-{n}.json")
        out = os.path.join(HERE, "out", f"peers-{n}")
        subprocess.run([STACKC, "build", os.path.join(HERE, "data", f"services-{n}.stack"), "--out", out],
                       check=True, stdout=subprocess.DEVNULL)
        names = [f"svc-{i}" for i in range(n)]
        projected = os.path.join(out, "projected")
        os.makedirs(projected, exist_ok=True)
        for file, text in [("compose.yaml", project_compose(out)), ("k8s.yaml", project_k8s(out, names)),
                           ("nginx.conf", project_nginx(out, check, names)), ("services.env", project_env(out, names))]:
            with open(os.path.join(projected, file), "w") as f:
                f.write(text)
        exp = expected_with_differences(check, data)
        act = check.actual(projected)
        diff = next((f"{k}: {d}" for k in exp if (d := check.first_diff(exp[k], act[k]))), None)
        print(f"{'OK ' if not diff else 'BAD'} N={n} {projected}" + (f"  {diff}" if diff else ""))
        bad += bool(diff)
    print("with these differences, on purpose:")
    for d in DIFFERENCES:
        print(f"  - {d}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
