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
