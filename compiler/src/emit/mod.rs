//! Writing artifacts to disk: the only stage (with `cli`) that touches the file
//! system.
//!
//! - Ownership: a file belongs to a source when the manifest of its topology
//!   (`<topology>/stackc-manifest.json`) lists it and names that source by its
//!   path from the output directory. stackc refuses to overwrite or delete any
//!   other file, to write through a symbolic link, or (unless forced) to
//!   replace another source's topology.
//! - Staging: a build writes its changed files into `.stackc-staging/new/<topology>/`
//!   (a directory it makes, with a `README` that says whose it is) and links
//!   the unchanged and foreign files in beside them, so that the staged tree is
//!   the topology's whole new tree.
//! - Durability: before any tree is put in place the output's file system is
//!   synced (`syncfs`), and after, the output directory (`fsync`), so that a
//!   power loss never leaves a completed swap with empty files behind it.
//! - Atomicity, per topology: the new tree is exchanged with the old one in one
//!   `renameat2(RENAME_EXCHANGE)`, so a build killed at any moment leaves the
//!   old tree or the new one, never a mix. Where the file system cannot
//!   exchange, the old tree is renamed aside (`.stackc-staging/old/<topology>`)
//!   and the new one renamed in: a build killed between the two leaves no tree
//!   in place and the old one aside, which the next build puts back first.
//!   The staging directory goes when the build ends; one a killed build left is
//!   recovered and removed by the next.
//! - Staleness: files listed in an old manifest and not generated now are not
//!   linked into the new tree.
//! - Unchanged files are not rewritten.

mod ownership;
pub(crate) mod staging;
mod tree;

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::targets::Artifact;

pub use ownership::{existing_topologies, held_by_others, owned_files, Owner};
pub use staging::{Stager, Staging, STAGING};
use tree::Tree;

#[derive(Debug)]
pub enum EmitError {
    /// A file that stackc did not generate is in the way.
    NotOwned(PathBuf),
    /// A symbolic link where stackc would write or look for its own files.
    Link(PathBuf),
    /// A topology directory whose manifest names another source.
    OtherSource {
        dir: PathBuf,
        source: String,
    },
    /// `.stackc-staging` is there and is not stackc's.
    NotStaging(PathBuf),
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
            EmitError::Link(p) => write!(
                f,
                "refusing to write through {}: it is a symbolic link, and stackc writes only files and directories of its own in its output; replace the link with a directory or choose another --out",
                p.display()
            ),
            EmitError::OtherSource { dir, source } => write!(
                f,
                "refusing to replace {}: it holds the output of {source} (its manifest says so), not of this file; build into another --out, or pass --force to replace it",
                dir.display()
            ),
            EmitError::NotStaging(p) => write!(
                f,
                "refusing to use {}: stackc stages its builds in a directory of that name, and this one is not stackc's (it has no stackc README); move it away",
                p.display()
            ),
            EmitError::Io(p, e) => write!(f, "{}: {e}", p.display()),
        }
    }
}

/// What a build did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub written: Vec<String>,
    pub unchanged: Vec<String>,
    pub removed: Vec<String>,
}

/// Writes `artifacts` (every file of the topologies they are in) under `out`:
/// `Staging`, `Stager` and `commit` in one call, for `owner`'s source.
pub fn write(
    out: &Path,
    owner: &Owner,
    artifacts: &[Artifact],
    scope: &[String],
) -> Result<Report, EmitError> {
    let staging = Staging::prepare(out)?;
    let mut stagers: Vec<Stager> = Vec::new();
    for a in artifacts {
        let topology = a.path.split('/').next().unwrap_or_default();
        let i = match stagers.iter().position(|s| s.topology == topology) {
            Some(i) => i,
            None => {
                stagers.push(Stager::new(&staging, topology, owner, false));
                stagers.len() - 1
            }
        };
        stagers[i].stage(a);
    }
    commit(&staging, owner, stagers, scope)
}

/// Puts staged topologies in place. `scope` is the set of topologies this build
/// owns the output of (the staged ones, and ones removed from the file): stale
/// files are removed only there. Each changed topology's tree is completed,
/// everything staged is synced, and then each tree is swapped in whole (see
/// the module's documentation). On an error before the swaps nothing is
/// changed; each swap changes one topology whole.
pub fn commit(
    staging: &Staging,
    owner: &Owner,
    stagers: Vec<Stager>,
    scope: &[String],
) -> Result<Report, EmitError> {
    let mut stagers = stagers;
    if let Some(error) = stagers.iter_mut().find_map(|s| s.error.take()) {
        return Err(error);
    }
    let out = &staging.out;
    let mut report = Report::default();
    let mut generated: BTreeSet<&str> = BTreeSet::new();
    for s in &stagers {
        report.written.extend(s.written.iter().cloned());
        report.unchanged.extend(s.unchanged.iter().cloned());
        generated.extend(s.generated.iter().map(String::as_str));
    }
    // The files the manifests of `scope` list: a staged topology's stager read
    // its manifest already (a large stack's lists thousands of files).
    let mut unstaged = Vec::new();
    let mut owned: BTreeSet<&str> = BTreeSet::new();
    for t in scope {
        match stagers.iter().find(|s| &s.topology == t) {
            Some(s) => owned.extend(s.owned.iter().map(String::as_str)),
            None => unstaged.push(owned_files(out, t, owner)),
        }
    }
    owned.extend(unstaged.iter().flatten().map(String::as_str));
    report.removed = owned
        .into_iter()
        .filter(|p| !generated.contains(p) && is_regular_inside(out, p))
        .map(str::to_string)
        .collect();
    // The topologies with something to write or remove.
    let topology = |p: &str| p.split('/').next().unwrap_or_default().to_string();
    let mut changed: BTreeSet<String> = report.written.iter().map(|p| topology(p)).collect();
    changed.extend(report.removed.iter().map(|p| topology(p)));
    if changed.is_empty() {
        return Ok(report);
    }
    staging.make()?;
    let removed: BTreeSet<&str> = report.removed.iter().map(String::as_str).collect();
    let unchanged: BTreeSet<&str> = report.unchanged.iter().map(String::as_str).collect();
    let trees: Vec<Tree> = changed
        .iter()
        .map(|t| Tree {
            staging,
            topology: t,
            generated: &generated,
            unchanged: &unchanged,
            removed: &removed,
        })
        .collect();
    // Each topology's tree is its own: made on threads of their own.
    let all = |results: Vec<Result<(), EmitError>>| results.into_iter().collect::<Result<(), _>>();
    all(crate::par::parallel_map_or_unwind(&trees, Tree::complete))?;
    staging.sync()?;
    for tree in &trees {
        tree.put_in_place()?;
    }
    sync_dir(out)?;
    all(crate::par::parallel_map_or_unwind(&trees, Tree::remove_old))?;
    Ok(report)
}

/// The error of an operation on `path`, for `map_err`.
fn at(path: &Path) -> impl FnOnce(io::Error) -> EmitError {
    let path = path.to_path_buf();
    move |e| EmitError::Io(path, e)
}

/// Makes a directory's entries durable (a rename into it).
fn sync_dir(dir: &Path) -> Result<(), EmitError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(at(dir))
}

/// Whether `rel` is a regular file of `out`'s, reached through directories
/// only (a link on the way leads out of the output).
fn is_regular_inside(out: &Path, rel: &str) -> bool {
    let mut dir = out.to_path_buf();
    let mut parts = rel.split('/').peekable();
    while let Some(part) = parts.next() {
        dir.push(part);
        let Ok(meta) = fs::symlink_metadata(&dir) else {
            return false;
        };
        let last = parts.peek().is_none();
        if (last && !meta.is_file()) || (!last && !meta.is_dir()) {
            return false;
        }
    }
    true
}

/// An exclusive hold on an output directory for one build, from before it
/// reads the manifests until its trees are in place: two builds into one
/// `--out` run one after the other, so that each sees the other's result and
/// none touches the other's staging directory. It is a `flock` on the
/// directory itself (no lock file among the outputs), released when the
/// process ends, however it ends.
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

/// Makes the directory of `path` unless `made` has it (thousands of env files
/// share one).
fn make_parent(made: &mut BTreeSet<PathBuf>, path: &Path) -> Result<(), EmitError> {
    if let Some(dir) = path.parent() {
        if !made.contains(dir) {
            fs::create_dir_all(dir).map_err(at(dir))?;
            made.insert(dir.to_path_buf());
        }
    }
    Ok(())
}

/// Replaces a file's contents atomically: written beside it (in a new file of
/// a name no other file has), synced, then renamed over it, keeping its
/// permissions; a symbolic link stays a link, and the file it leads to is
/// replaced. (`stackc fmt` rewrites sources this way.)
pub fn replace_file(path: &Path, contents: &str) -> io::Result<()> {
    use std::io::Write;
    let path = if fs::symlink_metadata(path)?.file_type().is_symlink() {
        fs::canonicalize(path)?
    } else {
        path.to_path_buf()
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.{}.stackc-tmp", std::process::id()));
    {
        // `create_new`: never a file that is there already. Synced before the
        // rename: a power loss must not leave an empty source.
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        let written = file
            .write_all(contents.as_bytes())
            .and_then(|()| file.sync_all());
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
    }
    if let Ok(meta) = fs::metadata(&path) {
        let _ = fs::set_permissions(&tmp, meta.permissions());
    }
    fs::rename(&tmp, &path).inspect_err(|_| {
        let _ = fs::remove_file(&tmp);
    })?;
    fs::File::open(&dir).and_then(|d| d.sync_all())
}

/// The files a build of `owner`'s source wrote for the topologies in `scope`, as they
/// are on disk now (manifests included), and the generated paths that hold a
/// file stackc does not own (a build would refuse them).
pub fn read_output(
    out: &Path,
    owner: &Owner,
    scope: &[String],
    generated: &[Artifact],
) -> (Vec<Artifact>, Vec<PathBuf>) {
    let mut owned = BTreeSet::new();
    for t in scope {
        owned.extend(owned_files(out, t, owner));
    }
    let files = owned
        .iter()
        .filter(|p| is_regular_inside(out, p))
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
mod tests;
