//! The shape of an entry: its label, its kind, a value or a block, and
//! duplicate keys in a block.

use rustc_hash::FxHashMap as HashMap;
use std::borrow::Cow;
use std::collections::hash_map::Entry as Slot;

use super::values::type_help;
use super::*;
use crate::syntax::{Value, ValueKind};

impl Lower<'_> {
    pub(super) fn no_label(&mut self, e: &Entry) {
        if let Some(label) = e.label.as_deref() {
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

    pub(super) fn no_kind(&mut self, e: &Entry) {
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

    fn missing_label(&mut self, e: &Entry, what: &str, example: &str) {
        let key = &e.key.name;
        // `tls = "app.example.com"`: the label given as a value.
        if let EntryValue::Assign(v) = &e.value {
            if let Some(given) = match &v.kind {
                ValueKind::Str(t) => t.as_literal(),
                _ => None,
            } {
                self.push(
                    Diagnostic::error(
                        Code::MissingField,
                        v.span,
                        format!("`{key}` takes its {what} before its block, not as a value"),
                    )
                    .label(format!("the {what}, after `=`"))
                    .help(format!("write `{key} {given:?} {{ ... }}`, without `=`")),
                );
                return;
            }
        }
        self.push(
            Diagnostic::error(
                Code::MissingField,
                e.key.span,
                format!("`{key}` needs a {what}"),
            )
            .label(format!("{what} missing after this"))
            .help(format!("write `{key} {example} ...`")),
        );
    }

    pub(super) fn ident_label(&mut self, e: &Entry, what: &str) -> Option<Ident> {
        match e.label.as_deref() {
            Some(Label::Ident(i)) => Some(i.clone()),
            Some(Label::Str(t)) => {
                self.push(
                    Diagnostic::error(
                        Code::WrongType,
                        t.span,
                        format!("the {what} must be a name, not a string"),
                    )
                    .label("write it without quotes")
                    .help("names are written without quotes"),
                );
                None
            }
            None => {
                self.missing_label(e, what, "NAME");
                None
            }
        }
    }

    pub(super) fn string_label(&mut self, e: &Entry, what: &str) -> Option<Sp<String>> {
        self.name_label(e, what)
            .map(|s| Sp::new(s.value.to_string(), s.span))
    }

    /// `string_label` as a `Name`, shared with the syntax tree's text.
    pub(super) fn name_label(&mut self, e: &Entry, what: &str) -> Option<Sp<Name>> {
        match e.label.as_deref() {
            Some(Label::Str(t)) => match t.as_literal_name() {
                Some(s) => Some(Sp::new(s, t.span)),
                None => {
                    self.push(
                        Diagnostic::error(
                            Code::WrongType,
                            t.span,
                            format!("the {what} cannot contain references"),
                        )
                        .label("`${...}` not allowed here")
                        .help("write `\\${` for a literal `${`"),
                    );
                    None
                }
            },
            Some(Label::Ident(i)) => Some(Sp::new(i.name.clone(), i.span)),
            None => {
                self.missing_label(e, what, "\"...\"");
                None
            }
        }
    }

    pub(super) fn assigned<'e>(&mut self, e: &'e Entry) -> Option<&'e Value> {
        match &e.value {
            EntryValue::Assign(v) => Some(v),
            EntryValue::Block(_) => {
                self.push(
                    Diagnostic::error(
                        Code::WrongType,
                        e.span(),
                        format!("`{}` takes a value, not a block", e.key.name),
                    )
                    .label("expected `= value`")
                    .help(format!("write `{} = ...`", e.key.name)),
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
                    .label("expected `= value` after this")
                    .help(format!("write `{} = ...`", e.key.name)),
                );
                None
            }
        }
    }

    pub(super) fn block<'e>(&mut self, e: &'e Entry) -> &'e [Entry] {
        match &e.value {
            EntryValue::Block(entries) => entries,
            EntryValue::Assign(v) => {
                self.push(
                    Diagnostic::error(
                        Code::WrongType,
                        v.span,
                        format!("`{}` is a block, not a value", e.key.name),
                    )
                    .label("expected `{ ... }`")
                    .help(format!("write `{} {{ ... }}`", e.key.name)),
                );
                &[]
            }
            EntryValue::None => &[],
        }
    }

    pub(super) fn wrong_type(&mut self, v: &Value, expected: &str) {
        self.push(
            Diagnostic::error(
                Code::WrongType,
                v.span,
                format!("expected {expected}, found {}", v.kind.describe()),
            )
            .label(format!("expected {expected}"))
            .help(type_help(expected)),
        );
    }

    /// Reports fields written twice in one block (same key and label).
    /// The `key = value` settings of a block: duplicates, labels and `: kind`
    /// are reported, and an entry that is a block instead of a value is skipped
    /// (after its diagnostic).
    pub(super) fn settings<'e>(
        &mut self,
        entries: &'e [Entry],
        what: &str,
    ) -> Vec<(&'e Entry, &'e Value)> {
        self.duplicates(entries, what);
        entries
            .iter()
            .filter_map(|f| {
                self.no_label(f);
                self.no_kind(f);
                Some((f, self.assigned(f)?))
            })
            .collect()
    }

    pub(super) fn duplicates(&mut self, entries: &[Entry], what: &str) {
        // This runs on every block of the file: most blocks are a few lines, and
        // a few comparisons beat hashing them.
        if entries.len() <= 8 {
            // No key written twice: no key and label written twice either.
            let distinct = entries
                .iter()
                .enumerate()
                .all(|(i, e)| entries[..i].iter().all(|f| f.key.name != e.key.name));
            if distinct {
                return;
            }
        }
        // Keys borrowed from the tree.
        let mut seen: HashMap<(&str, Cow<'_, str>), Span> =
            HashMap::with_capacity_and_hasher(entries.len(), Default::default());
        for e in entries {
            let label = match e.label.as_deref() {
                None => Cow::Borrowed(""),
                Some(Label::Ident(i)) => Cow::Borrowed(i.name.as_str()),
                Some(label) => Cow::Owned(label.text()),
            };
            match seen.entry((e.key.name.as_str(), label)) {
                Slot::Vacant(v) => {
                    v.insert(e.key.span);
                }
                Slot::Occupied(o) => {
                    let (key, label) = o.key();
                    let name = if label.is_empty() {
                        key.to_string()
                    } else {
                        format!("{key} {label}")
                    };
                    let first = *o.get();
                    self.push(
                        Diagnostic::error(
                            Code::DuplicateField,
                            e.key
                                .span
                                .to(e.label.as_deref().map_or(e.key.span, Label::span)),
                            format!("`{name}` is written twice in {what}"),
                        )
                        .label("written again here")
                        .with_secondary(first, "first written here")
                        .help("remove one of them")
                        .fix_delete(format!("Remove this `{name}`"), e.span()),
                    );
                }
            }
        }
    }
}
