//! Prometheus: `out/<topology>/prometheus/prometheus.yml`, one scrape job per
//! service that declares `metrics`, and one per HAProxy exporter. Targets are
//! `host:port` only (the path is `metrics_path`); a job's timeout never exceeds its
//! interval. Beside it, `alerts.yml`, the rules the config loads: a target
//! Prometheus cannot scrape, a proxy's backend left with no server, a
//! Patroni cluster's leader, nodes and replication lag, and the proxies'
//! certificates (with `blackbox/blackbox.yml`, the config of the exporter
//! that probes them).
//! Serialized from typed structs.

use serde::Serialize;

use crate::diag::Diagnostics;
use crate::model::Duration;
use crate::options::Options;
use crate::plan::tls_probe::{BLACKBOX_CONFIG, TLS_MODULE, TLS_UNVERIFIED_MODULE};
use crate::plan::{
    DnsTarget, Exporter, HttpAlerts, ScrapeJob, TopologyPlan, HAPROXY_JOB, PROMETHEUS_CONFIG,
    PROMETHEUS_RULES,
};

/// Prometheus' defaults, written out so that the file says what it does.
const INTERVAL: Duration = Duration(15_000);
const TIMEOUT: Duration = Duration(10_000);

#[derive(Serialize)]
struct Config {
    global: Global,
    /// Where the alerts go: the topology's Alertmanagers.
    #[serde(skip_serializing_if = "Option::is_none")]
    alerting: Option<Alerting>,
    /// Relative to the config's directory, where the rules are mounted too.
    rule_files: Vec<&'static str>,
    scrape_configs: Vec<Job>,
}

#[derive(Serialize)]
struct Alerting {
    alertmanagers: Vec<Alertmanagers>,
}

#[derive(Serialize)]
struct Alertmanagers {
    static_configs: Vec<Targets>,
}

#[derive(Serialize)]
struct Targets {
    targets: Vec<String>,
}

/// A rule file: groups of alerting rules.
#[derive(Serialize)]
pub(super) struct Rules {
    pub(super) groups: Vec<Group>,
}

#[derive(Serialize)]
pub(super) struct Group {
    pub(super) name: &'static str,
    pub(super) rules: Vec<Alert>,
}

#[derive(Serialize)]
pub(super) struct Alert {
    alert: &'static str,
    expr: String,
    #[serde(rename = "for")]
    after: &'static str,
    labels: Severity,
    annotations: Annotations,
}

#[derive(Serialize)]
struct Severity {
    severity: &'static str,
}

#[derive(Serialize)]
struct Annotations {
    summary: String,
    description: String,
}

#[derive(Serialize)]
struct Global {
    scrape_interval: String,
    scrape_timeout: String,
    evaluation_interval: String,
}

#[derive(Serialize)]
struct Job {
    job_name: String,
    metrics_path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    scrape_interval: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scrape_timeout: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    dns_sd_configs: Vec<DnsSd>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    static_configs: Vec<Static>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    relabel_configs: Vec<Relabel>,
}

/// A relabelling step of a probe's job: the target handed to the exporter
/// as its `target` parameter, kept as the `instance` label, and the exporter
/// scraped in its place (Prometheus' multi-target exporter pattern).
#[derive(Serialize)]
struct Relabel {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    source_labels: Vec<&'static str>,
    target_label: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    replacement: Option<String>,
}

/// The Blackbox exporter's config: its modules by name.
#[derive(Serialize)]
struct Blackbox {
    modules: std::collections::BTreeMap<&'static str, BlackboxModule>,
}

#[derive(Serialize)]
struct BlackboxModule {
    prober: &'static str,
    timeout: &'static str,
    tcp: BlackboxTcp,
}

#[derive(Serialize)]
struct BlackboxTcp {
    tls: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_config: Option<BlackboxTlsConfig>,
}

#[derive(Serialize)]
struct BlackboxTlsConfig {
    insecure_skip_verify: bool,
}

#[derive(Serialize)]
struct DnsSd {
    names: Vec<String>,
    #[serde(rename = "type")]
    kind: &'static str,
    port: u16,
}

#[derive(Serialize)]
struct Static {
    targets: Vec<String>,
    labels: Labels,
}

#[derive(Serialize)]
struct Labels {
    host: String,
    /// A probe's module: Prometheus passes it to the exporter as its
    /// `module` parameter.
    #[serde(rename = "__param_module", skip_serializing_if = "Option::is_none")]
    module: Option<&'static str>,
}

pub fn generate(
    topo: &TopologyPlan,
    options: &Options,
    out: &mut super::Files<'_>,
    diags: &mut Diagnostics,
) {
    if !topo.prometheus_config {
        return;
    }
    let config = Config {
        global: Global {
            scrape_interval: duration(INTERVAL),
            scrape_timeout: duration(TIMEOUT),
            evaluation_interval: duration(INTERVAL),
        },
        alerting: (!topo.alerting.alertmanagers.is_empty()).then(|| Alerting {
            alertmanagers: vec![Alertmanagers {
                static_configs: vec![Targets {
                    targets: topo.alerting.alertmanagers.clone(),
                }],
            }],
        }),
        rule_files: vec![rules_name()],
        scrape_configs: topo.scrape_jobs.iter().map(job).collect(),
    };
    let rules = Rules {
        groups: vec![Group {
            name: "stackc",
            rules: alerts(topo),
        }],
    };
    super::push_yaml(topo, options, PROMETHEUS_CONFIG, &config, out, diags);
    super::push_yaml(topo, options, PROMETHEUS_RULES, &rules, out, diags);
    if topo
        .scrape_jobs
        .iter()
        .any(|j| j.exporter == Exporter::Blackbox)
    {
        super::push_yaml(topo, options, BLACKBOX_CONFIG, &blackbox(), out, diags);
    }
}

/// A TCP connection and a TLS handshake with each target, verified against
/// the system's authorities for the target's name as a browser makes it, or
/// not verified (`tls_probe.rs` says which): the exporter then reports the
/// certificate's expiry (`probe_ssl_earliest_cert_expiry`), or the probe
/// fails.
fn blackbox() -> Blackbox {
    let module = |verify: bool| BlackboxModule {
        prober: "tcp",
        timeout: "5s",
        tcp: BlackboxTcp {
            tls: true,
            tls_config: (!verify).then_some(BlackboxTlsConfig {
                insecure_skip_verify: true,
            }),
        },
    };
    Blackbox {
        modules: [
            (TLS_MODULE, module(true)),
            (TLS_UNVERIFIED_MODULE, module(false)),
        ]
        .into(),
    }
}

/// The rule file's name, as the config (beside it) loads it.
fn rules_name() -> &'static str {
    PROMETHEUS_RULES
        .rsplit('/')
        .next()
        .unwrap_or(PROMETHEUS_RULES)
}

/// The alerts every topology gets: a scrape target down; with HAProxy
/// proxies, a backend without a server to send requests to (HAProxy's own
/// exporter; its `no_route` backend has none by design); with Patroni
/// clusters, what their nodes' metrics say of the cluster.
fn alerts(topo: &TopologyPlan) -> Vec<Alert> {
    let mut rules = vec![alert(
        "TargetDown",
        "up == 0".into(),
        "2m",
        "critical",
        "{{ $labels.job }} on {{ $labels.instance }} is down",
        "Prometheus has not scraped {{ $labels.instance }} (job {{ $labels.job }}) for 2 minutes.",
    )];
    let has = |e: Exporter| topo.scrape_jobs.iter().any(|j| j.exporter == e);
    if has(Exporter::Haproxy) {
        rules.push(alert(
            "ProxyBackendWithoutServer",
            format!(
                r#"haproxy_backend_active_servers{{job=~"{HAPROXY_JOB}.*", proxy!="no_route"}} == 0"#
            ),
            "1m",
            "critical",
            "backend {{ $labels.proxy }} of {{ $labels.job }} has no server up",
            "Every server of HAProxy backend {{ $labels.proxy }} fails its health check: its requests get 503.",
        ));
    }
    if has(Exporter::Patroni) {
        rules.extend(patroni_alerts(topo));
    }
    for j in topo.scrape_jobs.iter().filter(|j| j.via.is_some()) {
        rules.extend(certificate_alerts(&j.name));
    }
    for j in &topo.scrape_jobs {
        rules.extend(http_alerts(
            &format!(r#"job="{}""#, j.name),
            &j.name,
            &j.http,
        ));
    }
    rules
}

/// On a service's own HTTP metrics (`requests`, `latency`), its series
/// chosen by `selector` (`job="api"`) and `name` what the alerts call it:
/// the share of its requests answered 5xx, and the 95th percentile of their
/// durations, each over 5 minutes, summed over its replicas.
pub(super) fn http_alerts(selector: &str, name: &str, http: &HttpAlerts) -> Vec<Alert> {
    let mut rules = Vec::new();
    if let Some((requests, status, percent)) = &http.errors {
        rules.push(alert(
            "HighErrorRate",
            format!(
                "{} > {}",
                error_ratio(selector, requests, status),
                f64::from(*percent) / 100.0
            ),
            "5m",
            "critical",
            "{{ $labels.job }} answers {{ $value | humanizePercentage }} of its requests with an error",
            format!("More than {percent}% of the requests to {name} got a 5xx answer over the last 5 minutes."),
        ));
    }
    if let Some((latency, threshold)) = &http.latency {
        let seconds = threshold.0 as f64 / 1000.0;
        rules.push(alert(
            "HighLatency",
            format!("{} > {seconds}", p95(selector, latency)),
            "5m",
            "warning",
            "{{ $labels.job }} answers in {{ $value | humanizeDuration }} at the 95th percentile",
            format!("The slowest 5% of the requests to {name} took longer than {seconds}s over the last 5 minutes."),
        ));
    }
    rules
}

/// The share of a service's requests answered 5xx over 5 minutes, summed
/// over its replicas: what `HighErrorRate` and the dashboards read.
pub(super) fn error_ratio(selector: &str, requests: &str, status: &str) -> String {
    format!(
        r#"sum by (job) (rate({requests}{{{selector}, {status}=~"5.."}}[5m])) / sum by (job) (rate({requests}{{{selector}}}[5m]))"#
    )
}

/// The 95th percentile of a service's request durations over 5 minutes,
/// summed over its replicas: what `HighLatency` and the dashboards read.
pub(super) fn p95(selector: &str, latency: &str) -> String {
    format!("histogram_quantile(0.95, sum by (job, le) (rate({latency}_bucket{{{selector}}}[5m])))")
}

/// On the metrics of Patroni's REST API (labelled by `scope`, the cluster,
/// and `name`, the node): no leader, a new leader, a node whose PostgreSQL
/// is down, and per cluster a replica too far behind to take over.
fn patroni_alerts(topo: &TopologyPlan) -> Vec<Alert> {
    let mut rules = vec![
        alert(
            "PatroniClusterWithoutLeader",
            "max by (scope) (patroni_cluster_unlocked) == 1".into(),
            "1m",
            "critical",
            "Patroni cluster {{ $labels.scope }} has no leader",
            "No node of {{ $labels.scope }} holds the leader lock: writes fail until one does.",
        ),
        alert(
            "PatroniLeaderChanged",
            "changes(patroni_primary[10m]) > 0 and patroni_primary == 1".into(),
            "0m",
            "warning",
            "{{ $labels.name }} is the new leader of {{ $labels.scope }}",
            "{{ $labels.scope }} failed over or switched over to {{ $labels.name }} in the last 10 minutes.",
        ),
        alert(
            "PatroniPostgresDown",
            "patroni_postgres_running == 0".into(),
            "1m",
            "critical",
            "PostgreSQL is not running on {{ $labels.name }} of {{ $labels.scope }}",
            "Patroni on {{ $labels.name }} answers, but its PostgreSQL has not run for a minute.",
        ),
    ];
    // Each cluster's own `maximum_lag_on_failover`.
    let mut clusters: Vec<(&str, u64)> = Vec::new();
    for node in topo
        .hosts
        .iter()
        .flat_map(|h| &h.services)
        .filter_map(|i| i.replication.patroni.as_deref())
    {
        if !clusters.iter().any(|(scope, _)| *scope == node.scope) {
            clusters.push((&node.scope, node.maximum_lag));
        }
    }
    for (scope, lag) in clusters {
        let s = format!(r#"scope="{scope}""#);
        rules.push(alert(
            "PostgresReplicationLag",
            format!(
                "(max by (scope) (patroni_xlog_location{{{s}}}) - on (scope) group_right patroni_xlog_replayed_location{{{s}}}) > {lag} and on (scope, name) patroni_replica{{{s}}} == 1"
            ),
            "2m",
            "warning",
            "replica {{ $labels.name }} of {{ $labels.scope }} is {{ $value | humanize1024 }}B behind its leader",
            "A replica further behind than Patroni's maximum_lag_on_failover is not promoted when the leader fails.",
        ));
    }
    rules
}

/// On the Blackbox exporter's probes of the domains served with `tls`: a
/// certificate that expires within 14 days (Let's Encrypt's clients renew
/// at 30: one still this close did not renew), and a handshake that fails
/// (expired, not trusted, for another name, or no answer).
fn certificate_alerts(job: &str) -> Vec<Alert> {
    let job = format!(r#"job="{job}""#);
    vec![
        alert(
            "CertificateExpiresSoon",
            format!("probe_ssl_earliest_cert_expiry{{{job}}} - time() < 14 * 86400"),
            "10m",
            "warning",
            "the certificate of {{ $labels.instance }} expires in {{ $value | humanizeDuration }}",
            "The certificate served for {{ $labels.instance }} expires within 14 days: its renewal has failed.",
        ),
        alert(
            "CertificateProbeFailed",
            format!("probe_success{{{job}}} == 0"),
            "15m",
            "critical",
            "TLS with {{ $labels.instance }} fails",
            "A TLS handshake with {{ $labels.instance }} has failed for 15 minutes: its certificate expired, is not trusted or is for another name, or it does not answer.",
        ),
    ]
}

pub(super) fn alert(
    name: &'static str,
    expr: String,
    after: &'static str,
    severity: &'static str,
    summary: impl Into<String>,
    description: impl Into<String>,
) -> Alert {
    Alert {
        alert: name,
        expr,
        after,
        labels: Severity { severity },
        annotations: Annotations {
            summary: summary.into(),
            description: description.into(),
        },
    }
}

fn job(j: &ScrapeJob) -> Job {
    // The global timeout would exceed a short interval: cap it.
    let timeout = match (j.interval, j.timeout) {
        (_, Some(t)) => Some(t),
        (Some(i), None) if i < TIMEOUT => Some(i),
        _ => None,
    };
    Job {
        job_name: j.name.clone(),
        metrics_path: j.path.clone(),
        scrape_interval: j.interval.map(duration),
        scrape_timeout: timeout.map(duration),
        dns_sd_configs: j
            .dns
            .iter()
            .map(|t| DnsSd {
                names: vec![t.name.clone()],
                kind: "A",
                port: t.port,
            })
            .collect(),
        static_configs: j
            .targets
            .iter()
            .map(|t| Static {
                targets: vec![t.address.clone()],
                labels: Labels {
                    host: t.host.clone(),
                    module: t.module,
                },
            })
            .collect(),
        relabel_configs: j.via.as_ref().map(probe_relabel).unwrap_or_default(),
    }
}

/// A probe's target becomes the exporter's `target` parameter and the
/// series' `instance`, and the exporter is scraped in its place.
fn probe_relabel(exporter: &DnsTarget) -> Vec<Relabel> {
    vec![
        Relabel {
            source_labels: vec!["__address__"],
            target_label: "__param_target",
            replacement: None,
        },
        Relabel {
            source_labels: vec!["__param_target"],
            target_label: "instance",
            replacement: None,
        },
        Relabel {
            source_labels: Vec::new(),
            target_label: "__address__",
            replacement: Some(crate::grammar::host_port(&exporter.name, exporter.port)),
        },
    ]
}

fn duration(d: Duration) -> String {
    if d.0.is_multiple_of(1000) {
        format!("{}s", d.0 / 1000)
    } else {
        format!("{}ms", d.0)
    }
}
