//! The Ingress of the services with a public URL.

use super::*;

impl Cx<'_> {
    pub(super) fn ingress(&self, instances: &[&Instance]) -> Option<Object<IngressSpec>> {
        let mut rules: IndexMap<String, Vec<IngressPath>> = IndexMap::new();
        let mut tls: Vec<String> = Vec::new();
        for inst in instances {
            let Some(url) = inst.public_url.as_ref().and_then(|u| literal(u)) else {
                continue;
            };
            let Some((scheme, host)) = split_url(&url) else {
                continue;
            };
            let routes: Vec<RoutedPath> = if inst.routes.is_empty() {
                match inst.ports.first() {
                    Some(p) => vec![RoutedPath {
                        path: Name::new_static("/"),
                        port: p.name.clone(),
                    }],
                    None => continue,
                }
            } else {
                inst.routes.clone()
            };
            if scheme == "https" && !tls.contains(&host) {
                tls.push(host.clone());
            }
            let paths = rules.entry(host).or_default();
            for RoutedPath { path, port } in routes {
                paths.push(IngressPath {
                    path,
                    path_type: "Prefix",
                    backend: IngressBackend {
                        service: BackendService {
                            name: inst.name.to_string(),
                            port: NamedPort {
                                name: port.to_string(),
                            },
                        },
                    },
                });
            }
        }
        if rules.is_empty() {
            return None;
        }
        Some(Object {
            api_version: "networking.k8s.io/v1",
            kind: "Ingress",
            metadata: Metadata {
                name: self.plan.stack.clone(),
                namespace: Some(self.topo.namespace.clone()),
                labels: self.part_of(),
                ..Metadata::default()
            },
            spec: Some(IngressSpec {
                ingress_class_name: self.topo.ingress_class.clone(),
                tls: tls
                    .into_iter()
                    .map(|h| IngressTls {
                        secret_name: format!("{}-tls", h.replace('.', "-")),
                        hosts: vec![h],
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
        })
    }
}

/// `https://api.example.com/x` → ("https", "api.example.com").
fn split_url(url: &str) -> Option<(String, String)> {
    let u = crate::grammar::url(url).ok()?;
    Some((u.scheme.to_string(), u.host))
}
