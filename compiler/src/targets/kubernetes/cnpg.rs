//! PostgreSQL run by the CloudNativePG operator: its `Cluster`.

use super::workload::resources;
use super::*;

impl Cx<'_> {
    /// A CloudNativePG Cluster in place of the StatefulSet and Services: the
    /// operator creates the pods, the volume claims and the `-rw`/`-ro` Services.
    pub(super) fn cnpg_cluster(&self, inst: &Instance) -> Documents {
        let text = |param: &str| {
            literal(
                inst.parameters
                    .params
                    .get(param)
                    .map_or(&[][..], |v| v.as_slice()),
            )
            .unwrap_or_default()
        };
        let size = inst
            .storage
            .volumes
            .first()
            .map_or(Size(1 << 30), |v| v.size);
        let cluster = Object {
            api_version: "postgresql.cnpg.io/v1",
            kind: "Cluster",
            metadata: self.metadata(inst.name.to_string(), inst),
            spec: Some(CnpgClusterSpec {
                instances: inst.replicas.max(1),
                bootstrap: CnpgBootstrap {
                    initdb: CnpgInitDb {
                        database: text("database"),
                        owner: text("user"),
                        secret: NameOnly {
                            name: cnpg_secret(&inst.name),
                        },
                    },
                },
                storage: CnpgStorage { size: memory(size) },
                resources: resources(inst),
                affinity: CnpgAffinity {
                    enable_pod_anti_affinity: true,
                    topology_key: "kubernetes.io/hostname",
                },
            }),
        };
        Documents::of(&cluster)
    }
}

/// The `kubernetes.io/basic-auth` Secret a CloudNativePG Cluster bootstraps from.
pub(super) fn cnpg_secret(service: &str) -> String {
    format!("{service}-app")
}
