//! Metrics on Kubernetes (docs/targets.md, "kubernetes"): the cluster's
//! Prometheus finds each service with `metrics` by a Prometheus Operator
//! `PodMonitor` in the service's file (`scrape = pod_monitor`, the default),
//! or by the `prometheus.io/*` annotations of its pods (`scrape =
//! annotations`), which a Prometheus's `kubernetes_sd` pod role relabels.
//! A PodMonitor rather than a ServiceMonitor: a service may have several
//! Services (a LoadBalancer, a headless one) over the same pods, and a
//! ServiceMonitor would scrape each pod once per Service. A CloudNativePG
//! cluster's metrics are its instances' exporter.
//!
//! With PodMonitors, the alerts are a `PrometheusRule` (`alerts.yaml`),
//! which the same Prometheus Operator loads: a scrape target of the
//! namespace down, a service's HTTP error rate and latency, and of a
//! CloudNativePG cluster no primary, a new primary, PostgreSQL down, and a
//! replica that lags or does not stream. Each is chosen by the job label the
//! Operator gives a PodMonitor's targets. The certificates of the Ingress's
//! https hosts alert from cert-manager's own metrics (which the cluster's
//! Prometheus scrapes from cert-manager, as its chart offers): one that is
//! not ready, or that expires within 14 days (cert-manager renews at 30).

use serde::Serialize;

use super::*;
use crate::diag::{Code, Diagnostic};
use crate::model::Scrape;
use crate::plan::Metrics;
use crate::targets::prometheus::{alert, http_alerts, Alert, Group, Rules};

/// The replay lag that alerts on a CloudNativePG replica: 1 MiB of WAL, as
/// Patroni's default `maximum_lag_on_failover` does on compose.
const LAG_BYTES: u64 = 1 << 20;

/// The container port name and number of a CloudNativePG instance's exporter.
const CNPG_METRICS: (&str, u16) = ("metrics", 9187);

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PodMonitorSpec {
    selector: Selector,
    pod_metrics_endpoints: Vec<MetricsEndpoint>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MetricsEndpoint {
    /// The container port's name.
    port: String,
    path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    interval: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scrape_timeout: Option<String>,
}

/// What is scraped of a service: the pods' labels, the container port's name
/// and number, and the endpoint.
struct Scraped<'a> {
    pods: Labels,
    port: (String, u16),
    metrics: &'a Metrics,
}

impl Cx<'_> {
    fn scraped<'i>(&self, inst: &'i Instance) -> Option<Scraped<'i>> {
        let metrics = inst.metrics.as_deref()?;
        if inst.role == Role::Task || inst.replication.sentinel.is_some() {
            return None;
        }
        if inst.ha == HaMode::CloudNativePg {
            let (name, number) = CNPG_METRICS;
            return Some(Scraped {
                pods: IndexMap::from([("cnpg.io/cluster".into(), inst.name.to_string())]),
                port: (name.into(), number),
                metrics,
            });
        }
        let port = inst.ports.iter().find(|p| p.name == metrics.port)?;
        Some(Scraped {
            pods: self.selector(inst),
            port: (port.name.to_string(), port.container),
            metrics,
        })
    }

    /// The PodMonitor of a service with metrics, when the topology uses them.
    pub(super) fn pod_monitor(&self, inst: &Instance, docs: &mut Documents) {
        if self.topo.scrape != Scrape::PodMonitor {
            return;
        }
        let Some(s) = self.scraped(inst) else { return };
        let cnpg = inst.ha == HaMode::CloudNativePg;
        docs.push(&Object {
            api_version: "monitoring.coreos.com/v1",
            kind: "PodMonitor",
            metadata: self.metadata(inst.name.to_string(), inst),
            spec: Some(PodMonitorSpec {
                selector: Selector {
                    match_labels: s.pods,
                },
                pod_metrics_endpoints: vec![MetricsEndpoint {
                    port: s.port.0,
                    path: if cnpg {
                        "/metrics".into()
                    } else {
                        s.metrics.path.clone()
                    },
                    interval: s.metrics.interval.map(super::super::compose::duration),
                    scrape_timeout: s.metrics.timeout.map(super::super::compose::duration),
                }],
            }),
        });
    }

    /// The `job` label of what a service's PodMonitor scrapes: without a
    /// `jobLabel`, the Operator's `<namespace>/<PodMonitor name>`.
    fn job(&self, inst: &Instance) -> String {
        format!("{}/{}", self.topo.namespace, inst.name)
    }

    /// The topology's alerting rules, when its PodMonitors have targets.
    /// The alerts of the topology (`scrape = pod_monitor`): of its scraped
    /// services, and of the `certificates` cert-manager keeps.
    pub(super) fn prometheus_rule(
        &self,
        instances: &[&Instance],
        certificates: &[String],
    ) -> Option<Documents> {
        if self.topo.scrape != Scrape::PodMonitor {
            return None;
        }
        let scraped: Vec<&Instance> = instances
            .iter()
            .copied()
            .filter(|i| self.scraped(i).is_some())
            .collect();
        if scraped.is_empty() && certificates.is_empty() {
            return None;
        }
        let ns = &self.topo.namespace;
        let mut rules = Vec::new();
        if !scraped.is_empty() {
            rules.push(alert(
                "TargetDown",
                format!(r#"up{{namespace="{ns}"}} == 0"#),
                "2m",
                "critical",
                "{{ $labels.job }} on {{ $labels.pod }} is down",
                "Prometheus has not scraped {{ $labels.pod }} (job {{ $labels.job }}) for 2 minutes.",
            ));
        }
        rules.extend(certificate_alerts(ns, certificates));
        for inst in scraped {
            let selector = format!(r#"job="{}""#, self.job(inst));
            if inst.ha == HaMode::CloudNativePg {
                rules.extend(cnpg_alerts(&selector, &inst.name));
            } else if let Some(m) = inst.metrics.as_deref() {
                rules.extend(http_alerts(&selector, &inst.name, &m.http));
            }
        }
        Some(Documents::of(&Object {
            api_version: "monitoring.coreos.com/v1",
            kind: "PrometheusRule",
            metadata: Metadata {
                name: format!("{}-alerts", self.plan.stack),
                namespace: Some(ns.clone()),
                labels: self.part_of(),
                ..Metadata::default()
            },
            spec: Some(Rules {
                groups: vec![Group {
                    name: "stackc",
                    rules,
                }],
            }),
        }))
    }

    /// The scrape annotations of a service's pods, when the topology uses
    /// them.
    pub(super) fn scrape_annotations(&self, inst: &Instance) -> Labels {
        if self.topo.scrape != Scrape::Annotations {
            return Labels::default();
        }
        let Some(s) = self.scraped(inst) else {
            return Labels::default();
        };
        let path = if inst.ha == HaMode::CloudNativePg {
            "/metrics".to_string()
        } else {
            s.metrics.path.clone()
        };
        IndexMap::from([
            ("prometheus.io/scrape".into(), "true".into()),
            ("prometheus.io/port".into(), s.port.1.to_string()),
            ("prometheus.io/path".into(), path),
        ])
    }
}

/// On the metrics of a CloudNativePG cluster's instances (the exporter's
/// default queries, `cnpg_pg_replication_*` from each instance and
/// `cnpg_pg_stat_replication_*` from the primary, one series per replica):
/// every instance in recovery, a new primary, PostgreSQL down, a replica
/// whose WAL receiver is down, and one further behind than Patroni's default
/// `maximum_lag_on_failover` (1 MiB) as on compose.
fn cnpg_alerts(selector: &str, name: &str) -> Vec<Alert> {
    vec![
        alert(
            "PostgresWithoutPrimary",
            format!("min by (job) (cnpg_pg_replication_in_recovery{{{selector}}}) == 1"),
            "1m",
            "critical",
            "CloudNativePG cluster {{ $labels.job }} has no primary",
            format!("Every instance of {name} is in recovery: writes fail until one is promoted."),
        ),
        alert(
            "PostgresPrimaryChanged",
            format!("changes(cnpg_pg_replication_in_recovery{{{selector}}}[10m]) > 0 and cnpg_pg_replication_in_recovery{{{selector}}} == 0"),
            "0m",
            "warning",
            "{{ $labels.pod }} is the new primary of {{ $labels.job }}",
            format!("{name} failed over or switched over to {{{{ $labels.pod }}}} in the last 10 minutes."),
        ),
        alert(
            "PostgresDown",
            format!("cnpg_collector_up{{{selector}}} == 0"),
            "1m",
            "critical",
            "PostgreSQL is not running in {{ $labels.pod }} of {{ $labels.job }}",
            format!("The exporter of {name} on {{{{ $labels.pod }}}} answers, but its PostgreSQL has not run for a minute."),
        ),
        alert(
            "PostgresReplicaNotStreaming",
            format!("cnpg_pg_replication_in_recovery{{{selector}}} == 1 and cnpg_pg_replication_is_wal_receiver_up{{{selector}}} == 0"),
            "2m",
            "warning",
            "replica {{ $labels.pod }} of {{ $labels.job }} receives no WAL",
            format!("A replica of {name} has had no connection to its primary for 2 minutes: it falls behind."),
        ),
        alert(
            "PostgresReplicationLag",
            format!("max by (job, application_name) (cnpg_pg_stat_replication_replay_diff_bytes{{{selector}}}) > {}", LAG_BYTES),
            "2m",
            "warning",
            "replica {{ $labels.application_name }} of {{ $labels.job }} is {{ $value | humanize1024 }}B behind its primary",
            format!("A replica of {name} has not replayed the last MiB of WAL for 2 minutes: its reads are stale."),
        ),
    ]
}

/// W0504: the annotations carry no interval or timeout (the scraper's own
/// apply), and no alert rule is written for them.
pub(crate) fn unexpressible_scrape(topo: &TopologyPlan, diags: &mut Diagnostics) {
    if topo.scrape != Scrape::Annotations || topo.allowed.contains(&Code::ScrapeCannotExpress) {
        return;
    }
    for inst in topo.hosts.iter().flat_map(|h| &h.services) {
        let Some(m) = inst.metrics.as_deref() else {
            continue;
        };
        let set: Vec<&str> = [m.interval.map(|_| "interval"), m.timeout.map(|_| "timeout")]
            .into_iter()
            .flatten()
            .collect();
        if m.http.errors.is_some() || m.http.latency.is_some() {
            diags.push(
                Diagnostic::error(
                    Code::ScrapeCannotExpress,
                    m.span,
                    format!(
                        "the error rate and latency alerts of `{}` are not written: `scrape = annotations` has no PrometheusRule",
                        inst.name
                    ),
                )
                .label(format!("`scrape = annotations` in topology `{}`", topo.name))
                .help("use `scrape = pod_monitor` (the Prometheus Operator loads the rules), or write the rules on the cluster's Prometheus"),
            );
        }
        if set.is_empty() {
            continue;
        }
        diags.push(
            Diagnostic::error(
                Code::ScrapeCannotExpress,
                m.span,
                format!(
                    "the scrape annotations of `{}` carry no {}: the cluster's Prometheus uses its own",
                    inst.name,
                    set.join(" or ")
                ),
            )
            .label(format!("`scrape = annotations` in topology `{}`", topo.name))
            .help("use `scrape = pod_monitor` (a PodMonitor has them), or set them on the Prometheus"),
        );
    }
}

/// How close to its expiry a certificate alerts: cert-manager renews a
/// Let's Encrypt certificate 30 days before, so 14 days left means that
/// renewals have failed for two weeks.
const CERTIFICATE_DAYS_LEFT: u32 = 14;

/// cert-manager's alerts on the topology's Certificates, by namespace and
/// name.
fn certificate_alerts(ns: &str, certificates: &[String]) -> Vec<Alert> {
    if certificates.is_empty() {
        return Vec::new();
    }
    // The names are DNS labels (`<host>-tls`): no character of a regex.
    let selector = format!(r#"namespace="{ns}", name=~"{}""#, certificates.join("|"));
    let days = CERTIFICATE_DAYS_LEFT;
    vec![
        alert(
            "CertificateExpiresSoon",
            format!(
                "certmanager_certificate_expiration_timestamp_seconds{{{selector}}} - time() < {days} * 86400"
            ),
            "10m",
            "warning",
            "the certificate {{ $labels.name }} expires in {{ $value | humanizeDuration }}",
            format!("cert-manager renews a certificate 30 days before it expires: {{{{ $labels.name }}}} has less than {days} days left, so its renewals fail (`kubectl describe certificate {{{{ $labels.name }}}} -n {ns}`)."),
        ),
        alert(
            "CertificateNotReady",
            format!(r#"certmanager_certificate_ready_status{{{selector}, condition="False"}} == 1"#),
            "15m",
            "warning",
            "the certificate {{ $labels.name }} is not ready",
            format!("cert-manager has not issued {{{{ $labels.name }}}} for 15 minutes: its host is served without it (`kubectl describe certificate {{{{ $labels.name }}}} -n {ns}`)."),
        ),
    ]
}
