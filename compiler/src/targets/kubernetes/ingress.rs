//! The Ingresses of the services with a public URL, for ingress-nginx. A
//! route's settings that ingress-nginx takes per Ingress (timeouts, body size,
//! rate limit) are its annotations, so the routes are grouped by them: the
//! routes without settings in the Ingress named after the stack, each other
//! group in one named after its first service. A route's `domain` is its
//! rule's host. What ingress-nginx cannot express per Ingress is reported
//! (`unexpressible`, run with the targets' checks).

use super::*;
use crate::diag::{Code, Diagnostic};
use crate::plan::RouteSettings;

/// The prefix of ingress-nginx's annotations.
const NGINX: &str = "nginx.ingress.kubernetes.io/";

/// The hosts and paths of one group of routes.
type Rules = IndexMap<String, Vec<IngressPath>>;

impl Cx<'_> {
    pub(super) fn ingresses(&self, instances: &[&Instance]) -> Vec<Object<IngressSpec>> {
        // annotations -> (first service, hosts and paths), in file order.
        let mut groups: IndexMap<Vec<(String, String)>, (Name, Rules)> = IndexMap::new();
        let mut https: IndexSet<String> = IndexSet::default();
        for inst in instances {
            let url = public(inst);
            for route in routes_of(inst, url.is_some()) {
                // A route's own domain is served over https, as the compose
                // proxies serve it; else the public URL's host and scheme.
                let (scheme, host) = match (&route.domain, &url) {
                    (Some(domain), _) => ("https", domain.clone()),
                    (None, Some((scheme, host))) => (scheme.as_str(), host.clone()),
                    (None, None) => continue,
                };
                if scheme == "https" {
                    https.insert(host.clone());
                }
                let (_, rules) = groups
                    .entry(annotations(&route.settings))
                    .or_insert_with(|| (inst.name.clone(), Rules::new()));
                rules.entry(host).or_default().push(IngressPath {
                    path: route.path,
                    path_type: "Prefix",
                    backend: IngressBackend {
                        service: BackendService {
                            name: inst.name.to_string(),
                            port: NamedPort {
                                name: route.port.to_string(),
                            },
                        },
                    },
                });
            }
        }
        let mut names: IndexSet<String> = IndexSet::default();
        groups
            .into_iter()
            .map(|(annotations, (first, rules))| {
                let base = if annotations.is_empty() {
                    self.plan.stack.clone()
                } else {
                    format!("{}-{first}", self.plan.stack)
                };
                let name = (1..)
                    .map(|n| {
                        if n == 1 {
                            base.clone()
                        } else {
                            format!("{base}-{n}")
                        }
                    })
                    .find(|n| !names.contains(n))
                    .unwrap_or(base);
                names.insert(name.clone());
                self.ingress(name, annotations, rules, &https)
            })
            .collect()
    }

    fn ingress(
        &self,
        name: String,
        annotations: Vec<(String, String)>,
        rules: Rules,
        https: &IndexSet<String>,
    ) -> Object<IngressSpec> {
        Object {
            api_version: "networking.k8s.io/v1",
            kind: "Ingress",
            metadata: Metadata {
                name,
                namespace: Some(self.topo.namespace.clone()),
                labels: self.part_of(),
                annotations: annotations.into_iter().collect(),
            },
            spec: Some(IngressSpec {
                ingress_class_name: self.topo.ingress_class.clone(),
                tls: rules
                    .keys()
                    .filter(|h| https.contains(*h))
                    .map(|h| IngressTls {
                        secret_name: format!("{}-tls", h.replace('.', "-")),
                        hosts: vec![h.clone()],
                    })
                    .collect(),
                rules: rules
                    .into_iter()
                    .map(|(host, paths)| IngressRule {
                        host,
                        http: IngressHttp { paths },
                    })
                    .collect(),
            }),
        }
    }
}

/// The scheme and host of a service's public URL.
pub(super) fn public(inst: &Instance) -> Option<(String, String)> {
    split_url(&literal(inst.public_url.as_ref()?)?)
}

/// The ports of a service that its Ingress paths reach (the ingress
/// controller connects to them).
pub(super) fn routed_ports(inst: &Instance) -> Vec<Name> {
    let url = public(inst).is_some();
    let mut ports: Vec<Name> = routes_of(inst, url)
        .into_iter()
        .filter(|r| r.domain.is_some() || url)
        .map(|r| r.port)
        .collect();
    ports.sort();
    ports.dedup();
    ports
}

/// A service's routes, or, with a public URL, its first port at `/` when it
/// has none.
pub(super) fn routes_of(inst: &Instance, public: bool) -> Vec<RoutedPath> {
    if !inst.routes.is_empty() || !public {
        return inst.routes.clone();
    }
    inst.ports
        .first()
        .map(|p| RoutedPath {
            path: Name::new_static("/"),
            port: p.name.clone(),
            domain: None,
            settings: RouteSettings::default(),
            span: crate::diag::Span::default(),
        })
        .into_iter()
        .collect()
}

/// ingress-nginx's annotations for a route's settings: whole seconds for the
/// timeouts (rounded up), nginx's size for the body, the rate and its burst
/// as a multiple of it.
fn annotations(s: &RouteSettings) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (key, value) in [
        ("proxy-connect-timeout", s.connect_timeout),
        ("proxy-send-timeout", s.send_timeout),
        ("proxy-read-timeout", s.read_timeout),
    ] {
        if let Some(d) = value {
            out.push((format!("{NGINX}{key}"), d.0.div_ceil(1000).to_string()));
        }
    }
    if let Some(size) = s.body_size {
        out.push((
            format!("{NGINX}proxy-body-size"),
            crate::targets::nginx::body_size(size),
        ));
    }
    if let Some(limit) = s.rate {
        out.push((format!("{NGINX}limit-rps"), limit.rate.to_string()));
        if let Some(multiple) = burst_multiplier(limit.rate, limit.burst) {
            out.push((
                format!("{NGINX}limit-burst-multiplier"),
                multiple.to_string(),
            ));
        }
    }
    out
}

/// The burst as ingress-nginx writes it, a whole multiple of the rate.
fn burst_multiplier(rate: u32, burst: u32) -> Option<u32> {
    (rate > 0 && burst > 0 && burst.is_multiple_of(rate)).then(|| burst / rate)
}

/// What ingress-nginx cannot express of a Kubernetes topology's routes: a
/// warning at each route, saying what differs.
pub(crate) fn unexpressible(topo: &TopologyPlan, diags: &mut Diagnostics) {
    if topo.allowed.contains(&Code::IngressCannotExpress) {
        return;
    }
    let instances = topo.hosts.iter().flat_map(|h| &h.services);
    for inst in instances {
        let public = public(inst).is_some();
        for route in inst.routes.iter().filter(|r| public || r.domain.is_some()) {
            let s = &route.settings;
            let mut differs = Vec::new();
            if s.strip_prefix {
                differs.push(format!(
                    "`strip_prefix`: `{}` reaches the service with its prefix",
                    route.path
                ));
            }
            if let Some(limit) = s.rate {
                differs.push(format!(
                    "the status past the rate: the controller's ConfigMap's `limit-req-status-code` (503 unless set), not {}",
                    limit.status
                ));
                if burst_multiplier(limit.rate, limit.burst).is_none() {
                    differs.push(format!(
                        "a burst of {} with a rate of {}: ingress-nginx's burst is a whole multiple of the rate (5 unless set)",
                        limit.burst, limit.rate
                    ));
                }
            }
            for (what, d) in [
                ("connect_timeout", s.connect_timeout),
                ("send_timeout", s.send_timeout),
                ("read_timeout", s.read_timeout),
            ] {
                if d.is_some_and(|d| !d.0.is_multiple_of(1000)) {
                    differs.push(format!("`{what}` is rounded up to whole seconds"));
                }
            }
            if let Some(d) = cannot_express("ingress-nginx", topo, inst, route, &differs) {
                diags.push(d);
            }
        }
    }
}

/// W0502 at a route, when `what` (the route objects' controller) cannot
/// write some of its settings: `differs` says which, and how it is written.
pub(super) fn cannot_express(
    what: &str,
    topo: &TopologyPlan,
    inst: &Instance,
    route: &RoutedPath,
    differs: &[String],
) -> Option<Diagnostic> {
    if differs.is_empty() {
        return None;
    }
    Some(
        Diagnostic::error(
            Code::IngressCannotExpress,
            route.span,
            format!(
                "{what} cannot express route `{}` of `{}` exactly on topology `{}`",
                route.path, inst.name, topo.name
            ),
        )
        .label("written as close as it can")
        .help(differs.join("; ")),
    )
}

/// `https://api.example.com/x` → ("https", "api.example.com").
fn split_url(url: &str) -> Option<(String, String)> {
    let u = crate::grammar::url(url).ok()?;
    Some((u.scheme.to_string(), u.host))
}
