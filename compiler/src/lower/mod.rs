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
use crate::schema::{self, Block};
use crate::syntax::{self, Entry, EntryValue, Ident, Label};

mod autoscale;
mod backup;
mod entries;
mod ha;
mod health;
mod postgresql;
mod receiver;
mod service;
mod topology;
mod values;

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

/// A key that is none of `block`'s fields.
pub(super) fn not_a_field(key: &Ident, block: &Block) -> Diagnostic {
    unknown_field(
        key,
        block.called,
        &block.names().collect::<Vec<_>>(),
        Some(block),
    )
}

/// A key that is none of `known`; the suggested field's documentation (from
/// `docs`) says how it is written (`port http = 3000`), not only its name.
pub(super) fn unknown_field(
    key: &Ident,
    block: &str,
    known: &[&str],
    docs: Option<&Block>,
) -> Diagnostic {
    let d = Diagnostic::error(
        Code::UnknownField,
        key.span,
        format!("unknown field `{}` in {block}", key.name),
    )
    .label("not a field here");
    match crate::diag::suggest(&key.name, known.iter().copied()) {
        Some(s) => {
            let doc = docs
                .and_then(|b| b.field(s))
                .map(|f| format!(" `{}`: {}", f.name, f.doc))
                .unwrap_or_default();
            d.help(format!("did you mean `{s}`?{doc}")).fix_replace(
                format!("Replace with `{s}`"),
                key.span,
                s,
            )
        }
        None => d.help(format!("the fields of {block} are: {}", known.join(", "))),
    }
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
                let d = not_a_field(&e.key, &schema::TOP);
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
        let mut generate = true;
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
                        "generate" => generate = self.boolean(v).unwrap_or(true),
                        "description" => description = self.string(v).map(|s| s.value),
                        _ => {
                            let d = not_a_field(&f.key, &schema::SECRET);
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
                generate,
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
                        def.port = self.port_number(v);
                    }
                }
                _ => {
                    let d = not_a_field(&f.key, &schema::EXTERNAL);
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

#[cfg(test)]
mod tests;
