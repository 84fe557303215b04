//! Redis's RDB copies, in `out/<topology>/<service>/backup/` (written by
//! `targets::pgbackrest::generate`): `backup.sh`, which the task runs, and
//! `restore.sh` (`plan::redis_backup`).

use serde::Serialize;

use super::header;
use crate::options::Options;
use crate::plan::backup::BACKUP_DIR;
use crate::plan::redis_backup::{RedisBackup, COPIES_DIR};
use crate::plan::TopologyPlan;

#[derive(Serialize)]
pub(super) struct Model<'a> {
    header: String,
    service: &'a str,
    /// The server's compose name.
    host: &'a str,
    port: u16,
    /// redis-cli's TLS options, with a space before.
    tls: &'static str,
    copies: &'static str,
    dir: &'static str,
    data_dir: &'a str,
    schedule: &'a str,
    retention_days: u32,
    retention_minutes: u64,
}

pub(super) const FILES: &[(&str, &str)] = &[
    ("backup.sh", "redis-backup.sh"),
    ("restore.sh", "redis-restore.sh"),
];

pub(super) fn model<'a>(
    topo: &TopologyPlan,
    plan: &'a RedisBackup,
    options: &Options,
) -> Model<'a> {
    Model {
        header: header("#", options, &topo.name),
        service: &plan.service,
        host: &plan.service,
        port: plan.port,
        // The CA the kind `redis_tls` mounts at /tls.
        tls: if plan.tls {
            " --tls --cacert /tls/ca.crt"
        } else {
            ""
        },
        copies: COPIES_DIR,
        dir: BACKUP_DIR,
        data_dir: &plan.data_dir,
        schedule: &plan.schedule.expression,
        retention_days: plan.retention_days,
        retention_minutes: u64::from(plan.retention_days) * 24 * 60,
    }
}
