//! Whose a topology's directory is: its manifest names the source.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use crate::targets::MANIFEST;

/// The source a build is of, as manifests name it: its file name (the only
/// name manifests of earlier versions recorded) and its path from the output
/// directory, which tells two `app.stack` apart.
#[derive(Debug, Clone)]
pub struct Owner {
    pub name: String,
    pub path: String,
}

impl Owner {
    pub fn of(options: &crate::options::Options) -> Owner {
        Owner {
            name: options.output_name().to_string(),
            path: options.source_from_out.clone(),
        }
    }

    /// Whether a manifest naming `source` (and `source_path`) is this source's.
    fn owns(&self, source: &str, source_path: Option<&str>) -> bool {
        match source_path {
            Some(path) => path == self.path,
            // Written before manifests recorded the path: by file name (or by
            // the path as given on the command line, earlier still).
            None => {
                source == self.name
                    || Path::new(source)
                        .file_name()
                        .is_some_and(|n| n == self.name.as_str())
            }
        }
    }
}

/// Whose a manifest is (its list of files skipped, not collected).
#[derive(serde::Deserialize)]
struct ManifestOwner {
    source: String,
    source_path: Option<String>,
}

#[derive(serde::Deserialize)]
struct ManifestIn {
    source: String,
    source_path: Option<String>,
    files: Vec<ManifestFileIn>,
}

#[derive(serde::Deserialize)]
struct ManifestFileIn {
    path: String,
}

fn read_manifest<M: serde::de::DeserializeOwned>(out: &Path, topology: &str) -> Option<M> {
    let text = fs::read_to_string(out.join(topology).join(MANIFEST)).ok()?;
    serde_json::from_str(&text).ok()
}

/// Whose a topology's directory is, by its manifest.
pub(super) enum Claim {
    /// No manifest (or none stackc can read): nothing in it is stackc's.
    None,
    /// The files the manifest lists (out-relative, manifest included), and
    /// whether they are this source's.
    Listed {
        files: BTreeSet<String>,
        ours: bool,
        source: String,
    },
}

pub(super) fn claim(out: &Path, topology: &str, owner: &Owner) -> Claim {
    let Some(m) = read_manifest::<ManifestIn>(out, topology) else {
        return Claim::None;
    };
    let ours = owner.owns(&m.source, m.source_path.as_deref());
    let mut files = BTreeSet::new();
    for f in m.files {
        // Never follow a path out of the topology's directory.
        if f.path.split('/').any(|s| s == ".." || s.is_empty()) || f.path.starts_with('/') {
            continue;
        }
        files.insert(format!("{topology}/{}", f.path));
    }
    files.insert(format!("{topology}/{MANIFEST}"));
    let source = m.source_path.unwrap_or(m.source);
    Claim::Listed {
        files,
        ours,
        source,
    }
}

/// The files that an existing manifest says stackc generated from `owner`'s
/// source (out-relative paths, manifest included). A missing manifest, or one
/// written for another source, owns nothing.
pub fn owned_files(out: &Path, topology: &str, owner: &Owner) -> BTreeSet<String> {
    match claim(out, topology, owner) {
        Claim::Listed {
            files, ours: true, ..
        } => files,
        _ => BTreeSet::new(),
    }
}

/// Topology directories in `out` whose manifest was written for `owner`.
pub fn existing_topologies(out: &Path, owner: &Owner) -> Vec<String> {
    let mut names = Vec::new();
    if let Ok(entries) = fs::read_dir(out) {
        for e in entries.flatten() {
            let Some(name) = e.file_name().to_str().map(str::to_string) else {
                continue;
            };
            // The staging directory (and anything hidden) is not a topology.
            if name.starts_with('.') {
                continue;
            }
            if read_manifest::<ManifestOwner>(out, &name)
                .is_some_and(|m| owner.owns(&m.source, m.source_path.as_deref()))
            {
                names.push(name);
            }
        }
    }
    names.sort();
    names
}

/// The topology directories of `scope` whose manifest names another source
/// than `owner`'s, with that source: a build would refuse them.
pub fn held_by_others(
    out: &Path,
    owner: &Owner,
    scope: &[String],
) -> Vec<(std::path::PathBuf, String)> {
    scope
        .iter()
        .filter_map(|t| {
            let m = read_manifest::<ManifestOwner>(out, t)?;
            let ours = owner.owns(&m.source, m.source_path.as_deref());
            (!ours).then(|| (out.join(t), m.source_path.unwrap_or(m.source)))
        })
        .collect()
}
