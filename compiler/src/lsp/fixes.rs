//! Quick fixes: a diagnostic's `fixes` (a name it suggests, a unit, double
//! quotes, a duplicate removed) as edits of the document, and the fixes only
//! the document's layout decides (declaring an undeclared secret, preferred
//! over a similar name: a new secret is the likelier intent). They travel in
//! the published diagnostic's `data`, which the client sends back with a
//! code action request.

use serde::{Deserialize, Serialize};

use lsp_types::TextEdit;

use super::text::{range, Encoding};
use super::Analysis;
use crate::diag::{Code, Diagnostic, Edit, Span};
use crate::syntax::{Entry, Label};

/// One fix, as the diagnostic's `data` carries it.
#[derive(Debug, Serialize, Deserialize)]
pub struct FixData {
    pub title: String,
    pub preferred: bool,
    pub edits: Vec<TextEdit>,
}

/// The fixes of a diagnostic that change only the document, preferred first.
pub fn of(a: &Analysis, d: &Diagnostic, enc: Encoding) -> Vec<FixData> {
    let mut fixes: Vec<FixData> = d
        .fixes
        .iter()
        .filter(|f| f.edits.iter().all(|e| e.span.file == a.user))
        .map(|f| FixData {
            title: f.title.clone(),
            preferred: f.preferred,
            edits: f.edits.iter().map(|e| text_edit(a, e, enc)).collect(),
        })
        .collect();
    if d.code == Code::UndeclaredSecret && d.primary.span.file == a.user {
        if let Some(declare) = declare_secret(a, d.primary.span, enc) {
            fixes.iter_mut().for_each(|f| f.preferred = false);
            fixes.insert(0, declare);
        }
    }
    fixes
}

/// An edit of the document; a deletion that leaves its lines blank takes
/// them whole.
fn text_edit(a: &Analysis, e: &Edit, enc: Encoding) -> TextEdit {
    let text = &*a.file().text;
    let (mut start, mut end) = (e.span.start as usize, e.span.end as usize);
    if e.text.is_empty() {
        let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = text[end..].find('\n').map_or(text.len(), |i| end + i + 1);
        if text[line_start..start].trim().is_empty() && text[end..line_end].trim().is_empty() {
            (start, end) = (line_start, line_end);
        }
    }
    TextEdit {
        range: range(a.file(), start, end, enc),
        new_text: e.text.clone(),
    }
}

/// `secret NAME` for the name at `span`: after the file's last secret, else
/// after its `stack` line, else at its start.
fn declare_secret(a: &Analysis, span: Span, enc: Encoding) -> Option<FixData> {
    let text = &*a.file().text;
    let name = text.get(span.start as usize..span.end as usize)?;
    let (_, tree) = a.trees.iter().find(|(id, _)| *id == a.user)?;
    let top = |key: &str| -> Option<&Entry> {
        tree.entries
            .iter()
            .rfind(|e| e.key.name == key && matches!(e.label.as_deref(), Some(Label::Ident(_))))
    };
    let (at, new_text) = match top("secret").or_else(|| top("stack")) {
        Some(e) => (e.end as usize, format!("\nsecret {name}")),
        None => (0, format!("secret {name}\n\n")),
    };
    Some(FixData {
        title: format!("Declare `secret {name}`"),
        preferred: true,
        edits: vec![TextEdit {
            range: range(a.file(), at, at, enc),
            new_text,
        }],
    })
}
