#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need, then
# runs the formatter check, clippy and every test. `.ci/run` calls this script.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# The real programs the tests run the generated files through (see docs/testing.md).
# docker-compose without its Recommends: no Docker engine is needed for `config`.
need=()
command -v docker-compose >/dev/null || need+=(docker-compose)
command -v yamllint >/dev/null || need+=(yamllint)
command -v nginx >/dev/null || need+=(nginx)
command -v haproxy >/dev/null || need+=(haproxy)
command -v promtool >/dev/null || need+=(prometheus)
# amtool checks the Alertmanager configs; its alertmanager routes alerts to a
# test receiver (tests/alerting.rs).
command -v amtool >/dev/null || need+=(prometheus-alertmanager)
# The Blackbox exporter probes the certificates of a proxy as generated
# (tests/certificate_probe.rs).
command -v prometheus-blackbox-exporter >/dev/null || need+=(prometheus-blackbox-exporter)
command -v redis-server >/dev/null || need+=(redis-server)
command -v redis-sentinel >/dev/null || need+=(redis-sentinel)
command -v openssl >/dev/null || need+=(openssl)
command -v unshare >/dev/null || need+=(util-linux)
command -v gosu >/dev/null || need+=(gosu)
command -v dot >/dev/null || need+=(graphviz)
command -v nvim >/dev/null || need+=(neovim)
command -v etcd >/dev/null || need+=(etcd-server)
command -v etcdctl >/dev/null || need+=(etcd-client)
# strace: a test sees the syncs a build makes before it swaps a tree in.
command -v strace >/dev/null || need+=(strace)
# The host firewalls: nft checks and loads them, ip makes the namespaces a
# loaded one is tried in (tests/firewall.rs).
command -v nft >/dev/null || need+=(nftables)
command -v ip >/dev/null || need+=(iproute2)
# The timers of scheduled tasks: systemd-analyze verifies them and computes
# their times, croniter the times cron would run (tests/schedules.rs); verify
# looks for the docker client the units run.
command -v systemd-analyze >/dev/null || need+=(systemd)
/usr/bin/python3 -c 'import croniter' 2>/dev/null || need+=(python3-croniter)
command -v docker >/dev/null || need+=(docker.io)
# Certificates end to end: Pebble as the ACME server, certbot as the generated
# script's client, curl as the verifying client (tests/acme_e2e.rs).
command -v pebble >/dev/null || need+=(pebble)
command -v certbot >/dev/null || need+=(certbot)
command -v curl >/dev/null || need+=(curl)
# Backups end to end: pgBackRest against Debian's PostgreSQL (tests/backup_restore.rs).
command -v pgbackrest >/dev/null || need+=(pgbackrest)
/usr/bin/python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
# PostgreSQL's programs (postgres, initdb, pg_ctl, psql, pg_basebackup) live in
# /usr/lib/postgresql/<version>/bin on Debian.
pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
{ command -v pg_ctl >/dev/null || [ -n "$(pg_bin)" ]; } || need+=(postgresql)
/usr/bin/python3 -c 'import yaml' 2>/dev/null || need+=(python3-yaml)
# The editor tests run VS Code's tokenizer and packager (npm, below).
command -v npm >/dev/null || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if ! command -v pg_ctl >/dev/null; then export PATH="$PATH:$(pg_bin)"; fi

# kubernetes-validate (PyPI), in a venv of its own.
tools=${STACKC_TOOLS:-/opt/stackc-tools}
if ! command -v kubernetes-validate >/dev/null && [ ! -x "$tools/kv/bin/kubernetes-validate" ]; then
  echo "installing: kubernetes-validate (PyPI) in $tools/kv"
  as_root mkdir -p "$tools"
  as_root python3 -m venv "$tools/kv"
  as_root "$tools/kv/bin/pip" install -q kubernetes-validate
fi
export PATH="$tools/kv/bin:$PATH"

# moto's S3 server (PyPI), the store of the backups to a bucket
# (tests/s3_store.rs), in a venv of its own.
if [ ! -x "$tools/moto/bin/moto_server" ]; then
  echo "installing: moto[server] (PyPI) in $tools/moto"
  as_root mkdir -p "$tools"
  as_root python3 -m venv "$tools/moto"
  as_root "$tools/moto/bin/pip" install -q "moto[server]==5.2.5"
fi
export PATH="$tools/moto/bin:$PATH"

# Patroni (PyPI, the release the generated node image installs), in a venv built
# from /usr/bin/python3: the tests run it as the postgres user, which cannot
# execute an interpreter under /root (../shared/TARGETS.md 0).
patroni_version=$(sed -n 's/^pub const PATRONI_VERSION: &str = "\(.*\)";/\1/p' compiler/src/plan/patroni.rs)
if [ "$("$tools/patroni/bin/patroni" --version 2>/dev/null)" != "patroni $patroni_version" ]; then
  echo "installing: patroni $patroni_version (PyPI) in $tools/patroni"
  as_root mkdir -p "$tools"
  as_root /usr/bin/python3 -m venv "$tools/patroni"
  as_root "$tools/patroni/bin/pip" install -q "patroni[etcd3,psycopg2-binary]==$patroni_version"
fi
export PATH="$tools/patroni/bin:$PATH"

# kubectl, whose `create secret --dry-run=client` makes the Secrets of
# secrets.sh without a cluster (tests/postgres_roles.rs); Debian ships none:
# the release binary, checked against its published digest.
kubectl_version=v1.32.0
if ! command -v kubectl >/dev/null && [ ! -x "$tools/kubectl/kubectl" ]; then
  echo "installing: kubectl $kubectl_version in $tools/kubectl"
  as_root mkdir -p "$tools/kubectl"
  base="https://dl.k8s.io/release/$kubectl_version/bin/linux/amd64/kubectl"
  # Where dl.k8s.io cannot be reached, the test that needs kubectl says so.
  if as_root curl -fsSL -o "$tools/kubectl/kubectl.new" "$base" \
    && echo "$(curl -fsSL "$base.sha256")  $tools/kubectl/kubectl.new" | sha256sum -c --quiet; then
    as_root chmod 755 "$tools/kubectl/kubectl.new"
    as_root mv "$tools/kubectl/kubectl.new" "$tools/kubectl/kubectl"
  else
    echo "could not install kubectl from $base" >&2
  fi
fi
export PATH="$PATH:$tools/kubectl"

# The editor tests (tests/editors.rs): VS Code's tokenizer (vscode-textmate on
# the Oniguruma engine VS Code uses) and its packager (vsce), pinned, and the
# extension's own dependencies, which a package bundles.
if [ ! -d "$tools/node/node_modules/vscode-textmate" ] || [ ! -x "$tools/node/node_modules/.bin/vsce" ]; then
  echo "installing: vsce, vscode-textmate, vscode-oniguruma (npm) in $tools/node"
  as_root mkdir -p "$tools/node"
  as_root npm install -q --no-audit --no-fund --prefix "$tools/node" \
    @vscode/vsce@2.32.0 vscode-textmate@9.3.2 vscode-oniguruma@2.0.1 >/dev/null
fi
if ! cmp -s editors/vscode/package.json "$tools/vscode-ext/package.json"; then
  echo "installing: the VS Code extension's dependencies (npm) in $tools/vscode-ext"
  as_root rm -rf "$tools/vscode-ext"
  as_root mkdir -p "$tools/vscode-ext"
  as_root cp editors/vscode/package.json "$tools/vscode-ext/"
  as_root npm install -q --no-audit --no-fund --omit=dev --prefix "$tools/vscode-ext" >/dev/null
fi

rustup component add rustfmt clippy >/dev/null 2>&1 || true

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --locked
# Each stage benchmark once, on a small workload: the benchmarks keep working.
STACKC_BENCH_N=50 cargo test --locked --bench stages

# The fuzz targets, for a bounded time each, from the committed corpus (under CI,
# or with STACKC_FUZZ=1; see scripts/fuzz.sh).
if [ "${CI:-}" = true ] || [ -n "${STACKC_FUZZ:-}" ]; then
  bash scripts/fuzz.sh
fi
