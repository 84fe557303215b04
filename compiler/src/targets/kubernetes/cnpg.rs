//! PostgreSQL run by the CloudNativePG operator: its `Cluster`, and with a
//! backup the Barman Cloud plugin's `ObjectStore`, a `ScheduledBackup`, and
//! the `Cluster` that restores it (`restore/<service>.yaml`, outside `k8s/`:
//! applying `k8s/` never restores).

use super::workload::resources;
use super::*;
use crate::plan::backups::Backup;
use crate::plan::cnpg_backup::CnpgBackup;
use crate::plan::roles::Access;

/// The Barman Cloud plugin's name, as the operator knows it.
const BARMAN_PLUGIN: &str = "barman-cloud.cloudnative-pg.io";
/// The external cluster a recovery reads.
const ORIGIN: &str = "origin";

impl Cx<'_> {
    /// A CloudNativePG Cluster in place of the StatefulSet and Services: the
    /// operator creates the pods, the volume claims and the `-rw`/`-ro` Services.
    pub(super) fn cnpg_cluster(&self, inst: &Instance) -> Documents {
        let mut cluster = self.cluster_object(inst);
        let Some(backup) = cnpg_backup(inst) else {
            return Documents::of(&cluster);
        };
        if let Some(spec) = cluster.spec.as_mut() {
            spec.plugins = vec![archiver(backup)];
        }
        let mut docs = Documents::of(&cluster);
        docs.push(&self.object_store(inst, backup));
        docs.push(&Object {
            api_version: "postgresql.cnpg.io/v1",
            kind: "ScheduledBackup",
            metadata: self.metadata(format!("{}-backup", inst.name), inst),
            spec: Some(ScheduledBackupSpec {
                schedule: backup.six_fields(),
                // A first base backup as soon as the cluster runs.
                immediate: true,
                backup_owner_reference: "self",
                cluster: NameOnly {
                    name: inst.name.to_string(),
                },
                method: "plugin",
                plugin_configuration: PluginName {
                    name: BARMAN_PLUGIN,
                },
            }),
        });
        docs
    }

    /// The Cluster that replaces a lost one from its backups: the same name
    /// (so its Services keep theirs), recovered from the store to its latest
    /// archived change, archiving into the same place again (its new
    /// timeline follows the old ones, so the non-empty archive is expected).
    pub(super) fn cnpg_restore(&self, inst: &Instance) -> Option<Documents> {
        let backup = cnpg_backup(inst)?;
        let mut cluster = self.cluster_object(inst);
        cluster
            .metadata
            .annotations
            .insert("cnpg.io/skipEmptyWalArchiveCheck".into(), "enabled".into());
        let spec = cluster.spec.as_mut()?;
        let initdb = spec.bootstrap.initdb.take()?;
        spec.bootstrap.recovery = Some(CnpgRecovery {
            source: ORIGIN.into(),
            database: initdb.database,
            owner: initdb.owner,
            secret: initdb.secret,
        });
        spec.plugins = vec![archiver(backup)];
        spec.external_clusters = vec![CnpgExternalCluster {
            name: ORIGIN.into(),
            plugin: CnpgPlugin {
                name: BARMAN_PLUGIN,
                is_wal_archiver: None,
                parameters: IndexMap::from([
                    ("barmanObjectName", store_name(&inst.name)),
                    ("serverName", inst.name.to_string()),
                ]),
            },
        }];
        Some(Documents::of(&cluster))
    }

    fn cluster_object(&self, inst: &Instance) -> Object<CnpgClusterSpec> {
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
        Object {
            api_version: "postgresql.cnpg.io/v1",
            kind: "Cluster",
            metadata: self.metadata(inst.name.to_string(), inst),
            spec: Some(CnpgClusterSpec {
                instances: inst.replicas.max(1),
                bootstrap: CnpgBootstrap {
                    initdb: Some(CnpgInitDb {
                        database: text("database"),
                        owner: text("user"),
                        secret: NameOnly {
                            name: cnpg_secret(&inst.name),
                        },
                    }),
                    recovery: None,
                },
                storage: CnpgStorage { size: memory(size) },
                postgresql: (!inst.replication.postgresql.is_empty()).then(|| CnpgPostgresql {
                    parameters: inst
                        .replication
                        .postgresql
                        .iter()
                        .map(|p| (p.name.to_string(), p.value.clone()))
                        .collect(),
                }),
                resources: resources(inst),
                affinity: CnpgAffinity {
                    enable_pod_anti_affinity: true,
                    topology_key: "kubernetes.io/hostname",
                },
                inherited_metadata: Some(self.scrape_annotations(inst))
                    .filter(|a| !a.is_empty())
                    .map(|annotations| InheritedMetadata { annotations }),
                managed: self.managed_roles(inst, &text("user")),
                ..CnpgClusterSpec::default()
            }),
        }
    }

    /// The clients' roles (`roles = per_service`): each reads, a client of
    /// `url` writes, and a task that writes (a migration) is a member of the
    /// owner, which CloudNativePG does not make a superuser.
    fn managed_roles(&self, inst: &Instance, owner: &str) -> Option<CnpgManaged> {
        let roles = self.topo.roles.get(&inst.name)?;
        let roles = roles
            .iter()
            .map(|r| {
                let mut in_roles = vec!["pg_read_all_data".to_string()];
                if r.access >= Access::Write {
                    in_roles.push("pg_write_all_data".into());
                }
                if r.access >= Access::Migrate {
                    in_roles.push(owner.to_string());
                }
                CnpgRole {
                    name: r.name.to_string(),
                    comment: format!("the role of `{}`, made by stackc", r.client),
                    ensure: "present",
                    login: true,
                    superuser: false,
                    createdb: false,
                    createrole: false,
                    replication: false,
                    in_roles,
                    password_secret: NameOnly {
                        name: role_secret(&inst.name, &r.client),
                    },
                }
            })
            .collect();
        Some(CnpgManaged { roles })
    }

    /// The bucket, its credentials (the Secret `secrets.sh` makes), gzip, and
    /// the retention as a recovery window.
    fn object_store(&self, inst: &Instance, backup: &CnpgBackup) -> Object<ObjectStoreSpec> {
        let key = |key: &str| SecretKeyRef {
            name: store_secret(&inst.name),
            key: key.into(),
            optional: false,
        };
        Object {
            api_version: "barmancloud.cnpg.io/v1",
            kind: "ObjectStore",
            metadata: self.metadata(store_name(&inst.name), inst),
            spec: Some(ObjectStoreSpec {
                configuration: BarmanConfiguration {
                    destination_path: backup.destination(),
                    endpoint_url: backup.endpoint_url(),
                    s3_credentials: S3Credentials {
                        access_key_id: key("ACCESS_KEY_ID"),
                        secret_access_key: key("ACCESS_SECRET_KEY"),
                        region: key("REGION"),
                    },
                    wal: Compression {
                        compression: "gzip",
                    },
                    data: Compression {
                        compression: "gzip",
                    },
                },
                retention_policy: format!("{}d", backup.retention_days),
            }),
        }
    }
}

/// The backups of a CloudNativePG cluster, when it has them.
pub(super) fn cnpg_backup(inst: &Instance) -> Option<&CnpgBackup> {
    match inst.storage.backup.as_deref()? {
        Backup::Cnpg(b) => Some(b),
        _ => None,
    }
}

/// The plugin archiving the WAL into the cluster's store.
fn archiver(backup: &CnpgBackup) -> CnpgPlugin {
    CnpgPlugin {
        name: BARMAN_PLUGIN,
        is_wal_archiver: Some(true),
        parameters: IndexMap::from([("barmanObjectName", store_name(&backup.service))]),
    }
}

fn store_name(service: &str) -> String {
    format!("{service}-store")
}

/// The Secret of a store's credentials and region, made by `secrets.sh`.
pub(super) fn store_secret(service: &str) -> String {
    format!("{service}-backup-s3")
}

/// The `kubernetes.io/basic-auth` Secret of a client's role, made by
/// `secrets.sh`.
pub(super) fn role_secret(service: &str, client: &str) -> String {
    format!("{service}-role-{client}")
}

/// The `kubernetes.io/basic-auth` Secret a CloudNativePG Cluster bootstraps from.
pub(super) fn cnpg_secret(service: &str) -> String {
    format!("{service}-app")
}
