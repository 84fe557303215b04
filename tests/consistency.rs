//! Properties that hold across the generated files and that no real program
//! checks offline: start-order gates match health checks, and every address one
//! host's environment points at is published by the host it names.

use std::collections::{BTreeMap, BTreeSet};

use serde_norway::Value;

use crate::support::{options, read, rel, stack_files};

struct File {
    topology: String,
    doc: Value,
}

fn compose_files() -> Vec<(String, File)> {
    let mut out = Vec::new();
    for path in stack_files("examples")
        .into_iter()
        .chain(stack_files("tests/cases"))
    {
        let compilation = stackc::compile(read(&path), &options(&path));
        for a in compilation
            .artifacts
            .iter()
            .filter(|a| a.path.ends_with(".yml"))
        {
            let doc: Value =
                serde_norway::from_str(&a.contents).unwrap_or_else(|e| panic!("{}: {e}", a.path));
            let topology = a.path.split('/').next().unwrap_or_default().to_string();
            out.push((format!("{} {}", rel(&path), a.path), File { topology, doc }));
        }
    }
    out
}

fn services(doc: &Value) -> Vec<(&str, &Value)> {
    doc.get("services")
        .and_then(Value::as_mapping)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.as_str()?, v)))
        .collect()
}

/// `condition: service_healthy` exactly when the dependency has a healthcheck in
/// the same file (compose fails at `up` otherwise; `config` does not notice).
#[test]
fn health_gates_match_health_checks() {
    let mut gates = 0;
    for (name, file) in compose_files() {
        let svcs = services(&file.doc);
        let has_check: BTreeMap<&str, bool> = svcs
            .iter()
            .map(|(n, s)| (*n, s.get("healthcheck").is_some()))
            .collect();
        for (svc, def) in &svcs {
            for (dep, cond) in def
                .get("depends_on")
                .and_then(Value::as_mapping)
                .into_iter()
                .flatten()
            {
                let dep = dep.as_str().unwrap_or_default();
                let cond = cond
                    .get("condition")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let checked = *has_check
                    .get(dep)
                    .unwrap_or_else(|| panic!("{name}: {svc} depends on {dep}, not in this file"));
                assert_eq!(
                    cond == "service_healthy",
                    checked,
                    "{name}: {svc} -> {dep} is {cond}"
                );
                gates += 1;
            }
        }
    }
    assert!(
        gates > 10,
        "the examples exercise start order ({gates} gates)"
    );
}

/// Every `ADDRESS:PORT` of another host in an environment is published by that
/// host's compose file on exactly that address and port.
#[test]
fn cross_host_addresses_are_published() {
    let files = compose_files();
    let mut checked = 0;
    // (topology, address, host port) published anywhere
    let mut published: BTreeSet<(String, String, String)> = BTreeSet::new();
    for (_, file) in &files {
        for (_, def) in services(&file.doc) {
            for p in def
                .get("ports")
                .and_then(Value::as_sequence)
                .into_iter()
                .flatten()
            {
                let parts: Vec<&str> = p.as_str().unwrap_or_default().split(':').collect();
                if let [addr, host_port, _] = parts.as_slice() {
                    published.insert((
                        file.topology.clone(),
                        addr.to_string(),
                        host_port.to_string(),
                    ));
                }
            }
        }
    }
    for (name, file) in &files {
        for (svc, def) in services(&file.doc) {
            for (key, value) in def
                .get("environment")
                .and_then(Value::as_mapping)
                .into_iter()
                .flatten()
            {
                let value = value.as_str().unwrap_or_default();
                for (addr, port) in ipv4_ports(value) {
                    checked += 1;
                    assert!(
                        published.contains(&(file.topology.clone(), addr.clone(), port.clone())),
                        "{name}: {svc}.{} points at {addr}:{port}, which no host of the topology publishes there",
                        key.as_str().unwrap_or_default()
                    );
                }
            }
        }
    }
    assert!(
        checked > 10,
        "the examples exercise cross-host references ({checked})"
    );
}

/// `a.b.c.d:port` occurrences in a string.
fn ipv4_ports(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit()
            && (i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'.'))
        {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
                i += 1;
            }
            let addr = &s[start..i];
            if addr.split('.').count() == 4 && i < bytes.len() && bytes[i] == b':' {
                let pstart = i + 1;
                let mut j = pstart;
                while j < bytes.len() && bytes[j].is_ascii_digit() {
                    j += 1;
                }
                if j > pstart {
                    out.push((addr.to_string(), s[pstart..j].to_string()));
                }
            }
        } else {
            i += 1;
        }
    }
    out
}
