//! `stackc graph`: snapshots of a topology in dot and Mermaid (input beside
//! output), every example topology drawn by the real Graphviz, and output that
//! ends quietly when the reader goes away.

use std::process::{Command, Stdio};

use stackc::graph::{render, GraphFormat};

use crate::support::{options, read, rel, require, root, stack_files};

fn plan(path: &std::path::Path) -> stackc::plan::Plan {
    let analysis = stackc::analyze(read(path), &options(path), stackc::Disposal::Free);
    let (plan, diags) = (analysis.plan, analysis.diagnostics);
    assert!(
        diags.iter().all(|d| !d.is_error()),
        "{}: {diags:?}",
        rel(path)
    );
    plan.unwrap_or_else(|| panic!("{}: no plan", rel(path)))
}

#[test]
fn neural_cluster_in_dot_and_mermaid() {
    let path = root().join("examples/neural-dsl.stack");
    let plan = plan(&path);
    let topology = vec!["cluster".to_string()];
    for (name, format) in [("dot", GraphFormat::Dot), ("mermaid", GraphFormat::Mermaid)] {
        let out = render(&plan, &topology, format);
        insta::assert_snapshot!(
            format!("graph@neural-cluster-{name}"),
            format!(
                "----- INPUT {} (topology cluster)\n{}\n----- GRAPH\n{out}",
                rel(&path),
                read(&path)
            )
        );
    }
}

#[test]
fn every_example_is_drawn_by_graphviz() {
    if !require("dot") {
        return;
    }
    for path in stack_files("examples") {
        let text = render(&plan(&path), &[], GraphFormat::Dot);
        let mut dot = Command::new("dot")
            .arg("-Tsvg")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("dot: {e}"));
        if let Some(mut stdin) = dot.stdin.take() {
            std::io::Write::write_all(&mut stdin, text.as_bytes())
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let out = dot.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stderr.is_empty(),
            "{}: {stderr}\n{text}",
            rel(&path)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("<svg"));
    }
}

#[test]
fn a_closed_pipe_ends_the_output_without_a_panic() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_stackc"))
        .arg("graph")
        .arg(root().join("examples/neural-dsl.stack"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    // The reader goes away before reading anything.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}
