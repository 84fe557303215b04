//! What every backup task shares, PostgreSQL's and Redis's: the generated
//! directory it mounts, its schedule and retention with their defaults, and
//! the task itself (`<service>-backup`, scheduled, after the server).

use crate::diag::{Code, Diagnostic};
use crate::schedule::Schedule;

use super::*;

/// Where the generated backup directory (pgbackrest.conf, the scripts) is
/// mounted in the server's and the task's containers.
pub const BACKUP_DIR: &str = "/stackc/backup";

const DEFAULT_SCHEDULE: &str = "0 2 * * *";
const DEFAULT_RETENTION_DAYS: u32 = 30;

/// The schedule and retention of a `backup` block, defaulted.
pub(super) fn when(b: &BackupDef) -> (Schedule, u32) {
    (
        b.schedule.as_ref().map_or_else(
            || Schedule::parse(DEFAULT_SCHEDULE).expect("the default schedule is valid"),
            |s| s.value.clone(),
        ),
        b.retention
            .as_ref()
            .map_or(DEFAULT_RETENTION_DAYS, |r| r.value),
    )
}

/// The scheduled task `<service>-backup`: its program, the volumes and the
/// mounts it shares with the server, the generated backup directory, after
/// the server is healthy.
pub(super) fn backup_task(
    service: &Name,
    kind: &str,
    program: Program,
    volumes: Vec<Volume>,
    mut mounts: Vec<Mount>,
    schedule: &Schedule,
) -> Instance {
    mounts.push(Mount::generated(format!("{service}/backup"), BACKUP_DIR));
    Instance {
        program: program.into(),
        storage: Storage {
            volumes,
            mounts,
            backup: None,
            shared_from: Some(service.clone()),
        }
        .into(),
        lifecycle: Lifecycle {
            schedule: Some(schedule.clone()),
            ..Lifecycle::default()
        }
        .into(),
        depends_on: vec![(service.clone(), Condition::Healthy)],
        kind: Some(Name::new(kind)),
        restart: Restart::No,
        ..Instance::auxiliary(Name::new(format!("{service}-backup")), Role::Task)
    }
}

/// A `backup` stackc does not write (yet), at the block.
pub(super) fn not_written(b: &BackupDef, why: String) -> Diagnostic {
    Diagnostic::error(Code::NotSupported, b.span, why)
        .label("backup")
        .help("backups are of PostgreSQL in compose (pgBackRest, to a volume or an S3 bucket; one server or a streaming primary; a Patroni cluster to a bucket) or on Kubernetes (a CloudNativePG cluster, to a bucket), and of Redis in compose (RDB copies to a volume; one server, replicas or Sentinel)")
}
