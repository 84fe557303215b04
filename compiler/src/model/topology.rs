//! Topologies: hosts and what they run, proxies and their TLS.

use super::*;

/// A proxy of a topology: `proxy edge: nginx { host = app ... }`.
#[derive(Debug, Clone, PartialEq)]
pub struct ProxyDef {
    pub name: Ident,
    pub kind: Sp<ProxyKind>,
    pub host: Option<Ident>,
    /// Runs on the host itself (a system service), not in its compose file.
    pub on_host: bool,
    /// The address it listens on (default: all of the host's).
    pub bind: Option<Sp<String>>,
    pub http: Option<Sp<u16>>,
    pub https: Option<Sp<u16>>,
    pub image: Option<Sp<String>>,
    /// Per-domain certificate paths (default: the Let's Encrypt layout).
    pub tls: IndexMap<Name, TlsDef>,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyKind {
    Nginx,
    Haproxy,
}

/// `acme { directory = ...  email = "..." }`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AcmeDef {
    pub directory: Option<Sp<AcmeDirectory>>,
    pub email: Option<Sp<String>>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum AcmeDirectory {
    LetsEncrypt,
    Staging,
    Url(String),
}

impl AcmeDirectory {
    pub fn url(&self) -> &str {
        match self {
            AcmeDirectory::LetsEncrypt => "https://acme-v02.api.letsencrypt.org/directory",
            AcmeDirectory::Staging => "https://acme-staging-v02.api.letsencrypt.org/directory",
            AcmeDirectory::Url(u) => u,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct TlsDef {
    pub domain: Sp<String>,
    pub cert: Option<Sp<String>>,
    pub key: Option<Sp<String>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunDef {
    pub service: Ident,
    /// What the block says over the service's definition; `None` when it says
    /// nothing (`run = [a, b]`, an empty block): the common case, kept small.
    pub over: Option<Box<ServiceDef>>,
}

impl RunDef {
    pub fn new(service: Ident, over: ServiceDef) -> RunDef {
        let over = (over != ServiceDef::default()).then(|| Box::new(over));
        RunDef { service, over }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct HostDef {
    pub name: Ident,
    pub address: Option<Sp<String>>,
    pub gpu: Option<Sp<u32>>,
    /// The port its SSH server listens on (default 22): its firewall lets
    /// it in, and no service may publish it.
    pub ssh_port: Option<Sp<u16>>,
    /// A platform (a CDN, a PaaS) runs these services: env files, no compose file.
    pub managed: bool,
    pub runs: Vec<RunDef>,
    /// An entry of the host was not understood (and reported).
    pub incomplete: bool,
}

/// The name of the one host of a Kubernetes topology.
pub const CLUSTER_HOST: &str = "cluster";

/// `receiver NAME { slack = secret.X  channel = "#ops"  pagerduty = secret.Y
/// webhook = "https://..."  severity = [critical] }`: where Alertmanager
/// sends the alerts of the given severities.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceiverDef {
    pub name: Ident,
    /// A Slack incoming webhook's URL (a secret).
    pub slack: Option<Expr>,
    /// The Slack channel, where the webhook may post to several.
    pub channel: Option<Sp<String>>,
    /// A PagerDuty Events API v2 routing key (a secret).
    pub pagerduty: Option<Expr>,
    /// A URL that receives Alertmanager's JSON (not a secret).
    pub webhook: Option<Sp<String>>,
    /// The severities it receives; empty: every alert.
    pub severity: Vec<Sp<Severity>>,
    pub span: Span,
}

/// The severity of an alert stackc generates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Critical,
    Warning,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Warning => "warning",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct TopologyDef {
    pub name: Ident,
    pub platform: Sp<Platform>,
    /// Kubernetes: the namespace (default: the stack's name).
    pub namespace: Option<Sp<String>>,
    /// Kubernetes: the cluster has GPU nodes (`nvidia.com/gpu` schedulable).
    pub gpu_nodes: bool,
    /// Kubernetes: the IngressClass of public routes.
    pub ingress_class: Option<Sp<String>>,
    /// Kubernetes: the namespaces of what runs beside the stack and reaches
    /// its pods (the NetworkPolicies let them in).
    pub ingress_namespace: Option<Sp<String>>,
    pub monitoring_namespace: Option<Sp<String>>,
    pub cnpg_namespace: Option<Sp<String>>,
    /// Kubernetes: how the cluster's Prometheus finds the metrics.
    pub scrape: Option<Sp<super::Scrape>>,
    /// Kubernetes: the Gateway (`NAMESPACE/NAME`) the public routes attach
    /// to, as Gateway API HTTPRoutes instead of Ingresses.
    pub gateway: Option<Sp<String>>,
    /// Compose: where the topology's output directory is on its hosts.
    pub directory: Option<Sp<String>>,
    /// Where the certificates of its https domains come from.
    pub acme: Option<AcmeDef>,
    /// Where Alertmanager sends the alerts, by name.
    pub receivers: IndexMap<Name, ReceiverDef>,
    /// A production topology: the production lints run on it (W06xx).
    pub production: bool,
    /// Lints silenced in this topology, by code or name.
    pub allow: Vec<Ident>,
    /// Compose: the hosts. Kubernetes: one host, `cluster`, made from the
    /// topology's `run` list.
    pub hosts: IndexMap<Name, HostDef>,
    pub overrides: IndexMap<Name, RunDef>,
    pub externals: IndexMap<Name, (Ident, ExternalDef)>,
    pub proxies: IndexMap<Name, ProxyDef>,
    /// An entry of the topology or of one of its hosts was not understood
    /// (and reported): what is placed where is not known, so no service is
    /// reported as not placed, a cascade of the one cause.
    pub incomplete: bool,
}

impl TopologyDef {
    /// A compose topology with nothing in it yet.
    pub fn new(name: Ident) -> TopologyDef {
        TopologyDef {
            platform: Sp::new(Platform::Compose, name.span),
            name,
            namespace: None,
            gpu_nodes: false,
            ingress_class: None,
            ingress_namespace: None,
            monitoring_namespace: None,
            cnpg_namespace: None,
            scrape: None,
            gateway: None,
            directory: None,
            acme: None,
            receivers: IndexMap::default(),
            production: false,
            allow: Vec::new(),
            hosts: IndexMap::default(),
            overrides: IndexMap::default(),
            externals: IndexMap::default(),
            proxies: IndexMap::default(),
            incomplete: false,
        }
    }
}
