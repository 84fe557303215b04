//! Roles of their own (docs/targets.md, "PostgreSQL roles per client"; Redis's
//! users in "A Redis password", made in `redis_auth.rs`): a
//! PostgreSQL server with `roles = per_service` gives each service that
//! refers to its `url` or `read_url` a login role named after the service,
//! with a password of its own, and the client's URL names that role. What a
//! role may do follows from what its client refers to: `read_url` alone
//! reads (`pg_read_all_data`), `url` also writes (`pg_write_all_data`), and a
//! task (a migration) also creates in the schema `public`. No role is a
//! superuser or a member of the owner, which a docker image's owner is.
//!
//! On hosts, and in a cluster without an operator, the task `<server>-roles`
//! makes the roles as the server's owner at every start (a role is created
//! once, its password and grants set each time: a changed password or access
//! takes effect at the next start); CloudNativePG makes them itself, from its
//! Cluster's `managed.roles`.

use crate::diag::{Code, Diagnostic, Diagnostics, Span};

use super::redis_auth::User;

use super::*;

/// The oldest PostgreSQL whose roles do what a per-service role needs:
/// `pg_read_all_data` and `pg_write_all_data` (14), and a schema `public` in
/// which only its owner creates (15).
const OLDEST_MAJOR: u32 = 15;

/// A client's reference to a server that gives it a role of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RoleUse {
    pub(crate) server: Name,
    pub(crate) client: Name,
    /// Through `url` (else `read_url` only).
    pub(crate) writes: bool,
}

impl RoleUse {
    /// The role's name: the client's, with `_` for `-` (a role named in SQL
    /// unquoted, and in a URL's user, takes no `-` without quoting).
    fn role(&self) -> Name {
        Name::new(self.client.replace('-', "_"))
    }

    /// The secret of its password: `<server>_<client>_password`, which
    /// `stackc secrets init` may generate.
    fn secret(&self) -> SecretRef {
        let name = format!("{}_{}_password", self.server, self.client).replace('-', "_");
        SecretRef {
            env: Name::new(name.to_ascii_uppercase()),
            name: Name::new(name),
            optional: false,
        }
    }

    /// The server's parameter `param` as this client's URL says it: the
    /// role's name for `user`, its secret for `password`.
    pub(super) fn param(&self, param: &str) -> Option<Pieces> {
        match param {
            "user" => Some(smallvec::smallvec![Out::Text(self.role())]),
            "password" => {
                let s = self.secret();
                Some(smallvec::smallvec![Out::secret(s.name, s.env, s.optional)])
            }
            _ => None,
        }
    }
}

/// What a client's role may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    /// Read every table (`read_url` only).
    Read,
    /// Read and write every table.
    Write,
    /// Also create in the schema `public`: a task that writes (a migration).
    Migrate,
}

/// A client's role on a server.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientRole {
    pub client: Name,
    /// The role's name.
    pub name: Name,
    /// The secret of its password.
    pub password: SecretRef,
    pub access: Access,
    /// The server's `roles = per_service`, which asks for it.
    pub span: Span,
}

/// The roles a server gives, in the order its clients are first seen.
pub type ServerRoles = IndexMap<Name, Vec<ClientRole>>;

impl Topo<'_> {
    /// The role `fx`'s client connects to `target` as, when `target` gives
    /// each client a role of its own; recorded in `fx`.
    pub(super) fn client_role(
        &self,
        target: &Name,
        def: &ServiceDef,
        reads: bool,
        fx: &mut Effects,
    ) -> Option<RoleUse> {
        per_service(def)?;
        let client = fx.client.as_ref().filter(|c| *c != target)?;
        self.role_server(target)?;
        let role = RoleUse {
            server: target.clone(),
            client: client.clone(),
            writes: !reads,
        };
        fx.roles.push(role.clone());
        Some(role)
    }

    /// Every server's roles, from what the instances' values connect as,
    /// each checked: a role's name must be free, and the server's
    /// PostgreSQL recent enough.
    pub(super) fn server_roles(
        &self,
        effects: &[Vec<Effects>],
        diags: &mut Diagnostics,
    ) -> ServerRoles {
        for (name, def) in &self.defs {
            let Some(span) = per_service(def) else {
                continue;
            };
            if self.role_server(name).is_none() {
                diags.push(
                    Diagnostic::error(
                        Code::InvalidValue,
                        span,
                        format!("`{name}` gives no roles: only PostgreSQL and Redis with a password do"),
                    )
                    .label("roles of PostgreSQL or Redis")
                    .help("remove `roles`, or give the service a kind of `postgres`, or of `redis_auth` (Redis's users need the server's password beside theirs)"),
                );
            } else if def.ha_mode() == &HaMode::Sentinel {
                // Its clients find the master through the sentinels, which
                // know the default user only.
                diags.push(
                    Diagnostic::error(
                        Code::NotSupported,
                        span,
                        format!("`{name}` is watched by Sentinel: its clients have no users of their own"),
                    )
                    .label("per-service users")
                    .help("remove `roles` (the clients share the password), or use `ha = replica`"),
                );
            }
        }
        // By server, then by client: a server may have thousands.
        let mut by_client: IndexMap<Name, IndexMap<Name, ClientRole>> = IndexMap::default();
        for fx in effects.iter().flatten() {
            for used in &fx.roles {
                let task = self
                    .defs
                    .get(used.client.as_str())
                    .and_then(|d| d.role.as_ref());
                let access = match (used.writes, task.map(|r| r.value)) {
                    (false, _) => Access::Read,
                    (true, Some(Role::Task)) => Access::Migrate,
                    (true, _) => Access::Write,
                };
                let server = by_client.entry(used.server.clone()).or_default();
                match server.get_mut(&used.client) {
                    Some(r) => r.access = r.access.max(access),
                    None => {
                        let role = ClientRole {
                            client: used.client.clone(),
                            name: used.role(),
                            password: used.secret(),
                            access,
                            span: self
                                .defs
                                .get(used.server.as_str())
                                .and_then(|d| per_service(d))
                                .unwrap_or_default(),
                        };
                        server.insert(used.client.clone(), role);
                    }
                }
            }
        }
        let mut roles = ServerRoles::default();
        for (server, mut clients) in by_client {
            // In the stack's order, whatever host each client is on: the
            // same task on every platform.
            clients.sort_by_cached_key(|client, _| self.stack.services.get_index_of(client));
            let clients: Vec<ClientRole> = clients.into_values().collect();
            self.check_roles(&server, &clients, diags);
            roles.insert(server, clients);
        }
        check_secret_names(&roles, diags);
        roles
    }

    /// Which server gives roles: PostgreSQL, or Redis with a password.
    pub(super) fn role_server(&self, name: &str) -> Option<Server> {
        if self.is_kind(name, "postgres") {
            Some(Server::Postgres)
        } else if self.is_kind(name, "redis_auth") {
            Some(Server::Redis)
        } else {
            None
        }
    }

    fn check_roles(&self, server: &str, clients: &[ClientRole], diags: &mut Diagnostics) {
        let Some(p) = self.placements.get(server).and_then(|ps| ps.first()) else {
            return;
        };
        let Some(span) = per_service(&p.def) else {
            return;
        };
        if self.role_server(server) == Some(Server::Redis) {
            check_redis_users(server, clients, span, diags);
            return;
        }
        if let Some(major) = super::patroni::major_version(p).filter(|m| *m < OLDEST_MAJOR) {
            diags.push(
                Diagnostic::error(
                    Code::InvalidValue,
                    span,
                    format!("roles of their own need PostgreSQL {OLDEST_MAJOR} or later; `{server}` runs {major}"),
                )
                .label("per-service roles")
                .help(format!("use an image of PostgreSQL {OLDEST_MAJOR} or later (`postgres:16-alpine`), or remove `roles`: older servers let every role create in `public`")),
            );
        }
        let params = &p.def.parameters;
        let owner = params
            .args
            .get("user")
            .map(|a| &a.value)
            .or_else(|| params.params.get("user")?.default.as_ref())
            .and_then(|e| match e.pieces.as_slice() {
                [Piece::Text(t)] => Some(t.as_str()),
                _ => None,
            });
        let operator = self.topo.platform.value == Platform::Kubernetes
            && p.def.ha_mode() == &HaMode::CloudNativePg;
        let migrates = clients.iter().find(|r| r.access == Access::Migrate);
        if let (true, Some(r), Some("postgres") | None) = (operator, migrates, owner) {
            diags.push(
                Diagnostic::error(
                    Code::InvalidValue,
                    span,
                    format!("the migration `{}` of `{server}` would be a member of the superuser", r.client),
                )
                .label("per-service roles on CloudNativePG")
                .help(format!("CloudNativePG lets a migration create tables as a member of the database's owner, here `postgres`, the superuser: give `{server}` an owner of its own (`user = \"app\"`)")),
            );
        }
        for r in clients {
            let taken = if r.name.starts_with("pg_") {
                Some("PostgreSQL keeps the names that start with `pg_`".to_string())
            } else if owner == Some(r.name.as_str()) {
                Some(format!("`{server}`'s owner is `{}`", r.name))
            } else {
                None
            };
            if let Some(why) = taken {
                diags.push(
                    Diagnostic::error(
                        Code::InvalidValue,
                        span,
                        format!(
                            "the client `{}` of `{server}` cannot have the role `{}`",
                            r.client, r.name
                        ),
                    )
                    .label("a role per client, named after it")
                    .help(format!("{why}: rename the service `{}`", r.client)),
                );
            }
        }
    }
}

/// Two roles whose secrets would have one name (`-` and `_` are one in a
/// secret's environment variable: `db`'s `a-b` and `db-a`'s `b`).
fn check_secret_names(roles: &ServerRoles, diags: &mut Diagnostics) {
    let mut seen: IndexMap<&Name, (&Name, &Name)> = IndexMap::default();
    for (server, clients) in roles {
        for r in clients {
            match seen.get(&r.password.name) {
                Some((s, c)) if (*s, *c) != (server, &r.client) => diags.push(
                    Diagnostic::error(
                        Code::DuplicateName,
                        r.span,
                        format!(
                            "the role of `{}` on `{server}` and of `{c}` on `{s}` would share the secret `{}`",
                            r.client, r.password.name
                        ),
                    )
                    .label("a secret per role, named after its server and client")
                    .help(format!("rename `{}` or `{c}`", r.client)),
                ),
                Some(_) => {}
                None => {
                    seen.insert(&r.password.name, (server, &r.client));
                }
            }
        }
    }
}

/// What gives its clients roles of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Server {
    /// Login roles, made by a task or the operator.
    Postgres,
    /// ACL users, in each node's config.
    Redis,
}

/// A Redis's users: none named `default`, the server's own.
fn check_redis_users(server: &str, clients: &[ClientRole], span: Span, diags: &mut Diagnostics) {
    for r in clients.iter().filter(|r| r.name == "default") {
        diags.push(
            Diagnostic::error(
                Code::InvalidValue,
                span,
                format!(
                    "the client `{}` of `{server}` cannot have the user `default`",
                    r.client
                ),
            )
            .label("a user per client, named after it")
            .help(format!(
                "`default` is the server's own user: rename the service `{}`",
                r.client
            )),
        );
    }
}

/// The span of `roles = per_service`, when a definition says so.
fn per_service(def: &ServiceDef) -> Option<Span> {
    def.reach
        .roles
        .as_ref()
        .filter(|r| r.value == Roles::PerService)
        .map(|r| r.span)
}

/// How many times the roles task tries to connect, two seconds apart,
/// before it fails: a server that starts from an empty volume runs initdb
/// first.
const CONNECT_TRIES: u32 = 90;

impl Topo<'_> {
    /// The task `<server>-roles` beside each server whose clients have roles
    /// of their own (CloudNativePG makes its own), and the clients beside it
    /// started after it.
    pub(super) fn wire_roles(
        &self,
        hosts: &mut [HostPlan],
        roles: &ServerRoles,
        diags: &mut Diagnostics,
    ) {
        for (server, clients) in roles {
            let Some(first) = self
                .placements
                .get(server.as_str())
                .and_then(|ps| ps.first())
            else {
                continue;
            };
            if self.role_server(server) == Some(Server::Redis) {
                let span = clients.first().map(|c| c.span).unwrap_or_default();
                let users: Vec<User<'_>> = clients
                    .iter()
                    .map(|c| User {
                        name: &c.name,
                        password: &c.password,
                        read_only: c.access == Access::Read,
                    })
                    .collect();
                for inst in hosts
                    .iter_mut()
                    .flat_map(|h| h.services.iter_mut())
                    .filter(|i| &i.name == server)
                {
                    super::redis_auth::add_users(inst, &users, span);
                }
                continue;
            }
            if self.topo.platform.value == Platform::Kubernetes
                && first.def.ha_mode() == &HaMode::CloudNativePg
            {
                continue;
            }
            let Some(host) = hosts.get_mut(first.host) else {
                continue;
            };
            let name = crate::base::concat(server, "-roles");
            if let Some(taken) = self.placement(&name, first.host) {
                let mut d = Diagnostic::error(
                    Code::DuplicateName,
                    taken.run_span,
                    format!(
                        "`{name}` on host `{}` is also the name of the task that makes `{server}`'s roles",
                        host.name
                    ),
                )
                .label("two containers of one compose file with this name")
                .help(format!("rename `{name}`"));
                if let Some(span) = per_service(&first.def) {
                    d = d.with_secondary(span, "the task is added for this");
                }
                diags.push(d);
                continue;
            }
            let Some(task) = self.roles_task(name, server, first, host, clients) else {
                continue;
            };
            let names: IndexSet<&Name> = clients.iter().map(|c| &c.client).collect();
            for inst in &mut host.services {
                if names.contains(&inst.name) {
                    inst.depends_on
                        .push((task.name.clone(), Condition::Completed));
                }
            }
            host.services.push(task);
        }
    }

    /// The task that makes `clients`' roles on `server`, run on the host of
    /// its first placement (a streaming primary), as its owner; a Patroni
    /// cluster's superuser on whichever node leads.
    fn roles_task(
        &self,
        name: Name,
        server: &Name,
        first: &Placement<'_>,
        host: &HostPlan,
        clients: &[ClientRole],
    ) -> Option<Instance> {
        let inst = host.services.iter().find(|i| &i.name == server)?;
        let value = |key: &str| {
            inst.env
                .iter()
                .find(|v| v.key == key)
                .map(|v| v.value.clone())
        };
        let text = |t: String| -> Pieces { smallvec::smallvec![Out::Text(Name::new(t))] };
        let mut env = Vec::new();
        let mut set = |key: &str, value: Option<Pieces>| {
            if let Some(value) = value {
                env.push(EnvVar {
                    key: Name::new(key),
                    value,
                    span: first.run_span,
                });
            }
        };
        match &inst.replication.patroni {
            // Any node may lead: libpq tries each for the one that writes.
            Some(node) => {
                let hosts: Vec<&str> = node.members.iter().map(|m| m.address.as_str()).collect();
                let ports: Vec<String> = node.members.iter().map(|m| m.port.to_string()).collect();
                set("PGHOST", Some(text(hosts.join(","))));
                set("PGPORT", Some(text(ports.join(","))));
                set("PGTARGETSESSIONATTRS", Some(text("read-write".into())));
                set(
                    "PGUSER",
                    Some(text(super::patroni_backup::PATRONI_SUPERUSER.into())),
                );
                set("PGPASSWORD", value("PATRONI_SUPERUSER_PASSWORD"));
            }
            None => {
                let port = inst.ports.first().map_or(5432, |p| p.container);
                set("PGHOST", Some(text(server.to_string())));
                set("PGPORT", Some(text(port.to_string())));
                set("PGUSER", value("POSTGRES_USER"));
                set("PGPASSWORD", value("POSTGRES_PASSWORD"));
            }
        }
        set("PGDATABASE", value("POSTGRES_DB"));
        for c in clients {
            let p = &c.password;
            let secret = Out::secret(p.name.clone(), p.env.clone(), p.optional);
            set(&p.env, Some(smallvec::smallvec![secret]));
        }
        let ready = if inst.probes.readiness.is_some() {
            Condition::Healthy
        } else {
            Condition::Started
        };
        Some(Instance {
            image: first.def.image.as_ref().map(|i| i.value.clone()),
            env,
            refers_to: vec![server.clone()],
            depends_on: vec![(server.clone(), ready)],
            program: Program {
                command: Some(vec!["sh".into(), "-c".into(), script(clients)]),
                ..Program::default()
            }
            .into(),
            restart: Restart::No,
            ..Instance::auxiliary(name, Role::Task)
        })
    }
}

/// The roles task's shell line: each password checked (it is in a URL), a
/// wait for the server, then one psql session that makes every role. The
/// passwords reach psql through `printenv` (psql quotes them), never a
/// command line or a file.
fn script(clients: &[ClientRole]) -> String {
    let mut s = String::from("set -e\n");
    for c in clients {
        let why = format!(
            "{} is a role's password, in its client's URL",
            c.password.env
        );
        s.push_str(&url_safe_check(&c.password.env, false, &why));
    }
    s.push_str(&format!(
        "tries=0\nuntil psql --no-psqlrc -Atqc 'SELECT 1' >/dev/null 2>&1; do\n  tries=$((tries + 1))\n  if [ \"$tries\" -ge {CONNECT_TRIES} ]; then echo \"PostgreSQL at $PGHOST does not answer\" >&2; exit 1; fi\n  sleep 2\ndone\n"
    ));
    s.push_str(
        "psql -v ON_ERROR_STOP=1 --no-psqlrc --quiet <<'SQL'\nSET client_min_messages = error;\n",
    );
    for c in clients {
        s.push_str(&role_sql(c));
    }
    s.push_str("SQL\n");
    s
}

/// The statements that make one role and give it its access, whatever it
/// had before: created once, its attributes, password and grants set each
/// time.
fn role_sql(c: &ClientRole) -> String {
    let role = &c.name;
    let grant = |yes: bool, what: &str| {
        if yes {
            format!("GRANT {what} TO \"{role}\";\n")
        } else {
            format!("REVOKE {what} FROM \"{role}\";\n")
        }
    };
    let mut s = format!(
        "\\set password `printenv {env}`\n\
         SELECT 'CREATE ROLE \"{role}\"' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') \\gexec\n\
         ALTER ROLE \"{role}\" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'password';\n",
        env = c.password.env,
    );
    s.push_str(&grant(true, "pg_read_all_data"));
    s.push_str(&grant(c.access >= Access::Write, "pg_write_all_data"));
    s.push_str(&grant(
        c.access >= Access::Migrate,
        "CREATE ON SCHEMA public",
    ));
    s
}

/// The secrets of the roles' passwords, besides the declared ones: a
/// secret the user declared keeps what it says; the others are the stack's
/// own, which `stackc secrets init` generates.
pub(super) fn add_secrets(secrets: &mut IndexMap<Name, SecretDef>, topologies: &[TopologyPlan]) {
    for t in topologies {
        for (server, clients) in &t.roles {
            for c in clients {
                let p = &c.password;
                secrets.entry(p.name.clone()).or_insert_with(|| SecretDef {
                    name: crate::syntax::Ident {
                        name: p.name.clone(),
                        span: c.span,
                    },
                    env_name: p.env.clone(),
                    optional: false,
                    generate: true,
                    description: Some(format!(
                        "the PostgreSQL role of `{}` on `{server}`",
                        c.client
                    )),
                });
            }
        }
    }
}
