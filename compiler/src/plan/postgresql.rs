//! A PostgreSQL service's `postgresql { ... }` settings, written where its HA
//! mode reads them: a single server's command line (`-c NAME=VALUE`, after
//! the backups' archiving), or `Replication::postgresql` for the targets of
//! streaming (every node's `postgresql.conf`), Patroni (the cluster-wide
//! parameters) and CloudNativePG. A service of kind `postgres_tls` gets the
//! settings of TLS there too, on compose hosts, with its certificates mounted
//! and its key copied where PostgreSQL accepts it; on Kubernetes
//! CloudNativePG serves TLS itself.

use crate::diag::{Code, Diagnostic, Diagnostics, Span};

use super::*;

/// The WAL a primary keeps for its standbys, unless the service sets
/// `wal_keep_size`: a standby that falls further behind must be rebuilt.
pub const WAL_KEEP_SIZE: &str = "1GB";

/// The stdlib kind of PostgreSQL over TLS.
const POSTGRES_TLS: &str = "postgres_tls";

/// Where a `postgres_tls` service's certificates are mounted from (beside
/// the .stack file), and at.
const TLS_SOURCE: &str = "./postgres/tls";
const TLS_DIR: &str = "/tls";

/// Where its key is copied, owned by the server's user with mode 0600: the
/// only key PostgreSQL reads (a mounted file keeps the host's owner).
pub const TLS_KEY: &str = "/var/lib/postgresql/stackc-server.key";

/// The script of a single `postgres_tls` server that makes the image's
/// `pg_hba.conf` accept TCP over TLS only.
pub const HOSTSSL_SCRIPT: &str = "hostssl.sh";

/// The entrypoint of a `postgres_tls` container: the key copied, then the
/// image's own entrypoint with the command (`$@`).
fn tls_entrypoint() -> Vec<String> {
    vec![
        "sh".into(),
        "-c".into(),
        format!("install -o postgres -g postgres -m 0600 {TLS_DIR}/server.key {TLS_KEY} && exec docker-entrypoint.sh \"$@\""),
        POSTGRES_TLS.into(),
    ]
}

/// The settings of TLS, read from the mounted files and the copied key.
fn tls_settings() -> Vec<PgParam> {
    [
        ("ssl", "on".to_string()),
        ("ssl_cert_file", format!("{TLS_DIR}/server.crt")),
        ("ssl_key_file", TLS_KEY.to_string()),
        ("ssl_ca_file", format!("{TLS_DIR}/ca.crt")),
    ]
    .into_iter()
    .map(|(name, value)| PgParam {
        name: Name::new_static(name),
        value,
        from: PgFrom::Tls,
    })
    .collect()
}

impl Topo<'_> {
    pub(super) fn wire_postgresql(
        &self,
        name: &Name,
        def: &ServiceDef,
        inst: &mut Instance,
        diags: &mut Diagnostics,
    ) {
        let mut params: Vec<PgParam> = def
            .replication
            .postgresql
            .values()
            .map(|s| PgParam {
                name: s.name.name.clone(),
                value: s.value.value.to_conf(),
                from: PgFrom::Block,
            })
            .collect();
        // Where a diagnostic points: the first setting, else the kind.
        let first = def
            .replication
            .postgresql
            .values()
            .next()
            .map(|s| s.name.span);
        let kind_span = self.kind_span(name);
        if self.is_kind(name, POSTGRES_TLS) {
            params.extend(self.wire_tls(name, def, inst, diags));
        }
        let Some(span) = first.or(kind_span).filter(|_| !params.is_empty()) else {
            return;
        };
        if self.postgres_image(name, def).is_none() {
            diags.push(
                Diagnostic::error(
                    Code::InvalidValue,
                    span,
                    format!("`{name}` is not PostgreSQL"),
                )
                .label("a PostgreSQL setting")
                .help("`postgresql { ... }` sets a PostgreSQL server's settings: for a service of kind `postgres`, or on a `postgres` image"),
            );
            return;
        }
        let replicated = inst.replication.streaming.is_some()
            || inst.replication.patroni.is_some()
            || inst.ha == HaMode::CloudNativePg;
        if replicated {
            inst.replication.postgresql = params;
            return;
        }
        self.settings_on_command_line(name, params, span, inst, diags);
    }

    /// Where the service's kind is named in its declaration.
    fn kind_span(&self, name: &Name) -> Option<Span> {
        let decl = self.stack.services.get(name)?;
        decl.kind.as_ref().map(|k| k.span)
    }

    /// A single server's settings, as `-c NAME=VALUE` after `postgres`.
    fn settings_on_command_line(
        &self,
        name: &Name,
        params: Vec<PgParam>,
        span: Span,
        inst: &mut Instance,
        diags: &mut Diagnostics,
    ) {
        let mut command = inst
            .program
            .command
            .take()
            .unwrap_or_else(|| vec!["postgres".into()]);
        if command.first().map(String::as_str) != Some("postgres") {
            diags.push(
                Diagnostic::error(
                    Code::InvalidValue,
                    span,
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

    /// A `postgres_tls` service's certificates and entrypoint on a compose
    /// host, and the settings that read them; none where CloudNativePG
    /// serves TLS, or where it cannot be served (reported).
    fn wire_tls(
        &self,
        name: &Name,
        def: &ServiceDef,
        inst: &mut Instance,
        diags: &mut Diagnostics,
    ) -> Vec<PgParam> {
        let span = self.kind_span(name).unwrap_or_default();
        if self.topo.platform.value == Platform::Kubernetes {
            if inst.ha != HaMode::CloudNativePg {
                diags.push(
                    Diagnostic::error(
                        Code::NotSupported,
                        span,
                        format!("`{name}` of kind `postgres_tls` serves TLS on Kubernetes only as a CloudNativePG cluster"),
                    )
                    .label("its certificates are mounted from the host on compose")
                    .help(format!("set `override {name} {{ ha = cloudnativepg }}`: CloudNativePG makes and mounts the certificates")),
                );
            }
            return Vec::new();
        }
        // What the kind sets for TLS, set by the service too: each where it is.
        let tls_names = tls_settings();
        let mut taken: Vec<(String, Span)> = def
            .replication
            .postgresql
            .values()
            .filter(|s| tls_names.iter().any(|t| t.name == s.name.name))
            .map(|s| (format!("`{}`", s.name.name), s.name.span))
            .collect();
        taken.extend(
            def.program
                .entrypoint
                .as_ref()
                .map(|e| ("an entrypoint".to_string(), e.span)),
        );
        for (what, at) in &taken {
            diags.push(
                Diagnostic::error(
                    Code::InvalidValue,
                    *at,
                    format!(
                        "`{name}` of kind `postgres_tls` sets {what}, which its kind sets for TLS"
                    ),
                )
                .label("set by the kind `postgres_tls`")
                .with_secondary(span, "serves TLS from ./postgres/tls")
                .help("remove it, or use the kind `postgres` and configure TLS yourself"),
            );
        }
        if !taken.is_empty() {
            return Vec::new();
        }
        inst.storage.mounts.push(Mount {
            source: TLS_SOURCE.into(),
            target: TLS_DIR.into(),
            read_only: true,
            generated: false,
        });
        inst.program.entrypoint = Some(tls_entrypoint());
        match inst.replication.streaming.as_deref_mut() {
            // Its generated pg_hba.conf says `hostssl`.
            Some(s) => s.tls = true,
            // The image writes pg_hba.conf at initdb: a script it runs then
            // makes its lines `hostssl`.
            None => {
                inst.storage.mounts.push(Mount::generated(
                    format!("{name}/{HOSTSSL_SCRIPT}"),
                    format!("/docker-entrypoint-initdb.d/stackc-{HOSTSSL_SCRIPT}"),
                ));
                inst.replication.hostssl = true;
            }
        }
        tls_settings()
    }
}
