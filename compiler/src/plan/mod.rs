//! Planning: each topology resolved into hosts and the service instances they run,
//! with every reference turned into text (or a secret) as the consuming instance
//! sees it, the ports each host must publish, and the start order. Targets read a
//! `Plan` only; they never see the syntax tree or the partial definitions.
//!
//! This is also where the topology-specific checks run: placement, GPU, ports,
//! replicas of stateful services, health gates and dependency cycles.

use std::sync::Arc;

use crate::base::{IndexMap, IndexSet, Name};

use crate::check::{unknown_service, Checked};
use crate::diag::{Code, Diagnostic, Diagnostics, Span};
use crate::model::*;
use crate::syntax::Ident;

mod checks;
mod instance;
mod kubernetes;
pub use kubernetes::names as kubernetes_names;
mod lints;
mod patroni;
mod place;
mod prometheus;
mod proxy;
mod redis_auth;
mod replication;
mod resolve;

pub use patroni::{
    endpoint, EtcdMember, PatroniNode, ETCD_CLIENT_PORT, ETCD_DATA_DIR, ETCD_PEER_PORT,
    PATRONI_DIR, PATRONI_PRIMARY_PORT, PATRONI_REPLICA_PORT, PATRONI_REST_PORT, PATRONI_VERSION,
};
pub use prometheus::{ScrapeJob, PROMETHEUS_CONFIG};
pub use proxy::{
    HttpHealth, ProxyPlan, RateLimit, RoutePlan, Site, Tls, Upstream, UpstreamServer,
    HAPROXY_METRICS_PORT, HAPROXY_STATS_PORT,
};
pub use replication::{
    SentinelNode, StreamingPlan, REDIS_DIR, REDIS_PASSWORD_ENV, REPLICATION_PASSWORD_ENV,
    SENTINEL_PORT, STREAMING_DIR,
};

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub stack: String,
    /// Every declared secret, for targets that describe what must be set.
    pub secrets: IndexMap<Name, SecretDef>,
    pub topologies: Vec<TopologyPlan>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TopologyPlan {
    pub name: Name,
    /// Kubernetes: the namespace.
    pub namespace: String,
    /// Kubernetes: the IngressClass of public routes.
    pub ingress_class: Option<String>,
    pub proxies: Vec<ProxyPlan>,
    pub scrape_jobs: Vec<ScrapeJob>,
    /// Write `prometheus/prometheus.yml` (there are jobs, or a service mounts it).
    pub prometheus_config: bool,
    /// Where the topology is defined, for diagnostics of the targets.
    pub span: Span,
    pub platform: Platform,
    pub hosts: Vec<HostPlan>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HostPlan {
    pub name: Name,
    pub address: Option<String>,
    pub managed: bool,
    pub services: Vec<Instance>,
}

/// A piece of a resolved value: text, or a secret that the target writes in its
/// own way (never its value, which stackc does not know).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Out {
    Text(Name),
    /// Boxed: text is most pieces, and a piece is as large as its largest
    /// kind (24 bytes with the secret boxed, 56 inline).
    Secret(Box<SecretRef>),
}

/// A secret in a value: its name, the environment variable that carries it,
/// and whether it may be left empty.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SecretRef {
    pub name: Name,
    pub env: Name,
    pub optional: bool,
}

impl Out {
    pub(crate) fn secret(name: Name, env: Name, optional: bool) -> Out {
        Out::Secret(Box::new(SecretRef {
            name,
            env,
            optional,
        }))
    }
}

/// A value's text, when it holds no secret (whose value stackc never has).
pub fn text_of(value: &[Out]) -> Option<String> {
    value
        .iter()
        .map(|p| match p {
            Out::Text(t) => Some(t.as_str()),
            Out::Secret(_) => None,
        })
        .collect()
}

/// The secrets of a value that stand inside a URL (after a `scheme://`):
/// there a value is read up to its first `@`, `:`, `/`, `?` or `#`, and no
/// target can percent-encode a value it never sees (compose interpolates, and
/// Kubernetes expands, the raw value). Such a secret may hold only URL
/// characters that need no encoding (`URL_SAFE`), and the generated scripts
/// that take secret values refuse any other (docs/targets.md).
pub fn secrets_in_urls(value: &[Out]) -> impl Iterator<Item = &SecretRef> {
    let mut in_url = false;
    value.iter().filter_map(move |p| match p {
        Out::Text(t) => {
            if t.contains("://") {
                in_url = true;
            }
            if t.contains(char::is_whitespace) {
                in_url = t
                    .rsplit(char::is_whitespace)
                    .next()
                    .is_some_and(|w| w.contains("://"));
            }
            None
        }
        Out::Secret(s) => in_url.then_some(&**s),
    })
}

/// What a secret inside a URL may hold: RFC 3986's unreserved characters.
pub const URL_SAFE: &str = "letters, digits and `-._~`";

/// A shell `case` that stops a script when the variable `var` holds anything
/// but `URL_SAFE` characters (or, unless `empty` may be, nothing), saying why
/// (`why` goes inside double quotes: a name and words only).
pub fn url_safe_check(var: &str, empty: bool, why: &str) -> String {
    let pattern = if empty {
        "*[!A-Za-z0-9._~-]*"
    } else {
        "''|*[!A-Za-z0-9._~-]*"
    };
    format!(
        "case \"${{{var}:-}}\" in {pattern})\n  echo \"{why}: it may hold only {}\" >&2\n  exit 1 ;;\nesac\n",
        URL_SAFE.replace('`', "")
    )
}

/// A resolved value: its pieces, text joined. Most values are one piece (a
/// literal, a URL): it is kept inline, not in an allocation of its own
/// (tens of thousands of environment variables at N = 10000).
pub type Pieces = smallvec::SmallVec<[Out; 1]>;

#[derive(Debug, Clone, PartialEq)]
pub struct EnvVar {
    pub key: Name,
    pub value: Pieces,
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
    pub name: Name,
    pub container: u16,
    pub host: u16,
    pub protocol: Protocol,
    pub binds: Vec<Bind>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    pub check: ProbeCheck,
    /// The checked port's name and container port (none for a command check).
    pub port_name: Option<Name>,
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
    /// The source is a generated file, relative to the topology's output directory
    /// (else it is relative to the .stack file, or absolute).
    pub generated: bool,
}

impl Mount {
    /// A file stackc generates for the topology, mounted read-only.
    pub(crate) fn generated(source: impl Into<String>, target: impl Into<String>) -> Mount {
        Mount {
            source: source.into(),
            target: target.into(),
            read_only: true,
            generated: true,
        }
    }
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
    pub name: Name,
    pub role: Role,
    pub image: Option<Name>,
    pub ports: Vec<PortPlan>,
    pub env: Vec<EnvVar>,
    pub replicas: u32,
    pub probes: Probes,
    pub restart: Restart,
    pub depends_on: Vec<(Name, Condition)>,
    /// The services its values refer to at run time (`db.url`), wherever they run.
    pub refers_to: Vec<Name>,
    /// The kind the service was declared with, if any.
    pub kind: Option<Name>,
    pub public: Vec<String>,
    pub public_url: Option<Pieces>,
    pub routes: Vec<RoutedPath>,
    pub update: Update,
    /// The HA mode (`single` when none is chosen).
    pub ha: HaMode,
    /// Runs in the host's network (no published ports, no NAT).
    pub host_network: bool,
    /// What few services have (a build, volumes, HA...), read and written as
    /// `instance.rare.volumes`.
    pub rare: Rare,
}

/// The parts of an instance that few services have (see [`crate::base::Rare`]). An
/// instance is planned for every service of every topology: with these
/// inline it was 648 bytes, 13 MB of a large build's heap at its peak
/// (docs/performance.md).
pub type Rare = crate::base::Rare<RareParts>;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct RareParts {
    pub build: Option<String>,
    /// The image's CMD replaced (compose `command`, Kubernetes `args`).
    pub command: Option<Vec<String>>,
    /// The image's ENTRYPOINT replaced (compose `entrypoint`, Kubernetes
    /// `command`).
    pub entrypoint: Option<Vec<String>>,
    pub volumes: Vec<Volume>,
    pub mounts: Vec<Mount>,
    pub resources: Resources,
    pub autoscale: Option<Box<Autoscale>>,
    pub stop_grace_period: Option<Duration>,
    pub pre_stop: Option<Duration>,
    pub min_available: Option<u32>,
    /// Redis with Sentinel (Kubernetes).
    pub sentinel: Option<Box<SentinelPlan>>,
    /// PostgreSQL streaming replication (hosts).
    pub streaming: Option<Box<StreamingPlan>>,
    /// A node of a Sentinel-watched Redis (hosts).
    pub sentinel_node: Option<Box<SentinelNode>>,
    /// A node of a Patroni cluster (hosts).
    pub patroni: Option<Box<PatroniNode>>,
    /// A member of a Patroni cluster's etcd (hosts).
    pub etcd: Option<Box<EtcdMember>>,
    /// Host devices passed to the container.
    pub devices: Vec<String>,
    /// The values of its kind's parameters, resolved.
    pub params: IndexMap<Name, Pieces>,
}

crate::base::rare_parts!(RareParts);

impl Instance {
    /// A container stackc adds beside the declared services (a proxy, a
    /// sentinel): one replica, restarted unless stopped, with nothing else set.
    pub(crate) fn auxiliary(name: Name, role: Role) -> Instance {
        Instance {
            name,
            role,
            image: None,
            ports: Vec::new(),
            env: Vec::new(),
            replicas: 1,
            probes: Probes::default(),
            restart: Restart::UnlessStopped,
            depends_on: Vec::new(),
            refers_to: Vec::new(),
            kind: None,
            public: Vec::new(),
            public_url: None,
            routes: Vec::new(),
            update: Update {
                max_surge: 1,
                max_unavailable: 0,
            },
            ha: HaMode::Single,
            host_network: false,
            rare: Rare::default(),
        }
    }

    /// The check that says the service is ready: readiness, else liveness, else
    /// startup. Compose has one health check and uses this one.
    pub fn ready_check(&self) -> Option<&Probe> {
        self.probes
            .readiness
            .as_deref()
            .or(self.probes.liveness.as_deref())
            .or(self.probes.startup.as_deref())
    }

    /// The fewest replicas the service runs with (the autoscaler's minimum).
    pub fn min_replicas(&self) -> u32 {
        self.rare
            .autoscale
            .as_ref()
            .map_or(self.replicas, |a| a.min)
    }
}

/// A named volume: `<service>-<name>`, mounted at `path`.
#[derive(Debug, Clone, PartialEq)]
pub struct Volume {
    pub name: String,
    pub path: String,
    /// What a Kubernetes volume claim asks for.
    pub size: Size,
}

/// Sentinel's settings, with their defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct SentinelPlan {
    pub sentinels: u32,
    pub quorum: u32,
    pub down_after: Duration,
    pub failover_timeout: Duration,
    pub master_name: String,
}

impl SentinelPlan {
    pub fn from_def(service: &str, ha: &HaDef) -> SentinelPlan {
        let sentinels = ha.sentinels.as_ref().map_or(3, |s| s.value.max(1));
        let down_after = ha.down_after.as_ref().map_or(Duration(5_000), |d| d.value);
        SentinelPlan {
            sentinels,
            quorum: ha.quorum.as_ref().map_or(sentinels / 2 + 1, |q| q.value),
            down_after,
            failover_timeout: ha
                .failover_timeout
                .as_ref()
                .map_or(Duration((down_after.0 * 3).max(10_000)), |d| d.value),
            master_name: ha
                .master_name
                .as_ref()
                .map_or_else(|| service.to_string(), |m| m.value.clone()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Probes {
    pub liveness: Option<Arc<Probe>>,
    pub readiness: Option<Arc<Probe>>,
    pub startup: Option<Arc<Probe>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Autoscale {
    pub min: u32,
    pub max: u32,
    pub cpu: Option<u32>,
    pub memory: Option<u32>,
    pub scale_up: Option<ScalePolicy>,
    pub scale_down: Option<ScalePolicy>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ScalePolicy {
    pub window: Option<Duration>,
    pub percent: Option<u32>,
    pub pods: Option<u32>,
    pub period: Option<Duration>,
}

/// A rolling update: at most `max_surge` extra pods, at most `max_unavailable`
/// pods missing (defaults 1 and 0: no capacity lost during an update).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Update {
    pub max_surge: u32,
    pub max_unavailable: u32,
}

/// Whether using an attribute means "needs the service running": it becomes a
/// start-order edge. `public_url` and parameters do not (a browser, not the
/// service, uses them).
fn runtime_attribute(attr: &str) -> bool {
    attr != "public_url" && crate::schema::is_attribute(attr)
}

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
    Plan {
        stack: stack.name.clone(),
        secrets: stack.secrets.clone(),
        topologies,
    }
}

/// A container stackc adds on hosts for a service's HA mode, named
/// `<service><suffix>`: one place that makes and reads these names, so that a
/// name a user chose cannot silently take one's place (`check_added_names`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    /// The sentinel beside each node of a Sentinel-watched Redis.
    Sentinel,
    /// The etcd member beside each node of a Patroni cluster.
    Etcd,
    /// The HAProxy beside each consumer of a Patroni cluster.
    Haproxy,
}

impl Added {
    pub const ALL: [Added; 3] = [Added::Sentinel, Added::Etcd, Added::Haproxy];

    pub fn suffix(self) -> &'static str {
        match self {
            Added::Sentinel => "-sentinel",
            Added::Etcd => "-etcd",
            Added::Haproxy => "-haproxy",
        }
    }

    /// The container's name for `service`.
    pub fn name(self, service: &str) -> Name {
        crate::base::concat(service, self.suffix())
    }

    /// The service and the kind of container of an added container's name.
    pub fn owner(name: &str) -> Option<(&str, Added)> {
        Added::ALL
            .into_iter()
            .find_map(|a| name.strip_suffix(a.suffix()).map(|s| (s, a)))
    }

    /// What the HA mode `mode` adds on hosts.
    pub fn by_mode(mode: &HaMode) -> &'static [Added] {
        match mode {
            HaMode::Sentinel => &[Added::Sentinel],
            HaMode::Patroni => &[Added::Etcd, Added::Haproxy],
            _ => &[],
        }
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

/// A public path prefix of an instance and the port it leads to.
#[derive(Debug, Clone, PartialEq)]
pub struct RoutedPath {
    pub path: Name,
    pub port: Name,
}

/// The ports other hosts (on their address) and on-host proxies (on 127.0.0.1)
/// need.
pub(super) struct Published<'a> {
    pub(super) on_address: &'a IndexSet<PublishedPort>,
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

#[derive(Default)]
pub(super) struct Effects {
    /// (target service, span of the reference)
    pub(super) deps: Vec<(Name, Span)>,
    pub(super) publishes: IndexSet<PublishedPort>,
}

fn plan_topology(
    stack: &Stack,
    checked: &Checked,
    topo: &TopologyDef,
    external_services: &[(&str, &ExternalDef)],
    diags: &mut Diagnostics,
) -> TopologyPlan {
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
    let mut t = Topo {
        stack,
        topo,
        hosts,
        defs,
        placements: IndexMap::default(),
        externals,
        with_ha: IndexSet::default(),
        kind_chains: &checked.kind_chains,
    };
    t.place(diags);
    if topo.platform.value == Platform::Kubernetes {
        t.check_cluster_names(diags);
    }
    t.lints(diags);
    let (proxies, proxy_fx) = t.proxies(diags);
    let (scrape_jobs, scrape_publishes) = t.prometheus(&proxies, diags);
    let replication_publishes = t.replication(diags);
    let generated = t.check_generated_mounts(&proxies, &scrape_jobs, diags);

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
    let mut effects: Vec<Vec<Effects>> = Vec::with_capacity(t.hosts.len());
    let mut envs: Vec<Vec<Resolved>> = Vec::with_capacity(t.hosts.len());
    for (h, runs) in placed.iter().enumerate() {
        let mut host_effects = Vec::with_capacity(runs.len());
        let mut host_envs = Vec::with_capacity(runs.len());
        for &(name, p) in runs {
            let (fx, resolved) = t.resolve_run(h, name, p, diags);
            host_effects.push(fx);
            host_envs.push(resolved);
        }
        effects.push(host_effects);
        envs.push(host_envs);
    }
    let mut publishes: IndexSet<PublishedPort> = effects
        .iter()
        .flatten()
        .flat_map(|fx| fx.publishes.iter().cloned())
        .collect();
    publishes.extend(proxy_fx.publishes.iter().cloned());
    publishes.extend(scrape_publishes);
    publishes.extend(replication_publishes);

    t.check_cycles(&placed, &effects, diags);

    let mut host_plans = Vec::new();
    for (h, host) in t.hosts.iter().enumerate() {
        // Sized once: an instance is large and a host may run thousands. Besides
        // its services a host runs its proxies and, rarely, sentinels, etcd
        // members and Patroni proxies (a few more slots; a vector that grows
        // once past them only costs time).
        let proxies_here = proxies
            .iter()
            .filter(|p| p.host == host.name.name && !p.on_host)
            .count();
        let mut services = Vec::with_capacity(host.runs.len() + proxies_here + 4);
        let published = Published {
            on_address: &publishes,
            on_loopback: &proxy_fx.loopback,
        };
        let runs = placed[h].iter().zip(std::mem::take(&mut envs[h]));
        for (i, (&(name, p), resolved)) in runs.enumerate() {
            let Some(inst) =
                p.and_then(|p| t.instance(name, h, p, resolved, &effects[h][i], &published, diags))
            else {
                continue;
            };
            let sentinel = inst
                .rare
                .sentinel_node
                .as_ref()
                .map(|n| n.sentinel_instance(&inst));
            services.push(inst);
            services.extend(sentinel);
        }
        services.extend(t.etcd_instances(h));
        // An HAProxy of each Patroni cluster the host's services connect to.
        let consumed: IndexSet<&str> = effects[h]
            .iter()
            .flat_map(|fx| fx.deps.iter().map(|(target, _)| target.as_str()))
            .filter(|target| t.is_patroni(target))
            .collect();
        for target in consumed {
            services.push(t.patroni_proxy(target));
        }
        for proxy in proxies
            .iter()
            .filter(|p| p.host == host.name.name && !p.on_host)
        {
            let inst = t.proxy_instance(proxy, &proxy_fx, &services);
            services.push(inst);
        }
        match topo.platform.value {
            Platform::Compose => {
                if t.check_names(h, &services, diags) {
                    t.check_ports(h, &services, diags);
                }
                t.check_gpus(h, &services, diags);
            }
            Platform::Kubernetes => t.check_kubernetes(h, &services, diags),
        }
        host_plans.push(HostPlan {
            name: host.name.name.clone(),
            address: host.address.as_ref().map(|a| a.value.clone()),
            managed: host.managed,
            services,
        });
    }
    TopologyPlan {
        proxies,
        scrape_jobs,
        prometheus_config: generated.contains(PROMETHEUS_CONFIG),
        name: topo.name.name.clone(),
        namespace: topo
            .namespace
            .as_ref()
            .map_or_else(|| stack.name.clone(), |n| n.value.clone()),
        ingress_class: topo.ingress_class.as_ref().map(|c| c.value.clone()),
        span: topo.name.span,
        platform: topo.platform.value,
        hosts: host_plans,
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
        let mut fx = Effects::default();
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
        if let Some(url) = &p.def.rare.public_url {
            let value = self.eval(name, h, url, &mut fx, diags, 0);
            check_public_url(&value, url.span, diags);
            resolved.public_url = Some(value);
        }
        for (param, decl) in &p.def.rare.params {
            let value = p
                .def
                .rare
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
