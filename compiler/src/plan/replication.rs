//! Replication on hosts: PostgreSQL streaming (`ha = streaming`) and Redis
//! replicas (`ha = replica`). The first placement is the primary (master), the
//! others are standbys (replicas) that replicate from it over the primary host's
//! address. `url` goes to the primary from everywhere; `read_url` to the
//! consumer's own standby, else the first standby.

use crate::base::IndexMap;

use crate::diag::{Code, Diagnostic, Diagnostics};

use super::*;

/// One node of a streaming-replicated PostgreSQL.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamingPlan {
    /// Where the primary is reached: its host's address and published port.
    pub primary_address: String,
    pub primary_port: u16,
    pub standby: bool,
    /// The standbys' addresses: the only sources allowed to replicate.
    pub standby_addresses: Vec<String>,
    pub user: String,
    /// The secret of the replication password, and its environment variable.
    pub password_secret: Name,
    pub password_env: Name,
    /// The `ha` block, for what the password's variable points back to.
    pub span: Span,
    /// This node's name for the primary (`application_name`).
    pub node: String,
    /// The port PostgreSQL listens on in its container.
    pub port: u16,
    /// The directory of this node's generated files, relative to the topology's
    /// output directory: `<service>/<host>`.
    pub dir: String,
    /// Where its clients connect from (set with the host's firewall).
    pub clients: firewall::Sources,
    /// Clients and standbys connect over TLS only (`postgres_tls`).
    pub tls: bool,
}

/// Where a node's generated files are mounted in its container.
pub const STREAMING_DIR: &str = "/etc/postgresql/stackc";
/// The container's variable that carries the replication password.
pub const REPLICATION_PASSWORD_ENV: &str = "STACKC_REPLICATION_PASSWORD";

impl StreamingPlan {
    /// Wires a node's container to its generated files: the config and pg_hba
    /// mounted read-only, the primary's role script run by the image at initdb,
    /// the standby started by its clone-then-stream script.
    pub(super) fn wire(&self, inst: &mut Instance) {
        inst.storage
            .mounts
            .push(Mount::generated(self.dir.clone(), STREAMING_DIR));
        let config = vec![
            "-c".to_string(),
            format!("config_file={STREAMING_DIR}/postgresql.conf"),
            "-c".to_string(),
            format!("hba_file={STREAMING_DIR}/pg_hba.conf"),
        ];
        let mut command = if self.standby {
            vec!["sh".to_string(), format!("{STREAMING_DIR}/standby.sh")]
        } else {
            inst.storage.mounts.push(Mount::generated(
                format!("{}/init-replication.sh", self.dir),
                "/docker-entrypoint-initdb.d/stackc-replication.sh",
            ));
            vec!["postgres".to_string()]
        };
        if !self.standby {
            command.extend(config);
        }
        inst.program.command = Some(command);
        inst.env.push(EnvVar {
            key: Name::new_static(REPLICATION_PASSWORD_ENV),
            value: smallvec::smallvec![Out::secret(
                self.password_secret.clone(),
                self.password_env.clone(),
                false,
            )],
            span: self.span,
        });
    }
}

impl Topo<'_> {
    /// The replication mode of a service in this topology, when it is
    /// replicated from a primary on hosts (`streaming` or `replica`).
    fn replication_mode(&self, service: &str) -> Option<&HaMode> {
        if self.topo.platform.value != Platform::Compose || !self.with_ha.contains(service) {
            return None;
        }
        let def = &self.placements.get(service)?.first()?.def;
        let mode = &def.replication.ha.as_ref()?.mode.value;
        // A mode the service's kind does not offer is already reported (E0203).
        (mode.on_hosts() && def.offers(mode)).then_some(mode)
    }

    /// Whether a service is replicated from a fixed primary on hosts.
    pub(super) fn is_replicated(&self, service: &str) -> bool {
        self.replication_mode(service)
            .is_some_and(|mode| *mode != HaMode::Patroni)
    }

    /// The placement a reference reaches: the primary, or for reads the
    /// consumer's own standby, else the first standby.
    pub(super) fn replicated_target(
        &self,
        service: &str,
        consumer_host: usize,
        read: bool,
    ) -> Option<(bool, &Placement<'_>)> {
        let ps = self.placements.get(service)?;
        let primary = ps.first()?;
        if !read {
            return Some((primary.host == consumer_host, primary));
        }
        let standbys = &ps[1..];
        match standbys.iter().find(|p| p.host == consumer_host) {
            Some(local) => Some((true, local)),
            None => standbys
                .first()
                .map(|p| (false, p))
                .or(Some((primary.host == consumer_host, primary))),
        }
    }

    /// Checks every replicated service, and the primary's port the standbys need
    /// published on its address: (service, host, port name).
    pub(super) fn replication(&self, diags: &mut Diagnostics) -> Publishes {
        let mut publishes = Publishes::default();
        // The sentinel published on each host, by the service it watches.
        let mut sentinel_hosts: IndexMap<usize, &str> = IndexMap::default();
        for (name, ps) in &self.placements {
            let Some(mode) = self.replication_mode(name) else {
                continue;
            };
            let (what, node) = match mode {
                HaMode::Streaming => ("streaming replication", "standby"),
                HaMode::Patroni => ("a Patroni cluster", "replica"),
                _ => ("replication", "replica"),
            };
            let layout = if *mode == HaMode::Patroni {
                "Patroni runs a node on each host and elects the primary".to_string()
            } else {
                format!("the first host listed runs the primary, the others {node}s")
            };
            let Some(primary) = ps.first() else { continue };
            let ha_span = primary
                .def
                .replication
                .ha
                .as_ref()
                .map_or(primary.run_span, |h| h.span);
            if ps.len() < 2 {
                diags.push(
                    Diagnostic::error(
                        Code::InvalidValue,
                        ha_span,
                        format!("{what} of `{name}` needs a {node}: it runs on one host only"),
                    )
                    .label(format!("no {node} in this topology"))
                    .help(format!("run `{name}` on a second host too: {layout}")),
                );
                continue;
            }
            for p in ps.iter() {
                let Some(host) = self.hosts.get(p.host) else {
                    continue;
                };
                if host.address.is_none() {
                    diags.push(
                        Diagnostic::error(
                            Code::Unresolvable,
                            p.run_span,
                            format!(
                                "{what} of `{name}` needs the address of host `{}`",
                                host.name.name
                            ),
                        )
                        .label("replication connects between hosts")
                        .help(format!(
                            "give host `{}` an `address = \"...\"`",
                            host.name.name
                        )),
                    );
                }
            }
            let password = primary
                .def
                .replication
                .ha
                .as_ref()
                .and_then(|h| h.replication_password.as_ref());
            let secret = !matches!(mode, HaMode::Streaming | HaMode::Patroni)
                || password.is_some_and(|e| self.secret_of(e).is_some());
            if !secret {
                diags.push(
                    Diagnostic::error(Code::MissingField, password.map_or(ha_span, |p| p.span), format!("{what} of `{name}` needs the replication password as a secret"))
                        .label("no `replication_password = secret.NAME`")
                        .help("declare `secret replication_password` and write `replication_password = secret.replication_password` in the `ha` block"),
                );
            }
            // Sentinels and replicas reach every node of a Sentinel-watched Redis,
            // any of which may become the master; otherwise only the primary.
            let reached = if *mode == HaMode::Sentinel {
                ps.len()
            } else {
                1
            };
            // Read by the other nodes (their replicas and sentinels).
            for p in ps.iter().take(reached) {
                if let Some(port) = first_port(p) {
                    for reader in ps.iter().filter(|r| r.host != p.host) {
                        let key = PublishedPort::new(name, p.host, &port.name.name);
                        publishes.insert(key, Reader::Host(reader.host));
                    }
                }
            }
            if *mode == HaMode::Patroni {
                self.check_patroni(name, ps, diags);
                continue;
            }
            if *mode == HaMode::Sentinel {
                self.check_sentinel_count(name, ps, diags);
                for p in ps.iter() {
                    match sentinel_hosts.get(&p.host) {
                        Some(other) => diags.push(
                            Diagnostic::error(
                                Code::PortConflict,
                                p.run_span,
                                format!(
                                    "the sentinels of `{other}` and `{name}` both publish port {SENTINEL_PORT} on host `{}`",
                                    self.hosts.get(p.host).map_or("", |h| h.name.name.as_str())
                                ),
                            )
                            .label("a second sentinel on this host")
                            .help(format!("run `{name}` on other hosts than `{other}`: one Sentinel-watched Redis per host")),
                        ),
                        None => {
                            sentinel_hosts.insert(p.host, name);
                        }
                    }
                }
            }
        }
        publishes
    }

    /// Wires a Redis replica to its master: `--replicaof` the master's address
    /// and port, announcing its own host's address and port (behind Docker's NAT
    /// the master would otherwise list the address it is connected from).
    pub(super) fn wire_redis_replica(&self, name: &str, h: usize, inst: &mut Instance) {
        if self.replication_mode(name) != Some(&HaMode::Replica) {
            return;
        }
        let Some(ps) = self.placements.get(name) else {
            return;
        };
        let Some(primary) = ps.first().filter(|p| p.host != h) else {
            return;
        };
        let (Some(master), Some(own), Some(master_port)) = (
            self.host_address(primary.host),
            self.host_address(h),
            first_port(primary).and_then(PortDef::published_port),
        ) else {
            return;
        };
        let mut args = vec![
            "--replicaof".to_string(),
            master,
            master_port.to_string(),
            "--replica-announce-ip".to_string(),
            own,
        ];
        let own_port = ps
            .iter()
            .find(|p| p.host == h)
            .and_then(first_port)
            .and_then(PortDef::published_port);
        if let Some(own_port) = own_port {
            args.extend(["--replica-announce-port".to_string(), own_port.to_string()]);
        }
        args.extend(["--replica-read-only".to_string(), "yes".to_string()]);
        // A password-protected replica authenticates to its master with
        // `masterauth`, from `wire_redis_auth`.
        inst.program.command = Some(extend_command(inst.program.command.take(), &args));
    }

    /// The streaming role of a placement, when its service is streaming-replicated.
    pub(super) fn streaming_plan(&self, name: &str, h: usize) -> Option<StreamingPlan> {
        if self.replication_mode(name) != Some(&HaMode::Streaming) {
            return None;
        }
        let ps = self.placements.get(name)?;
        let primary = ps.first()?;
        let ha = primary.def.replication.ha.as_ref()?;
        let port = first_port(primary)?;
        let (password_secret, password_env) = self.secret_of(ha.replication_password.as_ref()?)?;
        Some(StreamingPlan {
            primary_address: self.host_address(primary.host)?,
            primary_port: port.published_port()?,
            standby: primary.host != h,
            standby_addresses: ps[1..]
                .iter()
                .filter_map(|p| self.host_address(p.host))
                .collect(),
            user: ha
                .replication_user
                .as_ref()
                .map_or_else(|| "replicator".to_string(), |u| u.value.clone()),
            password_secret,
            password_env,
            span: ha.span,
            node: self
                .hosts
                .get(h)
                .map_or_else(String::new, |x| x.name.name.to_string()),
            port: port.container_port()?,
            dir: format!(
                "{name}/{}",
                self.hosts.get(h).map_or("", |x| x.name.name.as_str())
            ),
            clients: firewall::Sources::Peers(IndexSet::default()),
            tls: false,
        })
    }
}

/// The variable a password-protected Redis kind (`redis_auth`) passes its
/// password in; replication and Sentinel authenticate with it.
pub const REDIS_PASSWORD_ENV: &str = "REDIS_PASSWORD";

/// Extends a Redis command with arguments: words appended, or, to a shell
/// line of its own (`sh -c LINE`), appended quoted. Without a command, it is
/// `redis-server`.
fn extend_command(command: Option<Vec<String>>, args: &[String]) -> Vec<String> {
    if let Some(line) = command.as_deref().and_then(shell_line) {
        let line: Vec<String> = std::iter::once(line.to_string())
            .chain(args.iter().map(|a| crate::grammar::shell_word(a)))
            .collect();
        return vec!["sh".into(), "-c".into(), line.join(" ")];
    }
    let base = command.unwrap_or_else(|| vec!["redis-server".to_string()]);
    base.into_iter().chain(args.iter().cloned()).collect()
}

/// The line of a command that is a shell line of its own (`sh -c LINE`).
pub(super) fn shell_line(command: &[String]) -> Option<&str> {
    match command {
        [sh, c, line] if sh == "sh" && c == "-c" => Some(line),
        _ => None,
    }
}

/// The first port of a placement: the one replication connects to.
fn first_port<'p>(p: &'p Placement<'_>) -> Option<&'p PortDef> {
    p.def.ports.values().next()
}

/// The port of a sentinel, in its container and published on its host's address.
pub const SENTINEL_PORT: u16 = 26379;
/// Where a Redis node's and its sentinel's generated files are mounted.
pub const REDIS_DIR: &str = "/etc/redis/stackc";

/// A node of a Sentinel-watched Redis on hosts: its config and its sentinel's.
#[derive(Debug, Clone, PartialEq)]
pub struct SentinelNode {
    pub plan: SentinelPlan,
    /// The initial master, as every node and sentinel reaches it.
    pub master_address: String,
    pub master_port: u16,
    pub master: bool,
    /// This node's host address and published port, announced to the others.
    pub address: String,
    pub port: u16,
    /// The port Redis listens on in its container.
    pub container_port: u16,
    /// The directory of this node's generated files, relative to the topology's
    /// output directory: `<service>/<host>`.
    pub dir: String,
}

impl Topo<'_> {
    /// On hosts a sentinel runs beside each node: `sentinels` may only say so.
    fn check_sentinel_count(&self, name: &str, ps: &[Placement<'_>], diags: &mut Diagnostics) {
        let Some(ha) = ps.first().and_then(|p| p.def.replication.ha.as_ref()) else {
            return;
        };
        let n = ps.len() as u32;
        if let Some(s) = ha.sentinels.as_ref().filter(|s| s.value != n) {
            diags.push(
                Diagnostic::error(
                    Code::InvalidValue,
                    s.span,
                    format!(
                        "on hosts, a sentinel runs beside each node of `{name}`: {n}, not {}",
                        s.value
                    ),
                )
                .label("one sentinel per host")
                .help(format!(
                    "remove `sentinels`, or run `{name}` on {} hosts",
                    s.value
                )),
            );
        } else if ha.sentinels.is_none() && n < 3 {
            diags.push(
                Diagnostic::error(
                    Code::FragileFailover,
                    ha.span,
                    format!("{n} sentinels (one per host of `{name}`) cannot fail over when one is lost"),
                )
                .label("a failover needs a majority of all sentinels")
                .help(format!("run `{name}` on a third host")),
            );
        }
        if let Some(q) = ha.quorum.as_ref().filter(|q| q.value > n) {
            diags.push(
                Diagnostic::error(
                    Code::InvalidValue,
                    q.span,
                    format!(
                        "a quorum of {} with {n} sentinels can never be reached",
                        q.value
                    ),
                )
                .label("from 1 to the number of sentinels")
                .help(format!("a majority is `quorum = {}`", n / 2 + 1)),
            );
        }
    }

    /// The Sentinel role of a placement, when its service is watched by Sentinel
    /// on hosts.
    pub(super) fn sentinel_node(&self, name: &str, h: usize) -> Option<SentinelNode> {
        if self.replication_mode(name) != Some(&HaMode::Sentinel) {
            return None;
        }
        let ps = self.placements.get(name)?;
        let primary = ps.first()?;
        let own = ps.iter().find(|p| p.host == h)?;
        let ha = primary.def.replication.ha.as_ref()?;
        let mut plan = SentinelPlan::from_def(name, ha);
        plan.sentinels = ps.len() as u32;
        plan.quorum = ha
            .quorum
            .as_ref()
            .map_or(plan.sentinels / 2 + 1, |q| q.value);
        let own_port = first_port(own)?;
        Some(SentinelNode {
            plan,
            master_address: self.host_address(primary.host)?,
            master_port: first_port(primary)?.published_port()?,
            master: primary.host == h,
            address: self.host_address(h)?,
            port: own_port.published_port()?,
            container_port: own_port.container_port()?,
            dir: format!(
                "{name}/{}",
                self.hosts.get(h).map_or("", |x| x.name.name.as_str())
            ),
        })
    }

    /// The address of a host, when it has one.
    pub(super) fn host_address(&self, host: usize) -> Option<String> {
        Some(self.hosts.get(host)?.address.as_ref()?.value.clone())
    }

    /// Whether a service is a Sentinel-watched Redis on hosts.
    pub(super) fn is_host_sentinel(&self, service: &str) -> bool {
        self.replication_mode(service) == Some(&HaMode::Sentinel)
    }

    /// The addresses of the sentinels of a Redis on hosts.
    pub(super) fn host_sentinels(&self, name: &str) -> Vec<String> {
        self.placements
            .get(name)
            .into_iter()
            .flatten()
            .filter_map(|p| self.hosts.get(p.host)?.address.as_ref())
            .map(|a| endpoint(&a.value, SENTINEL_PORT))
            .collect()
    }
}

impl SentinelNode {
    /// Wires a node's container: its config is copied into the data volume at
    /// the first start (Sentinel rewrites it at failover), then the image's
    /// entrypoint runs Redis on it (it owns the volume and drops root).
    pub(super) fn wire(&self, inst: &mut Instance) {
        inst.storage
            .mounts
            .push(Mount::generated(self.dir.clone(), REDIS_DIR));
        // Every node authenticates to its master (any may become a replica):
        // the password's directives on standard input (`wire_redis_auth`).
        let auth = if redis_auth::requires_auth(inst) {
            " -"
        } else {
            ""
        };
        inst.program.command = Some(vec![
            "sh".into(),
            "-c".into(),
            format!("test -f /data/redis.conf || cp {REDIS_DIR}/redis.conf /data/redis.conf; exec docker-entrypoint.sh redis-server /data/redis.conf{auth}"),
        ]);
    }

    /// The sentinel beside a node: `<service>-sentinel`, its config copied into a
    /// volume of its own at the first start, its port published on the host's
    /// address.
    pub(super) fn sentinel_instance(&self, node: &Instance) -> Instance {
        let name = Added::Sentinel.name(&node.name).to_string();
        let check = Probe {
            check: ProbeCheck::Command(Command::Exec(vec![
                "redis-cli".into(),
                "-p".into(),
                SENTINEL_PORT.to_string(),
                "ping".into(),
            ])),
            port_name: None,
            port: 0,
            interval: Some(Duration(5_000)),
            timeout: Some(Duration(3_000)),
            retries: Some(5),
            start_period: None,
        };
        // The sentinels authenticate to every node with the nodes' password.
        let password: Vec<EnvVar> = node
            .env
            .iter()
            .filter(|v| v.key == REDIS_PASSWORD_ENV)
            .cloned()
            .collect();
        let auth = if password.is_empty() {
            String::new()
        } else {
            redis_auth::sentinel_preamble("/data/sentinel.conf", &self.plan.master_name)
        };
        Instance {
            image: node.image.clone(),
            env: password,
            ports: vec![PortPlan {
                name: "sentinel".into(),
                container: SENTINEL_PORT,
                host: SENTINEL_PORT,
                protocol: Protocol::Tcp,
                binds: vec![Bind::Address(self.address.clone())],
            }],
            probes: Probes {
                readiness: Some(Arc::new(check)),
                ..Probes::default()
            },
            kind: node.kind.clone(),
            program: Program {
                command: Some(vec![
                    "sh".into(),
                    "-c".into(),
                    format!("test -f /data/sentinel.conf || cp {REDIS_DIR}/sentinel.conf /data/sentinel.conf\n{auth}exec docker-entrypoint.sh redis-server /data/sentinel.conf --sentinel"),
                ]),
                ..Program::default()
            }
            .into(),
            storage: Storage {
                volumes: vec![Volume {
                    name: format!("{name}-data"),
                    path: "/data".into(),
                    size: Size(1 << 20),
                }],
                mounts: vec![Mount::generated(self.dir.clone(), REDIS_DIR)],
                backup: None,
            shared_from: None,
            }
            .into(),
            ..Instance::auxiliary(name.into(), Role::Stateful)
        }
    }
}
