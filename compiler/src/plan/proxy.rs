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
    pub strip_prefix: bool,
    pub rate: Option<RateLimit>,
    pub connect_timeout: Option<Duration>,
    pub send_timeout: Option<Duration>,
    pub read_timeout: Option<Duration>,
    pub body_size: Option<Size>,
    pub websocket: bool,
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
    /// (service, host index, port name) published on the host's address.
    pub(super) publishes: IndexSet<PublishedPort>,
    /// ... published on 127.0.0.1, for a proxy on the host itself.
    pub(super) loopback: IndexSet<PublishedPort>,
    /// (proxy name, service) on the proxy's host: start order.
    pub(super) deps: Vec<(Name, Name)>,
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
                    .rare
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
                u.read_timeout = longest(u.read_timeout, route.rare.read_timeout.as_ref());
                u.connect_timeout = longest(u.connect_timeout, route.rare.connect_timeout.as_ref());
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
                    strip_prefix: route.strip_prefix,
                    rate: route.rare.rate.as_ref().map(|r| RateLimit {
                        rate: r.value,
                        burst: route.rare.burst.as_ref().map_or(0, |b| b.value),
                        status: route.rare.limit_status.as_ref().map_or(429, |s| s.value),
                    }),
                    connect_timeout: route.rare.connect_timeout.as_ref().map(|d| d.value),
                    send_timeout: route.rare.send_timeout.as_ref().map(|d| d.value),
                    read_timeout: route.rare.read_timeout.as_ref().map(|d| d.value),
                    body_size: route.rare.body_size.as_ref().map(|s| s.value),
                    websocket: route.websocket,
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
                        .help("give a routed service `public_url = \"https://DOMAIN\"`, or remove this block"),
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
        let url = def.rare.public_url.as_ref()?;
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
            if let Some(url) = &first.def.rare.public_url {
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

    /// The port a route leads to; it must be HTTP.
    fn route_port<'d>(
        &self,
        name: &str,
        def: &'d ServiceDef,
        route: &RouteDef,
        diags: &mut Diagnostics,
    ) -> Option<&'d PortDef> {
        let port = match &route.port {
            Some(p) => def.ports.get(&p.name)?,
            None => match def.ports.values().next() {
                Some(p) => p,
                None => {
                    diags.push(
                        Diagnostic::error(
                            Code::RouteNotHttp,
                            route.path.span,
                            format!(
                                "route `{}` leads to `{name}`, which declares no port",
                                route.path.value
                            ),
                        )
                        .label("nowhere to send requests")
                        .help(format!(
                            "declare an HTTP port on `{name}`: `port http = NUMBER`"
                        )),
                    );
                    return None;
                }
            },
        };
        let http = match &port.protocol {
            Some(p) => p.value == Protocol::Http,
            None => port.name.name == "http",
        };
        if !http {
            diags.push(
                Diagnostic::error(Code::RouteNotHttp, route.path.span, format!("route `{}` leads to port `{}` of `{name}`, which is not HTTP", route.path.value, port.name.name))
                    .label("a proxy routes HTTP")
                    .help(format!("route to an HTTP port (`port = http`), or declare `protocol = http` on port `{}`", port.name.name)),
            );
            return None;
        }
        Some(port)
    }

    #[allow(clippy::too_many_arguments)]
    fn upstream_servers(
        &self,
        proxy: &ProxyDef,
        proxy_host: usize,
        name: &str,
        placements: &[&Placement<'_>],
        port: &PortDef,
        strategy: Strategy,
        fx: &mut ProxyEffects,
        diags: &mut Diagnostics,
    ) -> Vec<UpstreamServer> {
        let mut servers = Vec::with_capacity(placements.len());
        for p in placements {
            // This host's own port: a `run` block may publish it elsewhere.
            let Some(Endpoint {
                container,
                published,
            }) = p.endpoint(Some(&port.name.name))
            else {
                continue;
            };
            let weight = p.def.rare.weight.as_ref();
            if let (Some(w), false) = (weight, strategy == Strategy::Weighted) {
                diags.push(
                    Diagnostic::error(Code::WeightWithoutWeightedStrategy, w.span, format!("`{name}` has a weight, but its route does not use `strategy = weighted`"))
                        .label("this weight would be ignored")
                        .help("set `strategy = weighted` on the route, or remove the weight"),
                );
            }
            let Some(host) = self.hosts.get(p.host) else {
                continue;
            };
            let address = if p.host == proxy_host && !proxy.on_host {
                fx.deps.push((proxy.name.name.clone(), Name::new(name)));
                resolve::host_port("", name, container)
            } else if p.host == proxy_host {
                fx.loopback
                    .insert(PublishedPort::new(name, p.host, &port.name.name));
                resolve::host_port("", "127.0.0.1", published)
            } else {
                let Some(addr) = &host.address else {
                    diags.push(
                        Diagnostic::error(
                            Code::Unresolvable,
                            p.run_span,
                            format!(
                                "proxy `{}` routes to `{name}` on host `{}`, which has no address",
                                proxy.name.name, host.name.name
                            ),
                        )
                        .label("unreachable from the proxy")
                        .help(format!(
                            "give host `{}` an `address = \"...\"`",
                            host.name.name
                        )),
                    );
                    continue;
                };
                fx.publishes
                    .insert(PublishedPort::new(name, p.host, &port.name.name));
                resolve::host_port("", &addr.value, published)
            };
            let by_name = p.host == proxy_host && !proxy.on_host;
            servers.push(UpstreamServer {
                address,
                weight: (strategy == Strategy::Weighted).then(|| weight.map_or(1, |w| w.value)),
                replicas: if by_name {
                    p.def.replicas.as_ref().map_or(1, |r| r.value)
                } else {
                    1
                },
                by_name,
            });
        }
        servers
    }

    /// The service's HTTP health check on the routed port. HAProxy checks servers
    /// actively, so a service it routes to must have one.
    fn http_health(
        &self,
        proxy: &ProxyDef,
        name: &str,
        def: &ServiceDef,
        port: &PortDef,
        route: &RouteDef,
        diags: &mut Diagnostics,
    ) -> Option<HttpHealth> {
        let probe = def
            .health
            .readiness
            .as_ref()
            .or(def.health.liveness.as_ref());
        let found = probe.and_then(|p| {
            let ProbeCheck::Http(path) = &p.check.as_ref()?.value else {
                return None;
            };
            let probe_port = p.port.as_ref().map_or_else(
                || def.ports.keys().next().cloned().unwrap_or_default(),
                |i| i.name.clone(),
            );
            (probe_port == port.name.name).then(|| HttpHealth {
                path: path.clone(),
                interval: p.interval.as_ref().map_or(Duration(2_000), |d| d.value),
                fall: p.retries.as_ref().map_or(3, |r| r.value.max(1)),
            })
        });
        if found.is_none() && proxy.kind.value == ProxyKind::Haproxy {
            diags.push(
                Diagnostic::error(
                    Code::ActiveCheckWithoutHttpHealth,
                    route.path.span,
                    format!("HAProxy checks `{name}` actively, but it has no HTTP health check on port `{}`", port.name.name),
                )
                .label("routed through HAProxy")
                .with_secondary(proxy.kind.span, "HAProxy here")
                .help(format!("give `{name}` `health {{ http = \"/health\" }}` on port `{}`", port.name.name)),
            );
        }
        found
    }

    /// Two routes of one domain overlap when one prefix starts the other; allowed
    /// only when the shorter one is the domain's `default`.
    fn check_route_overlaps(&self, diags: &mut Diagnostics) {
        let mut by_domain: IndexMap<Option<String>, Vec<(&str, &RouteDef)>> = IndexMap::default();
        for (name, placements) in &self.placements {
            let Some(first) = placements.first() else {
                continue;
            };
            let mut quiet = Diagnostics::default();
            let domain = self.domain(name, first.host, &first.def, &mut quiet);
            for route in first.def.routes.values() {
                let d = route
                    .rare
                    .domain
                    .as_ref()
                    .map(|d| d.value.to_ascii_lowercase())
                    .or_else(|| domain.clone());
                by_domain.entry(d).or_default().push((name, route));
            }
        }
        // Pairs (earlier, later) whose shorter path is a prefix of the longer one
        // (or equal to it), found in the paths sorted, not by comparing every
        // pair: the workload may have thousands of routes. In sorted order the
        // paths a path starts are the ones right after it: every path between
        // a path and one it starts shares that start.
        for routes in by_domain.values() {
            let mut sorted: Vec<(&str, usize)> = routes
                .iter()
                .enumerate()
                .map(|(i, (_, r))| (r.path.value.as_str(), i))
                .collect();
            sorted.sort_unstable();
            let mut pairs = Vec::new();
            for (k, &(short, i)) in sorted.iter().enumerate() {
                for &(long, j) in &sorted[k + 1..] {
                    if !long.starts_with(short) {
                        break;
                    }
                    pairs.push((i.min(j), i.max(j)));
                }
            }
            pairs.sort_unstable();
            for (i, j) in pairs {
                let ((a_svc, a), (b_svc, b)) = (&routes[i], &routes[j]);
                let (short, long, long_svc, short_svc) = if a.path.value.len() <= b.path.value.len()
                {
                    (a, b, b_svc, a_svc)
                } else {
                    (b, a, a_svc, b_svc)
                };
                // One service's routes may nest (`/api/` and `/api/upload/` with its
                // own settings): they reach the same servers either way.
                if a_svc != b_svc && !short.default {
                    diags.push(
                        Diagnostic::error(Code::OverlappingRoutes, long.path.span, format!("route `{}` of `{long_svc}` overlaps route `{}` of `{short_svc}`", long.path.value, short.path.value))
                            .label("both match these paths")
                            .with_secondary(short.path.span, "the shorter prefix")
                            .help(format!("mark the catch-all `route \"{}\" {{ default = true }}`, or use distinct prefixes", short.path.value)),
                    );
                }
            }
        }
    }

    /// The proxy as a service of its host's compose file.
    pub(super) fn proxy_instance(
        &self,
        proxy: &ProxyPlan,
        fx: &ProxyEffects,
        services: &[Instance],
    ) -> Instance {
        let mut ports = vec![PortPlan {
            name: "http".into(),
            container: proxy.http,
            host: proxy.http,
            protocol: Protocol::Http,
            binds: vec![Bind::All],
        }];
        if proxy.has_tls() {
            ports.push(PortPlan {
                name: "https".into(),
                container: proxy.https,
                host: proxy.https,
                protocol: Protocol::Tcp,
                binds: vec![Bind::All],
            });
        }
        if proxy.kind == ProxyKind::Haproxy {
            let private = proxy
                .private_address
                .clone()
                .unwrap_or_else(|| "127.0.0.1".into());
            for (name, port) in [
                ("stats", HAPROXY_STATS_PORT),
                ("metrics", HAPROXY_METRICS_PORT),
            ] {
                ports.push(PortPlan {
                    name: name.into(),
                    container: port,
                    host: port,
                    protocol: Protocol::Http,
                    binds: vec![Bind::Address(private.clone())],
                });
            }
        }
        let (config_path, dir) = match proxy.kind {
            ProxyKind::Nginx => ("/etc/nginx/nginx.conf", "nginx"),
            ProxyKind::Haproxy => ("/usr/local/etc/haproxy/haproxy.cfg", "haproxy"),
        };
        let config = match proxy.kind {
            ProxyKind::Nginx => format!("nginx/{}.conf", proxy.name),
            ProxyKind::Haproxy => format!("haproxy/{}.cfg", proxy.name),
        };
        let mut mounts = vec![Mount::generated(config, config_path)];
        if proxy.has_tls() {
            let paths: &[&str] = match proxy.kind {
                ProxyKind::Nginx => &["/etc/letsencrypt", "/var/www/certbot"],
                ProxyKind::Haproxy => &["/etc/haproxy/certs"],
            };
            for path in paths {
                mounts.push(Mount {
                    source: path.to_string(),
                    target: path.to_string(),
                    read_only: true,
                    generated: false,
                });
            }
        }
        let ready: HashSet<&str> = services
            .iter()
            .filter(|i| i.ready_check().is_some())
            .map(|i| i.name.as_str())
            .collect();
        let depends_on = fx
            .deps
            .iter()
            .filter(|(p, _)| *p == proxy.name)
            .map(|(_, s)| s)
            .collect::<IndexSet<_>>()
            .into_iter()
            .map(|s| {
                let healthy = ready.contains(s.as_str());
                (
                    s.clone(),
                    if healthy {
                        Condition::Healthy
                    } else {
                        Condition::Started
                    },
                )
            })
            .collect();
        let health = Probe {
            check: ProbeCheck::Command(Command::Shell(format!(
                "wget -q -O /dev/null http://127.0.0.1:{}/health || exit 1",
                proxy.http
            ))),
            port_name: None,
            port: 0,
            interval: Some(Duration(10_000)),
            timeout: Some(Duration(3_000)),
            retries: Some(3),
            start_period: None,
        };
        Instance {
            image: Some(Name::from(proxy.image.as_str())),
            ports,
            probes: Probes {
                readiness: Some(Arc::new(health)),
                ..Probes::default()
            },
            depends_on,
            kind: Some(Name::new(dir)),
            rare: RareParts {
                mounts,
                ..RareParts::default()
            }
            .into(),
            ..Instance::auxiliary(Name::new(&proxy.name), Role::Stateless)
        }
    }
}

/// Spans for diagnostics about a proxy's ports.
pub(super) fn proxy_span(topo: &TopologyDef, name: &str) -> Option<Span> {
    topo.proxies.get(name).map(|p| p.name.span)
}

/// The upstream of a service's port, `SERVICE_PORT` with `-` as `_` (nginx and
/// HAProxy names): the pieces of both joined by `_`, inline when short.
fn upstream_name(service: &str, port: &str) -> Name {
    let mut out = smol_str::SmolStrBuilder::new();
    for (i, piece) in service.split('-').chain(port.split('-')).enumerate() {
        if i > 0 {
            out.push('_');
        }
        out.push_str(piece);
    }
    out.finish()
}
