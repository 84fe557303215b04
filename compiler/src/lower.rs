//! Lowering: the untyped tree to the typed model (`model::Stack`), checking the
//! shape of every entry against the schema of its block. Every problem is pushed
//! as a diagnostic and lowering goes on, so that one run reports them all.
//!
//! Fields that a kind may declare (`param NAME`) cannot be known while one block
//! is lowered; any unknown `key = value` in a service is kept as an argument and
//! `check` reports it if no kind of the service declares it.

use indexmap::IndexMap;

use crate::diag::{suggest, Code, Diagnostic, Diagnostics, Span};
use crate::model::*;
use crate::syntax::{self, Entry, EntryValue, Ident, Label, TemplatePart, Value, ValueKind};

/// The fields of a service (and of a kind, and of overrides).
pub const SERVICE_FIELDS: &[&str] = &[
    "role",
    "image",
    "build",
    "command",
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
];
const KIND_ONLY_FIELDS: &[&str] = &["param", "ha_modes"];
const TOP_FIELDS: &[&str] = &["stack", "secret", "kind", "service", "external", "topology"];
const SECRET_FIELDS: &[&str] = &["optional", "description"];
const EXTERNAL_FIELDS: &[&str] = &["url", "read_url", "public_url", "host", "port"];
const TOPOLOGY_FIELDS: &[&str] = &["platform", "host", "override", "external"];
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
const ROUTE_FIELDS: &[&str] = &["port"];

/// One file's entries, and whether it is part of the stdlib.
pub struct Unit<'a> {
    pub file: &'a syntax::File,
    pub stdlib: bool,
}

/// Lowers the stdlib files and the user's file into one stack.
pub fn lower(units: &[Unit<'_>], default_name: &str, diags: &mut Diagnostics) -> Stack {
    let mut cx = Lower {
        diags,
        stack: Stack {
            name: default_name.to_string(),
            ..Stack::default()
        },
        stack_name: None,
    };
    for unit in units {
        for entry in &unit.file.entries {
            cx.top(entry, unit.stdlib);
        }
    }
    cx.stack
}

struct Lower<'d> {
    diags: &'d mut Diagnostics,
    stack: Stack,
    stack_name: Option<Span>,
}

fn unknown_field(key: &Ident, block: &str, known: &[&str]) -> Diagnostic {
    let mut d = Diagnostic::error(
        Code::UnknownField,
        key.span,
        format!("unknown field `{}` in {block}", key.name),
    )
    .label("not a field here");
    d = match suggest(&key.name, known.iter().copied()) {
        Some(s) => d.help(format!("did you mean `{s}`?")),
        None => d.help(format!("the fields of {block} are: {}", known.join(", "))),
    };
    d
}

impl Lower<'_> {
    fn push(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    // ---- generic shape helpers ---------------------------------------------------

    fn no_label(&mut self, e: &Entry) {
        if let Some(label) = &e.label {
            self.push(
                Diagnostic::error(
                    Code::Syntax,
                    label.span(),
                    format!("`{}` takes no label", e.key.name),
                )
                .label("unexpected label")
                .help(format!(
                    "write `{} = ...` or `{} {{ ... }}`",
                    e.key.name, e.key.name
                )),
            );
        }
    }

    fn no_kind(&mut self, e: &Entry) {
        if let Some(kind) = &e.kind {
            self.push(
                Diagnostic::error(
                    Code::Syntax,
                    kind.span,
                    format!("`{}` takes no `: kind`", e.key.name),
                )
                .label("unexpected kind")
                .help("only `service`, `external` and `kind` entries name a kind"),
            );
        }
    }

    fn ident_label(&mut self, e: &Entry, what: &str) -> Option<Ident> {
        match &e.label {
            Some(Label::Ident(i)) => Some(i.clone()),
            Some(Label::Str(t)) => {
                self.push(
                    Diagnostic::error(
                        Code::WrongType,
                        t.span,
                        format!("the {what} must be a name, not a string"),
                    )
                    .label("write it without quotes"),
                );
                None
            }
            None => {
                self.push(
                    Diagnostic::error(
                        Code::MissingField,
                        e.key.span,
                        format!("`{}` needs a {what}", e.key.name),
                    )
                    .label(format!("{what} missing after this"))
                    .help(format!("write `{} NAME ...`", e.key.name)),
                );
                None
            }
        }
    }

    fn string_label(&mut self, e: &Entry, what: &str) -> Option<Sp<String>> {
        match &e.label {
            Some(Label::Str(t)) => match t.as_literal() {
                Some(s) => Some(Sp::new(s, t.span)),
                None => {
                    self.push(
                        Diagnostic::error(
                            Code::WrongType,
                            t.span,
                            format!("the {what} cannot contain references"),
                        )
                        .label("`${...}` not allowed here"),
                    );
                    None
                }
            },
            Some(Label::Ident(i)) => Some(Sp::new(i.name.clone(), i.span)),
            None => {
                self.push(
                    Diagnostic::error(
                        Code::MissingField,
                        e.key.span,
                        format!("`{}` needs a {what}", e.key.name),
                    )
                    .label(format!("{what} missing after this")),
                );
                None
            }
        }
    }

    fn assigned<'e>(&mut self, e: &'e Entry) -> Option<&'e Value> {
        match &e.value {
            EntryValue::Assign(v) => Some(v),
            EntryValue::Block(_) => {
                self.push(
                    Diagnostic::error(
                        Code::WrongType,
                        e.span,
                        format!("`{}` takes a value, not a block", e.key.name),
                    )
                    .label("expected `= value`"),
                );
                None
            }
            EntryValue::None => {
                self.push(
                    Diagnostic::error(
                        Code::MissingField,
                        e.key.span,
                        format!("`{}` needs a value", e.key.name),
                    )
                    .label("expected `= value` after this"),
                );
                None
            }
        }
    }

    fn block<'e>(&mut self, e: &'e Entry) -> &'e [Entry] {
        match &e.value {
            EntryValue::Block(entries) => entries,
            EntryValue::Assign(v) => {
                self.push(
                    Diagnostic::error(
                        Code::WrongType,
                        v.span,
                        format!("`{}` is a block, not a value", e.key.name),
                    )
                    .label("expected `{ ... }`"),
                );
                &[]
            }
            EntryValue::None => &[],
        }
    }

    fn wrong_type(&mut self, v: &Value, expected: &str) {
        self.push(
            Diagnostic::error(
                Code::WrongType,
                v.span,
                format!("expected {expected}, found {}", v.kind.describe()),
            )
            .label(format!("expected {expected}")),
        );
    }

    /// Reports fields written twice in one block (same key and label).
    fn duplicates(&mut self, entries: &[Entry], what: &str) {
        let mut seen: IndexMap<(String, String), Span> = IndexMap::new();
        for e in entries {
            let k = (
                e.key.name.clone(),
                e.label.as_ref().map(Label::text).unwrap_or_default(),
            );
            if let Some(first) = seen.get(&k) {
                let name = if k.1.is_empty() {
                    k.0.clone()
                } else {
                    format!("{} {}", k.0, k.1)
                };
                let first = *first;
                self.push(
                    Diagnostic::error(
                        Code::DuplicateField,
                        e.key
                            .span
                            .to(e.label.as_ref().map_or(e.key.span, Label::span)),
                        format!("`{name}` is written twice in {what}"),
                    )
                    .label("written again here")
                    .with_secondary(first, "first written here")
                    .help("remove one of them"),
                );
            } else {
                seen.insert(k, e.key.span);
            }
        }
    }

    fn string(&mut self, v: &Value) -> Option<Sp<String>> {
        match &v.kind {
            ValueKind::Str(t) => match t.as_literal() {
                Some(s) => Some(Sp::new(s, v.span)),
                None => {
                    self.push(
                        Diagnostic::error(
                            Code::WrongType,
                            v.span,
                            "this field cannot contain references",
                        )
                        .label("`${...}` not allowed here")
                        .help("write `\\$` for a literal `$`"),
                    );
                    None
                }
            },
            _ => {
                self.wrong_type(v, "a string");
                None
            }
        }
    }

    fn integer<T: TryFrom<u64>>(&mut self, v: &Value, what: &str) -> Option<Sp<T>> {
        if let ValueKind::Quantity { number, unit } = &v.kind {
            if unit.is_empty() && !number.contains('.') {
                if let Some(n) = number.parse::<u64>().ok().and_then(|n| T::try_from(n).ok()) {
                    return Some(Sp::new(n, v.span));
                }
                self.push(
                    Diagnostic::error(
                        Code::InvalidValue,
                        v.span,
                        format!("{number} is out of range for {what}"),
                    )
                    .label("out of range"),
                );
                return None;
            }
        }
        self.wrong_type(v, what);
        None
    }

    fn boolean(&mut self, v: &Value) -> Option<bool> {
        match v.kind {
            ValueKind::Bool(b) => Some(b),
            _ => {
                self.wrong_type(v, "`true` or `false`");
                None
            }
        }
    }

    fn choice<T: Copy>(&mut self, v: &Value, choices: &[(&str, T)]) -> Option<Sp<T>> {
        let names: Vec<&str> = choices.iter().map(|c| c.0).collect();
        let expected = format!("one of {}", names.join(", "));
        match &v.kind {
            ValueKind::Path(p) if p.len() == 1 => {
                let name = &p[0].name;
                if let Some((_, t)) = choices.iter().find(|c| c.0 == name) {
                    return Some(Sp::new(*t, v.span));
                }
                let mut d = Diagnostic::error(
                    Code::InvalidValue,
                    v.span,
                    format!("`{name}` is not {expected}"),
                )
                .label("unknown choice");
                d = match suggest(name, names.iter().copied()) {
                    Some(s) => d.help(format!("did you mean `{s}`?")),
                    None => d.help(format!("expected {expected}")),
                };
                self.push(d);
                None
            }
            _ => {
                self.wrong_type(v, &expected);
                None
            }
        }
    }

    fn name(&mut self, v: &Value) -> Option<Ident> {
        match &v.kind {
            ValueKind::Path(p) if p.len() == 1 => p.first().cloned(),
            _ => {
                self.wrong_type(v, "a name");
                None
            }
        }
    }

    fn names(&mut self, v: &Value) -> Option<Sp<Vec<Ident>>> {
        match &v.kind {
            ValueKind::List(items) => Some(Sp::new(
                items.iter().filter_map(|i| self.name(i)).collect(),
                v.span,
            )),
            _ => {
                self.wrong_type(v, "a list of names");
                None
            }
        }
    }

    fn strings(&mut self, v: &Value) -> Option<Vec<String>> {
        match &v.kind {
            ValueKind::List(items) => Some(
                items
                    .iter()
                    .filter_map(|i| self.string(i).map(|s| s.value))
                    .collect(),
            ),
            _ => {
                self.wrong_type(v, "a list of strings");
                None
            }
        }
    }

    fn command(&mut self, v: &Value) -> Option<Sp<Command>> {
        match &v.kind {
            ValueKind::List(_) => self
                .strings(v)
                .map(|items| Sp::new(Command::Exec(items), v.span)),
            ValueKind::Str(_) => self
                .string(v)
                .map(|s| Sp::new(Command::Shell(s.value), v.span)),
            _ => {
                self.wrong_type(v, "a string or a list of strings");
                None
            }
        }
    }

    /// A string-valued expression: strings (with interpolations), references,
    /// numbers, quantities and booleans as written.
    fn expr(&mut self, v: &Value) -> Option<Expr> {
        let pieces = match &v.kind {
            ValueKind::Str(t) => t
                .parts
                .iter()
                .map(|p| match p {
                    TemplatePart::Text(s) => Piece::Text(s.clone()),
                    TemplatePart::Interp(path, span) => Piece::Ref(Reference {
                        path: path.clone(),
                        span: *span,
                    }),
                })
                .collect(),
            ValueKind::Quantity { number, unit } => vec![Piece::Text(format!("{number}{unit}"))],
            ValueKind::Bool(b) => vec![Piece::Text(b.to_string())],
            ValueKind::Path(path) => vec![Piece::Ref(Reference {
                path: path.clone(),
                span: v.span,
            })],
            ValueKind::List(_) => {
                self.wrong_type(v, "a string, a number or a reference");
                return None;
            }
        };
        Some(Expr {
            pieces,
            span: v.span,
        })
    }

    fn quantity(&mut self, v: &Value, what: &str, units: &[(&str, f64)]) -> Option<(f64, Span)> {
        if let ValueKind::Quantity { number, unit } = &v.kind {
            if let (Ok(n), Some((_, factor))) =
                (number.parse::<f64>(), units.iter().find(|u| u.0 == unit))
            {
                return Some((n * factor, v.span));
            }
            let list: Vec<String> = units
                .iter()
                .map(|u| {
                    if u.0.is_empty() {
                        "no unit".into()
                    } else {
                        u.0.to_string()
                    }
                })
                .collect();
            self.push(
                Diagnostic::error(
                    Code::InvalidValue,
                    v.span,
                    format!("`{number}{unit}` is not {what}"),
                )
                .label(format!("unit `{unit}` not allowed here"))
                .help(format!("{what} takes the units: {}", list.join(", "))),
            );
            return None;
        }
        self.wrong_type(v, what);
        None
    }

    fn duration(&mut self, v: &Value) -> Option<Sp<Duration>> {
        let units = [
            ("ms", 1.0),
            ("s", 1000.0),
            ("m", 60_000.0),
            ("h", 3_600_000.0),
        ];
        self.quantity(v, "a duration (`30s`, `500ms`, `5m`)", &units)
            .map(|(ms, span)| Sp::new(Duration(ms.round() as u64), span))
    }

    fn size(&mut self, v: &Value) -> Option<Sp<Size>> {
        let units = [
            ("", 1.0),
            ("K", 1e3),
            ("M", 1e6),
            ("G", 1e9),
            ("T", 1e12),
            ("Ki", 1024.0),
            ("Mi", 1024.0 * 1024.0),
            ("Gi", 1024.0 * 1024.0 * 1024.0),
            ("Ti", 1024.0 * 1024.0 * 1024.0 * 1024.0),
        ];
        self.quantity(v, "a size (`512Mi`, `2Gi`)", &units)
            .map(|(b, span)| Sp::new(Size(b.round() as u64), span))
    }

    fn cpu(&mut self, v: &Value) -> Option<Sp<Cpu>> {
        let units = [("", 1000.0), ("m", 1.0)];
        self.quantity(v, "a CPU amount (`2`, `0.5`, `500m`)", &units)
            .map(|(m, span)| Sp::new(Cpu(m.round() as u64), span))
    }

    // ---- top level ---------------------------------------------------------------

    fn top(&mut self, e: &Entry, stdlib: bool) {
        match e.key.name.as_str() {
            "stack" => {
                self.no_kind(e);
                if let Some(name) = self.ident_label(e, "stack name") {
                    if let Some(first) = self.stack_name {
                        self.push(
                            Diagnostic::error(
                                Code::DuplicateName,
                                name.span,
                                "the stack is named twice",
                            )
                            .label("named again here")
                            .with_secondary(first, "first named here"),
                        );
                    } else {
                        self.stack_name = Some(name.span);
                        self.stack.name = name.name;
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
                self.duplicates(entries, "a secret");
                for f in entries {
                    self.no_label(f);
                    self.no_kind(f);
                    let Some(v) = self.assigned(f) else { continue };
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
        let env_name = name.name.to_ascii_uppercase();
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
                parent: e.kind.clone(),
                def,
                from_stdlib: stdlib,
            },
        );
    }

    fn service(&mut self, e: &Entry) {
        let Some(name) = self.ident_label(e, "service name") else {
            return;
        };
        let entries = self.block(e);
        let def = self.service_def(entries, "a service", false);
        self.add_service(ServiceDecl {
            name,
            kind: e.kind.clone(),
            body: ServiceBody::Workload(Box::new(def)),
        });
    }

    fn add_service(&mut self, decl: ServiceDecl) {
        if let Some(first) = self.stack.services.get(&decl.name.name) {
            let first = first.name.span;
            self.push(duplicate(&decl.name, "service", first));
            return;
        }
        self.stack.services.insert(decl.name.name.clone(), decl);
    }

    fn external_decl(&mut self, e: &Entry) {
        let Some(name) = self.ident_label(e, "service name") else {
            return;
        };
        let def = self.external_def(e);
        self.add_service(ServiceDecl {
            name,
            kind: e.kind.clone(),
            body: ServiceBody::External(def),
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

    // ---- services ----------------------------------------------------------------

    fn service_def(&mut self, entries: &[Entry], what: &str, is_kind: bool) -> ServiceDef {
        self.duplicates(entries, what);
        let mut def = ServiceDef::default();
        for e in entries {
            let before = self.diags.error_count();
            self.service_field(&mut def, e, what, is_kind);
            if self.diags.error_count() > before {
                def.rejected.push(e.key.name.clone());
            }
        }
        def
    }

    fn service_field(&mut self, def: &mut ServiceDef, e: &Entry, what: &str, is_kind: bool) {
        let key = e.key.name.as_str();
        let labelled = matches!(key, "port" | "volume" | "mount" | "route" | "param");
        if !labelled {
            self.no_label(e);
        }
        self.no_kind(e);
        match key {
            "role" => {
                if let Some(v) = self.assigned(e) {
                    def.role = self.choice(
                        v,
                        &[("stateless", Role::Stateless), ("stateful", Role::Stateful)],
                    );
                }
            }
            "image" => {
                if let Some(v) = self.assigned(e) {
                    def.image = self.string(v);
                }
            }
            "build" => {
                if let Some(v) = self.assigned(e) {
                    def.build = self.string(v);
                }
            }
            "command" => {
                if let Some(v) = self.assigned(e) {
                    def.command = self.command(v);
                }
            }
            "port" => self.port(def, e),
            "public" => {
                if let Some(v) = self.assigned(e) {
                    def.public = self.names(v);
                }
            }
            "env" => {
                let entries = self.block(e);
                self.duplicates(entries, "an env block");
                for f in entries {
                    self.no_label(f);
                    self.no_kind(f);
                    let Some(v) = self.assigned(f) else { continue };
                    if let Some(value) = self.expr(v) {
                        def.env.insert(
                            f.key.name.clone(),
                            Assignment {
                                key: f.key.clone(),
                                value,
                            },
                        );
                    }
                }
            }
            "volume" => {
                let Some(name) = self.ident_label(e, "volume name") else {
                    return;
                };
                let Some(v) = self.assigned(e) else { return };
                if let Some(path) = self.string(v) {
                    self.absolute_path(&path);
                    def.volumes
                        .insert(name.name.clone(), VolumeDef { name, path });
                }
            }
            "mount" => self.mount(def, e),
            "replicas" => {
                if let Some(v) = self.assigned(e) {
                    def.replicas = self.integer(v, "a replica count");
                }
            }
            "resources" => {
                let entries = self.block(e);
                self.duplicates(entries, "resources");
                for f in entries {
                    self.no_label(f);
                    self.no_kind(f);
                    let Some(v) = self.assigned(f) else { continue };
                    let r = &mut def.resources;
                    match f.key.name.as_str() {
                        "cpu" => r.cpu = self.cpu(v),
                        "cpu_limit" => r.cpu_limit = self.cpu(v),
                        "memory" => r.memory = self.size(v),
                        "memory_limit" => r.memory_limit = self.size(v),
                        "gpu" => r.gpu = self.integer(v, "a GPU count"),
                        _ => {
                            let d = unknown_field(&f.key, "resources", RESOURCE_FIELDS);
                            self.push(d);
                        }
                    }
                }
            }
            "health" => self.health(def, e),
            "route" => {
                let Some(path) = self.string_label(e, "path prefix") else {
                    return;
                };
                if !path.value.starts_with('/') {
                    self.push(
                        Diagnostic::error(
                            Code::InvalidValue,
                            path.span,
                            format!("route `{}` does not start with `/`", path.value),
                        )
                        .label("a path prefix starts with `/`"),
                    );
                }
                let mut route = RouteDef { path, port: None };
                let entries = self.block(e);
                for f in entries {
                    self.no_label(f);
                    match f.key.name.as_str() {
                        "port" => {
                            if let Some(v) = self.assigned(f) {
                                route.port = self.name(v);
                            }
                        }
                        _ => {
                            let d = unknown_field(&f.key, "a route", ROUTE_FIELDS);
                            self.push(d);
                        }
                    }
                }
                def.routes.insert(route.path.value.clone(), route);
            }
            "restart" => {
                if let Some(v) = self.assigned(e) {
                    def.restart = self.choice(
                        v,
                        &[
                            ("no", Restart::No),
                            ("always", Restart::Always),
                            ("on-failure", Restart::OnFailure),
                            ("unless-stopped", Restart::UnlessStopped),
                        ],
                    );
                }
            }
            "depends_on" => {
                if let Some(v) = self.assigned(e) {
                    def.depends_on = self.depends_on(v);
                }
            }
            "url" | "read_url" | "public_url" => {
                let Some(v) = self.assigned(e) else { return };
                let expr = self.expr(v);
                match key {
                    "url" => def.url = expr,
                    "read_url" => def.read_url = expr,
                    _ => def.public_url = expr,
                }
            }
            "ha" => {
                if let Some(v) = self.assigned(e) {
                    def.ha = self.name(v);
                }
            }
            "ha_modes" if is_kind => {
                if let Some(v) = self.assigned(e) {
                    def.ha_modes = self.names(v);
                }
            }
            "param" if is_kind => {
                let Some(name) = self.ident_label(e, "parameter name") else {
                    return;
                };
                if SERVICE_FIELDS.contains(&name.name.as_str()) {
                    self.push(
                        Diagnostic::error(
                            Code::DuplicateName,
                            name.span,
                            format!("parameter `{}` has the name of a service field", name.name),
                        )
                        .label("already a field"),
                    );
                    return;
                }
                let default = match &e.value {
                    EntryValue::Assign(v) => self.expr(v),
                    EntryValue::None => None,
                    EntryValue::Block(_) => {
                        self.push(
                            Diagnostic::error(
                                Code::WrongType,
                                e.span,
                                "a parameter takes a value, not a block",
                            )
                            .label("expected `= value`"),
                        );
                        None
                    }
                };
                def.params
                    .insert(name.name.clone(), ParamDecl { name, default });
            }
            _ => match &e.value {
                // A value for a parameter that the kind may declare; `check` decides.
                EntryValue::Assign(v) if e.label.is_none() => {
                    if let Some(value) = self.expr(v) {
                        def.args.insert(
                            e.key.name.clone(),
                            Assignment {
                                key: e.key.clone(),
                                value,
                            },
                        );
                    }
                }
                _ => {
                    let mut known: Vec<&str> = SERVICE_FIELDS.to_vec();
                    if is_kind {
                        known.extend(KIND_ONLY_FIELDS);
                    }
                    let d = unknown_field(&e.key, what, &known);
                    self.push(d);
                }
            },
        }
    }

    fn absolute_path(&mut self, path: &Sp<String>) {
        if !path.value.starts_with('/') {
            self.push(
                Diagnostic::error(
                    Code::InvalidValue,
                    path.span,
                    format!("`{}` is not an absolute path in the container", path.value),
                )
                .label("expected a path starting with `/`"),
            );
        }
    }

    fn port(&mut self, def: &mut ServiceDef, e: &Entry) {
        let Some(name) = self.ident_label(e, "port name") else {
            return;
        };
        let mut port = PortDef {
            name: name.clone(),
            container: None,
            host: None,
            protocol: None,
            invalid: false,
        };
        match &e.value {
            EntryValue::Assign(v) => {
                port.container = self.integer(v, "a port number");
                // Reported already: later stages must not report it missing too.
                port.invalid = port.container.is_none();
            }
            EntryValue::Block(entries) => {
                self.duplicates(entries, "a port");
                for f in entries {
                    self.no_label(f);
                    self.no_kind(f);
                    let Some(v) = self.assigned(f) else { continue };
                    match f.key.name.as_str() {
                        "container" => {
                            port.container = self.integer(v, "a port number");
                            port.invalid = port.container.is_none();
                        }
                        "host" => port.host = self.integer(v, "a port number"),
                        "protocol" => {
                            port.protocol = self.choice(
                                v,
                                &[
                                    ("http", Protocol::Http),
                                    ("tcp", Protocol::Tcp),
                                    ("udp", Protocol::Udp),
                                ],
                            )
                        }
                        _ => {
                            let d = unknown_field(&f.key, "a port", PORT_FIELDS);
                            self.push(d);
                        }
                    }
                }
            }
            EntryValue::None => {
                self.push(
                    Diagnostic::error(Code::MissingField, e.span, "a port needs a number")
                        .label("expected `= NUMBER`"),
                );
            }
        }
        for p in [&port.container, &port.host].into_iter().flatten() {
            if p.value == 0 {
                self.push(
                    Diagnostic::error(Code::InvalidValue, p.span, "port 0 is not a port")
                        .label("expected 1 to 65535"),
                );
            }
        }
        def.ports.insert(name.name, port);
    }

    fn mount(&mut self, def: &mut ServiceDef, e: &Entry) {
        let Some(source) = self.string_label(e, "host path") else {
            return;
        };
        let mut target = None;
        let mut read_only = false;
        match &e.value {
            EntryValue::Assign(v) => target = self.string(v),
            EntryValue::Block(entries) => {
                for f in entries {
                    self.no_label(f);
                    let Some(v) = self.assigned(f) else { continue };
                    match f.key.name.as_str() {
                        "target" => target = self.string(v),
                        "read_only" => read_only = self.boolean(v).unwrap_or(false),
                        _ => {
                            let d = unknown_field(&f.key, "a mount", MOUNT_FIELDS);
                            self.push(d);
                        }
                    }
                }
            }
            EntryValue::None => {}
        }
        let Some(target) = target else {
            self.push(
                Diagnostic::error(Code::MissingField, e.span, "a mount needs a target path")
                    .label("expected `= \"/path/in/container\"`"),
            );
            return;
        };
        self.absolute_path(&target);
        def.mounts.insert(
            source.value.clone(),
            MountDef {
                source,
                target,
                read_only,
            },
        );
    }

    fn depends_on(&mut self, v: &Value) -> Option<Sp<Vec<DepDecl>>> {
        let ValueKind::List(items) = &v.kind else {
            self.wrong_type(v, "a list of services");
            return None;
        };
        let mut deps = Vec::new();
        for item in items {
            match &item.kind {
                ValueKind::Path(p) if !p.is_empty() && p.len() <= 2 => {
                    let gate = match p.get(1).map(|i| i.name.as_str()) {
                        None => Gate::Default,
                        Some("healthy") => Gate::Healthy,
                        Some("started") => Gate::Started,
                        Some(other) => {
                            let d = Diagnostic::error(
                                Code::InvalidValue,
                                item.span,
                                format!("`{other}` is not a dependency condition"),
                            )
                            .label("expected `healthy` or `started`")
                            .help("write `db`, `db.healthy` (wait for its health check) or `db.started`");
                            self.push(d);
                            continue;
                        }
                    };
                    deps.push(DepDecl {
                        service: p[0].clone(),
                        gate,
                        span: item.span,
                    });
                }
                _ => self.wrong_type(item, "a service name, `NAME.healthy` or `NAME.started`"),
            }
        }
        Some(Sp::new(deps, v.span))
    }

    fn health(&mut self, def: &mut ServiceDef, e: &Entry) {
        let entries = self.block(e);
        self.duplicates(entries, "a health block");
        // Probe fields written directly in `health` define one check used for
        // liveness and readiness.
        let (probes, direct): (Vec<&Entry>, Vec<&Entry>) = entries
            .iter()
            .partition(|f| HEALTH_FIELDS.contains(&f.key.name.as_str()));
        if !direct.is_empty() {
            let probe = self.probe(&direct, e.span);
            def.health.liveness = Some(probe.clone());
            def.health.readiness = Some(probe);
        }
        for f in probes {
            self.no_label(f);
            self.no_kind(f);
            let inner: Vec<&Entry> = self.block(f).iter().collect();
            let probe = self.probe(&inner, f.span);
            match f.key.name.as_str() {
                "liveness" => def.health.liveness = Some(probe),
                "readiness" => def.health.readiness = Some(probe),
                _ => def.health.startup = Some(probe),
            }
        }
    }

    fn probe(&mut self, entries: &[&Entry], span: Span) -> ProbeDef {
        let mut p = ProbeDef {
            span: Some(span),
            ..ProbeDef::default()
        };
        for f in entries {
            self.no_label(f);
            self.no_kind(f);
            let Some(v) = self.assigned(f) else { continue };
            let check = |c: ProbeCheck| Some(Sp::new(c, f.span));
            let previous = p.check.as_ref().map(|c| c.span);
            match f.key.name.as_str() {
                "http" => {
                    if let Some(path) = self.string(v) {
                        if !path.value.starts_with('/') {
                            self.push(
                                Diagnostic::error(
                                    Code::InvalidValue,
                                    path.span,
                                    "an HTTP check path starts with `/`",
                                )
                                .label("expected `/...`"),
                            );
                        }
                        p.check = check(ProbeCheck::Http(path.value));
                    }
                }
                "tcp" => {
                    if self.boolean(v) == Some(true) {
                        p.check = check(ProbeCheck::Tcp);
                    }
                }
                "command" => {
                    if let Some(c) = self.command(v) {
                        p.check = check(ProbeCheck::Command(c.value));
                    }
                }
                "port" => p.port = self.name(v),
                "interval" => p.interval = self.duration(v),
                "timeout" => p.timeout = self.duration(v),
                "start_period" => p.start_period = self.duration(v),
                "retries" => p.retries = self.integer(v, "a retry count"),
                _ => {
                    let mut known = PROBE_FIELDS.to_vec();
                    known.extend(HEALTH_FIELDS);
                    let d = unknown_field(&f.key, "a health check", &known);
                    self.push(d);
                    continue;
                }
            }
            if let (Some(prev), true) = (
                previous,
                matches!(f.key.name.as_str(), "http" | "tcp" | "command"),
            ) {
                self.push(
                    Diagnostic::error(
                        Code::DuplicateField,
                        f.key.span,
                        "a health check has one kind of check",
                    )
                    .label("second check here")
                    .with_secondary(prev, "first check here")
                    .help("use one of `http`, `tcp` or `command`"),
                );
            }
        }
        if p.check.is_none() {
            self.push(
                Diagnostic::error(
                    Code::MissingField,
                    span,
                    "a health check needs `http`, `tcp` or `command`",
                )
                .label("no check given")
                .help("for example `http = \"/health\"`"),
            );
        }
        p
    }

    // ---- topologies --------------------------------------------------------------

    fn topology(&mut self, e: &Entry) {
        self.no_kind(e);
        let Some(name) = self.ident_label(e, "topology name") else {
            return;
        };
        let entries = self.block(e);
        self.duplicates(entries, "a topology");
        let mut topo = TopologyDef {
            name: name.clone(),
            platform: Sp::new(Platform::Compose, name.span),
            hosts: IndexMap::new(),
            overrides: IndexMap::new(),
            externals: IndexMap::new(),
        };
        for f in entries {
            match f.key.name.as_str() {
                "platform" => {
                    self.no_label(f);
                    if let Some(v) = self.assigned(f) {
                        if let Some(p) = self.choice(v, &[("compose", Platform::Compose)]) {
                            topo.platform = p;
                        }
                    }
                }
                "host" => {
                    self.no_kind(f);
                    if let Some(host) = self.host(f) {
                        topo.hosts.insert(host.name.name.clone(), host);
                    }
                }
                "override" => {
                    self.no_kind(f);
                    let Some(service) = self.ident_label(f, "service name") else {
                        continue;
                    };
                    let entries = self.block(f);
                    let over = self.service_def(entries, "an override", false);
                    topo.overrides
                        .insert(service.name.clone(), RunDef { service, over });
                }
                "external" => {
                    self.no_kind(f);
                    let Some(service) = self.ident_label(f, "service name") else {
                        continue;
                    };
                    let def = self.external_def(f);
                    topo.externals.insert(service.name.clone(), (service, def));
                }
                _ => {
                    let d = unknown_field(&f.key, "a topology", TOPOLOGY_FIELDS);
                    self.push(d);
                }
            }
        }
        if let Some(first) = self.stack.topologies.get(&name.name) {
            let first = first.name.span;
            self.push(duplicate(&name, "topology", first));
            return;
        }
        self.stack.topologies.insert(name.name.clone(), topo);
    }

    fn host(&mut self, e: &Entry) -> Option<HostDef> {
        let name = self.ident_label(e, "host name")?;
        let mut host = HostDef {
            name,
            address: None,
            gpu: None,
            managed: false,
            runs: Vec::new(),
        };
        let entries = self.block(e);
        for f in entries {
            match f.key.name.as_str() {
                "address" => {
                    self.no_label(f);
                    if let Some(v) = self.assigned(f) {
                        host.address = self.string(v);
                    }
                }
                "gpu" => {
                    self.no_label(f);
                    if let Some(v) = self.assigned(f) {
                        host.gpu = match &v.kind {
                            ValueKind::Bool(b) => Some(Sp::new(u32::from(*b), v.span)),
                            _ => self.integer(v, "a GPU count or `true`"),
                        };
                    }
                }
                "managed" => {
                    self.no_label(f);
                    if let Some(v) = self.assigned(f) {
                        host.managed = self.boolean(v).unwrap_or(false);
                    }
                }
                "run" => match (&f.label, &f.value) {
                    (None, EntryValue::Assign(v)) => {
                        if let Some(names) = self.names(v) {
                            host.runs
                                .extend(names.value.into_iter().map(|service| RunDef {
                                    service,
                                    over: ServiceDef::default(),
                                }));
                        }
                    }
                    _ => {
                        let Some(service) = self.ident_label(f, "service name") else {
                            continue;
                        };
                        let over = match &f.value {
                            EntryValue::Block(entries) => {
                                self.service_def(entries, "a per-host override", false)
                            }
                            _ => ServiceDef::default(),
                        };
                        host.runs.push(RunDef { service, over });
                    }
                },
                _ => {
                    let d = unknown_field(&f.key, "a host", HOST_FIELDS);
                    self.push(d);
                }
            }
        }
        Some(host)
    }
}

fn duplicate(name: &Ident, what: &str, first: Span) -> Diagnostic {
    Diagnostic::error(
        Code::DuplicateName,
        name.span,
        format!("{what} `{}` is defined twice", name.name),
    )
    .label("defined again here")
    .with_secondary(first, "first defined here")
    .help(format!("rename one of them; {what} names are unique"))
}
