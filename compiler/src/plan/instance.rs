//! One service as it runs on one host: ports, health, start order, and the checks
//! on the effective definition (image, GPUs, replicas of stateful services).

use crate::diag::{Code, Diagnostic, Diagnostics, Span};

use super::scaling::check_disruption_budget;
use super::*;

impl Topo<'_> {
    /// One service as it runs on host `h`, placed there by `p`: its values
    /// resolved from that host, the references it makes (`fx`), and the ports
    /// others need it to publish.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn instance(
        &self,
        name: &Name,
        h: usize,
        p: &Placement,
        resolved: Resolved,
        fx: &Effects,
        published: &Published<'_>,
        diags: &mut Diagnostics,
    ) -> Option<Instance> {
        let def = &p.def;
        let host = self.hosts.get(h)?;
        let decl = self.stack.services.get(name);
        let decl_span = decl.map_or(p.run_span, |d| d.name.span);
        check_runnable(name, def, decl_span, diags);
        let role = def.role.as_ref().map_or(Role::Stateless, |r| r.value);
        super::tasks::check_task(name, def, role, diags);
        let replicas = def.replicas.as_ref().map_or(1, |r| r.value);
        self.check_ha_mode(name, def, role, replicas, decl_span, diags);
        let gpu = self.gpus(name, p, host, replicas, decl_span, diags);
        let public: Vec<&str> = def
            .reach
            .public
            .iter()
            .flat_map(|p| &p.value)
            .map(|i| i.name.as_str())
            .collect();
        let ports = ports(name, h, host, def, &public, published);
        check_public_stateful(name, host, def, role, &public, decl_span, diags);
        let probes = self.probes(name, def, diags);
        let autoscale = self.autoscale(name, def, decl_span, diags);
        check_disruption_budget(def, autoscale.as_ref(), replicas, diags);
        let mut instance = Instance {
            name: name.clone(),
            role,
            image: def.image.as_ref().map(|i| i.value.clone()),
            ports,
            env: resolved.env,
            replicas,
            probes,
            restart: def.lifecycle.restart.as_ref().map_or(
                if role == Role::Task {
                    Restart::No
                } else {
                    Restart::UnlessStopped
                },
                |r| r.value,
            ),
            depends_on: self.depends_on(name, h, def, fx, diags),
            refers_to: self.refers_to(name, fx),
            kind: decl.and_then(|d| d.kind.as_ref()).map(|k| k.name.clone()),
            public: public.iter().map(|p| p.to_string()).collect(),
            public_url: resolved.public_url,
            routes: routes(def),
            metrics: super::prometheus::metrics_endpoint(def).map(Box::new),
            update: Update {
                max_surge: def.scaling.update.max_surge.as_ref().map_or(1, |v| v.value),
                max_unavailable: def
                    .scaling
                    .update
                    .max_unavailable
                    .as_ref()
                    .map_or(0, |v| v.value),
            },
            ha: def.ha_mode().clone(),
            host_network: false,
            program: Program {
                build: def.program.build.as_ref().map(|b| b.value.clone()),
                command: def.program.command.as_ref().map(|c| c.value.clone()),
                entrypoint: def.program.entrypoint.as_ref().map(|c| c.value.clone()),
                devices: Vec::new(),
            }
            .into(),
            storage: storage(name, def).into(),
            resources: Resources {
                cpu: def.resources.cpu.as_ref().map(|c| c.value),
                memory: def.resources.memory.as_ref().map(|c| c.value),
                cpu_limit: def.resources.cpu_limit.as_ref().map(|c| c.value),
                memory_limit: def.resources.memory_limit.as_ref().map(|c| c.value),
                gpu,
            }
            .into(),
            lifecycle: Lifecycle {
                stop_grace_period: def.lifecycle.stop_grace_period.as_ref().map(|d| d.value),
                pre_stop: def.lifecycle.pre_stop.as_ref().map(|d| d.value),
                schedule: def.lifecycle.schedule.as_ref().map(|s| s.value.clone()),
            }
            .into(),
            scaling: Scaling {
                autoscale: autoscale.map(Box::new),
                min_available: def.scaling.min_available.as_ref().map(|m| m.value),
            }
            .into(),
            replication: self.replication_plan(name, h, def).into(),
            parameters: Parameters {
                params: resolved.params,
            }
            .into(),
        };
        self.wire(name, h, &mut instance, diags);
        self.wire_backup(name, def, &mut instance, diags);
        self.wire_postgresql(name, def, &mut instance, diags);
        Some(instance)
    }

    /// Stateful replicas need an HA mode, and the chosen mode must be one a
    /// target writes for this platform.
    fn check_ha_mode(
        &self,
        name: &Name,
        def: &ServiceDef,
        role: Role,
        replicas: u32,
        decl_span: Span,
        diags: &mut Diagnostics,
    ) {
        let ha = def.ha_mode();
        if role == Role::Stateful && replicas > 1 && *ha == HaMode::Single {
            let span = def.replicas.as_ref().map_or(decl_span, |r| r.span);
            let modes = def.ha_mode_names();
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
        if let (Some(h), true) = (
            def.replication.ha.as_ref().map(|h| &h.mode),
            *ha != HaMode::Single && def.offers(ha),
        ) {
            let kubernetes = self.topo.platform.value == Platform::Kubernetes;
            let unsupported = |message: String, help: String| {
                Diagnostic::error(Code::NotSupported, h.span, message)
                    .label(format!(
                        "not emitted for topology `{}`",
                        self.topo.name.name
                    ))
                    .help(help)
            };
            match (kubernetes, *ha == HaMode::CloudNativePg) {
                (true, true) => {}
                (false, false) if ha.on_hosts() => {}
                (true, false) if *ha == HaMode::Sentinel => {
                    if replicas < 2 {
                        let span = def.replicas.as_ref().map_or(h.span, |r| r.span);
                        diags.push(
                            Diagnostic::error(Code::InvalidValue, span, format!("Sentinel needs a master and a replica: `{name}` has {replicas} replica"))
                                .label("nothing to fail over to")
                                .help("set `replicas = 3` (a master and two replicas)"),
                        );
                    }
                }
                (false, true) => diags.push(unsupported(
                    format!("HA mode `{ha}` runs on Kubernetes only"),
                    format!("CloudNativePG is a Kubernetes operator; on hosts, PostgreSQL HA is `ha = {}` (automatic failover) or `ha = {}` (a primary and standbys)", HaMode::Patroni, HaMode::Streaming),
                )),
                (true, false) if def.offers(&HaMode::CloudNativePg) => diags.push(unsupported(
                    format!("HA mode `{ha}` is not emitted for Kubernetes"),
                    format!("on Kubernetes, PostgreSQL HA is `ha = {}` (a CloudNativePG Cluster)", HaMode::CloudNativePg),
                )),
                (true, false) => diags.push(unsupported(
                    format!("HA mode `{ha}` is not emitted for Kubernetes by this version of stackc"),
                    "on Kubernetes, Redis HA is `ha = sentinel`".into(),
                )),
                (false, false) if def.offers(&HaMode::Streaming) => diags.push(unsupported(
                    format!("HA mode `{ha}` is not emitted for hosts by this version of stackc"),
                    format!("on hosts, PostgreSQL replication is `ha = {}` (a primary and standbys)", HaMode::Streaming),
                )),
                (false, false) => diags.push(unsupported(
                    format!("HA mode `{ha}` is not emitted for hosts by this version of stackc"),
                    format!("stackc emits `{}` and `{}` (PostgreSQL), `{}` and `{}` (Redis) on hosts; use `ha = single` otherwise", HaMode::Streaming, HaMode::Patroni, HaMode::Replica, HaMode::Sentinel),
                )),
            }
        }
    }

    /// The GPUs each replica reserves, checked against the host's (or the
    /// cluster's GPU nodes).
    fn gpus(
        &self,
        name: &Name,
        p: &Placement,
        host: &HostDef,
        replicas: u32,
        decl_span: Span,
        diags: &mut Diagnostics,
    ) -> u32 {
        let def = &p.def;
        let gpu = def.resources.gpu.as_ref().map_or(0, |g| g.value);
        let span = def.resources.gpu.as_ref().map_or(decl_span, |g| g.span);
        let host_gpu = host.gpu.as_ref().map_or(0, |g| g.value);
        if self.topo.platform.value == Platform::Kubernetes && gpu > 0 && host_gpu == 0 {
            diags.push(
                Diagnostic::error(
                    Code::CannotRunOnHost,
                    p.run_span,
                    format!(
                        "service `{name}` needs a GPU but topology `{}` declares no GPU nodes",
                        self.topo.name.name
                    ),
                )
                .label("no node can schedule it")
                .with_secondary(span, "GPU requested here")
                .help("declare `gpu_nodes = true` in the topology when the cluster has GPU nodes"),
            );
        } else if self.topo.platform.value == Platform::Compose
            && gpu.saturating_mul(replicas) > host_gpu
        {
            let gpu = gpu.saturating_mul(replicas);
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
        gpu
    }

    /// The services it waits for before it starts, and how: the ones it names
    /// in `depends_on`, then the ones it refers to.
    fn depends_on(
        &self,
        name: &Name,
        h: usize,
        def: &ServiceDef,
        fx: &Effects,
        diags: &mut Diagnostics,
    ) -> Vec<(Name, Condition)> {
        let explicit: Vec<(&Name, Gate, Span)> = def
            .lifecycle
            .depends_on
            .iter()
            .flat_map(|d| &d.value)
            .map(|d| (&d.service.name, d.gate, d.span))
            .collect();
        // A service waits for a few others: a vector, searched, is cheaper than
        // a map made for each instance.
        let mut depends_on: Vec<(Name, Condition)> =
            Vec::with_capacity(explicit.len() + fx.deps.len());
        fn wait_for<'d>(
            deps: &'d mut Vec<(Name, Condition)>,
            target: &Name,
            first: Condition,
        ) -> &'d mut Condition {
            let at = match deps.iter().position(|(t, _)| t == target) {
                Some(at) => at,
                None => {
                    deps.push((target.clone(), first));
                    deps.len() - 1
                }
            };
            &mut deps[at].1
        }
        let mut gate = |target: &Name, gate: Gate, span: Span, diags: &mut Diagnostics| {
            if self.is_patroni(target) {
                // Consumers reach the cluster through the HAProxy beside them.
                wait_for(
                    &mut depends_on,
                    &Added::Haproxy.name(target),
                    Condition::Started,
                );
                return;
            }
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
            let is_task = tp.def.role.as_ref().is_some_and(|r| r.value == Role::Task);
            let cond = match gate {
                Gate::Default if is_task => {
                    super::tasks::wait_for_task(name, target, &tp.def, span, diags)
                }
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
            let entry = wait_for(&mut depends_on, target, cond);
            if cond == Condition::Healthy {
                *entry = Condition::Healthy;
            }
        };
        for (target, g, span) in &explicit {
            gate(target, *g, *span, diags);
        }
        for dep in &fx.deps {
            if !explicit.iter().any(|(t, _, _)| **t == dep.target) {
                gate(&dep.target, Gate::Default, dep.span, diags);
            }
        }
        depends_on.retain(|(t, _)| t != name);
        depends_on
    }

    /// The services its values refer to (a Patroni cluster: the HAProxy beside).
    fn refers_to(&self, name: &Name, fx: &Effects) -> Vec<Name> {
        let mut targets: Vec<Name> = Vec::with_capacity(fx.deps.len());
        for Dependency { target, .. } in &fx.deps {
            // A Patroni cluster is reached through the HAProxy beside.
            let target = if self.is_patroni(target) {
                Added::Haproxy.name(target)
            } else {
                target.clone()
            };
            if target != *name && !targets.contains(&target) {
                targets.push(target);
            }
        }
        targets
    }

    /// What its HA mode makes of it on this host.
    fn replication_plan(&self, name: &Name, h: usize, def: &ServiceDef) -> Replication {
        Replication {
            streaming: self.streaming_plan(name, h).map(Box::new),
            sentinel_node: self.sentinel_node(name, h).map(Box::new),
            patroni: self.patroni_node(name, h).map(Box::new),
            etcd: None,
            postgresql: Vec::new(),
            hostssl: false,
            sentinel: def
                .replication
                .ha
                .as_ref()
                .filter(|h| {
                    h.mode.value == HaMode::Sentinel
                        && self.topo.platform.value == Platform::Kubernetes
                })
                .map(|h| Box::new(SentinelPlan::from_def(name, h))),
        }
    }

    /// What its HA mode adds to it (variables, commands, mounts), with a
    /// variable the user sets too reported.
    fn wire(&self, name: &Name, h: usize, instance: &mut Instance, diags: &mut Diagnostics) {
        let declared = instance.env.len();
        if let Some(s) = instance.replication.streaming.clone() {
            s.wire(instance);
        }
        self.wire_redis_replica(name, h, instance);
        if let Some(node) = instance.replication.sentinel_node.clone() {
            node.wire(instance);
        }
        if let Some(node) = instance.replication.patroni.clone() {
            self.wire_patroni(&node, instance);
        }
        self.wire_redis_auth(name, instance);
        self.wire_alertmanager(name, instance);
        // A variable the HA mode sets is not the user's to set too: the
        // environment would hold the key twice, and one value would be lost.
        let (own, added) = instance.env.split_at(declared);
        for var in added {
            if let Some(user) = own.iter().find(|v| v.key == var.key) {
                diags.push(
                    Diagnostic::error(
                        Code::DuplicateName,
                        user.span,
                        format!("`{}` is set by the HA mode of `{name}`", var.key),
                    )
                    .label("stackc sets this variable")
                    .help(format!(
                        "remove `{}` from `{name}`'s env, or rename it",
                        var.key
                    ))
                    .with_secondary(var.span, "the HA mode that sets it"),
                );
            }
        }
    }
}

/// A placed service runs an image or a build.
fn check_runnable(name: &Name, def: &ServiceDef, decl_span: Span, diags: &mut Diagnostics) {
    let rejected = |f: &str| def.rejected.iter().any(|r| r == f);
    if def.image.is_none()
        && def.program.build.is_none()
        && !rejected("image")
        && !rejected("build")
    {
        diags.push(
            Diagnostic::error(
                Code::MissingField,
                decl_span,
                format!("service `{name}` has neither `image` nor `build`"),
            )
            .label("nothing to run")
            .help(
                "set `image = \"...\"`, `build = \"./path\"`, or give it a kind that has an image",
            ),
        );
    }
}

/// Its ports, each bound where readers need it: on all interfaces when
/// public, else on the host's address and on loopback as readers need.
fn ports(
    name: &Name,
    h: usize,
    host: &HostDef,
    def: &ServiceDef,
    public: &[&str],
    published: &Published<'_>,
) -> Vec<PortPlan> {
    // The small vectors of an instance are sized to what they will hold:
    // grown by `push` or collected from a filter, a vector of one starts
    // with room for four, and a large stack has thousands of instances.
    let mut ports = Vec::with_capacity(def.ports.len());
    for port in def.ports.values() {
        let Some(container) = port.container.as_ref().map(|c| c.value) else {
            continue;
        };
        let mut binds = Vec::new();
        if public.contains(&port.name.name.as_str()) {
            binds.push(Bind::All);
        } else if !published.on_address.is_empty() || !published.on_loopback.is_empty() {
            let key = PublishedPort::new(name, h, &port.name.name);
            let address = host
                .address
                .as_ref()
                .filter(|_| published.on_address.contains(&key));
            let loopback = published.on_loopback.contains(&key);
            binds.reserve_exact(usize::from(address.is_some()) + usize::from(loopback));
            if let Some(a) = address {
                binds.push(Bind::Address(a.value.clone()));
            }
            if loopback {
                binds.push(Bind::Address("127.0.0.1".into()));
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
    ports
}

/// A stateful service published on all interfaces is reachable from anywhere.
fn check_public_stateful(
    name: &Name,
    host: &HostDef,
    def: &ServiceDef,
    role: Role,
    public: &[&str],
    decl_span: Span,
    diags: &mut Diagnostics,
) {
    if role == Role::Stateful && !public.is_empty() {
        let span = def.reach.public.as_ref().map_or(decl_span, |p| p.span);
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
}

/// Its routes: a path prefix and the port it leads to (default the first).
fn routes(def: &ServiceDef) -> Vec<RoutedPath> {
    let mut routes = Vec::with_capacity(def.routes.len());
    routes.extend(def.routes.values().filter_map(|r| {
        let port = match &r.port {
            Some(p) => p.name.clone(),
            None => def.ports.keys().next()?.clone(),
        };
        Some(RoutedPath {
            path: r.path.value.clone(),
            port,
            domain: r
                .options
                .domain
                .as_ref()
                .map(|d| d.value.to_ascii_lowercase()),
            settings: super::RouteSettings::of(r),
            span: r.path.span,
        })
    }));
    routes
}

/// Its volumes (each named after the service) and mounts (an `@out/` one is
/// a file stackc generates for the topology).
fn storage(name: &Name, def: &ServiceDef) -> Storage {
    Storage {
        volumes: def
            .storage
            .volumes
            .values()
            .filter_map(|v| {
                Some(Volume {
                    name: format!("{name}-{}", v.name.name),
                    path: v.path.as_ref()?.value.clone(),
                    size: v.size.as_ref().map_or(Size(1 << 30), |s| s.value),
                })
            })
            .collect(),
        mounts: def
            .storage
            .mounts
            .values()
            .map(|m| match m.source.value.strip_prefix("@out/") {
                Some(generated) => Mount {
                    source: generated.to_string(),
                    target: m.target.value.clone(),
                    read_only: m.read_only,
                    generated: true,
                },
                None => Mount {
                    source: m.source.value.clone(),
                    target: m.target.value.clone(),
                    read_only: m.read_only,
                    generated: false,
                },
            })
            .collect(),
        backup: None,
        shared_from: None,
    }
}
