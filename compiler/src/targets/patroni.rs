//! PostgreSQL run by Patroni on hosts: for each node,
//! `out/<topology>/<service>/<host>/patroni.yml` (serialized from the typed
//! structs below, never templated) and the `post-bootstrap.sh` that creates the
//! application's role and database; for each etcd member, `etcd.yml` beside
//! them; once per cluster, the consumers' `haproxy.cfg` and the node image's
//! `image/Dockerfile`.
//!
//! The rules come from running these programs (../shared/TARGETS.md 2.1): the
//! `etcd3` DCS (etcd 3.4+ serves no v2 API), connect addresses the other nodes
//! reach, a `replication` line in `pg_hba` for the replication role (a line for
//! `all` databases does not match it), `bootstrap.pg_hba`, a `rewind` user and
//! `bootstrap.initdb` (the 3.0 validator wants them), `wal_log_hints` for
//! `pg_rewind`, and etcd's gRPC gateway switched on in its config file (a config
//! file leaves it off, and Patroni's etcd3 client speaks through it). Passwords
//! are never written: Patroni reads them from `PATRONI_*_PASSWORD`.

use indexmap::IndexMap;
use serde::Serialize;

use crate::base::Name;

use super::{header, Artifact};
use crate::diag::Diagnostics;
use crate::options::Options;
use crate::plan::backup::{BackupPlan, ARCHIVE_TIMEOUT};
use crate::plan::backups::Backup;
use crate::plan::firewall::Peer;
use crate::plan::{
    endpoint, EtcdMember, PatroniNode, PgParam, TopologyPlan, ETCD_CLIENT_PORT, ETCD_DATA_DIR,
    ETCD_PEER_PORT, PATRONI_DIR, PATRONI_PRIMARY_PORT, PATRONI_REPLICA_PORT, PATRONI_VERSION,
    WAL_KEEP_SIZE,
};

#[derive(Serialize)]
struct PatroniConfig<'a> {
    scope: &'a str,
    name: &'a str,
    restapi: RestApi,
    etcd3: Etcd3<'a>,
    bootstrap: Bootstrap,
    postgresql: Postgresql<'a>,
    watchdog: WatchdogConfig,
}

#[derive(Serialize)]
struct RestApi {
    listen: String,
    connect_address: String,
    /// For the unsafe endpoints; the password is `PATRONI_RESTAPI_PASSWORD`.
    authentication: User<'static>,
}

#[derive(Serialize)]
struct Etcd3<'a> {
    hosts: &'a [String],
}

#[derive(Serialize)]
struct Bootstrap {
    dcs: Dcs,
    initdb: Vec<InitdbOption>,
    pg_hba: Vec<String>,
    post_bootstrap: String,
}

#[derive(Serialize)]
struct Dcs {
    ttl: u64,
    loop_wait: u64,
    retry_timeout: u64,
    maximum_lag_on_failover: u64,
    synchronous_mode: bool,
    postgresql: DcsPostgresql,
}

#[derive(Serialize)]
struct DcsPostgresql {
    use_pg_rewind: bool,
    use_slots: bool,
    /// Cluster-wide: every node's, stackc's and then the service's
    /// `postgresql` settings.
    parameters: IndexMap<Name, Param>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Param {
    Int(usize),
    Text(&'static str),
    Owned(String),
}

#[derive(Serialize)]
#[serde(untagged)]
enum InitdbOption {
    Flag(&'static str),
    Setting(IndexMap<&'static str, &'static str>),
}

#[derive(Serialize)]
struct Postgresql<'a> {
    listen: String,
    connect_address: String,
    data_dir: &'a str,
    bin_dir: String,
    pgpass: String,
    use_unix_socket: bool,
    authentication: Authentication<'a>,
    pg_hba: Vec<String>,
    basebackup: Vec<IndexMap<&'static str, &'static str>>,
    /// This node's own settings: archiving, with a backup.
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    parameters: IndexMap<&'static str, Param>,
}

#[derive(Serialize)]
struct Authentication<'a> {
    superuser: User<'a>,
    replication: User<'a>,
    rewind: User<'a>,
}

#[derive(Serialize)]
struct User<'a> {
    username: &'a str,
}

#[derive(Serialize)]
struct WatchdogConfig {
    mode: &'static str,
}

/// An etcd member's config file (`etcd --config-file`).
#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct EtcdConfig<'a> {
    name: &'a str,
    data_dir: &'static str,
    listen_peer_urls: String,
    listen_client_urls: String,
    initial_advertise_peer_urls: String,
    advertise_client_urls: String,
    initial_cluster: String,
    initial_cluster_token: &'a str,
    initial_cluster_state: &'static str,
    enable_grpc_gateway: bool,
}

#[derive(Serialize)]
struct ScriptModel<'a> {
    header: String,
    service: &'a str,
    scope: &'a str,
    bin_dir: String,
    major: u32,
    version: &'static str,
    /// The Debian packages the node image installs.
    packages: &'static str,
}

/// The superuser Patroni connects as, and the role `pg_rewind` uses.
const SUPERUSER: &str = crate::plan::patroni_backup::PATRONI_SUPERUSER;

pub fn generate(
    topo: &TopologyPlan,
    options: &Options,
    out: &mut super::Files<'_>,
    diags: &mut Diagnostics,
) {
    let mut clusters: IndexMap<&str, (&PatroniNode, Option<&BackupPlan>)> = IndexMap::new();
    for host in &topo.hosts {
        for inst in &host.services {
            if let Some(node) = &inst.replication.patroni {
                let backup = match inst.storage.backup.as_deref() {
                    Some(Backup::Postgres(plan)) => Some(plan),
                    _ => None,
                };
                clusters.entry(&node.service).or_insert((node, backup));
                let settings = &inst.replication.postgresql;
                node_files(topo, options, (node, settings), backup, out, diags);
            }
            if let Some(member) = &inst.replication.etcd {
                super::push_yaml(
                    topo,
                    options,
                    &member.file,
                    &etcd_config(member),
                    out,
                    diags,
                );
            }
        }
    }
    for (service, (node, backup)) in clusters {
        let header = header("#", options, &topo.name);
        match super::haproxy::render(&header, haproxy_sections(node)) {
            Ok(text) => out.push(Artifact {
                path: format!("{}/{service}/haproxy.cfg", topo.name),
                contents: text,
            }),
            Err(e) => diags.push(super::internal(
                topo,
                &format!("haproxy.cfg of `{service}`"),
                &e,
            )),
        }
        let model = script_model(node, backup, header);
        let files = [("image/Dockerfile", "patroni-Dockerfile")];
        super::node_files(
            topo,
            service,
            &files,
            &model,
            (service, "every node"),
            out,
            diags,
        );
    }
}

fn node_files(
    topo: &TopologyPlan,
    options: &Options,
    (node, settings): (&PatroniNode, &[PgParam]),
    backup: Option<&BackupPlan>,
    out: &mut super::Files<'_>,
    diags: &mut Diagnostics,
) {
    let file = format!("{}/patroni.yml", node.dir);
    super::push_yaml(
        topo,
        options,
        &file,
        &patroni_config(node, settings, backup, &topo.host_ips),
        out,
        diags,
    );
    let model = script_model(node, backup, header("#", options, &topo.name));
    let files = [("post-bootstrap.sh", "patroni-post-bootstrap.sh")];
    super::node_files(
        topo,
        &node.dir,
        &files,
        &model,
        (&node.service, &node.name),
        out,
        diags,
    );
}

fn script_model<'a>(
    node: &'a PatroniNode,
    backup: Option<&BackupPlan>,
    header: String,
) -> ScriptModel<'a> {
    ScriptModel {
        header,
        service: &node.service,
        scope: &node.scope,
        bin_dir: node.bin_dir(),
        major: node.major,
        version: PATRONI_VERSION,
        packages: if backup.is_some() {
            "python3-venv pgbackrest"
        } else {
            "python3-venv"
        },
    }
}

/// A node's archiving, with a backup: `on` archives on the leader only (a
/// promoted node starts archiving into the same bucket). Not `always`, which
/// would have the replicas archive what they receive: pgBackRest refuses it.
fn archiving(backup: Option<&BackupPlan>) -> IndexMap<&'static str, Param> {
    let Some(plan) = backup else {
        return IndexMap::new();
    };
    IndexMap::from([
        ("archive_mode", Param::Text("on")),
        ("archive_command", Param::Owned(plan.archive_command())),
        ("archive_timeout", Param::Int(ARCHIVE_TIMEOUT as usize)),
    ])
}

fn patroni_config<'a>(
    node: &'a PatroniNode,
    settings: &[PgParam],
    backup: Option<&BackupPlan>,
    host_ips: &[Peer],
) -> PatroniConfig<'a> {
    // Every node may become the primary: each allows the others to replicate.
    let mut sources: Vec<String> = Vec::new();
    for member in &node.members {
        for cidr in super::postgres::hba_sources(&member.address) {
            if !sources.contains(&cidr) {
                sources.push(cidr);
            }
        }
    }
    let user = node.replication_user.as_str();
    let mut pg_hba = vec!["local all all trust".to_string()];
    pg_hba.extend(
        sources
            .iter()
            .map(|s| format!("host replication {user} {s} scram-sha-256")),
    );
    pg_hba.extend(
        super::postgres::hba_clients(&node.clients, host_ips)
            .iter()
            .map(|a| format!("host all all {a} scram-sha-256")),
    );
    // Every other node, plus the two connections of a streaming base backup,
    // with room for a rebuild.
    let senders = (node.members.len() + 2) * 2 + 2;
    let mut parameters: IndexMap<Name, Param> = [
        ("wal_level", Param::Text("replica")),
        ("hot_standby", Param::Text("on")),
        // pg_rewind needs hint bits in the WAL (or data checksums).
        ("wal_log_hints", Param::Text("on")),
        ("max_wal_senders", Param::Int(senders)),
        ("max_replication_slots", Param::Int(senders)),
        ("wal_keep_size", Param::Text(WAL_KEEP_SIZE)),
        ("password_encryption", Param::Text("scram-sha-256")),
    ]
    .into_iter()
    .map(|(k, v)| (Name::new_static(k), v))
    .collect();
    // The service's own: a value of stackc's default (`wal_keep_size`)
    // replaced in place.
    for s in settings {
        parameters.insert(s.name.clone(), Param::Owned(s.value.clone()));
    }
    let data = node
        .data_dir
        .rsplit_once('/')
        .map_or(node.data_dir.as_str(), |(parent, _)| parent);
    PatroniConfig {
        scope: &node.scope,
        name: &node.name,
        restapi: RestApi {
            listen: endpoint(&node.address, node.rest_port),
            connect_address: endpoint(&node.address, node.rest_port),
            authentication: User {
                username: SUPERUSER,
            },
        },
        etcd3: Etcd3 { hosts: &node.etcd },
        bootstrap: Bootstrap {
            dcs: Dcs {
                ttl: node.ttl,
                loop_wait: node.loop_wait,
                retry_timeout: node.retry_timeout,
                maximum_lag_on_failover: node.maximum_lag,
                synchronous_mode: node.synchronous,
                postgresql: DcsPostgresql {
                    use_pg_rewind: true,
                    use_slots: true,
                    parameters,
                },
            },
            initdb: vec![
                InitdbOption::Setting(IndexMap::from([("encoding", "UTF8")])),
                InitdbOption::Flag("data-checksums"),
            ],
            pg_hba: pg_hba.clone(),
            post_bootstrap: format!("sh {PATRONI_DIR}/post-bootstrap.sh"),
        },
        postgresql: Postgresql {
            listen: endpoint(&node.address, node.port),
            connect_address: endpoint(&node.address, node.port),
            data_dir: &node.data_dir,
            bin_dir: node.bin_dir(),
            // In the data volume: the node's own, writable by postgres.
            pgpass: format!("{data}/.pgpass"),
            use_unix_socket: true,
            authentication: Authentication {
                superuser: User {
                    username: SUPERUSER,
                },
                replication: User { username: user },
                rewind: User {
                    username: SUPERUSER,
                },
            },
            pg_hba,
            // A base backup starts at once instead of after a spread checkpoint.
            basebackup: vec![IndexMap::from([("checkpoint", "fast")])],
            parameters: archiving(backup),
        },
        watchdog: WatchdogConfig {
            mode: node.watchdog.as_str(),
        },
    }
}

fn etcd_config(member: &EtcdMember) -> EtcdConfig<'_> {
    let url = |address: &str, port: u16| format!("http://{}", endpoint(address, port));
    EtcdConfig {
        name: &member.name,
        data_dir: ETCD_DATA_DIR,
        listen_peer_urls: url(&member.address, ETCD_PEER_PORT),
        listen_client_urls: url(&member.address, ETCD_CLIENT_PORT),
        initial_advertise_peer_urls: url(&member.address, ETCD_PEER_PORT),
        advertise_client_urls: url(&member.address, ETCD_CLIENT_PORT),
        initial_cluster: member
            .peers
            .iter()
            .map(|p| format!("{}={}", p.name, url(&p.address, ETCD_PEER_PORT)))
            .collect::<Vec<_>>()
            .join(","),
        initial_cluster_token: &member.token,
        initial_cluster_state: "new",
        enable_grpc_gateway: true,
    }
}

/// The consumers' HAProxy: a primary endpoint checking `/primary` on each
/// node's REST API and a replica endpoint checking `/replica`. Sessions to a
/// node marked down are cut, so clients reconnect to the new primary.
fn haproxy_sections(node: &PatroniNode) -> Vec<(String, Vec<String>)> {
    let listen = |port: u16, check: &str, balance: Option<&str>| {
        let mut lines = vec![format!("bind :{port}")];
        lines.extend(balance.map(|b| format!("balance {b}")));
        lines.extend([
            format!("option httpchk OPTIONS {check}"),
            "http-check expect status 200".to_string(),
            "default-server inter 1s fastinter 500ms downinter 1s fall 2 rise 2 on-marked-down shutdown-sessions".to_string(),
        ]);
        lines.extend(node.members.iter().map(|m| {
            format!(
                "server {} {} maxconn 1000 check port {}",
                m.name,
                endpoint(&m.address, m.port),
                node.rest_port
            )
        }));
        lines
    };
    vec![
        (
            "global".to_string(),
            vec![
                "log stdout format raw local0".to_string(),
                "maxconn 4096".into(),
            ],
        ),
        (
            "defaults".into(),
            vec![
                "log global".into(),
                "mode tcp".into(),
                "option tcplog".into(),
                "retries 2".into(),
                "timeout connect 4s".into(),
                // PostgreSQL sessions are long-lived.
                "timeout client 30m".into(),
                "timeout server 30m".into(),
                "timeout check 5s".into(),
            ],
        ),
        (
            format!("listen {}-primary", node.service),
            listen(PATRONI_PRIMARY_PORT, "/primary", None),
        ),
        (
            format!("listen {}-replicas", node.service),
            listen(PATRONI_REPLICA_PORT, "/replica", Some("roundrobin")),
        ),
    ]
}
