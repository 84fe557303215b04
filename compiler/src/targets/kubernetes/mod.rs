//! Kubernetes: `out/<topology>/k8s/`, for topologies with `platform = kubernetes`.
//!
//! - `00-namespace.yaml`: the Namespace (applied first by `kubectl apply -f k8s/`);
//! - `<service>.yaml`: the workload (a Deployment for stateless services, a
//!   StatefulSet with a headless Service and volume claims for stateful ones), its
//!   Service, and its HorizontalPodAutoscaler, PodDisruptionBudget and volume claims;
//! - `routes.yaml`: with `gateway`, the Gateway API HTTPRoutes instead;
//! - `ingress.yaml`: one Ingress for every service with a public URL, and
//!   `certificates.yaml`: cert-manager's Issuer and Certificates for its https
//!   hosts;
//! - `network-policies.yaml`: the NetworkPolicies, a default deny and what
//!   each workload lets in (`policies.rs`);
//! - `alerts.yaml`: with PodMonitors, the alerting rules as a PrometheusRule
//!   (`monitoring.rs`);
//! - `secrets.sh`: the secret keys the topology needs and the command that creates
//!   the Secret from environment variables. No secret value is ever written.
//!
//! References resolve to Service names in the namespace. A value that embeds a
//! secret is built with `$(VAR)` expansion from a variable defined earlier in the
//! same container's env.

use indexmap::IndexMap;

use super::k8s_types::*;
use super::{header, yaml, Artifact};
use crate::base::{IndexSet, Name};
use crate::diag::Diagnostics;
use crate::model::{Command, Cpu, Duration, HaMode, ProbeCheck, Protocol, Role, Size};
use crate::options::Options;
use crate::plan::kubernetes_names::headless as headless_name;
use crate::plan::text_of as literal;
use crate::plan::{self, Instance, Out, Plan, RoutedPath, SentinelPlan, TopologyPlan};

mod certificates;
mod cnpg;
mod gateway;
mod ingress;
/// What the topology's route objects cannot express of its routes.
pub(crate) fn unexpressible(topo: &TopologyPlan, diags: &mut Diagnostics) {
    if topo.gateway.is_some() {
        gateway::unexpressible(topo, diags);
    } else {
        ingress::unexpressible(topo, diags);
    }
}
mod monitoring;
pub(crate) use monitoring::unexpressible_scrape;
mod policies;
mod secrets;
mod sentinel;
mod starts;
mod tasks;
mod workload;

/// What one topology's objects share.
struct Cx<'a> {
    plan: &'a Plan,
    topo: &'a TopologyPlan,
    options: &'a Options,
    secret_name: String,
    /// The tasks that run once, and who waits for each.
    tasks: tasks::TaskIndex<'a>,
    /// Its instances by name (a Kubernetes topology is one host).
    instances: rustc_hash::FxHashMap<&'a str, &'a Instance>,
}

/// The YAML documents of one file, in order, serialized as they are added. A
/// value that cannot be serialized is a bug of stackc: the first error is
/// kept, and the file is not written.
#[derive(Default)]
struct Documents {
    texts: Vec<String>,
    error: Option<String>,
}

impl Documents {
    fn of<T: serde::Serialize>(object: &T) -> Documents {
        let mut docs = Documents::default();
        docs.push(object);
        docs
    }

    fn failed(error: String) -> Documents {
        Documents {
            texts: Vec::new(),
            error: Some(error),
        }
    }

    fn push<T: serde::Serialize>(&mut self, object: &T) {
        match yaml::to_string(object) {
            Ok(text) => self.texts.push(text),
            Err(e) => {
                self.error.get_or_insert(e);
            }
        }
    }

    /// The file: `header`, then the documents separated by `---`.
    fn after(self, mut header: String) -> Result<String, String> {
        if let Some(e) = self.error {
            return Err(e);
        }
        for (i, text) in self.texts.iter().enumerate() {
            if i > 0 {
                header.push_str("---\n");
            }
            header.push_str(text);
        }
        Ok(header)
    }
}

/// The image of a Redis master endpoint.
const REDIS_PROXY_IMAGE: &str = "haproxy:2.8-alpine";

pub fn generate(
    plan: &Plan,
    topo: &TopologyPlan,
    options: &Options,
    out: &mut super::Files<'_>,
    diags: &mut Diagnostics,
) {
    let cx = Cx {
        plan,
        topo,
        options,
        secret_name: format!("{}-secrets", plan.stack),
        tasks: tasks::TaskIndex::new(topo),
        instances: topo
            .hosts
            .iter()
            .flat_map(|h| &h.services)
            .map(|i| (i.name.as_str(), i))
            .collect(),
    };
    let mut write = |file: &str, docs: Documents, out: &mut super::Files<'_>| match docs
        .after(header("#", options, &topo.name))
    {
        Ok(contents) => out.push(Artifact {
            path: format!("{}/k8s/{file}", topo.name),
            contents,
        }),
        Err(e) => diags.push(super::internal(
            topo,
            &format!("Kubernetes file {file}"),
            &e,
        )),
    };
    let namespace = Object::<()> {
        api_version: "v1",
        kind: "Namespace",
        metadata: Metadata {
            name: topo.namespace.clone(),
            labels: cx.part_of(),
            ..Default::default()
        },
        ..Default::default()
    };
    write("00-namespace.yaml", Documents::of(&namespace), out);
    let instances: Vec<&Instance> = topo.hosts.iter().flat_map(|h| &h.services).collect();
    let mut restores = Vec::new();
    for inst in &instances {
        write(
            &format!("{}.yaml", inst.name),
            cx.service_objects(inst),
            out,
        );
        restores.extend(cx.cnpg_restore(inst).map(|r| (*inst, r)));
    }
    write(
        "network-policies.yaml",
        cx.network_policies(&instances),
        out,
    );
    // The public routes: HTTPRoutes of the topology's Gateway, or Ingresses.
    let routes = cx.http_routes(&instances);
    if !routes.texts.is_empty() {
        write("routes.yaml", routes, out);
    }
    let ingresses = if topo.gateway.is_some() {
        Vec::new()
    } else {
        cx.ingresses(&instances)
    };
    let certificates: Vec<String> = certificates::tls(&ingresses)
        .into_iter()
        .map(|t| t.secret_name.clone())
        .collect();
    if let Some(rules) = cx.prometheus_rule(&instances, &certificates) {
        write("alerts.yaml", rules, out);
    }
    if !ingresses.is_empty() {
        if let Some(certificates) = cx.certificates(&ingresses) {
            write("certificates.yaml", certificates, out);
        }
        let mut docs = Documents::default();
        for ingress in &ingresses {
            docs.push(ingress);
        }
        write("ingress.yaml", docs, out);
    }
    out.push(Artifact {
        path: format!("{}/k8s/secrets.sh", topo.name),
        contents: cx.secrets_script(&instances, options),
    });
    for (inst, docs) in restores {
        restore_file(topo, options, inst, docs, out, diags);
    }
}

/// `restore/<service>.yaml`, outside `k8s/`, with how to use it.
fn restore_file(
    topo: &TopologyPlan,
    options: &Options,
    inst: &Instance,
    docs: Documents,
    out: &mut super::Files<'_>,
    diags: &mut Diagnostics,
) {
    let name = &inst.name;
    let ns = &topo.namespace;
    let lines = [
        format!("Recreates the CloudNativePG cluster `{name}` from its backups, to the latest"),
        "archived change. The old cluster is deleted first (its volumes with it):".into(),
        String::new(),
        format!("  kubectl delete cluster {name} --namespace {ns}"),
        format!("  kubectl apply -f restore/{name}.yaml"),
        String::new(),
        "To a time instead, add under spec.bootstrap.recovery:".into(),
        "  recoveryTarget:".into(),
        "    targetTime: \"2026-12-02 06:00:00+00\"".into(),
        "The cluster archives into the same store again, on a new timeline.".into(),
    ];
    let mut how = header("#", options, &topo.name);
    for line in lines {
        how.push_str(format!("# {line}").trim_end());
        how.push('\n');
    }
    match docs.after(how) {
        Ok(contents) => out.push(Artifact {
            path: format!("{}/restore/{name}.yaml", topo.name),
            contents,
        }),
        Err(e) => diags.push(super::internal(topo, &format!("restore/{name}.yaml"), &e)),
    }
}

impl Cx<'_> {
    fn part_of(&self) -> Labels {
        IndexMap::from([
            ("app.kubernetes.io/part-of".into(), self.plan.stack.clone()),
            ("app.kubernetes.io/managed-by".into(), "stackc".into()),
        ])
    }

    /// The labels that select a service's pods.
    fn selector(&self, inst: &Instance) -> Labels {
        self.named_selector(&inst.name)
    }

    /// The labels that select the pods of one workload (a service may have several).
    fn named_selector(&self, name: &str) -> Labels {
        IndexMap::from([
            ("app.kubernetes.io/name".into(), name.to_string()),
            ("app.kubernetes.io/instance".into(), self.plan.stack.clone()),
        ])
    }

    fn labels(&self, inst: &Instance) -> Labels {
        let component = inst.kind.clone().unwrap_or_else(|| match inst.role {
            Role::Stateful => "stateful".into(),
            Role::Stateless => "stateless".into(),
            Role::Task => "task".into(),
        });
        self.named_labels(&inst.name, &component)
    }

    fn named_labels(&self, name: &str, component: &str) -> Labels {
        let mut labels = self.named_selector(name);
        labels.insert("app.kubernetes.io/component".into(), component.to_string());
        labels.extend(self.part_of());
        labels
    }

    fn metadata(&self, name: String, inst: &Instance) -> Metadata {
        Metadata {
            name,
            namespace: Some(self.topo.namespace.clone()),
            labels: self.labels(inst),
            ..Metadata::default()
        }
    }
}

/// A Kubernetes CPU quantity: cores, or millicores.
pub fn cpu(c: Cpu) -> String {
    if c.0.is_multiple_of(1000) {
        (c.0 / 1000).to_string()
    } else {
        format!("{}m", c.0)
    }
}

/// A Kubernetes memory quantity, in the largest binary or decimal unit that is exact.
pub fn memory(s: Size) -> String {
    let b = s.0;
    let units: [(u64, &str); 6] = [
        (1 << 40, "Ti"),
        (1 << 30, "Gi"),
        (1 << 20, "Mi"),
        (1_000_000_000, "G"),
        (1_000_000, "M"),
        (1 << 10, "Ki"),
    ];
    for (size, unit) in units {
        if b >= size && b.is_multiple_of(size) {
            return format!("{}{unit}", b / size);
        }
    }
    b.to_string()
}
