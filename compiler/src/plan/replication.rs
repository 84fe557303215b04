//! Replication on hosts: PostgreSQL streaming (`ha = streaming`) and Redis
//! replicas (`ha = replica`). The first placement is the primary (master), the
//! others are standbys (replicas) that replicate from it over the primary host's
//! address. `url` goes to the primary from everywhere; `read_url` to the
//! consumer's own standby, else the first standby.

use indexmap::IndexSet;

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
    pub password_secret: String,
    pub password_env: String,
    /// The `ha` block, for what the password's variable points back to.
    pub span: Span,
    /// This node's name for the primary (`application_name`).
    pub node: String,
    /// The port PostgreSQL listens on in its container.
    pub port: u16,
    /// The directory of this node's generated files, relative to the topology's
    /// output directory: `<service>/<host>`.
    pub dir: String,
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
        inst.mounts.push(Mount {
            source: self.dir.clone(),
            target: STREAMING_DIR.to_string(),
            read_only: true,
            generated: true,
        });
        let config = vec![
            "-c".to_string(),
            format!("config_file={STREAMING_DIR}/postgresql.conf"),
            "-c".to_string(),
            format!("hba_file={STREAMING_DIR}/pg_hba.conf"),
        ];
        let mut command = if self.standby {
            vec!["sh".to_string(), format!("{STREAMING_DIR}/standby.sh")]
        } else {
            inst.mounts.push(Mount {
                source: format!("{}/init-replication.sh", self.dir),
                target: "/docker-entrypoint-initdb.d/stackc-replication.sh".to_string(),
                read_only: true,
                generated: true,
            });
            vec!["postgres".to_string()]
        };
        if !self.standby {
            command.extend(config);
        }
        inst.command = Some(Command::Exec(command));
        inst.env.push(EnvVar {
            key: REPLICATION_PASSWORD_ENV.to_string(),
            value: vec![Out::Secret {
                name: self.password_secret.clone(),
                env: self.password_env.clone(),
                optional: false,
            }],
            span: self.span,
        });
    }
}

impl Topo<'_> {
    /// The replication mode of a service in this topology, when it is
    /// replicated from a primary on hosts (`streaming` or `replica`).
    fn replication_mode(&self, service: &str) -> Option<&str> {
        if self.topo.platform.value != Platform::Compose {
            return None;
        }
        let mode = self
            .placements
            .get(service)?
            .first()?
            .def
            .ha
            .as_ref()?
            .mode
            .name
            .as_str();
        [STREAMING, REPLICA].contains(&mode).then_some(mode)
    }

    /// Whether a service is replicated from a primary on hosts.
    pub(super) fn is_replicated(&self, service: &str) -> bool {
        self.replication_mode(service).is_some()
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
    pub(super) fn replication(&self, diags: &mut Diagnostics) -> IndexSet<(String, usize, String)> {
        let mut publishes = IndexSet::new();
        for (name, ps) in &self.placements {
            let Some(mode) = self.replication_mode(name) else {
                continue;
            };
            let (what, node) = if mode == STREAMING {
                ("streaming replication", "standby")
            } else {
                ("replication", "replica")
            };
            let Some(primary) = ps.first() else { continue };
            let ha_span = primary.def.ha.as_ref().map_or(primary.run_span, |h| h.span);
            if ps.len() < 2 {
                diags.push(
                    Diagnostic::error(Code::InvalidValue, ha_span, format!("{what} of `{name}` needs a {node}: it runs on one host only"))
                        .label(format!("no {node} in this topology"))
                        .help(format!("run `{name}` on a second host too: the first host listed runs the primary, the others {node}s")),
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
                .ha
                .as_ref()
                .and_then(|h| h.replication_password.as_ref());
            let secret = mode != STREAMING || password.is_some_and(|e| {
                matches!(e.pieces.as_slice(), [Piece::Ref(r)] if r.path.first().is_some_and(|s| s.name == "secret"))
            });
            if !secret {
                diags.push(
                    Diagnostic::error(Code::MissingField, password.map_or(ha_span, |p| p.span), format!("streaming replication of `{name}` needs the replication password as a secret"))
                        .label("no `replication_password = secret.NAME`")
                        .help("declare `secret replication_password` and write `replication_password = secret.replication_password` in the `ha` block"),
                );
            }
            if let Some(port) = primary.def.ports.values().next() {
                publishes.insert((name.to_string(), primary.host, port.name.name.clone()));
            }
        }
        publishes
    }

    /// Wires a Redis replica to its master: `--replicaof` the master's address
    /// and port, announcing its own host's address and port (behind Docker's NAT
    /// the master would otherwise list the address it is connected from).
    pub(super) fn wire_redis_replica(&self, name: &str, h: usize, inst: &mut Instance) {
        if self.replication_mode(name) != Some(REPLICA) {
            return;
        }
        let Some(ps) = self.placements.get(name) else {
            return;
        };
        let Some(primary) = ps.first().filter(|p| p.host != h) else {
            return;
        };
        let address = |host: usize| {
            self.hosts
                .get(host)
                .and_then(|x| x.address.as_ref())
                .map(|a| a.value.clone())
        };
        let published = |p: &Placement<'_>| {
            p.def.ports.values().next().map(|port| {
                let container = port.container.as_ref().map_or(6379, |c| c.value);
                port.host.as_ref().map_or(container, |p| p.value)
            })
        };
        let (Some(master), Some(own), Some(master_port)) =
            (address(primary.host), address(h), published(primary))
        else {
            return;
        };
        let mut args = vec![
            "--replicaof".to_string(),
            master,
            master_port.to_string(),
            "--replica-announce-ip".to_string(),
            own,
        ];
        if let Some(own_port) = ps.iter().find(|p| p.host == h).and_then(published) {
            args.extend(["--replica-announce-port".to_string(), own_port.to_string()]);
        }
        args.extend(["--replica-read-only".to_string(), "yes".to_string()]);
        inst.command = Some(match inst.command.take() {
            Some(Command::Exec(mut v)) => {
                v.extend(args);
                Command::Exec(v)
            }
            Some(Command::Shell(s)) => Command::Shell(format!("{s} {}", args.join(" "))),
            None => {
                let mut v = vec!["redis-server".to_string()];
                v.extend(args);
                Command::Exec(v)
            }
        });
    }

    /// The streaming role of a placement, when its service is streaming-replicated.
    pub(super) fn streaming_plan(&self, name: &str, h: usize) -> Option<StreamingPlan> {
        if self.replication_mode(name) != Some(STREAMING) {
            return None;
        }
        let ps = self.placements.get(name)?;
        let primary = ps.first()?;
        let ha = primary.def.ha.as_ref()?;
        let port = primary.def.ports.values().next()?;
        let container = port.container.as_ref().map_or(5432, |c| c.value);
        let address = |p: &Placement<'_>| {
            self.hosts
                .get(p.host)
                .and_then(|x| x.address.as_ref())
                .map(|a| a.value.clone())
        };
        let (password_secret, password_env) = match ha
            .replication_password
            .as_ref()
            .map(|e| e.pieces.as_slice())
        {
            Some([Piece::Ref(r)]) => {
                let secret = r.path.get(1)?;
                let env = self.stack.secrets.get(&secret.name)?.env_name.clone();
                (secret.name.clone(), env)
            }
            _ => return None,
        };
        Some(StreamingPlan {
            primary_address: address(primary)?,
            primary_port: port.host.as_ref().map_or(container, |p| p.value),
            standby: primary.host != h,
            standby_addresses: ps[1..].iter().filter_map(address).collect(),
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
                .map_or_else(String::new, |x| x.name.name.clone()),
            port: container,
            dir: format!(
                "{name}/{}",
                self.hosts.get(h).map_or("", |x| x.name.name.as_str())
            ),
        })
    }
}
