//! A route's upstream: the port it leads to, its servers (each placement as the
//! proxy reaches it) and the health check HAProxy runs on them.

use super::*;

impl Topo<'_> {
    /// The port a route leads to; it must be HTTP.
    pub(super) fn route_port<'d>(
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
    pub(super) fn upstream_servers(
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
            let weight = p.def.reach.weight.as_ref();
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
                fx.deps.push(ProxyDependency {
                    proxy: proxy.name.name.clone(),
                    service: Name::new(name),
                });
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
                let key = PublishedPort::new(name, p.host, &port.name.name);
                fx.publishes.insert(key, Reader::Host(proxy_host));
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
    pub(super) fn http_health(
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
}

/// The upstream of a service's port, `SERVICE_PORT` with `-` as `_` (nginx and
/// HAProxy names): the pieces of both joined by `_`, inline when short.
pub(super) fn upstream_name(service: &str, port: &str) -> Name {
    let mut out = smol_str::SmolStrBuilder::new();
    for (i, piece) in service.split('-').chain(port.split('-')).enumerate() {
        if i > 0 {
            out.push('_');
        }
        out.push_str(piece);
    }
    out.finish()
}
