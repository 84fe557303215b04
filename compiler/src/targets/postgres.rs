//! PostgreSQL streaming replication on hosts: for each node,
//! `out/<topology>/<service>/<host>/` holds its `postgresql.conf` and
//! `pg_hba.conf`, and the primary's `init-replication.sh` (the replication role,
//! created by the image at initdb) or the standby's `standby.sh` (clone the
//! primary once with pg_basebackup, then stream from it). The compose file mounts
//! the directory read-only at `STREAMING_DIR`.
//!
//! Replication connections are accepted from the nodes' host addresses only, with
//! scram-sha-256; the password is read from the environment by the scripts.

use serde::Serialize;

use super::header;
use crate::diag::Diagnostics;
use crate::options::Options;
use crate::plan::{StreamingPlan, TopologyPlan, REPLICATION_PASSWORD_ENV};

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
    password_env: &'static str,
    primary: String,
    primary_host: &'a str,
    primary_port: u16,
}

pub fn generate(
    topo: &TopologyPlan,
    options: &Options,
    out: &mut super::Files<'_>,
    diags: &mut Diagnostics,
) {
    for host in &topo.hosts {
        for inst in &host.services {
            let Some(s) = &inst.replication.streaming else {
                continue;
            };
            let model = model(&inst.name, s, header("#", options, &topo.name));
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
        password_env: REPLICATION_PASSWORD_ENV,
        primary: crate::grammar::host_port(primary_host, s.primary_port),
        primary_host,
        primary_port: s.primary_port,
    }
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
