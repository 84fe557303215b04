//! Gateway API HTTPRoutes (docs/targets.md, "kubernetes"), for a topology
//! with `gateway = "NAMESPACE/NAME"`: the public routes attach to that
//! Gateway, which the cluster's operator runs (its listeners hold TLS), as
//! one HTTPRoute per service and host. A route is a rule: its path prefix,
//! `strip_prefix` as a URLRewrite of the prefix to `/`, the service's port.
//! What an HTTPRoute has no field for is reported (`unexpressible`).

use serde::Serialize;

use super::ingress::{cannot_express, public, routes_of};
use super::*;
use crate::diag::Code;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HttpRouteSpec {
    parent_refs: Vec<ParentRef>,
    hostnames: Vec<String>,
    rules: Vec<RouteRule>,
}

#[derive(Serialize)]
struct ParentRef {
    name: String,
    namespace: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RouteRule {
    matches: Vec<RouteMatch>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    filters: Vec<Filter>,
    backend_refs: Vec<BackendRef>,
}

#[derive(Serialize)]
struct RouteMatch {
    path: PathMatch,
}

#[derive(Serialize)]
struct PathMatch {
    #[serde(rename = "type")]
    kind: &'static str,
    value: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Filter {
    #[serde(rename = "type")]
    kind: &'static str,
    url_rewrite: UrlRewrite,
}

#[derive(Serialize)]
struct UrlRewrite {
    path: PathModifier,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PathModifier {
    #[serde(rename = "type")]
    kind: &'static str,
    replace_prefix_match: &'static str,
}

#[derive(Serialize)]
struct BackendRef {
    name: String,
    port: u16,
}

impl Cx<'_> {
    /// `routes.yaml`: the HTTPRoutes of the services with public routes.
    pub(super) fn http_routes(&self, instances: &[&Instance]) -> Documents {
        let mut docs = Documents::default();
        let Some((namespace, name)) = &self.topo.gateway else {
            return docs;
        };
        for inst in instances {
            let hosts = rules_by_host(inst);
            let several = hosts.len() > 1;
            for (i, (host, rules)) in hosts.into_iter().enumerate() {
                let route = if several {
                    format!("{}-{}", inst.name, i + 1)
                } else {
                    inst.name.to_string()
                };
                docs.push(&Object {
                    api_version: "gateway.networking.k8s.io/v1",
                    kind: "HTTPRoute",
                    metadata: self.metadata(route, inst),
                    spec: Some(HttpRouteSpec {
                        parent_refs: vec![ParentRef {
                            name: name.clone(),
                            namespace: namespace.clone(),
                        }],
                        hostnames: vec![host],
                        rules,
                    }),
                });
            }
        }
        docs
    }
}

/// A service's routes as rules, by the host that serves them (a route's own
/// domain, else its public URL's host).
fn rules_by_host(inst: &Instance) -> IndexMap<String, Vec<RouteRule>> {
    let url = public(inst);
    let mut hosts: IndexMap<String, Vec<RouteRule>> = IndexMap::new();
    for route in routes_of(inst, url.is_some()) {
        let host = match (&route.domain, &url) {
            (Some(domain), _) => domain.clone(),
            (None, Some((_, host))) => host.clone(),
            (None, None) => continue,
        };
        let Some(port) = inst.ports.iter().find(|p| p.name == route.port) else {
            continue;
        };
        let filters = if route.settings.strip_prefix {
            vec![Filter {
                kind: "URLRewrite",
                url_rewrite: UrlRewrite {
                    path: PathModifier {
                        kind: "ReplacePrefixMatch",
                        replace_prefix_match: "/",
                    },
                },
            }]
        } else {
            Vec::new()
        };
        hosts.entry(host).or_default().push(RouteRule {
            matches: vec![RouteMatch {
                path: PathMatch {
                    kind: "PathPrefix",
                    value: route.path.to_string(),
                },
            }],
            filters,
            backend_refs: vec![BackendRef {
                name: inst.name.to_string(),
                port: port.container,
            }],
        });
    }
    hosts
}

/// What an HTTPRoute cannot express of a route: a warning at each, saying
/// what differs (the same code as ingress-nginx's).
pub(crate) fn unexpressible(topo: &TopologyPlan, diags: &mut Diagnostics) {
    if topo.allowed.contains(&Code::IngressCannotExpress) {
        return;
    }
    for inst in topo.hosts.iter().flat_map(|h| &h.services) {
        let public = public(inst).is_some();
        for route in inst.routes.iter().filter(|r| public || r.domain.is_some()) {
            let s = &route.settings;
            let mut differs = Vec::new();
            if s.connect_timeout.is_some() || s.send_timeout.is_some() || s.read_timeout.is_some() {
                differs.push("the timeouts: an HTTPRoute's are a whole request's, not a connection's or the time between reads; set them on the Gateway's implementation".to_string());
            }
            if s.body_size.is_some() {
                differs
                    .push("`body_size`: an HTTPRoute has no limit on the request body".to_string());
            }
            if s.rate.is_some() {
                differs.push("`rate` and `burst`: an HTTPRoute has no rate limit".to_string());
            }
            if let Some(d) = cannot_express("an HTTPRoute", topo, inst, route, &differs) {
                diags.push(d);
            }
        }
    }
}
