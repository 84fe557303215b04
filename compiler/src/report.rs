//! Diagnostics for machines other than a terminal: GitHub Actions workflow
//! commands (annotations on the pull request's lines) and SARIF 2.1.0 (code
//! scanning). The human and JSON-lines forms are in `diag`.

use serde::Serialize;

use crate::diag::{Code, Diagnostic, Label, Severity, SourceMap};

/// One line per diagnostic: `::error file=F,line=L,col=C,endLine=..,
/// endColumn=..,title=CODE::message`, the help on the next line of the
/// message.
pub fn render_github(sources: &SourceMap, diags: &[Diagnostic]) -> String {
    let mut out = String::new();
    for d in diags {
        let file = &sources.get(d.primary.span.file).name;
        let (line, col) = sources.line_col(d.primary.span.file, d.primary.span.start);
        let (end_line, end_col) = sources.line_col(d.primary.span.file, d.primary.span.end);
        let level = match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let mut message = d.message.clone();
        if !d.primary.message.is_empty() {
            message.push_str(&format!(" ({})", d.primary.message));
        }
        if let Some(help) = &d.help {
            message.push_str(&format!("\nhelp: {help}"));
        }
        out.push_str(&format!(
            "::{level} file={},line={line},col={col},endLine={end_line},endColumn={end_col},title={}::{}\n",
            property(file),
            property(&format!("{} {}", d.code.as_str(), d.code.slug())),
            data(&message)
        ));
    }
    out
}

/// A workflow command's message: `%`, CR and LF escaped.
fn data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A workflow command's property: also `:` and `,`.
fn property(s: &str) -> String {
    data(s).replace(':', "%3A").replace(',', "%2C")
}

#[derive(Serialize)]
struct Sarif<'a> {
    #[serde(rename = "$schema")]
    schema: &'static str,
    version: &'static str,
    runs: Vec<Run<'a>>,
}

#[derive(Serialize)]
struct Run<'a> {
    tool: Tool,
    results: Vec<SarifResult<'a>>,
}

#[derive(Serialize)]
struct Tool {
    driver: Driver,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Driver {
    name: &'static str,
    version: &'static str,
    rules: Vec<Rule>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Rule {
    id: &'static str,
    name: &'static str,
    short_description: Text,
    full_description: Text,
    default_configuration: Configuration,
}

#[derive(Serialize)]
struct Configuration {
    level: &'static str,
}

#[derive(Serialize)]
struct Text {
    text: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifResult<'a> {
    rule_id: &'static str,
    rule_index: usize,
    level: &'static str,
    message: Text,
    locations: Vec<Location<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    related_locations: Vec<Location<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Location<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<usize>,
    physical_location: PhysicalLocation<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<Text>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PhysicalLocation<'a> {
    artifact_location: ArtifactLocation<'a>,
    region: Region,
}

#[derive(Serialize)]
struct ArtifactLocation<'a> {
    uri: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Region {
    start_line: usize,
    start_column: usize,
    end_line: usize,
    end_column: usize,
}

fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

/// A SARIF 2.1.0 log: one run of stackc, every code as a rule, every
/// diagnostic as a result with its related locations.
pub fn render_sarif(sources: &SourceMap, diags: &[Diagnostic]) -> String {
    let location = |l: &Label, id: Option<usize>| {
        let (start_line, start_column) = sources.line_col(l.span.file, l.span.start);
        let (end_line, end_column) = sources.line_col(l.span.file, l.span.end);
        Location {
            id,
            physical_location: PhysicalLocation {
                artifact_location: ArtifactLocation {
                    uri: &sources.get(l.span.file).name,
                },
                region: Region {
                    start_line,
                    start_column,
                    end_line,
                    end_column: end_column.max(start_column + usize::from(end_line == start_line)),
                },
            },
            message: (!l.message.is_empty()).then(|| Text {
                text: l.message.clone(),
            }),
        }
    };
    let rules = Code::ALL
        .iter()
        .map(|c| Rule {
            id: c.as_str(),
            name: c.slug(),
            short_description: Text {
                text: c.summary().split_whitespace().collect::<Vec<_>>().join(" "),
            },
            full_description: Text {
                text: c.explanation().trim_end().to_string(),
            },
            default_configuration: Configuration {
                level: level(c.default_severity()),
            },
        })
        .collect();
    let results = diags
        .iter()
        .map(|d| {
            let mut text = d.message.clone();
            if let Some(help) = &d.help {
                text.push_str(&format!("\nhelp: {help}"));
            }
            SarifResult {
                rule_id: d.code.as_str(),
                rule_index: Code::ALL.iter().position(|c| *c == d.code).unwrap_or(0),
                level: level(d.severity),
                message: Text { text },
                locations: vec![location(&d.primary, None)],
                related_locations: d
                    .secondary
                    .iter()
                    .enumerate()
                    .map(|(i, l)| location(l, Some(i + 1)))
                    .collect(),
            }
        })
        .collect();
    let log = Sarif {
        schema: "https://json.schemastore.org/sarif-2.1.0.json",
        version: "2.1.0",
        runs: vec![Run {
            tool: Tool {
                driver: Driver {
                    name: "stackc",
                    version: env!("CARGO_PKG_VERSION"),
                    rules,
                },
            },
            results,
        }],
    };
    let mut out = serde_json::to_string_pretty(&log).unwrap_or_default();
    out.push('\n');
    out
}
