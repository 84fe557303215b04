//! Production lints (W06xx): the insecure or fragile setups that the guides'
//! pre-production and security checklists warn about. They run on topologies
//! marked `production = true`, one warning per service, on the source span that
//! causes it; `allow = [CODE, ...]` in a topology silences some, and `--deny`
//! on the command line turns warnings into errors.

use crate::diag::{Code, Diagnostic, Diagnostics};

use super::*;

/// Names of variables and parameters that hold credentials.
fn credential(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    [
        "PASSWORD",
        "PASSWD",
        "SECRET",
        "TOKEN",
        "API_KEY",
        "APIKEY",
        "PRIVATE_KEY",
        "ACCESS_KEY",
    ]
    .iter()
    .any(|w| upper.contains(w))
}

/// An expression with no reference: a literal.
fn literal(e: &Expr) -> Option<String> {
    let mut out = String::new();
    for p in &e.pieces {
        match p {
            Piece::Text(t) => out.push_str(t),
            Piece::Ref(_) => return None,
        }
    }
    Some(out)
}

impl Topo<'_> {
    /// Whether a service's kind chain includes `kind`.
    pub(super) fn is_kind(&self, service: &str, kind: &str) -> bool {
        self.stack
            .services
            .get(service)
            .and_then(|d| d.kind.as_ref())
            .and_then(|k| self.kind_chains.chain(&k.name))
            .is_some_and(|mut chain| chain.any(|k| k == kind))
    }

    pub(super) fn lints(&self, diags: &mut Diagnostics) {
        if !self.topo.production {
            return;
        }
        let mut allowed = Vec::new();
        for a in &self.topo.allow {
            match Code::parse(&a.name) {
                Some(c) => allowed.push(c),
                None => {
                    let names = Code::ALL.iter().map(|c| c.slug());
                    let d = Diagnostic::error(
                        Code::InvalidValue,
                        a.span,
                        format!("`{}` is not a diagnostic code", a.name),
                    )
                    .label("not a code");
                    diags.push(d.suggesting(&a.name, names, || "write a code (`W0602`) or its name (`mutable-image-tag`); `stackc explain` lists them".into()));
                }
            }
        }
        let mut found = Vec::new();
        for (name, ps) in &self.placements {
            let Some(p) = ps.first() else { continue };
            let Some(decl) = self.stack.services.get(*name) else {
                continue;
            };
            self.lint_service(name, &decl.name, &p.def, &mut found);
        }
        for d in found {
            if !allowed.contains(&d.code) {
                diags.push(d);
            }
        }
    }

    /// The production lints of one service (W0601 to W0609).
    fn lint_service(&self, name: &str, decl: &Ident, def: &ServiceDef, out: &mut Vec<Diagnostic>) {
        let topology = self.topo.name.name.as_str();
        literal_credentials(name, def, topology, out);
        mutable_image(def, out);
        self.redis_without_password(name, decl, def, out);
        public_without_tls(name, def, out);
        debug_settings(name, def, topology, out);
        replicas_without_health(name, decl, def, out);
        stateful_without_volume(name, decl, def, out);
        self.default_superuser(name, decl, def, out);
        self.without_backup(name, decl, def, out);
    }

    /// W0609: a PostgreSQL or Redis server that stackc could back up,
    /// without `backup`.
    fn without_backup(
        &self,
        name: &str,
        decl: &Ident,
        def: &ServiceDef,
        out: &mut Vec<Diagnostic>,
    ) {
        if self.topo.platform.value != Platform::Compose || def.storage.backup.is_some() {
            return;
        }
        let mode = def.ha_mode();
        let what = if self.is_kind(name, "postgres")
            && matches!(mode, HaMode::Single | HaMode::Streaming)
        {
            "PostgreSQL"
        } else if self.is_kind(name, "redis") && matches!(mode, HaMode::Single | HaMode::Replica) {
            "Redis"
        } else {
            return;
        };
        out.push(lint(
            Code::StatefulWithoutBackup,
            decl.span,
            format!("{what} `{name}` has no backup"),
            "a lost volume or a wrong write cannot be undone",
            "add `backup { schedule = \"0 2 * * *\"  retention = 30 }`: nightly backups kept 30 days, and a restore script".into(),
        ));
    }

    /// W0603: Redis without a password.
    fn redis_without_password(
        &self,
        name: &str,
        decl: &Ident,
        def: &ServiceDef,
        out: &mut Vec<Diagnostic>,
    ) {
        if self.is_kind(name, "redis") && !def.env.contains_key(REDIS_PASSWORD_ENV) {
            out.push(lint(
                Code::RedisWithoutPassword,
                decl.span,
                format!("Redis `{name}` accepts every client without a password"),
                "no `requirepass`",
                "use the kind `redis_auth` (or `redis_tls`) with `password = secret.NAME`".into(),
            ));
        }
    }

    /// W0608: the application connects as the superuser.
    fn default_superuser(
        &self,
        name: &str,
        decl: &Ident,
        def: &ServiceDef,
        out: &mut Vec<Diagnostic>,
    ) {
        if def.parameters.params.contains_key("user")
            && !def.parameters.args.contains_key("user")
            && self.is_kind(name, "postgres")
        {
            out.push(lint(
                Code::DefaultCredential,
                decl.span,
                format!("`{name}` keeps the default user `postgres`, the first name a password guesser tries"),
                "the stdlib's default",
                "set `user = \"app\"`: a role name of its own (under Patroni, a role that is not the superuser)".into(),
            ));
        }
    }
}

/// A lint's warning (its code makes it one).
fn lint(code: Code, span: Span, message: String, label: &str, help: String) -> Diagnostic {
    Diagnostic::error(code, span, message)
        .label(label.to_string())
        .help(help)
}

/// W0601: credentials written as literals.
fn literal_credentials(name: &str, def: &ServiceDef, topology: &str, out: &mut Vec<Diagnostic>) {
    let assignments = def
        .env
        .values()
        .map(|a| (a, "variable"))
        .chain(def.parameters.args.values().map(|a| (a, "parameter")));
    for (a, what) in assignments {
        if !credential(&a.key.name) {
            continue;
        }
        if literal(&a.value).is_some_and(|v| !v.is_empty()) {
            out.push(lint(
                Code::LiteralCredential,
                a.value.span,
                format!(
                    "the {what} `{}` of `{name}` is a literal in production topology `{topology}`",
                    a.key.name
                ),
                "a credential in the source file",
                format!(
                    "declare `secret {}` and write `{} = secret.{}`",
                    a.key.name.to_ascii_lowercase(),
                    a.key.name,
                    a.key.name.to_ascii_lowercase()
                ),
            ));
        }
    }
}

/// W0602: an image that can change under the same name.
fn mutable_image(def: &ServiceDef, out: &mut Vec<Diagnostic>) {
    if let Some(image) = &def.image {
        let name_part = image.value.rsplit('/').next().unwrap_or(&image.value);
        let tag = name_part.split_once(':').map(|(_, t)| t);
        if !image.value.contains('@') && matches!(tag, None | Some("latest")) {
            out.push(lint(
                Code::MutableImageTag,
                image.span,
                format!("`{}` names no fixed version", image.value),
                "what runs changes without this file changing",
                "pin a version tag (`app:1.4.2`) or a digest (`app@sha256:...`)".into(),
            ));
        }
    }
}

/// W0604: a public URL over plain HTTP.
fn public_without_tls(name: &str, def: &ServiceDef, out: &mut Vec<Diagnostic>) {
    if let Some(url) = &def.reach.public_url {
        if url
            .pieces
            .first()
            .is_some_and(|p| matches!(p, Piece::Text(t) if t.starts_with("http://")))
        {
            out.push(lint(
                Code::PublicWithoutTls,
                url.span,
                format!("`{name}` is public over plain HTTP"),
                "no TLS",
                "serve it over `https://` (a proxy `tls` block, or the Ingress)".into(),
            ));
        }
    }
}

/// W0605: debug settings and CORS open to all.
fn debug_settings(name: &str, def: &ServiceDef, topology: &str, out: &mut Vec<Diagnostic>) {
    for a in def.env.values() {
        let Some(v) = literal(&a.value) else { continue };
        let key = a.key.name.to_ascii_uppercase();
        let v = v.to_ascii_lowercase();
        let debug = (key == "DEBUG" || key.ends_with("_DEBUG"))
            && ["true", "1", "yes", "on"].contains(&v.as_str());
        let dev = [
            "NODE_ENV",
            "FLASK_ENV",
            "APP_ENV",
            "RAILS_ENV",
            "ENVIRONMENT",
        ]
        .contains(&key.as_str())
            && ["development", "dev"].contains(&v.as_str());
        let cors = key.contains("CORS") || key.contains("ALLOW_ORIGIN");
        if debug || dev || (cors && v.trim() == "*") {
            out.push(lint(
                Code::DebugSetting,
                a.value.span,
                format!("`{} = {v}` in production topology `{topology}`", a.key.name),
                if cors {
                    "every origin allowed"
                } else {
                    "a debug setting"
                },
                format!(
                    "set `{}` for production in an `override {name}` of this topology",
                    a.key.name
                ),
            ));
        }
    }
}

/// W0606: several replicas, no health check.
fn replicas_without_health(name: &str, decl: &Ident, def: &ServiceDef, out: &mut Vec<Diagnostic>) {
    let replicas = def.replicas.as_ref().map_or(1, |r| r.value);
    let health = &def.health;
    if (replicas > 1 || def.scaling.autoscale.is_some())
        && health.readiness.is_none()
        && health.liveness.is_none()
        && health.startup.is_none()
    {
        out.push(lint(
            Code::ReplicasWithoutReadiness,
            def.replicas.as_ref().map_or(decl.span, |r| r.span),
            format!("`{name}` runs several replicas without a health check"),
            "traffic reaches replicas that are not ready",
            "add `health { http = \"/health\" }` (or `tcp`, or `command`)".into(),
        ));
    }
}

/// W0607: stateful without a volume.
fn stateful_without_volume(name: &str, decl: &Ident, def: &ServiceDef, out: &mut Vec<Diagnostic>) {
    if def.role.as_ref().is_some_and(|r| r.value == Role::Stateful)
        && def.storage.volumes.is_empty()
    {
        out.push(lint(
            Code::StatefulWithoutVolume,
            decl.span,
            format!("stateful `{name}` has no volume"),
            "its data goes with its container",
            "add `volume data = \"/path/of/the/data\"`".into(),
        ));
    }
}
