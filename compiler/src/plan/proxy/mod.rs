//! Proxies: each `proxy` of a topology, with its sites (one per domain), the routes
//! of the services, and upstreams made of every placement of each routed service:
//! the compose name on the proxy's own host, the host's address and published port
//! elsewhere, and 127.0.0.1 when the proxy runs on the host itself.
//!
//! Names and start order: a proxy in a compose file `depends_on` the services it
//! routes to on its host, so their names resolve when it starts (nginx resolves
//! upstream names once, at start); services on other hosts are addressed by IP.

use rustc_hash::FxHashSet as HashSet;

use crate::base::{IndexMap, IndexSet};

use crate::diag::{Code, Diagnostic, Diagnostics, Span};

use super::*;

pub mod acme;
mod instance;
mod upstreams;

use upstreams::upstream_name;

#[derive(Debug, Clone, PartialEq)]
pub struct ProxyPlan {
    pub name: String,
    pub kind: ProxyKind,
    /// The host it runs on.
    pub host: String,
    /// On the host itself, not in its compose file.
    pub on_host: bool,
    /// The address it listens on (all addresses when none).
    pub bind: Option<String>,
    /// The host's private address: HAProxy's stats page and metrics listen there.
    pub private_address: Option<String>,
    pub image: String,
    pub http: u16,
    pub https: u16,
    pub sites: Vec<Site>,
    pub upstreams: Vec<Upstream>,
    /// The certificates it obtains itself, from an ACME server.
    pub acme: Option<acme::AcmePlan>,
}

impl ProxyPlan {
    pub fn has_tls(&self) -> bool {
        self.sites.iter().any(|s| s.tls.is_some())
    }
}

/// The routes of one domain (`None`: the default server).
#[derive(Debug, Clone, PartialEq)]
pub struct Site {
    pub domain: Option<String>,
    pub tls: Option<Tls>,
    pub routes: Vec<RoutePlan>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tls {
    pub cert: String,
    pub key: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RoutePlan {
    pub path: Name,
    /// The name of its upstream.
    pub upstream: Name,
    pub settings: RouteSettings,
}

/// What a route asks of whatever proxies it, with its defaults applied: one
/// value every target reads (nginx, HAProxy, the Kubernetes Ingress).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RouteSettings {
    pub strip_prefix: bool,
    pub rate: Option<RateLimit>,
    pub connect_timeout: Option<Duration>,
    pub send_timeout: Option<Duration>,
    pub read_timeout: Option<Duration>,
    pub body_size: Option<Size>,
    pub websocket: bool,
}

impl RouteSettings {
    pub fn of(route: &RouteDef) -> RouteSettings {
        RouteSettings {
            strip_prefix: route.strip_prefix,
            rate: route.options.rate.as_ref().map(|r| RateLimit {
                rate: r.value,
                burst: route.options.burst.as_ref().map_or(0, |b| b.value),
                status: route.options.limit_status.as_ref().map_or(429, |s| s.value),
            }),
            connect_timeout: route.options.connect_timeout.as_ref().map(|d| d.value),
            send_timeout: route.options.send_timeout.as_ref().map(|d| d.value),
            read_timeout: route.options.read_timeout.as_ref().map(|d| d.value),
            body_size: route.options.body_size.as_ref().map(|s| s.value),
            websocket: route.websocket,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Requests per second per client address.
    pub rate: u32,
    pub burst: u32,
    pub status: u16,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Upstream {
    pub name: Name,
    pub service: Name,
    pub strategy: Strategy,
    pub servers: Vec<UpstreamServer>,
    /// The service's HTTP health check on the routed port, for active checks.
    pub health: Option<HttpHealth>,
    /// The longest read timeout of the routes to it (HAProxy sets it per backend).
    pub read_timeout: Option<Duration>,
    pub connect_timeout: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HttpHealth {
    pub path: Name,
    pub interval: Duration,
    /// Failed checks before a server is down.
    pub fall: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamServer {
    /// `host:port`
    pub address: Name,
    pub weight: Option<u32>,
    /// A compose name with this many replicas behind it (1 for an address).
    pub replicas: u32,
    /// `address` is a compose name, resolved by Docker's DNS.
    pub by_name: bool,
}

/// What proxies ask of the rest of the plan.
#[derive(Default)]
pub(super) struct ProxyEffects {
    /// Ports published on their host's address, for a proxy elsewhere.
    pub(super) publishes: Publishes,
    /// Ports published on 127.0.0.1, for a proxy on the host itself.
    pub(super) loopback: IndexSet<PublishedPort>,
    /// The services a proxy routes to on its own host: it starts after them.
    pub(super) deps: Vec<ProxyDependency>,
}

/// A service a proxy routes to on the proxy's host.
pub(super) struct ProxyDependency {
    pub(super) proxy: Name,
    pub(super) service: Name,
}

/// HAProxy's stats page, on the host's private address.
pub const HAPROXY_STATS_PORT: u16 = 8404;
/// HAProxy's Prometheus exporter, on the host's private address.
pub const HAPROXY_METRICS_PORT: u16 = 8405;

/// The default image of each proxy.
fn default_image(kind: ProxyKind) -> &'static str {
    match kind {
        ProxyKind::Nginx => "nginx:1.27-alpine",
        ProxyKind::Haproxy => "haproxy:2.8-alpine",
    }
}

impl Topo<'_> {
    pub(super) fn proxies(&self, diags: &mut Diagnostics) -> (Vec<ProxyPlan>, ProxyEffects) {
        let mut fx = ProxyEffects::default();
        let mut plans = Vec::new();
        if self.topo.proxies.is_empty() {
            return (plans, fx);
        }
        if self.topo.platform.value == Platform::Kubernetes {
            for proxy in self.topo.proxies.values() {
                diags.push(
                    Diagnostic::error(Code::NotSupported, proxy.name.span, "a Kubernetes topology routes through its Ingress, not a proxy")
                        .label("no proxy in a cluster")
                        .help("remove the proxy; routes and public URLs become the Ingress (`ingress_class` chooses the controller)"),
                );
            }
            return (plans, fx);
        }
        self.check_route_overlaps(diags);
        for proxy in self.topo.proxies.values() {
            if let Some(plan) = self.proxy(proxy, &mut fx, diags) {
                plans.push(plan);
            }
        }
        (plans, fx)
    }

    fn proxy(
        &self,
        proxy: &ProxyDef,
        fx: &mut ProxyEffects,
        diags: &mut Diagnostics,
    ) -> Option<ProxyPlan> {
        let h = self.proxy_host(proxy, diags)?;
        let host = self.hosts.get(h)?;
        let (sites, upstreams) = self.sites(proxy, h, fx, diags);
        let sites = self.with_tls(proxy, sites, diags);
        // Sites in a stable order: the default server first, then by domain.
        let mut sites: Vec<Site> = sites.into_values().collect();
        sites.sort_by(|a, b| a.domain.cmp(&b.domain));
        for site in &mut sites {
            // Longest prefix first reads best; nginx matches the longest anyway.
            site.routes
                .sort_by(|a, b| b.path.len().cmp(&a.path.len()).then(a.path.cmp(&b.path)));
        }
        let obtained: Vec<String> = sites
            .iter()
            .filter(|s| s.tls.is_some())
            .filter_map(|s| s.domain.clone())
            .filter(|d| acme::obtains(proxy, d))
            .collect();
        Some(ProxyPlan {
            name: proxy.name.name.to_string(),
            kind: proxy.kind.value,
            host: host.name.name.to_string(),
            on_host: proxy.on_host,
            bind: proxy.bind.as_ref().map(|b| b.value.clone()),
            private_address: host.address.as_ref().map(|a| a.value.clone()),
            image: proxy.image.as_ref().map_or_else(
                || default_image(proxy.kind.value).to_string(),
                |i| i.value.clone(),
            ),
            http: proxy.http.as_ref().map_or(80, |p| p.value),
            https: proxy.https.as_ref().map_or(443, |p| p.value),
            acme: acme::plan(self.topo, obtained),
            sites,
            upstreams: upstreams.into_values().collect(),
        })
    }

    /// The proxy's host, by index: one of the topology's, not managed.
    fn proxy_host(&self, proxy: &ProxyDef, diags: &mut Diagnostics) -> Option<usize> {
        let Some(host_ident) = &proxy.host else {
            diags.push(
                Diagnostic::error(
                    Code::MissingField,
                    proxy.name.span,
                    format!("proxy `{}` runs on no host", proxy.name.name),
                )
                .label("which host?")
                .help("write `host = NAME` in the proxy block"),
            );
            return None;
        };
        let h = self.host_index(host_ident, diags)?;
        let host = self.hosts.get(h)?;
        if host.managed {
            diags.push(
                Diagnostic::error(
                    Code::NotSupported,
                    host_ident.span,
                    format!(
                        "host `{}` is managed: stackc runs nothing there",
                        host.name.name
                    ),
                )
                .label("a managed host")
                .help("run the proxy on a host of your own"),
            );
            return None;
        }
        Some(h)
    }

    /// The sites (one per domain, `None` the default server) and upstreams
    /// (one per routed service port) of every route of the services placed
    /// on the topology's own hosts.
    fn sites(
        &self,
        proxy: &ProxyDef,
        h: usize,
        fx: &mut ProxyEffects,
        diags: &mut Diagnostics,
    ) -> (IndexMap<Option<String>, Site>, IndexMap<Name, Upstream>) {
        let mut sites: IndexMap<Option<String>, Site> = IndexMap::default();
        // Sized for one upstream per placed service, the usual case: grown
        // by doubling, thousands of them were copied a dozen times.
        let mut upstreams: IndexMap<Name, Upstream> = IndexMap::default();
        upstreams.reserve(self.placements.len());
        for (name, all) in &self.placements {
            // A managed host's platform serves its services itself.
            let placements: Vec<&Placement<'_>> = all
                .iter()
                .filter(|p| self.hosts.get(p.host).is_some_and(|h| !h.managed))
                .collect();
            let Some(first) = placements.first() else {
                continue;
            };
            let def = &first.def;
            if def.routes.is_empty() {
                continue;
            }
            let service_domain = self.domain(name, first.host, def, diags);
            for route in def.routes.values() {
                let domain = route
                    .options
                    .domain
                    .as_ref()
                    .map(|d| d.value.to_ascii_lowercase())
                    .or_else(|| service_domain.clone());
                let Some(port) = self.route_port(name, def, route, diags) else {
                    continue;
                };
                let strategy = route
                    .strategy
                    .as_ref()
                    .map_or(Strategy::RoundRobin, |s| s.value);
                let upstream_name = upstream_name(name, &port.name.name);
                // One lookup: the upstream of the service's port, made by its
                // first route.
                let u = match upstreams.entry(upstream_name.clone()) {
                    indexmap::map::Entry::Occupied(o) => {
                        if o.get().strategy != strategy {
                            let span = route.strategy.as_ref().map_or(route.path.span, |s| s.span);
                            diags.push(
                                Diagnostic::error(Code::InvalidValue, span, format!("the routes of `{name}` to port `{}` ask for different strategies", port.name.name))
                                    .label("one upstream, one strategy")
                                    .help("give every route of this service and port the same `strategy`"),
                            );
                        }
                        o.into_mut()
                    }
                    indexmap::map::Entry::Vacant(v) => {
                        let servers = self.upstream_servers(
                            proxy,
                            h,
                            name,
                            &placements,
                            port,
                            strategy,
                            fx,
                            diags,
                        );
                        let health = self.http_health(proxy, name, def, port, route, diags);
                        v.insert(Upstream {
                            name: upstream_name.clone(),
                            service: Name::new(name),
                            strategy,
                            servers,
                            health,
                            read_timeout: None,
                            connect_timeout: None,
                        })
                    }
                };
                let longest = |a: Option<Duration>, b: Option<&Sp<Duration>>| match (a, b) {
                    (Some(a), Some(b)) => Some(a.max(b.value)),
                    (a, b) => a.or(b.map(|b| b.value)),
                };
                u.read_timeout = longest(u.read_timeout, route.options.read_timeout.as_ref());
                u.connect_timeout =
                    longest(u.connect_timeout, route.options.connect_timeout.as_ref());
                // The first site (most often the only one) is sized for every
                // service's route.
                let first_site = sites.is_empty();
                let site = sites.entry(domain.clone()).or_insert_with(|| Site {
                    domain: domain.clone(),
                    tls: None,
                    routes: Vec::with_capacity(if first_site { self.placements.len() } else { 0 }),
                });
                site.routes.push(RoutePlan {
                    path: route.path.value.clone(),
                    upstream: upstream_name,
                    settings: RouteSettings::of(route),
                });
            }
        }
        (sites, upstreams)
    }

    /// TLS for every site served over https, and a `tls` block of the proxy
    /// for a domain no route is served on reported.
    fn with_tls(
        &self,
        proxy: &ProxyDef,
        mut sites: IndexMap<Option<String>, Site>,
        diags: &mut Diagnostics,
    ) -> IndexMap<Option<String>, Site> {
        // TLS: https public URLs, with the proxy's certificate paths or Let's Encrypt's.
        let https: IndexSet<String> = self.https_domains();
        for site in sites.values_mut() {
            if let Some(d) = &site.domain {
                if https.contains(d) {
                    let custom = proxy.tls.get(d.as_str());
                    let (cert, key) = match proxy.kind.value {
                        _ if acme::obtains(proxy, d) => acme::paths(proxy.kind.value, d),
                        // HAProxy reads one PEM holding the chain and the key.
                        ProxyKind::Haproxy => {
                            (format!("/etc/haproxy/certs/{d}.pem"), String::new())
                        }
                        ProxyKind::Nginx => (
                            format!("/etc/letsencrypt/live/{d}/fullchain.pem"),
                            format!("/etc/letsencrypt/live/{d}/privkey.pem"),
                        ),
                    };
                    site.tls = Some(Tls {
                        cert: custom
                            .and_then(|t| t.cert.as_ref())
                            .map_or(cert, |c| c.value.clone()),
                        key: custom
                            .and_then(|t| t.key.as_ref())
                            .map_or(key, |k| k.value.clone()),
                    });
                }
            }
        }
        for tls in proxy.tls.values() {
            let served = sites
                .get(&Some(tls.domain.value.clone()))
                .is_some_and(|s| s.tls.is_some());
            if !served {
                diags.push(
                    Diagnostic::error(Code::TlsWithoutDomain, tls.domain.span, format!("no route is served on `https://{}`", tls.domain.value))
                        .label("TLS for a domain without routes")
                        .help(format!(
                            "serve routes there: `public_url = \"https://{d}\"` on a routed service, or `domain = \"{d}\"` in a route; or remove this block",
                            d = tls.domain.value
                        )),
                );
            }
        }
        sites
    }

    /// The host of a service's public URL, if it has one.
    fn domain(
        &self,
        name: &str,
        host: usize,
        def: &ServiceDef,
        diags: &mut Diagnostics,
    ) -> Option<String> {
        let url = def.reach.public_url.as_ref()?;
        let mut fx = Effects::default();
        let value = self.eval(&Name::new(name), host, url, &mut fx, diags, 0);
        let text = text_of(&value)?;
        // One that does not parse was reported where it was resolved.
        crate::grammar::url(&text).ok().map(|u| u.host)
    }

    fn https_domains(&self) -> IndexSet<String> {
        let mut out = IndexSet::default();
        for placements in self.placements.values() {
            let Some(first) = placements.first() else {
                continue;
            };
            if let Some(url) = &first.def.reach.public_url {
                if let [Piece::Text(t)] = url.pieces.as_slice() {
                    if let Ok(u) = crate::grammar::url(t) {
                        if u.scheme == "https" {
                            out.insert(u.host);
                        }
                    }
                }
            }
        }
        out
    }
}

/// Spans for diagnostics about a proxy's ports.
pub(super) fn proxy_span(topo: &TopologyDef, name: &str) -> Option<Span> {
    topo.proxies.get(name).map(|p| p.name.span)
}
