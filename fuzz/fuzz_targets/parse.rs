//! The hand-written parser against pest: on any text, they agree (the same
//! tree and escape diagnostics when the fast one accepts; pest rejects what it
//! rejects), and neither panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stackc::diag::{Code, Diagnostics, FileId};
use stackc::syntax::{parse_fast, parse_with_pest};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Nesting is limited before either parser runs (syntax::parse).
    if text.matches(['{', '[']).count() > 64 {
        return;
    }
    let mut fast_diags = Diagnostics::default();
    let fast = parse_fast(FileId(0), text, &mut fast_diags);
    let mut pest_diags = Diagnostics::default();
    let pest = parse_with_pest(FileId(0), text, &mut pest_diags);
    let pest_diags = pest_diags.finish();
    let pest_rejects = pest_diags.iter().any(|d| d.code == Code::Syntax);
    match fast {
        Some(tree) => {
            assert!(!pest_rejects, "fast accepts what pest rejects");
            assert_eq!(tree, pest, "the trees differ");
            assert_eq!(fast_diags.finish(), pest_diags, "the diagnostics differ");
        }
        None => assert!(pest_rejects, "fast rejects what pest accepts"),
    }
});
