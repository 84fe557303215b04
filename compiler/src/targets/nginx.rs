//! nginx: `out/<topology>/nginx/<proxy>.conf`, a full configuration (events, http,
//! upstreams, servers) for each nginx proxy of a topology.
//!
//! - Upstreams: one per routed service and port, with the route's strategy
//!   (`least_conn`, `ip_hash`, weights), passive health checks on every server
//!   (`max_fails=3 fail_timeout=30s`, `proxy_next_upstream`) and keepalive.
//! - Servers: one per domain (from the services' public URLs), plus the default
//!   server for routes without a domain. An https domain gets a TLS server
//!   (certificates in the Let's Encrypt layout unless the proxy names them, HSTS)
//!   and an HTTP server that answers ACME challenges and redirects to https.
//! - Every server answers the proxy's own `/health`.
//!
//! Names are resolved by nginx when it starts: upstreams on the proxy's host are
//! compose names (the proxy depends on those services), others are addresses.

use serde::Serialize;

use super::{header, templates, Artifact};
use crate::diag::Diagnostics;
use crate::model::{Duration, ProxyKind, Size, Strategy};
use crate::options::Options;
use crate::plan::{ProxyPlan, RoutePlan, TopologyPlan, Upstream};

/// The file is rendered block by block (the head, each upstream, each server and
/// each of its locations), each from a view-model of its own: a proxy of
/// thousands of routes never holds the view of all of them.
#[derive(Serialize)]
struct Head<'a> {
    header: &'a str,
    zones: &'a [Zone],
}

#[derive(Serialize)]
struct Zone {
    name: String,
    rate: u32,
}

#[derive(Serialize)]
struct UpstreamView<'a> {
    name: &'a str,
    directives: Vec<&'static str>,
    servers: Vec<String>,
}

#[derive(Serialize)]
struct ServerView {
    listen: Vec<String>,
    server_name: String,
    directives: Vec<String>,
}

#[derive(Serialize)]
struct LocationView {
    path: crate::base::Name,
    directives: Vec<String>,
}

/// A server block: its own locations, then one per route.
struct Server<'a> {
    view: ServerView,
    locations: Vec<LocationView>,
    routes: &'a [RoutePlan],
}

pub fn generate(
    topo: &TopologyPlan,
    options: &Options,
    out: &mut super::Files<'_>,
    diags: &mut Diagnostics,
) {
    for proxy in topo.proxies.iter().filter(|p| p.kind == ProxyKind::Nginx) {
        match render(proxy, &header("#", options, &topo.name)) {
            Ok(text) => out.push(Artifact {
                path: format!("{}/nginx/{}.conf", topo.name, proxy.name),
                contents: text,
            }),
            Err(e) => diags.push(super::internal(
                topo,
                &format!("nginx config of proxy `{}`", proxy.name),
                &e,
            )),
        }
        // On a host, systemd runs nginx, and the ACME script reloads it.
        if proxy.acme.is_some() && !proxy.on_host {
            start_script(topo, proxy, options, out, diags);
        }
    }
}

#[derive(Serialize)]
struct StartScript<'a> {
    header: String,
    proxy: &'a str,
    certs: &'static str,
}

/// The start script of an nginx whose ACME client installs its certificates:
/// nginx, and a loop that reloads it when they change.
fn start_script(
    topo: &TopologyPlan,
    proxy: &ProxyPlan,
    options: &Options,
    out: &mut super::Files<'_>,
    diags: &mut Diagnostics,
) {
    let model = StartScript {
        header: header("#", options, &topo.name),
        proxy: &proxy.name,
        certs: crate::plan::acme::CERTS_DIR,
    };
    let file = format!("{}-start.sh", proxy.name);
    super::node_files(
        topo,
        "nginx",
        &[(&file, "nginx-start.sh")],
        &model,
        (&proxy.name, &proxy.host),
        out,
        diags,
    );
}

fn render(proxy: &ProxyPlan, header: &str) -> Result<String, String> {
    let zones = zones(proxy);
    let mut out = Vec::with_capacity(proxy.upstreams.len() * super::ROOM_PER_SERVICE);
    let head = Head {
        header,
        zones: &zones,
    };
    templates::render_into("nginx-head", &head, &mut out)?;
    for u in &proxy.upstreams {
        templates::render_into("nginx-upstream", &upstream(u), &mut out)?;
    }
    // The zones were numbered in this order: the routes of each site.
    let mut zones = zones.iter();
    for server in servers(proxy) {
        templates::render_into("nginx-server", &server.view, &mut out)?;
        for location in &server.locations {
            templates::render_into("nginx-location", location, &mut out)?;
        }
        for route in server.routes {
            let zone = route.settings.rate.as_ref().and_then(|_| zones.next());
            templates::render_into("nginx-location", &location(route, zone), &mut out)?;
        }
        templates::render_into("nginx-server-end", &(), &mut out)?;
    }
    templates::render_into("nginx-end", &(), &mut out)?;
    String::from_utf8(out).map_err(|e| e.to_string())
}

/// A request-rate zone per rate-limited route, in the order of the sites and
/// their routes.
fn zones(proxy: &ProxyPlan) -> Vec<Zone> {
    proxy
        .sites
        .iter()
        .flat_map(|site| &site.routes)
        .filter_map(|route| Some((route, route.settings.rate.as_ref()?)))
        .enumerate()
        .map(|(i, (route, limit))| Zone {
            name: format!("{}_{i}", route.upstream),
            rate: limit.rate,
        })
        .collect()
}

fn upstream(u: &Upstream) -> UpstreamView<'_> {
    let mut directives = Vec::new();
    match u.strategy {
        Strategy::LeastConn => directives.push("least_conn"),
        Strategy::IpHash => directives.push("ip_hash"),
        Strategy::RoundRobin | Strategy::Weighted => {}
    }
    directives.push("keepalive 32");
    let servers = u
        .servers
        .iter()
        .map(|s| {
            let weight = s.weight.map(|w| format!(" weight={w}")).unwrap_or_default();
            format!("{}{weight} max_fails=3 fail_timeout=30s", s.address)
        })
        .collect();
    UpstreamView {
        name: &u.name,
        directives,
        servers,
    }
}

fn servers(proxy: &ProxyPlan) -> Vec<Server<'_>> {
    let listen = |port: u16, extra: &str| match &proxy.bind {
        Some(addr) => format!("{}{extra}", crate::grammar::host_port(addr, port)),
        None => format!("{port}{extra}"),
    };
    let mut servers = Vec::new();
    if !proxy.sites.iter().any(|s| s.domain.is_none()) {
        servers.push(Server {
            view: ServerView {
                listen: vec![listen(proxy.http, " default_server")],
                server_name: "_".into(),
                directives: Vec::new(),
            },
            locations: vec![
                health(),
                LocationView {
                    path: "/".into(),
                    directives: vec!["return 404".into()],
                },
            ],
            routes: &[],
        });
    }
    for site in &proxy.sites {
        let name = site.domain.clone().unwrap_or_else(|| "_".into());
        match (&site.domain, &site.tls) {
            (Some(domain), Some(tls)) => {
                servers.push(Server {
                    view: ServerView {
                        listen: vec![listen(proxy.http, "")],
                        server_name: domain.clone(),
                        directives: Vec::new(),
                    },
                    locations: vec![
                        LocationView {
                            path: "/.well-known/acme-challenge/".into(),
                            directives: vec!["root /var/www/certbot".into()],
                        },
                        LocationView {
                            path: "/".into(),
                            directives: vec![redirect_to_https(proxy.https)],
                        },
                    ],
                    routes: &[],
                });
                servers.push(Server {
                    view: ServerView {
                        listen: vec![listen(proxy.https, " ssl http2")],
                        server_name: domain.clone(),
                        directives: vec![
                            format!("ssl_certificate {}", tls.cert),
                            format!("ssl_certificate_key {}", tls.key),
                            "ssl_protocols TLSv1.2 TLSv1.3".into(),
                            "add_header Strict-Transport-Security \"max-age=31536000; includeSubDomains\" always".into(),
                        ],
                    },
                    locations: vec![health()],
                    routes: &site.routes,
                });
            }
            _ => servers.push(Server {
                view: ServerView {
                    listen: vec![listen(
                        proxy.http,
                        if site.domain.is_none() {
                            " default_server"
                        } else {
                            ""
                        },
                    )],
                    server_name: name,
                    directives: Vec::new(),
                },
                locations: vec![health()],
                routes: &site.routes,
            }),
        }
    }
    servers
}

/// The redirect of plain HTTP to the proxy's https port (`$host` has no port;
/// 443 is the one a URL may leave out).
fn redirect_to_https(port: u16) -> String {
    if port == 443 {
        "return 301 https://$host$request_uri".into()
    } else {
        format!("return 301 https://$host:{port}$request_uri")
    }
}

fn health() -> LocationView {
    LocationView {
        path: "= /health".into(),
        directives: vec![
            "access_log off".into(),
            "default_type text/plain".into(),
            "return 200 \"OK\\n\"".into(),
        ],
    }
}

fn location(route: &RoutePlan, zone: Option<&Zone>) -> LocationView {
    let mut d = Vec::new();
    if let (Some(limit), Some(zone)) = (&route.settings.rate, zone) {
        d.push(format!(
            "limit_req zone={} burst={} nodelay",
            zone.name, limit.burst
        ));
        d.push(format!("limit_req_status {}", limit.status));
    }
    let target = if route.settings.strip_prefix && route.path.ends_with('/') {
        format!("http://{}/", route.upstream)
    } else {
        format!("http://{}", route.upstream)
    };
    d.push(format!("proxy_pass {target}"));
    d.push("proxy_http_version 1.1".into());
    if route.settings.websocket {
        d.push("proxy_set_header Upgrade $http_upgrade".into());
        d.push("proxy_set_header Connection $connection_upgrade".into());
    } else {
        // Keepalive connections to the upstream.
        d.push("proxy_set_header Connection \"\"".into());
    }
    d.push("proxy_set_header Host $host".into());
    d.push("proxy_set_header X-Real-IP $remote_addr".into());
    d.push("proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for".into());
    d.push("proxy_set_header X-Forwarded-Proto $scheme".into());
    d.push("proxy_set_header X-Forwarded-Host $host".into());
    for (directive, value) in [
        ("proxy_connect_timeout", route.settings.connect_timeout),
        ("proxy_send_timeout", route.settings.send_timeout),
        ("proxy_read_timeout", route.settings.read_timeout),
    ] {
        if let Some(v) = value {
            d.push(format!("{directive} {}", seconds(v)));
        }
    }
    if let Some(size) = route.settings.body_size {
        d.push(format!("client_max_body_size {}", body_size(size)));
    }
    d.push("proxy_next_upstream error timeout http_502 http_503 http_504".into());
    LocationView {
        path: route.path.clone(),
        directives: d,
    }
}

fn seconds(d: Duration) -> String {
    if d.0.is_multiple_of(1000) {
        format!("{}s", d.0 / 1000)
    } else {
        format!("{}ms", d.0)
    }
}

/// nginx sizes: `k` and `m` are binary.
pub(crate) fn body_size(s: Size) -> String {
    const K: u64 = 1024;
    if s.0 >= K * K && s.0.is_multiple_of(K * K) {
        format!("{}m", s.0 / (K * K))
    } else if s.0 >= K && s.0.is_multiple_of(K) {
        format!("{}k", s.0 / K)
    } else {
        s.0.to_string()
    }
}
