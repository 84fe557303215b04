//! Each compose host's firewall: every port its instances and on-host proxies
//! publish, let in from where the port's readers are, and nothing else.
//!
//! A port published on all interfaces (`public`, a proxy's) is let in from
//! anywhere; a port published on the host's address, from the hosts whose
//! services read it there (the consumers, the proxy, Prometheus, the other
//! nodes of a replicated service); a port on loopback needs no rule. The HA
//! peers' own ports (Patroni, etcd, Sentinel) are let in from every host of
//! the topology, and so are the ports of a Patroni or Sentinel-watched node:
//! each is read by whichever nodes and clients find it the primary.

use std::net::IpAddr;

use crate::diag::{Code, Diagnostic, Diagnostics};

use super::*;

/// One port a host lets in.
#[derive(Debug, Clone, PartialEq)]
pub struct Allow {
    pub port: u16,
    pub transport: Transport,
    pub from: Sources,
    /// What listens there, for the rule's comment: `service port NAME`.
    pub serves: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Tcp,
    Udp,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Sources {
    Anywhere,
    /// These peers only, in the order their hosts are written.
    Peers(IndexSet<Peer>),
    /// Every host of the topology with an IP address (`TopologyHosts`), and
    /// this host's own containers.
    TopologyHosts,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Peer {
    /// The host's own containers and processes.
    ThisHost,
    /// Another host, by its IP address.
    Host { name: Name, ip: IpAddr },
}

impl Topo<'_> {
    /// The firewall of host `h`: its published ports and where each is let
    /// in from. Empty for a managed host, and on Kubernetes.
    pub(super) fn firewall(
        &self,
        h: usize,
        services: &[Instance],
        proxies: &[ProxyPlan],
        publishes: &Publishes,
        dns_host: Option<&str>,
        diags: &mut Diagnostics,
    ) -> Vec<Allow> {
        let Some(host) = self.hosts.get(h) else {
            return Vec::new();
        };
        if host.managed || self.topo.platform.value != Platform::Compose {
            return Vec::new();
        }
        let mut allows: IndexMap<(u16, Transport), Allow> = IndexMap::default();
        let mut open = Open::default();
        for inst in services {
            for port in &inst.ports {
                let Some(from) = self.port_sources(h, inst, port, publishes, dns_host, &mut open)
                else {
                    continue;
                };
                let serves = format!("{} port {}", inst.name, port.name);
                add(
                    &mut allows,
                    port.host,
                    transport(port.protocol),
                    from,
                    serves,
                );
            }
        }
        for proxy in proxies
            .iter()
            .filter(|p| p.on_host && p.host == host.name.name)
        {
            let mut ports = vec![("http", proxy.http)];
            if proxy.has_tls() {
                ports.push(("https", proxy.https));
            }
            for (name, port) in ports {
                let serves = format!("proxy {} port {name}", proxy.name);
                add(&mut allows, port, Transport::Tcp, Sources::Anywhere, serves);
            }
        }
        self.report_open(h, open, diags);
        allows.into_values().collect()
    }

    /// Where the readers of `inst`'s `port` on host `h` connect from, by the
    /// port's binds: `None` when it is published on no address other hosts
    /// reach (on loopback, or not at all: only the host's own programs and
    /// containers reach it).
    fn port_sources(
        &self,
        h: usize,
        inst: &Instance,
        port: &PortPlan,
        publishes: &Publishes,
        dns_host: Option<&str>,
        open: &mut Open,
    ) -> Option<Sources> {
        // A Patroni or Sentinel-watched node is read by whichever nodes and
        // clients find it the primary: every host may.
        let ha_node =
            inst.replication.patroni.is_some() || inst.replication.sentinel_node.is_some();
        let key = PublishedPort::new(&inst.name, h, &port.name);
        let mut from: Option<Sources> = None;
        for bind in &port.binds {
            let sources = match bind {
                Bind::All => Sources::Anywhere,
                Bind::Address(a) if is_loopback(a) => continue,
                Bind::Address(_) => match publishes.readers(&key).filter(|_| !ha_node) {
                    Some(readers) => {
                        let served = (&inst.name, port);
                        self.sources(h, readers.iter().copied(), served, open)
                    }
                    None => topology_hosts(&inst.name, port, dns_host, open),
                },
            };
            from = Some(match from {
                Some(f) => f.union(sources),
                None => sources,
            });
        }
        from
    }

    /// Records where each PostgreSQL node's clients connect from (the
    /// readers of its port, as its host's firewall lets them in): its
    /// `pg_hba` lets in those addresses and no others.
    pub(super) fn database_clients(
        &self,
        h: usize,
        services: &mut [Instance],
        publishes: &Publishes,
        dns_host: Option<&str>,
    ) {
        for inst in services.iter_mut() {
            let pg_port = match (&inst.replication.streaming, &inst.replication.patroni) {
                (Some(s), _) => inst.ports.iter().find(|p| p.container == s.port),
                (None, Some(n)) => inst.ports.iter().find(|p| p.host == n.port),
                (None, None) => continue,
            };
            // The firewall has reported the ports it cannot narrow.
            let mut reported = Open::default();
            let clients = pg_port
                .and_then(|p| self.port_sources(h, inst, p, publishes, dns_host, &mut reported))
                .unwrap_or_else(|| Sources::Peers(IndexSet::from_iter([Peer::ThisHost])));
            if let Some(s) = &mut inst.replication.streaming {
                s.clients = clients;
            } else if let Some(n) = &mut inst.replication.patroni {
                n.clients = clients;
            }
        }
    }

    /// Why the topology's hosts cannot all be named by IP address: the first
    /// compose host whose address is a DNS name.
    pub(super) fn dns_host(&self) -> Option<String> {
        self.hosts.iter().enumerate().find_map(|(r, host)| {
            let by_name = host
                .address
                .as_ref()
                .is_some_and(|a| a.value.parse::<IpAddr>().is_err());
            (!host.managed && by_name)
                .then(|| self.host_ip(r).err())
                .flatten()
        })
    }

    /// The IP addresses of the topology's compose hosts, in file order: the
    /// `TopologyHosts` of every firewall.
    pub(super) fn topology_ips(&self) -> Vec<Peer> {
        (0..self.hosts.len())
            .filter(|&r| !self.hosts[r].managed)
            .filter_map(|r| self.host_ip(r).ok())
            .collect()
    }

    /// Where `readers` connect from, seen from host `h`; anywhere (with a
    /// warning) when one of them has no IP address to let in.
    fn sources(
        &self,
        h: usize,
        readers: impl Iterator<Item = Reader>,
        (service, port): (&Name, &PortPlan),
        open: &mut Open,
    ) -> Sources {
        let mut peers = IndexSet::default();
        for reader in readers {
            match reader {
                Reader::Host(r) if r == h => {
                    peers.insert(Peer::ThisHost);
                }
                Reader::Host(r) => match self.host_ip(r) {
                    Ok(peer) => {
                        peers.insert(peer);
                    }
                    Err(why) => {
                        open.add(why, service, port);
                        return Sources::Anywhere;
                    }
                },
                Reader::Outside => {
                    let why = "a Prometheus outside the topology connects there";
                    open.add(why.to_string(), service, port);
                    return Sources::Anywhere;
                }
            }
        }
        Sources::Peers(peers)
    }

    /// Host `r` as a firewall names it: by its IP address.
    fn host_ip(&self, r: usize) -> Result<Peer, String> {
        let host = self.hosts[r];
        let name = &host.name.name;
        match &host.address {
            Some(a) => match a.value.parse::<IpAddr>() {
                Ok(ip) => Ok(Peer::Host {
                    name: name.clone(),
                    ip,
                }),
                Err(_) => Err(format!(
                    "host `{name}`, a reader, is addressed by a name (`{}`), not an IP address",
                    a.value
                )),
            },
            None => Err(format!("host `{name}`, a reader, has no address")),
        }
    }

    /// Reports the ports let in from anywhere, one warning per reason,
    /// unless the topology allows it.
    fn report_open(&self, h: usize, open: Open, diags: &mut Diagnostics) {
        let allowed = self
            .topo
            .allow
            .iter()
            .any(|a| Code::parse(&a.name) == Some(Code::FirewallOpen));
        if allowed {
            return;
        }
        for (why, ports) in open.0 {
            diags.push(self.open_ports(h, &ports, &why));
        }
    }

    fn open_ports(&self, h: usize, ports: &IndexSet<String>, why: &str) -> Diagnostic {
        let host = self.hosts[h];
        let span = host.address.as_ref().map_or(host.name.span, |a| a.span);
        let list: Vec<&str> = ports.iter().map(String::as_str).collect();
        let ports = match list.as_slice() {
            [one] => format!("port {one}"),
            [rest @ .., last] => format!("ports {} and {last}", rest.join(", ")),
            [] => "no port".into(),
        };
        Diagnostic::error(
            Code::FirewallOpen,
            span,
            format!(
                "the firewall of host `{}` lets {ports} in from anywhere: {why}",
                host.name.name
            ),
        )
        .label("its firewall cannot name the reader")
        .help("give every host that reads a port an IP `address`, so that only those addresses are let in")
    }
}

/// The ports a firewall lets in from anywhere for want of a reader's
/// address, by reason (`host `x` has no address`): one warning each.
#[derive(Default)]
struct Open(IndexMap<String, IndexSet<String>>);

impl Open {
    fn add(&mut self, why: String, service: &Name, port: &PortPlan) {
        let port = format!("{} (`{service}`)", port.host);
        self.0.entry(why).or_default().insert(port);
    }
}

/// The sources of an HA peer's port: every host of the topology, unless
/// one is named by DNS (`dns_host`, the reason, found once per topology).
fn topology_hosts(
    service: &Name,
    port: &PortPlan,
    dns_host: Option<&str>,
    open: &mut Open,
) -> Sources {
    match dns_host {
        Some(why) => {
            open.add(why.to_string(), service, port);
            Sources::Anywhere
        }
        None => Sources::TopologyHosts,
    }
}

fn is_loopback(address: &str) -> bool {
    address.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn transport(protocol: Protocol) -> Transport {
    match protocol {
        Protocol::Udp => Transport::Udp,
        Protocol::Http | Protocol::Tcp => Transport::Tcp,
    }
}

/// Adds a port's sources to the rule of that port, or a new rule: a port is
/// one rule, let in from the union of its sources.
fn add(
    allows: &mut IndexMap<(u16, Transport), Allow>,
    port: u16,
    transport: Transport,
    from: Sources,
    serves: String,
) {
    let Some(allow) = allows.get_mut(&(port, transport)) else {
        let serves = vec![serves];
        allows.insert(
            (port, transport),
            Allow {
                port,
                transport,
                from,
                serves,
            },
        );
        return;
    };
    // A port's instances are few (one per replica's port): a scan is enough.
    if !allow.serves.contains(&serves) {
        allow.serves.push(serves);
    }
    allow.from = std::mem::replace(&mut allow.from, Sources::Anywhere).union(from);
}

impl Sources {
    /// Where either lets in from.
    fn union(self, other: Sources) -> Sources {
        match (self, other) {
            (Sources::Peers(mut old), Sources::Peers(new)) => {
                old.extend(new);
                Sources::Peers(old)
            }
            (Sources::TopologyHosts, Sources::Peers(_) | Sources::TopologyHosts)
            | (Sources::Peers(_), Sources::TopologyHosts) => Sources::TopologyHosts,
            _ => Sources::Anywhere,
        }
    }
}
