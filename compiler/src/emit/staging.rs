//! The staging directory of a build, and the stagers that write into it.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::ownership::{claim, Claim};
use super::{at, make_parent, EmitError, Owner};
use crate::targets::Artifact;

/// The staging directory's name in the output directory.
pub const STAGING: &str = ".stackc-staging";

/// What the staging directory's `README` says: it is how a build knows that a
/// `.stackc-staging` it finds is stackc's to recover and remove.
pub(super) const STAGING_README: &str = "This directory is stackc's. A build stages the new trees of the output's\ntopologies here and removes it when it ends; one left behind is from a build\nthat was stopped, and the next build into this directory recovers it.\n";

/// Whether directories may be exchanged (`STACKC_NO_EXCHANGE` set turns it
/// off, to test the fallback).
fn exchange_allowed() -> bool {
    std::env::var_os("STACKC_NO_EXCHANGE").is_none_or(|v| v.is_empty())
}

/// The output directory's staging area for one build, made when the first
/// file is staged and removed when the build ends (dropped).
pub struct Staging {
    pub(super) out: PathBuf,
    root: PathBuf,
    made: Mutex<bool>,
    /// Whether trees are exchanged (else renamed aside and in).
    pub(super) exchange: bool,
}

impl Staging {
    /// Recovers what a stopped build left (an old tree renamed aside is put
    /// back where no tree is), then removes it. Call it holding the
    /// `OutputLock`.
    pub fn prepare(out: &Path) -> Result<Staging, EmitError> {
        let root = out.join(STAGING);
        let staging = Staging {
            out: out.to_path_buf(),
            root: root.clone(),
            made: Mutex::new(false),
            exchange: exchange_allowed(),
        };
        match fs::symlink_metadata(&root) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(staging),
            Err(e) => return Err(EmitError::Io(root, e)),
            Ok(meta) if !meta.is_dir() => return Err(EmitError::NotStaging(root)),
            Ok(_) => {}
        }
        if !is_stackcs_staging(&root) {
            return Err(EmitError::NotStaging(root));
        }
        staging.recover_and_remove()?;
        Ok(staging)
    }

    /// Puts back each old tree renamed aside where no tree is in place (a
    /// build stopped, or failed, between its two renames), then removes the
    /// staging directory.
    fn recover_and_remove(&self) -> Result<(), EmitError> {
        if let Ok(entries) = fs::read_dir(self.root.join("old")) {
            for entry in entries.flatten() {
                let back = self.out.join(entry.file_name());
                if fs::symlink_metadata(&back).is_err() {
                    fs::rename(entry.path(), &back).map_err(at(&back))?;
                }
            }
        }
        // The trees first, the `README` last: a build stopped while removing
        // leaves a directory that still says it is stackc's.
        for tree in ["new", "old"] {
            let dir = self.root.join(tree);
            if fs::symlink_metadata(&dir).is_ok() {
                fs::remove_dir_all(&dir).map_err(at(&dir))?;
            }
        }
        fs::remove_dir_all(&self.root).map_err(at(&self.root))
    }

    /// Makes the staging directory, its `README` first.
    pub(super) fn make(&self) -> Result<(), EmitError> {
        let mut made = self.made.lock().unwrap_or_else(|e| e.into_inner());
        if !*made {
            fs::create_dir_all(&self.out).map_err(at(&self.out))?;
            fs::create_dir(&self.root).map_err(at(&self.root))?;
            *made = true;
            let readme = self.root.join("README");
            fs::write(&readme, STAGING_README).map_err(at(&readme))?;
        }
        Ok(())
    }

    pub(super) fn new_tree(&self, topology: &str) -> PathBuf {
        self.root.join("new").join(topology)
    }

    pub(super) fn old_tree(&self, topology: &str) -> PathBuf {
        self.root.join("old").join(topology)
    }

    /// Makes everything staged so far durable: one `syncfs` of the output's
    /// file system, not an `fsync` per file (thousands of flushes).
    pub(super) fn sync(&self) -> Result<(), EmitError> {
        let root = fs::File::open(&self.root).map_err(at(&self.root))?;
        rustix::fs::syncfs(&root).map_err(|e| EmitError::Io(self.root.clone(), e.into()))
    }
}

/// The build ends, however it ends: no old tree is lost with the staging
/// directory (one that cannot be put back keeps the directory, for the next
/// build to recover).
impl Drop for Staging {
    fn drop(&mut self) {
        if *self.made.get_mut().unwrap_or_else(|e| e.into_inner()) {
            let _ = self.recover_and_remove();
        }
    }
}

/// Whether a `.stackc-staging` directory is one a build made: its entries are
/// the `README` (what a build writes first, or part of it) and the `new` and
/// `old` trees, or nothing (a build stopped before its `README`).
fn is_stackcs_staging(root: &Path) -> bool {
    let Ok(entries) = fs::read_dir(root) else {
        return false;
    };
    let (mut readme, mut any) = (false, false);
    for entry in entries {
        let Ok(entry) = entry else { return false };
        any = true;
        let ok = match entry.file_name().to_str() {
            Some("README") => {
                readme = true;
                fs::read_to_string(entry.path())
                    .is_ok_and(|text| STAGING_README.starts_with(text.as_str()))
            }
            Some("new" | "old") => entry.file_type().is_ok_and(|t| t.is_dir()),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    readme || !any
}

/// One topology's output as a build makes it, file by file: each generated file
/// compared with the one on disk and, when it changed, written into the
/// staging tree at once, so that a build holds one file at a time, not its
/// whole output. Nothing in the topology's directory changes until `commit`.
pub struct Stager<'a> {
    staging: &'a Staging,
    pub(super) topology: String,
    /// The files this topology's manifest says stackc generated (for this
    /// source, or for another when forced).
    pub(super) owned: BTreeSet<String>,
    /// Whether the staging directory is made.
    ready: bool,
    /// Directories made in the staging tree (thousands of env files share
    /// one).
    made: BTreeSet<PathBuf>,
    /// Directories of the output seen to be directories, not links.
    checked: BTreeSet<String>,
    /// Every generated path, in order.
    pub(super) generated: Vec<String>,
    pub(super) written: Vec<String>,
    pub(super) unchanged: Vec<String>,
    /// The first problem; later files are only listed.
    pub(super) error: Option<EmitError>,
}

impl<'a> Stager<'a> {
    /// A stager of `topology` for `owner`'s source. Another source's topology
    /// is refused unless `force` (then its files are this build's to replace).
    pub fn new(staging: &'a Staging, topology: &str, owner: &Owner, force: bool) -> Stager<'a> {
        let dir = staging.out.join(topology);
        let mut error = None;
        if fs::symlink_metadata(&dir).is_ok_and(|m| m.file_type().is_symlink()) {
            error = Some(EmitError::Link(dir.clone()));
        }
        let owned = match claim(&staging.out, topology, owner) {
            Claim::None => BTreeSet::new(),
            Claim::Listed {
                files,
                ours,
                source,
            } => {
                if !ours && !force {
                    error = error.or(Some(EmitError::OtherSource { dir, source }));
                }
                files
            }
        };
        Stager {
            staging,
            topology: topology.to_string(),
            owned,
            ready: false,
            made: BTreeSet::new(),
            checked: BTreeSet::new(),
            generated: Vec::new(),
            written: Vec::new(),
            unchanged: Vec::new(),
            error,
        }
    }

    /// Stages one generated file: refused when a file stackc does not own, or a
    /// link, is in its way; skipped when the one on disk has the same bytes.
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
        let out = &self.staging.out;
        self.no_link_above(&a.path)?;
        let path = out.join(&a.path);
        match fs::symlink_metadata(&path) {
            Ok(meta) => {
                if meta.file_type().is_symlink() {
                    return Err(EmitError::Link(path));
                }
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
        if !self.ready {
            self.staging.make()?;
            self.ready = true;
        }
        let target = self
            .staging
            .new_tree(&self.topology)
            .join(in_topology(&a.path));
        make_parent(&mut self.made, &target)?;
        fs::write(&target, a.contents.as_bytes()).map_err(at(&target))?;
        self.written.push(a.path.clone());
        Ok(())
    }

    /// Refuses a generated path with a link (or a file) where one of its
    /// directories is: writing or reading there would leave the output.
    fn no_link_above(&mut self, path: &str) -> Result<(), EmitError> {
        let mut end = 0;
        while let Some(slash) = path[end..].find('/') {
            end += slash;
            let dir = &path[..end];
            end += 1;
            if self.checked.contains(dir) {
                continue;
            }
            let full = self.staging.out.join(dir);
            match fs::symlink_metadata(&full) {
                Ok(m) if m.file_type().is_symlink() => return Err(EmitError::Link(full)),
                Ok(m) if !m.is_dir() => return Err(EmitError::NotOwned(full)),
                Ok(_) => {}
                // Not there: nothing below it is either.
                Err(_) => {}
            }
            self.checked.insert(dir.to_string());
        }
        Ok(())
    }
}

impl crate::targets::Sink for Stager<'_> {
    fn file(&mut self, artifact: Artifact) {
        self.stage(&artifact);
    }
}

/// A generated path without its topology (`t/env/a.env` is `env/a.env`).
fn in_topology(path: &str) -> &str {
    path.split_once('/').map_or(path, |(_, rest)| rest)
}
