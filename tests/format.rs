//! The formatter: snapshots of hand-written layouts (input beside output),
//! idempotence over every .stack file in the repository, the examples and the
//! stdlib kept formatted, formatting that never changes what a file compiles
//! to, and comments that are never lost.

use crate::support::{options, read, rel, root, stack_files};

/// Every .stack file of the repository that parses.
fn all_files() -> Vec<std::path::PathBuf> {
    ["examples", "stdlib", "tests"]
        .iter()
        .flat_map(|d| stack_files(d))
        .collect()
}

#[test]
fn layouts() {
    for path in stack_files("tests/format") {
        let text = read(&path);
        let formatted = stackc::format::format(&rel(&path), &text)
            .unwrap_or_else(|(_, d)| panic!("{}: {d:?}", rel(&path)));
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("x");
        insta::assert_snapshot!(
            format!("format@{stem}"),
            format!(
                "----- INPUT {}\n{text}\n----- FORMATTED\n{formatted}",
                rel(&path)
            )
        );
    }
}

#[test]
fn formatting_twice_changes_nothing() {
    let mut checked = 0;
    for path in all_files() {
        let Ok(once) = stackc::format::format(&rel(&path), &read(&path)) else {
            continue;
        };
        let twice = stackc::format::format(&rel(&path), &once)
            .unwrap_or_else(|(_, d)| panic!("{}: the formatted file fails: {d:?}", rel(&path)));
        assert_eq!(once, twice, "{}: formatting is not idempotent", rel(&path));
        checked += 1;
    }
    assert!(checked > 40, "{checked} files");
}

#[test]
fn examples_and_stdlib_are_formatted() {
    for path in stack_files("examples")
        .into_iter()
        .chain(stack_files("stdlib"))
    {
        let text = read(&path);
        let formatted = stackc::format::format(&rel(&path), &text)
            .unwrap_or_else(|(_, d)| panic!("{}: {d:?}", rel(&path)));
        assert!(
            formatted == text,
            "{} is not formatted; run `stackc fmt examples stdlib`",
            rel(&path)
        );
    }
}

/// A formatted file compiles to the same files and the same diagnostics.
#[test]
fn formatting_keeps_the_meaning() {
    for path in all_files() {
        let text = read(&path);
        let Ok(formatted) = stackc::format::format(&rel(&path), &text) else {
            continue;
        };
        if formatted == text {
            continue;
        }
        let before = stackc::compile(&text, &options(&path));
        let after = stackc::compile(&formatted, &options(&path));
        assert_eq!(before.artifacts, after.artifacts, "{}", rel(&path));
        let codes = |c: &stackc::Compilation| -> Vec<String> {
            c.diagnostics
                .iter()
                .map(|d| format!("{} {}", d.code.as_str(), d.message))
                .collect()
        };
        assert_eq!(codes(&before), codes(&after), "{}", rel(&path));
    }
}

#[test]
fn a_comment_that_cannot_be_placed_is_an_error_not_a_loss() {
    let text = "service api {\n  image = # which one?\n    \"api:1\"\n}\n";
    let Err((_, diags)) = stackc::format::format("x.stack", text) else {
        panic!("the comment inside the entry must not be dropped");
    };
    assert!(diags[0].message.contains("cannot keep this comment"));
    // Every comment elsewhere is kept, in order.
    let text = read(&root().join("tests/format/messy.stack"));
    let formatted = stackc::format::format("messy.stack", &text).unwrap_or_default();
    let comments = |t: &str| -> Vec<String> {
        t.lines()
            .filter_map(|l| l.find('#').map(|i| l[i..].trim().to_string()))
            .collect()
    };
    assert_eq!(comments(&text), comments(&formatted));
}

/// The diffs stackc prints (`fmt --check`, `build --check`) are the hunks GNU
/// `diff -u` prints for the same two texts: changes, additions at either
/// end, removals, and a last line without its line break on either side.
#[test]
fn diffs_are_the_hunks_gnu_diff_prints() {
    if !crate::support::require("diff") {
        return;
    }
    let long: String = (0..40).map(|i| format!("line {i}\n")).collect();
    let pairs = [
        (
            "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\nk\n",
            "a\nB\nc\nd\ne\nf\ng\nh\ni\nj\nk\nl",
        ),
        ("", "x\n"),
        ("x\n", ""),
        ("one\ntwo", "one\ntwo\n"),
        ("head\nkeep\n", "keep\n"),
        (
            &long,
            &long
                .replace("line 3\n", "")
                .replace("line 30\n", "line thirty\n"),
        ),
    ];
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    for (old, new) in pairs {
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&a, old).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(&b, new).unwrap_or_else(|e| panic!("{e}"));
        let gnu = std::process::Command::new("diff")
            .arg("-u")
            .args([&a, &b])
            .output()
            .unwrap_or_else(|e| panic!("diff: {e}"));
        let gnu = String::from_utf8_lossy(&gnu.stdout);
        // GNU's header names the files with their times: the hunks follow.
        let gnu_hunks: String = gnu.lines().skip(2).map(|l| format!("{l}\n")).collect();
        let ours = stackc::review::unified_diff(old, new, "a", "b");
        let our_hunks: String = ours.lines().skip(2).map(|l| format!("{l}\n")).collect();
        assert_eq!(our_hunks, gnu_hunks, "{old:?} -> {new:?}");
    }
}
