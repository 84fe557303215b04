//! A hand-written parser for the same grammar as `stack.pest`, for speed: it
//! builds the same tree with the same spans, several times faster than pest
//! (which calls a stack guard and queues a token for every rule). It accepts
//! exactly what the grammar accepts; on anything else it gives up (`None`),
//! and `parse` lets pest parse the file again to report the syntax error with
//! pest's expectations. The test suite checks that both parsers agree, on every
//! file of the repository and on thousands of mutations of them.

use rustc_hash::FxHashSet;

use super::tree::*;
use crate::base::Name;
use crate::diag::{Diagnostic, Diagnostics, FileId, Span};

/// Parses a file; `None` when it does not follow the grammar.
pub fn parse(file: FileId, text: &str, diags: &mut Diagnostics) -> Option<File> {
    parse_at(file, text, None, diags)
}

/// Parses a file, in two halves on two threads when `middle` is the offset
/// where a top-level entry ends (the second half's spans are offsets in the
/// whole text, as the first's). The tree and the diagnostics are those of one
/// parse of the whole file: if a half does not parse, or the second half's first
/// entry is not where the first half's parser would have gone on, the file is
/// parsed again whole.
pub fn parse_at(
    file: FileId,
    text: &str,
    middle: Option<usize>,
    diags: &mut Diagnostics,
) -> Option<File> {
    parse_visiting(file, text, middle, diags, &|_: &mut Entry| None::<()>).map(|(tree, _)| tree)
}

/// `parse_at`, calling `visit` on each top-level entry as soon as it is parsed,
/// on the thread that parsed it, and keeping what it returns, in file order.
/// `visit` may change the entry (see `syntax::parse_visiting`). When a half is
/// parsed again, its entries are visited again and the first results dropped.
pub fn parse_visiting<T: Send>(
    file: FileId,
    text: &str,
    middle: Option<usize>,
    diags: &mut Diagnostics,
    visit: &(impl Fn(&mut Entry) -> Option<T> + Sync),
) -> Option<(File, Vec<T>)> {
    let halves = middle
        .filter(|&m| m > 0 && m < text.len() && text.is_char_boundary(m))
        .and_then(|m| {
            let (first, second) = rayon::join(
                || parse_part(file, text, 0, m, visit),
                || {
                    let second = || parse_part(file, text, m, text.len(), visit);
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(second))
                        .ok()
                        .flatten()
                },
            );
            let mut first = first?;
            let second = second?;
            let joined = match second.entries.first() {
                Some(e) => e.span().start as usize == first.next,
                None => first.next == text.len(),
            };
            if !joined {
                return None;
            }
            first.entries.extend(second.entries);
            first.escapes.extend(second.escapes);
            first.visited.extend(second.visited);
            Some(first)
        });
    let parsed = match halves {
        Some(parsed) => parsed,
        None => parse_part(file, text, 0, text.len(), visit)?,
    };
    // Escape diagnostics only once the whole file parsed (pest reports them
    // only then too).
    for d in parsed.escapes {
        diags.push(d);
    }
    Some((
        File {
            entries: parsed.entries,
        },
        parsed.visited,
    ))
}

/// The entries that start in `range` and end by its end, with what `visit`
/// returned and their escape errors; `None` when they do not parse. For a
/// file that does not parse whole: `recover` parses it entry by entry.
pub(super) fn parse_range<T>(
    file: FileId,
    text: &str,
    range: std::ops::Range<usize>,
    visit: &impl Fn(&mut Entry) -> Option<T>,
) -> Option<(Vec<Entry>, Vec<T>, Vec<Diagnostic>)> {
    let part = parse_part(file, text, range.start, range.end, visit)?;
    Some((part.entries, part.visited, part.escapes))
}

/// The entries of a part of a file, and the escape errors in them.
struct Part<T> {
    entries: Vec<Entry>,
    escapes: Vec<Diagnostic>,
    /// What `visit` returned for the entries.
    visited: Vec<T>,
    /// Where the next entry starts (past the part's end).
    next: usize,
}

/// The bytes of a top-level entry, as the vectors of a part's entries are
/// sized up front (a little under a service of the benchmark's workload).
/// Grown by doubling instead, the vectors of a large file left each smaller
/// copy behind in fresh pages that stayed resident to the end of the process
/// (docs/performance.md). A file of smaller entries grows them as before;
/// room for larger ones is never touched.
const BYTES_PER_ENTRY: usize = 400;

/// The entries that start in `start..end`; `None` when one does not parse or
/// does not end by `end`.
fn parse_part<T>(
    file: FileId,
    text: &str,
    start: usize,
    end: usize,
    visit: &impl Fn(&mut Entry) -> Option<T>,
) -> Option<Part<T>> {
    let mut p = Parser {
        src: text.as_bytes(),
        text,
        pos: start,
        file,
        escapes: Vec::new(),
        scratch: Vec::new(),
        depth: 0,
    };
    let room = (end - start) / BYTES_PER_ENTRY;
    let mut entries = Vec::with_capacity(room);
    let mut visited = Vec::with_capacity(room);
    loop {
        p.skip();
        if p.pos >= end {
            break;
        }
        let mut entry = p.entry()?;
        if p.pos > end {
            return None;
        }
        visited.extend(visit(&mut entry));
        entries.push(entry);
    }
    Some(Part {
        entries,
        escapes: p.escapes,
        visited,
        next: p.pos,
    })
}

struct Parser<'t> {
    src: &'t [u8],
    text: &'t str,
    pos: usize,
    file: FileId,
    escapes: Vec<Diagnostic>,
    /// The entries of the blocks being parsed, innermost last: each block's
    /// entries are moved out at its `}` into a vector of exactly their number
    /// (one allocation per block, no regrowth of 200-byte entries).
    scratch: Vec<Entry>,
    /// The blocks and lists open: past `MAX_NESTING` the parser gives up (the
    /// caller reports it), as recursion that deep could overflow the stack.
    depth: usize,
}

/// What each byte can be in a name: one lookup per byte instead of four
/// comparisons (names are most of a file's bytes).
const START: u8 = 1;
const CHAR: u8 = 2;
const CLASS: [u8; 256] = {
    let mut class = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        if c.is_ascii_alphabetic() || c == b'_' {
            class[b] = START | CHAR;
        } else if c.is_ascii_digit() || c == b'-' {
            class[b] = CHAR;
        }
        b += 1;
    }
    class
};

fn ident_start(b: u8) -> bool {
    CLASS[b as usize] & START != 0
}

fn ident_char(b: u8) -> bool {
    CLASS[b as usize] & CHAR != 0
}

/// The keys and choices a file repeats in every service, as static text: a
/// `Name` of one of them points at it instead of copying it. Copying a short
/// text into a `Name`'s inline buffer stalls the processor (the copy is read
/// back in wider loads than it was written in, which store forwarding cannot
/// serve; docs/performance.md). The words are the schema's
/// (`schema::words`); any other only costs time, as it is copied.
pub(crate) fn word(text: &str) -> Option<&'static str> {
    static WORDS: std::sync::LazyLock<FxHashSet<&'static str>> =
        std::sync::LazyLock::new(|| crate::schema::words().collect());
    WORDS.get(text).copied()
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    fn span(&self, start: usize, end: usize) -> Span {
        Span::new(self.file, start, end)
    }

    /// Whitespace and comments (the grammar's implicit WHITESPACE and COMMENT).
    fn skip(&mut self) {
        while let Some(&b) = self.src.get(self.pos) {
            match b {
                b' ' | b'\t' | b'\r' | b'\n' => self.pos += 1,
                b'#' => {
                    let rest = &self.src[self.pos..];
                    self.pos += rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
                }
                _ => break,
            }
        }
    }

    fn ident(&mut self) -> Option<Ident> {
        let start = self.pos;
        if !ident_start(self.peek()?) {
            return None;
        }
        let rest = &self.src[self.pos + 1..];
        self.pos += 1 + rest
            .iter()
            .position(|&b| !ident_char(b))
            .unwrap_or(rest.len());
        let text = &self.text[start..self.pos];
        Some(Ident {
            name: word(text).map_or_else(|| Name::new(text), Name::new_static),
            span: self.span(start, self.pos),
        })
    }

    fn entry(&mut self) -> Option<Entry> {
        let key = self.ident()?;
        let mut end = key.span.end as usize;
        // Each optional part is tried after whitespace; an absent one leaves
        // the position where the entry ended.
        let mut label = None;
        let mut kind = None;
        let mut value = EntryValue::None;
        let save = self.pos;
        self.skip();
        match self.peek() {
            Some(b) if ident_start(b) => {
                let i = self.ident()?;
                end = i.span.end as usize;
                label = Some(Label::Ident(i));
            }
            Some(b'"') => {
                let t = self.string()?;
                end = t.span.end as usize;
                label = Some(Label::Str(t));
            }
            _ => self.pos = save,
        }
        let save = self.pos;
        self.skip();
        if self.peek() == Some(b':') {
            self.pos += 1;
            self.skip();
            let k = self.ident()?;
            end = k.span.end as usize;
            kind = Some(k);
        } else {
            self.pos = save;
        }
        let save = self.pos;
        self.skip();
        match self.peek() {
            Some(b'=') => {
                self.pos += 1;
                self.skip();
                let v = self.value()?;
                end = v.span.end as usize;
                value = EntryValue::Assign(v);
            }
            Some(b'{') => {
                self.pos += 1;
                self.open()?;
                let base = self.scratch.len();
                loop {
                    self.skip();
                    match self.peek() {
                        Some(b'}') => {
                            self.pos += 1;
                            break;
                        }
                        Some(_) => {
                            let entry = self.entry()?;
                            self.scratch.push(entry);
                        }
                        None => return None,
                    }
                }
                self.depth -= 1;
                end = self.pos;
                value = EntryValue::Block(self.scratch.drain(base..).collect());
            }
            _ => self.pos = save,
        }
        Some(Entry {
            key,
            label: label.map(Box::new),
            kind: kind.map(Box::new),
            value,
            end: end as u32,
        })
    }

    /// A block or a list opens; `None` past `MAX_NESTING`.
    fn open(&mut self) -> Option<()> {
        self.depth += 1;
        (self.depth <= MAX_NESTING).then_some(())
    }

    fn value(&mut self) -> Option<Value> {
        let start = self.pos;
        let kind = match self.peek()? {
            b'"' => ValueKind::Str(self.string()?),
            b if b.is_ascii_digit() => self.quantity()?,
            b'[' => {
                self.pos += 1;
                self.open()?;
                let mut items = Vec::new();
                self.skip();
                if self.peek() != Some(b']') {
                    items.push(self.value()?);
                    loop {
                        self.skip();
                        match self.peek()? {
                            b',' => {
                                self.pos += 1;
                                self.skip();
                                if self.peek() == Some(b']') {
                                    break;
                                }
                                items.push(self.value()?);
                            }
                            b']' => break,
                            _ => return None,
                        }
                    }
                }
                self.pos += 1;
                self.depth -= 1;
                ValueKind::List(items)
            }
            b if ident_start(b) => {
                for (word, value) in [("true", true), ("false", false)] {
                    let end = self.pos + word.len();
                    if self.text[self.pos..].starts_with(word)
                        && !self.src.get(end).copied().is_some_and(ident_char)
                    {
                        self.pos = end;
                        return Some(Value {
                            kind: ValueKind::Bool(value),
                            span: self.span(start, end),
                        });
                    }
                }
                ValueKind::Path(self.path()?)
            }
            _ => return None,
        };
        Some(Value {
            kind,
            span: self.span(start, self.pos),
        })
    }

    /// `ident ("." ident)*`, no whitespace inside.
    fn path(&mut self) -> Option<Vec<Ident>> {
        // Room for `service.attribute`, the common reference.
        let mut path = Vec::with_capacity(2);
        path.push(self.ident()?);
        while self.peek() == Some(b'.')
            && self.src.get(self.pos + 1).copied().is_some_and(ident_start)
        {
            self.pos += 1;
            path.push(self.ident()?);
        }
        Some(path)
    }

    /// `digits ("." digits)? letters?`, not followed by a name's character.
    fn quantity(&mut self) -> Option<ValueKind> {
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
        if self.peek() == Some(b'.') && self.src.get(self.pos + 1).is_some_and(u8::is_ascii_digit) {
            self.pos += 1;
            while self.peek().is_some_and(|b| b.is_ascii_digit()) {
                self.pos += 1;
            }
        }
        let number_end = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii_alphabetic()) {
            self.pos += 1;
        }
        if self.peek().is_some_and(ident_char) {
            return None;
        }
        Some(ValueKind::Quantity {
            number: self.text[start..number_end].to_string(),
            unit: self.text[number_end..self.pos].to_string(),
        })
    }

    /// A string: text, escapes and `${path}` interpolations (whitespace and
    /// comments allowed around the path), on one line.
    fn string(&mut self) -> Option<Template> {
        let start = self.pos;
        self.pos += 1;
        // Most strings are text alone: one part, in a vector of one.
        let body = &self.src[self.pos..];
        if let Some(n) = body
            .iter()
            .position(|&b| matches!(b, b'"' | b'\\' | b'\n' | b'$'))
            .filter(|&n| body[n] == b'"')
        {
            let text = &self.text[self.pos..self.pos + n];
            self.pos += n + 1;
            let parts = if text.is_empty() {
                Vec::new()
            } else {
                vec![TemplatePart::Text(Name::new(text))]
            };
            return Some(Template {
                parts,
                span: self.span(start, self.pos),
            });
        }
        let mut parts = PartsBuilder::default();
        loop {
            match self.peek()? {
                b'"' => {
                    self.pos += 1;
                    break;
                }
                b'\n' => return None,
                b'\\' => {
                    let at = self.pos;
                    let c = self.text[at + 1..].chars().next()?;
                    self.pos = at + 1 + c.len_utf8();
                    let text = &self.text[at + 1..self.pos];
                    match decode_escape(text, self.span(at, self.pos)) {
                        Ok(d) => parts.text(d),
                        Err(d) => self.escapes.push(*d),
                    }
                }
                b'$' if self.src.get(self.pos + 1) == Some(&b'{') => {
                    let at = self.pos;
                    self.pos += 2;
                    self.skip();
                    let path = self.path()?;
                    self.skip();
                    if self.peek() != Some(b'}') {
                        return None;
                    }
                    self.pos += 1;
                    parts.interp(path, self.span(at, self.pos));
                }
                _ => {
                    let from = self.pos;
                    while let Some(b) = self.peek() {
                        if b == b'"'
                            || b == b'\\'
                            || b == b'\n'
                            || (b == b'$' && self.src.get(self.pos + 1) == Some(&b'{'))
                        {
                            break;
                        }
                        self.pos += 1;
                    }
                    parts.text(&self.text[from..self.pos]);
                }
            }
        }
        Some(Template {
            parts: parts.finish(),
            span: self.span(start, self.pos),
        })
    }
}
