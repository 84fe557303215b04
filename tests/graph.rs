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

/// The Neural DSL stack as Graphviz lays it out (`dot -Tplain`): the
/// topologies top to bottom in the file's order, no label on an edge (it
/// would sit on a host's title), and no container left without an edge (a
/// sentinel watches its node, Prometheus scrapes the API).
#[test]
fn the_ha_topologies_are_laid_out_readably() {
    if !require("dot") {
        return;
    }
    let path = root().join("examples/neural-dsl.stack");
    let plan = plan(&path);
    let text = render(&plan, &[], GraphFormat::Dot);
    let mut dot = Command::new("dot")
        .arg("-Tplain")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("dot: {e}"));
    if let Some(mut stdin) = dot.stdin.take() {
        std::io::Write::write_all(&mut stdin, text.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    }
    let out = dot.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    let layout = String::from_utf8_lossy(&out.stdout);
    // `node NAME X Y ...`: a topology's highest node, per topology.
    let mut top: Vec<(String, f64)> = Vec::new();
    let mut nodes = Vec::new();
    let mut edges = Vec::new();
    for line in layout.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["node", name, _x, y, ..] => {
                let topology = name.split("__").next().unwrap_or_default().to_string();
                let y: f64 = y.parse().unwrap_or_default();
                match top.iter_mut().find(|(t, _)| *t == topology) {
                    Some((_, highest)) => *highest = highest.max(y),
                    None => top.push((topology, y)),
                }
                nodes.push(name.to_string());
            }
            ["edge", tail, head, ..] => {
                edges.push((tail.to_string(), head.to_string()));
                // `edge T H n x1 y1 ... [label xl yl] style color`: a label adds three words.
                let n: usize = words[3].parse().unwrap_or_default();
                assert_eq!(words.len(), 4 + 2 * n + 2, "an edge with a label: {line}");
            }
            _ => {}
        }
    }
    top.sort_by(|a, b| b.1.total_cmp(&a.1));
    let order: Vec<&str> = top.iter().map(|(t, _)| t.as_str()).collect();
    let file: Vec<&str> = plan.topologies.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(order, file, "top to bottom");
    let alone: Vec<&String> = nodes
        .iter()
        .filter(|n| !edges.iter().any(|(t, h)| t == *n || h == *n))
        .collect();
    assert!(alone.is_empty(), "containers without an edge: {alone:?}");
}
