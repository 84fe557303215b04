//! The checker (parse, lower, check, plan) on any text: diagnostics, never a
//! panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let options = stackc::Options {
        source_name: "fuzz.stack".into(),
        topologies: Vec::new(),
        source_dir_from_compose: "../../..".into(),
        source_from_out: "../fuzz.stack".into(),
    };
    let _ = stackc::analyze(text, &options, stackc::Disposal::Free);
});
