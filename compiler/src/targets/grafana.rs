//! Grafana, for a topology with a service of kind `grafana` (which mounts
//! these): `out/<topology>/grafana/provisioning/` holds the datasource (the
//! Prometheus at `$PROMETHEUS_URL`, which Grafana expands from its
//! environment: the kind sets it from its `prometheus_url`, a reference) and
//! the dashboard provider; `grafana/dashboards/` a dashboard per kind of
//! scrape job: the services' own metrics (up, and where `metrics` names them
//! the request rate, the share of errors and the 95th percentile latency, the
//! expressions the alerts read), HAProxy's backends, Patroni's nodes.
//! Serialized from typed structs.

use serde::Serialize;

use super::{header, Artifact};
use crate::diag::Diagnostics;
use crate::options::Options;
use crate::plan::{Exporter, ScrapeJob, TopologyPlan, GRAFANA_DASHBOARDS, GRAFANA_PROVISIONING};

/// The datasource's uid, which every panel names.
pub const DATASOURCE_UID: &str = "stackc-prometheus";

/// Where the kind mounts the dashboards, which the provider reads.
const DASHBOARDS_DIR: &str = "/etc/grafana/dashboards";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Datasources {
    api_version: u32,
    datasources: Vec<Datasource>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Datasource {
    name: &'static str,
    uid: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
    access: &'static str,
    url: &'static str,
    is_default: bool,
    editable: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Providers {
    api_version: u32,
    providers: Vec<Provider>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Provider {
    name: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
    disable_deletion: bool,
    allow_ui_updates: bool,
    options: ProviderOptions,
}

#[derive(Serialize)]
struct ProviderOptions {
    path: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Dashboard {
    /// What every generated JSON file says of itself (Grafana keeps fields
    /// it does not know).
    #[serde(rename = "generated_by")]
    generated_by: &'static str,
    uid: String,
    title: String,
    /// JSON has no comments: the header is the description.
    description: String,
    tags: Vec<&'static str>,
    schema_version: u32,
    refresh: &'static str,
    time: TimeRange,
    panels: Vec<Panel>,
}

#[derive(Serialize)]
struct TimeRange {
    from: &'static str,
    to: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Panel {
    id: u32,
    #[serde(rename = "type")]
    kind: &'static str,
    title: String,
    grid_pos: GridPos,
    datasource: DatasourceRef,
    targets: Vec<Target>,
    field_config: FieldConfig,
}

#[derive(Serialize)]
struct GridPos {
    x: u32,
    y: u32,
    w: u32,
    h: u32,
}

#[derive(Serialize)]
struct DatasourceRef {
    #[serde(rename = "type")]
    kind: &'static str,
    uid: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Target {
    ref_id: &'static str,
    expr: String,
    legend_format: &'static str,
    datasource: DatasourceRef,
}

#[derive(Serialize)]
struct FieldConfig {
    defaults: FieldDefaults,
}

#[derive(Serialize)]
struct FieldDefaults {
    unit: &'static str,
}

/// A panel before it is placed: title, expression, legend, unit.
struct Chart {
    title: String,
    expr: String,
    legend: &'static str,
    unit: &'static str,
}

fn datasource_ref() -> DatasourceRef {
    DatasourceRef {
        kind: "prometheus",
        uid: DATASOURCE_UID,
    }
}

pub fn generate(
    topo: &TopologyPlan,
    options: &Options,
    out: &mut super::Files<'_>,
    diags: &mut Diagnostics,
) {
    if !topo.grafana {
        return;
    }
    let datasources = Datasources {
        api_version: 1,
        datasources: vec![Datasource {
            name: "Prometheus",
            uid: DATASOURCE_UID,
            kind: "prometheus",
            access: "proxy",
            url: "$PROMETHEUS_URL",
            is_default: true,
            editable: false,
        }],
    };
    let providers = Providers {
        api_version: 1,
        providers: vec![Provider {
            name: "stackc",
            kind: "file",
            disable_deletion: true,
            allow_ui_updates: false,
            options: ProviderOptions {
                path: DASHBOARDS_DIR,
            },
        }],
    };
    let sources = format!("{GRAFANA_PROVISIONING}/datasources/stackc.yaml");
    super::push_yaml(topo, options, &sources, &datasources, out, diags);
    let provider = format!("{GRAFANA_PROVISIONING}/dashboards/stackc.yaml");
    super::push_yaml(topo, options, &provider, &providers, out, diags);
    for (file, dashboard) in dashboards(topo, options) {
        match serde_json::to_string_pretty(&dashboard) {
            Ok(body) => out.push(Artifact {
                path: format!("{}/{GRAFANA_DASHBOARDS}/{file}.json", topo.name),
                contents: format!("{body}\n"),
            }),
            Err(e) => diags.push(super::internal(topo, "Grafana dashboard", &e.to_string())),
        }
    }
}

/// A kind of scrape job, and its dashboard: file, title, the charts of a job.
struct Kind {
    exporter: Exporter,
    file: &'static str,
    title: &'static str,
    charts: fn(&ScrapeJob) -> Vec<Chart>,
}

const KINDS: [Kind; 3] = [
    Kind {
        exporter: Exporter::Service,
        file: "services",
        title: "Services",
        charts: service_charts,
    },
    Kind {
        exporter: Exporter::Haproxy,
        file: "haproxy",
        title: "HAProxy",
        charts: haproxy_charts,
    },
    Kind {
        exporter: Exporter::Patroni,
        file: "patroni",
        title: "Patroni",
        charts: patroni_charts,
    },
];

/// A dashboard per kind of job the topology's Prometheus scrapes.
fn dashboards(topo: &TopologyPlan, options: &Options) -> Vec<(&'static str, Dashboard)> {
    let of = |e: Exporter| -> Vec<&ScrapeJob> {
        topo.scrape_jobs
            .iter()
            .filter(|j| j.exporter == e)
            .collect()
    };
    let mut boards = Vec::new();
    for kind in KINDS {
        let (file, title) = (kind.file, kind.title);
        let jobs = of(kind.exporter);
        if jobs.is_empty() {
            continue;
        }
        let charts: Vec<Chart> = jobs.into_iter().flat_map(kind.charts).collect();
        let mut board = dashboard(topo, file, title, charts);
        board.description = header("", options, &topo.name)
            .lines()
            .map(str::trim)
            .collect::<Vec<_>>()
            .join(" ");
        boards.push((file, board));
    }
    boards
}

/// The charts laid out two to a row.
fn dashboard(topo: &TopologyPlan, file: &str, title: &str, charts: Vec<Chart>) -> Dashboard {
    let panels = charts
        .into_iter()
        .zip(1u32..)
        .map(|(c, id)| Panel {
            id,
            kind: "timeseries",
            title: c.title,
            grid_pos: GridPos {
                x: if id % 2 == 1 { 0 } else { 12 },
                y: (id - 1) / 2 * 8,
                w: 12,
                h: 8,
            },
            datasource: datasource_ref(),
            targets: vec![Target {
                ref_id: "A",
                expr: c.expr,
                legend_format: c.legend,
                datasource: datasource_ref(),
            }],
            field_config: FieldConfig {
                defaults: FieldDefaults { unit: c.unit },
            },
        })
        .collect();
    Dashboard {
        generated_by: "stackc",
        // Unique in the one topology a Grafana reads, and within Grafana's
        // 40 characters.
        uid: format!("stackc-{file}"),
        title: format!("{title} ({})", topo.name),
        description: String::new(),
        tags: vec!["stackc"],
        schema_version: 39,
        refresh: "30s",
        time: TimeRange {
            from: "now-6h",
            to: "now",
        },
        panels,
    }
}

fn chart(title: String, expr: String, legend: &'static str, unit: &'static str) -> Chart {
    Chart {
        title,
        expr,
        legend,
        unit,
    }
}

/// A service's targets up, and the HTTP metrics its `metrics` names.
fn service_charts(j: &ScrapeJob) -> Vec<Chart> {
    let name = &j.name;
    let selector = format!(r#"job="{name}""#);
    let mut charts = vec![chart(
        format!("{name}: targets up"),
        format!("sum by (job) (up{{{selector}}})"),
        "{{job}}",
        "short",
    )];
    if let Some((requests, status, _)) = &j.http.errors {
        charts.push(chart(
            format!("{name}: requests per second"),
            format!("sum by (job) (rate({requests}{{{selector}}}[5m]))"),
            "{{job}}",
            "reqps",
        ));
        charts.push(chart(
            format!("{name}: share of 5xx answers"),
            super::prometheus::error_ratio(&selector, requests, status),
            "{{job}}",
            "percentunit",
        ));
    }
    if let Some((latency, _)) = &j.http.latency {
        charts.push(chart(
            format!("{name}: 95th percentile latency"),
            super::prometheus::p95(&selector, latency),
            "{{job}}",
            "s",
        ));
    }
    charts
}

/// A proxy's backends: the servers each has up.
fn haproxy_charts(j: &ScrapeJob) -> Vec<Chart> {
    vec![chart(
        format!("{}: servers up per backend", j.name),
        format!(
            r#"haproxy_backend_active_servers{{job="{}", proxy!="no_route"}}"#,
            j.name
        ),
        "{{proxy}}",
        "short",
    )]
}

/// A Patroni cluster's leader, and how far each replica trails it (the
/// leader reports no replayed location).
fn patroni_charts(j: &ScrapeJob) -> Vec<Chart> {
    let selector = format!(r#"job="{}""#, j.name);
    vec![
        chart(
            format!("{}: leader", j.name),
            format!("patroni_primary{{{selector}}}"),
            "{{name}}",
            "short",
        ),
        chart(
            format!("{}: replication lag", j.name),
            format!(
                "(max by (scope) (patroni_xlog_location{{{selector}}}) - on (scope) group_right patroni_xlog_replayed_location{{{selector}}}) and on (scope, name) patroni_replica{{{selector}}} == 1"
            ),
            "{{name}}",
            "bytes",
        ),
    ]
}
