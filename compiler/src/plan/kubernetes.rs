//! Checks that only hold on Kubernetes: names the API server accepts, images to
//! pull, and what a cluster cannot do (bind mounts).

use crate::diag::{Code, Diagnostic, Diagnostics};

use super::*;

/// A DNS-1035 label: what Kubernetes requires of a Service name.
pub fn is_dns1035(s: &str) -> bool {
    crate::check::is_dns_label(s) && s.starts_with(|c: char| c.is_ascii_lowercase())
}

/// An IANA service name: what Kubernetes requires of a port name.
pub fn is_port_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 15
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && s.bytes().any(|b| b.is_ascii_lowercase())
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.contains("--")
}

impl Topo<'_> {
    pub(super) fn check_kubernetes(
        &self,
        h: usize,
        services: &[Instance],
        diags: &mut Diagnostics,
    ) {
        for inst in services {
            let Some(p) = self.placement(&inst.name, h) else {
                continue;
            };
            let def = &p.def;
            let decl = self
                .stack
                .services
                .get(&inst.name)
                .map_or(p.run_span, |d| d.name.span);
            if !is_dns1035(&inst.name) {
                diags.push(
                    Diagnostic::error(
                        Code::InvalidKubernetesName,
                        decl,
                        format!("`{}` cannot name a Kubernetes Service", inst.name),
                    )
                    .label("a Service name starts with a letter")
                    .help(format!("rename it, for example `svc-{}`", inst.name)),
                );
            }
            for port in def.ports.values() {
                if !is_port_name(&port.name.name) {
                    diags.push(
                        Diagnostic::error(
                            Code::InvalidKubernetesName,
                            port.name.span,
                            format!("`{}` is not a valid Kubernetes port name", port.name.name),
                        )
                        .label("at most 15 characters: lowercase letters, digits, `-`, one letter at least")
                        .help("rename it (for example `http`, `metrics`, `grpc`), and what refers to it: `SERVICE.ports.NAME`, probes, routes"),
                    );
                }
            }
            if inst.image.is_none() && def.build.is_some() {
                let span = def.build.as_ref().map_or(decl, |b| b.span);
                diags.push(
                    Diagnostic::error(
                        Code::MissingField,
                        span,
                        format!("service `{}` has no `image`, and Kubernetes pulls images", inst.name),
                    )
                    .label("a build context cannot run in a cluster")
                    .help(format!(
                        "give it the image your CI pushes: `override {} {{ image = \"registry/...:tag\" }}`",
                        inst.name
                    )),
                );
            }
            for m in def.mounts.values() {
                diags.push(
                    Diagnostic::error(
                        Code::NotSupported,
                        m.source.span,
                        "bind mounts are not supported on Kubernetes",
                    )
                    .label("no host path in a cluster")
                    .help("use a `volume`; configuration files belong in the image or a ConfigMap"),
                );
            }
        }
    }
}
