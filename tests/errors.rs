//! Error cases as data: each `tests/errors/*.stack` declares the codes it must
//! produce on its first line (`# expect: E0101 E0103`); the rendered diagnostics are
//! snapshotted with the input. Together the cases cover every code.

use std::collections::BTreeSet;

use stackc::diag::Code;

use crate::support::{options, read, rel, root, stack_files};

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
    // E0900 is stackc's own failure: no input produces it; a code of a
    // command's own input is tested with that command.
    let missing: Vec<&str> = Code::ALL
        .iter()
        .filter(|c| **c != Code::Internal && !COMMAND_ONLY.contains(c))
        .map(|c| c.as_str())
        .filter(|c| !covered.contains(*c))
        .collect();
    assert!(missing.is_empty(), "codes with no error case: {missing:?}");
}

/// Codes that a `.stack` file alone never gives: W0421 needs the values file
/// of `check --secrets` (tests/cli.rs, `secrets_the_user_brings_are_named_not_made`).
const COMMAND_ONLY: &[Code] = &[Code::SecretNotSet];

/// The ```stack block after a heading of an explanation.
fn example(text: &str, heading: &str) -> Option<String> {
    let after = &text[text.find(heading)? + heading.len()..];
    let start = after.find("```stack\n")? + "```stack\n".len();
    let end = after[start..].find("```")?;
    Some(after[start..start + end].to_string())
}

/// Every code has an explanation with a wrong example that produces it and a
/// right one that does not (and has no error at all).
#[test]
fn every_code_is_explained() {
    let mut failures = Vec::new();
    for code in Code::ALL {
        let text = code.explanation();
        assert_eq!(Code::parse(code.as_str()), Some(*code));
        assert_eq!(Code::parse(code.slug()), Some(*code));
        let title = format!("## {} {}\n", code.as_str(), code.slug());
        assert!(text.starts_with(&title), "{code}: starts with {title:?}");
        // E0900 is stackc's own failure: no input produces it.
        if *code == Code::Internal {
            continue;
        }
        let wrong =
            example(text, "### Wrong").unwrap_or_else(|| panic!("{code}: no wrong example"));
        let right =
            example(text, "### Right").unwrap_or_else(|| panic!("{code}: no right example"));
        let codes = |source: &str| -> Vec<Code> {
            stackc::compile(source, &options(std::path::Path::new("example.stack")))
                .diagnostics
                .iter()
                .map(|d| d.code)
                .collect()
        };
        // Examples are written as `stackc fmt` writes (a syntax error aside).
        for (which, text) in [("wrong", &wrong), ("right", &right)] {
            if let Ok(formatted) = stackc::format::format("example.stack", text) {
                if &formatted != text {
                    failures.push(format!("{code}: the {which} example is not formatted"));
                }
            }
        }
        let found = codes(&wrong);
        if !found.contains(code) && !COMMAND_ONLY.contains(code) {
            failures.push(format!("{code}: the wrong example gives {found:?}"));
        }
        let compilation = stackc::compile(&right, &options(std::path::Path::new("example.stack")));
        let found: Vec<Code> = compilation.diagnostics.iter().map(|d| d.code).collect();
        if found.contains(code) || compilation.has_errors() {
            failures.push(format!("{code}: the right example gives {found:?}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn docs_errors_md_is_generated_from_the_explanations() {
    let path = root().join("docs/errors.md");
    let expected = stackc::diag::errors_markdown();
    if std::env::var_os("STACKC_BLESS").is_some() {
        std::fs::write(&path, &expected).unwrap_or_else(|e| panic!("{e}"));
    }
    let actual = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        actual == expected,
        "docs/errors.md is out of date: run `STACKC_BLESS=1 cargo test --test stackc-tests docs_errors`"
    );
}

/// `check` (and so the editor, which runs the same analysis) reports exactly
/// the diagnostics `build` gives, on every error case and example: a stack
/// that `check` passes never fails to build.
#[test]
fn check_and_build_give_the_same_diagnostics() {
    let mut files = stack_files("tests/errors");
    files.extend(stack_files("examples"));
    files.extend(stack_files("tests/cases"));
    for path in files {
        let text = read(&path);
        let built = stackc::compile(&text, &options(&path)).diagnostics;
        let checked = stackc::analyze(&text, &options(&path), stackc::Disposal::Free).diagnostics;
        let show = |ds: &[stackc::diag::Diagnostic]| -> Vec<String> {
            ds.iter()
                .map(|d| format!("{} {:?} {}", d.code.as_str(), d.primary.span, d.message))
                .collect()
        };
        assert_eq!(
            show(&checked),
            show(&built),
            "check and build on {}",
            rel(&path)
        );
    }
}

/// Every fix a diagnostic of an error case offers resolves it: applied, the
/// file has fewer diagnostics of that code and message. The editor's quick fixes and the
/// JSON output's `fixes` are these edits.
#[test]
fn every_fix_resolves_its_diagnostic() {
    let mut applied = BTreeSet::new();
    for path in stack_files("tests/errors") {
        let text = read(&path);
        let options = options(&path);
        let compilation = stackc::compile(&text, &options);
        // The diagnostics like `d`: its code and message (the message names
        // what is wrong, `patrony`; the fix may well uncover another error of
        // the same code).
        let count = |diags: &[stackc::diag::Diagnostic], d: &stackc::diag::Diagnostic| {
            diags
                .iter()
                .filter(|o| o.code == d.code && o.message == d.message)
                .count()
        };
        for d in &compilation.diagnostics {
            for fix in &d.fixes {
                let in_user_file = |e: &stackc::diag::Edit| {
                    compilation.sources.get(e.span.file).name == options.source_name
                };
                if !fix.edits.iter().all(in_user_file) {
                    continue;
                }
                let mut fixed = text.clone();
                let mut edits = fix.edits.clone();
                edits.sort_by_key(|e| std::cmp::Reverse(e.span.start));
                for e in &edits {
                    fixed.replace_range(e.span.start as usize..e.span.end as usize, &e.text);
                }
                let after = stackc::compile(&fixed, &options).diagnostics;
                assert!(
                    count(&after, d) < count(&compilation.diagnostics, d),
                    "{}: `{}` does not resolve {}: {}\n{fixed}",
                    rel(&path),
                    fix.title,
                    d.code.as_str(),
                    d.message
                );
                let kind = fix.title.split('`').next().unwrap_or_default().trim();
                applied.insert(format!("{} {kind}", d.code.as_str()));
            }
        }
    }
    // The fixes of a name, a field, a unit, single quotes, a duplicate field,
    // a secret's name.
    for fix in [
        "E0101 Replace with",
        "E0201 Replace with",
        "E0203 Write",
        "E0001 Write it in double quotes",
        "E0205 Remove this",
        "E0103 Replace with",
    ] {
        assert!(applied.contains(fix), "no `{fix}` applied: {applied:?}");
    }
}
