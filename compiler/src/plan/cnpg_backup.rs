//! Backups of a PostgreSQL cluster run by CloudNativePG (docs/targets.md,
//! "Backups"): the operator's Barman Cloud plugin archives the WAL and takes
//! the base backups into a bucket (an `ObjectStore`), on a `ScheduledBackup`;
//! `restore/<service>.yaml` recreates the cluster from it. The repository is
//! a bucket: a pod's volume is no place for its own backups.

use crate::diag::{Code, Diagnostic, Diagnostics};
use crate::schedule::Schedule;

use super::backup::S3Repo;
use super::backup_task::when;
use super::*;

/// The backups of one CloudNativePG cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct CnpgBackup {
    pub service: Name,
    pub store: S3Repo,
    pub schedule: Schedule,
    pub retention_days: u32,
}

impl Topo<'_> {
    /// A CloudNativePG cluster with `backup`: its bucket, schedule and
    /// retention.
    pub(super) fn wire_cnpg_backup(
        &self,
        name: &Name,
        b: &BackupDef,
        diags: &mut Diagnostics,
    ) -> Option<CnpgBackup> {
        let Some(s3) = &b.s3 else {
            diags.push(
                Diagnostic::error(
                    Code::MissingField,
                    b.span,
                    format!("the backups of the CloudNativePG cluster `{name}` need a bucket"),
                )
                .label("no `s3` block")
                .help("add `s3 { bucket = \"NAME\"  region = \"REGION\"  access_key = secret.NAME  secret_key = secret.NAME }`: CloudNativePG's Barman Cloud plugin writes to object storage"),
            );
            return None;
        };
        let store = self.s3_repo(name, s3, diags)?;
        let (schedule, retention_days) = when(b);
        Some(CnpgBackup {
            service: name.clone(),
            store,
            schedule,
            retention_days,
        })
    }
}

impl CnpgBackup {
    /// The store's endpoint, as barman-cloud takes it.
    pub fn endpoint_url(&self) -> String {
        match self.store.port {
            Some(port) => format!("https://{}:{port}", self.store.host),
            None => format!("https://{}", self.store.host),
        }
    }

    /// Where the backups go: `s3://BUCKET/PATH`.
    pub fn destination(&self) -> String {
        format!(
            "s3://{}/{}",
            self.store.bucket,
            self.store.path.trim_start_matches('/')
        )
    }

    /// The schedule in the six fields CloudNativePG reads (seconds first), or
    /// a macro it reads as cron does.
    pub fn six_fields(&self) -> String {
        let e = &self.schedule.expression;
        if e.starts_with('@') {
            e.clone()
        } else {
            format!("0 {e}")
        }
    }
}
