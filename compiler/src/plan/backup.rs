//! Backups of a PostgreSQL service with pgBackRest (docs/targets.md,
//! "Backups"): the server archives every WAL segment to a repository volume
//! as it fills (and at least every `ARCHIVE_TIMEOUT` seconds), and a
//! scheduled task, `<service>-backup`, takes a full backup and expires those
//! past the retention. Both run the image `targets::postgres_backup` builds:
//! the service's PostgreSQL with pgBackRest. The generated `restore.sh`
//! brings a stopped server back to the latest archived change or to a time.
//! With streaming replication, on the primary's host only; with Patroni on
//! every node, into a bucket (`plan::patroni_backup`).

use crate::diag::{Code, Diagnostic, Diagnostics, Span};
use crate::grammar::Place;
use crate::schedule::Schedule;

use super::backup_task::{backup_task, not_written, when};
use super::patroni::PATRONI_RESTAPI_PASSWORD;
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

/// The backups of one PostgreSQL service.
#[derive(Debug, Clone, PartialEq)]
pub struct BackupPlan {
    /// The service, which is also pgBackRest's stanza.
    pub service: Name,
    /// The data directory (`PGDATA`).
    pub data_dir: String,
    /// The superuser pgBackRest connects as, on the socket.
    pub user: String,
    /// The port the server listens on in its container (its socket's name).
    pub port: u16,
    pub schedule: Schedule,
    pub retention_days: u32,
    /// The service's PostgreSQL image, which the backup image is built on.
    pub image: Name,
    /// Where the repository is.
    pub repo: Repo,
    /// The Patroni cluster the server is a node of: its restore differs.
    pub cluster: Option<Box<ClusterRestore>>,
}

/// What the restore of a Patroni cluster needs besides pgBackRest's own
/// (`plan::patroni_backup`).
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterRestore {
    /// The cluster's name in etcd.
    pub scope: String,
    /// How long a stopped node stays listed in etcd.
    pub ttl: u64,
    /// PostgreSQL's programs in the node image.
    pub bin_dir: String,
}

/// A pgBackRest repository.
#[derive(Debug, Clone, PartialEq)]
pub enum Repo {
    /// The volume `<service>-backups`, at `REPO_DIR`.
    Volume,
    /// An S3-compatible bucket.
    S3(Box<S3Repo>),
}

/// A repository in an S3-compatible bucket, every string in its grammar.
#[derive(Debug, Clone, PartialEq)]
pub struct S3Repo {
    pub bucket: String,
    /// The endpoint's DNS name.
    pub host: String,
    pub port: Option<u16>,
    pub region: String,
    pub path: String,
    /// AWS's endpoints take the bucket in the host name; other stores (MinIO,
    /// Ceph, Garage) are reached at one host with the bucket in the path,
    /// which AWS accepts too.
    pub path_style: bool,
    /// The secrets of the access key id and the secret key: (name, variable).
    pub access_key: (Name, Name),
    pub secret_key: (Name, Name),
}

impl Repo {
    /// `pgbackrest.conf`'s repository lines.
    pub fn settings(&self) -> Vec<String> {
        let S3(s3) = self else {
            return vec![format!("repo1-path={REPO_DIR}")];
        };
        let mut lines = vec![
            "repo1-type=s3".to_string(),
            format!("repo1-path={}", s3.path),
            format!("repo1-s3-bucket={}", s3.bucket),
            format!("repo1-s3-endpoint={}", s3.host),
            format!("repo1-s3-region={}", s3.region),
        ];
        if let Some(port) = s3.port {
            lines.push(format!("repo1-storage-port={port}"));
        }
        if s3.path_style {
            lines.push("repo1-s3-uri-style=path".to_string());
        }
        lines
    }

    /// The credentials, as pgBackRest reads them from the environment (never
    /// in its config file nor on a command line).
    pub fn env(&self, span: Span) -> Vec<EnvVar> {
        let S3(s3) = self else { return Vec::new() };
        [
            ("PGBACKREST_REPO1_S3_KEY", &s3.access_key),
            ("PGBACKREST_REPO1_S3_KEY_SECRET", &s3.secret_key),
        ]
        .into_iter()
        .map(|(key, (name, env))| EnvVar {
            key: Name::new_static(key),
            value: smallvec::smallvec![Out::secret(name.clone(), env.clone(), false)],
            span,
        })
        .collect()
    }
}

use Repo::S3;

impl BackupPlan {
    pub fn archive_command(&self) -> String {
        format!("pgbackrest --stanza={} archive-push %p", self.service)
    }
}

impl Topo<'_> {
    /// A PostgreSQL server with `backup` (one server, or a streaming
    /// primary): checked, then it archives WAL with pgBackRest from the
    /// image built beside it.
    pub(super) fn wire_pgbackrest(
        &self,
        name: &Name,
        def: &ServiceDef,
        inst: &mut Instance,
        b: &BackupDef,
        diags: &mut Diagnostics,
    ) -> Option<BackupPlan> {
        // With streaming replication the primary archives and is backed up;
        // a standby does neither (archiving starts when it is promoted, and
        // would fill its disk with no stanza to push to).
        if inst
            .replication
            .streaming
            .as_ref()
            .is_some_and(|s| s.standby)
        {
            return None;
        }
        let plan = self.backup_plan(name, def, inst, b, diags)?;
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
        attach(inst, &plan, b.span);
        Some(plan)
    }

    pub(super) fn backup_plan(
        &self,
        name: &Name,
        def: &ServiceDef,
        inst: &Instance,
        b: &BackupDef,
        diags: &mut Diagnostics,
    ) -> Option<BackupPlan> {
        let refuse = |why: String, diags: &mut Diagnostics| diags.push(not_written(b, why));
        if !matches!(
            inst.ha,
            HaMode::Single | HaMode::Streaming | HaMode::Patroni
        ) {
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
        let repo = match &b.s3 {
            None => Repo::Volume,
            Some(s3) => S3(Box::new(self.s3_repo(name, s3, diags)?)),
        };
        let Some(port) = inst.ports.first().map(|p| p.container) else {
            refuse(format!("`{name}` has no port to back up from"), diags);
            return None;
        };
        Some(BackupPlan {
            service: name.clone(),
            data_dir,
            user,
            port,
            schedule: when(b).0,
            retention_days: when(b).1,
            image,
            repo,
            cluster: None,
        })
    }

    /// The bucket of an `s3` block, its required fields and credentials
    /// there.
    pub(super) fn s3_repo(
        &self,
        name: &Name,
        s3: &S3Def,
        diags: &mut Diagnostics,
    ) -> Option<S3Repo> {
        let mut missing = Vec::new();
        let mut need = |field: &'static str, present: bool| {
            if !present {
                missing.push(field);
            }
        };
        need("bucket", s3.bucket.is_some());
        need("region", s3.region.is_some());
        need("access_key", s3.access_key.is_some());
        need("secret_key", s3.secret_key.is_some());
        if !missing.is_empty() {
            diags.push(
                Diagnostic::error(
                    Code::MissingField,
                    s3.span,
                    format!("the bucket of `{name}`'s backups needs `{}`", missing.join("`, `")),
                )
                .label("in this block")
                .help("write `bucket = \"NAME\"`, `region = \"REGION\"`, `access_key = secret.NAME` and `secret_key = secret.NAME`"),
            );
            return None;
        }
        let access_key = self.credential(
            s3.access_key.as_ref()?,
            "access_key",
            "backup_access_key",
            diags,
        )?;
        let secret_key = self.credential(
            s3.secret_key.as_ref()?,
            "secret_key",
            "backup_secret_key",
            diags,
        )?;
        let region = s3.region.as_ref()?.value.clone();
        let endpoint = s3.endpoint.as_ref().map_or_else(
            || format!("s3.{region}.amazonaws.com"),
            |e| e.value.trim_start_matches("https://").to_string(),
        );
        let (host, port) = match endpoint.rsplit_once(':') {
            Some((host, port)) => (host.to_string(), port.parse().ok()),
            None => (endpoint, None),
        };
        Some(S3Repo {
            bucket: s3.bucket.as_ref()?.value.clone(),
            path_style: !host.ends_with(".amazonaws.com"),
            host,
            port,
            region,
            path: s3.path.as_ref().map_or_else(
                || format!("/{}/{name}", self.stack.name),
                |p| p.value.clone(),
            ),
            access_key,
            secret_key,
        })
    }

    /// A credential: exactly `secret.NAME` (an undeclared one is E0103
    /// already); the help suggests `secret.SUGGESTED`.
    pub(super) fn credential(
        &self,
        e: &Expr,
        field: &str,
        suggested: &str,
        diags: &mut Diagnostics,
    ) -> Option<(Name, Name)> {
        let is_secret = matches!(
            e.pieces.as_slice(),
            [Piece::Ref(r)] if matches!(r.target, RefTarget::Secret(_))
        );
        if !is_secret {
            diags.push(
                Diagnostic::error(Code::WrongType, e.span, format!("`{field}` must be a secret"))
                    .label("expected `secret.NAME`")
                    .help(format!("declare `secret {suggested}` and write `{field} = secret.{suggested}`: a credential never lands in a generated file")),
            );
        }
        self.secret_of(e)
    }
}

/// Attaches a backup to its server: pgBackRest's config and credentials in
/// its environment, the generated directory, the shared volumes.
pub(super) fn attach(inst: &mut Instance, plan: &BackupPlan, span: Span) {
    let name = plan.service.clone();
    inst.env.push(config_env(span));
    inst.env.extend(plan.repo.env(span));
    inst.storage
        .mounts
        .push(Mount::generated(format!("{name}/backup"), BACKUP_DIR));
    inst.storage
        .volumes
        .extend(shared_volumes(&name, &plan.repo));
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

/// The repository (unless it is in a bucket) and the socket directory,
/// which the task shares.
fn shared_volumes(service: &str, repo: &Repo) -> Vec<Volume> {
    [("backups", REPO_DIR), ("run", SOCKET_DIR)]
        .into_iter()
        .filter(|(what, _)| *what != "backups" || *repo == Repo::Volume)
        .map(|(what, path)| Volume {
            name: format!("{service}-{what}"),
            path: path.into(),
            size: Size(10 << 30),
        })
        .collect()
}

/// The task that takes the scheduled backups: the server's image, its data
/// volume, the repository and the socket, as the postgres user.
pub(super) fn task(server: &Instance, plan: &BackupPlan) -> Instance {
    let name = &plan.service;
    let mut volumes: Vec<Volume> = server
        .storage
        .volumes
        .iter()
        .filter(|v| plan.data_dir.starts_with(&v.path))
        .cloned()
        .collect();
    volumes.extend(shared_volumes(name, &plan.repo));
    let program = Program {
        build: server.program.build.clone(),
        // The script drops to the postgres user itself.
        command: Some(vec!["sh".into(), format!("{BACKUP_DIR}/backup.sh")]),
        ..Program::default()
    };
    // A Patroni node's task reaches etcd as the node does (its restore
    // removes the cluster's state there) and reads the node's config.
    let mounts = server
        .replication
        .patroni
        .iter()
        .map(|node| Mount::generated(node.dir.clone(), PATRONI_DIR))
        .collect();
    let mut task = backup_task(name, "pgbackrest", program, volumes, mounts, &plan.schedule);
    task.host_network = server.host_network;
    task.env = vec![config_env(Span::default())];
    task.env.extend(plan.repo.env(Span::default()));
    // Its restore runs `patronictl` on the node's config.
    task.env.extend(
        server
            .env
            .iter()
            .filter(|e| e.key.as_str() == PATRONI_RESTAPI_PASSWORD)
            .cloned(),
    );
    task
}

impl Topo<'_> {
    /// The image of a PostgreSQL service (of kind `postgres`, or on an image
    /// of the `postgres` repository), which the backup image is built on:
    /// the official image or one built on it, with its `postgres` user.
    pub(super) fn postgres_image(&self, name: &Name, def: &ServiceDef) -> Option<Name> {
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
