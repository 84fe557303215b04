//! Go to definition: a name goes to its definition (from the index); an
//! attribute, `url` in `db.url` (or `${db.url}`), to the entry that decides
//! it, the service's own `url` or its kind's; a parameter (`db.database`) to
//! the kind's `param`; `ports.NAME` to the `port NAME` of the service or its
//! kind.

use lsp_types::{GotoDefinitionResponse, Position, Uri};

use super::features::{chain, kind_entries, kind_of, location};
use super::index::{SymbolKind, Target};
use super::text::{offset, Encoding};
use super::Analysis;
use crate::base::Name;
use crate::diag::Span;
use crate::syntax::{Entry, EntryValue, Ident, TemplatePart, Value, ValueKind};

pub fn definition(
    a: &Analysis,
    doc: &Uri,
    pos: Position,
    enc: Encoding,
) -> Option<GotoDefinitionResponse> {
    let at = offset(a.file(), pos, enc);
    let span = match a.index().at(a.user, at as u32) {
        Some((target, _)) => a.index().definition(&target)?.span,
        None => attribute(a, at)?,
    };
    Some(GotoDefinitionResponse::Scalar(location(a, span, doc, enc)?))
}

/// The span to go to for the attribute at `at`, if the cursor is on one.
fn attribute(a: &Analysis, at: usize) -> Option<Span> {
    let entries = chain(a, at);
    let path = match &entries.last()?.value {
        EntryValue::Assign(v) => path_at(v, at)?,
        _ => return None,
    };
    let (first, attr) = (path.first()?, path.get(1)?);
    let on = |i: &Ident| i.span.start as usize <= at && at <= i.span.end as usize;
    if !path[1..].iter().any(on) || first.name == "secret" {
        return None;
    }
    let service = match first.name.as_str() {
        "self" => entries.first()?.label_name()?.into(),
        name => Name::new(name),
    };
    let kind = kind_of(a, &service);
    // The service's entries first, then its kinds', nearest first.
    let own = service_entry(a, &service).into_iter().flat_map(fields);
    let inherited = kind.iter().flat_map(|k| {
        ["param", "port", attr.name.as_str()]
            .into_iter()
            .flat_map(move |key| kind_entries(a, k, key))
            .map(|(_, _, e)| e)
    });
    let wanted = |e: &&Entry| match (attr.name.as_str(), path.get(2)) {
        ("ports", Some(port)) => e.key.name == "port" && e.label_name() == Some(&port.name),
        ("ports", None) => false,
        (name, _) => {
            (e.key.name == "param" && e.label_name() == Some(name))
                || (e.key.name == name && e.label.is_none() && is_template(name))
        }
    };
    let found = own.chain(inherited).find(wanted)?;
    Some(match found.label.as_deref() {
        Some(l) => l.span(),
        None => found.key.span,
    })
}

/// The attributes a kind or a service writes itself (the others are made
/// from its ports and placement).
fn is_template(name: &str) -> bool {
    matches!(name, "url" | "read_url" | "public_url")
}

/// The top-level `service NAME` entry of the user's file.
fn service_entry<'a>(a: &'a Analysis, name: &str) -> Option<&'a Entry> {
    let def = a.index().definition(&Target {
        kind: SymbolKind::Service,
        name: Name::new(name),
        topology: None,
    })?;
    let (_, tree) = a.trees.iter().find(|(id, _)| *id == def.span.file)?;
    tree.entries.iter().find(|e| e.span() == def.entry)
}

fn fields(e: &Entry) -> impl Iterator<Item = &Entry> {
    match &e.value {
        EntryValue::Block(entries) => entries.iter(),
        _ => [].iter(),
    }
}

/// The reference (a path, or one interpolated in a string) that contains `at`.
fn path_at(v: &Value, at: usize) -> Option<&[Ident]> {
    if !(v.span.start as usize <= at && at <= v.span.end as usize) {
        return None;
    }
    match &v.kind {
        ValueKind::Path(p) => Some(p),
        ValueKind::List(items) => items.iter().find_map(|i| path_at(i, at)),
        ValueKind::Str(t) => t.parts.iter().find_map(|p| match p {
            TemplatePart::Interp(path, span)
                if span.start as usize <= at && at <= span.end as usize =>
            {
                Some(path.as_slice())
            }
            _ => None,
        }),
        _ => None,
    }
}
