//! PostgreSQL run by Patroni on hosts (`ha = patroni`): a Patroni node on each
//! host that runs the service, an etcd member on each of the `etcd` hosts (the
//! nodes' hosts by default), and an HAProxy beside every consumer.
//!
//! Nodes and etcd members use the host's network: the connect addresses they
//! put in the DCS are the hosts' own, and the replication lines of `pg_hba`
//! see the real source addresses (Docker's NAT would hide them). Consumers
//! reach the cluster through `<service>-haproxy` on their own host: the
//! primary endpoint checks `/primary` on every node's REST API, the replica
//! endpoint `/replica`, so `url` follows a failover without a restart.

use crate::base::IndexSet;

use crate::diag::{Code, Diagnostic, Diagnostics};

use super::*;

/// The Patroni release the node image installs, and the tests run.
pub const PATRONI_VERSION: &str = "4.1.5";

/// How far behind its primary (in bytes of WAL) a replica may be and still
/// take over, unless `ha { maximum_lag }` says; the replication lag alert
/// fires past it.
const PATRONI_MAXIMUM_LAG: u64 = 1 << 20;

/// The password of the REST API's unsafe endpoints, in a node's environment
/// and in whatever else reads its config (`patronictl` will not load it
/// without one).
pub(super) const PATRONI_RESTAPI_PASSWORD: &str = "PATRONI_RESTAPI_PASSWORD";
/// Where a node's generated files are mounted in its container.
pub const PATRONI_DIR: &str = "/etc/stackc/patroni";
/// Patroni's REST API, which HAProxy checks, unless the service declares a
/// port named `patroni`.
pub const PATRONI_REST_PORT: u16 = 8008;
const PATRONI_PORT_NAME: &str = "patroni";
/// The consumers' HAProxy: the primary's endpoint and the replicas'.
pub const PATRONI_PRIMARY_PORT: u16 = 5000;
pub const PATRONI_REPLICA_PORT: u16 = 5001;
/// etcd's client and peer ports.
pub const ETCD_CLIENT_PORT: u16 = 2379;
pub const ETCD_PEER_PORT: u16 = 2380;
/// The etcd member's image, its data directory and where its config is mounted.
pub const ETCD_IMAGE: &str = "quay.io/coreos/etcd:v3.5.17";
pub const ETCD_DATA_DIR: &str = "/var/lib/etcd";
pub const ETCD_CONFIG: &str = "/etc/stackc/etcd.yml";
const HAPROXY_IMAGE: &str = "haproxy:2.8-alpine";
const HAPROXY_CONFIG: &str = "/usr/local/etc/haproxy/haproxy.cfg";

/// One node of a Patroni cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct PatroniNode {
    pub service: String,
    /// The cluster's name in the DCS: `<stack>-<service>`, the same on every node.
    pub scope: String,
    /// This node's name (its host's), unique in the cluster.
    pub name: String,
    /// This node's host address, where PostgreSQL and the REST API listen.
    pub address: String,
    pub port: u16,
    /// The REST API's port: the service's port named `patroni`, else 8008.
    pub rest_port: u16,
    /// Every node of the cluster, this one too.
    pub members: Vec<PatroniMember>,
    /// The etcd members' client endpoints (`address:2379`).
    pub etcd: Vec<String>,
    pub ttl: u64,
    pub loop_wait: u64,
    pub retry_timeout: u64,
    /// `maximum_lag_on_failover`, in bytes of WAL.
    pub maximum_lag: u64,
    pub synchronous: bool,
    pub watchdog: Watchdog,
    pub replication_user: String,
    /// PostgreSQL's data directory, in the service's data volume.
    pub data_dir: String,
    /// The PostgreSQL major version, from the service's image.
    pub major: u32,
    /// The directory of this node's generated files, relative to the topology's
    /// output directory: `<service>/<host>`.
    pub dir: String,
    /// Where its clients connect from (set with the host's firewall).
    pub clients: firewall::Sources,
}

/// A node of a Patroni cluster as the others reach it.
#[derive(Debug, Clone, PartialEq)]
pub struct PatroniMember {
    /// Its host's name.
    pub name: String,
    pub address: String,
    /// PostgreSQL's port.
    pub port: u16,
}

/// A member of an etcd cluster as its peers reach it.
#[derive(Debug, Clone, PartialEq)]
pub struct EtcdPeer {
    /// Its host's name.
    pub name: String,
    pub address: String,
}

impl PatroniNode {
    /// PostgreSQL's programs in the node image (the official Debian image).
    pub fn bin_dir(&self) -> String {
        format!("/usr/lib/postgresql/{}/bin", self.major)
    }
}

/// One member of the etcd cluster of a Patroni cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct EtcdMember {
    pub name: String,
    pub address: String,
    /// Every member, this one too.
    pub peers: Vec<EtcdPeer>,
    /// The cluster token: the Patroni scope, so two clusters never join.
    pub token: String,
    /// This member's config file, relative to the topology's output directory.
    pub file: String,
}

impl Topo<'_> {
    /// Whether a service is run by Patroni in this topology.
    pub(super) fn is_patroni(&self, service: &str) -> bool {
        if self.topo.platform.value != Platform::Compose || !self.with_ha.contains(service) {
            return false;
        }
        let def = self
            .placements
            .get(service)
            .and_then(|ps| ps.first())
            .map(|p| &p.def);
        def.is_some_and(|d| *d.ha_mode() == HaMode::Patroni && d.offers(&HaMode::Patroni))
    }

    /// The hosts of a Patroni cluster's etcd members: `etcd = [...]`, else the
    /// nodes' hosts.
    fn etcd_hosts(&self, service: &str, diags: &mut Diagnostics) -> Vec<usize> {
        let Some(ps) = self.placements.get(service) else {
            return Vec::new();
        };
        let listed = ps
            .first()
            .and_then(|p| p.def.replication.ha.as_ref()?.etcd.as_ref());
        match listed {
            Some(list) => {
                let mut hosts = IndexSet::default();
                for name in &list.value {
                    if let Some(h) = self.host_index(name, diags) {
                        if !hosts.insert(h) {
                            diags.push(
                                Diagnostic::error(
                                    Code::DuplicatePlacement,
                                    name.span,
                                    format!("host `{}` is listed twice", name.name),
                                )
                                .label("one etcd member per host")
                                .help("list each host once"),
                            );
                        }
                    }
                }
                hosts.into_iter().collect()
            }
            None => ps.iter().map(|p| p.host).collect(),
        }
    }

    /// Checks a Patroni cluster beyond what every replicated service shares:
    /// the secrets, the image's PostgreSQL version, the etcd members and where
    /// the nodes run.
    pub(super) fn check_patroni(&self, name: &str, ps: &[Placement<'_>], diags: &mut Diagnostics) {
        let Some(primary) = ps.first() else { return };
        let Some(ha) = primary.def.replication.ha.as_ref() else {
            return;
        };
        if self.superuser_secret(name).is_none() {
            let span = ha.superuser_password.as_ref().map_or(ha.span, |p| p.span);
            diags.push(
                Diagnostic::error(Code::MissingField, span, format!("Patroni needs the superuser password of `{name}` as a secret"))
                    .label("no `superuser_password = secret.NAME`, and `password` is not a secret")
                    .help("write `superuser_password = secret.NAME` in the `ha` block, or `password = secret.NAME` on the service"),
            );
        }
        if major_version(primary).is_none() {
            let span = primary.def.image.as_ref().map_or(ha.span, |i| i.span);
            diags.push(
                Diagnostic::error(Code::InvalidValue, span, format!("the Patroni node image of `{name}` needs the PostgreSQL major version"))
                    .label("no version in this image's tag")
                    .help("use an image tagged with the version, such as `image = \"postgres:16\"`: stackc builds the node image from the official one"),
            );
        }
        let etcd = self.etcd_hosts(name, diags);
        let span = ha.etcd.as_ref().map_or(ha.span, |e| e.span);
        for &h in &etcd {
            let Some(host) = self.hosts.get(h) else {
                continue;
            };
            if host.address.is_none() {
                diags.push(
                    Diagnostic::error(
                        Code::Unresolvable,
                        span,
                        format!(
                            "the etcd member of `{name}` on host `{}` needs the host's address",
                            host.name.name
                        ),
                    )
                    .label("the members and the Patroni nodes connect to it")
                    .help(format!(
                        "give host `{}` an `address = \"...\"`",
                        host.name.name
                    )),
                );
            }
            if host.managed {
                diags.push(
                    Diagnostic::error(
                        Code::NotSupported,
                        span,
                        format!(
                            "host `{}` is managed: it cannot run an etcd member",
                            host.name.name
                        ),
                    )
                    .label("a platform runs this host's services")
                    .help("choose hosts that run containers"),
                );
            }
        }
        let n = etcd.len();
        if n == 1 || (n > 0 && n.is_multiple_of(2)) {
            let (message, help) = if n == 1 {
                (
                    format!("one etcd member: when it is lost, `{name}` cannot elect a primary and its primary steps down"),
                    "run three etcd members on separate hosts: `etcd = [a, b, c]`".to_string(),
                )
            } else {
                let survives = crate::check::losses((n as u32 - 1) / 2);
                let help = if n == 2 {
                    "run three members".to_string()
                } else {
                    format!("run {} or {} members", n - 1, n + 1)
                };
                (
                    format!(
                        "{n} etcd members survive {survives}, as {} would: a quorum is {} of them",
                        n - 1,
                        n / 2 + 1
                    ),
                    help,
                )
            };
            diags.push(
                Diagnostic::error(Code::FragileFailover, span, message)
                    .label("the DCS needs a majority of its members")
                    .help(help),
            );
        }
        let mut seen: IndexMap<&str, &str> = IndexMap::default();
        for p in ps {
            let Some(host) = self.hosts.get(p.host) else {
                continue;
            };
            let Some(address) = host.address.as_ref() else {
                continue;
            };
            if let Some(other) = seen.insert(&address.value, &host.name.name) {
                diags.push(
                    Diagnostic::error(
                        Code::FragileFailover,
                        p.run_span,
                        format!("the nodes of `{name}` on hosts `{other}` and `{}` share the address {}", host.name.name, address.value),
                    )
                    .label("one machine: losing it loses both nodes")
                    .help("run each node on a host of its own"),
                );
            }
        }
    }

    /// The secret of the superuser's password: `superuser_password`, else the
    /// service's `password`. (secret name, environment variable)
    fn superuser_secret(&self, name: &str) -> Option<(Name, Name)> {
        let def = &self.placements.get(name)?.first()?.def;
        let expr = def
            .replication
            .ha
            .as_ref()?
            .superuser_password
            .as_ref()
            .or_else(|| def.parameters.args.get("password").map(|a| &a.value))?;
        self.secret_of(expr)
    }

    /// The secret an expression is, when it is exactly `secret.NAME`.
    pub(super) fn secret_of(&self, expr: &Expr) -> Option<(Name, Name)> {
        let [Piece::Ref(r)] = expr.pieces.as_slice() else {
            return None;
        };
        let RefTarget::Secret(Some(secret)) = &r.target else {
            return None;
        };
        let env = self.stack.secrets.get(&secret.name)?.env_name.clone();
        Some((secret.name.clone(), env))
    }

    /// The Patroni role of a placement, when its service is run by Patroni.
    pub(super) fn patroni_node(&self, name: &str, h: usize) -> Option<PatroniNode> {
        if !self.is_patroni(name) {
            return None;
        }
        let ps = self.placements.get(name)?;
        let primary = ps.first()?;
        let own = ps.iter().find(|p| p.host == h)?;
        let ha = primary.def.replication.ha.as_ref()?;
        let secs = |d: &Option<Sp<Duration>>, default: u64| {
            d.as_ref().map_or(default, |d| d.value.0 / 1000)
        };
        let port = |p: &Placement<'_>| p.def.ports.values().next()?.published_port();
        let host_name = |h: usize| self.hosts.get(h).map(|x| x.name.name.to_string());
        let members = ps
            .iter()
            .filter_map(|p| {
                Some(PatroniMember {
                    name: host_name(p.host)?,
                    address: self.host_address(p.host)?,
                    port: port(p)?,
                })
            })
            .collect();
        let etcd = self
            .etcd_hosts(name, &mut Diagnostics::default())
            .into_iter()
            .filter_map(|h| self.host_address(h))
            .map(|a| endpoint(&a, ETCD_CLIENT_PORT))
            .collect();
        let data =
            own.def
                .storage
                .volumes
                .values()
                .next()
                .map_or("/var/lib/postgresql/data", |v| {
                    v.path
                        .as_ref()
                        .map_or("/var/lib/postgresql/data", |p| p.value.as_str())
                });
        let node = host_name(h)?;
        Some(PatroniNode {
            service: name.to_string(),
            scope: format!("{}-{name}", self.stack.name),
            address: self.host_address(h)?,
            port: port(own)?,
            rest_port: own
                .def
                .ports
                .get(PATRONI_PORT_NAME)
                .and_then(PortDef::published_port)
                .unwrap_or(PATRONI_REST_PORT),
            members,
            etcd,
            ttl: secs(&ha.ttl, 30),
            loop_wait: secs(&ha.loop_wait, 10),
            retry_timeout: secs(&ha.retry_timeout, 10),
            maximum_lag: ha
                .maximum_lag
                .as_ref()
                .map_or(PATRONI_MAXIMUM_LAG, |s| s.value.0),
            synchronous: ha.synchronous.as_ref().is_some_and(|s| s.value),
            watchdog: ha.watchdog.as_ref().map_or(Watchdog::Off, |w| w.value),
            replication_user: ha
                .replication_user
                .as_ref()
                .map_or_else(|| "replicator".to_string(), |u| u.value.clone()),
            data_dir: format!("{}/pgdata", data.trim_end_matches('/')),
            major: major_version(primary)?,
            dir: format!("{name}/{node}"),
            name: node,
            clients: firewall::Sources::TopologyHosts,
        })
    }

    /// Wires a node's container: the node image built from the generated
    /// Dockerfile, Patroni on the mounted config, the host's network, the
    /// passwords from secrets, and a readiness check on the node's address.
    pub(super) fn wire_patroni(&self, node: &PatroniNode, inst: &mut Instance) {
        let def = self
            .placements
            .get(node.service.as_str())
            .and_then(|ps| ps.first())
            .map(|p| &p.def);
        let ha_span = def
            .and_then(|d| d.replication.ha.as_ref())
            .map_or(Span::default(), |h| h.span);
        inst.image = None;
        inst.program.build = Some(format!("@out/{}/image", node.service));
        inst.program.command = Some(vec![
            "/opt/patroni/bin/patroni".into(),
            format!("{PATRONI_DIR}/patroni.yml"),
        ]);
        inst.host_network = true;
        inst.storage
            .mounts
            .push(Mount::generated(node.dir.clone(), PATRONI_DIR));
        let bind = vec![Bind::Address(node.address.clone())];
        for p in &mut inst.ports {
            p.container = p.host;
            p.binds = bind.clone();
        }
        if !inst.ports.iter().any(|p| p.name == PATRONI_PORT_NAME) {
            inst.ports.push(PortPlan {
                name: PATRONI_PORT_NAME.into(),
                container: node.rest_port,
                host: node.rest_port,
                protocol: Protocol::Http,
                binds: bind,
            });
        }
        let secrets = [
            (
                "PATRONI_SUPERUSER_PASSWORD",
                self.superuser_secret(&node.service),
            ),
            (
                "PATRONI_REWIND_PASSWORD",
                self.superuser_secret(&node.service),
            ),
            // The REST API's unsafe endpoints (switchover, restart, reload,
            // config) ask for the superuser's name and password: whoever can
            // reach the port is no longer able to take the cluster down.
            (
                PATRONI_RESTAPI_PASSWORD,
                self.superuser_secret(&node.service),
            ),
            (
                "PATRONI_REPLICATION_PASSWORD",
                def.and_then(|d| d.replication.ha.as_ref()?.replication_password.as_ref())
                    .and_then(|e| self.secret_of(e)),
            ),
        ];
        for (key, secret) in secrets {
            let Some((name, env)) = secret else { continue };
            inst.env.push(EnvVar {
                key: Name::new_static(key),
                value: smallvec::smallvec![Out::secret(name, env, false)],
                span: ha_span,
            });
        }
        let ready = Probe {
            check: ProbeCheck::Command(Command::Exec(vec![
                "pg_isready".into(),
                "-h".into(),
                node.address.clone(),
                "-p".into(),
                node.port.to_string(),
            ])),
            port_name: None,
            port: 0,
            interval: Some(Duration(5_000)),
            timeout: Some(Duration(3_000)),
            retries: Some(10),
            start_period: Some(Duration(30_000)),
        };
        inst.probes = Probes {
            readiness: Some(Arc::new(ready)),
            ..Probes::default()
        };
        if node.watchdog == Watchdog::Required {
            inst.program.devices.push("/dev/watchdog".into());
        }
        inst.refers_to.push(format!("{}-etcd", node.service).into());
    }

    /// The etcd members a host runs, one per Patroni cluster that lists it.
    pub(super) fn etcd_instances(&self, h: usize) -> Vec<Instance> {
        let mut out = Vec::new();
        for name in self.placements.keys() {
            if !self.is_patroni(name) {
                continue;
            }
            let hosts = self.etcd_hosts(name, &mut Diagnostics::default());
            if !hosts.contains(&h) {
                continue;
            }
            let peers: Vec<EtcdPeer> = hosts
                .iter()
                .filter_map(|&x| {
                    Some(EtcdPeer {
                        name: self.hosts.get(x)?.name.name.to_string(),
                        address: self.host_address(x)?,
                    })
                })
                .collect();
            let (Some(host), Some(address)) = (self.hosts.get(h), self.host_address(h)) else {
                continue;
            };
            let member = EtcdMember {
                name: host.name.name.to_string(),
                address: address.clone(),
                peers,
                token: format!("{}-{name}", self.stack.name),
                file: format!("{name}/{}/etcd.yml", host.name.name),
            };
            let instance = Added::Etcd.name(name).to_string();
            let bind = vec![Bind::Address(address.clone())];
            let port = |name: &str, port: u16| PortPlan {
                name: name.into(),
                container: port,
                host: port,
                protocol: Protocol::Tcp,
                binds: bind.clone(),
            };
            out.push(Instance {
                image: Some(ETCD_IMAGE.into()),
                host_network: true,
                ports: vec![
                    port("client", ETCD_CLIENT_PORT),
                    port("peer", ETCD_PEER_PORT),
                ],
                probes: Probes {
                    readiness: Some(Arc::new(Probe {
                        check: ProbeCheck::Command(Command::Exec(vec![
                            "etcdctl".into(),
                            format!("--endpoints={}", endpoint(&address, ETCD_CLIENT_PORT)),
                            "endpoint".into(),
                            "health".into(),
                        ])),
                        port_name: None,
                        port: 0,
                        interval: Some(Duration(10_000)),
                        timeout: Some(Duration(5_000)),
                        retries: Some(5),
                        start_period: None,
                    })),
                    ..Probes::default()
                },
                program: Program {
                    command: Some(vec![
                        "etcd".into(),
                        "--config-file".into(),
                        ETCD_CONFIG.into(),
                    ]),
                    ..Program::default()
                }
                .into(),
                storage: Storage {
                    volumes: vec![Volume {
                        name: format!("{instance}-data"),
                        path: ETCD_DATA_DIR.into(),
                        size: Size(1 << 30),
                    }],
                    mounts: vec![Mount::generated(member.file.clone(), ETCD_CONFIG)],
                    backup: None,
                    shared_from: None,
                }
                .into(),
                replication: Replication {
                    etcd: Some(Box::new(member)),
                    ..Replication::default()
                }
                .into(),
                ..Instance::auxiliary(instance.into(), Role::Stateful)
            });
        }
        out
    }

    /// The HAProxy of a Patroni cluster beside its consumers on a host: the
    /// primary's and the replicas' endpoints, on the host's compose network.
    pub(super) fn patroni_proxy(&self, service: &str) -> Instance {
        let name = Added::Haproxy.name(service).to_string();
        Instance {
            image: Some(HAPROXY_IMAGE.into()),
            refers_to: vec![Name::new(service)],
            storage: Storage {
                mounts: vec![Mount::generated(
                    format!("{service}/haproxy.cfg"),
                    HAPROXY_CONFIG,
                )],
                ..Storage::default()
            }
            .into(),
            ..Instance::auxiliary(name.into(), Role::Stateless)
        }
    }
}

/// `address:port`, bracketing an IPv6 address (`grammar::host_port`).
pub use crate::grammar::host_port as endpoint;

/// The PostgreSQL major version of a placement's image: `postgres:16-alpine`
/// is 16.
pub(super) fn major_version(p: &Placement<'_>) -> Option<u32> {
    let image = &p.def.image.as_ref()?.value;
    let tag = image.rsplit_once(':')?.1;
    if tag.contains('/') {
        // `registry:5000/postgres`: a registry's port, no tag.
        return None;
    }
    let digits: String = tag.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok().filter(|v| *v >= 10)
}
