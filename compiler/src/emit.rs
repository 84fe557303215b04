//! Writing artifacts to disk: the only stage (with `cli`) that touches the file
//! system.
//!
//! - Ownership: a file belongs to stackc when the manifest of its topology
//!   (`<topology>/stackc-manifest.json`) lists it. stackc refuses to overwrite or
//!   delete any other file.
//! - Atomicity, per topology: the new tree of a topology is built beside it
//!   (`.<topology>.stackc-new/`: changed files written, unchanged and foreign
//!   files hard-linked) and swapped with the old one in one `renameat2`
//!   `RENAME_EXCHANGE`, so a build killed at any moment leaves the old tree or
//!   the new one, never a mix. The leftover directory of a killed build is
//!   removed by the next. Where the file system cannot exchange, every file is
//!   staged beside its destination and renamed into place.
//! - Staleness: files listed in an old manifest and not generated now are removed.
//! - Unchanged files are not rewritten.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::targets::{Artifact, MANIFEST};

#[derive(Debug)]
pub enum EmitError {
    /// A file that stackc did not generate is in the way.
    NotOwned(PathBuf),
    Io(PathBuf, io::Error),
}

impl std::fmt::Display for EmitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EmitError::NotOwned(p) => write!(
                f,
                "refusing to overwrite {}: stackc did not generate it from this source file (no stackc manifest of this source lists it); move it away or choose another --out",
                p.display()
            ),
            EmitError::Io(p, e) => write!(f, "{}: {e}", p.display()),
        }
    }
}

/// What a write did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub written: Vec<String>,
    pub unchanged: Vec<String>,
    pub removed: Vec<String>,
}

#[derive(serde::Deserialize)]
struct ManifestIn {
    source: String,
    files: Vec<ManifestFileIn>,
}

#[derive(serde::Deserialize)]
struct ManifestFileIn {
    path: String,
}

fn read_manifest(out: &Path, topology: &str) -> Option<ManifestIn> {
    let text = fs::read_to_string(out.join(topology).join(MANIFEST)).ok()?;
    serde_json::from_str(&text).ok()
}

/// Whether a manifest's source is `source` (a file name). Manifests of earlier
/// versions recorded the path as given on the command line.
fn same_source(recorded: &str, source: &str) -> bool {
    recorded == source || Path::new(recorded).file_name().is_some_and(|n| n == source)
}

/// The files that an existing manifest says stackc generated from `source`
/// (out-relative paths, manifest included). A missing manifest, or one written for
/// another source file, owns nothing.
pub fn owned_files(out: &Path, topology: &str, source: &str) -> BTreeSet<String> {
    let mut owned = BTreeSet::new();
    let Some(m) = read_manifest(out, topology) else {
        return owned;
    };
    if !same_source(&m.source, source) {
        return owned;
    }
    for f in m.files {
        // Never follow a path out of the topology's directory.
        if f.path.split('/').any(|s| s == ".." || s.is_empty()) || f.path.starts_with('/') {
            continue;
        }
        owned.insert(format!("{topology}/{}", f.path));
    }
    owned.insert(format!("{topology}/{MANIFEST}"));
    owned
}

/// Topology directories in `out` whose manifest was written for `source`.
pub fn existing_topologies(out: &Path, source: &str) -> Vec<String> {
    let mut names = Vec::new();
    if let Ok(entries) = fs::read_dir(out) {
        for e in entries.flatten() {
            let Some(name) = e.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if read_manifest(out, &name).is_some_and(|m| same_source(&m.source, source)) {
                names.push(name);
            }
        }
    }
    names.sort();
    names
}

/// Writes `artifacts` under `out`. `scope` is the set of topologies this build owns
/// the output of: stale files are removed only there. Each changed topology is
/// swapped in whole; see the module's documentation.
pub fn write(
    out: &Path,
    source: &str,
    artifacts: &[Artifact],
    scope: &[String],
) -> Result<Report, EmitError> {
    let (owned, changes, mut report) = classify(out, source, artifacts, scope)?;
    report.written = changes.iter().map(|(a, _)| a.path.clone()).collect();
    let new: BTreeSet<&str> = artifacts.iter().map(|a| a.path.as_str()).collect();
    report.removed = owned
        .iter()
        .filter(|p| !new.contains(p.as_str()) && out.join(p).is_file())
        .cloned()
        .collect();
    // The topologies with something to write or remove.
    let topology = |p: &str| p.split('/').next().unwrap_or_default().to_string();
    let mut changed: BTreeSet<String> = report.written.iter().map(|p| topology(p)).collect();
    changed.extend(report.removed.iter().map(|p| topology(p)));
    fs::create_dir_all(out).map_err(|e| EmitError::Io(out.to_path_buf(), e))?;
    // The leftover tree of a killed build, even when nothing changes now.
    for t in scope.iter().chain(&changed) {
        let leftover = out.join(format!(".{t}.stackc-new"));
        if fs::symlink_metadata(&leftover).is_ok() {
            fs::remove_dir_all(&leftover).map_err(|e| EmitError::Io(leftover.clone(), e))?;
        }
    }
    // Each topology's tree is its own: they are written on threads of their own.
    let removed: BTreeSet<&str> = report.removed.iter().map(String::as_str).collect();
    let unchanged: BTreeSet<&str> = report.unchanged.iter().map(String::as_str).collect();
    let changed: Vec<String> = changed.into_iter().collect();
    let results = crate::parallel_map(&changed, |t| -> Result<(), EmitError> {
        let prefix = format!("{t}/");
        let files: Vec<&Artifact> = artifacts
            .iter()
            .filter(|a| a.path.starts_with(&prefix))
            .collect();
        match swap_topology(out, t, &files, &unchanged, &removed) {
            Ok(()) => Ok(()),
            Err(SwapError::Unsupported) => {
                // This file system cannot exchange directories: file by file.
                let files: Vec<Artifact> = files.into_iter().cloned().collect();
                let scope = vec![t.clone()];
                write_in_place(out, source, &files, &scope).map(|_| ())
            }
            Err(SwapError::Io(path, e)) => Err(EmitError::Io(path, e)),
        }
    });
    for result in results {
        match result {
            Ok(written) => written?,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
    Ok(report)
}

enum SwapError {
    /// The file system has no `RENAME_EXCHANGE`.
    Unsupported,
    Io(PathBuf, io::Error),
}

/// Builds the new tree of one topology beside the old one and exchanges them.
fn swap_topology(
    out: &Path,
    topology: &str,
    files: &[&Artifact],
    unchanged: &BTreeSet<&str>,
    removed: &BTreeSet<&str>,
) -> Result<(), SwapError> {
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |e: io::Error| SwapError::Io(p, e)
    };
    let old = out.join(topology);
    let new = out.join(format!(".{topology}.stackc-new"));
    // A killed build's leftover.
    if fs::symlink_metadata(&new).is_ok() {
        fs::remove_dir_all(&new).map_err(io(&new))?;
    }
    fs::create_dir_all(&new).map_err(io(&new))?;
    let generated: BTreeSet<&str> = files.iter().map(|a| a.path.as_str()).collect();
    // Each directory once: thousands of env files share one.
    let mut made: BTreeSet<PathBuf> = BTreeSet::new();
    let mut parent = |target: &Path| -> Result<(), SwapError> {
        if let Some(dir) = target.parent() {
            if made.insert(dir.to_path_buf()) {
                fs::create_dir_all(dir).map_err(io(dir))?;
            }
        }
        Ok(())
    };
    // What stays: files stackc did not generate, and generated files that did
    // not change, linked (not copied) into the new tree.
    if old.is_dir() {
        for entry in walkdir::WalkDir::new(&old).min_depth(1) {
            let entry = entry.map_err(|e| SwapError::Io(old.clone(), e.into()))?;
            if entry.file_type().is_dir() {
                continue;
            }
            let rel = entry.path().strip_prefix(&old).unwrap_or(entry.path());
            let key = format!("{topology}/{}", rel.to_string_lossy().replace('\\', "/"));
            let name = entry.file_name().to_string_lossy();
            let keep_generated =
                generated.contains(key.as_str()) && unchanged.contains(key.as_str());
            let foreign = !generated.contains(key.as_str()) && !removed.contains(key.as_str());
            if name.ends_with(".stackc-tmp") || !(keep_generated || foreign) {
                continue;
            }
            let target = new.join(rel);
            parent(&target)?;
            if fs::hard_link(entry.path(), &target).is_err() {
                fs::copy(entry.path(), &target).map_err(io(&target))?;
            }
        }
    }
    for a in files {
        let rel = a
            .path
            .strip_prefix(&format!("{topology}/"))
            .unwrap_or(&a.path);
        if unchanged.contains(a.path.as_str()) {
            continue; // linked above
        }
        let target = new.join(rel);
        parent(&target)?;
        fs::write(&target, a.contents.as_bytes()).map_err(io(&target))?;
    }
    if !old.exists() {
        // The first build of this topology: one rename.
        return fs::rename(&new, &old).map_err(io(&old));
    }
    match rustix::fs::renameat_with(
        rustix::fs::CWD,
        &new,
        rustix::fs::CWD,
        &old,
        rustix::fs::RenameFlags::EXCHANGE,
    ) {
        Ok(()) => {
            // `new` now holds the old tree.
            fs::remove_dir_all(&new).map_err(io(&new))
        }
        Err(e)
            if e == rustix::io::Errno::INVAL
                || e == rustix::io::Errno::NOSYS
                || e == rustix::io::Errno::NOTSUP =>
        {
            let _ = fs::remove_dir_all(&new);
            Err(SwapError::Unsupported)
        }
        Err(e) => Err(SwapError::Io(old, e.into())),
    }
}

/// The files a build owns (by the manifests of `scope`), and the artifacts to
/// write (with their paths), after checking that none is in the way of a file
/// stackc does not own; the unchanged ones go into the report.
#[allow(clippy::type_complexity)]
fn classify<'a>(
    out: &Path,
    source: &str,
    artifacts: &'a [Artifact],
    scope: &[String],
) -> Result<(BTreeSet<String>, Vec<(&'a Artifact, PathBuf)>, Report), EmitError> {
    let mut owned = BTreeSet::new();
    for t in scope {
        owned.extend(owned_files(out, t, source));
    }
    let mut changes = Vec::new();
    let mut report = Report::default();
    for a in artifacts {
        let path = out.join(&a.path);
        match fs::symlink_metadata(&path) {
            Ok(meta) => {
                if !owned.contains(&a.path) || !meta.is_file() {
                    return Err(EmitError::NotOwned(path));
                }
                if fs::read(&path).is_ok_and(|old| old == a.contents.as_bytes()) {
                    report.unchanged.push(a.path.clone());
                    continue;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(EmitError::Io(path, e)),
        }
        changes.push((a, path));
    }
    Ok((owned, changes, report))
}

/// Writes file by file: each changed file staged beside its destination, then
/// renamed into place; stale files removed. (Where directories cannot be
/// exchanged.)
fn write_in_place(
    out: &Path,
    source: &str,
    artifacts: &[Artifact],
    scope: &[String],
) -> Result<Report, EmitError> {
    let (owned, mut changes, mut report) = classify(out, source, artifacts, scope)?;
    let new: BTreeSet<&str> = artifacts.iter().map(|a| a.path.as_str()).collect();
    let stale: Vec<&String> = owned.iter().filter(|p| !new.contains(p.as_str())).collect();

    // Stage every changed file next to its destination.
    let mut staged: Vec<(PathBuf, PathBuf)> = Vec::new();
    let cleanup = |staged: &[(PathBuf, PathBuf)]| {
        for (tmp, _) in staged {
            let _ = fs::remove_file(tmp);
        }
    };
    // The manifest goes last, so that an interrupted build never lists files it
    // did not write.
    changes.sort_by_key(|(a, _)| a.path.ends_with(MANIFEST));
    let mut made: BTreeSet<&Path> = BTreeSet::new();
    for (a, path) in &changes {
        let dir = path.parent().unwrap_or(out);
        // Each directory once: thousands of env files share one.
        if made.insert(dir) {
            if let Err(e) = fs::create_dir_all(dir) {
                cleanup(&staged);
                return Err(EmitError::Io(dir.to_path_buf(), e));
            }
        }
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
        let tmp = dir.join(format!(".{name}.stackc-tmp"));
        if let Err(e) = fs::write(&tmp, a.contents.as_bytes()) {
            cleanup(&staged);
            return Err(EmitError::Io(tmp, e));
        }
        staged.push((tmp, path.clone()));
    }
    for (tmp, path) in &staged {
        if let Err(e) = fs::rename(tmp, path) {
            cleanup(&staged);
            return Err(EmitError::Io(path.clone(), e));
        }
    }
    report.written = changes.iter().map(|(a, _)| a.path.clone()).collect();
    for path in stale {
        let full = out.join(path);
        if full.is_file() {
            fs::remove_file(&full).map_err(|e| EmitError::Io(full.clone(), e))?;
            report.removed.push(path.clone());
            remove_empty_parents(out, &full);
        }
    }
    Ok(report)
}

fn remove_empty_parents(out: &Path, file: &Path) {
    let mut dir = file.parent();
    while let Some(d) = dir {
        if d == out || !d.starts_with(out) || fs::remove_dir(d).is_err() {
            break;
        }
        dir = d.parent();
    }
}

/// Replaces a file's contents atomically: written beside it, then renamed over
/// it, keeping its permissions. (`stackc fmt` rewrites sources this way.)
pub fn replace_file(path: &Path, contents: &str) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.stackc-tmp"));
    fs::write(&tmp, contents)?;
    if let Ok(meta) = fs::metadata(path) {
        let _ = fs::set_permissions(&tmp, meta.permissions());
    }
    fs::rename(&tmp, path).inspect_err(|_| {
        let _ = fs::remove_file(&tmp);
    })
}

/// The files a build of `source` wrote for the topologies in `scope`, as they
/// are on disk now (manifests included), and the generated paths that hold a
/// file stackc does not own (a build would refuse them).
pub fn read_output(
    out: &Path,
    source: &str,
    scope: &[String],
    generated: &[Artifact],
) -> (Vec<Artifact>, Vec<PathBuf>) {
    let mut owned = BTreeSet::new();
    for t in scope {
        owned.extend(owned_files(out, t, source));
    }
    let files = owned
        .iter()
        .filter_map(|p| {
            let contents = fs::read_to_string(out.join(p)).ok()?;
            Some(Artifact {
                path: p.clone(),
                contents,
            })
        })
        .collect();
    let blocked = generated
        .iter()
        .filter(|a| !owned.contains(&a.path))
        .map(|a| out.join(&a.path))
        .filter(|p| fs::symlink_metadata(p).is_ok())
        .collect();
    (files, blocked)
}
