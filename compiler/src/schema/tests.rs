//! The schema's own consistency: every block reached, no field twice.

use super::*;

/// Each block names each field once, with a documentation, and the
/// editor reaches every block from some key.
#[test]
fn every_block_is_documented_and_reached_by_the_editor() {
    const KEYS: &[&str] = &[
        "",
        "service",
        "kind",
        "secret",
        "external",
        "topology",
        "autoscale",
        "scale_up",
        "update",
        "volume",
        "metrics",
        "ha",
        "host",
        "resources",
        "health",
        "port",
        "mount",
        "route",
        "proxy",
        "tls",
        "acme",
        "receiver",
        "postgresql",
        "backup",
        "s3",
        "metric",
    ];
    for block in BLOCKS {
        let mut names: Vec<&str> = block.names().collect();
        names.sort_unstable();
        let count = names.len();
        names.dedup();
        assert_eq!(names.len(), count, "a field twice in {}", block.called);
        assert!(
            block.fields.iter().all(|f| !f.doc.is_empty()),
            "{}",
            block.called
        );
        let reached = KEYS
            .iter()
            .flat_map(|k| blocks_of(k))
            .any(|b| b.called == block.called);
        assert!(reached, "no key opens {}", block.called);
    }
}
