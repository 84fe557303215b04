//! Topology checks across instances: dependency cycles, GPUs per host, ports per
//! host.

use crate::diag::{Code, Diagnostic, Diagnostics, Span};

use petgraph::graph::{DiGraph, NodeIndex};

use super::*;

/// A long dependency cycle is named by its first services (this many names
/// in the message) and marked at its first dependencies (this many labels).
const CYCLE_NAMES_SHOWN: usize = 12;
const CYCLE_EDGES_LABELLED: usize = 8;

impl Topo<'_> {
    /// Dependency cycles, each reported once by its shortest cycle through
    /// its first service. `placed`: each host's runs, with their placements.
    pub(super) fn check_cycles(
        &self,
        placed: &[Vec<(&Name, Option<&Placement<'_>>)>],
        effects: &[Vec<Effects>],
        diags: &mut Diagnostics,
    ) {
        let graph = self.dependency_graph(placed, effects);
        let n = graph.node_count();
        // The components with a cycle, and each node's (`usize::MAX`: none).
        let mut cycles: Vec<Vec<NodeIndex>> = Vec::new();
        let mut component = vec![usize::MAX; n];
        petgraph::algo::TarjanScc::new().run(&graph, |scc| {
            if scc.len() > 1 {
                for node in scc {
                    component[node.index()] = cycles.len();
                }
                cycles.push(scc.to_vec());
            }
        });
        // Where the search reached each node from; reset after each
        // component, so that the whole check stays linear.
        let mut parent: Vec<Option<NodeIndex>> = vec![None; n];
        for (c, scc) in cycles.iter().enumerate() {
            let path = shortest_cycle(&graph, scc, c, &component, &mut parent);
            if let Some(d) = self.cycle_diagnostic(&graph, &path) {
                diags.push(d);
            }
        }
    }

    /// One node per service, by its index in the stack (edges are added
    /// without hashing names, and Tarjan's algorithm runs over vectors); an
    /// edge per dependency, weighted with where it is written.
    fn dependency_graph(
        &self,
        placed: &[Vec<(&Name, Option<&Placement<'_>>)>],
        effects: &[Vec<Effects>],
    ) -> DiGraph<(), Span> {
        let n = self.stack.services.len();
        let mut graph: DiGraph<(), Span> = DiGraph::with_capacity(n, n);
        for _ in 0..n {
            graph.add_node(());
        }
        let index = |name: &str| self.stack.services.get_index_of(name).map(NodeIndex::new);
        for (h, runs) in placed.iter().enumerate() {
            for (i, &(name, p)) in runs.iter().enumerate() {
                let Some(from) = index(name) else {
                    continue;
                };
                let refs = effects[h][i]
                    .deps
                    .iter()
                    .map(|d| (d.target.as_str(), d.span));
                let explicit = p
                    .and_then(|p| p.def.lifecycle.depends_on.as_ref())
                    .into_iter()
                    .flat_map(|d| d.value.iter().map(|d| (d.service.name.as_str(), d.span)));
                for (target, span) in refs.chain(explicit) {
                    if let Some(to) = index(target) {
                        if to != from && graph.find_edge(from, to).is_none() {
                            graph.add_edge(from, to, span);
                        }
                    }
                }
            }
        }
        graph
    }

    /// The diagnostic of a cycle: its services (the first of a long one)
    /// and its first dependencies marked.
    fn cycle_diagnostic(
        &self,
        graph: &DiGraph<(), Span>,
        path: &[NodeIndex],
    ) -> Option<Diagnostic> {
        let name = |i: NodeIndex| self.stack.services.get_index(i.index()).map(|(n, _)| n);
        let names: Vec<&str> = path
            .iter()
            .filter_map(|i| name(*i))
            .map(Name::as_str)
            .collect();
        let mut edges = path.windows(2).filter_map(|w| {
            let span = graph.edge_weight(graph.find_edge(w[0], w[1])?)?;
            let from = name(w[0])?;
            let to = name(w[1])?;
            Some((*span, format!("`{from}` needs `{to}` here")))
        });
        let (first_span, first_label) = edges.next()?;
        // A cycle through thousands of services is named and labelled in
        // part: a label per edge made one diagnostic take seconds to
        // render, and no reader follows it.
        let services = names.len().saturating_sub(1);
        let shown = if names.len() > CYCLE_NAMES_SHOWN {
            let head = names[..CYCLE_NAMES_SHOWN - 2].join(" -> ");
            let last = names.last().copied().unwrap_or_default();
            format!("{head} -> ... -> {last} ({services} services)")
        } else {
            names.join(" -> ")
        };
        let mut help = String::from("no service of the cycle can start first; break it by referring to a `public_url`, or by removing one dependency");
        if services > CYCLE_EDGES_LABELLED {
            help.push_str(&format!(
                " (the first {CYCLE_EDGES_LABELLED} of its {services} dependencies are marked)"
            ));
        }
        let mut d = Diagnostic::error(
            Code::DependencyCycle,
            first_span,
            format!("dependency cycle: {shown}"),
        )
        .label(first_label)
        .help(help);
        for (span, label) in edges.take(CYCLE_EDGES_LABELLED - 1) {
            d = d.with_secondary(span, label);
        }
        Some(d)
    }

    /// The GPUs of all services on a host together must fit the host (each on its
    /// own is checked in `instance`).
    pub(super) fn check_gpus(&self, h: usize, services: &[Instance], diags: &mut Diagnostics) {
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

    /// Every container of a host's compose file, and every named volume, has a
    /// name of its own: a service the user named like a container stackc adds
    /// (`db-etcd` beside a Patroni `db`), or two services whose volumes make the
    /// same `<service>-<volume>`, would otherwise be one key that the last
    /// writer wins.
    /// Whether every name was unique (else the ports of the two are not
    /// compared: one error, not a cascade).
    pub(super) fn check_names(
        &self,
        h: usize,
        services: &[Instance],
        diags: &mut Diagnostics,
    ) -> bool {
        let Some(host) = self.hosts.get(h) else {
            return true;
        };
        let mut unique = true;
        let span_of = |name: &str| {
            self.stack
                .services
                .get(name)
                .filter(|_| self.placement(name, h).is_some())
                .map(|d| d.name.span)
        };
        // A name can be taken twice only where the user placed a service named
        // like a container stackc adds here, or like a proxy: those few names
        // are counted (two user placements of one service are E0409's).
        let mut names: Vec<&str> = services
            .iter()
            .map(|i| i.name.as_str())
            .filter(|n| {
                self.placement(n, h).is_some()
                    && (self.is_added(n, h) || super::proxy::proxy_span(self.topo, n).is_some())
            })
            .collect();
        names.sort_unstable();
        names.dedup();
        let mut counts = vec![0usize; names.len()];
        for inst in services {
            if let Ok(i) = names.binary_search(&inst.name.as_str()) {
                counts[i] += 1;
            }
        }
        for (name, _) in names.iter().zip(&counts).filter(|(_, c)| **c > 1) {
            let owner = match Added::owner(name) {
                Some((service, _)) if self.is_added(name, h) => {
                    format!("the container stackc adds for the HA mode of `{service}`")
                }
                _ => format!("proxy `{name}`"),
            };
            let span = span_of(name).unwrap_or(host.name.span);
            let mut d = Diagnostic::error(
                Code::DuplicateName,
                span,
                format!(
                    "`{name}` on host `{}` is also the name of {owner}",
                    host.name.name
                ),
            )
            .label("two containers of one compose file with this name")
            .help(format!("rename `{name}`"));
            if let Some(other) = self
                .added_span(name, h)
                .or_else(|| super::proxy::proxy_span(self.topo, name))
            {
                d = d.with_secondary(other, "the container is added for this");
            }
            diags.push(d);
            unique = false;
        }
        let mut volumes: IndexMap<&str, &str> = IndexMap::default();
        for inst in services {
            let owner = volume_owner(inst);
            for v in &inst.storage.volumes {
                match volumes.get(v.name.as_str()) {
                    Some(other) if *other != owner => {
                        let span = span_of(&inst.name).unwrap_or(host.name.span);
                        diags.push(
                            Diagnostic::error(
                                Code::DuplicateName,
                                span,
                                format!("the volume `{}` of `{}` on host `{}` has the name of a volume of `{other}`", v.name, inst.name, host.name.name),
                            )
                            .label("volumes are named `<service>-<volume>`")
                            .help("rename one of the volumes"),
                        );
                    }
                    _ => {
                        volumes.insert(&v.name, owner);
                    }
                }
            }
        }
        unique
    }

    /// How to resolve two listeners on one host port: move the user's own
    /// service, else the proxy (whose ports are its `http` and `https`); the
    /// ports of the containers stackc adds are fixed.
    fn port_conflict_help(
        &self,
        inst: &Instance,
        port: &PortPlan,
        other: &str,
        other_port: &str,
        h: usize,
    ) -> String {
        let own = |name: &str, port: &str| {
            let p = self.placement(name, h)?;
            let container = p.def.ports.get(port)?.container_port()?;
            Some(format!(
                "give `{name}` another host port: `port {port} {{ container = {container}  host = ... }}`"
            ))
        };
        if let Some(help) = own(&inst.name, &port.name).or_else(|| own(other, other_port)) {
            return help;
        }
        for (name, port) in [
            (inst.name.as_str(), port.name.as_str()),
            (other, other_port),
        ] {
            if super::proxy::proxy_span(self.topo, name).is_some() {
                return format!("give proxy `{name}` another port: `{port} = ...` in its block");
            }
        }
        format!("run `{}` and `{other}` on different hosts", inst.name)
    }

    /// Two Patroni clusters whose etcd members share a host: one error per
    /// pair of clusters (the same for every shared host and port, so that it
    /// is reported once), not one per port.
    fn shared_etcd(&self, a: &str, b: &str, h: usize) -> Option<Diagnostic> {
        let (Some((a, Added::Etcd)), Some((b, Added::Etcd))) = (Added::owner(a), Added::owner(b))
        else {
            return None;
        };
        if !self.is_added(&Added::Etcd.name(a), h) || !self.is_added(&Added::Etcd.name(b), h) {
            return None;
        }
        let (a_span, b_span) = (
            self.added_span(&Added::Etcd.name(a), h)?,
            self.added_span(&Added::Etcd.name(b), h)?,
        );
        Some(
            Diagnostic::error(
                Code::PortConflict,
                a_span,
                format!("the Patroni clusters `{a}` and `{b}` run etcd members on the same hosts, and both listen on ports {ETCD_CLIENT_PORT} and {ETCD_PEER_PORT}"),
            )
            .label(format!("`{a}`'s etcd members"))
            .with_secondary(b_span, format!("`{b}`'s etcd members"))
            .help(format!("give `{a}` etcd members on other hosts: `etcd = [...]` in its `ha` block names them")),
        )
    }

    /// Whether stackc adds a container of this name on host `h`: the name is
    /// `<service><suffix>` for a service placed there whose HA mode adds it.
    fn is_added(&self, name: &str, h: usize) -> bool {
        Added::owner(name).is_some_and(|(service, added)| {
            self.placement(service, h)
                .and_then(|p| p.def.replication.ha.as_ref())
                .is_some_and(|ha| Added::by_mode(&ha.mode.value).contains(&added))
        })
    }

    /// Where a container stackc adds is asked for: the `ha` block of the
    /// service it is added for, as placed on host `h`.
    fn added_span(&self, name: &str, h: usize) -> Option<Span> {
        let (service, _) = Added::owner(name)?;
        let p = self.placement(service, h)?;
        Some(
            p.def
                .replication
                .ha
                .as_ref()
                .map_or(p.run_span, |ha| ha.span),
        )
    }

    pub(super) fn check_ports(&self, h: usize, services: &[Instance], diags: &mut Diagnostics) {
        let Some(host) = self.hosts.get(h) else {
            return;
        };
        // (host port, bind) -> (service, port name)
        let mut taken: Vec<(u16, &Bind, &str, &str)> = Vec::new();
        for inst in services {
            let placement = self.placement(&inst.name, h);
            let Some(fallback) = placement
                .map(|p| p.run_span)
                .or_else(|| super::proxy::proxy_span(self.topo, &inst.name))
                .or_else(|| self.added_span(&inst.name, h))
            else {
                continue;
            };
            for port in &inst.ports {
                let span = placement
                    .and_then(|p| p.def.ports.get(&port.name))
                    .map_or(fallback, |d| d.name.span);
                // Replicas of a stateful service without an HA mode are refused
                // already (E0404): its published port is no second error of
                // the same `replicas`.
                let refused = inst.role == Role::Stateful && inst.ha == HaMode::Single;
                if let Some(d) = self.ssh_clash(host, inst, port, span) {
                    diags.push(d);
                }
                for bind in &port.binds {
                    if inst.replicas > 1 && !refused {
                        let mut d = Diagnostic::error(
                            Code::ReplicasPublishPort,
                            span,
                            format!(
                                "`{}` runs {} replicas on host `{}` but publishes host port {}",
                                inst.name, inst.replicas, host.name.name, port.host
                            ),
                        )
                        .label("only one replica can bind this port")
                        .help("put a proxy in front of the replicas, or use one replica per host");
                        // Where the replicas are asked for (the port may be
                        // the stdlib kind's).
                        if let Some(r) = placement.and_then(|p| p.def.replicas.as_ref()) {
                            d = d.with_secondary(r.span, format!("{} replicas", r.value));
                        }
                        diags.push(d);
                    }
                    let clash = taken.iter().find(|(n, b, _, _)| {
                        *n == port.host
                            && (matches!(b, Bind::All) || matches!(bind, Bind::All) || *b == bind)
                    });
                    if let Some((_, _, other, other_port)) = clash {
                        let both_sentinels = [inst.name.as_str(), other].iter().all(|n| {
                            self.is_added(n, h)
                                && Added::owner(n).is_some_and(|(_, a)| a == Added::Sentinel)
                        });
                        if both_sentinels {
                            // Reported with the placements (one Sentinel-watched Redis per host).
                            continue;
                        }
                        if let Some(d) = self.shared_etcd(&inst.name, other, h) {
                            diags.push(d);
                            continue;
                        }
                        let other_span = self
                            .placement(other, h)
                            .and_then(|p| p.def.ports.get(*other_port))
                            .map(|d| d.name.span)
                            .or_else(|| super::proxy::proxy_span(self.topo, other))
                            .or_else(|| self.added_span(other, h))
                            .unwrap_or(span);
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
                            .help(self.port_conflict_help(inst, port, other, other_port, h)),
                        );
                    } else {
                        taken.push((port.host, bind, &inst.name, &port.name));
                    }
                }
            }
        }
    }
}

impl Topo<'_> {
    /// A TCP port published on the host's SSH port: sshd holds it on every
    /// address, so the container cannot start (and the firewall lets it in
    /// for SSH).
    fn ssh_clash(
        &self,
        host: &HostDef,
        inst: &Instance,
        port: &PortPlan,
        span: Span,
    ) -> Option<Diagnostic> {
        let ssh = host.ssh_port.as_ref();
        let ssh_port = ssh.map_or(SSH_PORT, |p| p.value);
        if port.host != ssh_port || port.protocol == Protocol::Udp || port.binds.is_empty() {
            return None;
        }
        let mut d = Diagnostic::error(
            Code::PortConflict,
            span,
            format!(
                "`{}` publishes port {ssh_port} on host `{}`, its SSH port",
                inst.name, host.name.name
            ),
        )
        .label(format!("`{}` publishes {ssh_port} here", inst.name))
        .help("publish the service on another host port (`port NAME { container = N  host = M }`), or move SSH with the host's `ssh_port`");
        if let Some(p) = ssh {
            d = d.with_secondary(p.span, "the SSH port");
        }
        Some(d)
    }
}

/// A node's edges in the order they were added (the graph lists the newest
/// first).
fn next_of(graph: &DiGraph<(), Span>, node: NodeIndex) -> Vec<NodeIndex> {
    let mut next: Vec<NodeIndex> = graph.neighbors(node).collect();
    next.reverse();
    next
}

/// The shortest cycle through the service written first of component `c`
/// (a breadth-first search inside the component: a walk that only avoids
/// nodes it has seen can close on another node). `parent` is left as found.
fn shortest_cycle(
    graph: &DiGraph<(), Span>,
    scc: &[NodeIndex],
    c: usize,
    component: &[usize],
    parent: &mut [Option<NodeIndex>],
) -> Vec<NodeIndex> {
    let Some(&start) = scc.iter().min() else {
        return Vec::new();
    };
    let mut reached = Vec::new();
    let mut queue = std::collections::VecDeque::from([start]);
    let mut last = None;
    'search: while let Some(node) = queue.pop_front() {
        for next in next_of(graph, node) {
            if next == start {
                last = Some(node);
                break 'search;
            }
            if component[next.index()] == c && parent[next.index()].is_none() {
                parent[next.index()] = Some(node);
                reached.push(next);
                queue.push_back(next);
            }
        }
    }
    let mut path = Vec::new();
    if let Some(mut node) = last {
        path = vec![start, node];
        while let Some(from) = parent[node.index()] {
            path.push(from);
            node = from;
        }
        path.reverse();
    }
    for node in reached {
        parent[node.index()] = None;
    }
    path
}

/// Whose a container's volumes are: its own, or those of the container it
/// shares them with.
fn volume_owner(inst: &Instance) -> &str {
    inst.storage.shared_from.as_deref().unwrap_or(&inst.name)
}
