//! PostgreSQL streaming replication on hosts: for each node,
//! `out/<topology>/<service>/<host>/` holds its `postgresql.conf` and
//! `pg_hba.conf`, and the primary's `init-replication.sh` (the replication role,
//! created by the image at initdb) or the standby's `standby.sh` (clone the
//! primary once with pg_basebackup, then stream from it). The compose file mounts
//! the directory read-only at `STREAMING_DIR`.
//!
//! Replication connections are accepted from the nodes' host addresses only, with
//! scram-sha-256; the password is read from the environment by the scripts.
//! Clients are accepted from where the plan says they connect from
//! (`hba_clients`), not from everywhere. For `postgres_tls`, both only over
//! TLS (`hostssl`), and the standby clones with `sslmode=require`.

use serde::Serialize;

use super::header;
use crate::diag::Diagnostics;
use crate::options::Options;
use crate::plan::firewall::{Peer, Sources};
use crate::plan::{
    PgFrom, PgParam, StreamingPlan, TopologyPlan, HOSTSSL_SCRIPT, REPLICATION_PASSWORD_ENV,
    WAL_KEEP_SIZE,
};

/// `NAME = 'VALUE'` in postgresql.conf.
#[derive(Serialize)]
struct Setting {
    name: String,
    value: String,
    /// Where it comes from, as its comment says.
    from: &'static str,
}

#[derive(Serialize)]
struct Model<'a> {
    header: String,
    service: &'a str,
    node: &'a str,
    role: &'static str,
    port: u16,
    max_wal_senders: usize,
    user: &'a str,
    /// The nodes' addresses as CIDRs, allowed to replicate.
    replication: Vec<String>,
    /// Where its clients connect from: `samenet`, CIDRs, or `all`.
    clients: Vec<String>,
    /// Quoted, as the file reads it.
    wal_keep_size: String,
    /// The service's `postgresql` settings, but `wal_keep_size`.
    settings: Vec<Setting>,
    password_env: &'static str,
    primary: String,
    primary_host: &'a str,
    primary_port: u16,
    /// The pg_hba type of TCP connections: `hostssl` (TLS only) or `host`.
    connection: &'static str,
    /// What the standby asks of its connection to the primary (libpq's
    /// `sslmode`): `require` over TLS, else libpq's default, `prefer`.
    sslmode: &'static str,
}

/// A single `postgres_tls` server's initdb script.
#[derive(Serialize)]
struct Hostssl<'a> {
    header: String,
    service: &'a str,
}

pub fn generate(
    topo: &TopologyPlan,
    options: &Options,
    out: &mut super::Files<'_>,
    diags: &mut Diagnostics,
) {
    let mut hostssl_written: Vec<&str> = Vec::new();
    for host in &topo.hosts {
        for inst in &host.services {
            let dir = inst.name.as_str();
            if inst.replication.hostssl {
                // The same script for every host that runs the service.
                if !hostssl_written.contains(&dir) {
                    hostssl_written.push(dir);
                    let model = Hostssl {
                        header: header("#", options, &topo.name),
                        service: &inst.name,
                    };
                    let node = (inst.name.as_str(), host.name.as_str());
                    let files = [(HOSTSSL_SCRIPT, HOSTSSL_SCRIPT)];
                    super::node_files(topo, dir, &files, &model, node, out, diags);
                }
            }
            let Some(s) = &inst.replication.streaming else {
                continue;
            };
            let mut model = model(&inst.name, s, header("#", options, &topo.name));
            model.clients = hba_clients(&s.clients, &topo.host_ips);
            settings(&mut model, &inst.replication.postgresql);
            let script = if s.standby {
                "standby.sh"
            } else {
                "init-replication.sh"
            };
            let files = [
                ("postgresql.conf", "postgresql.conf"),
                ("pg_hba.conf", "pg_hba.conf"),
                (script, script),
            ];
            let node = (inst.name.as_str(), host.name.as_str());
            super::node_files(topo, &s.dir, &files, &model, node, out, diags);
        }
    }
}

fn model<'a>(service: &'a str, s: &'a StreamingPlan, header: String) -> Model<'a> {
    let primary_host = s.primary_address.as_str();
    let mut replication: Vec<String> = Vec::new();
    for address in s.standby_addresses.iter().chain([&s.primary_address]) {
        for cidr in hba_sources(address) {
            if !replication.contains(&cidr) {
                replication.push(cidr);
            }
        }
    }
    Model {
        header,
        service,
        node: &s.node,
        role: if s.standby { "standby" } else { "primary" },
        port: s.port,
        // Every other node, plus the two connections of a streaming base backup,
        // with room for a rebuild.
        max_wal_senders: (s.standby_addresses.len() + 2) * 2 + 2,
        user: &s.user,
        replication,
        clients: Vec::new(),
        wal_keep_size: conf_string(WAL_KEEP_SIZE),
        settings: Vec::new(),
        password_env: REPLICATION_PASSWORD_ENV,
        primary: crate::grammar::host_port(primary_host, s.primary_port),
        primary_host,
        primary_port: s.primary_port,
        connection: if s.tls { "hostssl" } else { "host" },
        sslmode: if s.tls { "require" } else { "prefer" },
    }
}

/// The service's settings into the model: `wal_keep_size` replaces stackc's
/// default in place, the others follow stackc's.
fn settings(model: &mut Model<'_>, params: &[PgParam]) {
    for p in params {
        if p.name == "wal_keep_size" {
            model.wal_keep_size = conf_string(&p.value);
        } else {
            model.settings.push(Setting {
                name: p.name.to_string(),
                value: conf_string(&p.value),
                from: match p.from {
                    PgFrom::Block => "the service's `postgresql` block",
                    PgFrom::Tls => "TLS, of the kind `postgres_tls`",
                },
            });
        }
    }
}

/// A value as postgresql.conf reads it: in single quotes, where a backslash
/// starts an escape and a quote is doubled. (Every setting may be quoted,
/// numbers and units too.)
pub(crate) fn conf_string(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "''"))
}

/// The `pg_hba` addresses a node at `address` connects from: the address
/// itself, and 127.0.0.1 for a loopback address (connections between loopback
/// addresses of one machine come from 127.0.0.1, ../shared/TARGETS.md 2.1.5).
pub(crate) fn hba_sources(address: &str) -> Vec<String> {
    if address.contains(':') {
        return vec![format!("{address}/128")];
    }
    let mut sources = vec![format!("{address}/32")];
    if address.starts_with("127.") && address != "127.0.0.1" {
        sources.push("127.0.0.1/32".into());
    }
    sources
}

/// The `pg_hba` addresses of a node's clients, from where the plan says they
/// connect from: `samenet` for the node's own host (the compose network's
/// containers; on the host's network, its Docker bridges too), then each
/// reading host's address; `all` when a reader has no IP address (W0503 says
/// so). `host_ips` are the topology's hosts, for `Sources::TopologyHosts`.
pub(crate) fn hba_clients(clients: &Sources, host_ips: &[Peer]) -> Vec<String> {
    let peers: Vec<&Peer> = match clients {
        Sources::Anywhere => return vec!["all".into()],
        Sources::TopologyHosts => host_ips.iter().collect(),
        Sources::Peers(peers) => peers.iter().collect(),
    };
    let mut addresses = vec!["samenet".to_string()];
    for peer in peers {
        let Peer::Host { ip, .. } = peer else {
            continue;
        };
        for cidr in hba_sources(&ip.to_string()) {
            if !addresses.contains(&cidr) {
                addresses.push(cidr);
            }
        }
    }
    addresses
}
