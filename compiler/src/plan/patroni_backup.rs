//! Backups of a Patroni cluster on hosts (docs/targets.md, "Backups"): the
//! leader archives its WAL with pgBackRest into a bucket that every node
//! names, so the archive follows a failover; a backup task beside every node
//! backs up when its node is the leader and does nothing on a replica. A volume could not hold the
//! repository: it stays on one host while the leader moves.
//!
//! The restore (`restore.sh` on one host, every node stopped) brings the
//! data directory back, replays the archive until the server promotes, and
//! removes the cluster's state from etcd: Patroni then takes the restored
//! directory as the new cluster's, and the other nodes, emptied by
//! `restore.sh --replica` once it leads, clone it.

use crate::diag::{Code, Diagnostic, Diagnostics};

use super::backup::{attach, BackupPlan, ClusterRestore, Repo};
use super::*;

/// The superuser Patroni runs as, and pgBackRest connects as on the socket.
pub const PATRONI_SUPERUSER: &str = "postgres";

impl Topo<'_> {
    /// A Patroni node with `backup`: its bucket, archiving in its Patroni
    /// config (`targets::patroni`), pgBackRest in the node image.
    pub(super) fn wire_patroni_backup(
        &self,
        name: &Name,
        def: &ServiceDef,
        node: &PatroniNode,
        inst: &mut Instance,
        b: &BackupDef,
        diags: &mut Diagnostics,
    ) -> Option<BackupPlan> {
        let mut plan = self.backup_plan(name, def, inst, b, diags)?;
        if plan.repo == Repo::Volume {
            diags.push(
                Diagnostic::error(
                    Code::MissingField,
                    b.span,
                    format!("the backups of the Patroni cluster `{name}` need a bucket"),
                )
                .label("no `s3` block")
                .help("add `s3 { bucket = \"NAME\"  region = \"REGION\"  access_key = secret.NAME  secret_key = secret.NAME }`: the leader moves between hosts, and a volume stays on one"),
            );
            return None;
        }
        plan.data_dir.clone_from(&node.data_dir);
        plan.user = PATRONI_SUPERUSER.into();
        plan.port = node.port;
        plan.cluster = Some(Box::new(ClusterRestore {
            scope: node.scope.clone(),
            ttl: node.ttl,
            bin_dir: node.bin_dir(),
        }));
        attach(inst, &plan, b.span);
        Some(plan)
    }
}
