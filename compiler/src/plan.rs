//! Planning: each topology resolved into hosts and the service instances they run,
//! with every reference turned into text (or a secret) as the consuming instance
//! sees it, the ports each host must publish, and the start order. Targets read a
//! `Plan` only; they never see the syntax tree or the partial definitions.
//!
//! This is also where the topology-specific checks run: placement, GPU, ports,
//! replicas of stateful services, health gates and dependency cycles.

use std::borrow::Cow;

use indexmap::{IndexMap, IndexSet};
use petgraph::graphmap::DiGraphMap;

use crate::check::{unknown_service, Checked};
use crate::diag::{Code, Diagnostic, Diagnostics, Span};
use crate::model::*;

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub stack: String,
    /// Every declared secret, for targets that describe what must be set.
    pub secrets: IndexMap<String, SecretDef>,
    pub topologies: Vec<TopologyPlan>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TopologyPlan {
    pub name: String,
    pub platform: Platform,
    pub hosts: Vec<HostPlan>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HostPlan {
    pub name: String,
    pub address: Option<String>,
    pub managed: bool,
    pub services: Vec<Instance>,
}

/// A piece of a resolved value: text, or a secret that the target writes in its
/// own way (never its value, which stackc does not know).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Out {
    Text(String),
    Secret {
        name: String,
        env: String,
        optional: bool,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct EnvVar {
    pub key: String,
    pub value: Vec<Out>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bind {
    /// All interfaces: `public = [...]`.
    All,
    /// One address of the host: another host needs this port.
    Address(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct PortPlan {
    pub name: String,
    pub container: u16,
    pub host: u16,
    pub protocol: Protocol,
    pub binds: Vec<Bind>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    pub check: ProbeCheck,
    pub port: u16,
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
    pub retries: Option<u32>,
    pub start_period: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    Started,
    Healthy,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Mount {
    pub source: String,
    pub target: String,
    pub read_only: bool,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Resources {
    pub cpu: Option<Cpu>,
    pub memory: Option<Size>,
    pub cpu_limit: Option<Cpu>,
    pub memory_limit: Option<Size>,
    pub gpu: u32,
}

/// One service as it runs on one host.
#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    pub name: String,
    pub role: Role,
    pub image: Option<String>,
    pub build: Option<String>,
    pub command: Option<Command>,
    pub ports: Vec<PortPlan>,
    pub env: Vec<EnvVar>,
    /// (volume name, path in the container)
    pub volumes: Vec<(String, String)>,
    pub mounts: Vec<Mount>,
    pub replicas: u32,
    pub resources: Resources,
    /// The check that says the service is ready (readiness, else liveness, else
    /// startup).
    pub health: Option<Probe>,
    pub restart: Restart,
    pub depends_on: Vec<(String, Condition)>,
}

/// Attributes whose use means "needs the service running": they become start-order
/// edges. `public_url` and parameters do not (a browser, not the service, uses them).
const RUNTIME_ATTRIBUTES: &[&str] = &["host", "port", "ports", "address", "url", "read_url"];

pub fn plan(stack: &Stack, checked: &Checked, diags: &mut Diagnostics) -> Plan {
    let topologies = stack
        .topologies
        .values()
        .map(|topo| plan_topology(stack, checked, topo, diags))
        .collect();
    Plan {
        stack: stack.name.clone(),
        secrets: stack.secrets.clone(),
        topologies,
    }
}

struct Placement<'a> {
    host: usize,
    /// Borrowed when no override changes the definition (the common case).
    def: Cow<'a, ServiceDef>,
    run_span: Span,
}

struct Topo<'a> {
    stack: &'a Stack,
    topo: &'a TopologyDef,
    hosts: Vec<&'a HostDef>,
    /// Per service: base ⊕ topology override.
    defs: IndexMap<&'a str, Cow<'a, ServiceDef>>,
    placements: IndexMap<&'a str, Vec<Placement<'a>>>,
}

#[derive(Default)]
struct Effects {
    /// (target service, span of the reference)
    deps: Vec<(String, Span)>,
    /// (service, host index, port name)
    publishes: IndexSet<(String, usize, String)>,
}

fn plan_topology(
    stack: &Stack,
    checked: &Checked,
    topo: &TopologyDef,
    diags: &mut Diagnostics,
) -> TopologyPlan {
    let hosts: Vec<&HostDef> = topo.hosts.values().collect();
    let mut defs = IndexMap::new();
    for (name, base) in &checked.bases {
        let def = match topo.overrides.get(name) {
            Some(ov) => {
                let mut def = base.clone();
                def.overlay(&ov.over);
                Cow::Owned(def)
            }
            None => Cow::Borrowed(base),
        };
        defs.insert(name.as_str(), def);
    }
    for ov in topo.overrides.values() {
        if !stack.services.contains_key(&ov.service.name) {
            diags.push(unknown_service(stack, &ov.service));
        }
    }
    let mut t = Topo {
        stack,
        topo,
        hosts,
        defs,
        placements: IndexMap::new(),
    };
    t.place(diags);

    // Resolve every instance's environment, collecting start-order edges and the
    // ports other hosts need.
    let mut effects: Vec<Vec<Effects>> = Vec::new();
    let mut envs: Vec<Vec<Vec<EnvVar>>> = Vec::new();
    for (h, host) in t.hosts.iter().enumerate() {
        let mut host_effects = Vec::new();
        let mut host_envs = Vec::new();
        for run in &host.runs {
            let mut fx = Effects::default();
            let mut env = Vec::new();
            if let Some(p) = t.placement(&run.service.name, h) {
                for var in p.def.env.values() {
                    let value = t.eval(&run.service.name, h, &var.value, &mut fx, diags, 0);
                    env.push(EnvVar {
                        key: var.key.name.clone(),
                        value,
                        span: var.key.span,
                    });
                }
            }
            host_effects.push(fx);
            host_envs.push(env);
        }
        effects.push(host_effects);
        envs.push(host_envs);
    }
    let publishes: IndexSet<(String, usize, String)> = effects
        .iter()
        .flatten()
        .flat_map(|fx| fx.publishes.iter().cloned())
        .collect();

    t.check_cycles(&effects, diags);

    let mut host_plans = Vec::new();
    for (h, host) in t.hosts.iter().enumerate() {
        let mut services = Vec::new();
        for (i, run) in host.runs.iter().enumerate() {
            let Some(p) = t.placement(&run.service.name, h) else {
                continue;
            };
            let env = std::mem::take(&mut envs[h][i]);
            let fx = &effects[h][i];
            if let Some(inst) = t.instance(&run.service.name, h, p, env, fx, &publishes, diags) {
                services.push(inst);
            }
        }
        t.check_ports(h, &services, diags);
        t.check_gpus(h, &services, diags);
        host_plans.push(HostPlan {
            name: host.name.name.clone(),
            address: host.address.as_ref().map(|a| a.value.clone()),
            managed: host.managed,
            services,
        });
    }
    TopologyPlan {
        name: topo.name.name.clone(),
        platform: topo.platform.value,
        hosts: host_plans,
    }
}

impl Topo<'_> {
    fn is_external(&self, name: &str) -> bool {
        self.topo.externals.contains_key(name)
            || matches!(
                self.stack.services.get(name).map(|d| &d.body),
                Some(ServiceBody::External(_))
            )
    }

    fn external(&self, name: &str) -> Option<&ExternalDef> {
        if let Some((_, e)) = self.topo.externals.get(name) {
            return Some(e);
        }
        match self.stack.services.get(name).map(|d| &d.body) {
            Some(ServiceBody::External(e)) => Some(e),
            _ => None,
        }
    }

    fn placement(&self, service: &str, host: usize) -> Option<&Placement<'_>> {
        self.placements
            .get(service)?
            .iter()
            .find(|p| p.host == host)
    }

    fn place(&mut self, diags: &mut Diagnostics) {
        for (name, (ident, _)) in &self.topo.externals {
            if !self.stack.services.contains_key(name) {
                diags.push(unknown_service(self.stack, ident).help(
                    "`external` in a topology replaces a service of the stack by a managed one",
                ));
            }
        }
        for (h, host) in self.hosts.iter().enumerate() {
            let mut seen: IndexMap<&str, Span> = IndexMap::new();
            for run in &host.runs {
                let name = run.service.name.as_str();
                if let Some(first) = seen.get(name) {
                    diags.push(
                        Diagnostic::error(
                            Code::DuplicatePlacement,
                            run.service.span,
                            format!("service `{name}` runs twice on host `{}`", host.name.name),
                        )
                        .label("placed again here")
                        .with_secondary(*first, "first placed here")
                        .help("use `replicas` for several copies on one host"),
                    );
                    continue;
                }
                seen.insert(name, run.service.span);
                if !self.stack.services.contains_key(name) {
                    diags.push(unknown_service(self.stack, &run.service));
                    continue;
                }
                if self.is_external(name) {
                    diags.push(
                        Diagnostic::error(
                            Code::DuplicatePlacement,
                            run.service.span,
                            format!("service `{name}` is external in topology `{}` and cannot run on a host", self.topo.name.name),
                        )
                        .label("external services are not run by stackc")
                        .help("remove it from the host, or remove the `external` declaration"),
                    );
                    continue;
                }
                let Some((&key, topo_def)) = self.defs.get_key_value(name) else {
                    continue;
                };
                let def = if run.over == ServiceDef::default() {
                    topo_def.clone()
                } else {
                    let mut def = topo_def.clone().into_owned();
                    def.overlay(&run.over);
                    Cow::Owned(def)
                };
                self.placements.entry(key).or_default().push(Placement {
                    host: h,
                    def,
                    run_span: run.service.span,
                });
            }
        }
        for (name, decl) in &self.stack.services {
            if self.is_external(name) || self.placements.contains_key(name.as_str()) {
                continue;
            }
            diags.push(
                Diagnostic::error(
                    Code::NotPlaced,
                    self.topo.name.span,
                    format!("service `{name}` is not placed in topology `{}`", self.topo.name.name),
                )
                .label(format!("`{name}` runs nowhere here"))
                .with_secondary(decl.name.span, "service defined here")
                .help(format!(
                    "add `{name}` to a host's `run` list, or declare it managed: `external {name} {{ url = ... }}`"
                )),
            );
        }
    }

    fn where_is(&self, service: &str, consumer_host: usize) -> Option<(bool, &Placement<'_>)> {
        let placements = self.placements.get(service)?;
        if let Some(p) = placements.iter().find(|p| p.host == consumer_host) {
            return Some((true, p));
        }
        placements.first().map(|p| (false, p))
    }

    /// Resolves an expression owned by `owner` as seen from an instance on
    /// `consumer_host`.
    fn eval(
        &self,
        owner: &str,
        consumer_host: usize,
        expr: &Expr,
        fx: &mut Effects,
        diags: &mut Diagnostics,
        depth: usize,
    ) -> Vec<Out> {
        let mut out = Vec::new();
        for piece in &expr.pieces {
            match piece {
                Piece::Text(t) => out.push(Out::Text(t.clone())),
                Piece::Ref(r) => {
                    if let Some(v) = self.reference(owner, consumer_host, r, fx, diags, depth) {
                        out.extend(v);
                    }
                }
            }
        }
        normalize(out)
    }

    fn reference(
        &self,
        owner: &str,
        consumer_host: usize,
        r: &Reference,
        fx: &mut Effects,
        diags: &mut Diagnostics,
        depth: usize,
    ) -> Option<Vec<Out>> {
        let first = r.path.first()?;
        if first.name == "secret" {
            let name = &r.path.get(1)?.name;
            let secret = self.stack.secrets.get(name)?;
            return Some(vec![Out::Secret {
                name: name.clone(),
                env: secret.env_name.clone(),
                optional: secret.optional,
            }]);
        }
        if depth > 8 {
            diags.push(
                Diagnostic::error(
                    Code::DependencyCycle,
                    r.span,
                    "this value refers to itself through other values",
                )
                .label("the chain of references does not end"),
            );
            return None;
        }
        let target = if first.name == "self" {
            owner
        } else {
            first.name.as_str()
        };
        let attr = r.path.get(1)?.name.as_str();
        if depth == 0
            && target != owner
            && RUNTIME_ATTRIBUTES.contains(&attr)
            && !self.is_external(target)
        {
            fx.deps.push((target.to_string(), r.span));
        }
        if let Some(ext) = self.external(target) {
            return self.external_attr(target, ext, attr, r, fx, diags, depth);
        }
        let (local, placement) = self.where_is(target, consumer_host)?;
        let def = &placement.def;
        let host = self.hosts.get(placement.host)?;
        let fail = |msg: String, label: &str, help: String| {
            Diagnostic::error(Code::Unresolvable, r.span, msg)
                .label(label.to_string())
                .help(help)
        };
        let needs_network = matches!(
            attr,
            "host" | "port" | "ports" | "address" | "url" | "read_url"
        );
        if !local && host.managed && needs_network && def.url.is_none() {
            diags.push(fail(
                format!(
                    "`{target}` runs on the managed host `{}`, which has no address to connect to",
                    host.name.name
                ),
                "not reachable by address",
                format!("refer to `{target}.public_url` instead"),
            ));
            return None;
        }
        let hostname = |diags: &mut Diagnostics| -> Option<String> {
            if local {
                return Some(target.to_string());
            }
            match &host.address {
                Some(a) => Some(a.value.clone()),
                None => {
                    diags.push(
                        fail(
                            format!(
                                "`{target}` runs on host `{}`, which has no address",
                                host.name.name
                            ),
                            "another host connects here",
                            format!("give host `{}` an `address = \"...\"`", host.name.name),
                        )
                        .with_secondary(host.name.span, "host declared here"),
                    );
                    None
                }
            }
        };
        let port_of = |name: Option<&str>,
                       fx: &mut Effects,
                       diags: &mut Diagnostics|
         -> Option<u16> {
            let port = match name {
                Some(n) => def.ports.get(n),
                None => def.ports.values().next(),
            };
            let Some(port) = port else {
                if name.is_some() {
                    // An unknown port name was reported by `check`.
                    return None;
                }
                diags.push(fail(
                    format!("service `{target}` declares no port"),
                    "no port to connect to",
                    format!("declare one in `{target}`: `port NAME = NUMBER`"),
                ));
                return None;
            };
            let container = port.container.as_ref()?.value;
            if local {
                Some(container)
            } else {
                fx.publishes
                    .insert((target.to_string(), placement.host, port.name.name.clone()));
                Some(port.host.as_ref().map_or(container, |h| h.value))
            }
        };
        match attr {
            "host" => hostname(diags).map(|h| vec![Out::Text(h)]),
            "port" => port_of(None, fx, diags).map(|p| vec![Out::Text(p.to_string())]),
            "ports" => {
                let name = r.path.get(2)?.name.as_str();
                port_of(Some(name), fx, diags).map(|p| vec![Out::Text(p.to_string())])
            }
            "address" => {
                let h = hostname(diags)?;
                let p = port_of(None, fx, diags)?;
                Some(vec![Out::Text(format!("{h}:{p}"))])
            }
            "url" | "read_url" => {
                let template = if attr == "read_url" {
                    def.read_url.as_ref().or(def.url.as_ref())
                } else {
                    def.url.as_ref()
                };
                match template {
                    Some(t) => Some(self.eval(target, consumer_host, t, fx, diags, depth + 1)),
                    None => {
                        let http = def.ports.values().next().filter(|p| {
                            p.protocol.as_ref().map(|p| p.value) == Some(Protocol::Http)
                                || (p.protocol.is_none() && p.name.name == "http")
                        });
                        if http.is_none() {
                            diags.push(fail(
                                format!("service `{target}` has no URL form"),
                                "no `url` known",
                                format!(
                                    "give `{target}` a `url = \"scheme://${{self.address}}\"`, or refer to `{target}.address`"
                                ),
                            ));
                            return None;
                        }
                        let h = hostname(diags)?;
                        let p = port_of(None, fx, diags)?;
                        Some(vec![Out::Text(format!("http://{h}:{p}"))])
                    }
                }
            }
            "public_url" => match &def.public_url {
                Some(t) => Some(self.eval(target, consumer_host, t, fx, diags, depth + 1)),
                None => {
                    diags.push(fail(
                        format!("service `{target}` has no public URL in topology `{}`", self.topo.name.name),
                        "no `public_url` here",
                        format!("set `public_url = \"https://...\"` on `{target}`, or in an `override {target}` of this topology"),
                    ));
                    None
                }
            },
            param => {
                let value = def
                    .args
                    .get(param)
                    .map(|a| &a.value)
                    .or_else(|| def.params.get(param).and_then(|p| p.default.as_ref()))?;
                Some(self.eval(target, consumer_host, value, fx, diags, depth + 1))
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn external_attr(
        &self,
        target: &str,
        ext: &ExternalDef,
        attr: &str,
        r: &Reference,
        fx: &mut Effects,
        diags: &mut Diagnostics,
        depth: usize,
    ) -> Option<Vec<Out>> {
        let expr = match attr {
            "url" => ext.url.as_ref(),
            "read_url" => ext.read_url.as_ref().or(ext.url.as_ref()),
            "public_url" => ext.public_url.as_ref().or(ext.url.as_ref()),
            "host" => ext.host.as_ref(),
            "port" => {
                return ext
                    .port
                    .as_ref()
                    .map(|p| vec![Out::Text(p.value.to_string())])
                    .or_else(|| {
                        diags.push(missing_external(target, attr, r.span, self));
                        None
                    })
            }
            "address" => {
                let (Some(h), Some(p)) = (&ext.host, &ext.port) else {
                    diags.push(missing_external(target, "host` and `port", r.span, self));
                    return None;
                };
                let mut out = self.eval(target, 0, h, fx, diags, depth + 1);
                out.push(Out::Text(format!(":{}", p.value)));
                return Some(normalize(out));
            }
            _ => None,
        };
        match expr {
            Some(e) => Some(self.eval(target, 0, e, fx, diags, depth + 1)),
            None => {
                diags.push(missing_external(target, attr, r.span, self));
                None
            }
        }
    }

    fn check_cycles(&self, effects: &[Vec<Effects>], diags: &mut Diagnostics) {
        let mut graph: DiGraphMap<usize, Span, std::hash::RandomState> = DiGraphMap::default();
        let index = |name: &str| self.stack.services.get_index_of(name);
        for (h, host) in self.hosts.iter().enumerate() {
            for (i, run) in host.runs.iter().enumerate() {
                let Some(from) = index(&run.service.name) else {
                    continue;
                };
                graph.add_node(from);
                let refs = effects[h][i].deps.iter().map(|(t, s)| (t.as_str(), *s));
                let explicit = self
                    .placement(&run.service.name, h)
                    .and_then(|p| p.def.depends_on.as_ref())
                    .into_iter()
                    .flat_map(|d| d.value.iter().map(|d| (d.service.name.as_str(), d.span)));
                for (target, span) in refs.chain(explicit) {
                    if let Some(to) = index(target) {
                        if to != from && !graph.contains_edge(from, to) {
                            graph.add_edge(from, to, span);
                        }
                    }
                }
            }
        }
        for scc in petgraph::algo::tarjan_scc(&graph) {
            if scc.len() < 2 {
                continue;
            }
            // Walk the cycle from the service written first.
            let Some(&start) = scc.iter().min() else {
                continue;
            };
            let mut path = vec![start];
            let mut current = start;
            loop {
                let next = graph
                    .neighbors(current)
                    .filter(|n| scc.contains(n))
                    .find(|n| *n == start || !path.contains(n))
                    .or_else(|| graph.neighbors(current).find(|n| scc.contains(n)));
                let Some(next) = next else { break };
                if next == start || path.contains(&next) {
                    path.push(next);
                    break;
                }
                path.push(next);
                current = next;
            }
            let names: Vec<&str> = path
                .iter()
                .filter_map(|i| self.stack.services.get_index(*i).map(|(n, _)| n.as_str()))
                .collect();
            let mut edges = path.windows(2).filter_map(|w| {
                let span = graph.edge_weight(w[0], w[1])?;
                let from = self.stack.services.get_index(w[0])?.0;
                let to = self.stack.services.get_index(w[1])?.0;
                Some((*span, format!("`{from}` needs `{to}` here")))
            });
            let Some((first_span, first_label)) = edges.next() else {
                continue;
            };
            let mut d = Diagnostic::error(
                Code::DependencyCycle,
                first_span,
                format!("dependency cycle: {}", names.join(" -> ")),
            )
            .label(first_label)
            .help("no service of the cycle can start first; break it by referring to a `public_url`, or by removing one dependency");
            for (span, label) in edges {
                d = d.with_secondary(span, label);
            }
            diags.push(d);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn instance(
        &self,
        name: &str,
        h: usize,
        p: &Placement,
        env: Vec<EnvVar>,
        fx: &Effects,
        publishes: &IndexSet<(String, usize, String)>,
        diags: &mut Diagnostics,
    ) -> Option<Instance> {
        let def = &p.def;
        let host = self.hosts.get(h)?;
        let decl_span = self
            .stack
            .services
            .get(name)
            .map_or(p.run_span, |d| d.name.span);
        let rejected = |f: &str| def.rejected.iter().any(|r| r == f);
        if def.image.is_none() && def.build.is_none() && !rejected("image") && !rejected("build") {
            diags.push(
                Diagnostic::error(
                    Code::MissingField,
                    decl_span,
                    format!("service `{name}` has neither `image` nor `build`"),
                )
                .label("nothing to run")
                .help("set `image = \"...\"`, `build = \"./path\"`, or give it a kind that has an image"),
            );
        }
        let role = def.role.as_ref().map_or(Role::Stateless, |r| r.value);
        let replicas = def.replicas.as_ref().map_or(1, |r| r.value);
        let ha = def.ha.as_ref().map(|h| h.name.as_str()).unwrap_or("single");
        if role == Role::Stateful && replicas > 1 && ha == "single" {
            let span = def.replicas.as_ref().map_or(decl_span, |r| r.span);
            let modes: Vec<&str> = def
                .ha_modes
                .iter()
                .flat_map(|m| &m.value)
                .map(|m| m.name.as_str())
                .collect();
            diags.push(
                Diagnostic::error(
                    Code::StatefulReplicasWithoutHa,
                    span,
                    format!("stateful service `{name}` has {replicas} replicas and no HA mode"),
                )
                .label("each replica would keep its own data")
                .help(if modes.is_empty() {
                    "use one replica, or a kind with HA modes".to_string()
                } else {
                    format!(
                        "choose an HA mode (`ha = {}`) or use one replica",
                        modes.join(" | ")
                    )
                }),
            );
        }
        let known_mode = def
            .ha_modes
            .iter()
            .flat_map(|m| &m.value)
            .any(|m| m.name == ha);
        if ha != "single" && known_mode {
            if let Some(h) = &def.ha {
                diags.push(
                    Diagnostic::error(
                        Code::NotSupported,
                        h.span,
                        format!("HA mode `{ha}` is not emitted by this version of stackc"),
                    )
                    .label("no target writes this mode yet")
                    .help("use `ha = single` for now; Patroni, streaming replication and Sentinel configs come with the HA data tier"),
                );
            }
        }
        let gpu = def.resources.gpu.as_ref().map_or(0, |g| g.value);
        let host_gpu = host.gpu.as_ref().map_or(0, |g| g.value);
        if gpu.saturating_mul(replicas) > host_gpu {
            let gpu = gpu.saturating_mul(replicas);
            let span = def.resources.gpu.as_ref().map_or(decl_span, |g| g.span);
            diags.push(
                Diagnostic::error(
                    Code::CannotRunOnHost,
                    p.run_span,
                    format!(
                        "service `{name}` needs {gpu} GPU{} but host `{}` has {}",
                        if gpu == 1 { "" } else { "s" },
                        host.name.name,
                        if host_gpu == 0 {
                            "none".to_string()
                        } else {
                            host_gpu.to_string()
                        }
                    ),
                )
                .label("placed on a host without enough GPUs")
                .with_secondary(span, "GPU requested here")
                .help(format!(
                    "run it on a GPU host, or declare `gpu = {gpu}` on host `{}` (each replica reserves its own)",
                    host.name.name
                )),
            );
        }
        let public: Vec<&str> = def
            .public
            .iter()
            .flat_map(|p| &p.value)
            .map(|i| i.name.as_str())
            .collect();
        let mut ports = Vec::new();
        for port in def.ports.values() {
            let Some(container) = port.container.as_ref().map(|c| c.value) else {
                continue;
            };
            let mut binds = Vec::new();
            if public.contains(&port.name.name.as_str()) {
                binds.push(Bind::All);
            } else if publishes.contains(&(name.to_string(), h, port.name.name.clone())) {
                if let Some(a) = &host.address {
                    binds.push(Bind::Address(a.value.clone()));
                }
            }
            let protocol = port.protocol.as_ref().map_or(
                if port.name.name == "http" {
                    Protocol::Http
                } else {
                    Protocol::Tcp
                },
                |p| p.value,
            );
            ports.push(PortPlan {
                name: port.name.name.clone(),
                container,
                host: port.host.as_ref().map_or(container, |h| h.value),
                protocol,
                binds,
            });
        }
        if role == Role::Stateful && !public.is_empty() {
            let span = def.public.as_ref().map_or(decl_span, |p| p.span);
            diags.push(
                Diagnostic::error(
                    Code::PublicStateful,
                    span,
                    format!("stateful service `{name}` is published on all interfaces of host `{}`", host.name.name),
                )
                .label("reachable from anywhere the host is")
                .help("remove `public`: services on other hosts that refer to it get a port bound to this host's address only"),
            );
        }
        let health = self.probe(name, def, diags);
        let mut depends_on: IndexMap<String, Condition> = IndexMap::new();
        let mut gate = |target: &str, gate: Gate, span: Span, diags: &mut Diagnostics| {
            let Some(tp) = self.placement(target, h) else {
                return;
            };
            let has_check = [
                &tp.def.health.readiness,
                &tp.def.health.liveness,
                &tp.def.health.startup,
            ]
            .iter()
            .any(|p| p.is_some());
            let cond = match gate {
                Gate::Healthy if !has_check => {
                    diags.push(
                        Diagnostic::error(
                            Code::HealthGateWithoutCheck,
                            span,
                            format!("`{name}` waits for `{target}` to be healthy, but `{target}` has no health check"),
                        )
                        .label("health-gated here")
                        .help(format!("give `{target}` a `health {{ ... }}` block, or write `{target}.started`")),
                    );
                    Condition::Started
                }
                Gate::Started => Condition::Started,
                _ if has_check => Condition::Healthy,
                _ => Condition::Started,
            };
            let entry = depends_on.entry(target.to_string()).or_insert(cond);
            if cond == Condition::Healthy {
                *entry = Condition::Healthy;
            }
        };
        let explicit: Vec<(&str, Gate, Span)> = def
            .depends_on
            .iter()
            .flat_map(|d| &d.value)
            .map(|d| (d.service.name.as_str(), d.gate, d.span))
            .collect();
        for (target, g, span) in &explicit {
            gate(target, *g, *span, diags);
        }
        for (target, span) in &fx.deps {
            if !explicit.iter().any(|(t, _, _)| t == target) {
                gate(target, Gate::Default, *span, diags);
            }
        }
        depends_on.shift_remove(name);
        Some(Instance {
            name: name.to_string(),
            role,
            image: def.image.as_ref().map(|i| i.value.clone()),
            build: def.build.as_ref().map(|b| b.value.clone()),
            command: def.command.as_ref().map(|c| c.value.clone()),
            ports,
            env,
            volumes: def
                .volumes
                .values()
                .map(|v| (format!("{name}-{}", v.name.name), v.path.value.clone()))
                .collect(),
            mounts: def
                .mounts
                .values()
                .map(|m| Mount {
                    source: m.source.value.clone(),
                    target: m.target.value.clone(),
                    read_only: m.read_only,
                })
                .collect(),
            replicas,
            resources: Resources {
                cpu: def.resources.cpu.as_ref().map(|c| c.value),
                memory: def.resources.memory.as_ref().map(|c| c.value),
                cpu_limit: def.resources.cpu_limit.as_ref().map(|c| c.value),
                memory_limit: def.resources.memory_limit.as_ref().map(|c| c.value),
                gpu,
            },
            health,
            restart: def
                .restart
                .as_ref()
                .map_or(Restart::UnlessStopped, |r| r.value),
            depends_on: depends_on.into_iter().collect(),
        })
    }

    fn probe(&self, name: &str, def: &ServiceDef, diags: &mut Diagnostics) -> Option<Probe> {
        let probe = def
            .health
            .readiness
            .as_ref()
            .or(def.health.liveness.as_ref())
            .or(def.health.startup.as_ref())?;
        let check = probe.check.as_ref()?.value.clone();
        let port = match &probe.port {
            Some(p) => def.ports.get(&p.name),
            None => def.ports.values().next(),
        };
        let port = match (port, &check) {
            (Some(p), _) => p.container.as_ref().map_or(0, |c| c.value),
            (None, ProbeCheck::Command(_)) => 0,
            (None, _) => {
                diags.push(
                    Diagnostic::error(
                        Code::MissingField,
                        probe.span.unwrap_or_default(),
                        format!(
                            "the health check of `{name}` needs a port, and `{name}` declares none"
                        ),
                    )
                    .label("which port to check?")
                    .help("declare a port, or use `command = [...]`"),
                );
                return None;
            }
        };
        Some(Probe {
            check,
            port,
            interval: probe.interval.as_ref().map(|d| d.value),
            timeout: probe.timeout.as_ref().map(|d| d.value),
            retries: probe.retries.as_ref().map(|d| d.value),
            start_period: probe.start_period.as_ref().map(|d| d.value),
        })
    }

    /// The GPUs of all services on a host together must fit the host (each on its
    /// own is checked in `instance`).
    fn check_gpus(&self, h: usize, services: &[Instance], diags: &mut Diagnostics) {
        let Some(host) = self.hosts.get(h) else {
            return;
        };
        let host_gpu = host.gpu.as_ref().map_or(0, |g| g.value);
        let users: Vec<&Instance> = services.iter().filter(|i| i.resources.gpu > 0).collect();
        let total: u32 = users
            .iter()
            .map(|i| i.resources.gpu.saturating_mul(i.replicas))
            .fold(0, u32::saturating_add);
        let alone_too_many = users
            .iter()
            .any(|i| i.resources.gpu.saturating_mul(i.replicas) > host_gpu);
        // A service that does not fit alone was reported on its own.
        if users.len() < 2 || total <= host_gpu || alone_too_many {
            return;
        }
        let names: Vec<String> = users
            .iter()
            .map(|i| format!("`{}` ({} x {})", i.name, i.replicas, i.resources.gpu))
            .collect();
        let span = host.gpu.as_ref().map_or(host.name.span, |g| g.span);
        diags.push(
            Diagnostic::error(
                Code::CannotRunOnHost,
                span,
                format!(
                    "host `{}` has {host_gpu} GPUs but its services reserve {total}",
                    host.name.name
                ),
            )
            .label("not enough GPUs for all of them")
            .help(format!(
                "reserved by {}; move one to another host or lower its replicas",
                names.join(", ")
            )),
        );
    }

    fn check_ports(&self, h: usize, services: &[Instance], diags: &mut Diagnostics) {
        let Some(host) = self.hosts.get(h) else {
            return;
        };
        // (host port, bind) -> (service, port name)
        let mut taken: Vec<(u16, &Bind, &str, &str)> = Vec::new();
        for inst in services {
            let Some(p) = self.placement(&inst.name, h) else {
                continue;
            };
            for port in &inst.ports {
                let span = p
                    .def
                    .ports
                    .get(&port.name)
                    .map_or(p.run_span, |d| d.name.span);
                for bind in &port.binds {
                    if inst.replicas > 1 {
                        diags.push(
                            Diagnostic::error(
                                Code::ReplicasPublishPort,
                                span,
                                format!(
                                    "`{}` runs {} replicas on host `{}` but publishes host port {}",
                                    inst.name, inst.replicas, host.name.name, port.host
                                ),
                            )
                            .label("only one replica can bind this port")
                            .help(
                                "put a proxy in front of the replicas, or use one replica per host",
                            ),
                        );
                    }
                    let clash = taken.iter().find(|(n, b, _, _)| {
                        *n == port.host
                            && (matches!(b, Bind::All) || matches!(bind, Bind::All) || *b == bind)
                    });
                    if let Some((_, _, other, other_port)) = clash {
                        let other_span = self
                            .placement(other, h)
                            .and_then(|p| p.def.ports.get(*other_port))
                            .map_or(span, |d| d.name.span);
                        diags.push(
                            Diagnostic::error(
                                Code::PortConflict,
                                span,
                                format!(
                                    "`{}` and `{other}` both publish port {} on host `{}`",
                                    inst.name, port.host, host.name.name
                                ),
                            )
                            .label(format!("`{}` publishes {} here", inst.name, port.host))
                            .with_secondary(other_span, format!("`{other}` publishes it here"))
                            .help(format!(
                                "give one of them another host port: `port {} {{ container = {}  host = ... }}`",
                                port.name, port.container
                            )),
                        );
                    } else {
                        taken.push((port.host, bind, &inst.name, &port.name));
                    }
                }
            }
        }
    }
}

fn missing_external(target: &str, attr: &str, span: Span, t: &Topo<'_>) -> Diagnostic {
    Diagnostic::error(
        Code::Unresolvable,
        span,
        format!(
            "external service `{target}` has no `{attr}` in topology `{}`",
            t.topo.name.name
        ),
    )
    .label("not known for a managed service")
    .help(format!("give `external {target}` a `{attr} = ...`"))
}

/// Joins adjacent text pieces.
fn normalize(pieces: Vec<Out>) -> Vec<Out> {
    let mut out: Vec<Out> = Vec::with_capacity(pieces.len());
    for p in pieces {
        match (out.last_mut(), p) {
            (Some(Out::Text(a)), Out::Text(b)) => a.push_str(&b),
            (_, p) => out.push(p),
        }
    }
    out
}
