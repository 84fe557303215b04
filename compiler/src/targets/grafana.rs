//! Grafana, for a topology with a service of kind `grafana` (which mounts
//! these): `out/<topology>/grafana/provisioning/` holds the datasource (the
//! Prometheus at `$PROMETHEUS_URL`, which Grafana expands from its
//! environment: the kind sets it from its `prometheus_url`, a reference) and
//! the dashboard provider; `grafana/dashboards/` a dashboard per kind of
//! scrape job: the services' own metrics (up, and where `metrics` names them
//! the request rate, the share of errors and the 95th percentile latency, the
//! expressions the alerts read), HAProxy's backends, Patroni's nodes. A
//! topology whose metrics another Grafana reads (no `grafana` service here,
//! the seed guides' "Import dashboard JSON") gets the same dashboards in
//! `grafana/import/`, in the form Grafana's import reads: the Prometheus is
//! an input (`${DS_PROMETHEUS}`) the importer picks. Serialized from typed
//! structs.

use serde::Serialize;

use super::{header, Artifact};
use crate::diag::Diagnostics;
use crate::options::Options;
use crate::plan::{Exporter, ScrapeJob, TopologyPlan, GRAFANA_DASHBOARDS, GRAFANA_PROVISIONING};

/// The datasource's uid, which every panel names.
pub const DATASOURCE_UID: &str = "stackc-prometheus";

/// Where the kind mounts the dashboards, which the provider reads.
const DASHBOARDS_DIR: &str = "/etc/grafana/dashboards";

/// The directory of the dashboards for a Grafana outside the topology.
pub const IMPORT_DIR: &str = "grafana/import";

/// The input an imported dashboard's panels name for their Prometheus.
pub const IMPORT_INPUT: &str = "DS_PROMETHEUS";

/// Whom a dashboard is for: the topology's Grafana, which provisions it with
/// the generated datasource, or another, whose user imports it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reader {
    Provisioned,
    Imported,
}

impl Reader {
    fn datasource(self) -> DatasourceRef {
        DatasourceRef {
            kind: "prometheus",
            uid: match self {
                Reader::Provisioned => DATASOURCE_UID,
                Reader::Imported => "${DS_PROMETHEUS}",
            },
        }
    }
}

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
    /// What Grafana's import asks the importer for: the Prometheus.
    #[serde(rename = "__inputs", skip_serializing_if = "Vec::is_empty")]
    inputs: Vec<Input>,
    tags: Vec<&'static str>,
    schema_version: u32,
    refresh: &'static str,
    time: TimeRange,
    panels: Vec<Panel>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Input {
    name: &'static str,
    label: &'static str,
    description: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
    plugin_id: &'static str,
    plugin_name: &'static str,
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

pub fn generate(
    topo: &TopologyPlan,
    options: &Options,
    out: &mut super::Files<'_>,
    diags: &mut Diagnostics,
) {
    if !topo.grafana {
        if topo.prometheus_config {
            push_dashboards(topo, options, Reader::Imported, out, diags);
        }
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
    push_dashboards(topo, options, Reader::Provisioned, out, diags);
}

fn push_dashboards(
    topo: &TopologyPlan,
    options: &Options,
    reader: Reader,
    out: &mut super::Files<'_>,
    diags: &mut Diagnostics,
) {
    let dir = match reader {
        Reader::Provisioned => GRAFANA_DASHBOARDS,
        Reader::Imported => IMPORT_DIR,
    };
    for (file, dashboard) in dashboards(topo, options, reader) {
        match serde_json::to_string_pretty(&dashboard) {
            Ok(body) => out.push(Artifact {
                path: format!("{}/{dir}/{file}.json", topo.name),
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

const KINDS: [Kind; 4] = [
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
    Kind {
        exporter: Exporter::Blackbox,
        file: "certificates",
        title: "Certificates",
        charts: certificate_charts,
    },
];

/// A dashboard per kind of job the topology's Prometheus scrapes.
fn dashboards(
    topo: &TopologyPlan,
    options: &Options,
    reader: Reader,
) -> Vec<(&'static str, Dashboard)> {
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
        let mut board = dashboard(topo, file, title, charts, reader);
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
fn dashboard(
    topo: &TopologyPlan,
    file: &str,
    title: &str,
    charts: Vec<Chart>,
    reader: Reader,
) -> Dashboard {
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
            datasource: reader.datasource(),
            targets: vec![Target {
                ref_id: "A",
                expr: c.expr,
                legend_format: c.legend,
                datasource: reader.datasource(),
            }],
            field_config: FieldConfig {
                defaults: FieldDefaults { unit: c.unit },
            },
        })
        .collect();
    Dashboard {
        generated_by: "stackc",
        uid: uid(topo, file, reader),
        title: format!("{title} ({})", topo.name),
        description: String::new(),
        inputs: match reader {
            Reader::Provisioned => Vec::new(),
            Reader::Imported => vec![Input {
                name: IMPORT_INPUT,
                label: "Prometheus",
                description: "the Prometheus that scrapes the topology's jobs",
                kind: "datasource",
                plugin_id: "prometheus",
                plugin_name: "Prometheus",
            }],
        },
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

/// A dashboard's uid, within Grafana's 40 characters: unique in the one
/// topology a provisioned Grafana reads; an imported one is unique in a
/// Grafana that reads several topologies (and stacks): the topology's name,
/// or a hash of it where that would be too long.
fn uid(topo: &TopologyPlan, file: &str, reader: Reader) -> String {
    match reader {
        Reader::Provisioned => format!("stackc-{file}"),
        Reader::Imported => {
            let named = format!("stackc-{}-{}-{file}", topo.namespace, topo.name);
            if named.len() <= 40 {
                named
            } else {
                let hash = super::fnv1a(format!("{}/{}", topo.namespace, topo.name).as_bytes());
                format!("stackc-{file}-{:08x}", hash as u32)
            }
        }
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

/// The certificates the Blackbox exporter probes: the days each has left,
/// and whether the handshake with each domain succeeds (what the alerts
/// read).
fn certificate_charts(j: &ScrapeJob) -> Vec<Chart> {
    let selector = format!(r#"job="{}""#, j.name);
    vec![
        chart(
            "certificates: days left".into(),
            format!("(probe_ssl_earliest_cert_expiry{{{selector}}} - time()) / 86400"),
            "{{instance}}",
            "d",
        ),
        chart(
            "certificates: TLS handshake succeeds".into(),
            format!("probe_success{{{selector}}}"),
            "{{instance}}",
            "short",
        ),
    ]
}
