//! The whole build in memory on any text: files or diagnostics, never a panic;
//! and a build without errors writes at least the manifest of each topology.
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
    let c = stackc::compile(text, &options);
    if !c.has_errors() {
        let manifests = c
            .artifacts
            .iter()
            .filter(|a| a.path.ends_with("stackc-manifest.json"))
            .count();
        let topologies: std::collections::BTreeSet<&str> = c
            .artifacts
            .iter()
            .filter_map(|a| a.path.split('/').next())
            .collect();
        assert_eq!(manifests, topologies.len());
    }
});
