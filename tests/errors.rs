//! Error cases as data: each `tests/errors/*.stack` declares the codes it must
//! produce on its first line (`# expect: E0101 E0103`); the rendered diagnostics are
//! snapshotted with the input. Together the cases cover every code.

use std::collections::BTreeSet;

use stackc::diag::Code;

use crate::support::{options, read, rel, stack_files};

fn expected_codes(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# expect:"))
        .flat_map(|l| l.split_whitespace().map(str::to_string))
        .collect()
}

#[test]
fn every_error_case() {
    let files = stack_files("tests/errors");
    assert!(!files.is_empty());
    let mut covered = BTreeSet::new();
    // Every diagnostic has a label and a help line.
    let mut incomplete = Vec::new();
    for path in files {
        let text = read(&path);
        let expected = expected_codes(&text);
        assert!(
            !expected.is_empty(),
            "{} declares no `# expect:` codes",
            rel(&path)
        );
        let compilation = stackc::compile(&text, &options(&path));
        let found: BTreeSet<String> = compilation
            .diagnostics
            .iter()
            .map(|d| d.code.as_str().to_string())
            .collect();
        let rendered =
            stackc::diag::render_human(&compilation.sources, &compilation.diagnostics, false);
        assert_eq!(found, expected, "codes of {}:\n{rendered}", rel(&path));
        for d in &compilation.diagnostics {
            if d.primary.message.is_empty() || d.help.is_none() {
                incomplete.push(format!("{}: {}", rel(&path), d.message));
            }
        }
        if compilation.has_errors() {
            assert!(
                compilation.artifacts.is_empty(),
                "{}: no output with errors",
                rel(&path)
            );
        }
        covered.extend(found);
        let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("x");
        insta::assert_snapshot!(
            format!("error@{name}"),
            format!(
                "----- INPUT {}\n{text}\n----- DIAGNOSTICS\n{rendered}",
                rel(&path)
            )
        );
    }
    assert!(
        incomplete.is_empty(),
        "diagnostics without a label or help: {incomplete:#?}"
    );
    // E0900 is stackc's own failure: no input produces it.
    let missing: Vec<&str> = Code::ALL
        .iter()
        .filter(|c| **c != Code::Internal)
        .map(|c| c.as_str())
        .filter(|c| !covered.contains(*c))
        .collect();
    assert!(missing.is_empty(), "codes with no error case: {missing:?}");
}

#[test]
fn every_code_is_explained() {
    for code in Code::ALL {
        assert!(code.explanation().len() > 20, "{code}");
        assert_eq!(Code::parse(code.as_str()), Some(*code));
        assert_eq!(Code::parse(code.slug()), Some(*code));
    }
}
