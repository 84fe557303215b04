//! Checks that only hold on Kubernetes: names the API server accepts, images to
//! pull, and what a cluster cannot do (bind mounts).

use crate::diag::{Code, Diagnostic, Diagnostics, Span};

use super::*;

/// A DNS-1035 label: what Kubernetes requires of a Service name.
pub fn is_dns1035(s: &str) -> bool {
    crate::check::is_dns_label(s) && s.starts_with(|c: char| c.is_ascii_lowercase())
}

/// An IANA service name: what Kubernetes requires of a port name.
pub fn is_port_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 15
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && s.bytes().any(|b| b.is_ascii_lowercase())
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.contains("--")
}

/// The names of the objects a cluster gets for a service beyond its own: the
/// one place the Kubernetes target takes them from, so that the check below
/// sees every name the manifests will hold.
pub mod names {
    /// The LoadBalancer Service of public ports without a public URL.
    pub fn public_service(service: &str) -> String {
        format!("{service}-public")
    }

    /// The headless Service of a StatefulSet.
    pub fn headless(service: &str) -> String {
        format!("{service}-headless")
    }

    /// The sentinels' StatefulSet of a Sentinel-watched Redis.
    pub fn sentinels(service: &str) -> String {
        crate::plan::Added::Sentinel.name(service).to_string()
    }

    /// The master endpoint's Deployment of a Sentinel-watched Redis.
    pub fn master_proxy(service: &str) -> String {
        format!("{service}-proxy")
    }

    /// The ConfigMap of a Sentinel-watched Redis.
    pub fn config(service: &str) -> String {
        format!("{service}-config")
    }
}

/// Every name beyond its own that the Kubernetes target gives the objects of
/// an instance (Services, StatefulSets, Deployments, ConfigMaps).
fn derived_names(inst: &Instance) -> Vec<String> {
    if inst.ha == HaMode::CloudNativePg {
        // The operator's Services.
        return ["-rw", "-ro", "-r"]
            .iter()
            .map(|s| format!("{}{s}", inst.name))
            .collect();
    }
    if inst.replication.sentinel.is_some() {
        return vec![
            names::headless(&inst.name),
            names::sentinels(&inst.name),
            names::headless(&names::sentinels(&inst.name)),
            names::master_proxy(&inst.name),
            names::config(&inst.name),
        ];
    }
    let mut out = Vec::new();
    if !inst.ports.is_empty() && !inst.public.is_empty() && inst.public_url.is_none() {
        out.push(names::public_service(&inst.name));
    }
    if inst.role == Role::Stateful && !inst.ports.is_empty() {
        out.push(names::headless(&inst.name));
    }
    out
}

/// A DNS-1123 label: what Kubernetes requires of a namespace's name.
use crate::check::is_dns_label as is_dns1123_label;

/// Longest stack name on Kubernetes: `<stack>-secrets` names the Secret (a
/// DNS-1123 name), and the stack is a label value (63 characters at most).
const STACK_NAME_MAX: usize = 63 - "-secrets".len();

impl Topo<'_> {
    /// The names of a cluster topology that come from the stack, not from a
    /// service: its namespace, and the stack's name in every object's labels
    /// and in the Secret's name. Each is checked where it was written (the
    /// stack's name may come from the file's name: then at the `platform`).
    pub(super) fn check_cluster_names(&self, diags: &mut Diagnostics) {
        let stack = &self.stack.name;
        let stack_span = self.stack.name_span.unwrap_or(self.topo.platform.span);
        let from_file = self.stack.name_span.is_none();
        let suggestion = stack.to_ascii_lowercase().replace(['_', '.', ' '], "-");
        if !is_dns1123_label(stack) || stack.len() > STACK_NAME_MAX {
            diags.push(
                Diagnostic::error(
                    Code::InvalidKubernetesName,
                    stack_span,
                    format!(
                        "the stack's name `{stack}`{} cannot name Kubernetes objects",
                        if from_file { " (from the file's name)" } else { "" }
                    ),
                )
                .label(format!("the Secret `{stack}-secrets` and every object's `app.kubernetes.io/part-of` label"))
                .help(format!(
                    "name the stack with lowercase letters, digits and `-`, at most {STACK_NAME_MAX} characters: `stack {}`",
                    &suggestion[..suggestion.len().min(STACK_NAME_MAX)]
                )),
            );
        }
        let namespaces = [
            ("namespace", &self.topo.namespace),
            ("ingress_namespace", &self.topo.ingress_namespace),
            ("monitoring_namespace", &self.topo.monitoring_namespace),
            ("cnpg_namespace", &self.topo.cnpg_namespace),
        ];
        if let Some(g) = &self.topo.gateway {
            let parts = g.value.split_once('/');
            if !parts.is_some_and(|(ns, name)| is_dns1123_label(ns) && is_dns1123_label(name)) {
                diags.push(
                    Diagnostic::error(
                        Code::InvalidKubernetesName,
                        g.span,
                        format!("`{}` cannot name a Gateway", g.value),
                    )
                    .label("its namespace and name, `NAMESPACE/NAME`, each a DNS label")
                    .help("write `gateway = \"infra/public\"`"),
                );
            }
        }
        for (field, ns) in namespaces {
            let Some(ns) = ns else { continue };
            if !is_dns1123_label(&ns.value) {
                diags.push(
                    Diagnostic::error(
                        Code::InvalidKubernetesName,
                        ns.span,
                        format!("`{}` cannot name a Kubernetes namespace", ns.value),
                    )
                    .label("a DNS label: lowercase letters, digits and `-`, at most 63 characters")
                    .help(format!(
                        "write `{field} = \"{}\"`",
                        ns.value.to_ascii_lowercase().replace(['_', '.', ' '], "-")
                    )),
                );
            }
        }
    }

    /// Two objects of one name in a namespace: the second one applied would
    /// replace the first. A user's service named like an object made for
    /// another (`api-public` beside a public `api`) is an error at its name.
    fn check_object_names(&self, h: usize, services: &[Instance], diags: &mut Diagnostics) {
        let mut owners: IndexMap<String, &str> = IndexMap::default();
        for inst in services {
            owners.insert(inst.name.to_string(), &inst.name);
        }
        for inst in services {
            for derived in derived_names(inst) {
                let Some(user) = owners.get(&derived) else {
                    owners.insert(derived, &inst.name);
                    continue;
                };
                let span = |name: &str| {
                    self.placement(name, h)
                        .and_then(|_| self.stack.services.get(name).map(|d| d.name.span))
                };
                let Some(at) = span(user).or_else(|| span(&inst.name)) else {
                    continue;
                };
                let message = if **user == *derived {
                    format!(
                        "`{user}` has the name of an object the cluster gets for `{}`",
                        inst.name
                    )
                } else {
                    format!(
                        "`{}` and `{user}` both get an object named `{derived}`",
                        inst.name
                    )
                };
                let mut d = Diagnostic::error(Code::DuplicateName, at, message)
                    .label("two objects of one name in the namespace")
                    .help(format!("rename `{user}`"));
                if let Some(owner) = span(&inst.name).filter(|s| *s != at) {
                    d = d.with_secondary(owner, format!("`{}` is declared here", inst.name));
                }
                diags.push(d);
            }
        }
    }

    /// The checks of a Kubernetes topology's instances: the names Kubernetes
    /// derives from theirs, volumes, port names, images and mounts.
    pub(super) fn check_kubernetes(
        &self,
        h: usize,
        services: &[Instance],
        diags: &mut Diagnostics,
    ) {
        self.check_object_names(h, services, diags);
        for inst in services {
            let Some(p) = self.placement(&inst.name, h) else {
                continue;
            };
            let def = &p.def;
            let decl = self
                .stack
                .services
                .get(&inst.name)
                .map_or(p.run_span, |d| d.name.span);
            check_workload_name(inst, decl, diags);
            check_claims(inst, def, decl, diags);
            check_port_names(def, diags);
            check_pulled_image(inst, def, decl, diags);
            if inst.ha == HaMode::CloudNativePg {
                self.check_cloudnativepg(inst, def, decl, diags);
            }
            check_no_bind_mounts(&inst.name, def, decl, diags);
            check_restart_kept(inst, def, diags);
        }
    }

    /// CloudNativePG bootstraps the database from a name, an owner and a Secret
    /// holding the owner's password.
    fn check_cloudnativepg(
        &self,
        inst: &Instance,
        def: &ServiceDef,
        decl: Span,
        diags: &mut Diagnostics,
    ) {
        for param in ["database", "user"] {
            let identifier = match inst.parameters.params.get(param).map(|v| v.as_slice()) {
                Some([Out::Text(t)]) => {
                    t.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                        && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                }
                _ => false,
            };
            if !identifier {
                let span = def
                    .parameters
                    .args
                    .get(param)
                    .map_or(decl, |a| a.value.span);
                diags.push(
                    Diagnostic::error(
                        Code::InvalidValue,
                        span,
                        format!("CloudNativePG needs `{param}` as a plain identifier"),
                    )
                    .label("not letters, digits and `_`")
                    .help(format!(
                        "write `{param} = \"app\"` (letters, digits and `_`) on service `{}`",
                        inst.name
                    )),
                );
            }
        }
        let secret = matches!(
            inst.parameters.params.get("password").map(|v| v.as_slice()),
            Some([Out::Secret(_)])
        );
        if !secret {
            let span = def
                .parameters
                .args
                .get("password")
                .map_or(decl, |a| a.value.span);
            diags.push(
                Diagnostic::error(
                    Code::InvalidValue,
                    span,
                    "CloudNativePG reads the owner's password from a Secret",
                )
                .label("not a secret")
                .help("declare `secret NAME` and write `password = secret.NAME`"),
            );
        }
    }
}

/// The service's name names a Service, and the names Kubernetes derives from
/// it fit.
fn check_workload_name(inst: &Instance, decl: Span, diags: &mut Diagnostics) {
    if !is_dns1035(&inst.name) {
        diags.push(
            Diagnostic::error(
                Code::InvalidKubernetesName,
                decl,
                format!("`{}` cannot name a Kubernetes Service", inst.name),
            )
            .label("a Service name starts with a letter")
            .help(format!("rename it, for example `svc-{}`", inst.name)),
        );
    }
    // Names Kubernetes derives from the service's: a StatefulSet's pods carry
    // the label `controller-revision-hash: <name>-<10 characters>`, which
    // must fit in 63 characters.
    let stateful = inst.role == Role::Stateful && inst.ha != HaMode::CloudNativePg;
    // `-headless` and `-public` Services are derived from the name too.
    let mut limit = if stateful { 52 } else { 63 - "-public".len() };
    if inst.role == Role::Task {
        // A CronJob's Jobs are `<name>-<11 characters>`; a task's Job is
        // `<name>-<8 hex digits>`, and its Role `<name>-status`.
        limit = if inst.lifecycle.schedule.is_some() {
            52
        } else {
            54
        };
    }
    if inst.ha == HaMode::Sentinel {
        // The sentinels' StatefulSet `<name>-sentinel` (with its
        // revision hash) and its `<name>-sentinel-headless` Service.
        limit = limit.min(52 - "-sentinel".len());
    }
    if inst.name.len() > limit {
        diags.push(
            Diagnostic::error(
                Code::InvalidKubernetesName,
                decl,
                format!("`{}` is {} characters, too long for a Kubernetes {}", inst.name, inst.name.len(), workload_kind(inst, stateful)),
            )
            .label(format!("at most {limit} characters here"))
            .help(if stateful {
                "a StatefulSet's name and a 10-character revision hash must fit in one 63-character label; shorten the name"
            } else {
                "shorten the name"
            }),
        );
    }
}

/// The kind of a service's workload, for a diagnostic.
fn workload_kind(inst: &Instance, stateful: bool) -> &'static str {
    match (inst.role, &inst.lifecycle.schedule) {
        (Role::Task, Some(_)) => "CronJob",
        (Role::Task, None) => "Job",
        _ if stateful => "StatefulSet",
        _ => "Deployment",
    }
}

/// A Deployment's or a StatefulSet's pods are always restarted: only a task
/// (a Job) can keep `restart = no`.
fn check_restart_kept(inst: &Instance, def: &ServiceDef, diags: &mut Diagnostics) {
    if inst.role == Role::Task {
        return;
    }
    if let Some(r) = def
        .lifecycle
        .restart
        .as_ref()
        .filter(|r| r.value == Restart::No)
    {
        diags.push(
            Diagnostic::error(
                Code::NotSupported,
                r.span,
                format!("`{}` has `restart = no`, which Kubernetes cannot keep for a long-running service", inst.name),
            )
            .label("a Deployment's pods are always restarted")
            .help("make it a task (`role = task`) if it runs to completion: a Job, run once"),
        );
    }
}

/// A Deployment's replicas cannot share a ReadWriteOnce claim, and a claim's
/// name fits.
fn check_claims(inst: &Instance, def: &ServiceDef, decl: Span, diags: &mut Diagnostics) {
    let replicated =
        inst.replicas > 1 || inst.scaling.autoscale.as_ref().is_some_and(|a| a.max > 1);
    // A Deployment (an operator's cluster manages its own claims).
    let deployment = inst.role != Role::Stateful;
    if deployment && replicated && !inst.storage.volumes.is_empty() {
        let span = def
            .storage
            .volumes
            .values()
            .next()
            .map_or(decl, |d| d.name.span);
        diags.push(
            Diagnostic::error(
                Code::NotSupported,
                span,
                format!("`{}` runs several replicas of a Deployment with a volume: they would share one ReadWriteOnce claim", inst.name),
            )
            .label("one claim, mounted by pods on different nodes")
            .help(format!("write `role = stateful` in `{}`: a StatefulSet gives each replica a claim of its own", inst.name)),
        );
    }
    for v in &inst.storage.volumes {
        if v.name.len() > 63 {
            let span = def
                .storage
                .volumes
                .values()
                .find(|d| v.name.ends_with(d.name.name.as_str()))
                .map_or(decl, |d| d.name.span);
            diags.push(
                Diagnostic::error(
                    Code::InvalidKubernetesName,
                    span,
                    format!("the volume name `{}` is longer than 63 characters", v.name),
                )
                .label("`<service>-<volume>` names the claim")
                .help("shorten the volume's or the service's name"),
            );
        }
    }
}

/// Port names are Kubernetes port names.
fn check_port_names(def: &ServiceDef, diags: &mut Diagnostics) {
    for port in def.ports.values() {
        if !is_port_name(&port.name.name) {
            diags.push(
                Diagnostic::error(
                    Code::InvalidKubernetesName,
                    port.name.span,
                    format!("`{}` is not a valid Kubernetes port name", port.name.name),
                )
                .label("at most 15 characters: lowercase letters, digits, `-`, one letter at least")
                .help("rename it (for example `http`, `metrics`, `grpc`), and what refers to it: `SERVICE.ports.NAME`, probes, routes"),
            );
        }
    }
}

/// A cluster pulls images: a build context alone cannot run.
fn check_pulled_image(inst: &Instance, def: &ServiceDef, decl: Span, diags: &mut Diagnostics) {
    if inst.image.is_none() && def.program.build.is_some() {
        let span = def.program.build.as_ref().map_or(decl, |b| b.span);
        diags.push(
            Diagnostic::error(
                Code::MissingField,
                span,
                format!("service `{}` has no `image`, and Kubernetes pulls images", inst.name),
            )
            .label("a build context cannot run in a cluster")
            .help(format!(
                "give it the image your CI pushes: `override {} {{ image = \"registry/...:tag\" }}`",
                inst.name
            )),
        );
    }
}

/// A cluster has no host paths: one report per service, at its first mount
/// (at the service itself when the mounts are its kind's, in the stdlib).
fn check_no_bind_mounts(name: &str, def: &ServiceDef, decl: Span, diags: &mut Diagnostics) {
    let mut mounts = def.storage.mounts.values();
    let Some(first) = mounts.next() else {
        return;
    };
    let generated = def
        .storage
        .mounts
        .values()
        .any(|m| m.source.value.starts_with("@out/"));
    let mut d = Diagnostic::error(
        Code::NotSupported,
        first.source.span,
        "bind mounts are not supported on Kubernetes",
    )
    .label("no host path in a cluster");
    for m in mounts {
        d = d.with_secondary(m.source.span, "another host path");
    }
    d = d.with_secondary(decl, format!("service `{name}` mounts them"));
    diags.push(d.help(if generated {
        "these are files stackc generates for hosts: in a cluster, use the cluster's own (an operator's Prometheus or Grafana), outside this topology's `run`"
    } else {
        "use a `volume`; configuration files belong in the image or a ConfigMap"
    }));
}
