//! Comparing two sets of generated files: `stackc build --check` (the output
//! directory against a fresh build, as unified diffs) and `stackc diff` (what a
//! change to a .stack file changes in the generated infrastructure, summarised
//! by topology, host and target for a reviewer).

mod diff;

use std::collections::BTreeMap;

use indexmap::IndexMap;

pub use diff::{line_counts, unified_diff};

use crate::targets::{Artifact, MANIFEST};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Added,
    Removed,
    Changed,
}

/// One file that differs: its path in the output directory and both texts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    pub path: String,
    pub change: Change,
    pub old: String,
    pub new: String,
}

/// The files that differ between `old` and `new`, by path. Manifests are left
/// out: they change with every file they list.
pub fn compare(old: &[Artifact], new: &[Artifact]) -> Vec<FileChange> {
    let by_path = |files: &[Artifact]| -> BTreeMap<String, String> {
        files
            .iter()
            .filter(|a| !a.path.ends_with(MANIFEST))
            .map(|a| (a.path.clone(), a.contents.clone()))
            .collect()
    };
    let (old, new) = (by_path(old), by_path(new));
    let mut out = Vec::new();
    for (path, text) in &new {
        match old.get(path) {
            None => out.push(FileChange {
                path: path.clone(),
                change: Change::Added,
                old: String::new(),
                new: text.clone(),
            }),
            Some(before) if before != text => out.push(FileChange {
                path: path.clone(),
                change: Change::Changed,
                old: before.clone(),
                new: text.clone(),
            }),
            Some(_) => {}
        }
    }
    for (path, text) in &old {
        if !new.contains_key(path) {
            out.push(FileChange {
                path: path.clone(),
                change: Change::Removed,
                old: text.clone(),
                new: String::new(),
            });
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// Every change as a unified diff (`/dev/null` for an added or removed file),
/// paths relative to the output directory.
pub fn unified(changes: &[FileChange]) -> String {
    let mut out = String::new();
    for c in changes {
        let (from, to) = match c.change {
            Change::Added => ("/dev/null".to_string(), format!("b/{}", c.path)),
            Change::Removed => (format!("a/{}", c.path), "/dev/null".to_string()),
            Change::Changed => (format!("a/{}", c.path), format!("b/{}", c.path)),
        };
        out.push_str(&unified_diff(&c.old, &c.new, &from, &to));
    }
    out
}

/// Where a generated file belongs: (topology, host, target).
fn locate(path: &str) -> (String, Option<String>, String) {
    let parts: Vec<&str> = path.split('/').collect();
    let topology = parts.first().copied().unwrap_or_default().to_string();
    let rest = &parts[1.min(parts.len())..];
    let stem = |f: &str| f.rsplit_once('.').map_or(f, |(s, _)| s).to_string();
    match rest {
        ["compose", file] => (topology, Some(stem(file)), "compose".into()),
        ["env", host, _] => (topology, Some(host.to_string()), "env".into()),
        ["firewall", file] => (topology, Some(stem(file)), "firewall".into()),
        ["k8s", ..] => (topology, None, "kubernetes".into()),
        [target @ ("nginx" | "haproxy" | "prometheus"), ..] => (topology, None, target.to_string()),
        // A service's own files: per host (`<service>/<host>/...`) or shared.
        [service, host, _] if *host != "image" => {
            (topology, Some(host.to_string()), service.to_string())
        }
        [service, ..] if rest.len() > 1 => (topology, None, service.to_string()),
        _ => (topology, None, "files".into()),
    }
}

/// A compose file's services, each flattened (`settings`).
type Services = IndexMap<String, BTreeMap<String, String>>;

fn services(text: &str) -> Services {
    let v: serde_norway::Value = serde_norway::from_str(text).unwrap_or_default();
    v.get("services")
        .and_then(|s| s.as_mapping())
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| {
            let mut flat = BTreeMap::new();
            settings("", v, &mut flat);
            Some((k.as_str()?.to_string(), flat))
        })
        .collect()
}

/// The settings of a compose service, flattened: `environment.DATABASE_URL`
/// to its value; a list is one value, written as YAML writes it in a line.
fn settings(prefix: &str, v: &serde_norway::Value, out: &mut BTreeMap<String, String>) {
    match v {
        // An empty mapping is a setting too (`healthcheck: {}`).
        serde_norway::Value::Mapping(m) if !m.is_empty() => {
            for (k, v) in m {
                let key = match k.as_str() {
                    Some(k) => k.to_string(),
                    None => serde_json::to_string(k).unwrap_or_default(),
                };
                let path = if prefix.is_empty() {
                    key
                } else {
                    format!("{prefix}.{key}")
                };
                settings(&path, v, out);
            }
        }
        scalar_or_list => {
            let text = match scalar_or_list {
                serde_norway::Value::String(s) => s.clone(),
                other => serde_json::to_string(other).unwrap_or_default(),
            };
            out.insert(prefix.to_string(), text);
        }
    }
}

/// The services a compose file's change adds (`+`), removes (`-`) and
/// changes (`~`), then what changed in each, setting by setting:
/// `~ api.environment.DATABASE_URL: OLD -> NEW`, `+` and `-` for a setting
/// added or removed, as a Terraform plan shows it.
fn compose_changes(c: &FileChange) -> (Vec<String>, Vec<String>) {
    let (old, new) = (services(&c.old), services(&c.new));
    let mut marks = Vec::new();
    let mut lines = Vec::new();
    for (name, after) in &new {
        let Some(before) = old.get(name) else {
            marks.push(format!("+{name}"));
            continue;
        };
        if before == after {
            continue;
        }
        marks.push(format!("~{name}"));
        for (key, value) in after {
            match before.get(key) {
                None => lines.push(format!("+ {name}.{key}: {value}")),
                Some(was) if was != value => {
                    lines.push(format!("~ {name}.{key}: {was} -> {value}"))
                }
                Some(_) => {}
            }
        }
        for (key, was) in before {
            if !after.contains_key(key) {
                lines.push(format!("- {name}.{key}: {was}"));
            }
        }
    }
    marks.extend(
        old.keys()
            .filter(|k| !new.contains_key(*k))
            .map(|k| format!("-{k}")),
    );
    (marks, lines)
}

/// A reviewer's summary: per topology, per host (then the files of no single
/// host), one line per changed file with its target, what happened and the
/// lines added and removed; for compose files, the services, and what
/// changed in each setting by setting.
pub fn summary(changes: &[FileChange]) -> String {
    if changes.is_empty() {
        return "no generated file changes\n".into();
    }
    type Group = BTreeMap<Option<String>, Vec<(String, String)>>;
    let mut topologies: BTreeMap<String, Group> = BTreeMap::new();
    for c in changes {
        let (topology, host, target) = locate(&c.path);
        let (plus, minus) = line_counts(&c.old, &c.new);
        let what = match c.change {
            Change::Added => "added",
            Change::Removed => "removed",
            Change::Changed => "changed",
        };
        let mut line = format!("{what} {} (+{plus} -{minus})", c.path);
        if target == "compose" {
            let (services, settings) = compose_changes(c);
            if !services.is_empty() {
                line.push_str(&format!(": services {}", services.join(" ")));
            }
            for setting in settings {
                line.push_str(&format!("\n               {setting}"));
            }
        }
        topologies
            .entry(topology)
            .or_default()
            .entry(host)
            .or_default()
            .push((target, line));
    }
    let files = changes.len();
    let mut out = format!(
        "{files} generated file{} change{}\n",
        if files == 1 { "" } else { "s" },
        if files == 1 { "s" } else { "" }
    );
    for (topology, hosts) in topologies {
        out.push_str(&format!("\ntopology {topology}\n"));
        // Hosts first, in name order; then the files of the whole topology.
        let mut groups: Vec<_> = hosts.into_iter().collect();
        groups.sort_by_key(|(h, _)| (h.is_none(), h.clone()));
        for (host, lines) in groups {
            match host {
                Some(h) => out.push_str(&format!("  host {h}\n")),
                None => out.push_str("  all hosts\n"),
            }
            for (target, line) in lines {
                out.push_str(&format!("    {target:<10} {line}\n"));
            }
        }
    }
    out
}
