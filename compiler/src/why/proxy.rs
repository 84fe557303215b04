//! `why` for a line of a proxy's config. The line is placed in its block (an
//! nginx `location`, `server` or `upstream`; an HAProxy `frontend` or
//! `backend`), then its directive is traced: to the route's field that writes
//! it (`rate`, `read_timeout`, `websocket`, ...), to the proxy's `tls` entry of
//! the server's domain, to the service whose placements an upstream lists, or
//! to the default it is, by name (a line no `.stack` entry decides).

use super::{block, Finder, Origin};
use crate::syntax::{Entry, EntryValue, Label, Value, ValueKind};

/// The origins of line `line` (1-based) of proxy `proxy`'s config `text`.
pub(super) fn origins(f: &Finder<'_>, proxy: &Entry, text: &str, line: usize) -> Vec<Origin> {
    let lines: Vec<&str> = text.lines().collect();
    let Some(this) = lines.get(line.saturating_sub(1)).map(|l| l.trim()) else {
        return Vec::new();
    };
    let words: Vec<&str> = this.trim_end_matches(';').split_whitespace().collect();
    let haproxy = lines
        .iter()
        .any(|l| l.starts_with("frontend ") || l.starts_with("backend "));
    let mut out = if haproxy {
        haproxy_line(f, proxy, &lines, line, &words)
    } else {
        nginx_line(f, proxy, &lines, line, &words)
    };
    out.push(Origin::at(
        format!("proxy `{}`", proxy.label_name().unwrap_or_default()),
        proxy.span(),
    ));
    out
}

/// The headers of the blocks around line `line` (1-based), innermost first:
/// `location /api/ {`, `server {`, `http {`.
fn enclosing<'t>(lines: &[&'t str], line: usize) -> Vec<&'t str> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    for l in lines[..line.saturating_sub(1).min(lines.len())]
        .iter()
        .rev()
    {
        let t = l.trim();
        if t.starts_with('}') {
            depth += 1;
        } else if t.ends_with('{') {
            if depth == 0 {
                out.push(t);
            } else {
                depth -= 1;
            }
        }
    }
    out
}

/// The lines of the block whose header is line `header` (0-based), trimmed,
/// nested blocks included.
fn block_lines<'l, 't>(lines: &'l [&'t str], header: usize) -> impl Iterator<Item = &'t str> + 'l {
    let mut depth = 0usize;
    lines[header..]
        .iter()
        .map(|l| l.trim())
        .take_while(move |l| {
            if l.ends_with('{') {
                depth += 1;
            } else if l.starts_with('}') {
                depth = depth.saturating_sub(1);
                return depth > 0;
            }
            true
        })
}

/// The `server_name` of the server block whose header is line `header`.
fn server_name<'t>(lines: &[&'t str], header: usize) -> Option<&'t str> {
    block_lines(lines, header)
        .find_map(|l| l.strip_prefix("server_name "))
        .map(|n| n.trim_end_matches(';'))
}

fn nginx_line(
    f: &Finder<'_>,
    proxy: &Entry,
    lines: &[&str],
    line: usize,
    words: &[&str],
) -> Vec<Origin> {
    let blocks = enclosing(lines, line);
    let inner: Vec<&str> = blocks
        .first()
        .map(|h| h.split_whitespace().collect())
        .unwrap_or_default();
    // The server block this line is in (or is the header of).
    let server_at = (0..line)
        .rev()
        .find(|&i| lines.get(i).is_some_and(|l| l.trim() == "server {"));
    let in_server = blocks.contains(&"server {") || words == ["server", "{"];
    let domain = server_at
        .filter(|_| in_server)
        .and_then(|i| server_name(lines, i));
    // The port-80 server of a domain with HTTPS redirects every path but the
    // ACME challenge's: its `location /` is no route.
    let redirect = in_server
        && server_at.is_some_and(|i| block_lines(lines, i).any(|l| l.starts_with("return 301 ")));
    let acme_path = "/.well-known/acme-challenge/";
    let acme = inner.get(1) == Some(&acme_path) || words.get(1) == Some(&acme_path);
    if redirect && !acme {
        return server_directive(f, proxy, domain, &["return", "301"]);
    }
    match (inner.as_slice(), words) {
        (["location", "=", ..], _) | (_, ["location", "=", ..]) => vec![Origin::default(
            "the proxy's own health check (`/health`), on every proxy",
        )],
        _ if acme => {
            let mut out = vec![Origin::default(
                "the ACME client's HTTP challenge, for the domain's certificate",
            )];
            out.extend(domain_origins(f, proxy, domain, "the certificate of"));
            out
        }
        (["location", path, ..], _) => route_directive(f, path, words),
        (["upstream", name, ..], _) => upstream_directive(f, name, words),
        (_, ["location", path, ..]) => route_directive(f, path, &[]),
        (_, ["upstream", name, ..]) => upstream_directive(f, name, &[]),
        (_, ["limit_req_zone", .., zone, _rate]) => {
            // The location that uses the zone names the route.
            let name = zone
                .trim_start_matches("zone=")
                .split(':')
                .next()
                .unwrap_or_default();
            let user = lines
                .iter()
                .position(|l| l.trim().starts_with(&format!("limit_req zone={name} ")));
            match user.and_then(|i| enclosing(lines, i + 1).first().copied()) {
                Some(h) => {
                    let path = h.split_whitespace().nth(1).unwrap_or_default();
                    route_directive(f, path, &["limit_req"])
                }
                None => Vec::new(),
            }
        }
        _ if in_server => server_directive(f, proxy, domain, words),
        _ => vec![Origin::default(
            "nginx's settings for every proxy (logs, workers, WebSocket upgrades)",
        )],
    }
}

/// A line of a server block: its domain's entries, or the default server's.
fn server_directive(
    f: &Finder<'_>,
    proxy: &Entry,
    domain: Option<&str>,
    words: &[&str],
) -> Vec<Origin> {
    let Some(domain) = domain.filter(|d| *d != "_") else {
        return vec![Origin::default(
            "the default server: a request for no known domain gets 404",
        )];
    };
    match words {
        ["listen", ..] => {
            let mut out = vec![listen_port(proxy, words)];
            out.extend(domain_origins(f, proxy, Some(domain), "the server of"));
            out
        }
        ["ssl_certificate" | "ssl_certificate_key", ..] => {
            let key = if words[0] == "ssl_certificate" {
                "cert"
            } else {
                "key"
            };
            let mut out: Vec<Origin> = tls(proxy, domain)
                .and_then(|t| field(t, key))
                .map(|e| Origin::at(format!("`{key}` of `tls \"{domain}\"`"), e.span()))
                .into_iter()
                .collect();
            if out.is_empty() {
                out.push(Origin::default(format!(
                    "the certificate the ACME client obtains for `{domain}` (no `tls \"{domain}\"` gives one)"
                )));
            }
            out.extend(domain_origins(f, proxy, Some(domain), "the certificate of"));
            out
        }
        ["ssl_protocols", ..] | ["add_header", "Strict-Transport-Security", ..] => {
            let mut out = vec![Origin::default(
                "TLS settings of every HTTPS server: TLS 1.2 and 1.3, HSTS",
            )];
            out.extend(domain_origins(f, proxy, Some(domain), "HTTPS for"));
            out
        }
        ["return", "301", ..] => {
            let mut out = vec![Origin::default(
                "HTTP redirected to HTTPS: the domain is served over HTTPS",
            )];
            out.extend(domain_origins(f, proxy, Some(domain), "HTTPS for"));
            out
        }
        _ => domain_origins(f, proxy, Some(domain), "the server of"),
    }
}

/// What decides the port of a `listen` (nginx) or `bind` (HAProxy) line: the
/// proxy's `https` port for TLS, else its `http` port, or their default.
fn listen_port(proxy: &Entry, words: &[&str]) -> Origin {
    let key = if words.contains(&"ssl") {
        "https"
    } else {
        "http"
    };
    match field(proxy, key) {
        Some(e) => Origin::at(format!("`{key}` of the proxy"), e.span()),
        None => Origin::default(format!("the proxy's default `{key}` port")),
    }
}

/// What decides a domain: the proxy's `tls "DOMAIN"` entry, the routes whose
/// `domain` it is.
pub(super) fn domain_origins(
    f: &Finder<'_>,
    proxy: &Entry,
    domain: Option<&str>,
    what: &str,
) -> Vec<Origin> {
    let Some(domain) = domain else {
        return Vec::new();
    };
    let mut out: Vec<Origin> = tls(proxy, domain)
        .map(|t| Origin::at(format!("{what} `{domain}`: `tls \"{domain}\"`"), t.span()))
        .into_iter()
        .collect();
    // A service's `public_url` names the domain of its routes.
    for svc in f
        .files()
        .flat_map(|(_, file)| &file.entries)
        .filter(|e| e.key.name == "service")
    {
        let url = field(svc, "public_url").filter(|u| {
            literal(u)
                .and_then(|v| crate::grammar::url(&v).ok().map(|u| u.host))
                .is_some_and(|host| host == domain)
        });
        if let Some(u) = url {
            out.push(Origin::at(
                format!("`public_url` of `{}`", svc.label_name().unwrap_or_default()),
                u.span(),
            ));
        }
    }
    for (svc, route) in routes(f) {
        if let Some(d) = field(route, "domain").filter(|d| literal(d).as_deref() == Some(domain)) {
            out.push(Origin::at(
                format!("`domain` of route `{}` of `{svc}`", route_path(route)),
                d.span(),
            ));
        }
    }
    out
}

/// A line of a `location`: the route, and its field that writes the line.
fn route_directive(f: &Finder<'_>, path: &str, words: &[&str]) -> Vec<Origin> {
    let Some((svc, route)) = routes(f).into_iter().find(|(_, r)| route_path(r) == path) else {
        return Vec::new();
    };
    let keys: &[&str] = match words.first().copied() {
        Some("limit_req") => &["rate", "burst"],
        Some("limit_req_status") => &["limit_status"],
        Some("proxy_connect_timeout") => &["connect_timeout"],
        Some("proxy_send_timeout") => &["send_timeout"],
        Some("proxy_read_timeout") => &["read_timeout"],
        Some("client_max_body_size") => &["body_size"],
        Some("proxy_pass") if words.get(1).is_some_and(|t| t.ends_with('/')) => &["strip_prefix"],
        Some("proxy_set_header") if words.get(2).is_some_and(|v| v.contains("upgrade")) => {
            &["websocket"]
        }
        _ => &[],
    };
    let mut out: Vec<Origin> = keys
        .iter()
        .filter_map(|k| {
            field(route, k)
                .map(|e| Origin::at(format!("`{k}` of route `{path}` of `{svc}`"), e.span()))
        })
        .collect();
    if out.is_empty() {
        if let Some(default) = route_default(words.first().copied().unwrap_or_default(), keys) {
            out.push(Origin::default(default));
        }
    }
    out.push(Origin::at(
        format!("route `{path}` of `{svc}`"),
        route.span(),
    ));
    out
}

/// Which default a location's line is, when its route does not set it.
fn route_default(directive: &str, keys: &[&str]) -> Option<String> {
    match (directive, keys) {
        ("limit_req_status", _) => Some("status 429 past the rate: the default of `limit_status`".into()),
        ("proxy_http_version" | "proxy_next_upstream", _) | ("proxy_set_header", []) => Some(
            "every route: HTTP/1.1 and keepalive to the servers, the forwarding headers, the next server on an error".into(),
        ),
        (_, [key, ..]) => Some(format!("nginx's default: the route sets no `{key}`")),
        _ => None,
    }
}

/// A line of an `upstream`: the service whose placements it lists, its
/// strategy or weight, or the defaults of every upstream.
fn upstream_directive(f: &Finder<'_>, name: &str, words: &[&str]) -> Vec<Origin> {
    let service = name.rsplit_once('_').map_or(name, |(s, _)| s);
    let mut out = Vec::new();
    match words.first().copied() {
        Some("least_conn" | "ip_hash" | "balance") => {
            let set = routes(f)
                .into_iter()
                .filter(|(s, _)| *s == service)
                .find_map(|(_, r)| field(r, "strategy").map(|e| (route_path(r), e)));
            match set {
                Some((path, e)) => out.push(Origin::at(
                    format!("`strategy` of route `{path}` of `{service}`"),
                    e.span(),
                )),
                None => out.push(Origin::default("round robin: the default `strategy`")),
            }
        }
        Some("keepalive") => out.push(Origin::default(
            "keepalive connections to every upstream's servers",
        )),
        Some("option" | "http-check" | "default-server") => {
            if let Some(e) = f.field(service, "", &["health"]) {
                out.push(Origin::at(
                    format!("the health check of `{service}`"),
                    e.span(),
                ));
            }
        }
        Some("timeout") => {
            let key = if words.get(1) == Some(&"connect") {
                "connect_timeout"
            } else {
                "read_timeout"
            };
            out.extend(
                routes(f)
                    .into_iter()
                    .filter(|(s, _)| *s == service)
                    .find_map(|(_, r)| {
                        field(r, key).map(|e| {
                            Origin::at(
                                format!("`{key}` of route `{}` of `{service}`", route_path(r)),
                                e.span(),
                            )
                        })
                    }),
            );
        }
        _ => {}
    }
    if let Some(e) = f.top("service", service) {
        out.push(Origin::at(
            format!("the placements of `{service}`"),
            e.span(),
        ));
    }
    out
}

fn haproxy_line(
    f: &Finder<'_>,
    proxy: &Entry,
    lines: &[&str],
    line: usize,
    words: &[&str],
) -> Vec<Origin> {
    let at = line.saturating_sub(1).min(lines.len().saturating_sub(1));
    let section: Vec<&str> = lines[..=at]
        .iter()
        .rev()
        .find(|l| !l.is_empty() && !l.starts_with(' ') && !l.starts_with('#'))
        .map(|l| l.split_whitespace().collect())
        .unwrap_or_default();
    match (section.as_slice(), words) {
        (["backend", "no_route"], _) => {
            vec![Origin::default("a request no route matches gets 404")]
        }
        (["backend", name], _) => upstream_directive(
            f,
            name,
            if words.first() == Some(&"backend") {
                &[]
            } else {
                words
            },
        ),
        (["frontend", ..], ["acl", _, "path_beg", path, ..]) => route_directive(f, path, &[]),
        (["frontend", ..], ["use_backend", _, "if", acl]) => {
            // The acl the rule names holds the route's path.
            let path = lines.iter().find_map(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                match w.as_slice() {
                    ["acl", name, "path_beg", path, ..] if name == acl => Some(path.to_string()),
                    _ => None,
                }
            });
            path.map(|p| route_directive(f, &p, &[]))
                .unwrap_or_default()
        }
        (["frontend", ..], ["bind", ..]) => vec![listen_port(proxy, words)],
        (["frontend", ..], _) => vec![Origin::default(
            "every frontend: the health URI and the forwarding headers",
        )],
        (["listen", "stats"], _) => {
            vec![Origin::default("HAProxy's statistics page, on every proxy")]
        }
        _ => vec![Origin::default(
            "HAProxy's settings for every proxy (logs, timeouts, the Docker resolver)",
        )],
    }
}

/// Every route of every service: (service, route entry).
fn routes<'a>(f: &Finder<'a>) -> Vec<(&'a str, &'a Entry)> {
    f.files()
        .flat_map(|(_, file)| &file.entries)
        .filter(|e| e.key.name == "service")
        .flat_map(|svc| {
            let name = svc.label_name().unwrap_or_default();
            block(svc)
                .iter()
                .filter(|r| r.key.name == "route")
                .map(move |r| (name, r))
        })
        .collect()
}

fn route_path(route: &Entry) -> String {
    route.label.as_deref().map(Label::text).unwrap_or_default()
}

fn field<'a>(e: &'a Entry, key: &str) -> Option<&'a Entry> {
    block(e).iter().find(|c| c.key.name == key)
}

/// The proxy's `tls "DOMAIN"` entry.
fn tls<'a>(proxy: &'a Entry, domain: &str) -> Option<&'a Entry> {
    block(proxy).iter().find(|e| {
        e.key.name == "tls"
            && e.label
                .as_deref()
                .is_some_and(|l| l.text().eq_ignore_ascii_case(domain))
    })
}

/// A field's string value, when it has no interpolation.
fn literal(e: &Entry) -> Option<String> {
    match &e.value {
        EntryValue::Assign(Value {
            kind: ValueKind::Str(t),
            ..
        }) => t.as_literal(),
        _ => None,
    }
}
