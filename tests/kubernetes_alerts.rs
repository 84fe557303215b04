//! The alerting rules of Kubernetes topologies (`k8s/alerts.yaml`, a
//! Prometheus Operator PrometheusRule), as Prometheus reads and evaluates
//! them: every rule group passes `promtool check rules`; every job an alert
//! selects is the job label the Operator gives the targets of one of the
//! topology's PodMonitors (`<namespace>/<name>`, none sets `jobLabel`); and
//! the rules of tests/cases/kubernetes-alerts.stack fire as `promtool test
//! rules` evaluates them on series shaped as a PodMonitor's targets carry
//! them (`job`, `namespace`, `pod`), and only for their own job.

use std::collections::BTreeSet;
use std::fs;

use serde_norway::Value;

use crate::kubernetes::sets;
use crate::support::require;

/// The `job="..."` matchers of a PromQL expression.
fn jobs_selected(expr: &str) -> Vec<String> {
    expr.match_indices("job=\"")
        .filter_map(|(at, m)| {
            let rest = &expr[at + m.len()..];
            rest.find('"').map(|end| rest[..end].to_string())
        })
        .collect()
}

/// The PrometheusRule of each Kubernetes topology that has one, with its
/// topology's name; every such topology's PodMonitors give the jobs.
fn rules_and_jobs() -> Vec<(String, Value, BTreeSet<String>)> {
    let mut found = Vec::new();
    for set in sets() {
        let kind = |d: &Value| d["kind"].as_str().unwrap_or_default().to_string();
        let mut jobs = BTreeSet::new();
        for m in set.docs.iter().filter(|d| kind(d) == "PodMonitor") {
            assert!(
                m["spec"]["jobLabel"].is_null(),
                "{}: a jobLabel changes the job the alerts select",
                set.name
            );
            jobs.insert(format!(
                "{}/{}",
                m["metadata"]["namespace"].as_str().unwrap_or_default(),
                m["metadata"]["name"].as_str().unwrap_or_default()
            ));
        }
        let rules: Vec<&Value> = set
            .docs
            .iter()
            .filter(|d| kind(d) == "PrometheusRule")
            .collect();
        assert!(rules.len() <= 1, "{}: one PrometheusRule", set.name);
        let certificates = set.docs.iter().any(|d| kind(d) == "Certificate");
        assert!(
            jobs.is_empty() || !rules.is_empty(),
            "{}: a PrometheusRule where there are PodMonitors",
            set.name
        );
        assert!(
            rules.is_empty() || !jobs.is_empty() || certificates,
            "{}: a PrometheusRule only for PodMonitors or Certificates",
            set.name
        );
        if let Some(rule) = rules.first() {
            found.push((set.name.clone(), (*rule).clone(), jobs));
        }
    }
    found
}

#[test]
fn kubernetes_alerts_select_the_jobs_of_pod_monitors() {
    let found = rules_and_jobs();
    assert!(found.len() >= 2, "the examples and cases have alert rules");
    for (name, rule, jobs) in &found {
        let namespace = rule["metadata"]["namespace"].as_str().unwrap_or_default();
        for r in rule["spec"]["groups"][0]["rules"]
            .as_sequence()
            .into_iter()
            .flatten()
        {
            let expr = r["expr"].as_str().unwrap_or_default();
            let selected = jobs_selected(expr);
            if selected.is_empty() {
                // Not by job: by the topology's namespace, then.
                assert!(
                    expr.contains(&format!("namespace=\"{namespace}\"")),
                    "{name}: {expr}"
                );
            }
            for job in selected {
                assert!(jobs.contains(&job), "{name}: {job} is no PodMonitor's job");
            }
        }
    }
}

#[test]
fn kubernetes_alert_rules_pass_promtool_check_rules() {
    if !require("promtool") {
        return;
    }
    for (name, rule, _) in rules_and_jobs() {
        let text = serde_norway::to_string(&rule["spec"]).unwrap_or_else(|e| panic!("{e}"));
        crate::real_programs::promtool_check_rules(&text, &name);
    }
}

/// The series of the test, minute by minute from 0m: the shop's requests
/// (15 % answered 500, most slower than 0.5 s) and another
/// namespace's shop, all errors, which no alert here may see; a shop pod
/// down from 2m; the CloudNativePG cluster `db`, whose primary db-1 is
/// demoted at 6m and db-2 promoted, while db-3's PostgreSQL stops at 2m, its
/// WAL receiver down from 1m, and db-2 reports db-3 2 MB behind from 1m.
const SERIES: &str = r#"
      - series: 'shop_http_requests_total{job="shop/shop", namespace="shop", pod="shop-1", status="200"}'
        values: '0+85x15'
      - series: 'shop_http_requests_total{job="shop/shop", namespace="shop", pod="shop-1", status="500"}'
        values: '0+15x15'
      - series: 'shop_http_requests_total{job="other/shop", namespace="other", pod="shop-1", status="500"}'
        values: '0+100x15'
      - series: 'shop_http_request_duration_seconds_bucket{job="shop/shop", namespace="shop", pod="shop-1", le="0.25"}'
        values: '0+10x15'
      - series: 'shop_http_request_duration_seconds_bucket{job="shop/shop", namespace="shop", pod="shop-1", le="0.5"}'
        values: '0+20x15'
      - series: 'shop_http_request_duration_seconds_bucket{job="shop/shop", namespace="shop", pod="shop-1", le="1"}'
        values: '0+100x15'
      - series: 'shop_http_request_duration_seconds_bucket{job="shop/shop", namespace="shop", pod="shop-1", le="+Inf"}'
        values: '0+100x15'
      - series: 'up{job="shop/shop", namespace="shop", pod="shop-1"}'
        values: '1 1 0x13'
      - series: 'up{job="other/shop", namespace="other", pod="shop-1"}'
        values: '0x15'
      - series: 'cnpg_pg_replication_in_recovery{job="shop/db", namespace="shop", pod="db-1"}'
        values: '0x5 1x9'
      - series: 'cnpg_pg_replication_in_recovery{job="shop/db", namespace="shop", pod="db-2"}'
        values: '1x5 0x9'
      - series: 'cnpg_pg_replication_in_recovery{job="shop/db", namespace="shop", pod="db-3"}'
        values: '1x15'
      - series: 'cnpg_pg_replication_is_wal_receiver_up{job="shop/db", namespace="shop", pod="db-3"}'
        values: '1 0x14'
      - series: 'cnpg_collector_up{job="shop/db", namespace="shop", pod="db-3"}'
        values: '1 1 0x13'
      - series: 'cnpg_pg_stat_replication_replay_diff_bytes{job="shop/db", namespace="shop", pod="db-2", application_name="db-3"}'
        values: '0 2000000x14'
      - series: 'cnpg_pg_stat_replication_replay_diff_bytes{job="shop/db", namespace="shop", pod="db-2", application_name="db-1"}'
        values: '0x15'"#;

/// What fires at 10m, by alert: `labels; summary; description`.
const FIRING: &[(&str, &str, &str, &str)] = &[
    (
        "TargetDown",
        "severity: critical, job: shop/shop, namespace: shop, pod: shop-1",
        "shop/shop on shop-1 is down",
        "Prometheus has not scraped shop-1 (job shop/shop) for 2 minutes.",
    ),
    (
        "HighErrorRate",
        "severity: critical, job: shop/shop",
        "shop/shop answers 15% of its requests with an error",
        "More than 10% of the requests to shop got a 5xx answer over the last 5 minutes.",
    ),
    (
        "HighLatency",
        "severity: warning, job: shop/shop",
        "shop/shop answers in 968.8ms at the 95th percentile",
        "The slowest 5% of the requests to shop took longer than 0.5s over the last 5 minutes.",
    ),
    (
        "PostgresPrimaryChanged",
        "severity: warning, job: shop/db, namespace: shop, pod: db-2",
        "db-2 is the new primary of shop/db",
        "db failed over or switched over to db-2 in the last 10 minutes.",
    ),
    (
        "PostgresDown",
        "severity: critical, job: shop/db, namespace: shop, pod: db-3",
        "PostgreSQL is not running in db-3 of shop/db",
        "The exporter of db on db-3 answers, but its PostgreSQL has not run for a minute.",
    ),
    (
        "PostgresReplicaNotStreaming",
        "severity: warning, job: shop/db, namespace: shop, pod: db-3",
        "replica db-3 of shop/db receives no WAL",
        "A replica of db has had no connection to its primary for 2 minutes: it falls behind.",
    ),
    (
        "PostgresReplicationLag",
        "severity: warning, job: shop/db, application_name: db-3",
        "replica db-3 of shop/db is 1.907MiB behind its primary",
        "A replica of db has not replayed the last MiB of WAL for 2 minutes: its reads are stale.",
    ),
];

#[test]
fn kubernetes_alerts_fire_as_promtool_evaluates_them() {
    if !require("promtool") {
        return;
    }
    let (_, rule, _) = rules_and_jobs()
        .into_iter()
        .find(|(name, _, _)| name.contains("kubernetes-alerts"))
        .unwrap_or_else(|| panic!("tests/cases/kubernetes-alerts.stack has alert rules"));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let rules = dir.path().join("rules.yml");
    let text = serde_norway::to_string(&rule["spec"]).unwrap_or_else(|e| panic!("{e}"));
    fs::write(&rules, text).unwrap_or_else(|e| panic!("{e}"));
    let mut tests = String::new();
    for (alert, labels, summary, description) in FIRING {
        tests.push_str(&format!(
            "      - eval_time: 1m\n        alertname: {alert}\n        exp_alerts: []\n      - eval_time: 10m\n        alertname: {alert}\n        exp_alerts:\n          - exp_labels: {{ {labels} }}\n            exp_annotations:\n              summary: {summary:?}\n              description: {description:?}\n"
        ));
    }
    // db-2 is the primary throughout the window: the cluster has one.
    tests.push_str(
        "      - eval_time: 10m\n        alertname: PostgresWithoutPrimary\n        exp_alerts: []\n",
    );
    let test = format!(
        "rule_files: [{:?}]\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:{SERIES}\n    alert_rule_test:\n{tests}{WITHOUT_PRIMARY}{CERTIFICATES}",
        rules.display().to_string(),
    );
    crate::real_programs::promtool_test(&test);
}

/// A cluster whose every instance is in recovery from 1m: no primary after
/// a minute.
const WITHOUT_PRIMARY: &str = r#"  - interval: 1m
    input_series:
      - series: 'cnpg_pg_replication_in_recovery{job="shop/db", namespace="shop", pod="db-1"}'
        values: '0 1x5'
      - series: 'cnpg_pg_replication_in_recovery{job="shop/db", namespace="shop", pod="db-2"}'
        values: '1x6'
    alert_rule_test:
      - eval_time: 1m
        alertname: PostgresWithoutPrimary
        exp_alerts: []
      - eval_time: 3m
        alertname: PostgresWithoutPrimary
        exp_alerts:
          - exp_labels: { severity: critical, job: shop/db }
            exp_annotations:
              summary: "CloudNativePG cluster shop/db has no primary"
              description: "Every instance of db is in recovery: writes fail until one is promoted."
"#;

/// cert-manager's series of the shop's certificate, which has 10 days left
/// and is not ready, and of another namespace's of the same name, with one
/// day left, which no alert here may see.
const CERTIFICATES: &str = r#"  - interval: 1m
    input_series:
      - series: 'certmanager_certificate_expiration_timestamp_seconds{job="cert-manager", namespace="shop", name="shop-example-com-tls"}'
        values: '865800x40'
      - series: 'certmanager_certificate_expiration_timestamp_seconds{job="cert-manager", namespace="other", name="shop-example-com-tls"}'
        values: '88200x40'
      - series: 'certmanager_certificate_ready_status{job="cert-manager", namespace="shop", name="shop-example-com-tls", condition="False"}'
        values: '1x40'
      - series: 'certmanager_certificate_ready_status{job="cert-manager", namespace="shop", name="shop-example-com-tls", condition="True"}'
        values: '0x40'
    alert_rule_test:
      - eval_time: 5m
        alertname: CertificateExpiresSoon
        exp_alerts: []
      - eval_time: 30m
        alertname: CertificateExpiresSoon
        exp_alerts:
          - exp_labels: { severity: warning, job: cert-manager, namespace: shop, name: shop-example-com-tls }
            exp_annotations:
              summary: "the certificate shop-example-com-tls expires in 10d 0h 0m 0s"
              description: "cert-manager renews a certificate 30 days before it expires: shop-example-com-tls has less than 14 days left, so its renewals fail (`kubectl describe certificate shop-example-com-tls -n shop`)."
      - eval_time: 10m
        alertname: CertificateNotReady
        exp_alerts: []
      - eval_time: 30m
        alertname: CertificateNotReady
        exp_alerts:
          - exp_labels: { severity: warning, job: cert-manager, namespace: shop, name: shop-example-com-tls, condition: "False" }
            exp_annotations:
              summary: "the certificate shop-example-com-tls is not ready"
              description: "cert-manager has not issued shop-example-com-tls for 15 minutes: its host is served without it (`kubectl describe certificate shop-example-com-tls -n shop`)."
"#;
