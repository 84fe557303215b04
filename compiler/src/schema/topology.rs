//! The fields of a topology and of its hosts.

use super::{f, Block};

pub const TOPOLOGY: Block = Block {
    called: "a topology",
    fields: &[
        f("platform", "`compose` (default) or `kubernetes`"),
        f("host", "a machine: `host NAME { address run ... }`"),
        f("run", "Kubernetes: the services in the cluster"),
        f("override", "fields of a service changed for this topology"),
        f(
            "external",
            "a service of the stack replaced by a managed one here",
        ),
        f(
            "namespace",
            "Kubernetes: the namespace (default: the stack's name)",
        ),
        f(
            "gpu_nodes",
            "Kubernetes: the cluster has nvidia.com/gpu nodes",
        ),
        f(
            "ingress_class",
            "Kubernetes: the IngressClass of public routes",
        ),
        f(
            "ingress_namespace",
            "Kubernetes: the ingress controller's namespace, let in to the routed ports (default `ingress-nginx`)",
        ),
        f(
            "monitoring_namespace",
            "Kubernetes: the cluster Prometheus's namespace, let in to the metrics ports (default `monitoring`)",
        ),
        f(
            "cnpg_namespace",
            "Kubernetes: the CloudNativePG operator's namespace, let in to its clusters' instances (default `cnpg-system`)",
        ),
        f(
            "gateway",
            "Kubernetes: the Gateway the public routes attach to, `NAMESPACE/NAME`: HTTPRoutes instead of Ingresses",
        ),
        f(
            "scrape",
            "Kubernetes: how the cluster's Prometheus finds the metrics: `pod_monitor` (default) or `annotations`",
        ),
        f(
            "directory",
            "compose: where `out/<topology>/` is on the hosts, for the timers of scheduled tasks (default `/opt/<stack>/out/<topology>`)",
        ),
        f("proxy", "an nginx or HAProxy serving the services' routes"),
        f(
            "acme",
            "where the certificates of https domains come from: `acme { directory  email }`",
        ),
        f(
            "receiver",
            "where Alertmanager sends the alerts: `receiver NAME { slack pagerduty webhook severity }`",
        ),
        f("production", "the production lints apply (default false)"),
        f("allow", "the production lints allowed here, by code"),
    ],
};

pub const HOST: Block = Block {
    called: "a host",
    fields: &[
        f(
            "address",
            "how other hosts reach it: compose binds published ports to it",
        ),
        f("gpu", "the GPUs on the host (or `true` for one)"),
        f(
            "ssh_port",
            "the port its SSH server listens on: its firewall lets it in (default 22)",
        ),
        f(
            "managed",
            "a platform (Vercel...) runs its services: env files only",
        ),
        f(
            "run",
            "the services it runs, each optionally with overrides",
        ),
    ],
};
