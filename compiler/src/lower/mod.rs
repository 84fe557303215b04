//! Lowering: the untyped tree to the typed model (`model::Stack`), checking the
//! shape of every entry against the schema of its block. Every problem is pushed
//! as a diagnostic and lowering goes on, so that one run reports them all.
//!
//! Fields that a kind may declare (`param NAME`) cannot be known while one block
//! is lowered; any unknown `key = value` in a service is kept as an argument and
//! `check` reports it if no kind of the service declares it.

use crate::base::IndexMap;
use crate::base::Name;
use crate::diag::{Code, Diagnostic, Diagnostics, FileId, Span};
use crate::model::*;
use crate::syntax::{self, Entry, EntryValue, Ident, Label};

mod service;
mod topology;
mod values;

/// The fields of a service (and of a kind, and of overrides).
pub const SERVICE_FIELDS: &[&str] = &[
    "role",
    "image",
    "build",
    "command",
    "entrypoint",
    "port",
    "public",
    "env",
    "volume",
    "mount",
    "replicas",
    "resources",
    "health",
    "route",
    "restart",
    "depends_on",
    "url",
    "read_url",
    "public_url",
    "ha",
    "autoscale",
    "update",
    "stop_grace_period",
    "pre_stop",
    "min_available",
    "weight",
    "metrics",
];
const KIND_ONLY_FIELDS: &[&str] = &["param", "ha_modes"];
const TOP_FIELDS: &[&str] = &["stack", "secret", "kind", "service", "external", "topology"];
const SECRET_FIELDS: &[&str] = &["optional", "description"];
const EXTERNAL_FIELDS: &[&str] = &["url", "read_url", "public_url", "host", "port"];
const TOPOLOGY_FIELDS: &[&str] = &[
    "platform",
    "host",
    "run",
    "override",
    "external",
    "namespace",
    "gpu_nodes",
    "ingress_class",
    "proxy",
    "production",
    "allow",
];
const AUTOSCALE_FIELDS: &[&str] = &["min", "max", "cpu", "memory", "scale_up", "scale_down"];
const SCALE_POLICY_FIELDS: &[&str] = &["window", "percent", "pods", "period"];
const UPDATE_FIELDS: &[&str] = &["max_surge", "max_unavailable"];
const VOLUME_FIELDS: &[&str] = &["path", "size"];
const METRICS_FIELDS: &[&str] = &["port", "path", "interval", "timeout"];
const HA_FIELDS: &[&str] = &[
    "mode",
    "sentinels",
    "quorum",
    "down_after",
    "failover_timeout",
    "master_name",
    "replication_user",
    "replication_password",
    "superuser_password",
    "ttl",
    "loop_wait",
    "retry_timeout",
    "synchronous",
    "watchdog",
    "etcd",
];
const HOST_FIELDS: &[&str] = &["address", "gpu", "managed", "run"];
const RESOURCE_FIELDS: &[&str] = &["cpu", "memory", "cpu_limit", "memory_limit", "gpu"];
const HEALTH_FIELDS: &[&str] = &["liveness", "readiness", "startup"];
const PROBE_FIELDS: &[&str] = &[
    "http",
    "tcp",
    "command",
    "port",
    "interval",
    "timeout",
    "retries",
    "start_period",
];
const PORT_FIELDS: &[&str] = &["container", "host", "protocol"];
const MOUNT_FIELDS: &[&str] = &["target", "read_only"];
const ROUTE_FIELDS: &[&str] = &[
    "port",
    "domain",
    "strategy",
    "rate",
    "burst",
    "limit_status",
    "connect_timeout",
    "send_timeout",
    "read_timeout",
    "body_size",
    "websocket",
    "default",
    "strip_prefix",
];
const PROXY_FIELDS: &[&str] = &["host", "on_host", "bind", "http", "https", "image", "tls"];
const TLS_FIELDS: &[&str] = &["cert", "key"];

/// One parsed file: its tree, whether it is part of the stdlib, and its
/// services' bodies as [`service`] lowered them while it was parsed.
pub struct Unit {
    pub id: FileId,
    pub file: syntax::File,
    pub stdlib: bool,
    /// One per `service` entry of the file, in file order.
    pub services: Vec<Service>,
}

/// Lowers the stdlib files and the user's file into one stack.
pub fn lower(units: &mut [Unit], default_name: &str, diags: &mut Diagnostics) -> Stack {
    let mut bodies = Vec::new();
    for unit in units.iter_mut() {
        bodies.reserve(unit.services.len());
        for service in std::mem::take(&mut unit.services) {
            bodies.push(service.def);
            diags.extend(service.diags);
        }
    }
    let mut services = IndexMap::default();
    services.reserve(bodies.len());
    let mut cx = Lower {
        diags,
        stack: Stack {
            name: default_name.to_string(),
            services,
            ..Stack::default()
        },
        stack_name: None,
        bodies: bodies.into_iter(),
    };
    for unit in units.iter() {
        for entry in &unit.file.entries {
            cx.top(entry, unit.stdlib);
        }
    }
    cx.stack
}

/// A `service` entry's definition (`None` when the service's name is not a
/// name: that is reported alone, where the entry is lowered), lowered on its
/// own, and the diagnostics of its body.
pub struct Service {
    def: Option<Body>,
    diags: Diagnostics,
}

/// A service's name and its lowered body. The name is copied where the body
/// is lowered: the label it comes from is then no longer read, cold, by the
/// thread that adds the services to the stack one by one.
type Body = (Ident, Box<ServiceDef>);

/// Lowers the body of a top-level `service` entry on its own (a service's
/// body needs nothing outside it), for `syntax::parse_visiting`: while a
/// file is parsed, on the thread that parsed the entry. Unless `keep`, the
/// body's subtree is then freed, as nothing reads it again: the tree of a
/// file of thousands of services never exists whole, and freeing it costs
/// little (it is in cache and the thread's own). `None` for any other entry.
pub fn service(e: &mut Entry, keep: bool) -> Option<Service> {
    if e.key.name != "service" {
        return None;
    }
    let mut diags = Diagnostics::default();
    let def = lower_body(e, &mut diags);
    if def.is_some() && !keep {
        if let EntryValue::Block(entries) = &mut e.value {
            drop(std::mem::take(entries));
        }
    }
    Some(Service { def, diags })
}

/// The name and definition of a `service` entry with a valid name.
fn lower_body(e: &Entry, diags: &mut Diagnostics) -> Option<Body> {
    // An invalid name is reported alone, as `service` does.
    let Some(Label::Ident(name)) = e.label.as_deref() else {
        return None;
    };
    let mut cx = Lower {
        diags,
        stack: Stack::default(),
        stack_name: None,
        bodies: Vec::new().into_iter(),
    };
    let entries = cx.block(e);
    let def = Box::new(cx.service_def(entries, "a service", false));
    Some((name.clone(), def))
}

pub(super) struct Lower<'d> {
    diags: &'d mut Diagnostics,
    stack: Stack,
    stack_name: Option<Span>,
    /// The definitions [`service`] lowered, taken in file order.
    bodies: std::vec::IntoIter<Option<Body>>,
}

pub(super) fn unknown_field(key: &Ident, block: &str, known: &[&str]) -> Diagnostic {
    let mut d = Diagnostic::error(
        Code::UnknownField,
        key.span,
        format!("unknown field `{}` in {block}", key.name),
    )
    .label("not a field here");
    d = d.suggesting(&key.name, known.iter().copied(), || {
        format!("the fields of {block} are: {}", known.join(", "))
    });
    d
}

impl Lower<'_> {
    fn push(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    fn top(&mut self, e: &Entry, stdlib: bool) {
        match e.key.name.as_str() {
            "stack" => {
                self.no_kind(e);
                if !matches!(e.value, EntryValue::None) {
                    self.push(
                        Diagnostic::error(Code::Syntax, e.span(), "`stack` takes a name only")
                            .label("no value or block here")
                            .help("write `stack NAME`"),
                    );
                }
                if let Some(name) = self.ident_label(e, "stack name") {
                    if let Some(first) = self.stack_name {
                        self.push(
                            Diagnostic::error(
                                Code::DuplicateName,
                                name.span,
                                "the stack is named twice",
                            )
                            .label("named again here")
                            .help("keep one `stack NAME`")
                            .with_secondary(first, "first named here"),
                        );
                    } else {
                        self.stack_name = Some(name.span);
                        self.stack.name = name.name.to_string();
                        self.stack.name_span = Some(name.span);
                    }
                }
            }
            "secret" => self.secret(e),
            "kind" => self.kind(e, stdlib),
            "service" => self.service(e),
            "external" => self.external_decl(e),
            "topology" => self.topology(e),
            _ => {
                let d = unknown_field(&e.key, "a .stack file", TOP_FIELDS);
                self.push(d);
            }
        }
    }

    fn secret(&mut self, e: &Entry) {
        self.no_kind(e);
        let Some(name) = self.ident_label(e, "secret name") else {
            return;
        };
        let mut optional = false;
        let mut description = None;
        match &e.value {
            EntryValue::None => {}
            EntryValue::Assign(v) => self.push(
                Diagnostic::error(Code::WrongType, v.span, "a secret has no value in a .stack file")
                    .label("no value here")
                    .help("secret values never appear in a .stack file; write `secret NAME` and set the value where the service runs"),
            ),
            EntryValue::Block(entries) => {
                for (f, v) in self.settings(entries, "a secret") {
                    match f.key.name.as_str() {
                        "optional" => optional = self.boolean(v).unwrap_or(false),
                        "description" => description = self.string(v).map(|s| s.value),
                        _ => {
                            let d = unknown_field(&f.key, "a secret", SECRET_FIELDS);
                            self.push(d);
                        }
                    }
                }
            }
        }
        if let Some(first) = self.stack.secrets.get(&name.name) {
            let first = first.name.span;
            self.push(duplicate(&name, "secret", first));
            return;
        }
        let env_name = Name::new(name.name.to_ascii_uppercase());
        self.stack.secrets.insert(
            name.name.clone(),
            SecretDef {
                name,
                env_name,
                optional,
                description,
            },
        );
    }

    fn kind(&mut self, e: &Entry, stdlib: bool) {
        let Some(name) = self.ident_label(e, "kind name") else {
            return;
        };
        let entries = self.block(e);
        let def = self.service_def(entries, "a kind", true);
        if let Some(first) = self.stack.kinds.get(&name.name) {
            // A user's kind may replace a stdlib kind of the same name.
            if !first.from_stdlib || stdlib {
                let first = first.name.span;
                self.push(duplicate(&name, "kind", first));
                return;
            }
        }
        self.stack.kinds.insert(
            name.name.clone(),
            KindDef {
                name,
                parent: e.kind.as_deref().cloned(),
                def,
                from_stdlib: stdlib,
            },
        );
    }

    fn service(&mut self, e: &Entry) {
        let (name, def) = match self.bodies.next().flatten() {
            Some(body) => body,
            None => {
                let Some(name) = self.ident_label(e, "service name") else {
                    return;
                };
                let entries = self.block(e);
                (
                    name,
                    Box::new(self.service_def(entries, "a service", false)),
                )
            }
        };
        self.add_service(ServiceDecl {
            name,
            kind: e.kind.as_deref().cloned(),
            body: ServiceBody::Workload(def),
        });
    }

    fn add_service(&mut self, decl: ServiceDecl) {
        match self.stack.services.entry(decl.name.name.clone()) {
            indexmap::map::Entry::Occupied(first) => {
                let first = first.get().name.span;
                self.push(duplicate(&decl.name, "service", first));
            }
            indexmap::map::Entry::Vacant(v) => {
                v.insert(decl);
            }
        }
    }

    fn external_decl(&mut self, e: &Entry) {
        let Some(name) = self.ident_label(e, "service name") else {
            return;
        };
        let def = self.external_def(e);
        self.add_service(ServiceDecl {
            name,
            kind: e.kind.as_deref().cloned(),
            body: ServiceBody::External(Box::new(def)),
        });
    }

    fn external_def(&mut self, e: &Entry) -> ExternalDef {
        let entries = self.block(e);
        self.duplicates(entries, "an external service");
        let mut def = ExternalDef::default();
        for f in entries {
            self.no_label(f);
            self.no_kind(f);
            match f.key.name.as_str() {
                "url" | "read_url" | "public_url" | "host" => {
                    let Some(v) = self.assigned(f) else { continue };
                    let expr = self.expr(v);
                    match f.key.name.as_str() {
                        "url" => def.url = expr,
                        "read_url" => def.read_url = expr,
                        "public_url" => def.public_url = expr,
                        _ => def.host = expr,
                    }
                }
                "port" => {
                    if let Some(v) = self.assigned(f) {
                        def.port = self.integer(v, "a port number");
                    }
                }
                _ => {
                    let d = unknown_field(&f.key, "an external service", EXTERNAL_FIELDS);
                    self.push(d);
                }
            }
        }
        if def.url.is_none() && def.public_url.is_none() && def.host.is_none() {
            self.push(
                Diagnostic::error(
                    Code::MissingField,
                    e.key.span,
                    "an external service needs a `url`, a `public_url` or a `host`",
                )
                .label("nothing to refer to")
                .help("for a managed database: `url = secret.database_url`"),
            );
        }
        def
    }
}

pub(super) fn duplicate(name: &Ident, what: &str, first: Span) -> Diagnostic {
    Diagnostic::error(
        Code::DuplicateName,
        name.span,
        format!("{what} `{}` is defined twice", name.name),
    )
    .label("defined again here")
    .with_secondary(first, "first defined here")
    .help(format!("rename one of them; {what} names are unique"))
}

/// The fields of a block, by the key that opens it (`service`, `health`, ...),
/// for the language server's completion. `""` is the top level.
pub fn fields_of(block: &str) -> Vec<&'static str> {
    let fields: &[&[&str]] = match block {
        "" => &[TOP_FIELDS],
        "service" | "override" | "run" => &[SERVICE_FIELDS],
        "kind" => &[SERVICE_FIELDS, KIND_ONLY_FIELDS],
        "secret" => &[SECRET_FIELDS],
        "external" => &[EXTERNAL_FIELDS],
        "topology" => &[TOPOLOGY_FIELDS],
        "autoscale" => &[AUTOSCALE_FIELDS],
        "scale_up" | "scale_down" => &[SCALE_POLICY_FIELDS],
        "update" => &[UPDATE_FIELDS],
        "volume" => &[VOLUME_FIELDS],
        "metrics" => &[METRICS_FIELDS],
        "ha" => &[HA_FIELDS],
        "host" => &[HOST_FIELDS],
        "resources" => &[RESOURCE_FIELDS],
        "health" => &[HEALTH_FIELDS, PROBE_FIELDS],
        "liveness" | "readiness" | "startup" => &[PROBE_FIELDS],
        "port" => &[PORT_FIELDS],
        "mount" => &[MOUNT_FIELDS],
        "route" => &[ROUTE_FIELDS],
        "proxy" => &[PROXY_FIELDS],
        "tls" => &[TLS_FIELDS],
        _ => &[],
    };
    fields.iter().flat_map(|f| f.iter().copied()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every field the lowering knows, and every attribute a reference may
    /// name, is one of the parser's static words: a key missing there is
    /// copied into each `Name` made of it, in every service of a file.
    #[test]
    fn every_field_and_attribute_is_a_static_word() {
        let lists = [
            SERVICE_FIELDS,
            KIND_ONLY_FIELDS,
            TOP_FIELDS,
            SECRET_FIELDS,
            EXTERNAL_FIELDS,
            TOPOLOGY_FIELDS,
            AUTOSCALE_FIELDS,
            SCALE_POLICY_FIELDS,
            UPDATE_FIELDS,
            VOLUME_FIELDS,
            METRICS_FIELDS,
            HA_FIELDS,
            HOST_FIELDS,
            RESOURCE_FIELDS,
            HEALTH_FIELDS,
            PROBE_FIELDS,
            PORT_FIELDS,
            MOUNT_FIELDS,
            ROUTE_FIELDS,
            PROXY_FIELDS,
            TLS_FIELDS,
            crate::check::ATTRIBUTES,
        ];
        let missing: Vec<&str> = lists
            .iter()
            .flat_map(|list| list.iter().copied())
            .filter(|word| crate::syntax::static_word(word) != Some(*word))
            .collect();
        assert!(missing.is_empty(), "not static words: {missing:?}");
        assert_eq!(crate::syntax::static_word("svc-0"), None);
    }
}
