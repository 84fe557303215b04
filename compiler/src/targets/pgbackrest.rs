//! The backup files of each service with `backup`, in
//! `out/<topology>/<service>/backup/`: for PostgreSQL, pgBackRest's (the
//! image's Dockerfile, `pgbackrest.conf`, `backup.sh` and `restore.sh`,
//! `plan::backup`); for Redis, `targets::redis_backup`'s.

use serde::Serialize;

use super::{header, node_files, Files};
use crate::base::IndexSet;
use crate::diag::Diagnostics;
use crate::options::Options;
use crate::plan::backup::{BackupPlan, Repo, ARCHIVE_TIMEOUT, BACKUP_DIR, REPO_DIR, SOCKET_DIR};
use crate::plan::backups::Backup;
use crate::plan::{TopologyPlan, PATRONI_DIR};

#[derive(Serialize)]
struct Model<'a> {
    header: String,
    service: &'a str,
    image: &'a str,
    /// The package manager's line that installs pgBackRest.
    install: &'static str,
    repo: &'static str,
    socket: &'static str,
    dir: &'static str,
    data_dir: &'a str,
    user: &'a str,
    port: u16,
    retention_days: u32,
    schedule: &'a str,
    archive_timeout: u32,
    /// Where the repository is, in words.
    #[serde(rename = "where")]
    where_: String,
    repo_settings: Vec<String>,
    /// A Patroni cluster's: its name in etcd, how long a stopped node stays
    /// listed there, PostgreSQL's programs, the node's config.
    scope: &'a str,
    ttl: u64,
    bin_dir: &'a str,
    patroni_config: String,
}

const FILES: &[(&str, &str)] = &[
    ("Dockerfile", "pgbackrest-Dockerfile"),
    ("pgbackrest.conf", "pgbackrest.conf"),
    ("backup.sh", "pgbackrest-backup.sh"),
    ("restore.sh", "pgbackrest-restore.sh"),
];

/// A Patroni cluster's: the node image (`targets::patroni`) has pgBackRest,
/// and the restore is the cluster's.
const CLUSTER_FILES: &[(&str, &str)] = &[
    ("pgbackrest.conf", "pgbackrest.conf"),
    ("backup.sh", "pgbackrest-backup.sh"),
    ("restore.sh", "pgbackrest-restore-patroni.sh"),
];

/// The backup files of every service with `backup`, PostgreSQL's and Redis's.
pub fn generate(
    topo: &TopologyPlan,
    options: &Options,
    out: &mut Files<'_>,
    diags: &mut Diagnostics,
) {
    // A service on several hosts has one set of files.
    let mut done = IndexSet::default();
    for host in &topo.hosts {
        for inst in &host.services {
            let Some(backup) = inst.storage.backup.as_deref() else {
                continue;
            };
            let service = match backup {
                Backup::Postgres(plan) => &plan.service,
                Backup::Redis(plan) => &plan.service,
                // Kubernetes objects (`targets::kubernetes::cnpg`).
                Backup::Cnpg(_) => continue,
            };
            if !done.insert(service.clone()) {
                continue;
            }
            let dir = format!("{service}/backup");
            let node = (service.as_str(), host.name.as_str());
            match backup {
                Backup::Postgres(plan) => {
                    let model = model(topo, plan, options);
                    let files = if plan.cluster.is_some() {
                        CLUSTER_FILES
                    } else {
                        FILES
                    };
                    node_files(topo, &dir, files, &model, node, out, diags);
                }
                Backup::Redis(plan) => {
                    let model = super::redis_backup::model(topo, plan, options);
                    let files = super::redis_backup::FILES;
                    node_files(topo, &dir, files, &model, node, out, diags);
                }
                Backup::Cnpg(_) => {}
            }
        }
    }
}

fn model<'a>(topo: &TopologyPlan, plan: &'a BackupPlan, options: &Options) -> Model<'a> {
    Model {
        header: header("#", options, &topo.name),
        service: &plan.service,
        image: &plan.image,
        install: if plan.image.contains("alpine") {
            "apk add --no-cache pgbackrest"
        } else {
            "apt-get update && apt-get install -y --no-install-recommends pgbackrest && rm -rf /var/lib/apt/lists/*"
        },
        repo: REPO_DIR,
        socket: SOCKET_DIR,
        dir: BACKUP_DIR,
        data_dir: &plan.data_dir,
        user: &plan.user,
        port: plan.port,
        retention_days: plan.retention_days,
        schedule: &plan.schedule.expression,
        archive_timeout: ARCHIVE_TIMEOUT,
        where_: match &plan.repo {
            Repo::Volume => format!("in the volume `{}-backups`", plan.service),
            Repo::S3(s3) => format!("in the bucket `{}` at `{}`", s3.bucket, s3.host),
        },
        repo_settings: plan.repo.settings(),
        scope: plan.cluster.as_ref().map_or("", |c| c.scope.as_str()),
        ttl: plan.cluster.as_ref().map_or(0, |c| c.ttl),
        bin_dir: plan.cluster.as_ref().map_or("", |c| c.bin_dir.as_str()),
        patroni_config: format!("{PATRONI_DIR}/patroni.yml"),
    }
}
