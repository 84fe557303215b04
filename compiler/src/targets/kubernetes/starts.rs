//! Start order on Kubernetes (docs/language.md, "Health checks and start
//! order"): a service starts after the healthy services it depends on, as
//! compose's `depends_on` with `service_healthy` says. Each such dependency
//! gets an init container that waits until a connection to its Service
//! succeeds. A Service forwards only to ready pods, those whose readiness
//! probe (the same health check) passes, so the connection succeeds exactly
//! when one of them is healthy. A dependency that only has to be started has
//! no such moment on Kubernetes and is not waited for; a task that runs once
//! is waited for by `tasks.rs`.

use super::*;
use crate::plan::Condition;

/// The image of the init container that waits for a dependency: bash, whose
/// `/dev/tcp` connects without a netcat (whose flags differ by build).
pub const WAIT_IMAGE: &str = "bash:5.2";

/// The wait, with the Service and port as its arguments (no string of the
/// file is part of the script). A name that does not resolve yet, a Service
/// without a ready pod (kube-proxy refuses the connection) and a closed port
/// all fail the connection, and it is tried again.
pub const WAIT_SCRIPT: &str =
    r#"until (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; do echo "waiting for $1:$2"; sleep 2; done"#;

impl Cx<'_> {
    /// An init container per healthy dependency that runs in the cluster.
    pub(super) fn dependency_waits<'s>(
        &'s self,
        inst: &'s Instance,
    ) -> impl Iterator<Item = Container> + 's {
        inst.depends_on
            .iter()
            .filter(|(_, c)| *c == Condition::Healthy)
            .filter_map(|(dep, _)| {
                let (host, port) = self.service_endpoint(dep)?;
                Some(Container {
                    name: format!("wait-for-{dep}"),
                    image: Some(Name::new(WAIT_IMAGE)),
                    command: Some(vec!["bash".into(), "-c".into(), WAIT_SCRIPT.into()]),
                    args: Some(vec!["wait".into(), host, port.to_string()]),
                    ..Default::default()
                })
            })
    }

    /// The Service and port that reach a service of the cluster by its first
    /// port (CloudNativePG's primary, `<service>-rw`, for its clusters); none
    /// when it runs elsewhere or has no port.
    fn service_endpoint(&self, service: &str) -> Option<(String, u16)> {
        let target = self.instances.get(service)?;
        let port = target.ports.first()?.container;
        let host = match target.ha {
            HaMode::CloudNativePg => format!("{service}-rw"),
            _ => service.to_string(),
        };
        Some((host, port))
    }
}
