//! Completion: the attributes after `NAME.`, a block's fields (with their
//! documentation) and a kind's parameters at a key (in a one-line block
//! too), a choice field's values after `FIELD =`, the kinds after `:`, names
//! at another value.

use lsp_types::{CompletionItem, CompletionItemKind, CompletionResponse, Position};

use super::features::{chain, kind_entries, kind_of, params_of};
use super::index::SymbolKind;
use super::text::{offset, Encoding};
use super::Analysis;

fn item(label: &str, kind: CompletionItemKind, detail: &str) -> CompletionItem {
    CompletionItem {
        label: label.to_string(),
        kind: Some(kind),
        detail: (!detail.is_empty()).then(|| detail.to_string()),
        ..CompletionItem::default()
    }
}

/// The key of the block the cursor is in, found by counting braces back
/// (so that it works while the file does not parse): `""` at the top.
fn enclosing_block(text: &str) -> (String, Option<String>) {
    let mut depth = 0i32;
    let bytes = text.as_bytes();
    let mut i = bytes.len();
    while i > 0 {
        i -= 1;
        match bytes[i] {
            b'}' => depth += 1,
            b'{' if depth == 0 => {
                let line_start = text[..i].rfind('\n').map_or(0, |p| p + 1);
                let header: Vec<&str> = text[line_start..i]
                    .split(|c: char| c.is_whitespace() || c == ':')
                    .filter(|w| !w.is_empty())
                    .collect();
                let key = header.first().copied().unwrap_or_default().to_string();
                let kind = text[line_start..i]
                    .split_once(':')
                    .map(|(_, k)| k.trim().to_string())
                    .filter(|k| !k.is_empty());
                return (key, kind);
            }
            b'{' => depth -= 1,
            _ => {}
        }
    }
    (String::new(), None)
}

pub fn completion(current: &Analysis, pos: Position, enc: Encoding) -> Option<CompletionResponse> {
    let at = offset(current.file(), pos, enc);
    let before = &current.file().text[..at];
    // Names from the last version that parsed, while this one does not.
    let a = current.names();
    let line = &before[before.rfind('\n').map_or(0, |i| i + 1)..];
    let word_start = line
        .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.'))
        .map_or(0, |i| i + 1);
    let word = &line[word_start..];
    let names = |kind: SymbolKind| -> Vec<String> {
        a.index()
            .definitions
            .iter()
            .filter(|d| d.target.kind == kind)
            .map(|d| d.target.name.to_string())
            .collect()
    };
    let mut items = Vec::new();
    if let Some((head, _)) = word.rsplit_once('.') {
        // `secret.` names a secret; `SERVICE.` an attribute or a parameter.
        if head == "secret" {
            for s in names(SymbolKind::Secret) {
                items.push(item(&s, CompletionItemKind::CONSTANT, "secret"));
            }
        } else {
            let service = if head == "self" {
                chain(a, at)
                    .first()
                    .filter(|e| e.key.name == "service")
                    .and_then(|e| e.label_name())
                    .map(str::to_string)
            } else {
                Some(head.to_string())
            };
            for attr in crate::schema::ATTRIBUTES {
                items.push(item(attr.name, CompletionItemKind::PROPERTY, attr.doc));
            }
            if let Some(k) = service.as_deref().and_then(|s| kind_of(a, s)) {
                for (p, owner) in params_of(a, &k) {
                    items.push(item(
                        &p,
                        CompletionItemKind::FIELD,
                        &format!("parameter of `{owner}`"),
                    ));
                }
            }
        }
        return Some(CompletionResponse::Array(items));
    }
    // What comes before the word on its line: nothing or `{` (a one-line
    // block: `health { http = "/"  |`) or a finished value is a key's place;
    // `=` a value's, `:` a kind's.
    let prefix = line[..word_start].trim_end();
    if prefix.ends_with(':') {
        for k in names(SymbolKind::Kind) {
            items.push(item(&k, CompletionItemKind::CLASS, "kind"));
        }
        return Some(CompletionResponse::Array(items));
    }
    if let Some(field) = prefix
        .strip_suffix('=')
        .and_then(|p| p.split_whitespace().last())
    {
        if let Some(choices) = crate::schema::choices(field) {
            for c in choices {
                items.push(item(c, CompletionItemKind::ENUM_MEMBER, field));
            }
            return Some(CompletionResponse::Array(items));
        }
    }
    let key_position = !prefix.ends_with('=') && !prefix.ends_with('[') && !prefix.ends_with(',');
    if key_position {
        let (block, kind) = enclosing_block(before);
        // An `ha` block: the options of the modes the service may run in.
        let modes = (block == "ha").then(|| ha_modes(a, at)).flatten();
        for f in crate::schema::blocks_of(&block)
            .iter()
            .flat_map(|b| b.fields)
            .filter(|f| modes.as_ref().is_none_or(|m| applies(f.name, m)))
        {
            items.push(item(f.name, CompletionItemKind::KEYWORD, f.doc));
        }
        if matches!(block.as_str(), "service" | "override" | "run") {
            // The parameters of the service's kind.
            let service_kind = kind.or_else(|| {
                let (_, service) = enclosing_header_label(before)?;
                kind_of(a, &service).map(|k| k.to_string())
            });
            if let Some(k) = service_kind {
                for (p, _) in params_of(a, &k) {
                    items.push(item(
                        &p,
                        CompletionItemKind::FIELD,
                        &format!("parameter of `{k}`"),
                    ));
                }
            }
        }
    } else {
        // A value: services (for references), `secret`, hosts.
        for s in names(SymbolKind::Service) {
            items.push(item(&s, CompletionItemKind::MODULE, "service"));
        }
        items.push(item("secret", CompletionItemKind::KEYWORD, "secret.NAME"));
        for d in a.index().definitions.iter().flat_map(|d| &d.children) {
            items.push(item(&d.target.name, CompletionItemKind::VALUE, "host"));
        }
    }
    Some(CompletionResponse::Array(items))
}

/// The label of the block the cursor is in (`service api {` gives `api`).
fn enclosing_header_label(before: &str) -> Option<(String, String)> {
    let mut depth = 0i32;
    for (i, c) in before.char_indices().rev() {
        match c {
            '}' => depth += 1,
            '{' if depth == 0 => {
                let line_start = before[..i].rfind('\n').map_or(0, |p| p + 1);
                let mut words = before[line_start..i]
                    .split(|c: char| c.is_whitespace() || c == ':')
                    .filter(|w| !w.is_empty());
                return Some((words.next()?.to_string(), words.next()?.to_string()));
            }
            '{' => depth -= 1,
            _ => {}
        }
    }
    None
}

/// Whether an `ha` option applies to one of `modes` (`mode` always does).
fn applies(option: &str, modes: &[crate::model::HaMode]) -> bool {
    let of = crate::model::option_modes(option);
    of.is_empty() || of.iter().any(|m| modes.contains(m))
}

/// The modes the service around `at` may run in: its `ha` block's `mode`
/// once written, else its kind's `ha_modes`; `None` when neither is known.
fn ha_modes(a: &Analysis, at: usize) -> Option<Vec<crate::model::HaMode>> {
    use crate::model::HaMode;
    use crate::syntax::{EntryValue, ValueKind};
    let entries = chain(a, at);
    let service = entries.first().filter(|e| e.key.name == "service")?;
    fn value(e: &crate::syntax::Entry) -> Option<&ValueKind> {
        match &e.value {
            EntryValue::Assign(v) => Some(&v.kind),
            _ => None,
        }
    }
    let name = |v: &ValueKind| match v {
        ValueKind::Path(p) if p.len() == 1 => Some(HaMode::new(&p[0].name)),
        _ => None,
    };
    let ha = entries.iter().find(|e| e.key.name == "ha");
    let written = ha.and_then(|ha| match &ha.value {
        EntryValue::Block(fields) => fields.iter().find(|f| f.key.name == "mode"),
        _ => None,
    });
    if let Some(mode) = written.and_then(|m| name(value(m)?)) {
        return Some(vec![mode]);
    }
    let kind = kind_of(a, service.label_name()?)?;
    let (_, _, declared) = kind_entries(a, &kind, "ha_modes").into_iter().next()?;
    match value(declared)? {
        ValueKind::List(items) => Some(items.iter().filter_map(|i| name(&i.kind)).collect()),
        _ => None,
    }
}
