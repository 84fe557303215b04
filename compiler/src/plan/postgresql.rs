//! A PostgreSQL service's `postgresql { ... }` settings, written where its HA
//! mode reads them: a single server's command line (`-c NAME=VALUE`, after
//! the backups' archiving), or `Replication::postgresql` for the targets of
//! streaming (every node's `postgresql.conf`), Patroni (the cluster-wide
//! parameters) and CloudNativePG.

use crate::diag::{Code, Diagnostic, Diagnostics};

use super::*;

/// The WAL a primary keeps for its standbys, unless the service sets
/// `wal_keep_size`: a standby that falls further behind must be rebuilt.
pub const WAL_KEEP_SIZE: &str = "1GB";

impl Topo<'_> {
    pub(super) fn wire_postgresql(
        &self,
        name: &Name,
        def: &ServiceDef,
        inst: &mut Instance,
        diags: &mut Diagnostics,
    ) {
        let Some(first) = def.replication.postgresql.values().next() else {
            return;
        };
        if self.postgres_image(name, def).is_none() {
            diags.push(
                Diagnostic::error(
                    Code::InvalidValue,
                    first.name.span,
                    format!("`{name}` is not PostgreSQL"),
                )
                .label("a PostgreSQL setting")
                .help("`postgresql { ... }` sets a PostgreSQL server's settings: for a service of kind `postgres`, or on a `postgres` image"),
            );
            return;
        }
        let params: Vec<PgParam> = def
            .replication
            .postgresql
            .values()
            .map(|s| PgParam {
                name: s.name.name.clone(),
                value: s.value.value.to_conf(),
            })
            .collect();
        let replicated = inst.replication.streaming.is_some()
            || inst.replication.patroni.is_some()
            || inst.ha == HaMode::CloudNativePg;
        if replicated {
            inst.replication.postgresql = params;
            return;
        }
        let mut command = inst
            .program
            .command
            .take()
            .unwrap_or_else(|| vec!["postgres".into()]);
        if command.first().map(String::as_str) != Some("postgres") {
            diags.push(
                Diagnostic::error(
                    Code::InvalidValue,
                    first.name.span,
                    format!("`{name}`'s command does not start PostgreSQL itself"),
                )
                .label("passed as `-c NAME=VALUE` to `postgres`")
                .help("start it with `command = [\"postgres\", ...]`, or set these in the configuration your command loads"),
            );
            inst.program.command = Some(command);
            return;
        }
        for p in params {
            command.extend(["-c".to_string(), format!("{}={}", p.name, p.value)]);
        }
        inst.program.command = Some(command);
    }
}
