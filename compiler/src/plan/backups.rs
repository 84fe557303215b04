//! The backups of a stateful service, by what it is (docs/targets.md,
//! "Backups"): PostgreSQL with pgBackRest (`backup`: one server or a
//! streaming primary; `patroni_backup`: a Patroni cluster), CloudNativePG's
//! own on Kubernetes (`cnpg_backup`), Redis's RDB copies (`redis_backup`).
//! This module picks one and attaches what it plans to the instance; the
//! others know nothing of each other.

use crate::diag::Diagnostics;

use super::backup::BackupPlan;
use super::backup_task::not_written;
use super::cnpg_backup::CnpgBackup;
use super::redis_backup::RedisBackup;
use super::*;

/// The backups of a stateful service, by what it is.
#[derive(Debug, Clone, PartialEq)]
pub enum Backup {
    Postgres(BackupPlan),
    Redis(RedisBackup),
    /// CloudNativePG's own, on Kubernetes.
    Cnpg(Box<CnpgBackup>),
}

impl Topo<'_> {
    /// A service with `backup`: planned by what it is, or refused at its
    /// block.
    pub(super) fn wire_backup(
        &self,
        name: &Name,
        def: &ServiceDef,
        inst: &mut Instance,
        diags: &mut Diagnostics,
    ) {
        let Some(b) = &def.storage.backup else { return };
        let backup = if inst.ha == HaMode::CloudNativePg {
            self.wire_cnpg_backup(name, b, diags)
                .map(|c| Backup::Cnpg(Box::new(c)))
        } else if self.topo.platform.value != Platform::Compose {
            let why = if self.postgres_image(name, def).is_some() {
                format!("backups of `{name}` on Kubernetes are CloudNativePG's: `{name}` runs as a StatefulSet here; write `ha = cloudnativepg`")
            } else {
                format!("backups of `{name}` on Kubernetes are not written yet")
            };
            diags.push(not_written(b, why));
            None
        } else if self.is_kind(name, "redis") {
            self.redis_backup(name, inst, b, diags).map(Backup::Redis)
        } else if let Some(node) = inst.replication.patroni.clone() {
            self.wire_patroni_backup(name, def, &node, inst, b, diags)
                .map(Backup::Postgres)
        } else {
            self.wire_pgbackrest(name, def, inst, b, diags)
                .map(Backup::Postgres)
        };
        inst.storage.backup = backup.map(Box::new);
    }
}

/// The scheduled task that takes a server's backups, where one does (the
/// operator takes CloudNativePG's).
pub(super) fn task(server: &Instance) -> Option<Instance> {
    match server.storage.backup.as_deref()? {
        Backup::Postgres(plan) => Some(super::backup::task(server, plan)),
        Backup::Redis(plan) => Some(plan.task(server)),
        Backup::Cnpg(_) => None,
    }
}
