//! Backups of a PostgreSQL service with pgBackRest (docs/targets.md,
//! "Backups"): the server archives every WAL segment to a repository volume
//! as it fills (and at least every `ARCHIVE_TIMEOUT` seconds), and a
//! scheduled task, `<service>-backup`, takes a full backup and expires those
//! past the retention. Both run the image `targets::postgres_backup` builds:
//! the service's PostgreSQL with pgBackRest. The generated `restore.sh`
//! brings a stopped server back to the latest archived change or to a time.
//! With streaming replication, on the primary's host only.

use crate::diag::{Diagnostics, Span};
use crate::grammar::Place;
use crate::schedule::Schedule;

use super::backup_task::{backup_task, not_written, when};
use super::*;

pub use super::backup_task::BACKUP_DIR;

/// The repository: base backups and archived WAL.
pub const REPO_DIR: &str = "/var/lib/pgbackrest";
/// The server's socket directory, shared with the task so that pgBackRest
/// reaches the server as the local superuser.
pub const SOCKET_DIR: &str = "/var/run/postgresql";
/// The longest a committed change waits to be archived: the most a restore
/// can lose.
pub const ARCHIVE_TIMEOUT: u32 = 60;

/// The backups of a stateful service, by what it is.
#[derive(Debug, Clone, PartialEq)]
pub enum Backup {
    Postgres(BackupPlan),
    Redis(super::redis_backup::RedisBackup),
}

/// The backups of one PostgreSQL service.
#[derive(Debug, Clone, PartialEq)]
pub struct BackupPlan {
    /// The service, which is also pgBackRest's stanza.
    pub service: Name,
    /// The data directory (`PGDATA`).
    pub data_dir: String,
    /// The superuser pgBackRest connects as.
    pub user: String,
    pub schedule: Schedule,
    pub retention_days: u32,
    /// The service's PostgreSQL image, which the backup image is built on.
    pub image: Name,
}

impl BackupPlan {
    pub fn archive_command(&self) -> String {
        format!("pgbackrest --stanza={} archive-push %p", self.service)
    }
}

impl Topo<'_> {
    /// A service with `backup`: checked, then its server archives WAL with
    /// pgBackRest from the image built beside it.
    pub(super) fn wire_backup(
        &self,
        name: &Name,
        def: &ServiceDef,
        inst: &mut Instance,
        diags: &mut Diagnostics,
    ) {
        let Some(b) = &def.storage.backup else { return };
        if self.topo.platform.value != Platform::Compose {
            let why = format!("backups of `{name}` on Kubernetes are not written yet");
            diags.push(not_written(b, why));
            return;
        }
        if self.is_kind(name, "redis") {
            if let Some(plan) = self.redis_backup(name, inst, b, diags) {
                inst.storage.backup = Some(Box::new(Backup::Redis(plan)));
            }
            return;
        }
        // With streaming replication the primary archives and is backed up;
        // a standby does neither (archiving starts when it is promoted, and
        // would fill its disk with no stanza to push to).
        if inst
            .replication
            .streaming
            .as_ref()
            .is_some_and(|s| s.standby)
        {
            return;
        }
        let Some(plan) = self.backup_plan(name, def, inst, b, diags) else {
            return;
        };
        inst.image = None;
        inst.program.build = Some(format!("@out/{name}/backup"));
        let mut command = inst
            .program
            .command
            .take()
            .unwrap_or_else(|| vec!["postgres".into()]);
        for setting in [
            "wal_level=replica".to_string(),
            "archive_mode=on".to_string(),
            format!("archive_command={}", plan.archive_command()),
            format!("archive_timeout={ARCHIVE_TIMEOUT}"),
        ] {
            command.extend(["-c".to_string(), setting]);
        }
        inst.program.command = Some(command);
        inst.env.push(config_env(b.span));
        inst.storage
            .mounts
            .push(Mount::generated(format!("{name}/backup"), BACKUP_DIR));
        inst.storage.volumes.extend(shared_volumes(name));
        inst.storage.backup = Some(Box::new(Backup::Postgres(plan)));
    }

    fn backup_plan(
        &self,
        name: &Name,
        def: &ServiceDef,
        inst: &Instance,
        b: &BackupDef,
        diags: &mut Diagnostics,
    ) -> Option<BackupPlan> {
        let refuse = |why: String, diags: &mut Diagnostics| diags.push(not_written(b, why));
        if !matches!(inst.ha, HaMode::Single | HaMode::Streaming) {
            refuse(
                format!(
                    "backups of `{name}` with `ha = {}` are not written yet",
                    inst.ha.name()
                ),
                diags,
            );
            return None;
        }
        let Some(image) = self.postgres_image(name, def) else {
            refuse(
                format!("`{name}` is neither PostgreSQL (kind `postgres` or a `postgres` image) nor Redis (kind `redis`)"),
                diags,
            );
            return None;
        };
        let text = |key: &str| {
            inst.env
                .iter()
                .find(|v| v.key == key)
                .and_then(|v| text_of(&v.value))
        };
        let data_dir = text("PGDATA").unwrap_or_else(|| "/var/lib/postgresql/data".into());
        let user = text("POSTGRES_USER").unwrap_or_else(|| "postgres".into());
        // Both land in pgbackrest.conf and the scripts as they are.
        for (place, value) in [(Place::FilePath, &data_dir), (Place::RoleName, &user)] {
            if let Some(why) = crate::grammar::invalid(place, value) {
                refuse(
                    format!("the backup of `{name}` cannot name `{value}`: {why}"),
                    diags,
                );
                return None;
            }
        }
        Some(BackupPlan {
            service: name.clone(),
            data_dir,
            user,
            schedule: when(b).0,
            retention_days: when(b).1,
            image,
        })
    }
}

/// `PGBACKREST_CONFIG`: the generated config, in both containers.
fn config_env(span: Span) -> EnvVar {
    EnvVar {
        key: Name::new_static("PGBACKREST_CONFIG"),
        value: smallvec::smallvec![Out::Text(Name::new(format!(
            "{BACKUP_DIR}/pgbackrest.conf"
        )))],
        span,
    }
}

/// The repository and the socket directory, which the task shares.
fn shared_volumes(service: &str) -> Vec<Volume> {
    [("backups", REPO_DIR), ("run", SOCKET_DIR)]
        .into_iter()
        .map(|(what, path)| Volume {
            name: format!("{service}-{what}"),
            path: path.into(),
            size: Size(10 << 30),
        })
        .collect()
}

/// The task that takes the scheduled backups: the server's image, its data
/// volume, the repository and the socket, as the postgres user.
pub(super) fn task(server: &Instance) -> Option<Instance> {
    let plan = match server.storage.backup.as_deref()? {
        Backup::Postgres(plan) => plan,
        Backup::Redis(plan) => return Some(plan.task(server)),
    };
    let name = &plan.service;
    let mut volumes: Vec<Volume> = server
        .storage
        .volumes
        .iter()
        .filter(|v| plan.data_dir.starts_with(&v.path))
        .cloned()
        .collect();
    volumes.extend(shared_volumes(name));
    let program = Program {
        build: server.program.build.clone(),
        // The script drops to the postgres user itself.
        command: Some(vec!["sh".into(), format!("{BACKUP_DIR}/backup.sh")]),
        ..Program::default()
    };
    let mut task = backup_task(
        name,
        "pgbackrest",
        program,
        volumes,
        Vec::new(),
        &plan.schedule,
    );
    task.env = vec![config_env(Span::default())];
    Some(task)
}

impl Topo<'_> {
    /// The image of a PostgreSQL service (of kind `postgres`, or on an image
    /// of the `postgres` repository), which the backup image is built on:
    /// the official image or one built on it, with its `postgres` user.
    fn postgres_image(&self, name: &Name, def: &ServiceDef) -> Option<Name> {
        let image = &def.image.as_ref()?.value;
        let named = image.split('@').next()?;
        let path = match named.rsplit_once(':') {
            // A tag, not a registry's port.
            Some((path, tag)) if !tag.contains('/') => path,
            _ => named,
        };
        let repo = path.rsplit('/').next()?;
        (repo == "postgres" || self.is_kind(name, "postgres")).then(|| image.clone())
    }
}
