//! YAML text from typed structs: a `serde::Serializer` that writes block-style
//! YAML straight into a `String` (no intermediate tree of values: the workload
//! writes tens of thousands of documents).
//!
//! It writes a string plain only when it reads back as the same string in YAML
//! 1.1 and 1.2 alike, and double-quotes it otherwise: YAML 1.2 emitters write
//! plain scalars that YAML 1.1 readers (PyYAML, used by docker-compose v1 and
//! Patroni) read differently (`22:22` becomes the integer 1342, `on`/`yes`
//! become booleans, `1_000` an integer). Layout: two-space indent, sequences
//! indented under their key, the first key of a mapping in a sequence on the
//! dash line, empty collections as `{}` and `[]`, multi-line strings as literal
//! blocks where that gives back the same string.

use std::fmt::{self, Write as _};

use serde::ser::{self, Serialize};

/// Serializes a value as a YAML document (block style, two-space indent).
pub fn to_string<T: Serialize + ?Sized>(value: &T) -> Result<String, String> {
    let mut out = String::with_capacity(1024);
    append(&mut out, value)?;
    Ok(out)
}

/// Writes a value as a YAML document at the end of `out` (after a header,
/// without copying the document).
pub fn append<T: Serialize + ?Sized>(out: &mut String, value: &T) -> Result<(), String> {
    value
        .serialize(Emitter { out, at: At::Top })
        .map_err(|e| e.0)
}

#[derive(Debug)]
pub struct Error(String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl ser::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Error {
        Error(msg.to_string())
    }
}

/// Where a value is written.
#[derive(Clone, Copy)]
enum At {
    /// The document itself: a collection starts at column 0.
    Top,
    /// After `key:` of a mapping whose keys are at `level`.
    Value(usize),
    /// After the `-` of a sequence item at `level`.
    Item(usize),
    /// A mapping's key: a scalar, on the line of its `:`.
    Key,
}

impl At {
    /// The column of the entries of a collection written here.
    fn child_level(self) -> usize {
        match self {
            At::Top | At::Key => 0,
            At::Value(level) | At::Item(level) => level + 2,
        }
    }
}

fn indent(out: &mut String, n: usize) {
    for _ in 0..n {
        out.push(' ');
    }
}

struct Emitter<'o> {
    out: &'o mut String,
    at: At,
}

impl<'o> Emitter<'o> {
    /// A scalar written here, already formatted by `write`.
    fn scalar(self, write: impl FnOnce(&mut String)) -> Result<(), Error> {
        if matches!(self.at, At::Value(_) | At::Item(_)) {
            self.out.push(' ');
        }
        write(self.out);
        if !matches!(self.at, At::Key) {
            self.out.push('\n');
        }
        Ok(())
    }

    fn string(self, s: &str) -> Result<(), Error> {
        match self.at {
            At::Value(level) | At::Item(level) if literal_block_ok(s) => {
                write_literal(self.out, s, level + 2);
                Ok(())
            }
            _ => self.scalar(|out| write_string(out, s)),
        }
    }

    fn display(self, v: impl fmt::Display) -> Result<(), Error> {
        self.scalar(|out| {
            let _ = write!(out, "{v}");
        })
    }

    fn collection(self) -> Result<Collection<'o>, Error> {
        if matches!(self.at, At::Key) {
            return Err(unsupported("collections as keys"));
        }
        Ok(Collection {
            level: self.at.child_level(),
            at: self.at,
            out: self.out,
            count: 0,
        })
    }
}

/// A mapping or a sequence being written: nothing is written before its first
/// entry, which decides the layout (an empty one is `{}` or `[]`).
struct Collection<'o> {
    out: &'o mut String,
    at: At,
    level: usize,
    count: usize,
}

impl Collection<'_> {
    /// Starts an entry: the line and indent of its key.
    fn entry(&mut self) {
        match (self.count, self.at) {
            (0, At::Item(_)) => self.out.push(' '),
            (0, At::Value(_)) => {
                self.out.push('\n');
                indent(self.out, self.level);
            }
            _ => indent(self.out, self.level),
        }
        self.count += 1;
    }

    /// A mapping's key: any scalar.
    fn key(&mut self, key: &(impl Serialize + ?Sized)) -> Result<(), Error> {
        self.entry();
        key.serialize(Emitter {
            out: self.out,
            at: At::Key,
        })?;
        self.out.push(':');
        Ok(())
    }

    /// A struct's field name.
    fn field(&mut self, name: &str) {
        self.entry();
        write_string(self.out, name);
        self.out.push(':');
    }

    fn value(&mut self, value: &(impl Serialize + ?Sized)) -> Result<(), Error> {
        value.serialize(Emitter {
            out: self.out,
            at: At::Value(self.level),
        })
    }

    fn item(&mut self, value: &(impl Serialize + ?Sized)) -> Result<(), Error> {
        if self.count == 0 && !matches!(self.at, At::Top) {
            self.out.push('\n');
        }
        self.count += 1;
        indent(self.out, self.level);
        self.out.push('-');
        value.serialize(Emitter {
            out: self.out,
            at: At::Item(self.level),
        })
    }

    fn end(self, empty: &str) -> Result<(), Error> {
        if self.count == 0 {
            if !matches!(self.at, At::Top) {
                self.out.push(' ');
            }
            self.out.push_str(empty);
            self.out.push('\n');
        }
        Ok(())
    }
}

/// The integer methods of a serializer with a `display` method: integers are
/// written as their decimal text.
macro_rules! integers_as_text {
    () => {
        integers_as_text!(serialize_i8: i8, serialize_i16: i16, serialize_i32: i32, serialize_i64: i64);
        integers_as_text!(serialize_u8: u8, serialize_u16: u16, serialize_u32: u32, serialize_u64: u64);
    };
    ($($method:ident: $ty:ty),*) => {
        $(
            fn $method(self, v: $ty) -> Result<(), Error> {
                self.display(v)
            }
        )*
    };
}

fn unsupported(what: &str) -> Error {
    Error(format!("YAML output does not support {what}"))
}

impl<'o> ser::Serializer for Emitter<'o> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Collection<'o>;
    type SerializeTuple = Collection<'o>;
    type SerializeTupleStruct = Collection<'o>;
    type SerializeTupleVariant = ser::Impossible<(), Error>;
    type SerializeMap = Collection<'o>;
    type SerializeStruct = Collection<'o>;
    type SerializeStructVariant = ser::Impossible<(), Error>;

    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        self.scalar(|out| out.push_str(if v { "true" } else { "false" }))
    }
    integers_as_text!();
    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        self.serialize_f64(f64::from(v))
    }
    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        let text = if v.is_nan() {
            ".nan".to_string()
        } else if v.is_infinite() {
            if v > 0.0 { ".inf" } else { "-.inf" }.to_string()
        } else if v.fract() == 0.0 && v.abs() < 1e15 {
            format!("{v:.1}")
        } else {
            v.to_string()
        };
        self.scalar(|out| out.push_str(&text))
    }
    fn serialize_char(self, v: char) -> Result<(), Error> {
        self.string(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_str(self, v: &str) -> Result<(), Error> {
        self.string(v)
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<(), Error> {
        Err(unsupported("bytes"))
    }
    fn serialize_none(self) -> Result<(), Error> {
        self.scalar(|out| out.push_str("null"))
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Error> {
        self.serialize_none()
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Error> {
        self.serialize_none()
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), Error> {
        self.string(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), Error> {
        Err(unsupported(
            "enum variants with data (use `#[serde(untagged)]`)",
        ))
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Collection<'o>, Error> {
        self.collection()
    }
    fn serialize_tuple(self, _: usize) -> Result<Collection<'o>, Error> {
        self.collection()
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Collection<'o>, Error> {
        self.collection()
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Error> {
        Err(unsupported(
            "enum variants with data (use `#[serde(untagged)]`)",
        ))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Collection<'o>, Error> {
        self.collection()
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Collection<'o>, Error> {
        self.collection()
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Error> {
        Err(unsupported(
            "enum variants with data (use `#[serde(untagged)]`)",
        ))
    }
}

/// Sequences, tuples and tuple structs are all YAML sequences.
macro_rules! sequence {
    ($($trait:ident::$method:ident),*) => {
        $(
            impl ser::$trait for Collection<'_> {
                type Ok = ();
                type Error = Error;
                fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
                    self.item(value)
                }
                fn end(self) -> Result<(), Error> {
                    Collection::end(self, "[]")
                }
            }
        )*
    };
}

sequence!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field
);

impl ser::SerializeMap for Collection<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        self.key(key)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        Collection::value(self, value)
    }
    fn end(self) -> Result<(), Error> {
        Collection::end(self, "{}")
    }
}

impl ser::SerializeStruct for Collection<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.field(key);
        Collection::value(self, value)
    }
    fn end(self) -> Result<(), Error> {
        Collection::end(self, "{}")
    }
}

/// A multi-line string reads best as a literal block (`|`): scripts and config
/// files in a ConfigMap. Only when the block gives back exactly the string.
fn literal_block_ok(s: &str) -> bool {
    s.contains('\n')
        && !s.starts_with([' ', '\t', '\n'])
        && !s.ends_with("\n\n")
        && s.chars().all(|c| c == '\n' || c == '\t' || !c.is_control())
        && s.split('\n')
            .all(|line| line.is_empty() || !line.trim().is_empty())
}

fn write_literal(out: &mut String, s: &str, indent_by: usize) {
    let (body, chomp) = match s.strip_suffix('\n') {
        Some(body) => (body, ""),
        None => (s, "-"),
    };
    out.push_str(" |");
    out.push_str(chomp);
    out.push('\n');
    for line in body.split('\n') {
        if !line.is_empty() {
            indent(out, indent_by);
            out.push_str(line);
        }
        out.push('\n');
    }
}

/// Strings that YAML 1.1 or 1.2 read as something else when plain.
const RESERVED: &[&str] = &["y", "n", "yes", "no", "on", "off", "true", "false", "null"];

pub fn is_plain_safe(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    (first.is_ascii_alphabetic() || first == '/')
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.' | b'/'))
        && !RESERVED.iter().any(|r| r.eq_ignore_ascii_case(s))
}

fn write_string(out: &mut String, s: &str) {
    if is_plain_safe(s) {
        out.push_str(s);
        return;
    }
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use indexmap::IndexMap;

    #[test]
    fn multi_line_strings_round_trip() {
        let mut m = IndexMap::new();
        for (i, s) in [
            "#!/bin/sh\nset -eu\n  indented\nend\n",
            "no newline at the end\nsecond",
            "blank\n\nline\n",
            " leading space\nx\n",
            "two trailing\n\n",
            "spaces only\n   \nx",
            "tab\tinside\nok\n",
        ]
        .iter()
        .enumerate()
        {
            m.insert(format!("k{i}"), s.to_string());
        }
        let text = to_string(&m).unwrap_or_default();
        let back: IndexMap<String, String> = serde_norway::from_str(&text).unwrap_or_default();
        assert_eq!(back, m, "{text}");
        assert!(text.contains("k0: |\n  #!/bin/sh"));
        assert!(text.contains("k1: |-\n"));
    }

    #[test]
    fn nested_collections_keep_their_meaning_and_layout() {
        #[derive(serde::Serialize)]
        struct Doc {
            empty_map: IndexMap<String, u32>,
            empty_list: Vec<u32>,
            none: Option<u32>,
            lists: Vec<Vec<u32>>,
            items: Vec<IndexMap<u32, Vec<String>>>,
            script: Vec<String>,
        }
        let mut item = IndexMap::new();
        item.insert(1, vec!["a".to_string(), "on".to_string()]);
        item.insert(2, Vec::new());
        let doc = Doc {
            empty_map: IndexMap::new(),
            empty_list: Vec::new(),
            none: None,
            lists: vec![vec![1, 2], Vec::new()],
            items: vec![item, IndexMap::new()],
            script: vec!["echo a\necho b\n".to_string()],
        };
        let text = to_string(&doc).unwrap_or_default();
        assert_eq!(
            text,
            "empty_map: {}\nempty_list: []\nnone: null\nlists:\n  -\n    - 1\n    - 2\n  - []\n\
             items:\n  - 1:\n      - a\n      - \"on\"\n    2: []\n  - {}\n\
             script:\n  - |\n    echo a\n    echo b\n"
        );
        let back: serde_norway::Value = serde_norway::from_str(&text).unwrap_or_default();
        let expected = serde_norway::to_value(&doc).unwrap_or_default();
        assert_eq!(back, expected, "{text}");
        assert!(to_string(&vec![(IndexMap::<Vec<u32>, u32>::from([(vec![1], 1)]))]).is_err());
    }

    #[test]
    fn quotes_what_yaml_1_1_would_misread() {
        let mut m = IndexMap::new();
        for s in [
            "22:22", "yes", "on", "0123", "1_000", "plain", "a b", "/health", "-x", "",
        ] {
            m.insert(s.to_string(), s.to_string());
        }
        let text = to_string(&m).unwrap_or_default();
        let back: IndexMap<String, String> = serde_norway::from_str(&text).unwrap_or_default();
        assert_eq!(back, m);
        assert!(text.contains("\"22:22\": \"22:22\""));
        assert!(text.contains("\"on\": \"on\""));
        assert!(text.contains("plain: plain"));
    }
}
