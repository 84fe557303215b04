//! cert-manager: the certificates of the Ingress's https hosts, from the
//! topology's ACME server (`certificates.yaml`): an `Issuer` with the HTTP-01
//! solver on the Ingress's class, and a `Certificate` per host that fills the
//! Secret the Ingress's `tls` section names.

use serde::Serialize;

use super::*;

#[derive(Serialize)]
struct IssuerSpec {
    acme: AcmeIssuer,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AcmeIssuer {
    server: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    private_key_secret_ref: SecretRef,
    solvers: Vec<Solver>,
}

#[derive(Serialize)]
struct SecretRef {
    name: String,
}

#[derive(Serialize)]
struct Solver {
    http01: Http01,
}

#[derive(Serialize)]
struct Http01 {
    ingress: SolverIngress,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SolverIngress {
    #[serde(skip_serializing_if = "Option::is_none")]
    ingress_class_name: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CertificateSpec {
    secret_name: String,
    dns_names: Vec<String>,
    issuer_ref: IssuerRef,
}

#[derive(Serialize)]
struct IssuerRef {
    name: String,
    kind: &'static str,
}

impl Cx<'_> {
    /// The Issuer and a Certificate per TLS host of the Ingresses, if any.
    pub(super) fn certificates(&self, ingresses: &[Object<IngressSpec>]) -> Option<Documents> {
        let tls = tls(ingresses);
        if tls.is_empty() {
            return None;
        }
        let issuer = format!("{}-acme", self.plan.stack);
        let meta = |name: String| Metadata {
            name,
            namespace: Some(self.topo.namespace.clone()),
            labels: self.part_of(),
            ..Metadata::default()
        };
        let mut docs = Documents::default();
        docs.push(&Object {
            api_version: "cert-manager.io/v1",
            kind: "Issuer",
            metadata: meta(issuer.clone()),
            spec: Some(IssuerSpec {
                acme: AcmeIssuer {
                    server: self.topo.acme.directory.clone(),
                    email: self.topo.acme.email.clone(),
                    private_key_secret_ref: SecretRef {
                        name: format!("{issuer}-account"),
                    },
                    solvers: vec![Solver {
                        http01: Http01 {
                            ingress: SolverIngress {
                                ingress_class_name: self.topo.ingress_class.clone(),
                            },
                        },
                    }],
                },
            }),
        });
        for t in tls {
            docs.push(&Object {
                api_version: "cert-manager.io/v1",
                kind: "Certificate",
                metadata: meta(t.secret_name.clone()),
                spec: Some(CertificateSpec {
                    secret_name: t.secret_name.clone(),
                    dns_names: t.hosts.clone(),
                    issuer_ref: IssuerRef {
                        name: issuer.clone(),
                        kind: "Issuer",
                    },
                }),
            });
        }
        Some(docs)
    }
}

/// The TLS hosts of the Ingresses, each set once: a Certificate each, named
/// as its Secret.
pub(super) fn tls(ingresses: &[Object<IngressSpec>]) -> Vec<&IngressTls> {
    let mut tls: Vec<&IngressTls> = Vec::new();
    for t in ingresses
        .iter()
        .filter_map(|i| i.spec.as_ref())
        .flat_map(|s| &s.tls)
    {
        if !tls.iter().any(|o| o.hosts == t.hosts) {
            tls.push(t);
        }
    }
    tls
}
