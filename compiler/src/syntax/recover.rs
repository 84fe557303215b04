//! A file that does not parse: its syntax errors, and the entries around them.
//!
//! The file is cut where a line starts with a top-level key (`service`,
//! `topology`, ...: no string spans lines, so such a line is an entry's start
//! in any file the formatter wrote) and each part is parsed on its own. The
//! parts that parse give their entries, so that an editor keeps its outline,
//! hover and navigation while one block is half typed; each part that does not
//! gives one error, pest's, with the parts' own words ("not closed before the
//! next entry") where the part ends before its block does. Every part is read
//! twice at most (the fast parser, then pest on a part it rejects): linear.

use super::rules::{pest_error, Rule};
use super::tree::{Entry, File, MAX_NESTING};
use crate::diag::{Code, Diagnostic, Diagnostics, FileId, Span};

/// The entries of the parts that parse, in file order, with what `visit`
/// returned for them; one syntax error per part that does not.
pub(super) fn recover<T: Send>(
    file: FileId,
    text: &str,
    diags: &mut Diagnostics,
    visit: &(impl Fn(&mut Entry) -> Option<T> + Sync),
) -> (File, Vec<T>) {
    let mut entries = Vec::new();
    let mut visited = Vec::new();
    let mut errors = 0;
    for range in parts(text) {
        match super::fast::parse_range(file, text, range.clone(), visit) {
            Some((e, v, escapes)) => {
                entries.extend(e);
                visited.extend(v);
                escapes.into_iter().for_each(|d| diags.push(d));
            }
            None => {
                errors += 1;
                diags.push(part_error(file, text, range));
            }
        }
    }
    if errors == 0 {
        // Parts that parse one by one make a file that parses: only a file the
        // fast parser gives up on for another reason gets here. Pest says why.
        if let Some(err) = pest_error(text) {
            diags.push(syntax_error(file, text, 0..text.len(), err));
            return (File::default(), Vec::new());
        }
    }
    (File { entries }, visited)
}

/// The parts of the text: from each line that starts with a top-level key to
/// the next one (and what comes before the first).
fn parts(text: &str) -> Vec<std::ops::Range<usize>> {
    let mut starts: Vec<usize> = std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .filter(|&i| starts_entry(&text[i..]))
        .collect();
    if starts.first() != Some(&0) {
        starts.insert(0, 0);
    }
    let ends = starts.iter().skip(1).copied().chain([text.len()]);
    starts.iter().zip(ends).map(|(&s, e)| s..e).collect()
}

/// Whether a line starts with a top-level key followed by a space, a tab or a
/// `{` (the keys of the schema's `TOP` block).
fn starts_entry(line: &str) -> bool {
    crate::schema::TOP.fields.iter().any(|f| {
        line.strip_prefix(f.name)
            .is_some_and(|rest| rest.starts_with([' ', '\t', '{']))
    })
}

/// The error of one part that does not parse: pest's, on the part alone.
fn part_error(file: FileId, text: &str, range: std::ops::Range<usize>) -> Diagnostic {
    match pest_error(&text[range.clone()]) {
        Some(err) => syntax_error(file, text, range, err),
        // The fast parser and pest accept the same texts (tests/parser.rs).
        None => Diagnostic::error(
            Code::Syntax,
            Span::new(file, range.start, range.start + 1),
            "this entry cannot be read",
        )
        .label("here"),
    }
}

/// The diagnostic of pest's `err` on the part `range` of `text` (the whole
/// text, or a part `recover` cut: pest's offsets are the part's).
pub(super) fn syntax_error(
    file: FileId,
    text: &str,
    range: std::ops::Range<usize>,
    err: pest::error::Error<Rule>,
) -> Diagnostic {
    let (start, end) = match err.location {
        pest::error::InputLocation::Pos(p) => (p, p),
        pest::error::InputLocation::Span((s, e)) => (s, e),
    };
    let (start, end) = (range.start + start, range.start + end);
    let part = &text[..range.end];
    let tail = &part[start.min(part.len())..];
    let expected = expected_names(&err);
    let unclosed = scan(&text[range.clone()])
        .unclosed
        .map(|open| Span::new(file, range.start + open, range.start + open + 1));
    // A part that ends before its block does: what comes next is another
    // entry, not the end of the file.
    let next_entry =
        (range.end < text.len() && tail.is_empty()).then(|| next_word(file, text, range.end));
    if let (Some(next), Some(open), ["an entry"]) = (next_entry, unclosed, expected.as_slice()) {
        return Diagnostic::error(
            Code::Syntax,
            open,
            "this `{` is not closed before the next entry",
        )
        .label("never closed")
        .with_secondary(next, "the next entry starts here")
        .help("add the `}` where the block ends");
    }
    let (found, span) = match next_entry {
        Some(next) => (format!("the next entry, `{}`", next_text(text, next)), next),
        None => found_token(file, tail, start, end),
    };
    let message = if expected.is_empty() {
        format!("unexpected {found}")
    } else {
        format!("expected {}, found {found}", join_or(&expected))
    };
    let mut diag = Diagnostic::error(Code::Syntax, span, message).label("unexpected here");
    if let Some(open) = unclosed.filter(|_| tail.is_empty() && next_entry.is_none()) {
        diag = diag.with_secondary(open, "this `{` is never closed");
    }
    let before = text[..start.min(part.len())].trim_end();
    let diag = match hint_for(before, tail) {
        Some(h) => diag.help(h),
        None => diag.help("every entry has the shape `key [label] [: kind] [= value | { ... }]`"),
    };
    match single_quoted(tail) {
        Some(inner) => diag.fix_replace(
            "Write it in double quotes",
            Span::new(file, start, start + inner.len() + 2),
            format!("\"{inner}\""),
        ),
        None => diag,
    }
}

/// The text of a string written in single quotes at the start of `tail`, on
/// one line, when double quotes around it mean the same (no `"`, `\` or `$`).
fn single_quoted(tail: &str) -> Option<&str> {
    let rest = tail.strip_prefix('\'')?;
    let inner = &rest[..rest.find('\'')?];
    (!inner.contains(['"', '\\', '$', '\n'])).then_some(inner)
}

/// What pest expected, in words, each once.
fn expected_names(err: &pest::error::Error<Rule>) -> Vec<&'static str> {
    match &err.variant {
        pest::error::ErrorVariant::ParsingError { positives, .. } => {
            let mut names: Vec<&str> = positives.iter().filter_map(|r| rule_name(*r)).collect();
            names.sort_unstable();
            names.dedup();
            names
        }
        pest::error::ErrorVariant::CustomError { .. } => Vec::new(),
    }
}

/// The token pest stopped at (`tail` starts at `start`), in words, and its
/// span: never empty, and the end of the file when nothing is left.
fn found_token(file: FileId, tail: &str, start: usize, end: usize) -> (String, Span) {
    let token_len = tail
        .char_indices()
        .find(|(_, c)| c.is_whitespace())
        .map_or(tail.len(), |(i, _)| i)
        .max(tail.chars().next().map_or(0, char::len_utf8));
    let end = end
        .max(start + token_len)
        .min(start + tail.len())
        .max(start);
    let found = if tail.is_empty() {
        "end of file".to_string()
    } else {
        let token = &tail[..token_len.min(tail.len())];
        match token.char_indices().nth(40) {
            Some((cut, _)) => format!("`{}...`", &token[..cut]),
            None => format!("`{token}`"),
        }
    };
    (found, Span::new(file, start, end))
}

fn next_text(text: &str, span: Span) -> &str {
    &text[span.start as usize..span.end as usize]
}

/// The span of the key that starts at `at`.
fn next_word(file: FileId, text: &str, at: usize) -> Span {
    let len = text[at..]
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .unwrap_or(text.len() - at);
    Span::new(file, at, at + len.max(1))
}

pub(super) struct Scan {
    /// The offset of the last `{` that no `}` closes.
    pub unclosed: Option<usize>,
    /// The first `{` or `[` past `MAX_NESTING`.
    pub too_deep: Option<usize>,
}

/// Brackets outside strings and comments. Bytes, not characters: every byte
/// it looks for is ASCII, and no byte of a multi-byte character is.
pub(super) fn scan(text: &str) -> Scan {
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
