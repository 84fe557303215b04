//! Redis's backups (docs/targets.md, "Backups"): a scheduled task,
//! `<service>-backup`, copies the server's dataset as an RDB file
//! (`redis-cli --rdb`, over the replication protocol, with the server's
//! password and TLS) into the volume `<service>-backups`, and removes the
//! copies past the retention. `restore.sh` puts a copy back where the server
//! loads it from at its next start.
//!
//! With replicas (`ha = replica` or `sentinel`) every node is copied on its
//! own host: a replica has the whole dataset, and whichever node is the
//! master when a host is lost, the others still hold recent copies. A copy is
//! restored on the master's host only (`restore.sh` refuses a node whose
//! Sentinel-rewritten config names a master); the replicas copy the restored
//! dataset from it as they start.

use crate::diag::Diagnostics;
use crate::schedule::Schedule;

use super::backup_task::{backup_task, not_written, when, BACKUP_DIR};
use super::*;

/// Where the copies are, in the task's container.
pub const COPIES_DIR: &str = "/backups";

/// The RDB copies of one Redis service.
#[derive(Debug, Clone, PartialEq)]
pub struct RedisBackup {
    pub service: Name,
    /// The port the task connects to, in the server's container.
    pub port: u16,
    /// The server answers on TLS only (the kind `redis_tls`).
    pub tls: bool,
    /// The server's data directory, where a restore puts a copy back.
    pub data_dir: String,
    pub schedule: Schedule,
    pub retention_days: u32,
}

impl Topo<'_> {
    pub(super) fn redis_backup(
        &self,
        name: &Name,
        inst: &Instance,
        b: &BackupDef,
        diags: &mut Diagnostics,
    ) -> Option<RedisBackup> {
        let refuse = |why: String, diags: &mut Diagnostics| {
            diags.push(not_written(b, why));
            None
        };
        if b.s3.is_some() {
            return refuse(
                format!("copies of `{name}` to a bucket are not written yet: they go to the volume `{name}-backups`"),
                diags,
            );
        }
        let Some(port) = inst.ports.first().map(|p| p.container) else {
            return refuse(
                format!("`{name}` has no port to copy its dataset from"),
                diags,
            );
        };
        let Some(data_dir) = inst.storage.volumes.first().map(|v| v.path.clone()) else {
            return refuse(
                format!("`{name}` has no volume to restore a copy into"),
                diags,
            );
        };
        let (schedule, retention_days) = when(b);
        Some(RedisBackup {
            service: name.clone(),
            port,
            tls: self.is_kind(name, "redis_tls"),
            data_dir,
            schedule,
            retention_days,
        })
    }
}

impl RedisBackup {
    /// The task: the server's image (its `redis-cli`), its password, its
    /// mounts (the TLS files), its data volume (for a restore) and the
    /// copies' volume.
    pub(super) fn task(&self, server: &Instance) -> Instance {
        let name = &self.service;
        let mut volumes = server.storage.volumes.clone();
        volumes.push(Volume {
            name: format!("{name}-backups"),
            path: COPIES_DIR.into(),
            size: Size(10 << 30),
        });
        let mounts: Vec<Mount> = server
            .storage
            .mounts
            .iter()
            .filter(|m| !m.generated)
            .cloned()
            .collect();
        let program = Program {
            // The server's own image, or the image it builds: its redis-cli.
            build: server.program.build.clone(),
            entrypoint: Some(vec!["sh".into()]),
            command: Some(vec![format!("{BACKUP_DIR}/backup.sh")]),
            ..Program::default()
        };
        let mut task = backup_task(
            name,
            "redis-backup",
            program,
            volumes,
            mounts,
            &self.schedule,
        );
        task.image = server.image.clone();
        task.env = server
            .env
            .iter()
            .filter(|v| v.key == REDIS_PASSWORD_ENV)
            .cloned()
            .collect();
        task
    }
}
