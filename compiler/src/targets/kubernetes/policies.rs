//! `network-policies.yaml` (docs/targets.md, "kubernetes"): the namespace
//! denies every connection in, and each workload with a port lets in exactly
//! who reaches it in the dependency graph: the services that refer to it or
//! wait for it, its own peers (a Sentinel-watched Redis's nodes, sentinels
//! and master endpoint; a CloudNativePG cluster's instances, and its
//! operator), the ingress controller on the ports its routes use, the
//! cluster's Prometheus on its metrics port, and anyone on a public port
//! that has no public URL (its LoadBalancer Service). NetworkPolicies add up:
//! another policy of the operator's lets in more.

use serde::Serialize;

use super::*;
use crate::plan::kubernetes_names as names;
use crate::plan::SENTINEL_PORT;

/// The label the API server gives every namespace, its name.
const NAMESPACE_LABEL: &str = "kubernetes.io/metadata.name";

/// The label of CloudNativePG's instance pods, the cluster's name.
const CNPG_CLUSTER_LABEL: &str = "cnpg.io/cluster";

/// The port of a CloudNativePG instance's manager, which the operator asks.
const CNPG_STATUS_PORT: u16 = 8000;

/// The port of a CloudNativePG instance's metrics exporter.
const CNPG_METRICS_PORT: u16 = 9187;

/// PostgreSQL's port on a CloudNativePG instance.
const POSTGRES_PORT: u16 = 5432;

/// The label of the pods of the operators' own workloads.
const APP_NAME_LABEL: &str = "app.kubernetes.io/name";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PolicySpec {
    pod_selector: Selector,
    policy_types: [&'static str; 1],
    #[serde(skip_serializing_if = "Vec::is_empty")]
    ingress: Vec<Rule>,
}

/// Connections from `from` (anyone, when empty) to `ports`.
#[derive(Serialize)]
struct Rule {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    from: Vec<Peer>,
    ports: Vec<PolicyPort>,
}

/// Pods of this namespace (`pod_selector` alone), or of another
/// (`namespace_selector`, with `pod_selector` narrowing them).
#[derive(Serialize, Clone)]
#[serde(rename_all = "camelCase")]
struct Peer {
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace_selector: Option<Selector>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pod_selector: Option<Selector>,
}

#[derive(Serialize)]
struct PolicyPort {
    protocol: &'static str,
    port: u16,
}

fn tcp(port: u16) -> PolicyPort {
    PolicyPort {
        protocol: "TCP",
        port,
    }
}

fn selector(labels: Labels) -> Selector {
    Selector {
        match_labels: labels,
    }
}

fn one_label(key: &str, value: &str) -> Labels {
    IndexMap::from([(key.to_string(), value.to_string())])
}

impl Cx<'_> {
    /// The file: the default deny, then a policy per workload with a port.
    pub(super) fn network_policies(&self, instances: &[&Instance]) -> Documents {
        let mut docs = Documents::default();
        docs.push(&self.policy(
            "default-deny-ingress".into(),
            Selector::default(),
            Vec::new(),
        ));
        for inst in instances {
            for (name, spec) in self.policies_of(inst, instances) {
                docs.push(&self.policy(name, spec.pod_selector, spec.ingress));
            }
        }
        docs
    }

    fn policy(&self, name: String, pods: Selector, ingress: Vec<Rule>) -> Object<PolicySpec> {
        Object {
            api_version: "networking.k8s.io/v1",
            kind: "NetworkPolicy",
            metadata: Metadata {
                name,
                namespace: Some(self.topo.namespace.clone()),
                labels: self.part_of(),
                ..Default::default()
            },
            spec: Some(PolicySpec {
                pod_selector: pods,
                policy_types: ["Ingress"],
                ingress,
            }),
        }
    }

    /// The policies of one service's workloads, by name.
    fn policies_of(&self, inst: &Instance, all: &[&Instance]) -> Vec<(String, PolicySpec)> {
        if inst.ports.is_empty() {
            return Vec::new();
        }
        let consumers = self.consumers(inst, all);
        if inst.ha == HaMode::CloudNativePg {
            return vec![(inst.name.to_string(), self.cnpg_policy(inst, consumers))];
        }
        if inst.replication.sentinel.is_some() {
            return self.sentinel_policies(inst, consumers);
        }
        let mut rules = Vec::new();
        let all_ports: Vec<u16> = inst.ports.iter().map(|p| p.container).collect();
        rules.extend(from(consumers, &all_ports));
        let port_of = |name: &str| {
            inst.ports
                .iter()
                .find(|p| p.name == name)
                .map(|p| p.container)
        };
        let routed: Vec<u16> = ingress::routed_ports(inst)
            .iter()
            .filter_map(|n| port_of(n))
            .collect();
        rules.extend(from(vec![self.ingress_controller()], &routed));
        let metrics: Vec<u16> = inst
            .metrics
            .iter()
            .filter_map(|m| port_of(&m.port))
            .collect();
        rules.extend(from(vec![self.prometheus()], &metrics));
        // A public port without a public URL is its LoadBalancer's: anyone's.
        if inst.public_url.is_none() {
            let public: Vec<u16> = inst.public.iter().filter_map(|n| port_of(n)).collect();
            if !public.is_empty() {
                rules.push(Rule {
                    from: Vec::new(),
                    ports: public.into_iter().map(tcp).collect(),
                });
            }
        }
        vec![(
            inst.name.to_string(),
            PolicySpec {
                pod_selector: selector(self.selector(inst)),
                policy_types: ["Ingress"],
                ingress: rules,
            },
        )]
    }

    /// The pods of the services that refer to `inst` or depend on it.
    fn consumers(&self, inst: &Instance, all: &[&Instance]) -> Vec<Peer> {
        all.iter()
            .filter(|c| c.name != inst.name)
            .filter(|c| {
                c.refers_to.contains(&inst.name)
                    || c.depends_on.iter().any(|(d, _)| *d == inst.name)
            })
            .map(|c| self.pods(&c.name))
            .collect()
    }

    /// The pods of one workload of this namespace.
    fn pods(&self, workload: &str) -> Peer {
        Peer {
            namespace_selector: None,
            pod_selector: Some(selector(self.named_selector(workload))),
        }
    }

    /// The pods of a namespace, those with `app` as their name when given.
    fn namespace(&self, namespace: &str, app: Option<&str>) -> Peer {
        Peer {
            namespace_selector: Some(selector(one_label(NAMESPACE_LABEL, namespace))),
            pod_selector: app.map(|a| selector(one_label(APP_NAME_LABEL, a))),
        }
    }

    fn ingress_controller(&self) -> Peer {
        self.namespace(&self.topo.peer_namespaces.ingress, None)
    }

    fn prometheus(&self) -> Peer {
        self.namespace(&self.topo.peer_namespaces.monitoring, None)
    }

    /// A CloudNativePG cluster's instances: PostgreSQL from the consumers and
    /// each other (replication), the manager from the operator, the exporter
    /// from Prometheus when the service has metrics.
    fn cnpg_policy(&self, inst: &Instance, mut consumers: Vec<Peer>) -> PolicySpec {
        let instances = selector(one_label(CNPG_CLUSTER_LABEL, &inst.name));
        consumers.push(Peer {
            namespace_selector: None,
            pod_selector: Some(instances.clone()),
        });
        let operator = self.namespace(&self.topo.peer_namespaces.cnpg, Some("cloudnative-pg"));
        let mut ingress: Vec<Rule> = from(consumers, &[POSTGRES_PORT]).into_iter().collect();
        ingress.extend(from(vec![operator], &[CNPG_STATUS_PORT]));
        if inst.metrics.is_some() {
            ingress.extend(from(vec![self.prometheus()], &[CNPG_METRICS_PORT]));
        }
        PolicySpec {
            pod_selector: instances,
            policy_types: ["Ingress"],
            ingress,
        }
    }

    /// A Sentinel-watched Redis: its nodes, sentinels and master endpoint
    /// each let in the consumers (a Sentinel client asks the sentinels, then
    /// connects to the master node) and the others of the three.
    fn sentinel_policies(
        &self,
        inst: &Instance,
        consumers: Vec<Peer>,
    ) -> Vec<(String, PolicySpec)> {
        let nodes = inst.name.to_string();
        let sentinels = names::sentinels(&inst.name);
        let proxy = names::master_proxy(&inst.name);
        let redis_port = inst.ports.first().map_or(6379, |p| p.container);
        let with = |peers: &[&str]| -> Vec<Peer> {
            consumers
                .iter()
                .cloned()
                .chain(peers.iter().map(|p| self.pods(p)))
                .collect()
        };
        let policy = |name: &str, peers: Vec<Peer>, port: u16| {
            (
                name.to_string(),
                PolicySpec {
                    pod_selector: selector(self.named_selector(name)),
                    policy_types: ["Ingress"],
                    ingress: from(peers, &[port]).into_iter().collect(),
                },
            )
        };
        vec![
            policy(&nodes, with(&[&nodes, &sentinels, &proxy]), redis_port),
            policy(&sentinels, with(&[&nodes, &sentinels]), SENTINEL_PORT),
            policy(&proxy, with(&[]), redis_port),
        ]
    }
}

/// A rule from `peers` to `ports`; none when either is empty (a rule with no
/// peer would let anyone in).
fn from(peers: Vec<Peer>, ports: &[u16]) -> Option<Rule> {
    if peers.is_empty() || ports.is_empty() {
        return None;
    }
    Some(Rule {
        from: peers,
        ports: ports.iter().map(|p| tcp(*p)).collect(),
    })
}
