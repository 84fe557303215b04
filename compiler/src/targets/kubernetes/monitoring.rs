//! Metrics on Kubernetes (docs/targets.md, "kubernetes"): the cluster's
//! Prometheus finds each service with `metrics` by a Prometheus Operator
//! `PodMonitor` in the service's file (`scrape = pod_monitor`, the default),
//! or by the `prometheus.io/*` annotations of its pods (`scrape =
//! annotations`), which a Prometheus's `kubernetes_sd` pod role relabels.
//! A PodMonitor rather than a ServiceMonitor: a service may have several
//! Services (a LoadBalancer, a headless one) over the same pods, and a
//! ServiceMonitor would scrape each pod once per Service. A CloudNativePG
//! cluster's metrics are its instances' exporter.

use serde::Serialize;

use super::*;
use crate::diag::{Code, Diagnostic};
use crate::model::Scrape;
use crate::plan::Metrics;

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

/// W0504: the annotations carry no interval or timeout (the scraper's own
/// apply).
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
