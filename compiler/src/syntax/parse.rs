//! pest pairs to the syntax tree, one function per grammar rule.

use pest::iterators::Pair;
use pest::Parser as _;

use super::tree::*;
use crate::base::Name;
use crate::diag::{Code, Diagnostic, Diagnostics, FileId, Span};

#[derive(pest_derive::Parser)]
#[grammar = "syntax/stack.pest"]
struct StackParser;

/// Parses one file. A syntax error yields an empty tree and one diagnostic (pest
/// stops at the first error); string escapes are checked here too, all at once.
pub fn parse(file: FileId, text: &str, diags: &mut Diagnostics) -> File {
    parse_visiting(file, text, diags, &|_: &mut Entry| None::<()>).0
}

/// `parse`, calling `visit` on each top-level entry as soon as it is parsed and
/// keeping what it returns, in file order. `visit` may change the entry: the
/// compiler lowers a service's body there, while it is in cache and on the
/// thread that parsed it, and frees the body's subtree, so that the tree of a
/// large file never exists whole (docs/performance.md). It runs on the
/// entries of a tree pest built too, and not at all on a file that does not
/// parse.
pub fn parse_visiting<T: Send>(
    file: FileId,
    text: &str,
    diags: &mut Diagnostics,
    visit: &(impl Fn(&mut Entry) -> Option<T> + Sync),
) -> (File, Vec<T>) {
    // The hand-written parser builds the same tree, faster (a large file in two
    // halves, on two threads). It gives up on a file it rejects, and on one that
    // nests deeper than `MAX_NESTING`: `scan` finds that one, pest the others,
    // for the diagnostic.
    if let Some(parsed) = super::fast::parse_visiting(file, text, middle(text), diags, visit) {
        return parsed;
    }
    if let Some(at) = scan(text).too_deep {
        diags.push(
            Diagnostic::error(
                Code::Syntax,
                Span::new(file, at, at + 1),
                format!("blocks and lists nest deeper than {MAX_NESTING} levels"),
            )
            .label("too deep here")
            .help("a .stack file nests a few levels: service, health, liveness"),
        );
        return (File::default(), Vec::new());
    }
    let mut tree = parse_with_pest(file, text, diags);
    let visited = tree.entries.iter_mut().filter_map(visit).collect();
    (tree, visited)
}

/// The size from which a file is parsed in two halves: below it, a thread costs
/// about what it saves (docs/performance.md).
pub const SPLIT_AT: usize = 256 * 1024;

/// Where a second parser may start in a file of `SPLIT_AT` bytes or more: past
/// the middle, just after a `}` alone at the start of a line (where a top-level
/// block ends in a formatted file). A guess, found without reading the file:
/// `fast::parse_at` joins the halves only when they meet exactly.
fn middle(text: &str) -> Option<usize> {
    if text.len() < SPLIT_AT {
        return None;
    }
    let bytes = text.as_bytes();
    let half = text.len() / 2;
    (half..bytes.len().saturating_sub(2))
        .find(|&i| {
            bytes[i] == b'\n' && bytes[i + 1] == b'}' && matches!(bytes[i + 2], b'\n' | b'\r')
        })
        .map(|i| i + 2)
}

/// Parses one file with the pest grammar (the reference the fast parser must
/// agree with; the tests compare them).
pub fn parse_with_pest(file: FileId, text: &str, diags: &mut Diagnostics) -> File {
    match StackParser::parse(Rule::file, text) {
        Ok(mut pairs) => {
            let mut cx = Cx { file, diags };
            let Some(root) = pairs.next() else {
                return File::default();
            };
            let entries = root
                .into_inner()
                .filter(|p| p.as_rule() == Rule::entry)
                .map(|p| cx.entry(p))
                .collect();
            File { entries }
        }
        Err(err) => {
            diags.push(syntax_error(file, text, err));
            File::default()
        }
    }
}

fn syntax_error(file: FileId, text: &str, err: pest::error::Error<Rule>) -> Diagnostic {
    let (start, end) = match err.location {
        pest::error::InputLocation::Pos(p) => (p, p),
        pest::error::InputLocation::Span((s, e)) => (s, e),
    };
    // Point at the offending token (or the end of the file), never an empty span.
    let tail = &text[start.min(text.len())..];
    let token_len = tail
        .char_indices()
        .find(|(_, c)| c.is_whitespace())
        .map_or(tail.len(), |(i, _)| i)
        .max(tail.chars().next().map_or(0, char::len_utf8));
    let end = end.max(start + token_len);
    let found = if tail.is_empty() {
        "end of file".to_string()
    } else {
        let token = &tail[..token_len.min(tail.len())];
        match token.char_indices().nth(40) {
            Some((cut, _)) => format!("`{}...`", &token[..cut]),
            None => format!("`{token}`"),
        }
    };
    let expected = match &err.variant {
        pest::error::ErrorVariant::ParsingError { positives, .. } => {
            let mut names: Vec<&str> = positives.iter().filter_map(|r| rule_name(*r)).collect();
            names.sort_unstable();
            names.dedup();
            names
        }
        pest::error::ErrorVariant::CustomError { .. } => Vec::new(),
    };
    let message = if expected.is_empty() {
        format!("unexpected {found}")
    } else {
        format!("expected {}, found {found}", join_or(&expected))
    };
    let span = Span::new(file, start, end.min(text.len()).max(start));
    let mut diag = Diagnostic::error(Code::Syntax, span, message).label("unexpected here");
    if tail.is_empty() {
        if let Some(open) = scan(text).unclosed {
            diag = diag.with_secondary(Span::new(file, open, open + 1), "this `{` is never closed");
        }
    }
    let before = text[..start.min(text.len())].trim_end();
    match hint_for(before, tail) {
        Some(h) => diag.help(h),
        None => diag.help("every entry has the shape `key [label] [: kind] [= value | { ... }]`"),
    }
}

struct Scan {
    /// The offset of the last `{` that no `}` closes.
    unclosed: Option<usize>,
    /// The first `{` or `[` past `MAX_NESTING`.
    too_deep: Option<usize>,
}

/// Brackets outside strings and comments. Bytes, not characters: every byte
/// it looks for is ASCII, and no byte of a multi-byte character is.
fn scan(text: &str) -> Scan {
    let bytes = text.as_bytes();
    let mut open: Vec<(usize, u8)> = Vec::new();
    let mut too_deep = None;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'#' => {
                i = memchr(b'\n', bytes, i).unwrap_or(bytes.len());
            }
            b'"' => {
                i += 1;
                while i < bytes.len() {
                    match bytes[i] {
                        b'\\' => i += 1,
                        b'"' => break,
                        _ => {}
                    }
                    i += 1;
                }
            }
            b'{' | b'[' => {
                open.push((i, b));
                if open.len() > MAX_NESTING && too_deep.is_none() {
                    too_deep = Some(i);
                }
            }
            b'}' | b']' => {
                open.pop();
            }
            _ => {}
        }
        i += 1;
    }
    Scan {
        unclosed: open.iter().rev().find(|(_, c)| *c == b'{').map(|(i, _)| *i),
        too_deep,
    }
}

/// The offset of the first `byte` at or after `from`.
fn memchr(byte: u8, bytes: &[u8], from: usize) -> Option<usize> {
    bytes[from..]
        .iter()
        .position(|&b| b == byte)
        .map(|p| from + p)
}

fn hint_for(before: &str, tail: &str) -> Option<&'static str> {
    if before.ends_with(':') && !tail.starts_with(|c: char| c.is_ascii_alphabetic()) {
        Some("fields are assigned with `=`, not `:`; `:` only names the kind of a service")
    } else if tail.starts_with('\'') {
        Some("strings are written in double quotes: \"...\"")
    } else if tail.starts_with(':') {
        Some("fields are assigned with `=`, not `:`; `:` only names the kind of a service")
    } else if tail.starts_with("//") {
        Some("comments start with `#`")
    } else {
        None
    }
}

fn join_or(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_string(),
        [init @ .., last] => format!("{} or {}", init.join(", "), last),
    }
}

fn rule_name(rule: Rule) -> Option<&'static str> {
    Some(match rule {
        Rule::entry | Rule::key => "an entry",
        Rule::label => "a label",
        Rule::kind_annotation => "`:`",
        Rule::assign => "`=`",
        Rule::body => "`{`",
        Rule::value => "a value",
        Rule::list => "a list",
        Rule::quantity => "a number",
        Rule::boolean => "a boolean",
        Rule::path | Rule::ident => "a name",
        Rule::string => "a string",
        Rule::EOI => "end of file",
        _ => return None,
    })
}

struct Cx<'d> {
    file: FileId,
    diags: &'d mut Diagnostics,
}

impl Cx<'_> {
    fn span(&self, pair: &Pair<'_, Rule>) -> Span {
        let s = pair.as_span();
        Span::new(self.file, s.start(), s.end())
    }

    fn ident(&self, pair: Pair<'_, Rule>) -> Ident {
        Ident {
            name: Name::new(pair.as_str()),
            span: self.span(&pair),
        }
    }

    fn entry(&mut self, pair: Pair<'_, Rule>) -> Entry {
        let mut span = self.span(&pair);
        // The entry ends with its last part: pest's implicit whitespace before
        // an absent optional part (a label, a value) would take the comments
        // and blank lines after the entry into its span.
        if let Some(last) = pair.clone().into_inner().last() {
            span.end = self.span(&last).end;
        }
        let mut key = None;
        let mut label = None;
        let mut kind = None;
        let mut value = EntryValue::None;
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::key => key = Some(self.ident(p)),
                Rule::label => label = p.into_inner().next().map(|p| self.label(p)),
                Rule::kind_annotation => kind = p.into_inner().next().map(|p| self.ident(p)),
                Rule::assign => {
                    if let Some(v) = p.into_inner().next() {
                        value = EntryValue::Assign(self.value(v));
                    }
                }
                Rule::body => {
                    value = EntryValue::Block(
                        p.into_inner()
                            .filter(|p| p.as_rule() == Rule::entry)
                            .map(|p| self.entry(p))
                            .collect(),
                    )
                }
                _ => {}
            }
        }
        Entry {
            key: key.unwrap_or(Ident {
                name: Name::default(),
                span,
            }),
            label: label.map(Box::new),
            kind: kind.map(Box::new),
            value,
            end: span.end,
        }
    }

    fn label(&mut self, pair: Pair<'_, Rule>) -> Label {
        match pair.as_rule() {
            Rule::string => Label::Str(self.template(pair)),
            _ => Label::Ident(self.ident(pair)),
        }
    }

    fn value(&mut self, pair: Pair<'_, Rule>) -> Value {
        let span = self.span(&pair);
        let inner = pair.into_inner().next();
        let kind = match inner {
            Some(p) => match p.as_rule() {
                Rule::string => ValueKind::Str(self.template(p)),
                Rule::quantity => {
                    let text = p.as_str();
                    let split = text
                        .find(|c: char| c.is_ascii_alphabetic())
                        .unwrap_or(text.len());
                    ValueKind::Quantity {
                        number: text[..split].to_string(),
                        unit: text[split..].to_string(),
                    }
                }
                Rule::boolean => ValueKind::Bool(p.as_str() == "true"),
                Rule::list => ValueKind::List(p.into_inner().map(|v| self.value(v)).collect()),
                Rule::path => ValueKind::Path(self.path(p)),
                _ => ValueKind::List(Vec::new()),
            },
            None => ValueKind::List(Vec::new()),
        };
        Value { kind, span }
    }

    fn path(&self, pair: Pair<'_, Rule>) -> Vec<Ident> {
        pair.into_inner().map(|p| self.ident(p)).collect()
    }

    fn template(&mut self, pair: Pair<'_, Rule>) -> Template {
        let span = self.span(&pair);
        let mut parts = PartsBuilder::default();
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::text => parts.text(p.as_str()),
                Rule::escape => match decode_escape(&p.as_str()[1..], self.span(&p)) {
                    Ok(d) => parts.text(d),
                    Err(d) => self.diags.push(d),
                },
                Rule::interp => {
                    let ispan = self.span(&p);
                    if let Some(path) = p.into_inner().next() {
                        parts.interp(self.path(path), ispan);
                    }
                }
                _ => {}
            }
        }
        Template {
            parts: parts.finish(),
            span,
        }
    }
}
