//! Planning: each topology resolved into hosts and the service instances they run,
//! with every reference turned into text (or a secret) as the consuming instance
//! sees it, the ports each host must publish, and the start order. Targets read a
//! `Plan` only; they never see the syntax tree or the partial definitions.
//!
//! This is also where the topology-specific checks run: placement, GPU, ports,
//! replicas of stateful services, health gates and dependency cycles.

use std::sync::Arc;

use crate::base::{IndexMap, IndexSet, Name, Part};

use crate::check::{unknown_service, Checked};
use crate::diag::{Code, Diagnostic, Diagnostics, Span};
use crate::model::*;
use crate::syntax::Ident;

pub mod backup;
mod backup_task;
pub mod backups;
mod checks;
pub mod cnpg_backup;
pub mod firewall;
mod instance;
mod kubernetes;
pub mod redis_backup;
pub use kubernetes::names as kubernetes_names;
mod alerting;
mod lints;
mod patroni;
pub mod patroni_backup;
mod place;
mod postgresql;
mod probes;
mod prometheus;
mod proxy;
pub(crate) mod redis_auth;
mod replication;
mod resolve;
pub mod roles;
mod scaling;
mod tasks;
pub mod tls_probe;
mod topology;

pub use topology::plan;
use topology::*;

pub use alerting::{
    Alerting, Credential, ReceiverPlan, ALERTMANAGER_CONFIG, ALERTMANAGER_START, CREDENTIALS_DIR,
};
pub use patroni::{
    endpoint, EtcdMember, PatroniNode, ETCD_CLIENT_PORT, ETCD_DATA_DIR, ETCD_PEER_PORT,
    PATRONI_DIR, PATRONI_PRIMARY_PORT, PATRONI_REPLICA_PORT, PATRONI_REST_PORT, PATRONI_VERSION,
};
pub use postgresql::{HOSTSSL_SCRIPT, TLS_KEY, WAL_KEEP_SIZE};
pub use prometheus::{
    DnsTarget, Exporter, HttpAlerts, ScrapeJob, StaticTarget, GRAFANA_DASHBOARDS,
    GRAFANA_PROVISIONING, HAPROXY_JOB, PROMETHEUS_CONFIG, PROMETHEUS_RULES,
};
pub use proxy::acme;
pub use proxy::{
    HttpHealth, ProxyPlan, RateLimit, RoutePlan, RouteSettings, Site, Tls, Upstream,
    UpstreamServer, HAPROXY_METRICS_PORT, HAPROXY_STATS_PORT,
};
pub use replication::{
    SentinelNode, StreamingPlan, REDIS_DIR, REDIS_PASSWORD_ENV, REPLICATION_PASSWORD_ENV,
    SENTINEL_PORT, STREAMING_DIR,
};

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub stack: String,
    /// How many services the file declares (`stackc check` says so).
    pub services: usize,
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
    /// Kubernetes: the namespaces that reach the stack's pods.
    pub peer_namespaces: PeerNamespaces,
    /// Kubernetes: how the cluster's Prometheus finds the metrics.
    pub scrape: crate::model::Scrape,
    /// Kubernetes: the Gateway of the public routes, (namespace, name).
    pub gateway: Option<(String, String)>,
    /// Compose: where `out/<topology>/` is on the hosts.
    pub directory: String,
    /// Where the certificates of its https domains come from.
    pub acme: acme::AcmeServer,
    pub proxies: Vec<ProxyPlan>,
    /// The roles of their own each PostgreSQL server gives its clients.
    pub roles: roles::ServerRoles,
    pub scrape_jobs: Vec<ScrapeJob>,
    /// Its receivers and the Alertmanagers that send to them.
    pub alerting: Alerting,
    /// Write `prometheus/prometheus.yml` (there are jobs, or a service mounts it).
    pub prometheus_config: bool,
    /// Write Grafana's provisioning and dashboards (a service mounts them).
    pub grafana: bool,
    /// Where the topology is defined, for diagnostics of the targets.
    pub span: Span,
    pub platform: Platform,
    pub hosts: Vec<HostPlan>,
    /// The IP addresses of its compose hosts: where the HA peers' ports are
    /// let in from (`firewall::Sources::TopologyHosts`).
    pub host_ips: Vec<firewall::Peer>,
    /// The warnings its `allow` silences (an unknown name is reported by the
    /// lints).
    pub allowed: Vec<crate::diag::Code>,
}

/// The namespaces of the cluster's own components that reach a stack's pods:
/// each one is let in by the NetworkPolicies, to what it needs only.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerNamespaces {
    /// The ingress controller (ingress-nginx's default namespace).
    pub ingress: String,
    /// The cluster's Prometheus (kube-prometheus-stack's usual one).
    pub monitoring: String,
    /// The CloudNativePG operator (its manifests' namespace).
    pub cnpg: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HostPlan {
    pub name: Name,
    pub address: Option<String>,
    pub managed: bool,
    pub services: Vec<Instance>,
    /// The ports its firewall lets in, and from where (compose hosts only).
    pub firewall: Vec<firewall::Allow>,
    /// The port of its SSH server, which its firewall always lets in.
    pub ssh_port: u16,
}

/// The SSH port of a host that does not name one.
pub const SSH_PORT: u16 = 22;

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
/// (a large stack has tens of thousands of environment variables).
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

impl Probe {
    /// The timing of a check that does not set it: docker's defaults, which
    /// compose applies itself and the Kubernetes target writes out (its own,
    /// a 10 s period and a 1 s timeout, would make it another check).
    pub const DEFAULT_INTERVAL: Duration = Duration(30_000);
    pub const DEFAULT_TIMEOUT: Duration = Duration(30_000);
    pub const DEFAULT_RETRIES: u32 = 3;

    pub fn interval(&self) -> Duration {
        self.interval.unwrap_or(Probe::DEFAULT_INTERVAL)
    }

    pub fn timeout(&self) -> Duration {
        self.timeout.unwrap_or(Probe::DEFAULT_TIMEOUT)
    }

    pub fn retries(&self) -> u32 {
        self.retries.unwrap_or(Probe::DEFAULT_RETRIES)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    Started,
    Healthy,
    /// A task has exited with status 0.
    Completed,
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
    /// What Prometheus scrapes (its `metrics`).
    pub metrics: Option<Box<Metrics>>,
    pub update: Update,
    /// The HA mode (`single` when none is chosen).
    pub ha: HaMode,
    /// Runs in the host's network (no published ports, no NAT).
    pub host_network: bool,
    // The parts few instances have, each boxed only when set (an instance is
    // planned for every service of every topology).
    pub program: Part<Program>,
    pub storage: Part<Storage>,
    pub resources: Part<Resources>,
    pub lifecycle: Part<Lifecycle>,
    pub scaling: Part<Scaling>,
    pub replication: Part<Replication>,
    pub parameters: Part<Parameters>,
}

/// A service's metrics endpoint: its port (by name), path and timing (the
/// scraper's own when unset).
#[derive(Debug, Clone, PartialEq)]
pub struct Metrics {
    pub port: Name,
    pub path: String,
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
    /// The HTTP metrics its alerts read.
    pub http: HttpAlerts,
    /// Its `metrics` entry, for what a target cannot express.
    pub span: Span,
}

/// What an instance runs, besides its image.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Program {
    pub build: Option<String>,
    /// The image's CMD replaced (compose `command`, Kubernetes `args`).
    pub command: Option<Vec<String>>,
    /// The image's ENTRYPOINT replaced (compose `entrypoint`, Kubernetes
    /// `command`).
    pub entrypoint: Option<Vec<String>>,
    /// Host devices passed to the container.
    pub devices: Vec<String>,
}

/// An instance's volumes and mounts.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Storage {
    pub volumes: Vec<Volume>,
    pub mounts: Vec<Mount>,
    /// PostgreSQL's backups (by pgBackRest), or Redis's RDB copies.
    pub backup: Option<Box<backups::Backup>>,
    /// Whose these volumes are, when they are another container's, shared by
    /// name (a proxy's with its ACME client, a server's with its backup task).
    pub shared_from: Option<Name>,
}

/// How an instance stops.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Lifecycle {
    pub stop_grace_period: Option<Duration>,
    pub pre_stop: Option<Duration>,
    /// A task's schedule (a task without one runs once, before its dependents).
    pub schedule: Option<crate::schedule::Schedule>,
}

/// Kubernetes scaling: the autoscaler and the disruption budget.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Scaling {
    pub autoscale: Option<Box<Autoscale>>,
    pub min_available: Option<u32>,
}

/// What an instance's HA mode makes of it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Replication {
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
    /// PostgreSQL's settings, where its HA mode writes them (a streaming
    /// node's `postgresql.conf`, Patroni's cluster-wide parameters,
    /// CloudNativePG's); a single server has them on its command line.
    pub postgresql: Vec<PgParam>,
    /// A single `postgres_tls` server on a host: it mounts `<service>/`
    /// `HOSTSSL_SCRIPT`, which makes the image's `pg_hba.conf` accept TCP
    /// over TLS only, run at initdb.
    pub hostssl: bool,
}

/// A PostgreSQL setting: its name, and its value as PostgreSQL reads it
/// (`PgValue::to_conf`), unquoted.
#[derive(Debug, Clone, PartialEq)]
pub struct PgParam {
    pub name: Name,
    pub value: String,
    /// What decided it: the service's `postgresql` block, or its kind's TLS.
    pub from: PgFrom,
}

/// Where a PostgreSQL setting comes from, as the config says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgFrom {
    /// The service's `postgresql { ... }`.
    Block,
    /// The TLS of the kind `postgres_tls`.
    Tls,
}

/// The values of its kind's parameters, resolved.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Parameters {
    pub params: IndexMap<Name, Pieces>,
}

crate::base::empty_part!(
    Program,
    Storage,
    Resources,
    Lifecycle,
    Scaling,
    Replication,
    Parameters
);

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
            metrics: None,
            update: Update {
                max_surge: 1,
                max_unavailable: 0,
            },
            ha: HaMode::Single,
            host_network: false,
            program: Part::default(),
            storage: Part::default(),
            resources: Part::default(),
            lifecycle: Part::default(),
            scaling: Part::default(),
            replication: Part::default(),
            parameters: Part::default(),
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
        self.scaling
            .autoscale
            .as_ref()
            .map_or(self.replicas, |a| a.min)
    }
}

/// A public path prefix of an instance and the port it leads to.
#[derive(Debug, Clone, PartialEq)]
pub struct RoutedPath {
    pub path: Name,
    pub port: Name,
    /// The route's own domain, when it is not the public URL's.
    pub domain: Option<String>,
    pub settings: RouteSettings,
    /// The route's path in the source, for what a target cannot express.
    pub span: crate::diag::Span,
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
    /// Metrics besides CPU and memory.
    pub metrics: Vec<ScaleMetric>,
}

/// A pod or external metric an autoscaler keeps at its target.
#[derive(Debug, Clone, PartialEq)]
pub struct ScaleMetric {
    pub name: String,
    pub external: bool,
    pub target: crate::model::ScaleTarget,
    pub labels: Vec<(String, String)>,
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
