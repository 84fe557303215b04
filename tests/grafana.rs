//! Grafana's provisioning and dashboards (`grafana/`), for every example and
//! case with a service of kind `grafana`, as Grafana and Prometheus would read
//! them (no Grafana runs here: its provisioning has no validator of its own):
//!
//! - the datasource is the Prometheus of `$PROMETHEUS_URL`, and the Grafana
//!   container's `PROMETHEUS_URL` reaches a Prometheus of the topology (by its
//!   compose name and container port on the same host, or at a host's address
//!   and a port published there); the provider reads the directory the kind
//!   mounts the dashboards at;
//! - every panel names that datasource, uids are unique and within Grafana's
//!   40 characters;
//! - every panel's expression is PromQL that `promtool check rules` accepts
//!   (as a recording rule), and the services' panels evaluate, with `promtool
//!   test rules`, to the request rate, the share of errors and the 95th
//!   percentile the series give.

use std::collections::BTreeSet;

use serde_json::Value as Json;
use serde_norway::Value;

use crate::support::{options, read, rel, require, stack_files};

/// One topology's Grafana files and compose files.
struct Topology {
    name: String,
    files: Vec<(String, String)>,
}

impl Topology {
    fn file(&self, suffix: &str) -> Option<&str> {
        self.files
            .iter()
            .find(|(p, _)| p.ends_with(suffix))
            .map(|(_, c)| c.as_str())
    }

    fn dashboards(&self) -> Vec<Json> {
        self.json_under("/grafana/dashboards/")
    }

    /// The dashboards for a Grafana outside the topology.
    fn imported(&self) -> Vec<Json> {
        self.json_under("/grafana/import/")
    }

    fn json_under(&self, dir: &str) -> Vec<Json> {
        self.files
            .iter()
            .filter(|(p, _)| p.contains(dir))
            .map(|(p, c)| serde_json::from_str(c).unwrap_or_else(|e| panic!("{p}: {e}")))
            .collect()
    }

    fn composes(&self) -> Vec<Value> {
        self.files
            .iter()
            .filter(|(p, _)| p.contains("/compose/"))
            .map(|(p, c)| serde_norway::from_str(c).unwrap_or_else(|e| panic!("{p}: {e}")))
            .collect()
    }
}

/// The topologies that run Grafana (they provision it).
fn with_grafana() -> Vec<Topology> {
    let found = topologies_with("/grafana/provisioning/");
    assert!(!found.is_empty(), "an example runs Grafana");
    found
}

/// The topologies whose files hold `dir`, with all their files.
fn topologies_with(dir: &str) -> Vec<Topology> {
    let mut found = Vec::new();
    for path in stack_files("examples")
        .into_iter()
        .chain(stack_files("tests/cases"))
    {
        let compilation = stackc::compile(read(&path), &options(&path));
        let mut topologies: Vec<String> = compilation
            .artifacts
            .iter()
            .filter(|a| a.path.contains(dir))
            .filter_map(|a| a.path.split('/').next().map(str::to_string))
            .collect();
        topologies.dedup();
        for t in topologies {
            found.push(Topology {
                name: format!("{} {t}", rel(&path)),
                files: compilation
                    .artifacts
                    .iter()
                    .filter(|a| a.path.starts_with(&format!("{t}/")))
                    .map(|a| (a.path.clone(), a.contents.clone()))
                    .collect(),
            });
        }
    }
    found
}

fn strings(v: &Value) -> Vec<String> {
    v.as_sequence()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect()
}

/// Whether `url` reaches a Prometheus from the compose file `from`: its
/// compose name and container port there, or a host's address and a port a
/// Prometheus publishes on it.
fn reaches_prometheus(url: &str, from: &Value, all: &[Value]) -> bool {
    let Some((host, port)) = url
        .strip_prefix("http://")
        .and_then(|rest| rest.split_once(':'))
    else {
        return false;
    };
    let is_prometheus = |s: &Value| {
        s["image"]
            .as_str()
            .is_some_and(|i| i.starts_with("prom/prometheus"))
    };
    let services = |c: &Value| -> Vec<(String, Value)> {
        c["services"]
            .as_mapping()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.as_str().unwrap_or_default().to_string(), v.clone()))
            .collect()
    };
    let local = services(from)
        .into_iter()
        .any(|(name, s)| name == host && is_prometheus(&s) && port == "9090");
    let published = all.iter().flat_map(services).any(|(_, s)| {
        is_prometheus(&s)
            && strings(&s["ports"])
                .iter()
                .any(|p| p.starts_with(&format!("{host}:{port}:")))
    });
    local || published
}

#[test]
fn grafana_reads_the_topologys_prometheus_and_its_dashboards() {
    for t in with_grafana() {
        let ds: Value = serde_norway::from_str(
            t.file("provisioning/datasources/stackc.yaml")
                .unwrap_or_else(|| panic!("{}: a datasource", t.name)),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let source = &ds["datasources"][0];
        assert_eq!(
            source["url"].as_str(),
            Some("$PROMETHEUS_URL"),
            "{}",
            t.name
        );
        assert_eq!(source["type"].as_str(), Some("prometheus"));
        let uid = source["uid"].as_str().unwrap_or_default();
        let providers: Value = serde_norway::from_str(
            t.file("provisioning/dashboards/stackc.yaml")
                .unwrap_or_else(|| panic!("{}: a dashboard provider", t.name)),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let dashboards_dir = providers["providers"][0]["options"]["path"]
            .as_str()
            .unwrap_or_default();
        let composes = t.composes();
        let mut grafanas = 0;
        for compose in &composes {
            let Some(grafana) = compose["services"]
                .as_mapping()
                .into_iter()
                .flatten()
                .map(|(_, s)| s)
                .find(|s| {
                    s["image"]
                        .as_str()
                        .is_some_and(|i| i.starts_with("grafana/grafana"))
                })
            else {
                continue;
            };
            grafanas += 1;
            let url = grafana["environment"]["PROMETHEUS_URL"]
                .as_str()
                .unwrap_or_default();
            assert!(
                reaches_prometheus(url, compose, &composes),
                "{}: Grafana's PROMETHEUS_URL {url} reaches no Prometheus",
                t.name
            );
            let volumes = strings(&grafana["volumes"]);
            for (dir, target) in [
                ("../grafana/provisioning", "/etc/grafana/provisioning"),
                ("../grafana/dashboards", dashboards_dir),
            ] {
                assert!(
                    volumes.contains(&format!("{dir}:{target}:ro")),
                    "{}: {dir} at {target}: {volumes:?}",
                    t.name
                );
            }
        }
        assert!(grafanas > 0, "{}: a Grafana container", t.name);
        let dashboards = t.dashboards();
        assert!(!dashboards.is_empty(), "{}: dashboards", t.name);
        let mut uids = BTreeSet::new();
        for d in &dashboards {
            let id = d["uid"].as_str().unwrap_or_default();
            assert!(
                id.len() <= 40 && uids.insert(id.to_string()),
                "{}: {id}",
                t.name
            );
            for p in d["panels"].as_array().into_iter().flatten() {
                assert_eq!(p["datasource"]["uid"].as_str(), Some(uid), "{}", t.name);
                for target in p["targets"].as_array().into_iter().flatten() {
                    assert_eq!(target["datasource"]["uid"].as_str(), Some(uid));
                }
            }
        }
    }
}

/// Every panel's expression, with the topology's name.
fn panel_exprs() -> Vec<(String, String, String)> {
    let mut exprs = Vec::new();
    for t in with_grafana()
        .into_iter()
        .chain(topologies_with("/grafana/import/"))
    {
        for d in t.dashboards().into_iter().chain(t.imported()) {
            for p in d["panels"].as_array().into_iter().flatten() {
                for target in p["targets"].as_array().into_iter().flatten() {
                    exprs.push((
                        t.name.clone(),
                        p["title"].as_str().unwrap_or_default().to_string(),
                        target["expr"].as_str().unwrap_or_default().to_string(),
                    ));
                }
            }
        }
    }
    exprs
}

#[test]
fn grafana_panels_are_promql_that_promtool_accepts() {
    if !require("promtool") {
        return;
    }
    let exprs = panel_exprs();
    let mut rules = String::from("groups:\n  - name: panels\n    rules:\n");
    for (i, (_, _, expr)) in exprs.iter().enumerate() {
        rules.push_str(&format!(
            "      - record: stackc_panel_{i}\n        expr: {expr:?}\n"
        ));
    }
    crate::real_programs::promtool_check_rules(&rules, "the panels' expressions");
}

/// The Synaxic example's service panels on an app's series: 100 requests a
/// minute, 15 of them 500s, most slower than 0.5 s.
#[test]
fn grafana_service_panels_show_what_the_series_say() {
    if !require("promtool") {
        return;
    }
    let exprs: Vec<(String, String)> = panel_exprs()
        .into_iter()
        .filter(|(name, _, _)| name == "examples/synaxic.stack single")
        .map(|(_, title, expr)| (title, expr))
        .collect();
    let expr = |title: &str| -> &str {
        exprs
            .iter()
            .find(|(t, _)| t == title)
            .map(|(_, e)| e.as_str())
            .unwrap_or_else(|| panic!("a panel {title}: {exprs:?}"))
    };
    let expected = [
        ("app: targets up", "1"),
        ("app: requests per second", "1.6666666666666667"),
        ("app: share of 5xx answers", "0.15"),
        ("app: 95th percentile latency", "0.96875"),
    ];
    let mut tests = String::new();
    for (title, value) in expected {
        tests.push_str(&format!(
            "      - expr: {:?}\n        eval_time: 10m\n        exp_samples:\n          - labels: '{{job=\"app\"}}'\n            value: {value}\n",
            expr(title)
        ));
    }
    let series = |metric: &str, labels: &str, per_minute: u32| {
        format!(
            "      - series: '{metric}{{job=\"app\", instance=\"10.30.0.10:8080\", {labels}}}'\n        values: '0+{per_minute}x15'\n"
        )
    };
    let input = [
        series("http_server_requests_seconds_count", r#"status="200""#, 85),
        series("http_server_requests_seconds_count", r#"status="500""#, 15),
        series("http_server_requests_seconds_bucket", r#"le="0.5""#, 20),
        series("http_server_requests_seconds_bucket", r#"le="1""#, 100),
        series("http_server_requests_seconds_bucket", r#"le="+Inf""#, 100),
    ]
    .concat();
    let test = format!(
        "tests:\n  - interval: 1m\n    input_series:\n      - series: 'up{{job=\"app\", instance=\"10.30.0.10:8080\"}}'\n        values: '1x15'\n{input}    promql_expr_test:\n{tests}"
    );
    crate::real_programs::promtool_test(&test);
}

/// A topology whose metrics another Grafana reads (SynthStack's guide imports
/// its dashboards) gets them in the form Grafana's import reads: the
/// Prometheus is an input every panel names, and each panel charts a job the
/// topology's `prometheus.yml` scrapes; uids are unique across every stack
/// and topology (one Grafana may import them all) and within 40 characters.
#[test]
fn imported_dashboards_ask_for_the_prometheus_of_their_jobs() {
    let topologies = topologies_with("/grafana/import/");
    assert!(
        topologies
            .iter()
            .any(|t| t.name == "examples/synthstack.stack single"),
        "SynthStack's Grafana is outside the stack"
    );
    let mut uids = BTreeSet::new();
    for t in topologies {
        let config: Value = serde_norway::from_str(
            t.file("prometheus/prometheus.yml")
                .unwrap_or_else(|| panic!("{}: prometheus.yml", t.name)),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let jobs: BTreeSet<&str> = config["scrape_configs"]
            .as_sequence()
            .into_iter()
            .flatten()
            .filter_map(|j| j["job_name"].as_str())
            .collect();
        let dashboards = t.imported();
        assert!(!dashboards.is_empty(), "{}", t.name);
        for d in dashboards {
            let id = d["uid"].as_str().unwrap_or_default().to_string();
            assert!(
                id.len() <= 40 && uids.insert(id.clone()),
                "{}: {id}",
                t.name
            );
            let inputs = d["__inputs"].as_array().cloned().unwrap_or_default();
            assert_eq!(inputs.len(), 1, "{}: {id}", t.name);
            assert_eq!(inputs[0]["name"], "DS_PROMETHEUS");
            assert_eq!(inputs[0]["type"], "datasource");
            assert_eq!(inputs[0]["pluginId"], "prometheus");
            for p in d["panels"].as_array().into_iter().flatten() {
                assert_eq!(p["datasource"]["uid"], "${DS_PROMETHEUS}", "{}", t.name);
                for target in p["targets"].as_array().into_iter().flatten() {
                    assert_eq!(target["datasource"]["uid"], "${DS_PROMETHEUS}");
                    let expr = target["expr"].as_str().unwrap_or_default();
                    let job = expr
                        .split("job=\"")
                        .nth(1)
                        .and_then(|rest| rest.split('"').next())
                        .unwrap_or_else(|| panic!("{}: no job in {expr}", t.name));
                    assert!(
                        jobs.contains(job),
                        "{}: {job} is not scraped: {jobs:?}",
                        t.name
                    );
                }
            }
        }
    }
}

/// Imported dashboards of topologies with long names keep within Grafana's
/// 40 characters and apart, though their names share the first 40.
#[test]
fn long_topology_names_give_short_distinct_uids() {
    let host = |t: &str| {
        format!(
            "topology {t} {{\n  allow = [firewall-open]\n  host a {{\n    address = \"10.0.0.1\"\n    run = [api]\n  }}\n}}\n"
        )
    };
    let (one, two) = (
        "production-europe-west-primary-region-one",
        "production-europe-west-primary-region-two",
    );
    let text = format!(
        "stack shop\n\nservice api {{\n  image = \"api:1\"\n  port http = 8080\n  metrics = http\n}}\n\n{}\n{}",
        host(one),
        host(two)
    );
    let path = std::path::Path::new("shop.stack");
    let c = stackc::compile(text.as_str(), &options(path));
    assert!(!c.has_errors(), "{:?}", c.diagnostics);
    let uid = |t: &str| -> String {
        let board: Json = serde_json::from_str(&crate::support::artifact(
            &c,
            &format!("{t}/grafana/import/services.json"),
        ))
        .unwrap_or_else(|e| panic!("{e}"));
        board["uid"].as_str().unwrap_or_default().to_string()
    };
    let (a, b) = (uid(one), uid(two));
    assert!(a.len() <= 40 && b.len() <= 40, "{a} {b}");
    assert_ne!(a, b);
    assert!(a.starts_with("stackc-services-"), "{a}");
}
