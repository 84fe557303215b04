//! pest pairs to the syntax tree, one function per grammar rule.

use pest::iterators::Pair;
use pest::Parser as _;

use super::recover::{scan, syntax_error};
use super::rules::{Rule, StackParser};
use super::tree::*;
use crate::base::Name;
use crate::diag::{Code, Diagnostic, Diagnostics, FileId, Span};

/// Parses one file. A file with syntax errors yields the top-level entries that
/// parse and one diagnostic per entry that does not (`recover`); string
/// escapes are checked here too, all at once.
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
    super::recover::recover(file, text, diags, visit)
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
            diags.push(syntax_error(file, text, 0..text.len(), err));
            File::default()
        }
    }
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
                    Err(d) => self.diags.push(*d),
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
