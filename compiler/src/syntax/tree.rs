//! The untyped syntax tree: entries, values and string templates, each with a span.

use crate::base::Name;
use crate::diag::{Code, Diagnostic, Span};

/// An identifier with its place in the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ident {
    pub name: Name,
    pub span: Span,
}

/// `key [label] [: kind] [= value | { entries }]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: Ident,
    /// Boxed, as the kind: most entries have neither, and a file of thousands of
    /// services has hundreds of thousands of entries.
    pub label: Option<Box<Label>>,
    pub kind: Option<Box<Ident>>,
    pub value: EntryValue,
    /// Where the whole entry ends (it starts with its key).
    pub end: u32,
}

// An entry is moved several times while it is parsed: up to 128 bytes the
// compiler moves it inline, past that through a call to `memcpy`
// (docs/performance.md): this keeps it at 128 bytes or fewer.
#[cfg(target_pointer_width = "64")]
const _: () = assert!(std::mem::size_of::<Entry>() <= 128);

impl Entry {
    /// The whole entry.
    pub fn span(&self) -> Span {
        Span {
            end: self.end,
            ..self.key.span
        }
    }

    /// The label when it is a name (`service api`, `port http`), not a string.
    pub fn label_name(&self) -> Option<&str> {
        match self.label.as_deref() {
            Some(Label::Ident(i)) => Some(&i.name),
            Some(Label::Str(_)) | None => None,
        }
    }
}

/// The label after a key: `port http`, `mount "./conf"`.
#[derive(Debug, Clone, PartialEq)]
pub enum Label {
    Ident(Ident),
    Str(Template),
}

impl Label {
    pub fn span(&self) -> Span {
        match self {
            Label::Ident(i) => i.span,
            Label::Str(t) => t.span,
        }
    }

    /// The label as text: the identifier, or the string's literal text (a string
    /// label with interpolations is rejected where it is used).
    pub fn text(&self) -> String {
        match self {
            Label::Ident(i) => i.name.to_string(),
            Label::Str(t) => t.literal_text(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum EntryValue {
    /// A bare declaration: `secret jwt_secret`.
    None,
    Assign(Value),
    Block(Vec<Entry>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Value {
    pub kind: ValueKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ValueKind {
    Str(Template),
    /// A number with an optional unit, kept as written: `3`, `1.5`, `500m`, `30s`,
    /// `2Gi`. Its meaning depends on the field (CPU, duration, size).
    Quantity {
        number: String,
        unit: String,
    },
    Bool(bool),
    List(Vec<Value>),
    /// A dotted name: a reference (`db.url`, `secret.jwt`) or a choice (`stateful`).
    Path(Vec<Ident>),
}

impl ValueKind {
    /// What the value is, for "expected X, found Y" messages.
    pub fn describe(&self) -> &'static str {
        match self {
            ValueKind::Str(_) => "a string",
            ValueKind::Quantity { unit, .. } if unit.is_empty() => "a number",
            ValueKind::Quantity { .. } => "a quantity with a unit",
            ValueKind::Bool(_) => "a boolean",
            ValueKind::List(_) => "a list",
            ValueKind::Path(p) if p.len() == 1 => "a name",
            ValueKind::Path(_) => "a reference",
        }
    }
}

/// A string literal: literal text and `${reference}` interpolations.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub parts: Vec<TemplatePart>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TemplatePart {
    Text(Name),
    Interp(Vec<Ident>, Span),
}

/// The deepest blocks and lists nest (a .stack file nests a few levels:
/// service, health, liveness); past it a file is refused before it is
/// parsed, so that no input can exhaust the stack.
pub const MAX_NESTING: usize = 64;

/// What an escape sequence stands for: the character after `\\`, decoded, or
/// the diagnostic for one the language does not know (both parsers decode
/// escapes here).
pub(crate) fn decode_escape(c: &str, span: Span) -> Result<&'static str, Box<Diagnostic>> {
    match c {
        "\"" => Ok("\""),
        "\\" => Ok("\\"),
        "n" => Ok("\n"),
        "t" => Ok("\t"),
        "r" => Ok("\r"),
        "$" => Ok("$"),
        _ => Err(Box::new(
            Diagnostic::error(
                Code::BadEscape,
                span,
                format!("unknown escape sequence `\\{c}`"),
            )
            .label("not an escape")
            .help(r#"the escapes are \" \\ \n \t \r and \$ (a literal `$` before `{`)"#),
        )),
    }
}

/// A string's parts as a parser reads them (both parsers build strings this
/// way): text is gathered in one buffer until an interpolation or the end, so
/// that a string of many escapes is built in linear time.
#[derive(Default)]
pub(crate) struct PartsBuilder {
    parts: Vec<TemplatePart>,
    text: String,
}

impl PartsBuilder {
    /// Text, joined to the text before it.
    pub(crate) fn text(&mut self, s: &str) {
        self.text.push_str(s);
    }

    pub(crate) fn interp(&mut self, path: Vec<Ident>, span: Span) {
        self.flush();
        self.parts.push(TemplatePart::Interp(path, span));
    }

    fn flush(&mut self) {
        if !self.text.is_empty() {
            self.parts.push(TemplatePart::Text(Name::new(std::mem::take(
                &mut self.text,
            ))));
        }
    }

    pub(crate) fn finish(mut self) -> Vec<TemplatePart> {
        self.flush();
        self.parts
    }
}

impl Template {
    /// The text when there are no interpolations.
    /// `as_literal` as a `Name`: a string of one piece of text (most are)
    /// shares that text's `Name` rather than copying it.
    pub fn as_literal_name(&self) -> Option<Name> {
        match self.parts.as_slice() {
            [] => Some(Name::default()),
            [TemplatePart::Text(t)] => Some(t.clone()),
            _ => self.as_literal().map(Name::from),
        }
    }

    pub fn as_literal(&self) -> Option<String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                TemplatePart::Text(t) => out.push_str(t),
                TemplatePart::Interp(..) => return None,
            }
        }
        Some(out)
    }

    /// The text with interpolations written back as `${a.b}`.
    pub fn literal_text(&self) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                TemplatePart::Text(t) => out.push_str(t),
                TemplatePart::Interp(path, _) => {
                    out.push_str("${");
                    out.push_str(&path_text(path));
                    out.push('}');
                }
            }
        }
        out
    }
}

/// `a.b.c`
pub fn path_text(path: &[Ident]) -> String {
    let mut out = String::new();
    for (i, seg) in path.iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        out.push_str(&seg.name);
    }
    out
}

/// A parsed file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct File {
    pub entries: Vec<Entry>,
}
