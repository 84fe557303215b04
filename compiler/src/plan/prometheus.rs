//! Prometheus scrape jobs: one per service that declares `metrics`, with one
//! target per placement, plus each HAProxy proxy's exporter. Targets are addressed
//! from the Prometheus server's host (a service of kind `prometheus`): by DNS
//! discovery of the compose name on that host (every replica), by address and
//! published port elsewhere. Without a Prometheus service, every target is an
//! address and a published port, for a Prometheus outside the topology. With a
//! config, each Patroni cluster is scraped too: every node's REST API serves
//! `/metrics`, at its host address.

use crate::base::IndexSet;

use crate::diag::{Code, Diagnostic, Diagnostics};

use super::*;

/// The generated config, as a Prometheus service mounts it (`@out/...`).
pub const PROMETHEUS_CONFIG: &str = "prometheus/prometheus.yml";

/// The name of an HAProxy proxy's scrape job: this and the proxy's name.
pub const HAPROXY_JOB: &str = "haproxy-";

/// The name of a Patroni cluster's scrape job: this and the service's name.
const PATRONI_JOB: &str = "patroni-";

/// The alerting rules the config loads, written beside it.
pub const PROMETHEUS_RULES: &str = "prometheus/alerts.yml";

/// Grafana's provisioning (its datasource and dashboard provider) and the
/// dashboards it loads, as a service of kind `grafana` mounts them.
pub const GRAFANA_PROVISIONING: &str = "grafana/provisioning";
pub const GRAFANA_DASHBOARDS: &str = "grafana/dashboards";

/// What serves a job's metrics, which decides the alerts on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exporter {
    /// A service's own `metrics`.
    Service,
    /// An HAProxy proxy's exporter.
    Haproxy,
    /// The REST API of a Patroni cluster's nodes.
    Patroni,
    /// A Blackbox exporter's probes of the proxies' certificates
    /// (`tls_probe.rs`).
    Blackbox,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ScrapeJob {
    pub name: String,
    pub exporter: Exporter,
    pub path: String,
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
    /// Discovered through Docker's DNS: every replica.
    pub dns: Vec<DnsTarget>,
    /// Reached at an address on another host.
    pub targets: Vec<StaticTarget>,
    /// The exporter that probes the targets, which it is handed as its
    /// `target` parameter (a Blackbox exporter's); `None`: they are scraped.
    pub via: Option<DnsTarget>,
    /// The HTTP metrics its alerts read (a service's `requests`, `latency`).
    pub http: HttpAlerts,
}

/// A service's HTTP metrics, and the thresholds of the alerts on them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HttpAlerts {
    /// The requests counter, its status label, and the percent of 5xx.
    pub errors: Option<(String, String, u32)>,
    /// The duration histogram, and the 95th percentile that alerts.
    pub latency: Option<(String, Duration)>,
}

/// A service's metrics endpoint, on its first port unless it names one: the
/// one reading of `metrics` that the scrape jobs and the Kubernetes target
/// share.
pub(super) fn metrics_endpoint(def: &ServiceDef) -> Option<super::Metrics> {
    let m = def.reach.metrics.as_ref()?;
    let port = match &m.port {
        Some(p) => p.name.clone(),
        None => def.ports.values().next()?.name.name.clone(),
    };
    Some(super::Metrics {
        port,
        path: m
            .path
            .as_ref()
            .map_or_else(|| "/metrics".into(), |p| p.value.clone()),
        interval: m.interval.as_ref().map(|d| d.value),
        timeout: m.timeout.as_ref().map(|d| d.value),
        http: http_alerts(m),
        span: m.span,
    })
}

/// A service's HTTP alerts, with their defaults: the status in `code` (the
/// Prometheus client libraries' label), 5 % of requests, 2 s.
fn http_alerts(m: &MetricsDef) -> HttpAlerts {
    HttpAlerts {
        errors: m.requests.as_ref().map(|r| {
            (
                r.value.clone(),
                m.status_label
                    .as_ref()
                    .map_or_else(|| "code".to_string(), |l| l.value.clone()),
                m.error_rate.as_ref().map_or(5, |e| e.value),
            )
        }),
        latency: m.latency.as_ref().map(|l| {
            (
                l.value.clone(),
                m.latency_p95.as_ref().map_or(Duration(2000), |d| d.value),
            )
        }),
    }
}

/// A compose service name and the port its replicas serve metrics on.
#[derive(Debug, Clone, PartialEq)]
pub struct DnsTarget {
    pub name: String,
    pub port: u16,
}

/// How Prometheus reaches a port.
pub(super) enum Target {
    Dns(DnsTarget),
    Static(StaticTarget),
}

/// A `host:port` to scrape, and the name of its host (a label).
#[derive(Debug, Clone, PartialEq)]
pub struct StaticTarget {
    pub address: String,
    pub host: String,
    /// For a probe's target, the exporter's module that probes it.
    pub module: Option<&'static str>,
}

impl Topo<'_> {
    /// The scrape jobs, and the ports they need published: (service, host, port).
    /// `metrics` on a server that serves none (PostgreSQL, Redis: their
    /// port speaks its own protocol, and a scrape of it is a target down for
    /// ever), but a CloudNativePG cluster's, whose instances run an exporter.
    pub(super) fn check_metrics_servers(&self, diags: &mut Diagnostics) {
        for (name, placements) in &self.placements {
            let Some(def) = placements.first().map(|p| &p.def) else {
                continue;
            };
            let Some(m) = &def.reach.metrics else {
                continue;
            };
            let server = if self.is_kind(name, "postgres") {
                "PostgreSQL"
            } else if self.is_kind(name, "redis") {
                "Redis"
            } else {
                continue;
            };
            let operated = self.topo.platform.value == Platform::Kubernetes
                && def.ha_mode() == &HaMode::CloudNativePg;
            if operated {
                continue;
            }
            diags.push(
                Diagnostic::error(
                    Code::NotSupported,
                    m.span,
                    format!("{server} serves no metrics of its own: `{name}` has none to scrape in topology `{}`", self.topo.name.name),
                )
                .label("a scrape of this port fails for ever")
                .help(if server == "PostgreSQL" {
                    "remove `metrics` here (an `override` may add it where it runs as a CloudNativePG cluster, `ha = cloudnativepg`, whose instances run an exporter); under `ha = patroni` the nodes' REST API is scraped without it"
                } else {
                    "remove `metrics`: stackc runs no Redis exporter"
                }),
            );
        }
    }

    pub(super) fn prometheus(
        &self,
        proxies: &[ProxyPlan],
        diags: &mut Diagnostics,
    ) -> (Vec<ScrapeJob>, Publishes) {
        let mut publishes = Publishes::default();
        let mut jobs = Vec::new();
        if self.topo.platform.value != Platform::Compose {
            return (jobs, publishes);
        }
        let server = self.prometheus_host();
        for (name, placements) in &self.placements {
            let Some(first) = placements.first() else {
                continue;
            };
            let Some(m) = &first.def.reach.metrics else {
                continue;
            };
            let port =
                metrics_endpoint(&first.def).filter(|e| first.def.ports.contains_key(&e.port));
            let Some(endpoint) = port else {
                if m.port.is_some() {
                    // An unknown port name was reported by `check`.
                    continue;
                }
                diags.push(
                    Diagnostic::error(
                        Code::UnknownName,
                        m.span,
                        format!("`{name}` exposes metrics but declares no port"),
                    )
                    .label("which port serves the metrics?")
                    .help("declare a port, and name it: `metrics = PORT`"),
                );
                continue;
            };
            let mut job = ScrapeJob {
                name: name.to_string(),
                exporter: Exporter::Service,
                path: endpoint.path,
                interval: endpoint.interval,
                timeout: endpoint.timeout,
                dns: Vec::new(),
                targets: Vec::new(),
                via: None,
                http: endpoint.http,
            };
            for p in placements.iter() {
                match self.target(name, p, &endpoint.port, server, &mut publishes, diags) {
                    Some(Target::Dns(t)) => job.dns.push(t),
                    Some(Target::Static(t)) => job.targets.push(t),
                    None => {}
                }
            }
            // Placed on managed hosts only (a platform runs it): nothing to
            // scrape, and no job without a target.
            if !job.dns.is_empty() || !job.targets.is_empty() {
                jobs.push(job);
            }
        }
        jobs.extend(haproxy_jobs(proxies, server, &self.hosts));
        (jobs, publishes)
    }

    /// Where the Prometheus server (on host `server`, if the topology runs
    /// one) reaches port `port` of placement `p` of service `name`: by its
    /// compose name on the server's own host, else at its host's address,
    /// where the port is then published. `None` on a managed host (a
    /// platform runs it), or without the port.
    pub(super) fn target(
        &self,
        name: &str,
        p: &Placement<'_>,
        port: &Name,
        server: Option<usize>,
        publishes: &mut Publishes,
        diags: &mut Diagnostics,
    ) -> Option<Target> {
        let host = self.hosts.get(p.host)?;
        // This host's own port: a `run` block may publish it elsewhere.
        let Endpoint {
            container,
            published,
        } = p.endpoint(Some(port.as_str()))?;
        if host.managed {
            return None;
        }
        if Some(p.host) == server {
            return Some(Target::Dns(DnsTarget {
                name: name.to_string(),
                port: container,
            }));
        }
        let Some(addr) = &host.address else {
            diags.push(
                Diagnostic::error(
                    Code::Unresolvable,
                    p.run_span,
                    format!(
                        "Prometheus cannot reach `{name}` on host `{}`, which has no address",
                        host.name.name
                    ),
                )
                .label("unreachable from Prometheus")
                .help(format!(
                    "give host `{}` an `address = \"...\"`",
                    host.name.name
                )),
            );
            return None;
        };
        // Without a server of its own, the topology is scraped from
        // outside: the firewall cannot know from where.
        let reader = server.map_or(Reader::Outside, Reader::Host);
        publishes.insert(PublishedPort::new(name, p.host, port), reader);
        Some(Target::Static(StaticTarget {
            address: crate::grammar::host_port(&addr.value, published),
            host: host.name.name.to_string(),
            module: None,
        }))
    }

    /// The host of the Prometheus server (a service of kind `prometheus`, or
    /// of a kind made from it), if the topology runs one.
    pub(super) fn prometheus_host(&self) -> Option<usize> {
        self.placements
            .iter()
            .find(|(name, _)| self.is_kind(name, "prometheus"))
            .and_then(|(_, ps)| ps.first())
            .map(|p| p.host)
    }

    /// Whether a placed service mounts one of `files` (`@out/...`).
    fn mounts_any(&self, files: &[&str]) -> bool {
        self.placements.values().flatten().any(|p| {
            p.def.storage.mounts.values().any(|m| {
                m.source
                    .value
                    .strip_prefix("@out/")
                    .is_some_and(|f| files.contains(&f))
            })
        })
    }

    /// The files this topology generates that a service may mount (`@out/...`:
    /// the proxies', Prometheus', and `others`);
    /// a mount of any other is reported.
    pub(super) fn check_generated_mounts(
        &self,
        proxies: &[ProxyPlan],
        jobs: &[ScrapeJob],
        others: &[&str],
        diags: &mut Diagnostics,
    ) -> IndexSet<String> {
        let mut available: IndexSet<String> = proxies
            .iter()
            .map(|p| match p.kind {
                ProxyKind::Nginx => format!("nginx/{}.conf", p.name),
                ProxyKind::Haproxy => format!("haproxy/{}.cfg", p.name),
            })
            .collect();
        let mounted = self.mounts_any(&[PROMETHEUS_CONFIG, PROMETHEUS_RULES]);
        if !jobs.is_empty() || mounted {
            available.insert(PROMETHEUS_CONFIG.to_string());
            available.insert(PROMETHEUS_RULES.to_string());
        }
        if self.mounts_any(&[GRAFANA_PROVISIONING, GRAFANA_DASHBOARDS]) {
            available.insert(GRAFANA_PROVISIONING.to_string());
            available.insert(GRAFANA_DASHBOARDS.to_string());
        }
        available.extend(others.iter().map(|f| f.to_string()));
        for p in self.placements.values().flatten() {
            for m in p.def.storage.mounts.values() {
                let Some(file) = m.source.value.strip_prefix("@out/") else {
                    continue;
                };
                if !available.contains(file) {
                    let list: Vec<&str> = available.iter().map(String::as_str).collect();
                    diags.push(
                        Diagnostic::error(
                            Code::Unresolvable,
                            m.source.span,
                            format!("topology `{}` generates no `{file}`", self.topo.name.name),
                        )
                        .label("not a generated file")
                        .help(if list.is_empty() {
                            "this topology generates no file to mount".to_string()
                        } else {
                            format!("the files it generates: {}", list.join(", "))
                        }),
                    );
                }
            }
        }
        available
    }
}

/// A job per HAProxy proxy: its metrics endpoint, by name when it runs in
/// the compose file of Prometheus's host, else at its host's address.
fn haproxy_jobs(
    proxies: &[ProxyPlan],
    server: Option<usize>,
    hosts: &[&HostDef],
) -> Vec<ScrapeJob> {
    let mut jobs = Vec::new();
    for proxy in proxies.iter().filter(|p| p.kind == ProxyKind::Haproxy) {
        let host = hosts.iter().position(|h| h.name.name == proxy.host);
        let local = host.is_some() && host == server && !proxy.on_host;
        let mut job = ScrapeJob {
            name: format!("{HAPROXY_JOB}{}", proxy.name),
            exporter: Exporter::Haproxy,
            path: "/metrics".into(),
            interval: None,
            timeout: None,
            dns: Vec::new(),
            targets: Vec::new(),
            via: None,
            http: HttpAlerts::default(),
        };
        if local {
            job.dns.push(DnsTarget {
                name: proxy.name.clone(),
                port: HAPROXY_METRICS_PORT,
            });
        } else {
            let addr = proxy
                .private_address
                .clone()
                .unwrap_or_else(|| "127.0.0.1".into());
            job.targets.push(StaticTarget {
                address: crate::grammar::host_port(&addr, HAPROXY_METRICS_PORT),
                host: proxy.host.clone(),
                module: None,
            });
        }
        jobs.push(job);
    }
    jobs
}

/// A job per Patroni cluster: each node's REST API, at its host address
/// (its `/metrics` answers without the REST API's password).
pub(super) fn patroni_jobs(hosts: &[HostPlan]) -> Vec<ScrapeJob> {
    let mut jobs: IndexMap<&str, ScrapeJob> = IndexMap::default();
    for host in hosts {
        for node in host
            .services
            .iter()
            .filter_map(|i| i.replication.patroni.as_ref())
        {
            let job = jobs.entry(&node.service).or_insert_with(|| ScrapeJob {
                name: format!("{PATRONI_JOB}{}", node.service),
                exporter: Exporter::Patroni,
                path: "/metrics".into(),
                interval: None,
                timeout: None,
                dns: Vec::new(),
                targets: Vec::new(),
                via: None,
                http: HttpAlerts::default(),
            });
            job.targets.push(StaticTarget {
                address: endpoint(&node.address, node.rest_port),
                host: host.name.to_string(),
                module: None,
            });
        }
    }
    jobs.into_values().collect()
}
