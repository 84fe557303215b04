//! The formatter: one canonical layout for `.stack` files (`stackc fmt`, and the
//! language server's formatting).
//!
//! It prints the syntax tree back, taking every comment from the source gaps
//! between entries, so comments stay where they were written: on their own
//! lines above an entry, at the end of an entry's line, or before a closing
//! brace. The layout:
//!
//! - two spaces per level; `key label: kind = value`, single spaces;
//! - at most one blank line between entries, none after `{` or before `}`;
//! - a block stays on one line (`{ a = 1  b = 2 }`, two spaces between entries)
//!   when it was written on one line, holds no block and no comment, and fits in
//!   100 columns; otherwise one entry per line;
//! - a list is `[a, b]` when it fits and holds no comment, else one item per
//!   line with a trailing comma, comments kept beside their items;
//! - strings, numbers and references exactly as written (escapes untouched);
//! - one newline at the end of the file.
//!
//! The result is checked: it must parse, and hold the same comments as the
//! source, or the formatter reports the problem instead of losing anything.
//! Formatting a formatted file changes nothing.

use crate::diag::{Code, Diagnostic, Diagnostics, SourceMap, Span};
use crate::syntax::{parse, Entry, EntryValue, Label, Value, ValueKind};

const WIDTH: usize = 100;
const INDENT: &str = "  ";

/// Formats a file. Errors are the file's syntax errors (nothing can be
/// formatted) or a comment the layout cannot place.
pub fn format(name: &str, text: &str) -> Result<String, (SourceMap, Vec<Diagnostic>)> {
    let mut sources = SourceMap::default();
    let file = sources.add(name, text);
    let mut diags = Diagnostics::default();
    let tree = parse(file, text, &mut diags);
    if diags.has_errors() {
        return Err((sources, diags.finish()));
    }
    let mut f = Formatter {
        src: text,
        out: String::with_capacity(text.len() + text.len() / 8),
    };
    f.entries(&tree.entries, 0, 0, text.len());
    while f.out.ends_with('\n') {
        f.out.pop();
    }
    if !f.out.is_empty() {
        f.out.push('\n');
    }
    let out = f.out;
    // Nothing may be lost: the same comments, in the same order.
    let (before, after) = (comments(text), comments(&out));
    if !before.iter().map(|c| &c.1).eq(after.iter().map(|c| &c.1)) {
        let at = first_difference(&before, &after);
        let span = Span::new(file, at, at + 1);
        let d = Diagnostic::error(
            Code::Syntax,
            span,
            "the formatter cannot keep this comment where it is",
        )
        .label("inside an entry")
        .help("move the comment to its own line above the entry, or to the end of its line");
        return Err((sources, vec![d]));
    }
    Ok(out)
}

struct Formatter<'s> {
    src: &'s str,
    out: String,
}

/// What lies between two entries: comments and blank lines.
#[derive(Debug, PartialEq)]
enum Trivia {
    Comment(String),
    Blank,
}

impl Formatter<'_> {
    fn text(&self, span: Span) -> &str {
        &self.src[span.start as usize..span.end as usize]
    }

    fn indent(&mut self, level: usize) {
        for _ in 0..level {
            self.out.push_str(INDENT);
        }
    }

    /// Writes `entries` at `level`, with the trivia of the source region
    /// `start..end` around them.
    fn entries(&mut self, entries: &[Entry], level: usize, start: usize, end: usize) {
        let mut cursor = start;
        for (i, e) in entries.iter().enumerate() {
            let gap = &self.src[cursor..e.span().start as usize];
            self.trivia(gap, level, i > 0, true);
            self.indent(level);
            self.entry(e, level);
            cursor = self.trailing(e.span().end as usize);
            self.out.push('\n');
        }
        // Comments before the closing brace, or at the end of the file.
        let gap = &self.src[cursor.min(end)..end];
        self.trivia(gap, level, !entries.is_empty(), false);
    }

    /// Writes the comments of a gap, each on its own line, keeping one blank
    /// line where the source had one or more: never at the start of a block,
    /// nor before its end.
    fn trivia(&mut self, gap: &str, level: usize, after_entry: bool, before_entry: bool) {
        let mut written = after_entry;
        let mut blank = false;
        for t in trivia(gap) {
            match t {
                Trivia::Blank => blank = written,
                Trivia::Comment(c) => {
                    if blank {
                        self.out.push('\n');
                    }
                    blank = false;
                    self.indent(level);
                    self.out.push_str(&c);
                    self.out.push('\n');
                    written = true;
                }
            }
        }
        if blank && before_entry {
            self.out.push('\n');
        }
    }

    /// A comment after an entry on its line: written after it, two spaces
    /// apart. Returns where the entry's line ends (or the entry, without one).
    fn trailing(&mut self, end: usize) -> usize {
        let rest = &self.src[end..];
        let line = rest.find('\n').map_or(rest, |i| &rest[..i]);
        let trimmed = line.trim();
        if trimmed.starts_with('#') {
            self.out.push_str("  ");
            self.out.push_str(trimmed);
            return end + line.len();
        }
        end
    }

    fn head(&self, e: &Entry) -> String {
        let mut s = e.key.name.to_string();
        match e.label.as_deref() {
            Some(Label::Ident(i)) => {
                s.push(' ');
                s.push_str(&i.name);
            }
            Some(Label::Str(t)) => {
                s.push(' ');
                s.push_str(self.text(t.span));
            }
            None => {}
        }
        if let Some(k) = &e.kind {
            s.push_str(": ");
            s.push_str(&k.name);
        }
        s
    }

    fn entry(&mut self, e: &Entry, level: usize) {
        let head = self.head(e);
        self.out.push_str(&head);
        match &e.value {
            EntryValue::None => {}
            EntryValue::Assign(v) => {
                self.out.push_str(" = ");
                let column = level * INDENT.len() + head.len() + 3;
                self.value(v, level, column);
            }
            EntryValue::Block(entries) => {
                // The body: from its `{` (after the head) to the entry's end.
                let head_end = e
                    .kind
                    .as_ref()
                    .map(|k| k.span.end)
                    .or(e.label.as_deref().map(|l| l.span().end))
                    .unwrap_or(e.key.span.end) as usize;
                let open = head_end
                    + self.src[head_end..e.span().end as usize]
                        .find('{')
                        .unwrap_or(0)
                    + 1;
                let close = (e.span().end as usize).saturating_sub(1);
                if entries.is_empty()
                    && trivia(&self.src[open..close])
                        .iter()
                        .all(|t| *t == Trivia::Blank)
                {
                    self.out.push_str(" {}");
                    return;
                }
                if let Some(inline) = self.inline_block(entries, open, close, level, head.len()) {
                    self.out.push_str(&inline);
                    return;
                }
                self.out.push_str(" {\n");
                self.entries(entries, level + 1, open, close);
                self.indent(level);
                self.out.push('}');
            }
        }
    }

    /// A block on one line, when it was written so, holds only plain entries
    /// and no comment, and fits.
    fn inline_block(
        &self,
        entries: &[Entry],
        open: usize,
        close: usize,
        level: usize,
        head: usize,
    ) -> Option<String> {
        let body = &self.src[open..close];
        let first = entries.first()?.span().start as usize;
        if self.src[open..first].contains('\n') || has_comment(body) {
            return None;
        }
        let mut parts = Vec::new();
        for e in entries {
            let mut s = self.head(e);
            match &e.value {
                EntryValue::None => {}
                EntryValue::Assign(v) => {
                    s.push_str(" = ");
                    s.push_str(&self.flat(v)?);
                }
                EntryValue::Block(_) => return None,
            }
            parts.push(s);
        }
        let inline = format!(" {{ {} }}", parts.join("  "));
        (level * INDENT.len() + head + inline.len() <= WIDTH).then_some(inline)
    }

    /// A value on one line, if it has no comment inside.
    fn flat(&self, v: &Value) -> Option<String> {
        match &v.kind {
            ValueKind::List(items) => {
                if has_comment(self.text(v.span)) {
                    return None;
                }
                let items: Option<Vec<String>> = items.iter().map(|i| self.flat(i)).collect();
                Some(format!("[{}]", items?.join(", ")))
            }
            _ => Some(self.text(v.span).to_string()),
        }
    }

    /// Writes a value at `column`: flat when it fits, else a list one item per
    /// line, each with the comments written around it.
    fn value(&mut self, v: &Value, level: usize, column: usize) {
        if let Some(flat) = self.flat(v) {
            if column + flat.len() <= WIDTH || !matches!(v.kind, ValueKind::List(_)) {
                self.out.push_str(&flat);
                return;
            }
        }
        let ValueKind::List(items) = &v.kind else {
            let text = self.text(v.span).to_string();
            self.out.push_str(&text);
            return;
        };
        self.out.push_str("[\n");
        let mut cursor = v.span.start as usize + 1;
        for (i, item) in items.iter().enumerate() {
            let gap = &self.src[cursor..item.span.start as usize];
            self.trivia(gap, level + 1, i > 0, true);
            self.indent(level + 1);
            self.value(item, level + 1, (level + 1) * INDENT.len());
            self.out.push(',');
            // Past the item's comma, then a comment on its line.
            let end = item.span.end as usize;
            let after = &self.src[end..];
            let comma = after
                .find(|c: char| !c.is_whitespace() || c == '\n')
                .filter(|&at| after[at..].starts_with(','))
                .map_or(end, |at| end + at + 1);
            cursor = self.trailing(comma);
            self.out.push('\n');
        }
        let close = (v.span.end as usize).saturating_sub(1);
        let gap = &self.src[cursor.min(close)..close];
        self.trivia(gap, level + 1, !items.is_empty(), false);
        self.indent(level);
        self.out.push(']');
    }
}

/// The comments and blank lines of a gap between entries. Its first piece is
/// the rest of a line (after a `{` or an entry); its last is the indentation
/// of the next entry's line.
fn trivia(gap: &str) -> Vec<Trivia> {
    let pieces: Vec<&str> = gap.split('\n').collect();
    let mut out = Vec::new();
    let n = pieces.len();
    for (i, piece) in pieces.iter().enumerate() {
        let t = piece.trim();
        if t.starts_with('#') {
            out.push(Trivia::Comment(t.trim_end().to_string()));
        } else if t.is_empty() && i > 0 && i < n - 1 && out.last() != Some(&Trivia::Blank) {
            out.push(Trivia::Blank);
        }
    }
    out
}

/// Whether a piece of source holds a comment (a `#` outside strings).
fn has_comment(text: &str) -> bool {
    !comments(text).is_empty()
}

/// Every comment of a text, trimmed, with its offset, skipping strings.
fn comments(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut in_string = false;
    let mut escaped = false;
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '#' => {
                let rest = &text[i..];
                let line = rest.find('\n').map_or(rest, |e| &rest[..e]);
                out.push((i, line.trim_end().to_string()));
                for _ in 0..line.chars().count().saturating_sub(1) {
                    chars.next();
                }
            }
            _ => {}
        }
    }
    out
}

/// The source offset of the first comment that the output does not hold.
fn first_difference(source: &[(usize, String)], output: &[(usize, String)]) -> usize {
    for (i, (at, c)) in source.iter().enumerate() {
        if output.get(i).map(|(_, o)| o) != Some(c) {
            return *at;
        }
    }
    source.last().map_or(0, |(at, _)| *at)
}
