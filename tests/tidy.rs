//! Repository hygiene: every Rust module starts with a `//!` doc comment that
//! says what it is for, and no snapshot waits unreviewed.

use crate::support::root;

#[test]
fn every_module_has_a_doc_comment() {
    let mut missing = Vec::new();
    for dir in ["compiler/src", "tests"] {
        for entry in walkdir::WalkDir::new(root().join(dir))
            .into_iter()
            .filter_map(Result::ok)
        {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(path).unwrap_or_default();
                if !text.starts_with("//!") {
                    missing.push(path.display().to_string());
                }
            }
        }
    }
    assert!(missing.is_empty(), "modules without a //! doc: {missing:?}");
}

/// A `.snap.new` is a snapshot insta wrote and nobody reviewed: accept or reject
/// it (`cargo insta review`), never commit it.
#[test]
fn no_snapshot_is_pending_review() {
    let pending: Vec<String> = walkdir::WalkDir::new(root().join("tests/snapshots"))
        .into_iter()
        .filter_map(Result::ok)
        .map(|e| e.path().display().to_string())
        .filter(|p| p.ends_with(".snap.new"))
        .collect();
    assert!(pending.is_empty(), "snapshots pending review: {pending:?}");
}

/// The sizes a newcomer can read: no source file of the compiler over 700
/// lines, no function over 120 (from its `fn` line to its closing brace, as
/// rustfmt lays them out).
#[test]
fn no_file_or_function_is_too_long() {
    const FILE_LINES: usize = 700;
    const FUNCTION_LINES: usize = 120;
    let mut long = Vec::new();
    for entry in walkdir::WalkDir::new(root().join("compiler/src"))
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "rs"))
    {
        let path = entry.path();
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let name = path.display();
        if lines.len() > FILE_LINES {
            long.push(format!("{name}: {} lines", lines.len()));
        }
        for (start, len, function) in functions(&lines) {
            if len > FUNCTION_LINES {
                long.push(format!(
                    "{name}:{}: fn {function} is {len} lines",
                    start + 1
                ));
            }
        }
    }
    assert!(long.is_empty(), "too long: {long:#?}");
}

/// Each function with a body: its first line, its length in lines and its
/// name. A body ends at the first `}` alone at the `fn`'s indentation.
fn functions(lines: &[&str]) -> Vec<(usize, usize, String)> {
    let mut found = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        let rest = trimmed
            .strip_prefix("pub ")
            .or_else(|| {
                trimmed
                    .strip_prefix("pub(")
                    .and_then(|r| r.split_once(") ").map(|(_, r)| r))
            })
            .unwrap_or(trimmed);
        let rest = rest.strip_prefix("const ").unwrap_or(rest);
        let Some(signature) = rest.strip_prefix("fn ") else {
            continue;
        };
        let name: String = signature
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        // A declaration without a body (a trait's) ends with `;` first.
        let Some(open) = lines[i..]
            .iter()
            .position(|l| l.trim_end().ends_with('{') || l.trim_end().ends_with(';'))
        else {
            continue;
        };
        if lines[i + open].trim_end().ends_with(';') {
            continue;
        }
        let close = " ".repeat(indent) + "}";
        if let Some(end) = lines[i + open..].iter().position(|l| *l == close) {
            found.push((i, open + end + 1, name));
        }
    }
    found
}

#[test]
fn the_function_finder_measures_a_function() {
    let text = "fn a() {\n    let x = 1;\n}\n\nimpl T {\n    pub(crate) fn b(\n        x: u8,\n    ) -> u8 {\n        x\n    }\n}\n";
    let lines: Vec<&str> = text.lines().collect();
    let found = functions(&lines);
    assert_eq!(
        found,
        vec![(0, 3, "a".to_string()), (5, 5, "b".to_string())]
    );
}
