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
use crate::plan::{ProxyPlan, RoutePlan, TopologyPlan};
use crate::Options;

#[derive(Serialize)]
struct NginxConf {
    header: String,
    zones: Vec<Zone>,
    upstreams: Vec<UpstreamView>,
    servers: Vec<ServerView>,
}

#[derive(Serialize)]
struct Zone {
    name: String,
    rate: u32,
}

#[derive(Serialize)]
struct UpstreamView {
    name: String,
    directives: Vec<String>,
    servers: Vec<String>,
}

#[derive(Serialize)]
struct ServerView {
    listen: Vec<String>,
    server_name: String,
    directives: Vec<String>,
    locations: Vec<LocationView>,
}

#[derive(Serialize)]
struct LocationView {
    path: String,
    directives: Vec<String>,
}

pub fn generate(
    topo: &TopologyPlan,
    options: &Options,
    out: &mut super::Files<'_>,
    diags: &mut Diagnostics,
) {
    for proxy in topo.proxies.iter().filter(|p| p.kind == ProxyKind::Nginx) {
        let model = model(proxy, header("#", options, &topo.name));
        match templates::render("nginx", &model) {
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
    }
}

fn model(proxy: &ProxyPlan, header: String) -> NginxConf {
    let mut zones = Vec::new();
    let upstreams = proxy
        .upstreams
        .iter()
        .map(|u| {
            let mut directives = Vec::new();
            match u.strategy {
                Strategy::LeastConn => directives.push("least_conn".to_string()),
                Strategy::IpHash => directives.push("ip_hash".to_string()),
                Strategy::RoundRobin | Strategy::Weighted => {}
            }
            let servers = u
                .servers
                .iter()
                .map(|s| {
                    let weight = s.weight.map(|w| format!(" weight={w}")).unwrap_or_default();
                    format!("{}{weight} max_fails=3 fail_timeout=30s", s.address)
                })
                .collect();
            directives.push("keepalive 32".to_string());
            UpstreamView {
                name: u.name.clone(),
                directives,
                servers,
            }
        })
        .collect();
    let listen = |port: u16, extra: &str| match &proxy.bind {
        Some(addr) => format!("{addr}:{port}{extra}"),
        None => format!("{port}{extra}"),
    };
    let mut servers = Vec::new();
    if !proxy.sites.iter().any(|s| s.domain.is_none()) {
        servers.push(ServerView {
            listen: vec![listen(proxy.http, " default_server")],
            server_name: "_".into(),
            directives: Vec::new(),
            locations: vec![
                health(),
                LocationView {
                    path: "/".into(),
                    directives: vec!["return 404".into()],
                },
            ],
        });
    }
    for site in &proxy.sites {
        let name = site.domain.clone().unwrap_or_else(|| "_".into());
        let mut locations = vec![health()];
        for route in &site.routes {
            locations.push(location(route, &mut zones));
        }
        match (&site.domain, &site.tls) {
            (Some(domain), Some(tls)) => {
                servers.push(ServerView {
                    listen: vec![listen(proxy.http, "")],
                    server_name: domain.clone(),
                    directives: Vec::new(),
                    locations: vec![
                        LocationView {
                            path: "/.well-known/acme-challenge/".into(),
                            directives: vec!["root /var/www/certbot".into()],
                        },
                        LocationView {
                            path: "/".into(),
                            directives: vec!["return 301 https://$host$request_uri".into()],
                        },
                    ],
                });
                servers.push(ServerView {
                    listen: vec![listen(proxy.https, " ssl http2")],
                    server_name: domain.clone(),
                    directives: vec![
                        format!("ssl_certificate {}", tls.cert),
                        format!("ssl_certificate_key {}", tls.key),
                        "ssl_protocols TLSv1.2 TLSv1.3".into(),
                        "add_header Strict-Transport-Security \"max-age=31536000; includeSubDomains\" always".into(),
                    ],
                    locations,
                });
            }
            _ => servers.push(ServerView {
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
                locations,
            }),
        }
    }
    NginxConf {
        header,
        zones,
        upstreams,
        servers,
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

fn location(route: &RoutePlan, zones: &mut Vec<Zone>) -> LocationView {
    let mut d = Vec::new();
    if let Some(limit) = &route.rate {
        let zone = format!("{}_{}", route.upstream, zones.len());
        d.push(format!(
            "limit_req zone={zone} burst={} nodelay",
            limit.burst
        ));
        d.push(format!("limit_req_status {}", limit.status));
        zones.push(Zone {
            name: zone,
            rate: limit.rate,
        });
    }
    let target = if route.strip_prefix && route.path.ends_with('/') {
        format!("http://{}/", route.upstream)
    } else {
        format!("http://{}", route.upstream)
    };
    d.push(format!("proxy_pass {target}"));
    d.push("proxy_http_version 1.1".into());
    if route.websocket {
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
        ("proxy_connect_timeout", route.connect_timeout),
        ("proxy_send_timeout", route.send_timeout),
        ("proxy_read_timeout", route.read_timeout),
    ] {
        if let Some(v) = value {
            d.push(format!("{directive} {}", seconds(v)));
        }
    }
    if let Some(size) = route.body_size {
        d.push(format!("client_max_body_size {}", body_size(size)));
    }
    d.push("proxy_next_upstream error timeout http_502 http_503 http_504".into());
    LocationView {
        path: route.path.clone(),
        directives: d,
    }
}

fn seconds(d: Duration) -> String {
    if d.0 % 1000 == 0 {
        format!("{}s", d.0 / 1000)
    } else {
        format!("{}ms", d.0)
    }
}

/// nginx sizes: `k` and `m` are binary.
fn body_size(s: Size) -> String {
    const K: u64 = 1024;
    if s.0 >= K * K && s.0 % (K * K) == 0 {
        format!("{}m", s.0 / (K * K))
    } else if s.0 >= K && s.0 % K == 0 {
        format!("{}k", s.0 / K)
    } else {
        s.0.to_string()
    }
}
