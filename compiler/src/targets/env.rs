//! Env files: `out/<topology>/env/<host>/<service>.env`, the resolved environment of
//! each service on each host.
//!
//! Values are written so that docker-compose (python-dotenv) and a POSIX shell read
//! back exactly the intended string: plain when every character is safe, in single
//! quotes otherwise, in double quotes when the value holds a `'` or `\`. A value
//! that no quoting reads back the same in both (`${`, a `'` with a `$`, control
//! characters) is an error, never a silently different string. Secrets are empty
//! placeholders with a comment.

use super::{header, Artifact};
use crate::diag::{Code, Diagnostic, Diagnostics};
use crate::options::Options;
use crate::plan::{Out, Plan, TopologyPlan};

pub fn generate(
    plan: &Plan,
    topo: &TopologyPlan,
    options: &Options,
    out: &mut super::Files<'_>,
    diags: &mut Diagnostics,
) {
    for host in &topo.hosts {
        for inst in &host.services {
            let mut text = header("#", options, &topo.name);
            for var in &inst.env {
                let secrets: Vec<&str> = var
                    .value
                    .iter()
                    .filter_map(|p| match p {
                        Out::Secret(s) => Some(s.name.as_str()),
                        Out::Text(_) => None,
                    })
                    .collect();
                if !secrets.is_empty() {
                    if let [Out::Secret(s)] = var.value.as_slice() {
                        let name = &s.name;
                        let what = if s.optional {
                            "optional secret"
                        } else {
                            "secret"
                        };
                        let about = plan
                            .secrets
                            .get(name)
                            .and_then(|s| s.description.as_deref())
                            .map(|d| format!(": {}", d.replace('\n', " ")))
                            .unwrap_or_default();
                        text.push_str(&format!("# {what} `{name}`{about}\n"));
                    } else {
                        let shape: String = var
                            .value
                            .iter()
                            .map(|p| match p {
                                Out::Text(t) => t.to_string(),
                                Out::Secret(s) => format!("<{}>", s.name),
                            })
                            .collect();
                        let shape = shape.replace('\n', "\\n");
                        text.push_str(&format!(
                            "# holds secret{} {}: {shape}\n",
                            if secrets.len() == 1 { "" } else { "s" },
                            secrets.join(", ")
                        ));
                    }
                    text.push_str(&format!("{}=\n", var.key));
                    continue;
                }
                let value: String = var
                    .value
                    .iter()
                    .map(|p| match p {
                        Out::Text(t) => t.as_str(),
                        Out::Secret(_) => "",
                    })
                    .collect();
                match quote(&value) {
                    Some(q) => text.push_str(&format!("{}={q}\n", var.key)),
                    // `check` reported it: no plan with such a value is built.
                    None => diags.push(super::internal(
                        topo,
                        "env file",
                        "an unrepresentable value",
                    )),
                }
            }
            out.push(Artifact {
                path: format!("{}/env/{}/{}.env", topo.name, host.name, inst.name),
                contents: text,
            });
        }
    }
}

/// Every env value of the topology that no env file can hold (E0501). A value
/// that embeds a secret is written as an empty placeholder, so only the values
/// of text alone are checked.
pub fn check(topo: &TopologyPlan, diags: &mut Diagnostics) {
    for inst in topo.hosts.iter().flat_map(|h| &h.services) {
        for var in &inst.env {
            let Some(value) = crate::plan::text_of(&var.value) else {
                continue;
            };
            if quote(&value).is_some() {
                continue;
            }
            diags.push(
                Diagnostic::error(
                    Code::UnrepresentableEnvValue,
                    var.span,
                    format!(
                        "the value of `{}` cannot be written to an env file that docker-compose and a shell both read back",
                        var.key
                    ),
                )
                .label("in service `".to_string() + &inst.name + "`")
                .help("docker-compose expands `${...}` in env files, even in single quotes, and keeps `\\$` in double quotes; avoid `${`, a `'` together with a `$`, and control characters"),
            );
        }
    }
}

fn is_safe_plain(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(c, '_' | '.' | '/' | ':' | ',' | '@' | '%' | '+' | '=' | '-')
}

/// The value as written after `KEY=`, or `None` when it cannot be written so that
/// docker-compose and a shell agree.
pub fn quote(value: &str) -> Option<String> {
    if value.chars().any(|c| c.is_control()) || value.contains("${") {
        return None;
    }
    if value.chars().all(is_safe_plain) {
        return Some(value.to_string());
    }
    if !value.contains('\'') && !value.contains('\\') {
        return Some(format!("'{value}'"));
    }
    // Double quotes: both read `\\` as `\` and `\"` as `"`; only a shell expands `$`
    // and backquotes, so those cannot be written here.
    if value.contains('$') || value.contains('`') {
        return None;
    }
    let escaped = value.replace('\\', "\\\\").replace('"', "\\\"");
    Some(format!("\"{escaped}\""))
}

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn quoting() {
        assert_eq!(quote("plain").as_deref(), Some("plain"));
        assert_eq!(quote("").as_deref(), Some(""));
        assert_eq!(quote("a b").as_deref(), Some("'a b'"));
        assert_eq!(quote("pa$$word").as_deref(), Some("'pa$$word'"));
        assert_eq!(quote("it's").as_deref(), Some("\"it's\""));
        assert_eq!(quote("${X}"), None);
        assert_eq!(quote("it's $5"), None);
    }
}
