//! YAML text from typed structs: `serde` → `serde_norway::Value` → text.
//!
//! serde_norway's own emitter writes YAML 1.2 plain scalars that YAML 1.1 readers
//! (PyYAML, used by docker-compose v1 and Patroni) read differently: `22:22` becomes
//! the integer 1342, `on`/`yes` become booleans, `1_000` an integer. This emitter
//! writes a string plain only when it reads back as the same string in both YAML
//! versions, and double-quotes it otherwise.

use serde::Serialize;
use serde_norway::Value;

/// Serializes a value as a YAML document (block style, two-space indent).
pub fn to_string<T: Serialize>(value: &T) -> Result<String, String> {
    let value = serde_norway::to_value(value).map_err(|e| e.to_string())?;
    let mut out = String::new();
    write_block(&mut out, &value, 0);
    Ok(out)
}

fn indent(out: &mut String, n: usize) {
    for _ in 0..n {
        out.push(' ');
    }
}

fn is_scalar_or_empty(v: &Value) -> bool {
    match v {
        Value::Mapping(m) => m.is_empty(),
        Value::Sequence(s) => s.is_empty(),
        Value::Tagged(_) => false,
        _ => true,
    }
}

/// Writes a mapping or sequence at `level`, each entry on its own line.
fn write_block(out: &mut String, value: &Value, level: usize) {
    match value {
        Value::Mapping(map) if !map.is_empty() => {
            for (k, v) in map {
                indent(out, level);
                write_scalar(out, k);
                out.push(':');
                write_child(out, v, level);
            }
        }
        Value::Sequence(seq) if !seq.is_empty() => {
            for item in seq {
                indent(out, level);
                out.push('-');
                match item {
                    Value::Mapping(m) if !m.is_empty() => {
                        // First key on the dash line, the rest aligned under it.
                        let mut first = true;
                        for (k, v) in m {
                            if first {
                                out.push(' ');
                                first = false;
                            } else {
                                indent(out, level + 2);
                            }
                            write_scalar(out, k);
                            out.push(':');
                            write_child(out, v, level + 2);
                        }
                    }
                    _ => write_child(out, item, level),
                }
            }
        }
        other => {
            write_scalar(out, other);
            out.push('\n');
        }
    }
}

fn write_child(out: &mut String, v: &Value, level: usize) {
    if let Value::String(s) = v {
        if literal_block_ok(s) {
            write_literal(out, s, level + 2);
            return;
        }
    }
    if is_scalar_or_empty(v) {
        out.push(' ');
        write_scalar(out, v);
        out.push('\n');
    } else {
        out.push('\n');
        let child = match v {
            Value::Sequence(_) => level + 2,
            _ => level + 2,
        };
        write_block(out, v, child);
    }
}

fn write_scalar(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => write_string(out, s),
        Value::Sequence(_) => out.push_str("[]"),
        Value::Mapping(_) => out.push_str("{}"),
        Value::Tagged(t) => write_scalar(out, &t.value),
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
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'))
        && !RESERVED.contains(&s.to_ascii_lowercase().as_str())
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
