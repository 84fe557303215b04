//! Redis watched by Sentinel on hosts: for each node,
//! `out/<topology>/<service>/<host>/` holds its `redis.conf` and the
//! `sentinel.conf` of the sentinel beside it. Both are mounted read-only at
//! `REDIS_DIR` and copied into a volume at the first start, because Redis and
//! Sentinel rewrite them at failover (../shared/TARGETS.md 2.4). Every node and
//! sentinel announces its host's address, and the monitor line names the
//! initial master by address.

use serde::Serialize;

use super::header;
use crate::diag::Diagnostics;
use crate::options::Options;
use crate::plan::{SentinelNode, TopologyPlan, SENTINEL_PORT};

#[derive(Serialize)]
struct Model<'a> {
    header: String,
    service: &'a str,
    node: &'a str,
    master_name: &'a str,
    container_port: u16,
    address: &'a str,
    port: u16,
    /// `<address> <port>` of the master, on a replica.
    replicaof: Vec<String>,
    sentinel_port: u16,
    master_address: &'a str,
    master_port: u16,
    quorum: u32,
    down_after_ms: u64,
    failover_ms: u64,
}

pub fn generate(
    topo: &TopologyPlan,
    options: &Options,
    out: &mut super::Files<'_>,
    diags: &mut Diagnostics,
) {
    for host in &topo.hosts {
        for inst in &host.services {
            let Some(n) = &inst.replication.sentinel_node else {
                continue;
            };
            let model = model(&inst.name, &host.name, n, header("#", options, &topo.name));
            let files = [
                ("redis.conf", "redis-node.conf"),
                ("sentinel.conf", "sentinel-host.conf"),
            ];
            let node = (inst.name.as_str(), host.name.as_str());
            super::node_files(topo, &n.dir, &files, &model, node, out, diags);
        }
    }
}

fn model<'a>(service: &'a str, node: &'a str, n: &'a SentinelNode, header: String) -> Model<'a> {
    Model {
        header,
        service,
        node,
        master_name: &n.plan.master_name,
        container_port: n.container_port,
        address: &n.address,
        port: n.port,
        replicaof: if n.master {
            Vec::new()
        } else {
            vec![format!("{} {}", n.master_address, n.master_port)]
        },
        sentinel_port: SENTINEL_PORT,
        master_address: &n.master_address,
        master_port: n.master_port,
        quorum: n.plan.quorum,
        down_after_ms: n.plan.down_after.0,
        failover_ms: n.plan.failover_timeout.0,
    }
}
