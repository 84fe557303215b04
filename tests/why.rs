//! `stackc why` on every line of the examples' proxy configs and compose
//! files: each names the `.stack` entry that decides it, beyond the proxy or
//! the service it is in, or says which default it is; and on chosen lines,
//! the entry it names is the right one.

use stackc::why::{why, Origin};

use crate::support::{options, read, rel, root, stack_files};

/// One line's answer: the origin, and the source line it points at (or
/// `default: WHAT`).
type Answer = (Origin, String);

/// The origins of every line of every proxy config and compose file of an
/// example: (file, line, its text, its origins).
fn every_line(path: &std::path::Path) -> Vec<(String, usize, String, Vec<Answer>)> {
    let text = read(path);
    let options = options(path);
    let compilation = stackc::compile(&text, &options);
    let analysis = stackc::analyze(text.as_str(), &options, stackc::Disposal::KeepTrees);
    let mut out = Vec::new();
    for a in &compilation.artifacts {
        let Some((topology, inner)) = a.path.split_once('/') else {
            continue;
        };
        let proxy = inner.starts_with("nginx/") && inner.ends_with(".conf")
            || inner.starts_with("haproxy/") && inner.ends_with(".cfg");
        if !(proxy || inner.starts_with("compose/")) {
            continue;
        }
        for (i, l) in a.contents.lines().enumerate() {
            // Every line is answered without a panic; the ones with nothing to
            // trace are not checked further.
            let origins = why(&analysis, topology, inner, &a.contents, i + 1)
                .unwrap_or_else(|e| panic!("{}:{}: {e}", a.path, i + 1));
            let t = l.trim();
            if t.is_empty() || t.starts_with('#') || t == "}" || t == "{" {
                continue;
            }
            let answers = origins
                .into_iter()
                .map(|o| {
                    let shown = shown(&analysis, &o);
                    (o, shown)
                })
                .collect();
            out.push((a.path.clone(), i + 1, t.to_string(), answers));
        }
    }
    out
}

/// What `why` shows for an origin: the first line of its entry, or
/// `default: WHAT`.
fn shown(analysis: &stackc::Analysis, o: &Origin) -> String {
    match o.span {
        Some(s) => analysis.sources.get(s.file).text[s.start as usize..]
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_string(),
        None => format!("default: {}", o.what),
    }
}

/// The answers for the `nth` line of topology `single`'s `file` that
/// contains `needle`, as `shown` shows them.
fn answers_at(
    compilation: &stackc::Compilation,
    analysis: &stackc::Analysis,
    file: &str,
    needle: &str,
    nth: usize,
) -> Vec<String> {
    let a = compilation
        .artifacts
        .iter()
        .find(|a| a.path == format!("single/{file}"))
        .unwrap_or_else(|| panic!("no single/{file}"));
    let line = a
        .contents
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains(needle))
        .nth(nth)
        .unwrap_or_else(|| panic!("no `{needle}` in {file}"))
        .0
        + 1;
    why(analysis, "single", file, &a.contents, line)
        .unwrap_or_else(|e| panic!("{file}:{line}: {e}"))
        .iter()
        .map(|o| shown(analysis, o))
        .collect()
}

/// A proxy config's line names more than the proxy: a route, a field, a
/// domain, a service, or a default by name.
#[test]
fn every_proxy_line_names_what_decides_it() {
    let mut lines = 0;
    for path in stack_files("examples") {
        for (file, line, text, origins) in every_line(&path) {
            if file.contains("/compose/") {
                assert!(
                    !origins.is_empty(),
                    "{}: {file}:{line}: `{text}`: no answer",
                    rel(&path)
                );
                continue;
            }
            let specific = origins.iter().any(|(o, _)| !o.what.starts_with("proxy `"));
            assert!(
                specific,
                "{}: {file}:{line}: `{text}` only names the proxy: {origins:?}",
                rel(&path)
            );
            lines += 1;
        }
    }
    assert!(lines > 200, "{lines} proxy lines");
}

/// The answers for the lines of `file` that contain `needle`.
fn answers<'a>(
    all: &'a [(String, usize, String, Vec<Answer>)],
    file: &str,
    needle: &str,
) -> Vec<&'a str> {
    let found: Vec<&str> = all
        .iter()
        .filter(|(f, _, t, _)| f == file && t.contains(needle))
        .flat_map(|(_, _, _, a)| a.iter().map(|(_, shown)| shown.as_str()))
        .collect();
    assert!(!found.is_empty(), "no line `{needle}` in {file}");
    found
}

#[test]
fn proxy_and_compose_lines_name_the_entry_that_decides_them() {
    let path = root().join("examples/synthstack.stack");
    let all = every_line(&path);
    let cases = [
        // A rate limit's zone: the route's `rate`.
        ("single/nginx/edge.conf", "zone=api_http_0:10m", "rate = 10"),
        (
            "single/nginx/edge.conf",
            "limit_req zone=ml_http_1",
            "rate = 2",
        ),
        (
            "single/nginx/edge.conf",
            "least_conn",
            "strategy = least_conn",
        ),
        (
            "single/nginx/edge.conf",
            "proxy_read_timeout 300s",
            "read_timeout = 300s",
        ),
        (
            "single/nginx/edge.conf",
            "Connection $connection_upgrade",
            "websocket = true",
        ),
        // A domain's server: the route's `domain`; its certificate by ACME.
        (
            "single/nginx/edge.conf",
            "server_name api.",
            "domain = \"api.synthstack.example.com\"",
        ),
        (
            "single/nginx/edge.conf",
            "ssl_certificate /",
            "default: the certificate the ACME client obtains",
        ),
        (
            "single/nginx/edge.conf",
            "return 301",
            "default: HTTP redirected to HTTPS",
        ),
        (
            "single/nginx/edge.conf",
            "worker_processes",
            "default: nginx's settings",
        ),
        (
            "single/nginx/edge.conf",
            "limit_req_status",
            "default: status 429",
        ),
        // A health-gated dependency: the reference, and the target's check.
        (
            "single/compose/main.yml",
            "condition: service_healthy",
            "DATABASE_URL = db.url",
        ),
        (
            "single/compose/main.yml",
            "condition: service_healthy",
            "health {",
        ),
        (
            "single/compose/main.yml",
            "condition: service_completed_successfully",
            "role = task",
        ),
        ("single/compose/main.yml", "restart: \"no\"", "role = task"),
    ];
    for (file, needle, expected) in cases {
        let shown = answers(&all, file, needle);
        assert!(
            shown.iter().any(|t| t.starts_with(expected)),
            "{file}: `{needle}`: expected `{expected}` in {shown:#?}"
        );
    }
}

/// Every generated file names its source and topology where `why` reads
/// them, a dashboard's JSON too (in its `description`); only the manifest,
/// which lists the files, does not.
#[test]
fn why_reads_the_header_of_every_generated_file() {
    let mut read_json = 0;
    for path in stack_files("examples")
        .into_iter()
        .chain(stack_files("tests/cases"))
    {
        let c = stackc::compile(read(&path), &options(&path));
        for a in &c.artifacts {
            if a.path.ends_with("stackc-manifest.json") {
                continue;
            }
            let (_, topology) = stackc::why::header(&a.contents)
                .unwrap_or_else(|| panic!("{}: no header `why` reads", a.path));
            assert!(a.path.starts_with(&format!("{topology}/")), "{}", a.path);
            read_json += usize::from(a.path.ends_with(".json"));
        }
    }
    assert!(read_json > 0, "the dashboards' headers are read");
}

/// Grafana's lines: a panel names the `metrics` of the service it shows, the
/// datasource the `prometheus_url` of the Grafana that reads it.
#[test]
fn grafana_lines_name_the_metrics_and_the_prometheus_they_read() {
    let path = root().join("examples/synaxic.stack");
    let text = read(&path);
    let options = options(&path);
    let compilation = stackc::compile(&text, &options);
    let analysis = stackc::analyze(text.as_str(), &options, stackc::Disposal::KeepTrees);
    let cases = [
        (
            "grafana/dashboards/services.json",
            "\"expr\": \"sum by (job) (up",
            "metrics {",
        ),
        (
            "grafana/dashboards/services.json",
            "\"title\": \"app: 95th",
            "metrics {",
        ),
        (
            "grafana/provisioning/datasources/stackc.yaml",
            "url:",
            "prometheus_url = prometheus.url",
        ),
    ];
    for (file, needle, expected) in cases {
        let shown = answers_at(&compilation, &analysis, file, needle, 0);
        assert!(
            shown.iter().any(|s| s == expected),
            "{file} ({needle}): {shown:?}"
        );
    }
}

/// The task that makes per-service roles, and the clients' wait for it,
/// name the server's `roles` entry.
#[test]
fn roles_task_lines_name_the_roles_entry() {
    let path = root().join("tests/cases/roles.stack");
    let all = every_line(&path);
    for (file, needle) in [
        ("single/compose/main.yml", "db-roles:"),
        ("single/compose/main.yml", "PGHOST: db"),
        ("patroni/compose/a.yml", "PGTARGETSESSIONATTRS"),
    ] {
        let shown = answers(&all, file, needle);
        assert!(
            shown.contains(&"roles = per_service"),
            "{file}: `{needle}`: {shown:#?}"
        );
    }
}

/// An imported dashboard's datasource lines say that the importer picks the
/// Prometheus; its panels name the `metrics` of the service they chart.
#[test]
fn imported_dashboard_lines_name_the_input_and_the_metrics() {
    let path = root().join("examples/synthstack.stack");
    let options = options(&path);
    let text = read(&path);
    let compilation = stackc::compile(&text, &options);
    let analysis = stackc::analyze(text.as_str(), &options, stackc::Disposal::KeepTrees);
    let file = "grafana/import/services.json";
    let contents = crate::support::artifact(&compilation, &format!("single/{file}"));
    let answer = |needle: &str| -> Vec<Origin> {
        let line = contents
            .lines()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no `{needle}` in {file}"));
        why(&analysis, "single", file, &contents, line + 1).unwrap_or_else(|e| panic!("{e}"))
    };
    let input = answer("${DS_PROMETHEUS}");
    assert!(
        input
            .iter()
            .any(|o| o.span.is_none() && o.what.contains("Grafana's import")),
        "{input:?}"
    );
    let panel = answer("\"api: targets up\"");
    assert!(
        panel.iter().any(|o| o.what == "`metrics` of `api`"),
        "{panel:?}"
    );
}

/// The certificates' probe: its job and exporter name the Prometheus it is
/// added beside; each target and its module name what serves the domain
/// with TLS and where its certificate comes from.
#[test]
fn probe_lines_name_the_domain_and_its_certificate() {
    let path = root().join("tests/cases/certificates.stack");
    let text = read(&path);
    let options = options(&path);
    let compilation = stackc::compile(&text, &options);
    let analysis = stackc::analyze(text.as_str(), &options, stackc::Disposal::KeepTrees);
    let shown = |file: &str, needle: &str, nth: usize| {
        answers_at(&compilation, &analysis, file, needle, nth)
    };
    let prometheus = "service prometheus: prometheus {}".to_string();
    assert!(shown(
        "prometheus/prometheus.yml",
        "job_name: prometheus-blackbox",
        0
    )
    .contains(&prometheus));
    assert!(shown("compose/mon.yml", "prometheus-blackbox:", 0).contains(&prometheus));
    // The operator's certificate: its `tls` block, not verified.
    let api = shown("prometheus/prometheus.yml", "__param_module", 0);
    assert!(
        api.contains(&"tls \"api.example.com\" {".to_string()),
        "{api:#?}"
    );
    assert!(
        api.iter().any(|a| a.contains("without verification")),
        "{api:#?}"
    );
    // Let's Encrypt's: the service's `public_url`, and `production`.
    let app = shown("prometheus/prometheus.yml", "\"app.example.com:443\"", 0);
    assert!(
        app.contains(&"public_url = \"https://app.example.com\"".to_string()),
        "{app:#?}"
    );
    let module = shown("prometheus/prometheus.yml", "__param_module", 1);
    assert!(
        module.contains(&"production = true".to_string()),
        "{module:#?}"
    );
}
