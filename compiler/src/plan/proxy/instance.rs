//! The proxy as an instance of its host (in compose), and the overlapping
//! routes of one domain.

use super::*;

impl Topo<'_> {
    /// The proxy as a service of its host's compose file.
    pub(in crate::plan) fn proxy_instance(
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
        let (volumes, program, mut depends_on) = acme::proxy_side(proxy, &mut mounts);
        if proxy.acme.is_none() && proxy.has_tls() {
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
        depends_on.extend(
            fx.deps
                .iter()
                .filter(|d| d.proxy == proxy.name)
                .map(|d| &d.service)
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
                }),
        );
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
            storage: Storage {
                volumes,
                mounts,
                backup: None,
                shared_from: None,
            }
            .into(),
            program: program.into(),
            ..Instance::auxiliary(Name::new(&proxy.name), Role::Stateless)
        }
    }

    /// Two routes of one domain overlap when one prefix starts the other; allowed
    /// only when the shorter one is the domain's `default`.
    pub(super) fn check_route_overlaps(&self, diags: &mut Diagnostics) {
        let mut by_domain: IndexMap<Option<String>, Vec<(&str, &RouteDef)>> = IndexMap::default();
        for (name, placements) in &self.placements {
            let Some(first) = placements.first() else {
                continue;
            };
            let mut quiet = Diagnostics::default();
            let domain = self.domain(name, first.host, &first.def, &mut quiet);
            for route in first.def.routes.values() {
                let d = route
                    .options
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
}
