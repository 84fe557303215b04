//! Values of each type: strings, names, numbers, units, commands and
//! templates, with the diagnostics for a value of the wrong type or range.

use crate::base::Name;
use crate::diag::{Code, Diagnostic, Span};
use crate::model::*;
use crate::syntax::{Ident, TemplatePart, Value, ValueKind};

use super::Lower;
use crate::grammar;
use crate::schedule::Schedule;

impl Lower<'_> {
    pub(super) fn string(&mut self, v: &Value) -> Option<Sp<String>> {
        self.name_string(v)
            .map(|s| Sp::new(s.value.to_string(), s.span))
    }

    /// `string` as a `Name`, shared with the syntax tree's text.
    pub(super) fn name_string(&mut self, v: &Value) -> Option<Sp<Name>> {
        match &v.kind {
            ValueKind::Str(t) => match t.as_literal_name() {
                Some(s) => Some(Sp::new(s, v.span)),
                None => {
                    self.push(
                        Diagnostic::error(
                            Code::WrongType,
                            v.span,
                            "this field cannot contain references",
                        )
                        .label("`${...}` not allowed here")
                        .help("write `\\$` for a literal `$`"),
                    );
                    None
                }
            },
            _ => {
                self.wrong_type(v, "a string");
                None
            }
        }
    }

    pub(super) fn integer<T: TryFrom<u64>>(&mut self, v: &Value, what: &str) -> Option<Sp<T>> {
        if let ValueKind::Quantity { number, unit } = &v.kind {
            if unit.is_empty() && !number.contains('.') {
                if let Some(n) = number.parse::<u64>().ok().and_then(|n| T::try_from(n).ok()) {
                    return Some(Sp::new(n, v.span));
                }
                self.push(
                    Diagnostic::error(
                        Code::InvalidValue,
                        v.span,
                        format!("{number} is out of range for {what}"),
                    )
                    .label("out of range")
                    .help(format!("{what} is at most {}", max_of::<T>())),
                );
                return None;
            }
        }
        self.wrong_type(v, what);
        None
    }

    /// A TCP or UDP port: 1 to 65535.
    pub(super) fn port_number(&mut self, v: &Value) -> Option<Sp<u16>> {
        let port = self.integer::<u16>(v, "a port number")?;
        if port.value == 0 {
            self.push(
                Diagnostic::error(Code::InvalidValue, port.span, "port 0 is not a port")
                    .label("expected 1 to 65535")
                    .help("choose a port from 1 to 65535"),
            );
            return None;
        }
        Some(port)
    }

    pub(super) fn boolean(&mut self, v: &Value) -> Option<bool> {
        match v.kind {
            ValueKind::Bool(b) => Some(b),
            _ => {
                self.wrong_type(v, "`true` or `false`");
                None
            }
        }
    }

    pub(super) fn choice<T: Copy>(&mut self, v: &Value, choices: &[(&str, T)]) -> Option<Sp<T>> {
        if let ValueKind::Path(p) = &v.kind {
            if let [name] = p.as_slice() {
                if let Some((_, t)) = choices.iter().find(|c| c.0 == name.name) {
                    return Some(Sp::new(*t, v.span));
                }
            }
        }
        // The message is made only for a value that is not one of the choices.
        let names: Vec<&str> = choices.iter().map(|c| c.0).collect();
        let expected = format!("one of {}", names.join(", "));
        match &v.kind {
            ValueKind::Path(p) if p.len() == 1 => {
                let name = &p[0].name;
                let mut d = Diagnostic::error(
                    Code::InvalidValue,
                    v.span,
                    format!("`{name}` is not {expected}"),
                )
                .label("unknown choice");
                d = d.suggesting(name, names.iter().copied(), || {
                    format!("expected {expected}")
                });
                self.push(d);
                None
            }
            _ => {
                self.wrong_type(v, &expected);
                None
            }
        }
    }

    pub(super) fn name(&mut self, v: &Value) -> Option<Ident> {
        match &v.kind {
            ValueKind::Path(p) if p.len() == 1 => p.first().cloned(),
            _ => {
                self.wrong_type(v, "a name");
                None
            }
        }
    }

    pub(super) fn names(&mut self, v: &Value) -> Option<Sp<Vec<Ident>>> {
        match &v.kind {
            ValueKind::List(items) => Some(Sp::new(
                items.iter().filter_map(|i| self.name(i)).collect(),
                v.span,
            )),
            _ => {
                self.wrong_type(v, "a list of names");
                None
            }
        }
    }

    pub(super) fn strings(&mut self, v: &Value) -> Option<Vec<String>> {
        match &v.kind {
            ValueKind::List(items) => Some(
                items
                    .iter()
                    .filter_map(|i| self.string(i).map(|s| s.value))
                    .collect(),
            ),
            _ => {
                self.wrong_type(v, "a list of strings");
                None
            }
        }
    }

    /// `s`, with a diagnostic at its span when it does not follow the grammar
    /// of the place it lands in (`grammar`). It is kept after the report: the
    /// build stops at the error, and nothing downstream reports it missing.
    pub(super) fn in_grammar<T: AsRef<str>>(
        &mut self,
        place: grammar::Place,
        s: Option<Sp<T>>,
    ) -> Option<Sp<T>> {
        let s = s?;
        match grammar::invalid(place, s.value.as_ref()) {
            None => Some(s),
            Some(why) => {
                let text = s.value.as_ref();
                let path = matches!(
                    place,
                    grammar::Place::RoutePath
                        | grammar::Place::RequestPath
                        | grammar::Place::MetricsPath
                );
                let help = if path
                    && !text.starts_with('/')
                    && grammar::invalid(place, &format!("/{text}")).is_none()
                {
                    format!("write `\"/{text}\"`")
                } else {
                    format!("{} takes {}", place.what(), place.takes())
                };
                self.push(
                    Diagnostic::error(Code::InvalidValue, s.span, why)
                        .label(format!("not {}", place.what()))
                        .help(help),
                );
                Some(s)
            }
        }
    }

    /// An IP address (IPv4, or IPv6 without brackets), where compose binds
    /// ports to it: a DNS name there is an error, with a word on why (the
    /// value is kept, as in `in_grammar`).
    pub(super) fn ip_address(&mut self, s: Option<Sp<String>>, what: &str) -> Option<Sp<String>> {
        let s = s?;
        let why = match grammar::address(&s.value) {
            Ok(grammar::AddressKind::V4 | grammar::AddressKind::V6) => return Some(s),
            Ok(grammar::AddressKind::Name) => {
                format!("{what} is an IP address, not the name `{}`", s.value)
            }
            Err(why) => why,
        };
        self.push(
            Diagnostic::error(Code::InvalidValue, s.span, why)
                .label("not an IP address")
                .help("compose publishes ports on this address, and binding needs an IP: write the host's IPv4 or IPv6 address"),
        );
        Some(s)
    }

    /// A task's cron schedule, with a diagnostic at the field at fault.
    pub(super) fn schedule(&mut self, v: &Value) -> Option<Sp<Schedule>> {
        let text = self.string(v)?;
        match Schedule::parse(&text.value) {
            Ok(s) => Some(Sp::new(s, text.span)),
            Err(e) => {
                // The field's own span when the string was written without
                // escapes (its text is then the source between the quotes).
                let span = text.span;
                let exact = (span.end - span.start) as usize == text.value.len() + 2;
                let at = if exact {
                    Span::new(
                        span.file,
                        span.start as usize + 1 + e.at.start,
                        span.start as usize + 1 + e.at.end,
                    )
                } else {
                    span
                };
                self.push(
                    Diagnostic::error(Code::InvalidValue, at, e.message)
                        .label("in this schedule")
                        .help(e.help),
                );
                None
            }
        }
    }

    /// A container's `command` or `entrypoint`: a list of words, or a string
    /// split into words as a POSIX shell splits them (quotes group words). No
    /// shell runs it, on any platform: a string with shell syntax (`$VAR`, `|`,
    /// `&&`, `;`, redirections) is rejected rather than passed on as words.
    pub(super) fn container_command(&mut self, v: &Value) -> Option<Sp<Vec<String>>> {
        match &v.kind {
            ValueKind::List(_) => self.strings(v).map(|items| Sp::new(items, v.span)),
            ValueKind::Str(_) => {
                let line = self.string(v)?;
                match split_words(&line.value) {
                    Ok(words) => Some(Sp::new(words, v.span)),
                    Err(why) => {
                        self.push(
                            Diagnostic::error(Code::InvalidValue, v.span, why)
                                .label("a string command is split into words; no shell runs it")
                                .help("for shell syntax write `[\"sh\", \"-c\", \"...\"]`"),
                        );
                        None
                    }
                }
            }
            _ => {
                self.wrong_type(v, "a string or a list of strings");
                None
            }
        }
    }

    pub(super) fn command(&mut self, v: &Value) -> Option<Sp<Command>> {
        match &v.kind {
            ValueKind::List(_) => self
                .strings(v)
                .map(|items| Sp::new(Command::Exec(items), v.span)),
            ValueKind::Str(_) => self
                .string(v)
                .map(|s| Sp::new(Command::Shell(s.value), v.span)),
            _ => {
                self.wrong_type(v, "a string or a list of strings");
                None
            }
        }
    }

    /// A string-valued expression: strings (with interpolations), references,
    /// numbers, quantities and booleans as written.
    pub(super) fn expr(&mut self, v: &Value) -> Option<Expr> {
        let pieces = match &v.kind {
            ValueKind::Str(t) => t
                .parts
                .iter()
                .map(|p| match p {
                    TemplatePart::Text(s) => Piece::Text(s.clone()),
                    TemplatePart::Interp(path, span) => {
                        Piece::Ref(Box::new(reference(path, *span)))
                    }
                })
                .collect(),
            ValueKind::Quantity { number, unit } => {
                vec![Piece::Text(crate::base::concat(number, unit))]
            }
            ValueKind::Bool(b) => vec![Piece::Text(Name::new_static(if *b {
                "true"
            } else {
                "false"
            }))],
            ValueKind::Path(path) => vec![Piece::Ref(Box::new(reference(path, v.span)))],
            ValueKind::List(_) => {
                self.wrong_type(v, "a string, a number or a reference");
                return None;
            }
        };
        Some(Expr {
            pieces,
            span: v.span,
        })
    }

    pub(super) fn quantity(
        &mut self,
        v: &Value,
        what: &str,
        units: &[(&str, f64)],
    ) -> Option<(f64, Span)> {
        if let ValueKind::Quantity { number, unit } = &v.kind {
            if let (Ok(n), Some((_, factor))) =
                (number.parse::<f64>(), units.iter().find(|u| u.0 == unit))
            {
                return Some((n * factor, v.span));
            }
            let list: Vec<String> = units
                .iter()
                .map(|u| {
                    if u.0.is_empty() {
                        "no unit".into()
                    } else {
                        u.0.to_string()
                    }
                })
                .collect();
            let d = Diagnostic::error(
                Code::InvalidValue,
                v.span,
                format!("`{number}{unit}` is not {what}"),
            );
            // Seconds for a duration, else the first unit.
            let usual = units
                .iter()
                .map(|u| u.0)
                .find(|u| *u == "s")
                .or_else(|| units.iter().map(|u| u.0).find(|u| !u.is_empty()))
                .unwrap_or("");
            let d = match unit_instead(unit, units) {
                _ if unit.is_empty() => d
                    .label("no unit")
                    .help(format!(
                        "add a unit: `{number}{usual}`; {what} takes the units: {}",
                        list.join(", ")
                    ))
                    .fix_replace(
                        format!("Write `{number}{usual}`"),
                        v.span,
                        format!("{number}{usual}"),
                    ),
                Some(ours) => d
                    .label(format!("unit `{unit}` not allowed here"))
                    .help(format!(
                        "did you mean `{number}{ours}`? {what} takes the units: {}",
                        list.join(", ")
                    ))
                    .fix_replace(
                        format!("Write `{number}{ours}`"),
                        v.span,
                        format!("{number}{ours}"),
                    ),
                None => d
                    .label(format!("unit `{unit}` not allowed here"))
                    .help(format!("{what} takes the units: {}", list.join(", "))),
            };
            self.push(d);
            return None;
        }
        self.wrong_type(v, what);
        None
    }

    pub(super) fn duration(&mut self, v: &Value) -> Option<Sp<Duration>> {
        let (ms, span) = self.quantity(v, "a duration (`30s`, `500ms`, `5m`)", &DURATION_UNITS)?;
        // Up to a year, in whole milliseconds: what every target can write.
        let ms = self.bounded(
            ms,
            span,
            0.0,
            365.0 * 86_400_000.0,
            "a duration",
            "0ms to 8760h, in whole milliseconds",
        )?;
        Some(Sp::new(Duration(ms), span))
    }

    /// `x` as a whole number within `lo..=hi`, else a diagnostic naming the
    /// range: a value is never clamped or rounded into another one.
    fn bounded(
        &mut self,
        x: f64,
        span: Span,
        lo: f64,
        hi: f64,
        what: &str,
        range: &str,
    ) -> Option<u64> {
        let (message, help) = if !x.is_finite() || x < lo || x > hi {
            (
                format!("this is out of range for {what}"),
                format!("write {what} from {range}"),
            )
        } else if (x - x.round()).abs() > 1e-9 * x.abs().max(1.0) {
            // `1.1` cores is 1100.0000000000002 millicores in binary: a
            // whole number within rounding error is one.
            (
                format!("this is not a whole number of {what}'s smallest unit"),
                format!("write {what} from {range}"),
            )
        } else {
            return Some(x.round() as u64);
        };
        self.push(
            Diagnostic::error(Code::InvalidValue, span, message)
                .label("not a value the targets can write")
                .help(help),
        );
        None
    }

    pub(super) fn size(&mut self, v: &Value) -> Option<Sp<Size>> {
        let units = [
            ("", 1.0),
            ("K", 1e3),
            ("M", 1e6),
            ("G", 1e9),
            ("T", 1e12),
            ("Ki", 1024.0),
            ("Mi", 1024.0 * 1024.0),
            ("Gi", 1024.0 * 1024.0 * 1024.0),
            ("Ti", 1024.0 * 1024.0 * 1024.0 * 1024.0),
        ];
        let (b, span) = self.quantity(v, "a size (`512Mi`, `2Gi`)", &units)?;
        // At least a byte (docker reads a zero limit as no limit), at most 1 PiB.
        let b = self.bounded(
            b,
            span,
            1.0,
            (1u64 << 50) as f64,
            "a size",
            "1 byte to 1024Ti, in whole bytes",
        )?;
        Some(Sp::new(Size(b), span))
    }

    pub(super) fn cpu(&mut self, v: &Value) -> Option<Sp<Cpu>> {
        let units = [("", 1000.0), ("m", 1.0)];
        let (m, span) = self.quantity(v, "a CPU amount (`2`, `0.5`, `500m`)", &units)?;
        let m = self.bounded(
            m,
            span,
            1.0,
            1_024_000.0,
            "a CPU amount",
            "1m to 1024 cores, in whole millicores",
        )?;
        Some(Sp::new(Cpu(m), span))
    }
}

/// The largest value of an integer field's type, for "out of range" help.
fn max_of<T: TryFrom<u64>>() -> u64 {
    [u64::from(u16::MAX), u64::from(u32::MAX)]
        .into_iter()
        .find(|m| T::try_from(m + 1).is_err())
        .unwrap_or(u64::MAX)
}

/// How to write a value of the expected type.
pub(super) fn type_help(expected: &str) -> String {
    let example = if expected.contains("string") {
        "strings are written in double quotes: \"...\""
    } else if expected.contains("size") {
        "write a number with a unit: `512Mi`, `2Gi`"
    } else if expected.contains("duration") {
        "write a number with a unit: `500ms`, `30s`, `5m`"
    } else if expected.contains("CPU") {
        "write cores (`2`, `0.5`) or millicores (`500m`)"
    } else if expected.contains("list") {
        "write a list in brackets: `[a, b]`"
    } else if expected.contains("true") {
        "write `true` or `false`"
    } else if expected.contains("name") || expected.contains("one of") {
        "write the name without quotes"
    } else {
        "write a number without quotes: `3`, `8000`"
    };
    example.to_string()
}

/// A command line's words, split as a POSIX shell splits them, or why the line
/// needs a shell: quotes that do not close, or shell syntax outside quotes.
pub(crate) fn split_words(line: &str) -> Result<Vec<String>, String> {
    // Outside quotes these mean something only to a shell.
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut word_start = true;
    for c in line.chars() {
        let starts = word_start;
        word_start = quote.is_none() && !escaped && c.is_whitespace();
        match (quote, c) {
            _ if escaped => escaped = false,
            (None | Some('"'), '\\') => escaped = true,
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), _) if c == q => quote = None,
            (None | Some('"'), '$' | '`') => {
                return Err(format!(
                    "`{c}` in a command string would need a shell to expand it"
                ));
            }
            (None, '|' | '&' | ';' | '<' | '>' | '(' | ')') => {
                return Err(format!("`{c}` in a command string would need a shell"));
            }
            (None, '#' | '~') if starts => {
                return Err(format!(
                    "`{c}` at the start of a word means something only to a shell"
                ));
            }
            _ => {}
        }
    }
    let words = shlex::split(line)
        .ok_or_else(|| "this command string has an unclosed quote".to_string())?;
    if words.is_empty() {
        return Err("this command string has no words".to_string());
    }
    Ok(words)
}

/// A dotted path as the reference its shape says: `secret.NAME`,
/// `SERVICE.ATTRIBUTE` or `SERVICE.ports.NAME`, with any names past that.
fn reference(path: &[Ident], span: Span) -> Reference {
    let rest = |from: usize| path.get(from..).unwrap_or_default().to_vec();
    let Some(first) = path.first() else {
        return Reference {
            target: RefTarget::Secret(None),
            extra: Vec::new(),
            span,
        };
    };
    if first.name == "secret" {
        return Reference {
            target: RefTarget::Secret(path.get(1).cloned()),
            extra: rest(2),
            span,
        };
    }
    let Some(name) = path.get(1) else {
        return Reference {
            target: RefTarget::Service {
                service: first.clone(),
                attr: None,
            },
            extra: Vec::new(),
            span,
        };
    };
    let (kind, extra) = match name.name.as_str() {
        "ports" => (Attribute::Ports(path.get(2).cloned()), rest(3)),
        other => (attribute(other), rest(2)),
    };
    Reference {
        target: RefTarget::Service {
            service: first.clone(),
            attr: Some(Attr {
                name: name.clone(),
                kind,
            }),
        },
        extra,
        span,
    }
}

/// The attribute a name asks for; any other name is a parameter of the
/// service's kind (`check` reports one the kind does not declare).
pub(super) fn attribute(name: &str) -> Attribute {
    match name {
        "host" => Attribute::Host,
        "read_host" => Attribute::ReadHost,
        "port" => Attribute::Port,
        "address" => Attribute::Address,
        "read_address" => Attribute::ReadAddress,
        "url" => Attribute::Url,
        "read_url" => Attribute::ReadUrl,
        "public_url" => Attribute::PublicUrl,
        "sentinels" => Attribute::Sentinels,
        "sentinel_url" => Attribute::SentinelUrl,
        "master_name" => Attribute::MasterName,
        _ => Attribute::Param,
    }
}

/// A duration's units, in milliseconds.
const DURATION_UNITS: [(&str, f64); 4] = [
    ("ms", 1.0),
    ("s", 1000.0),
    ("m", 60_000.0),
    ("h", 3_600_000.0),
];

/// Whether `unit` is a duration's, or another tool's spelling of one
/// (`sec`): a value that may be a size or a duration is then a duration.
pub(super) fn is_duration_unit(unit: &str) -> bool {
    DURATION_UNITS.iter().any(|u| u.0 == unit) || unit_instead(unit, &DURATION_UNITS).is_some()
}

/// The unit a newcomer meant by `unit`, when it is one of `units`: the
/// spelling of another tool (`10sec`, `2GB`: Docker's and Kubernetes' sizes
/// are binary), else a close one.
fn unit_instead<'a>(unit: &str, units: &[(&'a str, f64)]) -> Option<&'a str> {
    const SPELLINGS: &[(&str, &str)] = &[
        ("sec", "s"),
        ("secs", "s"),
        ("second", "s"),
        ("seconds", "s"),
        ("min", "m"),
        ("mins", "m"),
        ("minute", "m"),
        ("minutes", "m"),
        ("hr", "h"),
        ("hour", "h"),
        ("hours", "h"),
        ("msec", "ms"),
        ("millis", "ms"),
        ("kb", "Ki"),
        ("mb", "Mi"),
        ("gb", "Gi"),
        ("tb", "Ti"),
        ("k", "Ki"),
        ("m", "Mi"),
        ("g", "Gi"),
    ];
    let wanted = SPELLINGS
        .iter()
        .find(|(theirs, _)| theirs.eq_ignore_ascii_case(unit))
        .map(|(_, ours)| *ours)?;
    units.iter().map(|u| u.0).find(|u| *u == wanted)
}
