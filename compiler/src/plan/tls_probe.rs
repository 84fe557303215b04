//! The certificates a compose topology's proxies serve, watched from its
//! Prometheus: a Blackbox exporter beside the Prometheus server makes a TLS
//! handshake with each domain served with `tls`, at the address the world
//! reaches it (its name and the proxy's HTTPS port), as a browser does, and
//! reports when its certificate expires; the alerts read that. A Kubernetes
//! topology's certificates are cert-manager's, which reports their expiry
//! itself (`targets/kubernetes/monitoring.rs`).

use super::prometheus::{DnsTarget, StaticTarget};
use super::*;
use crate::diag::{Code, Diagnostic, Diagnostics};

/// The exporter's image, pinned: the version the tests run (Debian's
/// `prometheus-blackbox-exporter`); its metric names are the alerts'.
pub const BLACKBOX_IMAGE: &str = "prom/blackbox-exporter:v0.23.0";
/// The exporter's name: the Prometheus service's and this.
pub const BLACKBOX_SUFFIX: &str = "-blackbox";
/// Its config, generated, and where the container reads it.
pub const BLACKBOX_CONFIG: &str = "blackbox/blackbox.yml";
const CONFIG_IN_CONTAINER: &str = "/etc/blackbox_exporter/config.yml";
pub const BLACKBOX_PORT: u16 = 9115;
/// The config's modules: a TCP connection and a TLS handshake, verified
/// against the system's authorities for the name probed, or not verified,
/// for a certificate no browser trusts by design (Let's Encrypt's staging,
/// another ACME server, an operator's files, whose issuer stackc cannot
/// know): its expiry is reported either way.
pub const TLS_MODULE: &str = "tls_certificate";
pub const TLS_UNVERIFIED_MODULE: &str = "tls_certificate_unverified";

/// How the topology's certificates are probed: the exporter's container
/// (on the Prometheus server's host) and the `domain:port` of each.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsProbe {
    pub host: usize,
    /// The exporter's container, and its scrape job's name.
    pub exporter: Name,
    pub targets: Vec<StaticTarget>,
}

impl Topo<'_> {
    /// The probe, on a compose topology that runs a Prometheus server (on a
    /// host of its own, not a managed one) and serves a domain with `tls`.
    /// A service of the exporter's name on its host is reported: two
    /// containers of one compose file.
    pub(super) fn tls_probe(
        &self,
        proxies: &[ProxyPlan],
        diags: &mut Diagnostics,
    ) -> Option<TlsProbe> {
        if self.topo.platform.value != Platform::Compose {
            return None;
        }
        let (server, host) = self
            .placements
            .iter()
            .find(|(name, _)| self.is_kind(name, "prometheus"))
            .and_then(|(name, ps)| Some((name, ps.first()?.host)))?;
        // A Prometheus on a managed host is its platform's: no container
        // of stackc's runs beside it.
        if self.hosts[host].managed {
            return None;
        }
        // By address, once each: a stack may serve thousands of domains.
        let mut targets: IndexMap<String, StaticTarget> = IndexMap::default();
        for proxy in proxies {
            let trusted: IndexSet<&str> = trusted_domains(proxy).collect();
            for site in proxy.sites.iter().filter(|s| s.tls.is_some()) {
                let Some(domain) = &site.domain else {
                    continue;
                };
                let address = crate::grammar::host_port(domain, proxy.https);
                let module = if trusted.contains(domain.as_str()) {
                    TLS_MODULE
                } else {
                    TLS_UNVERIFIED_MODULE
                };
                targets.entry(address.clone()).or_insert(StaticTarget {
                    address,
                    host: proxy.host.clone(),
                    module: Some(module),
                });
            }
        }
        let targets: Vec<StaticTarget> = targets.into_values().collect();
        if targets.is_empty() {
            return None;
        }
        let exporter = crate::base::concat(server, BLACKBOX_SUFFIX);
        if let Some(taken) = self.placement(&exporter, host) {
            let on = &self.hosts[host].name.name;
            diags.push(
                Diagnostic::error(
                    Code::DuplicateName,
                    taken.run_span,
                    format!("`{exporter}` on host `{on}` is also the name of the Blackbox exporter stackc adds beside `{server}`"),
                )
                .label("two containers of one compose file with this name")
                .help(format!("rename `{exporter}`: the exporter probes the certificates of the domains served with `tls`")),
            );
            return None;
        }
        Some(TlsProbe {
            host,
            exporter,
            targets,
        })
    }
}

/// The domains whose certificates the proxy obtains from Let's Encrypt (not
/// its staging): ones a browser trusts.
fn trusted_domains(proxy: &ProxyPlan) -> impl Iterator<Item = &str> {
    proxy
        .acme
        .iter()
        .filter(|a| a.server.directory == AcmeDirectory::LetsEncrypt.url())
        .flat_map(|a| a.domains.iter().map(String::as_str))
}

impl TlsProbe {
    /// Its scrape job: the domains are the targets, which Prometheus hands
    /// the exporter (by its compose name, on its own host) as its `target`
    /// parameter (`targets/prometheus.rs`).
    pub fn job(&self) -> ScrapeJob {
        ScrapeJob {
            name: self.exporter.to_string(),
            exporter: super::Exporter::Blackbox,
            path: "/probe".into(),
            interval: None,
            timeout: None,
            dns: Vec::new(),
            targets: self.targets.clone(),
            via: Some(DnsTarget {
                name: self.exporter.to_string(),
                port: BLACKBOX_PORT,
            }),
            http: super::HttpAlerts::default(),
        }
    }

    /// The exporter's container, on host `h` if it is the probe's.
    pub(super) fn instance(&self, h: usize) -> Option<Instance> {
        (h == self.host).then(|| Instance {
            image: Some(Name::new(BLACKBOX_IMAGE)),
            program: Program {
                command: Some(vec![format!("--config.file={CONFIG_IN_CONTAINER}")]),
                ..Program::default()
            }
            .into(),
            storage: Storage {
                mounts: vec![Mount::generated(BLACKBOX_CONFIG, CONFIG_IN_CONTAINER)],
                ..Storage::default()
            }
            .into(),
            kind: Some(Name::new("blackbox-exporter")),
            ..Instance::auxiliary(self.exporter.clone(), Role::Stateless)
        })
    }
}
