//! `out/<topology>/firewall/<host>.nft`: each compose host's nftables
//! ruleset, from the plan's `HostPlan::firewall`. The ruleset is a table of
//! its own, so that loading it replaces only what stackc wrote.
//!
//! A port Docker publishes is rewritten to the container's address (DNAT) and
//! forwarded, so an `input` chain never sees it: each port has a rule in
//! `input` (host-network services: Patroni, etcd, an on-host proxy) and one
//! in `published`, the forwarded connections that Docker rewrote, matched by
//! the port the client asked for (`ct original proto-dst`).

use serde::Serialize;

use super::{header, Artifact, Files};
use crate::diag::Diagnostics;
use crate::options::Options;
use crate::plan::firewall::{Allow, Peer, Sources, Transport};
use crate::plan::{HostPlan, TopologyPlan};

#[derive(Serialize)]
struct Model<'a> {
    header: String,
    host: &'a str,
    file: String,
    table: String,
    sets: [String; 2],
    ssh_port: u16,
    rules: Vec<Rule>,
}

#[derive(Serialize)]
struct Rule {
    comment: String,
    input: Vec<String>,
    published: Vec<String>,
}

/// The path of a host's ruleset in its topology's directory.
pub fn file(host: &str) -> String {
    format!("firewall/{host}.nft")
}

pub fn generate(
    stack: &str,
    topo: &TopologyPlan,
    options: &Options,
    out: &mut Files<'_>,
    diags: &mut Diagnostics,
) {
    let sets = sets(&topo.host_ips);
    for host in topo.hosts.iter().filter(|h| !h.managed) {
        let model = Model {
            header: header("#", options, &topo.name),
            host: &host.name,
            file: file(&host.name),
            table: format!("stackc-{stack}"),
            sets: sets.clone(),
            ssh_port: host.ssh_port,
            rules: rules(host),
        };
        match super::templates::render("host.nft", &model) {
            Ok(text) => out.push(Artifact {
                path: format!("{}/{}", topo.name, file(&host.name)),
                contents: text,
            }),
            Err(e) => diags.push(super::internal(topo, &file(&host.name), &e)),
        }
    }
}

/// The sets `hosts4` and `hosts6`: the topology's hosts by IP address.
fn sets(ips: &[Peer]) -> [String; 2] {
    let of = |v6: bool| {
        let ips = addresses(ips.iter(), v6);
        let (name, ty) = if v6 {
            ("hosts6", "ipv6_addr")
        } else {
            ("hosts4", "ipv4_addr")
        };
        if ips.is_empty() {
            format!("set {name} {{ type {ty}; }}")
        } else {
            format!(
                "set {name} {{ type {ty}; elements = {{ {} }} }}",
                ips.join(", ")
            )
        }
    };
    [of(false), of(true)]
}

fn rules(host: &HostPlan) -> Vec<Rule> {
    host.firewall
        .iter()
        .map(|allow| {
            let sources = sources(&allow.from);
            let proto = match allow.transport {
                Transport::Tcp => "tcp",
                Transport::Udp => "udp",
            };
            let on_host = format!("{proto} dport {}", allow.port);
            let forwarded = format!("meta l4proto {proto} ct original proto-dst {}", allow.port);
            Rule {
                comment: comment(allow),
                input: sources.iter().map(|s| join(&on_host, s)).collect(),
                published: sources.iter().map(|s| join(&forwarded, s)).collect(),
            }
        })
        .collect()
}

fn join(port: &str, source: &str) -> String {
    if source.is_empty() {
        format!("{port} accept")
    } else {
        format!("{port} {source} accept")
    }
}

/// The source matches of a rule, one rule each: empty for anywhere.
fn sources(from: &Sources) -> Vec<String> {
    match from {
        Sources::Anywhere => vec![String::new()],
        Sources::TopologyHosts => {
            let mut out = vec![
                "ip saddr @hosts4".to_string(),
                "ip6 saddr @hosts6".to_string(),
            ];
            out.extend(this_host());
            out
        }
        Sources::Peers(peers) => {
            let mut out = Vec::new();
            for (family, v6) in [("ip", false), ("ip6", true)] {
                let ips = addresses(peers.iter(), v6);
                if !ips.is_empty() {
                    out.push(format!("{family} saddr {{ {} }}", ips.join(", ")));
                }
            }
            if peers.contains(&Peer::ThisHost) {
                out.extend(this_host());
            }
            out
        }
    }
}

/// The IP addresses of `peers` of one family (IPv6 when `v6`), as nft
/// writes them.
fn addresses<'a>(peers: impl Iterator<Item = &'a Peer>, v6: bool) -> Vec<String> {
    peers
        .filter_map(|p| match p {
            Peer::Host { ip, .. } if ip.is_ipv6() == v6 => Some(ip.to_string()),
            _ => None,
        })
        .collect()
}

/// The host's own readers: its processes (`fib saddr type local`) and its
/// containers, on Docker's bridges.
fn this_host() -> [String; 2] {
    [
        "fib saddr type local".to_string(),
        "iifname { \"docker0\", \"br-*\" }".to_string(),
    ]
}

fn comment(allow: &Allow) -> String {
    let from = match &allow.from {
        Sources::Anywhere => "anywhere".to_string(),
        Sources::TopologyHosts => "the topology's hosts".to_string(),
        Sources::Peers(peers) => peers
            .iter()
            .map(|p| match p {
                Peer::ThisHost => "this host".to_string(),
                Peer::Host { name, .. } => format!("host {name}"),
            })
            .collect::<Vec<_>>()
            .join(", "),
    };
    format!("{}: from {from}", allow.serves.join(", "))
}
