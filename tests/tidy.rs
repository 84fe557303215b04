//! Repository hygiene: every Rust module starts with a `//!` doc comment that
//! says what it is for.

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
