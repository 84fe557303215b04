//! Prometheus scrape jobs: one per service that declares `metrics`, with one
//! target per placement, plus each HAProxy proxy's exporter. Targets are addressed
//! from the Prometheus server's host (a service of kind `prometheus`): by DNS
//! discovery of the compose name on that host (every replica), by address and
//! published port elsewhere. Without a Prometheus service, every target is an
//! address and a published port, for a Prometheus outside the topology.

use crate::base::IndexSet;

use crate::diag::{Code, Diagnostic, Diagnostics};

use super::*;

/// The generated config, as a Prometheus service mounts it (`@out/...`).
pub const PROMETHEUS_CONFIG: &str = "prometheus/prometheus.yml";

/// The name of an HAProxy proxy's scrape job: this and the proxy's name.
pub const HAPROXY_JOB: &str = "haproxy-";

/// The alerting rules the config loads, written beside it.
pub const PROMETHEUS_RULES: &str = "prometheus/alerts.yml";

#[derive(Debug, Clone, PartialEq)]
pub struct ScrapeJob {
    pub name: String,
    pub path: String,
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
    /// Discovered through Docker's DNS: every replica.
    pub dns: Vec<DnsTarget>,
    /// Reached at an address on another host.
    pub targets: Vec<StaticTarget>,
}

/// A compose service name and the port its replicas serve metrics on.
#[derive(Debug, Clone, PartialEq)]
pub struct DnsTarget {
    pub name: String,
    pub port: u16,
}

/// A `host:port` to scrape, and the name of its host (a label).
#[derive(Debug, Clone, PartialEq)]
pub struct StaticTarget {
    pub address: String,
    pub host: String,
}

impl Topo<'_> {
    /// The scrape jobs, and the ports they need published: (service, host, port).
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
        // The host of the Prometheus server, if the topology runs one.
        let server = self.placements.iter().find_map(|(name, ps)| {
            let kind = self.stack.services.get(*name)?.kind.as_ref()?;
            (kind.name == "prometheus")
                .then(|| ps.first().map(|p| p.host))
                .flatten()
        });
        for (name, placements) in &self.placements {
            let Some(first) = placements.first() else {
                continue;
            };
            let Some(m) = &first.def.reach.metrics else {
                continue;
            };
            let port = match &m.port {
                Some(p) => first.def.ports.get(&p.name),
                None => first.def.ports.values().next(),
            };
            let Some(port) = port else {
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
                path: m
                    .path
                    .as_ref()
                    .map_or_else(|| "/metrics".into(), |p| p.value.clone()),
                interval: m.interval.as_ref().map(|d| d.value),
                timeout: m.timeout.as_ref().map(|d| d.value),
                dns: Vec::new(),
                targets: Vec::new(),
            };
            for p in placements.iter() {
                let Some(host) = self.hosts.get(p.host) else {
                    continue;
                };
                // This host's own port: a `run` block may publish it elsewhere.
                let Some(Endpoint {
                    container,
                    published,
                }) = p.endpoint(Some(&port.name.name))
                else {
                    continue;
                };
                if host.managed {
                    continue;
                }
                if Some(p.host) == server {
                    job.dns.push(DnsTarget {
                        name: name.to_string(),
                        port: container,
                    });
                    continue;
                }
                let Some(addr) = &host.address else {
                    diags.push(
                        Diagnostic::error(Code::Unresolvable, p.run_span, format!("Prometheus cannot reach `{name}` on host `{}`, which has no address", host.name.name))
                            .label("its metrics are unreachable")
                            .help(format!("give host `{}` an `address = \"...\"`", host.name.name)),
                    );
                    continue;
                };
                // Without a server of its own, the topology is scraped from
                // outside: the firewall cannot know from where.
                let reader = server.map_or(Reader::Outside, Reader::Host);
                publishes.insert(PublishedPort::new(name, p.host, &port.name.name), reader);
                job.targets.push(StaticTarget {
                    address: crate::grammar::host_port(&addr.value, published),
                    host: host.name.name.to_string(),
                });
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

    /// The files this topology generates that a service may mount (`@out/...`);
    /// a mount of any other is reported.
    pub(super) fn check_generated_mounts(
        &self,
        proxies: &[ProxyPlan],
        jobs: &[ScrapeJob],
        diags: &mut Diagnostics,
    ) -> IndexSet<String> {
        let mut available: IndexSet<String> = proxies
            .iter()
            .map(|p| match p.kind {
                ProxyKind::Nginx => format!("nginx/{}.conf", p.name),
                ProxyKind::Haproxy => format!("haproxy/{}.cfg", p.name),
            })
            .collect();
        let mounted = self.placements.values().flatten().any(|p| {
            p.def.storage.mounts.values().any(|m| {
                [PROMETHEUS_CONFIG, PROMETHEUS_RULES]
                    .iter()
                    .any(|f| m.source.value == format!("@out/{f}"))
            })
        });
        if !jobs.is_empty() || mounted {
            available.insert(PROMETHEUS_CONFIG.to_string());
            available.insert(PROMETHEUS_RULES.to_string());
        }
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
            path: "/metrics".into(),
            interval: None,
            timeout: None,
            dns: Vec::new(),
            targets: Vec::new(),
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
            });
        }
        jobs.push(job);
    }
    jobs
}
