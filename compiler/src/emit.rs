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

/// A manifest's source alone (its list of files skipped, not collected).
#[derive(serde::Deserialize)]
struct ManifestSource {
    source: String,
}

fn read_manifest<M: serde::de::DeserializeOwned>(out: &Path, topology: &str) -> Option<M> {
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
    let Some(m) = read_manifest::<ManifestIn>(out, topology) else {
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
            // A staging tree (`.<topology>.stackc-new`) is not a topology.
            if name.starts_with('.') {
                continue;
            }
            if read_manifest::<ManifestSource>(out, &name)
                .is_some_and(|m| same_source(&m.source, source))
            {
                names.push(name);
            }
        }
    }
    names.sort();
    names
}

/// One topology's output as a build makes it, file by file: each generated file
/// compared with the one on disk and, when it changed, written into the staging
/// tree `.<topology>.stackc-new/` at once, so that a build holds one file at a
/// time, not its whole output. Nothing in the topology's directory changes
/// until `commit`.
pub struct Stager {
    out: PathBuf,
    topology: String,
    /// The files this topology's manifest says stackc generated.
    owned: BTreeSet<String>,
    staging: PathBuf,
    /// Directories made in the staging tree (thousands of env files share one).
    made: BTreeSet<PathBuf>,
    /// Every generated path, in order.
    generated: Vec<String>,
    written: Vec<String>,
    unchanged: Vec<String>,
    /// The first problem; later files are only listed.
    error: Option<EmitError>,
}

impl Stager {
    /// Removes the staging tree a killed build may have left.
    pub fn new(out: &Path, topology: &str, source: &str) -> Stager {
        let staging = staging_dir(out, topology);
        let mut error = None;
        if fs::symlink_metadata(&staging).is_ok() {
            if let Err(e) = fs::remove_dir_all(&staging) {
                error = Some(EmitError::Io(staging.clone(), e));
            }
        }
        Stager {
            out: out.to_path_buf(),
            topology: topology.to_string(),
            owned: owned_files(out, topology, source),
            staging,
            made: BTreeSet::new(),
            generated: Vec::new(),
            written: Vec::new(),
            unchanged: Vec::new(),
            error,
        }
    }

    /// Stages one generated file: refused when a file stackc does not own is in
    /// its way, skipped when the one on disk has the same bytes.
    pub fn stage(&mut self, a: &Artifact) {
        self.generated.push(a.path.clone());
        if self.error.is_some() {
            return;
        }
        if let Err(e) = self.try_stage(a) {
            self.error = Some(e);
        }
    }

    fn try_stage(&mut self, a: &Artifact) -> Result<(), EmitError> {
        let path = self.out.join(&a.path);
        match fs::symlink_metadata(&path) {
            Ok(meta) => {
                if !self.owned.contains(&a.path) || !meta.is_file() {
                    return Err(EmitError::NotOwned(path));
                }
                let same = meta.len() == a.contents.len() as u64
                    && fs::read(&path).is_ok_and(|old| old == a.contents.as_bytes());
                if same {
                    self.unchanged.push(a.path.clone());
                    return Ok(());
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(EmitError::Io(path, e)),
        }
        let prefix = format!("{}/", self.topology);
        let target = self
            .staging
            .join(a.path.strip_prefix(&prefix).unwrap_or(&a.path));
        make_parent(&mut self.made, &target)?;
        fs::write(&target, a.contents.as_bytes()).map_err(|e| EmitError::Io(target, e))?;
        self.written.push(a.path.clone());
        Ok(())
    }

    /// Removes what was staged (the build failed).
    pub fn discard(self) {
        if fs::symlink_metadata(&self.staging).is_ok() {
            let _ = fs::remove_dir_all(&self.staging);
        }
    }
}

impl crate::targets::Sink for Stager {
    fn file(&mut self, artifact: Artifact) {
        self.stage(&artifact);
    }
}

/// Writes `artifacts` (every file of the topologies they are in) under `out`:
/// `Stager` and `commit` in one call.
pub fn write(
    out: &Path,
    source: &str,
    artifacts: &[Artifact],
    scope: &[String],
) -> Result<Report, EmitError> {
    let mut stagers: Vec<Stager> = Vec::new();
    for a in artifacts {
        let topology = a.path.split('/').next().unwrap_or_default();
        let i = match stagers.iter().position(|s| s.topology == topology) {
            Some(i) => i,
            None => {
                stagers.push(Stager::new(out, topology, source));
                stagers.len() - 1
            }
        };
        stagers[i].stage(a);
    }
    commit(out, source, stagers, scope)
}

/// Puts staged topologies in place. `scope` is the set of topologies this build
/// owns the output of (the staged ones, and ones removed from the file): stale
/// files are removed only there. Each changed topology is swapped in whole; see
/// the module's documentation. On any error nothing is changed and every staging
/// tree is removed.
pub fn commit(
    out: &Path,
    source: &str,
    stagers: Vec<Stager>,
    scope: &[String],
) -> Result<Report, EmitError> {
    let mut stagers = stagers;
    if let Some(error) = stagers.iter_mut().find_map(|s| s.error.take()) {
        for s in stagers {
            s.discard();
        }
        return Err(error);
    }
    let result = put_in_place(out, source, &stagers, scope);
    if result.is_err() {
        for s in stagers {
            s.discard();
        }
    }
    result
}

fn put_in_place(
    out: &Path,
    source: &str,
    stagers: &[Stager],
    scope: &[String],
) -> Result<Report, EmitError> {
    let mut report = Report::default();
    let mut generated: BTreeSet<&str> = BTreeSet::new();
    for s in stagers {
        report.written.extend(s.written.iter().cloned());
        report.unchanged.extend(s.unchanged.iter().cloned());
        generated.extend(s.generated.iter().map(String::as_str));
    }
    // The files the manifests of `scope` list: a staged topology's stager read
    // its manifest already (at N = 10000, 20,000 entries).
    let mut unstaged = Vec::new();
    let mut owned: BTreeSet<&str> = BTreeSet::new();
    for t in scope {
        match stagers.iter().find(|s| &s.topology == t) {
            Some(s) => owned.extend(s.owned.iter().map(String::as_str)),
            None => unstaged.push(owned_files(out, t, source)),
        }
    }
    owned.extend(unstaged.iter().flatten().map(String::as_str));
    report.removed = owned
        .into_iter()
        .filter(|p| !generated.contains(p) && out.join(p).is_file())
        .map(str::to_string)
        .collect();
    // The topologies with something to write or remove.
    let topology = |p: &str| p.split('/').next().unwrap_or_default().to_string();
    let mut changed: BTreeSet<String> = report.written.iter().map(|p| topology(p)).collect();
    changed.extend(report.removed.iter().map(|p| topology(p)));
    fs::create_dir_all(out).map_err(|e| EmitError::Io(out.to_path_buf(), e))?;
    // The leftover tree of a killed build, even when nothing changes now (a
    // staged topology's was removed when its stager was made).
    for t in scope.iter().chain(&changed) {
        if stagers.iter().any(|s| &s.topology == t) {
            continue;
        }
        let leftover = staging_dir(out, t);
        if fs::symlink_metadata(&leftover).is_ok() {
            fs::remove_dir_all(&leftover).map_err(|e| EmitError::Io(leftover.clone(), e))?;
        }
    }
    // Each topology's tree is its own: they are put in place on threads of
    // their own.
    let removed: BTreeSet<&str> = report.removed.iter().map(String::as_str).collect();
    let unchanged: BTreeSet<&str> = report.unchanged.iter().map(String::as_str).collect();
    let changed: Vec<String> = changed.into_iter().collect();
    let results = crate::parallel_map_or_unwind(&changed, |t| -> Result<(), EmitError> {
        let tree = Tree {
            out,
            topology: t,
            generated: &generated,
            unchanged: &unchanged,
            removed: &removed,
        };
        match tree.swap() {
            Ok(()) => Ok(()),
            // This file system cannot exchange directories: file by file.
            Err(SwapError::Unsupported) => {
                let written: Vec<&str> = stagers
                    .iter()
                    .filter(|s| &s.topology == t)
                    .flat_map(|s| s.written.iter().map(String::as_str))
                    .collect();
                tree.file_by_file(&written)
            }
            Err(SwapError::Failed(e)) => Err(e),
        }
    });
    results.into_iter().collect::<Result<(), EmitError>>()?;
    Ok(report)
}

enum SwapError {
    /// The file system has no `RENAME_EXCHANGE`.
    Unsupported,
    Failed(EmitError),
}

impl From<EmitError> for SwapError {
    fn from(e: EmitError) -> SwapError {
        SwapError::Failed(e)
    }
}

/// An exclusive hold on an output directory for one build, from before it
/// reads the manifests until its trees are in place: two builds into one
/// `--out` run one after the other, so that each sees the other's result and
/// none removes the other's staging trees. It is a `flock` on the directory
/// itself (no lock file among the outputs), released when the process ends,
/// however it ends.
pub struct OutputLock {
    _dir: fs::File,
}

impl OutputLock {
    /// Takes the lock, waiting for a build that holds it (`waiting` is called
    /// once, before the wait, to say so).
    pub fn take(out: &Path, waiting: impl FnOnce()) -> io::Result<OutputLock> {
        use rustix::fs::{flock, FlockOperation};
        fs::create_dir_all(out)?;
        let dir = fs::File::open(out)?;
        if flock(&dir, FlockOperation::NonBlockingLockExclusive).is_err() {
            waiting();
            flock(&dir, FlockOperation::LockExclusive)?;
        }
        Ok(OutputLock { _dir: dir })
    }
}

/// Where a topology's new tree is staged.
fn staging_dir(out: &Path, topology: &str) -> PathBuf {
    out.join(format!(".{topology}.stackc-new"))
}

/// Makes the directory of `path` unless `made` has it (thousands of env files
/// share one).
fn make_parent(made: &mut BTreeSet<PathBuf>, path: &Path) -> Result<(), EmitError> {
    if let Some(dir) = path.parent() {
        if !made.contains(dir) {
            fs::create_dir_all(dir).map_err(|e| EmitError::Io(dir.to_path_buf(), e))?;
            made.insert(dir.to_path_buf());
        }
    }
    Ok(())
}

/// One changed topology of a build, its changed files staged.
struct Tree<'a> {
    out: &'a Path,
    topology: &'a str,
    generated: &'a BTreeSet<&'a str>,
    unchanged: &'a BTreeSet<&'a str>,
    removed: &'a BTreeSet<&'a str>,
}

impl Tree<'_> {
    fn old(&self) -> PathBuf {
        self.out.join(self.topology)
    }

    fn staging(&self) -> PathBuf {
        staging_dir(self.out, self.topology)
    }

    /// Completes the staged tree and exchanges it with the old one.
    fn swap(&self) -> Result<(), SwapError> {
        let io = |p: &Path| {
            let p = p.to_path_buf();
            move |e: io::Error| SwapError::Failed(EmitError::Io(p, e))
        };
        let old = self.old();
        let new = self.staging();
        fs::create_dir_all(&new).map_err(io(&new))?;
        // Each directory once: thousands of env files share one.
        let mut made: BTreeSet<PathBuf> = BTreeSet::new();
        // What stays: files stackc did not generate, and generated files that
        // did not change, linked (not copied) into the new tree.
        if old.is_dir() {
            for entry in walkdir::WalkDir::new(&old).min_depth(1) {
                let entry = entry.map_err(|e| EmitError::Io(old.clone(), e.into()))?;
                if entry.file_type().is_dir() {
                    continue;
                }
                let rel = entry.path().strip_prefix(&old).unwrap_or(entry.path());
                let key = format!(
                    "{}/{}",
                    self.topology,
                    rel.to_string_lossy().replace('\\', "/")
                );
                let name = entry.file_name().to_string_lossy();
                let generated = self.generated.contains(key.as_str());
                let keep_generated = generated && self.unchanged.contains(key.as_str());
                let foreign = !generated && !self.removed.contains(key.as_str());
                if name.ends_with(".stackc-tmp") || !(keep_generated || foreign) {
                    continue;
                }
                let target = new.join(rel);
                make_parent(&mut made, &target)?;
                if fs::hard_link(entry.path(), &target).is_err() {
                    fs::copy(entry.path(), &target).map_err(io(&target))?;
                }
            }
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
                Err(SwapError::Unsupported)
            }
            Err(e) => Err(SwapError::Failed(EmitError::Io(old, e.into()))),
        }
    }

    /// Where directories cannot be exchanged: each changed file renamed from the
    /// staging tree into place (the manifest last, so that an interrupted build
    /// never lists files it did not write), then stale files removed.
    fn file_by_file(&self, written: &[&str]) -> Result<(), EmitError> {
        let new = self.staging();
        let prefix = format!("{}/", self.topology);
        let mut written = written.to_vec();
        written.sort_by_key(|p| p.ends_with(MANIFEST));
        let mut made: BTreeSet<PathBuf> = BTreeSet::new();
        for p in written {
            let from = new.join(p.strip_prefix(&prefix).unwrap_or(p));
            let to = self.out.join(p);
            make_parent(&mut made, &to)?;
            fs::rename(&from, &to).map_err(|e| EmitError::Io(to.clone(), e))?;
        }
        for p in self.removed.iter().filter(|p| p.starts_with(&prefix)) {
            let full = self.out.join(p);
            if full.is_file() {
                fs::remove_file(&full).map_err(|e| EmitError::Io(full.clone(), e))?;
                remove_empty_parents(self.out, &full);
            }
        }
        fs::remove_dir_all(&new).map_err(|e| EmitError::Io(new.clone(), e))
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn put(root: &Path, rel: &str, text: &str) {
        let path = root.join(rel);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).expect("a directory");
        }
        fs::write(path, text).expect("a file");
    }

    fn read(root: &Path, rel: &str) -> Option<String> {
        fs::read_to_string(root.join(rel)).ok()
    }

    /// Where directories cannot be exchanged, a staged topology is put in place
    /// file by file: changed files renamed over the old ones, stale files
    /// removed, unchanged and foreign files left, the staging tree gone.
    #[test]
    fn file_by_file_puts_a_staged_tree_in_place() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let out = dir.path();
        put(out, "t/a.txt", "old a\n");
        put(out, "t/stale/s.txt", "stale\n");
        put(out, "t/mine.txt", "written by hand\n");
        put(out, "t/sub/b.txt", "b\n");
        put(out, "t/stackc-manifest.json", "old manifest\n");
        put(out, ".t.stackc-new/a.txt", "new a\n");
        put(out, ".t.stackc-new/c/d.txt", "new d\n");
        put(out, ".t.stackc-new/stackc-manifest.json", "new manifest\n");
        let generated: BTreeSet<&str> = [
            "t/a.txt",
            "t/c/d.txt",
            "t/sub/b.txt",
            "t/stackc-manifest.json",
        ]
        .into();
        let unchanged: BTreeSet<&str> = ["t/sub/b.txt"].into();
        let removed: BTreeSet<&str> = ["t/stale/s.txt"].into();
        let tree = Tree {
            out,
            topology: "t",
            generated: &generated,
            unchanged: &unchanged,
            removed: &removed,
        };
        tree.file_by_file(&["t/stackc-manifest.json", "t/a.txt", "t/c/d.txt"])
            .expect("put in place");
        assert_eq!(read(out, "t/a.txt").as_deref(), Some("new a\n"));
        assert_eq!(read(out, "t/c/d.txt").as_deref(), Some("new d\n"));
        assert_eq!(
            read(out, "t/stackc-manifest.json").as_deref(),
            Some("new manifest\n")
        );
        assert_eq!(read(out, "t/sub/b.txt").as_deref(), Some("b\n"));
        assert_eq!(
            read(out, "t/mine.txt").as_deref(),
            Some("written by hand\n")
        );
        assert!(
            !out.join("t/stale").exists(),
            "a stale file and its empty directory go"
        );
        assert!(!out.join(".t.stackc-new").exists(), "the staging tree goes");
    }

    /// A stager writes only what changed, refuses a file it does not own, and
    /// leaves the topology's directory alone until the commit.
    #[test]
    fn a_stager_stages_changes_and_refuses_foreign_files() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let out = dir.path();
        put(
            out,
            "t/stackc-manifest.json",
            r#"{"source": "s.stack", "files": [{"path": "same.txt"}, {"path": "changed.txt"}]}"#,
        );
        put(out, "t/same.txt", "same\n");
        put(out, "t/changed.txt", "before\n");
        let mut stager = Stager::new(out, "t", "s.stack");
        for (path, contents) in [("t/same.txt", "same\n"), ("t/changed.txt", "after\n")] {
            stager.stage(&Artifact {
                path: path.into(),
                contents: contents.into(),
            });
        }
        assert_eq!(stager.unchanged, ["t/same.txt"]);
        assert_eq!(stager.written, ["t/changed.txt"]);
        assert!(stager.error.is_none());
        assert_eq!(read(out, "t/changed.txt").as_deref(), Some("before\n"));
        assert_eq!(
            read(out, ".t.stackc-new/changed.txt").as_deref(),
            Some("after\n")
        );
        assert!(!out.join(".t.stackc-new/same.txt").exists());

        put(out, "t/hand.txt", "mine\n");
        stager.stage(&Artifact {
            path: "t/hand.txt".into(),
            contents: "generated\n".into(),
        });
        assert!(matches!(stager.error, Some(EmitError::NotOwned(_))));
        let error = commit(out, "s.stack", vec![stager], &["t".to_string()]);
        assert!(matches!(error, Err(EmitError::NotOwned(_))));
        assert_eq!(read(out, "t/hand.txt").as_deref(), Some("mine\n"));
        assert_eq!(read(out, "t/changed.txt").as_deref(), Some("before\n"));
        assert!(!out.join(".t.stackc-new").exists(), "the staging tree goes");
    }
}
