//! HAProxy: `out/<topology>/haproxy/<proxy>.conf`, for each HAProxy proxy of a
//! topology.
//!
//! - One frontend: the routes as ACLs on host and path prefix, longest prefix
//!   first; TLS with one PEM per domain (chain and key together), HSTS, HTTP to
//!   HTTPS redirect for TLS domains; `monitor-uri /health`; forwarded headers.
//! - Per route: a rate limit as a stick table (`http_req_rate(1s)`, denied with
//!   the route's status past `rate + burst`), a request body limit (413), and
//!   prefix stripping.
//! - One backend per routed service and port: the route's balancing, active HTTP
//!   checks on the service's health path (`option httpchk` with `http-check
//!   expect`), `redispatch` and retries, the route's timeouts.
//! - Compose names are resolved at run time through Docker's DNS (`resolvers` and
//!   `init-addr last,libc,none`), so HAProxy starts even before they resolve;
//!   replicas are discovered with `server-template`.
//! - The stats page and the Prometheus exporter listen on the host's private
//!   address only.

use serde::Serialize;

use super::{header, templates, Artifact};
use crate::diag::Diagnostics;
use crate::model::{Duration, ProxyKind, Size, Strategy};
use crate::options::Options;
use crate::plan::acme::CHALLENGE_PORT;
use crate::plan::{ProxyPlan, TopologyPlan, Upstream, HAPROXY_METRICS_PORT, HAPROXY_STATS_PORT};

#[derive(Serialize)]
struct HaproxyCfg {
    header: String,
    sections: Vec<Section>,
}

#[derive(Serialize)]
struct Section {
    title: String,
    lines: Vec<String>,
}

/// Renders titled sections of lines as an HAProxy config.
pub(crate) fn render(header: &str, sections: Vec<(String, Vec<String>)>) -> Result<String, String> {
    let model = HaproxyCfg {
        header: header.to_string(),
        sections: sections
            .into_iter()
            .map(|(title, lines)| Section { title, lines })
            .collect(),
    };
    templates::render("haproxy", &model)
}

fn section(title: impl Into<String>, lines: Vec<String>) -> Section {
    Section {
        title: title.into(),
        lines,
    }
}

pub fn generate(
    topo: &TopologyPlan,
    options: &Options,
    out: &mut super::Files<'_>,
    diags: &mut Diagnostics,
) {
    for proxy in topo.proxies.iter().filter(|p| p.kind == ProxyKind::Haproxy) {
        let model = HaproxyCfg {
            header: header("#", options, &topo.name),
            sections: sections(proxy),
        };
        match templates::render("haproxy", &model) {
            Ok(text) => out.push(Artifact {
                path: format!("{}/haproxy/{}.cfg", topo.name, proxy.name),
                contents: text,
            }),
            Err(e) => diags.push(super::internal(
                topo,
                &format!("HAProxy config of proxy `{}`", proxy.name),
                &e,
            )),
        }
        if proxy.acme.is_some() && !proxy.on_host {
            let model = StartScript {
                header: header("#", options, &topo.name),
                proxy: &proxy.name,
                certs: crate::plan::acme::CERTS_DIR,
                config: CONFIG_PATH,
            };
            let file = format!("{}-start.sh", proxy.name);
            super::node_files(
                topo,
                "haproxy",
                &[(&file, "haproxy-start.sh")],
                &model,
                (&proxy.name, &proxy.host),
                out,
                diags,
            );
        }
    }
}

/// The start script of a HAProxy whose ACME client installs its
/// certificates: HAProxy in master-worker mode, and a loop that reloads it
/// when they change.
#[derive(Serialize)]
struct StartScript<'a> {
    header: String,
    proxy: &'a str,
    certs: &'static str,
    config: &'static str,
}

/// Where the config is mounted in the container.
const CONFIG_PATH: &str = "/usr/local/etc/haproxy/haproxy.cfg";

fn sections(proxy: &ProxyPlan) -> Vec<Section> {
    let by_name = (proxy.acme.is_some() && !proxy.on_host)
        || proxy
            .upstreams
            .iter()
            .any(|u| u.servers.iter().any(|s| s.by_name));
    let mut out = vec![
        section(
            "global",
            vec!["log stdout format raw local0".into(), "maxconn 4096".into()],
        ),
        section(
            "defaults",
            vec![
                "log global".into(),
                "mode http".into(),
                "option httplog".into(),
                "option dontlognull".into(),
                "option forwardfor".into(),
                // A connection refused by a dead server is retried on another one.
                "option redispatch".into(),
                "retries 3".into(),
                "timeout connect 5s".into(),
                "timeout client 60s".into(),
                "timeout server 60s".into(),
                "timeout http-request 10s".into(),
                "timeout tunnel 1h".into(),
                "timeout check 5s".into(),
                // Start even when a name does not resolve yet; resolve it later.
                "default-server init-addr last,libc,none".into(),
            ],
        ),
    ];
    if by_name {
        out.push(section(
            "resolvers docker",
            vec![
                "nameserver dns 127.0.0.11:53".into(),
                "resolve_retries 3".into(),
                "timeout resolve 1s".into(),
                "timeout retry 1s".into(),
                "hold valid 10s".into(),
            ],
        ));
    }
    let (frontend, rate_tables) = frontend(proxy);
    out.push(section("frontend web", frontend));
    for upstream in &proxy.upstreams {
        out.push(section(
            format!("backend {}", upstream.name),
            backend(upstream),
        ));
    }
    if proxy.acme.is_some() {
        // The challenge, to the ACME client, which serves it while it
        // obtains: its container, or on the host's loopback.
        let server = if proxy.on_host {
            format!("server acme 127.0.0.1:{CHALLENGE_PORT}")
        } else {
            format!(
                "server acme {}:{CHALLENGE_PORT} resolvers docker init-addr none",
                crate::plan::acme::client_name(&proxy.name)
            )
        };
        out.push(section("backend acme", vec![server]));
    }
    out.push(section(
        "backend no_route",
        vec![
            "http-request return status 404 content-type text/plain string \"no route\\n\"".into(),
        ],
    ));
    for table in rate_tables {
        out.push(section(
            format!("backend {table}"),
            vec!["stick-table type ip size 100k expire 30s store http_req_rate(1s)".into()],
        ));
    }
    let private = |port: u16| match (&proxy.on_host, &proxy.private_address) {
        (true, Some(a)) => format!("bind {}", crate::grammar::host_port(a, port)),
        (true, None) => format!("bind 127.0.0.1:{port}"),
        // In a container: its own interface, published on the host's private address.
        (false, _) => format!("bind :{port}"),
    };
    out.push(section(
        "listen stats",
        vec![
            private(HAPROXY_STATS_PORT),
            "stats enable".into(),
            "stats uri /".into(),
            "stats refresh 10s".into(),
        ],
    ));
    out.push(section(
        "frontend metrics",
        vec![
            private(HAPROXY_METRICS_PORT),
            "http-request use-service prometheus-exporter if { path /metrics }".into(),
            "http-request set-log-level silent".into(),
        ],
    ));
    out
}

/// The frontend's lines, and the stick tables its rate limits use.
fn frontend(proxy: &ProxyPlan) -> (Vec<String>, Vec<String>) {
    let mut lines = Vec::new();
    let bind = |port: u16| match &proxy.bind {
        Some(addr) => crate::grammar::host_port(addr, port),
        None => format!(":{port}"),
    };
    lines.push(format!("bind {}", bind(proxy.http)));
    let certs: Vec<String> = proxy
        .sites
        .iter()
        .filter_map(|s| s.tls.as_ref().map(|t| format!("crt {}", t.cert)))
        .collect();
    if !certs.is_empty() {
        lines.push(format!(
            "bind {} ssl {}",
            bind(proxy.https),
            certs.join(" ")
        ));
    }
    lines.push("monitor-uri /health".into());
    lines.push("http-request set-header X-Forwarded-Proto https if { ssl_fc }".into());
    lines.push("http-request set-header X-Forwarded-Proto http if !{ ssl_fc }".into());
    lines.push("http-request set-header X-Forwarded-Host %[req.hdr(host)]".into());
    lines.push("http-request set-header X-Real-IP %[src]".into());
    // The ACME challenge reaches the client over plain HTTP, before any
    // redirect to https.
    let challenge = if proxy.acme.is_some() {
        lines.push("acl acme_challenge path_beg /.well-known/acme-challenge/".into());
        " !acme_challenge"
    } else {
        ""
    };
    let mut tables = Vec::new();
    let mut uses = Vec::new();
    let mut acl = 0;
    let mut hsts = false;
    // A rewritten path would no longer match the ACLs that `use_backend` (run
    // after every `http-request` rule) tests: with a stripped prefix, each
    // request's route is chosen once, into `txn.route`, before any rewrite.
    let by_var = proxy
        .sites
        .iter()
        .flat_map(|s| &s.routes)
        .any(|r| r.settings.strip_prefix);
    // Domains first (longest prefixes first within each), then the default server.
    let mut sites: Vec<_> = proxy.sites.iter().collect();
    sites.sort_by_key(|s| s.domain.is_none());
    for site in sites {
        let host_cond = match &site.domain {
            Some(domain) => {
                let name = format!("host_{}", domain.replace(['.', '-'], "_"));
                lines.push(format!("acl {name} hdr(host),field(1,:) -i {domain}"));
                if site.tls.is_some() {
                    lines.push(format!(
                        "http-request redirect {} code 301 if {name} !{{ ssl_fc }}{challenge}",
                        redirect_to_https(proxy)
                    ));
                    // A response has no request headers to test: the request
                    // marks the answers that get HSTS.
                    lines.push(format!(
                        "http-request set-var(txn.hsts) bool(true) if {name} {{ ssl_fc }}"
                    ));
                    hsts = true;
                }
                format!("{name} ")
            }
            None => String::new(),
        };
        for route in &site.routes {
            acl += 1;
            let path = format!("path_{acl}");
            lines.push(format!("acl {path} path_beg {}", route.path));
            let cond = if by_var {
                lines.push(format!(
                    "http-request set-var(txn.route) int({acl}) if {host_cond}{path} !{{ var(txn.route) -m found }}"
                ));
                format!("{{ var(txn.route) -m int {acl} }}")
            } else {
                format!("{host_cond}{path}")
            };
            if let Some(limit) = &route.settings.rate {
                let table = format!("rate_{acl}");
                lines.push(format!(
                    "http-request track-sc0 src table {table} if {cond}"
                ));
                lines.push(format!(
                    "http-request deny deny_status {} if {cond} {{ sc_http_req_rate(0,{table}) gt {} }}",
                    limit.status,
                    limit.rate + limit.burst
                ));
                tables.push(table);
            }
            if let Some(size) = route.settings.body_size {
                lines.push(format!(
                    "http-request deny deny_status 413 if {cond} {{ req.hdr_val(content-length) gt {} }}",
                    bytes(size)
                ));
            }
            if route.settings.strip_prefix && route.path.ends_with('/') {
                lines.push(format!(
                    "http-request replace-path ^{}(.*) /\\1 if {cond}",
                    regex_escape(&route.path)
                ));
            }
            uses.push(format!("use_backend {} if {cond}", route.upstream));
        }
    }
    if hsts {
        lines.push("http-response set-header Strict-Transport-Security \"max-age=31536000; includeSubDomains\" if { var(txn.hsts) -m bool }".into());
    }
    if proxy.acme.is_some() {
        lines.push("use_backend acme if acme_challenge".into());
    }
    lines.extend(uses);
    lines.push("default_backend no_route".into());
    (lines, tables)
}

/// Where plain HTTP is redirected: `scheme https` keeps the Host header, port
/// and all, which is right only from port 80 to 443; else the host without its
/// port, then the proxy's https port.
fn redirect_to_https(proxy: &ProxyPlan) -> String {
    if proxy.http == 80 && proxy.https == 443 {
        "scheme https".into()
    } else {
        let port = if proxy.https == 443 {
            String::new()
        } else {
            format!(":{}", proxy.https)
        };
        format!("location https://%[req.hdr(host),field(1,:)]{port}%[capture.req.uri]")
    }
}

fn backend(u: &Upstream) -> Vec<String> {
    let mut lines = vec![format!(
        "balance {}",
        match u.strategy {
            Strategy::LeastConn => "leastconn",
            Strategy::IpHash => "source",
            Strategy::RoundRobin | Strategy::Weighted => "roundrobin",
        }
    )];
    let mut check = "";
    if let Some(h) = &u.health {
        lines.push(format!("option httpchk GET {}", h.path));
        lines.push("http-check expect status 200".into());
        lines.push(format!(
            "default-server inter {} fastinter 500ms fall {} rise 2",
            duration(h.interval),
            h.fall
        ));
        check = " check";
    }
    if let Some(t) = u.connect_timeout {
        lines.push(format!("timeout connect {}", duration(t)));
    }
    if let Some(t) = u.read_timeout {
        lines.push(format!("timeout server {}", duration(t)));
    }
    for (i, s) in u.servers.iter().enumerate() {
        let weight = s.weight.map(|w| format!(" weight {w}")).unwrap_or_default();
        let name = format!("{}-{}", u.service, i + 1);
        if s.by_name && s.replicas > 1 {
            lines.push(format!(
                "server-template {name}- {} {}{check}{weight} resolvers docker init-addr none",
                s.replicas, s.address
            ));
        } else if s.by_name {
            lines.push(format!(
                "server {name} {}{check}{weight} resolvers docker",
                s.address
            ));
        } else {
            lines.push(format!("server {name} {}{check}{weight}", s.address));
        }
    }
    lines
}

fn duration(d: Duration) -> String {
    if d.0.is_multiple_of(1000) {
        format!("{}s", d.0 / 1000)
    } else {
        format!("{}ms", d.0)
    }
}

fn bytes(s: Size) -> u64 {
    s.0
}

fn regex_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if ".^$*+?()[]{}|\\".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
