//! Planning one topology: its definitions with the topology's overrides, the
//! placements, then every host's instances, proxies and HA helpers, with the
//! checks that need the whole topology.

use super::proxy::ProxyEffects;
use super::*;

/// Each topology is planned on its own (on threads of their own when there are
/// cores for them); the diagnostics are kept in topology order.
pub fn plan(stack: &Stack, checked: &Checked, diags: &mut Diagnostics) -> Plan {
    let topos: Vec<&TopologyDef> = stack.topologies.values().collect();
    let mut topologies = Vec::with_capacity(topos.len());
    // The services of the stack that are external: few, and asked about for
    // every placement and reference.
    let external_services: Vec<(&str, &ExternalDef)> = checked
        .externals(stack)
        .map(|(name, e)| (name.as_str(), e))
        .collect();
    for (topology, d) in crate::par::parallel_map_or_unwind(&topos, |topo| {
        let mut d = Diagnostics::default();
        (
            plan_topology(stack, checked, topo, &external_services, &mut d),
            d,
        )
    }) {
        topologies.push(topology);
        diags.extend(d);
    }
    let mut secrets = stack.secrets.clone();
    super::roles::add_secrets(&mut secrets, &topologies);
    Plan {
        stack: stack.name.clone(),
        services: stack.services.len(),
        secrets,
        topologies,
    }
}

pub(super) struct Placement<'a> {
    pub(super) host: usize,
    /// Borrowed when no override changes the definition (the common case).
    pub(super) def: DefRef<'a>,
    pub(super) run_span: Span,
}

/// One port of one placement: what compose publishes on that placement's
/// host, and so what every reader of its address (references, proxies,
/// Prometheus, replication) connects to. A host's `run` block may override the
/// port, so it is always taken from the placement, never from another host's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Endpoint {
    /// The port inside the container (reached by name on the same host).
    pub(super) container: u16,
    /// The port on the host (reached by address from elsewhere).
    pub(super) published: u16,
}

impl Placement<'_> {
    /// The endpoint of the placement's port `name` (else its first port);
    /// `None` without such a port or without a container port.
    pub(super) fn endpoint(&self, name: Option<&str>) -> Option<Endpoint> {
        let port = match name {
            Some(n) => self.def.ports.get(n)?,
            None => self.def.ports.values().next()?,
        };
        let container = port.container_port()?;
        Some(Endpoint {
            container,
            published: port.published_port().unwrap_or(container),
        })
    }
}

pub(super) struct Topo<'a> {
    pub(super) stack: &'a Stack,
    pub(super) topo: &'a TopologyDef,
    pub(super) hosts: Vec<&'a HostDef>,
    /// Per service: base ⊕ topology override.
    pub(super) defs: IndexMap<&'a str, DefRef<'a>>,
    pub(super) placements: IndexMap<&'a str, Vec<Placement<'a>>>,
    /// The services external here: the topology's `external` declarations,
    /// then the stack's external services. Small: asked instead of the stack's
    /// map of every service.
    pub(super) externals: IndexMap<&'a str, &'a ExternalDef>,
    /// The placed services whose (first) placement has an HA block: the HA
    /// questions a reference or an instance asks (Patroni? Sentinel? a
    /// primary?) are answered without a lookup for every other service.
    pub(super) with_ha: IndexSet<&'a str>,
    /// Each kind's chain, from itself to its root (from `check`).
    pub(super) kind_chains: &'a crate::check::KindChains,
}

/// The ports other hosts (on their address) and on-host proxies (on 127.0.0.1)
/// need.
pub(super) struct Published<'a> {
    pub(super) on_address: &'a Publishes,
    pub(super) on_loopback: &'a IndexSet<PublishedPort>,
}

/// A service's port that a placement publishes on its host, for readers
/// elsewhere (another host, an on-host proxy, Prometheus, a standby).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct PublishedPort {
    pub(super) service: Name,
    /// The placement's host, by index.
    pub(super) host: usize,
    pub(super) port: Name,
}

/// Who reads a published port: a host of the topology, by index, or a
/// program outside it (a Prometheus the topology does not run).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Reader {
    Host(usize),
    Outside,
}

/// The ports placements publish on their host's address, each with its
/// readers: the host firewall lets in those.
#[derive(Default)]
pub(super) struct Publishes(IndexMap<PublishedPort, IndexSet<Reader>>);

impl Publishes {
    /// `reader` reads `port` on its host's address.
    pub(super) fn insert(&mut self, port: PublishedPort, reader: Reader) {
        self.0.entry(port).or_default().insert(reader);
    }

    pub(super) fn extend(&mut self, other: Publishes) {
        for (port, readers) in other.0 {
            self.0.entry(port).or_default().extend(readers);
        }
    }

    pub(super) fn contains(&self, port: &PublishedPort) -> bool {
        self.0.contains_key(port)
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The hosts that read `port`, if it is published for a reader.
    pub(super) fn readers(&self, port: &PublishedPort) -> Option<&IndexSet<Reader>> {
        self.0.get(port)
    }
}

impl PublishedPort {
    pub(super) fn new(service: &str, host: usize, port: &Name) -> PublishedPort {
        PublishedPort {
            service: Name::new(service),
            host,
            port: port.clone(),
        }
    }
}

/// The values of one instance, resolved from its host.
#[derive(Default)]
pub(super) struct Resolved {
    pub(super) env: Vec<EnvVar>,
    pub(super) public_url: Option<Pieces>,
    pub(super) params: IndexMap<Name, Pieces>,
}

/// A service an instance's value refers to at run time, and where.
pub(super) struct Dependency {
    pub(super) target: Name,
    pub(super) span: Span,
}

#[derive(Default)]
pub(super) struct Effects {
    /// The services its values refer to at run time, each where referred to.
    pub(super) deps: Vec<Dependency>,
    pub(super) publishes: Publishes,
    /// The service whose values these are, when they are a service's: the
    /// client a server with `roles = per_service` gives a role.
    pub(super) client: Option<Name>,
    /// The roles of their own its values connect as.
    pub(super) roles: Vec<super::roles::RoleUse>,
    /// While a server's URL is resolved for a client with a role of its own:
    /// that role, which the URL's `self.user` and `self.password` name.
    pub(super) as_role: Option<super::roles::RoleUse>,
}

fn plan_topology(
    stack: &Stack,
    checked: &Checked,
    topo: &TopologyDef,
    external_services: &[(&str, &ExternalDef)],
    diags: &mut Diagnostics,
) -> TopologyPlan {
    let mut t = Topo::new(stack, checked, topo, external_services, diags);
    t.place(diags);
    if topo.platform.value == Platform::Kubernetes {
        t.check_cluster_names(diags);
    }
    t.lints(diags);
    t.check_metrics_servers(diags);
    let (proxies, mut proxy_fx) = t.proxies(diags);
    let (mut scrape_jobs, mut scrape_publishes) = t.prometheus(&proxies, diags);
    let tls_probe = t.tls_probe(&proxies, diags);
    scrape_jobs.extend(tls_probe.as_ref().map(super::tls_probe::TlsProbe::job));
    let alerting = t.alerting(&mut scrape_publishes, diags);
    let replication_publishes = t.replication(diags);
    let generated =
        t.check_generated_mounts(&proxies, &scrape_jobs, &t.alerting_files(&alerting), diags);

    // Resolve every instance's environment, collecting start-order edges and the
    // ports other hosts need.
    // Each run's placement, looked up once for the steps below.
    let placed: Vec<Vec<(&Name, Option<&Placement<'_>>)>> = t
        .hosts
        .iter()
        .enumerate()
        .map(|(h, host)| {
            host.runs
                .iter()
                .map(|run| (&run.service.name, t.placement(&run.service.name, h)))
                .collect()
        })
        .collect();
    let (mut effects, mut envs) = t.resolve_runs(&placed, diags);
    let mut publishes = Publishes::default();
    for fx in effects.iter_mut().flatten() {
        publishes.extend(std::mem::take(&mut fx.publishes));
    }
    publishes.extend(std::mem::take(&mut proxy_fx.publishes));
    publishes.extend(scrape_publishes);
    publishes.extend(replication_publishes);

    t.check_cycles(&placed, &effects, diags);
    let roles = t.server_roles(&effects, diags);

    let mut host_plans = Vec::with_capacity(t.hosts.len());
    for (h, host) in t.hosts.iter().enumerate() {
        let envs = std::mem::take(&mut envs[h]);
        let published = Published {
            on_address: &publishes,
            on_loopback: &proxy_fx.loopback,
        };
        host_plans.push(t.host_plan(
            h,
            host,
            &placed[h],
            envs,
            &effects[h],
            &proxies,
            &proxy_fx,
            &published,
            tls_probe.as_ref(),
            diags,
        ));
    }
    t.wire_roles(&mut host_plans, &roles, diags);
    let dns_host = t.dns_host();
    for (h, host) in host_plans.iter_mut().enumerate() {
        let dns = dns_host.as_deref();
        host.firewall = t.firewall(h, &host.services, &proxies, &publishes, dns, diags);
        t.database_clients(h, &mut host.services, &publishes, dns);
    }
    if generated.contains(PROMETHEUS_CONFIG) {
        scrape_jobs.extend(super::prometheus::patroni_jobs(&host_plans));
    }
    TopologyPlan {
        roles,
        host_ips: t.topology_ips(),
        proxies,
        scrape_jobs,
        alerting,
        prometheus_config: generated.contains(PROMETHEUS_CONFIG),
        grafana: generated.contains(GRAFANA_PROVISIONING),
        name: topo.name.name.clone(),
        namespace: topo
            .namespace
            .as_ref()
            .map_or_else(|| stack.name.clone(), |n| n.value.clone()),
        ingress_class: topo.ingress_class.as_ref().map(|c| c.value.clone()),
        scrape: topo.scrape.as_ref().map(|s| s.value).unwrap_or_default(),
        gateway: topo.gateway.as_ref().and_then(|g| {
            let (ns, name) = g.value.split_once('/')?;
            Some((ns.to_string(), name.to_string()))
        }),
        peer_namespaces: super::PeerNamespaces {
            ingress: or_default(&topo.ingress_namespace, "ingress-nginx"),
            monitoring: or_default(&topo.monitoring_namespace, "monitoring"),
            cnpg: or_default(&topo.cnpg_namespace, "cnpg-system"),
        },
        acme: super::proxy::acme::server(topo),
        directory: topo.directory.as_ref().map_or_else(
            || format!("/opt/{}/out/{}", stack.name, topo.name.name),
            |d| d.value.trim_end_matches('/').to_string(),
        ),
        span: topo.name.span,
        platform: topo.platform.value,
        hosts: host_plans,
        allowed: topo
            .allow
            .iter()
            .filter_map(|a| crate::diag::Code::parse(&a.name))
            .collect(),
    }
}

impl<'a> Topo<'a> {
    /// The topology's definitions (each base with the topology's override),
    /// its hosts and its external services.
    fn new(
        stack: &'a Stack,
        checked: &'a Checked,
        topo: &'a TopologyDef,
        external_services: &[(&'a str, &'a ExternalDef)],
        diags: &mut Diagnostics,
    ) -> Topo<'a> {
        let hosts: Vec<&HostDef> = topo.hosts.values().collect();
        let mut externals: IndexMap<&str, &ExternalDef> = topo
            .externals
            .iter()
            .map(|(name, (_, e))| (name.as_str(), e))
            .collect();
        for &(name, e) in external_services {
            externals.entry(name).or_insert(e);
        }
        let mut defs = IndexMap::default();
        defs.reserve(checked.bases.len());
        for (name, base) in &checked.bases {
            let over = topo.overrides.get(name).and_then(|ov| ov.over.as_deref());
            defs.insert(name.as_str(), base.overlaid(over));
        }
        for ov in topo.overrides.values() {
            if !stack.services.contains_key(&ov.service.name) {
                diags.push(unknown_service(stack, &ov.service));
            }
        }
        Topo {
            stack,
            topo,
            hosts,
            defs,
            placements: IndexMap::default(),
            externals,
            with_ha: IndexSet::default(),
            kind_chains: &checked.kind_chains,
        }
    }
}

impl Topo<'_> {
    /// Every run's environment resolved from its host, with what resolving
    /// found (start-order edges, ports other hosts need), by host and run.
    #[allow(clippy::type_complexity)]
    fn resolve_runs(
        &self,
        placed: &[Vec<(&Name, Option<&Placement<'_>>)>],
        diags: &mut Diagnostics,
    ) -> (Vec<Vec<Effects>>, Vec<Vec<Resolved>>) {
        let mut effects: Vec<Vec<Effects>> = Vec::with_capacity(self.hosts.len());
        let mut envs: Vec<Vec<Resolved>> = Vec::with_capacity(self.hosts.len());
        for (h, runs) in placed.iter().enumerate() {
            let mut host_effects = Vec::with_capacity(runs.len());
            let mut host_envs = Vec::with_capacity(runs.len());
            for &(name, p) in runs {
                let (fx, resolved) = self.resolve_run(h, name, p, diags);
                host_effects.push(fx);
                host_envs.push(resolved);
            }
            effects.push(host_effects);
            envs.push(host_envs);
        }
        (effects, envs)
    }

    /// One host's instances: its services, their sentinels, etcd members,
    /// the HAProxy of each Patroni cluster they use, and its proxies; with the
    /// checks of the whole host.
    #[allow(clippy::too_many_arguments)]
    fn host_plan(
        &self,
        h: usize,
        host: &HostDef,
        runs: &[(&Name, Option<&Placement<'_>>)],
        envs: Vec<Resolved>,
        effects: &[Effects],
        proxies: &[ProxyPlan],
        proxy_fx: &ProxyEffects,
        published: &Published<'_>,
        tls_probe: Option<&super::tls_probe::TlsProbe>,
        diags: &mut Diagnostics,
    ) -> HostPlan {
        // Sized once: an instance is large and a host may run thousands. Besides
        // its services a host runs its proxies and, rarely, sentinels, etcd
        // members and Patroni proxies (a few more slots; a vector that grows
        // once past them only costs time).
        let proxies_here = proxies
            .iter()
            .filter(|p| p.host == host.name.name && !p.on_host)
            .count();
        let mut services = Vec::with_capacity(host.runs.len() + proxies_here + 4);
        let runs = runs.iter().zip(envs);
        for (i, (&(name, p), resolved)) in runs.enumerate() {
            let Some(inst) =
                p.and_then(|p| self.instance(name, h, p, resolved, &effects[i], published, diags))
            else {
                continue;
            };
            let sentinel = inst
                .replication
                .sentinel_node
                .as_ref()
                .map(|n| n.sentinel_instance(&inst));
            let backup = super::backups::task(&inst);
            services.push(inst);
            services.extend(sentinel);
            services.extend(backup);
        }
        services.extend(self.etcd_instances(h));
        services.extend(tls_probe.and_then(|p| p.instance(h)));
        // An HAProxy of each Patroni cluster the host's services connect to.
        let consumed: IndexSet<&str> = effects
            .iter()
            .flat_map(|fx| fx.deps.iter().map(|d| d.target.as_str()))
            .filter(|target| self.is_patroni(target))
            .collect();
        for target in consumed {
            services.push(self.patroni_proxy(target));
        }
        for proxy in proxies
            .iter()
            .filter(|p| p.host == host.name.name && !p.on_host)
        {
            let inst = self.proxy_instance(proxy, proxy_fx, &services);
            services.push(inst);
            services.extend(super::proxy::acme::instances(proxy));
        }
        match self.topo.platform.value {
            Platform::Compose => {
                if self.check_names(h, &services, diags) {
                    self.check_ports(h, &services, diags);
                }
                self.check_gpus(h, &services, diags);
            }
            Platform::Kubernetes => self.check_kubernetes(h, &services, diags),
        }
        HostPlan {
            name: host.name.name.clone(),
            address: host.address.as_ref().map(|a| a.value.clone()),
            managed: host.managed,
            services,
            firewall: Vec::new(),
            ssh_port: host.ssh_port.as_ref().map_or(SSH_PORT, |p| p.value),
        }
    }
}

impl Topo<'_> {
    /// The values of one run's instance, resolved from its host, and what
    /// resolving them found (start-order edges, ports other hosts need).
    fn resolve_run(
        &self,
        h: usize,
        name: &Name,
        p: Option<&Placement<'_>>,
        diags: &mut Diagnostics,
    ) -> (Effects, Resolved) {
        let mut fx = Effects {
            client: Some(name.clone()),
            ..Effects::default()
        };
        let mut resolved = Resolved::default();
        let Some(p) = p else {
            return (fx, resolved);
        };
        resolved.env.reserve_exact(p.def.env.len());
        for var in p.def.env.values() {
            let value = self.eval(name, h, &var.value, &mut fx, diags, 0);
            resolved.env.push(EnvVar {
                key: var.key.name.clone(),
                value,
                span: var.key.span,
            });
        }
        if let Some(url) = &p.def.reach.public_url {
            let value = self.eval(name, h, url, &mut fx, diags, 0);
            check_public_url(&value, url.span, diags);
            resolved.public_url = Some(value);
        }
        for (param, decl) in &p.def.parameters.params {
            let value = p
                .def
                .parameters
                .args
                .get(param)
                .map(|a| &a.value)
                .or(decl.default.as_ref());
            if let Some(value) = value {
                let value = self.eval(name, h, value, &mut fx, diags, 0);
                resolved.params.insert(param.clone(), value);
            }
        }
        (fx, resolved)
    }

    pub(super) fn is_external(&self, name: &str) -> bool {
        self.external(name).is_some()
    }

    pub(super) fn external(&self, name: &str) -> Option<&ExternalDef> {
        self.externals.get(name).copied()
    }

    /// The index of a host named in the topology, or an unknown-name error.
    pub(super) fn host_index(&self, name: &Ident, diags: &mut Diagnostics) -> Option<usize> {
        let found = self.hosts.iter().position(|x| x.name.name == name.name);
        if found.is_none() {
            let names = self.hosts.iter().map(|x| x.name.name.as_str());
            let d = Diagnostic::error(
                Code::UnknownName,
                name.span,
                format!("unknown host `{}`", name.name),
            )
            .label("no host of this topology has this name");
            diags.push(d.suggesting(&name.name, names, || {
                "declare it with `host NAME { ... }`".into()
            }));
        }
        found
    }

    pub(super) fn placement(&self, service: &str, host: usize) -> Option<&Placement<'_>> {
        self.placements
            .get(service)?
            .iter()
            .find(|p| p.host == host)
    }

    pub(super) fn where_is(
        &self,
        service: &str,
        consumer_host: usize,
    ) -> Option<(bool, &Placement<'_>)> {
        let placements = self.placements.get(service)?;
        if let Some(p) = placements.iter().find(|p| p.host == consumer_host) {
            return Some((true, p));
        }
        placements.first().map(|p| (false, p))
    }
}

/// Joins adjacent text pieces.
pub(super) fn normalize(pieces: Pieces) -> Pieces {
    let mut out = Pieces::with_capacity(pieces.len());
    for p in pieces {
        push_out(&mut out, p);
    }
    out
}

/// Appends a piece, joined to the text before it when both are text.
pub(super) fn push_out(out: &mut Pieces, piece: Out) {
    match (out.last_mut(), piece) {
        (Some(Out::Text(a)), Out::Text(b)) => *a = crate::base::concat(a, &b),
        (_, p) => out.push(p),
    }
}

/// A public URL is served by proxies and Ingresses by its host, and read by
/// browsers: one that does not parse is an error at its span (once its
/// references are resolved; a URL holding a secret is not checked).
fn check_public_url(value: &[Out], span: Span, diags: &mut Diagnostics) {
    let Some(text) = text_of(value) else {
        return;
    };
    if let Err(why) = crate::grammar::url(&text) {
        diags.push(
            Diagnostic::error(Code::InvalidValue, span, format!("`{text}` is not a public URL: {why}"))
                .label("the service's public URL")
                .help("write `public_url = \"https://DOMAIN[:PORT][/PATH]\"`, the domain DNS labels of letters, digits and `-`"),
        );
    }
}

/// A setting's value, or its default.
fn or_default(value: &Option<crate::model::Sp<String>>, default: &str) -> String {
    value
        .as_ref()
        .map_or_else(|| default.to_string(), |v| v.value.clone())
}
