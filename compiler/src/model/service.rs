//! A service's definition: its ports, health, resources, volumes, routes and
//! the parts few services set; how an override is laid over it.

use super::*;
use crate::base::Part;

/// `port NAME = N` or `port NAME { container = N  host = M  protocol = http }`.
#[derive(Debug, Clone, PartialEq)]
pub struct PortDef {
    pub name: Ident,
    pub container: Option<Sp<u16>>,
    pub host: Option<Sp<u16>>,
    pub protocol: Option<Sp<Protocol>>,
    /// The number was written but rejected (and reported) while lowering.
    pub invalid: bool,
}

impl PortDef {
    /// The port in the container (none when it was not written).
    pub fn container_port(&self) -> Option<u16> {
        self.container.as_ref().map(|c| c.value)
    }

    /// The port other hosts connect to: the published one, else the container's.
    pub fn published_port(&self) -> Option<u16> {
        self.host
            .as_ref()
            .map(|h| h.value)
            .or(self.container_port())
    }
}

/// A command in exec form (list) or shell form (one string).
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Exec(Vec<String>),
    Shell(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum ProbeCheck {
    /// HTTP GET on a path.
    Http(Name),
    /// A TCP connect.
    Tcp,
    Command(Command),
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProbeDef {
    pub check: Option<Sp<ProbeCheck>>,
    pub port: Option<Ident>,
    pub interval: Option<Sp<Duration>>,
    pub timeout: Option<Sp<Duration>>,
    pub retries: Option<Sp<u32>>,
    pub start_period: Option<Sp<Duration>>,
    pub span: Option<Span>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct HealthDef {
    pub liveness: Option<Arc<ProbeDef>>,
    pub readiness: Option<Arc<ProbeDef>>,
    pub startup: Option<Arc<ProbeDef>>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResourcesDef {
    pub cpu: Option<Sp<Cpu>>,
    pub memory: Option<Sp<Size>>,
    pub cpu_limit: Option<Sp<Cpu>>,
    pub memory_limit: Option<Sp<Size>>,
    pub gpu: Option<Sp<u32>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct VolumeDef {
    pub name: Ident,
    /// Required once the kind and the overrides are laid over each other.
    pub path: Option<Sp<String>>,
    /// The storage a Kubernetes volume claim asks for (default 1Gi).
    pub size: Option<Sp<Size>>,
}

/// `autoscale { min = 3  max = 20  cpu = 70  memory = 80  scale_up { ... } }`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AutoscaleDef {
    pub min: Option<Sp<u32>>,
    pub max: Option<Sp<u32>>,
    /// Target average utilization, percent of the request.
    pub cpu: Option<Sp<u32>>,
    pub memory: Option<Sp<u32>>,
    pub scale_up: Option<ScalePolicyDef>,
    pub scale_down: Option<ScalePolicyDef>,
    /// Metrics besides CPU and memory.
    pub metrics: Vec<ScaleMetricDef>,
    pub span: Span,
}

/// A metric an autoscaler follows besides CPU and memory: `metric "NAME"`,
/// each pod's own (Kubernetes' custom metrics API), or `external "NAME"`,
/// one from outside the cluster (a queue's length; the external metrics API).
#[derive(Debug, Clone, PartialEq)]
pub struct ScaleMetricDef {
    pub name: Sp<String>,
    pub external: bool,
    pub target: Option<Sp<ScaleTarget>>,
    /// An external metric's series, by its labels.
    pub labels: Vec<(Ident, Sp<String>)>,
    pub span: Span,
}

/// The value an autoscaler keeps a metric at, as a Kubernetes quantity.
#[derive(Debug, Clone, PartialEq)]
pub enum ScaleTarget {
    /// The value per pod: a pod metric's average, or an external metric
    /// divided by the pods.
    PerPod(String),
    /// An external metric's own value.
    Total(String),
}

/// How fast an autoscaler may move: `scale_down { window = 300s  percent = 50  period = 60s }`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ScalePolicyDef {
    /// Stabilization window.
    pub window: Option<Sp<Duration>>,
    pub percent: Option<Sp<u32>>,
    pub pods: Option<Sp<u32>>,
    pub period: Option<Sp<Duration>>,
}

/// A rolling update: `update { max_surge = 1  max_unavailable = 0 }`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UpdateDef {
    pub max_surge: Option<Sp<u32>>,
    pub max_unavailable: Option<Sp<u32>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MountDef {
    pub source: Sp<String>,
    pub target: Sp<String>,
    pub read_only: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RouteDef {
    pub path: Sp<Name>,
    pub port: Option<Ident>,
    pub strategy: Option<Sp<Strategy>>,
    pub websocket: bool,
    /// The catch-all of its domain: may overlap the other prefixes.
    pub default: bool,
    /// Forward without the matched prefix (`/api/users` → `/users`).
    pub strip_prefix: bool,
    /// The settings few routes have (domain, rate limit, timeouts, body
    /// size), read and written as `route.options.rate`.
    pub options: Part<RouteOptions>,
}

/// A route's settings that most routes leave out, boxed only when set (see
/// [`crate::base::Part`]).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RouteOptions {
    /// The domain it is served on (default: the host of the service's public URL).
    pub domain: Option<Sp<String>>,
    /// Requests per second per client address.
    pub rate: Option<Sp<u32>>,
    pub burst: Option<Sp<u32>>,
    /// The status past the rate limit (default 429).
    pub limit_status: Option<Sp<u16>>,
    pub connect_timeout: Option<Sp<Duration>>,
    pub send_timeout: Option<Sp<Duration>>,
    pub read_timeout: Option<Sp<Duration>>,
    pub body_size: Option<Sp<Size>>,
}

/// `metrics = PORT` or `metrics { port = PORT  path = "/metrics"  interval = 15s  timeout = 10s }`.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsDef {
    pub port: Option<Ident>,
    pub path: Option<Sp<String>>,
    pub interval: Option<Sp<Duration>>,
    pub timeout: Option<Sp<Duration>>,
    /// The counter of HTTP requests, with the label that holds the status.
    pub requests: Option<Sp<String>>,
    pub status_label: Option<Sp<String>>,
    /// The percent of requests answered 5xx the error-rate alert fires above.
    pub error_rate: Option<Sp<u32>>,
    /// The histogram of request durations, and the 95th percentile the
    /// latency alert fires above.
    pub latency: Option<Sp<String>>,
    pub latency_p95: Option<Sp<Duration>>,
    pub span: Span,
}

/// How a proxy spreads requests over a service's servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    RoundRobin,
    LeastConn,
    IpHash,
    Weighted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Healthy if the target has a health check, started otherwise.
    Default,
    Healthy,
    Started,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DepDecl {
    pub service: Ident,
    pub gate: Gate,
    pub span: Span,
}

/// `param NAME = default` in a kind: a field its services may set.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamDecl {
    pub name: Ident,
    pub default: Option<Expr>,
}

/// An env variable or a parameter value.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    pub key: Ident,
    pub value: Expr,
}

/// Everything a kind, a service or an override may say about a service.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ServiceDef {
    pub role: Option<Sp<Role>>,
    pub image: Option<Sp<Name>>,
    pub ports: IndexMap<Name, PortDef>,
    pub env: IndexMap<Name, Assignment>,
    pub replicas: Option<Sp<u32>>,
    pub health: HealthDef,
    pub routes: IndexMap<Name, RouteDef>,
    /// Fields written with a value that was rejected (and reported) while lowering:
    /// later checks do not report them missing too.
    pub rejected: Vec<Name>,
    // The parts few definitions set, each boxed only when set.
    pub program: Part<ProgramDef>,
    pub reach: Part<ReachDef>,
    pub storage: Part<StorageDef>,
    pub resources: Part<ResourcesDef>,
    pub lifecycle: Part<LifecycleDef>,
    pub replication: Part<ReplicationDef>,
    pub scaling: Part<ScalingDef>,
    pub parameters: Part<ParametersDef>,
}

/// What a service runs, besides its image.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProgramDef {
    pub build: Option<Sp<String>>,
    /// Replaces the image's CMD: words, never run by a shell stackc adds.
    pub command: Option<Sp<Vec<String>>>,
    /// Replaces the image's ENTRYPOINT.
    pub entrypoint: Option<Sp<Vec<String>>>,
}

/// How others reach a service: its public ports, its URLs, what Prometheus
/// scrapes, and its share of a weighted route.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReachDef {
    pub public: Option<Sp<Vec<Ident>>>,
    pub url: Option<Expr>,
    pub read_url: Option<Expr>,
    pub public_url: Option<Expr>,
    /// What Prometheus scrapes: `metrics { port = http  path = "/metrics" }`.
    pub metrics: Option<Box<MetricsDef>>,
    /// This placement's share of a weighted route (`run api { weight = 3 }`).
    pub weight: Option<Sp<u32>>,
    /// Who its clients connect as (PostgreSQL).
    pub roles: Option<Sp<Roles>>,
}

/// Who a PostgreSQL server's clients connect as: the `user` it was given, or
/// a role of each client's own (`roles = per_service`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Roles {
    #[default]
    Shared,
    PerService,
}

/// A service's named volumes and bind mounts.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StorageDef {
    pub volumes: IndexMap<Name, VolumeDef>,
    pub mounts: IndexMap<Name, MountDef>,
    pub backup: Option<Box<BackupDef>>,
}

/// `backup { schedule = "0 2 * * *"  retention = 30 }`.
#[derive(Debug, Clone, PartialEq)]
pub struct BackupDef {
    pub schedule: Option<Sp<crate::schedule::Schedule>>,
    /// Days.
    pub retention: Option<Sp<u32>>,
    /// The repository in an S3-compatible bucket; else a volume.
    pub s3: Option<Box<S3Def>>,
    pub span: Span,
}

/// `s3 { bucket endpoint region path access_key secret_key }` in a backup.
#[derive(Debug, Clone, PartialEq)]
pub struct S3Def {
    pub bucket: Option<Sp<String>>,
    /// `https://HOST[:PORT]`; AWS's endpoint of the region by default.
    pub endpoint: Option<Sp<String>>,
    pub region: Option<Sp<String>>,
    /// The repository's path in the bucket; `/<stack>/<service>` by default.
    pub path: Option<Sp<String>>,
    /// `secret.NAME`, both.
    pub access_key: Option<Expr>,
    pub secret_key: Option<Expr>,
    pub span: Span,
}

/// When a service starts, restarts and stops.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LifecycleDef {
    pub restart: Option<Sp<Restart>>,
    pub depends_on: Option<Sp<Vec<DepDecl>>>,
    pub stop_grace_period: Option<Sp<Duration>>,
    /// A delay before the stop signal, while endpoints drain.
    pub pre_stop: Option<Sp<Duration>>,
    /// A task's cron schedule.
    pub schedule: Option<Sp<crate::schedule::Schedule>>,
}

/// A service's HA mode, and the modes its kind offers.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReplicationDef {
    pub ha: Option<Box<HaDef>>,
    pub ha_modes: Option<Sp<Vec<Ident>>>,
    /// PostgreSQL's settings (`postgresql { max_connections = 200 }`), which
    /// its HA mode decides where to write.
    pub postgresql: IndexMap<Name, PgSetting>,
}

/// One PostgreSQL setting: `shared_buffers = 1Gi`.
#[derive(Debug, Clone, PartialEq)]
pub struct PgSetting {
    pub name: Ident,
    pub value: Sp<PgValue>,
}

/// A setting's value, in the language's own units.
#[derive(Debug, Clone, PartialEq)]
pub enum PgValue {
    /// As written: `200`, `0.9`.
    Number(String),
    Size(Size),
    Duration(Duration),
    Bool(bool),
    Text(String),
}

impl PgValue {
    /// The value as PostgreSQL reads it, unquoted: memory in its units
    /// (`kB`, `MB`, `GB`, `TB`, powers of 1024), time in `ms`, `s`, `min`,
    /// `h`, `d`, booleans `on` and `off`.
    pub fn to_conf(&self) -> String {
        match self {
            PgValue::Number(n) | PgValue::Text(n) => n.clone(),
            PgValue::Bool(b) => if *b { "on" } else { "off" }.to_string(),
            PgValue::Size(s) => {
                let units = [
                    ("TB", 1u64 << 40),
                    ("GB", 1 << 30),
                    ("MB", 1 << 20),
                    ("kB", 1 << 10),
                ];
                match units.iter().find(|(_, f)| s.0 >= *f && s.0 % f == 0) {
                    Some((unit, f)) => format!("{}{unit}", s.0 / f),
                    None => format!("{}B", s.0),
                }
            }
            PgValue::Duration(d) => {
                let units = [
                    ("d", 86_400_000),
                    ("h", 3_600_000),
                    ("min", 60_000),
                    ("s", 1000),
                ];
                match units.iter().find(|(_, f)| d.0 >= *f && d.0 % f == 0) {
                    Some((unit, f)) => format!("{}{unit}", d.0 / f),
                    None => format!("{}ms", d.0),
                }
            }
        }
    }
}

/// Kubernetes scaling: the autoscaler, the rolling update and the
/// disruption budget.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ScalingDef {
    pub autoscale: Option<Box<AutoscaleDef>>,
    pub update: UpdateDef,
    /// The PodDisruptionBudget's `minAvailable` (default: `maxUnavailable: 1`).
    pub min_available: Option<Sp<u32>>,
}

/// A kind's parameters, and the values a service gives them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ParametersDef {
    pub params: IndexMap<Name, ParamDecl>,
    pub args: IndexMap<Name, Assignment>,
}

crate::base::empty_part!(
    RouteOptions,
    ProgramDef,
    ReachDef,
    StorageDef,
    ResourcesDef,
    LifecycleDef,
    ReplicationDef,
    ScalingDef,
    ParametersDef,
);

/// Lays each part of `top` over `base`'s, unless `top` leaves it unset (laying
/// an unset part would make its box).
fn lay_part<T: crate::base::EmptyPart>(
    base: &mut Part<T>,
    top: &Part<T>,
    lay: impl FnOnce(&mut T, &T),
) {
    if let Some(top) = top.get() {
        lay(base, top);
    }
}

/// Each part's fields laid over the base's: scalars and lists replaced, maps
/// merged by key.
fn lay_parts(base: &mut ServiceDef, top: &ServiceDef) {
    lay_part(&mut base.program, &top.program, |b, t| {
        lay(&mut b.build, &t.build);
        lay(&mut b.command, &t.command);
        lay(&mut b.entrypoint, &t.entrypoint);
    });
    lay_part(&mut base.reach, &top.reach, |b, t| {
        lay(&mut b.public, &t.public);
        lay(&mut b.url, &t.url);
        lay(&mut b.read_url, &t.read_url);
        lay(&mut b.public_url, &t.public_url);
        lay(&mut b.weight, &t.weight);
        lay(&mut b.roles, &t.roles);
        lay(&mut b.metrics, &t.metrics);
    });
    lay_part(&mut base.storage, &top.storage, |b, t| {
        for (name, vol) in &t.volumes {
            match b.volumes.get_mut(name) {
                Some(base) => {
                    lay(&mut base.path, &vol.path);
                    lay(&mut base.size, &vol.size);
                }
                None => {
                    b.volumes.insert(name.clone(), vol.clone());
                }
            }
        }
        lay_map(&mut b.mounts, &t.mounts);
        lay(&mut b.backup, &t.backup);
    });
    lay_part(&mut base.resources, &top.resources, |r, t| {
        lay(&mut r.cpu, &t.cpu);
        lay(&mut r.memory, &t.memory);
        lay(&mut r.cpu_limit, &t.cpu_limit);
        lay(&mut r.memory_limit, &t.memory_limit);
        lay(&mut r.gpu, &t.gpu);
    });
    lay_part(&mut base.lifecycle, &top.lifecycle, |b, t| {
        lay(&mut b.restart, &t.restart);
        lay(&mut b.depends_on, &t.depends_on);
        lay(&mut b.stop_grace_period, &t.stop_grace_period);
        lay(&mut b.pre_stop, &t.pre_stop);
        lay(&mut b.schedule, &t.schedule);
    });
    lay_part(&mut base.replication, &top.replication, |b, t| {
        lay(&mut b.ha, &t.ha);
        lay(&mut b.ha_modes, &t.ha_modes);
        lay_map(&mut b.postgresql, &t.postgresql);
    });
    lay_part(&mut base.scaling, &top.scaling, |b, t| {
        lay(&mut b.autoscale, &t.autoscale);
        lay(&mut b.update.max_surge, &t.update.max_surge);
        lay(&mut b.update.max_unavailable, &t.update.max_unavailable);
        lay(&mut b.min_available, &t.min_available);
    });
    lay_part(&mut base.parameters, &top.parameters, |b, t| {
        lay_map(&mut b.params, &t.params);
        lay_map(&mut b.args, &t.args);
    });
}

fn lay<T: Clone>(base: &mut Option<T>, top: &Option<T>) {
    if top.is_some() {
        base.clone_from(top);
    }
}

fn lay_map<T: Clone>(base: &mut IndexMap<Name, T>, top: &IndexMap<Name, T>) {
    for (k, v) in top {
        base.insert(k.clone(), v.clone());
    }
}

/// A handle on a definition: the definition as written when nothing is laid over
/// it (the common case), else a composed copy, shared by everything that does not
/// change it further. A definition is a few kilobytes and a stack may have
/// thousands of services: the check and each topology hold handles, not copies.
#[derive(Debug, Clone)]
pub enum DefRef<'a> {
    Borrowed(&'a ServiceDef),
    Owned(Arc<ServiceDef>),
}

impl<'a> DefRef<'a> {
    /// This definition with `over` laid over it, when there is something to lay:
    /// a new shared copy; else this handle again.
    pub fn overlaid(&self, over: Option<&ServiceDef>) -> DefRef<'a> {
        match over {
            None => self.clone(),
            Some(over) => {
                let mut def = ServiceDef::clone(self);
                def.overlay(over);
                DefRef::Owned(Arc::new(def))
            }
        }
    }
}

impl Deref for DefRef<'_> {
    type Target = ServiceDef;

    fn deref(&self) -> &ServiceDef {
        match self {
            DefRef::Borrowed(def) => def,
            DefRef::Owned(def) => def,
        }
    }
}

impl ServiceDef {
    /// The names of the HA modes its kind offers (`single` is always allowed
    /// besides them), as the kind writes them.
    pub fn ha_mode_names(&self) -> Vec<&str> {
        self.replication
            .ha_modes
            .iter()
            .flat_map(|m| &m.value)
            .map(|m| m.name.as_str())
            .collect()
    }

    /// Whether its kind offers `mode`.
    pub fn offers(&self, mode: &HaMode) -> bool {
        self.ha_mode_names().contains(&mode.name())
    }

    /// Its HA mode (`single` when it chooses none).
    pub fn ha_mode(&self) -> &HaMode {
        self.replication
            .ha
            .as_ref()
            .map_or(&HaMode::Single, |h| &h.mode.value)
    }

    /// Lays `top` over `self`: scalars and lists are replaced, maps (env, ports,
    /// volumes, routes, parameters) are merged by key, probes are replaced whole.
    pub fn overlay(&mut self, top: &ServiceDef) {
        lay(&mut self.role, &top.role);
        lay(&mut self.image, &top.image);
        for (name, port) in &top.ports {
            match self.ports.get_mut(name) {
                Some(base) => {
                    lay(&mut base.container, &port.container);
                    lay(&mut base.host, &port.host);
                    lay(&mut base.protocol, &port.protocol);
                    base.invalid |= port.invalid;
                }
                None => {
                    self.ports.insert(name.clone(), port.clone());
                }
            }
        }
        lay_map(&mut self.env, &top.env);
        lay(&mut self.replicas, &top.replicas);
        lay(&mut self.health.liveness, &top.health.liveness);
        lay(&mut self.health.readiness, &top.health.readiness);
        lay(&mut self.health.startup, &top.health.startup);
        lay_map(&mut self.routes, &top.routes);
        lay_parts(self, top);
        self.rejected.extend(top.rejected.iter().cloned());
    }
}
