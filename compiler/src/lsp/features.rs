//! The language server's answers, each a function of one file's `Analysis`.

use std::collections::HashMap;
use std::str::FromStr;

use lsp_types::{
    CodeAction, CodeActionKind, CodeActionOrCommand, CodeActionParams,
    DiagnosticRelatedInformation, DiagnosticSeverity, DocumentSymbol, DocumentSymbolResponse,
    Hover, HoverContents, Location, MarkupContent, MarkupKind, NumberOrString, Position,
    PrepareRenameResponse, TextEdit, Uri, WorkspaceEdit,
};

use super::index::{Definition, SymbolKind, Target};
use super::text::{offset, range, Encoding};
use super::Analysis;
use crate::base::Name;
use crate::diag::{Diagnostic, Severity, Span};
use crate::plan::Out;
use crate::syntax::{Entry, EntryValue};

/// The URI of a span's file: the document itself, or a stdlib file, copied
/// read-only to `stdlib_dir` so that an editor can open it (and the server
/// leaves it without diagnostics: `is_stdlib_copy`).
fn uri_of(a: &Analysis, span: Span, doc: &Uri) -> Option<Uri> {
    if span.file == a.user {
        return Some(doc.clone());
    }
    let file = a.sources.get(span.file);
    let name = file.name.strip_prefix("<stdlib>/")?;
    let path = stdlib_dir().join(name);
    if std::fs::read_to_string(&path).ok().as_deref() != Some(&*file.text) {
        write_read_only(&path, &file.text).ok()?;
    }
    Uri::from_str(&format!("file://{}", path.display())).ok()
}

/// Where the stdlib's files are copied for the editor: the user's cache
/// directory (not the shared temporary one, where another user could have
/// put a file first), one per version.
pub(super) fn stdlib_dir() -> std::path::PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    cache
        .join("stackc")
        .join(format!("stdlib-{}", env!("CARGO_PKG_VERSION")))
}

/// Writes `text` to `path`, read-only: the stdlib is not the user's to edit,
/// and an editor shows the file so. Written beside it and renamed over it, so
/// that two servers writing at once leave one whole copy.
fn write_read_only(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    static WRITES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(dir)?;
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let temporary = dir.join(format!(".{}.{n}.tmp", std::process::id()));
    std::fs::write(&temporary, text)?;
    let mut perms = std::fs::metadata(&temporary)?.permissions();
    perms.set_readonly(true);
    std::fs::set_permissions(&temporary, perms)?;
    std::fs::rename(&temporary, path)
}

pub(super) fn location(a: &Analysis, span: Span, doc: &Uri, enc: Encoding) -> Option<Location> {
    let file = a.sources.get(span.file);
    Some(Location {
        uri: uri_of(a, span, doc)?,
        range: range(file, span.start as usize, span.end as usize, enc),
    })
}

pub fn diagnostics(a: &Analysis, doc: &Uri, enc: Encoding) -> Vec<lsp_types::Diagnostic> {
    a.diagnostics
        .iter()
        .map(|d| to_lsp(a, d, doc, enc))
        .collect()
}

fn to_lsp(a: &Analysis, d: &Diagnostic, doc: &Uri, enc: Encoding) -> lsp_types::Diagnostic {
    // Shown in the document: the primary span, else the first label in it (a
    // conflict with a stdlib port), else the file's start.
    let in_doc = std::iter::once(&d.primary)
        .chain(&d.secondary)
        .find(|l| l.span.file == a.user)
        .map(|l| l.span);
    let range = in_doc.map_or_else(lsp_types::Range::default, |s| {
        range(a.file(), s.start as usize, s.end as usize, enc)
    });
    let mut message = d.message.clone();
    if !d.primary.message.is_empty() {
        message.push_str(&format!(": {}", d.primary.message));
    }
    if let Some(help) = &d.help {
        message.push_str(&format!("\nhelp: {help}"));
    }
    let related: Vec<DiagnosticRelatedInformation> = d
        .secondary
        .iter()
        .filter_map(|l| {
            Some(DiagnosticRelatedInformation {
                location: location(a, l.span, doc, enc)?,
                message: l.message.clone(),
            })
        })
        .collect();
    lsp_types::Diagnostic {
        range,
        severity: Some(match d.severity {
            Severity::Error => DiagnosticSeverity::ERROR,
            Severity::Warning => DiagnosticSeverity::WARNING,
        }),
        code: Some(NumberOrString::String(d.code.as_str().to_string())),
        source: Some("stackc".into()),
        message,
        related_information: (!related.is_empty()).then_some(related),
        data: Some(super::fixes::of(a, d, enc))
            .filter(|f| !f.is_empty())
            .map(|f| serde_json::json!({ "fixes": f })),
        ..lsp_types::Diagnostic::default()
    }
}

/// The entries of the user's file that contain an offset, outermost first.
pub(super) fn chain(a: &Analysis, at: usize) -> Vec<&Entry> {
    let mut out = Vec::new();
    let Some((_, file)) = a.trees.iter().find(|(id, _)| *id == a.user) else {
        return out;
    };
    let mut entries = &file.entries;
    while let Some(e) = entries
        .iter()
        .find(|e| e.span().start as usize <= at && at <= e.span().end as usize)
    {
        out.push(e);
        match &e.value {
            EntryValue::Block(inner) => entries = inner,
            _ => break,
        }
    }
    out
}

fn render(value: &[Out]) -> String {
    value
        .iter()
        .map(|p| match p {
            Out::Text(t) => t.to_string(),
            Out::Secret(s) => format!("${{{}}}", s.env),
        })
        .collect()
}

/// The comment lines right above an entry.
fn doc_comment(text: &str, start: usize) -> String {
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let mut lines: Vec<&str> = Vec::new();
    for line in text[..line_start].lines().rev() {
        match line.trim().strip_prefix('#') {
            Some(c) => lines.push(c.trim()),
            None => break,
        }
    }
    lines.reverse();
    lines.join(" ")
}

/// The `param NAME` entry of a kind or of its ancestors: (file text, entry).
fn param<'a>(a: &'a Analysis, kind: &str, name: &str) -> Option<(&'a str, &'a Entry)> {
    kind_params(a, kind)
        .into_iter()
        .find(|(_, _, p)| p.label_name() == Some(name))
        .map(|(_, text, p)| (text, p))
}

/// The kind of a service, from its definition.
pub(super) fn kind_of(a: &Analysis, service: &str) -> Option<Name> {
    a.index()
        .definition(&Target {
            kind: SymbolKind::Service,
            name: Name::new(service),
            topology: None,
        })?
        .kind_of
        .clone()
}

fn markdown(value: String) -> Hover {
    Hover {
        contents: HoverContents::Markup(MarkupContent {
            kind: MarkupKind::Markdown,
            value,
        }),
        range: None,
    }
}

fn describe(a: &Analysis, target: &Target) -> String {
    let mut out = format!("**{}** `{}`", target.kind.word(), target.name);
    let def = a.index().definition(target);
    if let Some(k) = def.and_then(|d| d.kind_of.as_ref()) {
        out.push_str(&format!(": `{k}`"));
    }
    if let Some(d) = def {
        let text = &a.sources.get(d.span.file).text;
        let comment = doc_comment(text, d.entry.start as usize);
        if !comment.is_empty() {
            out.push_str(&format!("\n\n{comment}"));
        }
    }
    let Some((plan, stale)) = a.plan_or_last() else {
        return out + "\n\n(placements and values appear once the file has no errors)";
    };
    if stale {
        out.push_str("\n\n(as of the last version without errors)");
    }
    match target.kind {
        SymbolKind::Service => {
            for t in &plan.topologies {
                let hosts: Vec<String> = t
                    .hosts
                    .iter()
                    .filter_map(|h| {
                        let i = h.services.iter().find(|i| i.name == target.name)?;
                        let mut s = format!("`{}`", h.name);
                        if i.replicas > 1 {
                            s.push_str(&format!(" x{}", i.replicas));
                        }
                        if i.ha != crate::model::HaMode::Single {
                            s.push_str(&format!(" ({})", i.ha));
                        }
                        Some(s)
                    })
                    .collect();
                if !hosts.is_empty() {
                    out.push_str(&format!("\n- topology `{}`: {}", t.name, hosts.join(", ")));
                }
            }
            // The effective environment where it first runs.
            let first = plan.topologies.iter().find_map(|t| {
                t.hosts.iter().find_map(|h| {
                    let i = h.services.iter().find(|i| i.name == target.name)?;
                    Some((t, h, i))
                })
            });
            if let Some((t, h, i)) = first.filter(|(_, _, i)| !i.env.is_empty()) {
                out.push_str(&format!(
                    "\n\nenvironment (topology `{}`, host `{}`):\n```\n",
                    t.name, h.name
                ));
                for v in i.env.iter().take(40) {
                    out.push_str(&format!("{}={}\n", v.key, render(&v.value)));
                }
                if i.env.len() > 40 {
                    out.push_str(&format!("... {} more\n", i.env.len() - 40));
                }
                out.push_str("```");
            }
        }
        SymbolKind::Secret => {
            if let Some(s) = plan.secrets.get(&target.name) {
                out.push_str(&format!(
                    "\n\nreaches containers as `${{{}}}`{}; its value is never written into a generated file",
                    s.env_name,
                    if s.optional { " (optional)" } else { "" }
                ));
            }
        }
        SymbolKind::Host => {
            let host = plan
                .topologies
                .iter()
                .filter(|t| Some(&t.name) == target.topology.as_ref())
                .flat_map(|t| &t.hosts)
                .find(|h| h.name == target.name);
            if let Some(h) = host {
                if let Some(addr) = &h.address {
                    out.push_str(&format!("\n\naddress `{addr}`"));
                }
                let names: Vec<String> =
                    h.services.iter().map(|i| format!("`{}`", i.name)).collect();
                out.push_str(&format!("\n\nruns {}", names.join(", ")));
            }
        }
        SymbolKind::Topology => {
            if let Some(t) = plan.topologies.iter().find(|t| t.name == target.name) {
                let hosts: Vec<String> = t.hosts.iter().map(|h| format!("`{}`", h.name)).collect();
                out.push_str(&format!("\n\n{:?}, hosts {}", t.platform, hosts.join(", ")));
            }
        }
        SymbolKind::Kind => {}
    }
    out
}

/// The value of an env entry of a service, in every topology and host.
fn env_values(a: &Analysis, service: &str, key: &str, only: Option<&str>) -> Vec<String> {
    let Some((plan, _)) = a.plan_or_last() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for t in plan
        .topologies
        .iter()
        .filter(|t| only.is_none_or(|o| o == t.name))
    {
        for h in &t.hosts {
            for i in h.services.iter().filter(|i| i.name == service) {
                if let Some(v) = i.env.iter().find(|v| v.key == key) {
                    out.push(format!(
                        "- `{}` / `{}`: `{}`",
                        t.name,
                        h.name,
                        render(&v.value)
                    ));
                }
            }
        }
    }
    out
}

pub fn hover(a: &Analysis, pos: Position, enc: Encoding) -> Option<Hover> {
    let at = offset(a.file(), pos, enc);
    let entries = chain(a, at);
    // The service (and topology) the position is in.
    let (topology, service) = match entries.as_slice() {
        [t, o, ..] if t.key.name == "topology" && o.key.name == "override" => {
            (t.label_name(), o.label_name())
        }
        [s, ..] if s.key.name == "service" => (None, s.label_name()),
        _ => (None, None),
    };
    // A value of an env entry: what it resolves to, everywhere it runs.
    if let (Some(service), Some(last), Some(env)) = (
        service,
        entries.last(),
        entries.iter().rev().nth(1).filter(|e| e.key.name == "env"),
    ) {
        let _ = env;
        if let EntryValue::Assign(v) = &last.value {
            if v.span.start as usize <= at && at <= v.span.end as usize {
                let values = env_values(a, service, &last.key.name, topology);
                if !values.is_empty() {
                    let stale = if a.plan.is_none() {
                        "\n\n(as of the last version without errors)"
                    } else {
                        ""
                    };
                    return Some(markdown(format!(
                        "`{}` of `{service}`:\n{}{stale}",
                        last.key.name,
                        values.join("\n")
                    )));
                }
            }
        }
    }
    if let Some((target, _)) = a.index().at(a.user, at as u32) {
        return Some(markdown(describe(a, &target)));
    }
    // A field of a service: a parameter of its kind, with its documentation.
    let last = entries.last()?;
    let on_key = last.key.span.start as usize <= at && at <= last.key.span.end as usize;
    if on_key {
        if let Some(kind) = service.and_then(|s| kind_of(a, s)) {
            if let Some((text, p)) = param(a, &kind, &last.key.name) {
                let default = match &p.value {
                    EntryValue::Assign(v) => format!(
                        "default `{}`",
                        &text[v.span.start as usize..v.span.end as usize]
                    ),
                    _ => "required".into(),
                };
                let comment = doc_comment(text, p.span().start as usize);
                return Some(markdown(format!(
                    "**parameter** `{}` of kind `{kind}`: {default}{}",
                    last.key.name,
                    if comment.is_empty() {
                        String::new()
                    } else {
                        format!("\n\n{comment}")
                    }
                )));
            }
        }
        return field_doc(&entries);
    }
    // A choice (`restart = always`): the field's documentation and the others.
    if let EntryValue::Assign(v) = &last.value {
        let on_value = v.span.start as usize <= at && at <= v.span.end as usize;
        let choices = crate::schema::choices(&last.key.name).filter(|_| on_value)?;
        let doc = field_doc(&entries).map_or(String::new(), |h| match h.contents {
            HoverContents::Markup(m) => format!("\n\n{}", m.value),
            _ => String::new(),
        });
        let listed: Vec<String> = choices.iter().map(|c| format!("`{c}`")).collect();
        return Some(markdown(format!(
            "**choice** of `{}`: {}{doc}",
            last.key.name,
            listed.join(", ")
        )));
    }
    None
}

/// The schema's documentation of the field `entries` ends at, in the block
/// its parent opens (the top level when it has none).
fn field_doc(entries: &[&Entry]) -> Option<Hover> {
    let (last, parents) = entries.split_last()?;
    let block = parents.last().map_or("", |p| p.key.name.as_str());
    let (block, field) = crate::schema::blocks_of(block)
        .iter()
        .find_map(|b| Some((b, b.field(&last.key.name)?)))?;
    Some(markdown(format!(
        "**field** `{}` of {}: {}",
        field.name, block.called, field.doc
    )))
}

pub fn references(
    a: &Analysis,
    doc: &Uri,
    pos: Position,
    with_declaration: bool,
    enc: Encoding,
) -> Option<Vec<Location>> {
    let at = offset(a.file(), pos, enc) as u32;
    let (target, _) = a.index().at(a.user, at)?;
    let mut out = Vec::new();
    if with_declaration {
        if let Some(def) = a.index().definition(&target) {
            out.extend(location(a, def.span, doc, enc));
        }
    }
    out.extend(
        a.index()
            .references_to(&target)
            .filter_map(|r| location(a, r.span, doc, enc)),
    );
    Some(out)
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// The name under the cursor a rename would change: its range, and its
/// text as the placeholder. `Err` says why nothing here can be renamed.
pub fn prepare_rename(
    a: &Analysis,
    pos: Position,
    enc: Encoding,
) -> Result<PrepareRenameResponse, String> {
    let (target, span, _) = renamable(a, pos, enc)?;
    Ok(PrepareRenameResponse::RangeWithPlaceholder {
        range: range(a.file(), span.start as usize, span.end as usize, enc),
        placeholder: target.name.to_string(),
    })
}

/// The name under the cursor, when it is defined in the user's file: what it
/// names, where it is written at the cursor, and where it is defined.
fn renamable(a: &Analysis, pos: Position, enc: Encoding) -> Result<(Target, Span, Span), String> {
    let at = offset(a.file(), pos, enc) as u32;
    let (target, span) = a
        .index()
        .at(a.user, at)
        .ok_or("no service, kind, secret, topology or host here")?;
    let def = a.index().definition(&target).ok_or("it is not defined")?;
    if def.span.file != a.user {
        return Err(format!(
            "`{}` is defined in the stdlib; define a kind of your own instead",
            target.name
        ));
    }
    let defined = def.span;
    Ok((target, span, defined))
}

/// Why `new_name` cannot name `target`: the rule its kind of name follows (as
/// `check` applies it), or another definition that has it already.
fn rename_refused(a: &Analysis, target: &Target, new_name: &str) -> Option<String> {
    let what = target.kind.word();
    let valid = match target.kind {
        SymbolKind::Service | SymbolKind::Topology | SymbolKind::Host => {
            crate::check::is_dns_label(new_name)
        }
        SymbolKind::Secret => crate::check::is_env_name(new_name),
        SymbolKind::Kind => valid_name(new_name),
    };
    if !valid {
        let rule = match target.kind {
            SymbolKind::Secret => "letters, digits and `_`, not starting with a digit",
            SymbolKind::Kind => "letters, digits, `_` and `-`",
            _ => "lowercase letters, digits and `-`, at most 63 (a DNS label)",
        };
        return Some(format!("`{new_name}` is not a {what} name: {rule}"));
    }
    let taken = Target {
        name: Name::new(new_name),
        ..target.clone()
    };
    (taken != *target && a.index().definition(&taken).is_some())
        .then(|| format!("`{new_name}` is already a {what}: choose a name of its own"))
}

pub fn rename(
    a: &Analysis,
    doc: &Uri,
    pos: Position,
    new_name: &str,
    enc: Encoding,
) -> Result<WorkspaceEdit, String> {
    let (target, _, defined) = renamable(a, pos, enc)?;
    if let Some(why) = rename_refused(a, &target, new_name) {
        return Err(why);
    }
    let mut edits: Vec<TextEdit> = std::iter::once(defined)
        .chain(a.index().references_to(&target).map(|r| r.span))
        .filter(|s| s.file == a.user)
        .map(|s| TextEdit {
            range: range(a.file(), s.start as usize, s.end as usize, enc),
            new_text: new_name.to_string(),
        })
        .collect();
    edits.sort_by_key(|e| (e.range.start.line, e.range.start.character));
    edits.dedup();
    Ok(WorkspaceEdit {
        changes: Some(HashMap::from([(doc.clone(), edits)])),
        ..WorkspaceEdit::default()
    })
}

#[allow(deprecated)] // `DocumentSymbol::deprecated` must be set to build one.
fn symbol(a: &Analysis, d: &Definition, enc: Encoding) -> DocumentSymbol {
    let kind = match d.target.kind {
        SymbolKind::Service => lsp_types::SymbolKind::CLASS,
        SymbolKind::Kind => lsp_types::SymbolKind::INTERFACE,
        SymbolKind::Secret => lsp_types::SymbolKind::KEY,
        SymbolKind::Topology => lsp_types::SymbolKind::NAMESPACE,
        SymbolKind::Host => lsp_types::SymbolKind::OBJECT,
    };
    DocumentSymbol {
        name: d.target.name.to_string(),
        detail: Some(match &d.kind_of {
            Some(k) => format!("{}: {k}", d.target.kind.word()),
            None => d.target.kind.word().to_string(),
        }),
        kind,
        tags: None,
        deprecated: None,
        range: range(a.file(), d.entry.start as usize, d.entry.end as usize, enc),
        selection_range: range(a.file(), d.span.start as usize, d.span.end as usize, enc),
        children: (!d.children.is_empty())
            .then(|| d.children.iter().map(|c| symbol(a, c, enc)).collect()),
    }
}

pub fn symbols(a: &Analysis, enc: Encoding) -> DocumentSymbolResponse {
    DocumentSymbolResponse::Nested(
        a.index()
            .definitions
            .iter()
            .filter(|d| d.span.file == a.user)
            .map(|d| symbol(a, d, enc))
            .collect(),
    )
}

pub fn formatting(a: &Analysis, enc: Encoding) -> Option<Vec<TextEdit>> {
    let text = &*a.file().text;
    let formatted = crate::format::format("document", text).ok()?;
    if formatted == text {
        return Some(Vec::new());
    }
    Some(vec![TextEdit {
        range: range(a.file(), 0, text.len(), enc),
        new_text: formatted,
    }])
}

pub fn code_actions(doc: &Uri, params: &CodeActionParams) -> Vec<CodeActionOrCommand> {
    let mut actions = Vec::new();
    for d in &params.context.diagnostics {
        let fixes = d
            .data
            .as_ref()
            .and_then(|data| data.get("fixes"))
            .and_then(|f| serde_json::from_value::<Vec<super::fixes::FixData>>(f.clone()).ok());
        for fix in fixes.into_iter().flatten() {
            actions.push(CodeActionOrCommand::CodeAction(CodeAction {
                title: fix.title,
                kind: Some(CodeActionKind::QUICKFIX),
                diagnostics: Some(vec![d.clone()]),
                edit: Some(WorkspaceEdit {
                    changes: Some(HashMap::from([(doc.clone(), fix.edits)])),
                    ..WorkspaceEdit::default()
                }),
                is_preferred: Some(fix.preferred),
                ..CodeAction::default()
            }));
        }
    }
    actions
}

/// The parameters of a kind and its ancestors: (name, kind).
pub(super) fn params_of(a: &Analysis, kind: &str) -> Vec<(String, Name)> {
    kind_params(a, kind)
        .into_iter()
        .filter_map(|(k, _, p)| Some((p.label_name()?.to_string(), k)))
        .collect()
}

/// The `param` entries of a kind and its ancestors, nearest first: (the kind
/// that declares it, its file's text, the entry).
fn kind_params<'a>(a: &'a Analysis, kind: &str) -> Vec<(Name, &'a str, &'a Entry)> {
    kind_entries(a, kind, "param")
}

/// The entries keyed `key` of a kind and its ancestors, nearest first: (the
/// kind that has it, its file's text, the entry).
pub(super) fn kind_entries<'a>(
    a: &'a Analysis,
    kind: &str,
    key: &str,
) -> Vec<(Name, &'a str, &'a Entry)> {
    let mut out = Vec::new();
    let mut current = Some(Name::new(kind));
    let mut seen = 0;
    while let Some(k) = current.take().filter(|_| seen < 16) {
        seen += 1;
        let Some(def) = a.index().definition(&Target {
            kind: SymbolKind::Kind,
            name: k.clone(),
            topology: None,
        }) else {
            break;
        };
        let text: &str = &a.sources.get(def.span.file).text;
        if let Some((_, tree)) = a.trees.iter().find(|(id, _)| *id == def.span.file) {
            if let Some(EntryValue::Block(entries)) = tree
                .entries
                .iter()
                .find(|e| e.span() == def.entry)
                .map(|e| &e.value)
            {
                for p in entries.iter().filter(|e| e.key.name == key) {
                    out.push((k.clone(), text, p));
                }
            }
        }
        current = def.kind_of.clone();
    }
    out
}
