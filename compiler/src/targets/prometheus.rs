//! Prometheus: `out/<topology>/prometheus/prometheus.yml`, one scrape job per
//! service that declares `metrics`, and one per HAProxy exporter. Targets are
//! `host:port` only (the path is `metrics_path`); a job's timeout never exceeds its
//! interval. Serialized from typed structs.

use serde::Serialize;

use super::{header, yaml, Artifact};
use crate::diag::Diagnostics;
use crate::model::Duration;
use crate::options::Options;
use crate::plan::{ScrapeJob, TopologyPlan, PROMETHEUS_CONFIG};

/// Prometheus' defaults, written out so that the file says what it does.
const INTERVAL: Duration = Duration(15_000);
const TIMEOUT: Duration = Duration(10_000);

#[derive(Serialize)]
struct Config {
    global: Global,
    scrape_configs: Vec<Job>,
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
        scrape_configs: topo.scrape_jobs.iter().map(job).collect(),
    };
    match yaml::to_string(&config) {
        Ok(body) => out.push(Artifact {
            path: format!("{}/{PROMETHEUS_CONFIG}", topo.name),
            contents: format!("{}{body}", header("#", options, &topo.name)),
        }),
        Err(e) => diags.push(super::internal(topo, "Prometheus config", &e)),
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
                },
            })
            .collect(),
    }
}

fn duration(d: Duration) -> String {
    if d.0.is_multiple_of(1000) {
        format!("{}s", d.0 / 1000)
    } else {
        format!("{}ms", d.0)
    }
}
