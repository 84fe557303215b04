//! One topology's new tree: completed from the current one, put in place.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::PathBuf;

use super::staging::Staging;
use super::{at, make_parent, EmitError};

/// One changed topology of a build, its changed files staged.
pub(super) struct Tree<'a> {
    pub(super) staging: &'a Staging,
    pub(super) topology: &'a str,
    pub(super) generated: &'a BTreeSet<&'a str>,
    pub(super) unchanged: &'a BTreeSet<&'a str>,
    pub(super) removed: &'a BTreeSet<&'a str>,
}

impl Tree<'_> {
    /// The topology's directory in the output.
    fn current(&self) -> PathBuf {
        self.staging.out.join(self.topology)
    }

    /// Completes the staged tree with what stays of the current one: files
    /// stackc did not generate (links as links, empty directories too), and
    /// generated files that did not change, linked, not copied.
    pub(super) fn complete(&self) -> Result<(), EmitError> {
        let current = self.current();
        let new = self.staging.new_tree(self.topology);
        fs::create_dir_all(&new).map_err(at(&new))?;
        match fs::symlink_metadata(&current) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(EmitError::Io(current, e)),
            Ok(m) if m.file_type().is_symlink() => return Err(EmitError::Link(current)),
            Ok(m) if !m.is_dir() => return Err(EmitError::NotOwned(current)),
            Ok(_) => {}
        }
        let mut made: BTreeSet<PathBuf> = BTreeSet::new();
        let mut dirs: Vec<PathBuf> = Vec::new();
        let mut not_empty: BTreeSet<PathBuf> = BTreeSet::new();
        // Links are not followed: a link is an entry of its own.
        for entry in walkdir::WalkDir::new(&current).min_depth(1) {
            let entry = entry.map_err(|e| EmitError::Io(current.clone(), e.into()))?;
            let rel = entry.path().strip_prefix(&current).unwrap_or(entry.path());
            if let Some(parent) = rel.parent().filter(|p| !not_empty.contains(*p)) {
                not_empty.insert(parent.to_path_buf());
            }
            let kind = entry.file_type();
            if kind.is_dir() {
                dirs.push(rel.to_path_buf());
                continue;
            }
            let key = format!("{}/{}", self.topology, rel.to_string_lossy());
            let keep = if kind.is_file() && self.generated.contains(key.as_str()) {
                self.unchanged.contains(key.as_str())
            } else {
                // Not a generated file (a link never is): stale or foreign.
                !(kind.is_file() && self.removed.contains(key.as_str()))
            };
            if !keep {
                continue;
            }
            let target = new.join(rel);
            make_parent(&mut made, &target)?;
            if kind.is_symlink() {
                let to = fs::read_link(entry.path()).map_err(at(entry.path()))?;
                std::os::unix::fs::symlink(to, &target).map_err(at(&target))?;
            } else if let Err(e) = fs::hard_link(entry.path(), &target) {
                // A file system without hard links: a copy, of a regular file
                // only (a named pipe would block).
                if !kind.is_file() {
                    return Err(EmitError::Io(entry.path().to_path_buf(), e));
                }
                fs::copy(entry.path(), &target).map_err(at(&target))?;
            }
        }
        for dir in dirs.iter().filter(|d| !not_empty.contains(*d)) {
            let target = new.join(dir);
            fs::create_dir_all(&target).map_err(at(&target))?;
        }
        Ok(())
    }

    /// Puts the completed tree where the current one is: one exchange, or
    /// where the file system cannot (or `STACKC_NO_EXCHANGE`), the current
    /// tree renamed aside and the new one in. An empty tree of a topology no
    /// longer generated removes its directory.
    pub(super) fn put_in_place(&self) -> Result<(), EmitError> {
        let current = self.current();
        let new = self.staging.new_tree(self.topology);
        let empty = fs::read_dir(&new).map_err(at(&new))?.next().is_none();
        if fs::symlink_metadata(&current).is_err() {
            return if empty {
                Ok(())
            } else {
                fs::rename(&new, &current).map_err(at(&current))
            };
        }
        if !empty && self.staging.exchange {
            match rustix::fs::renameat_with(
                rustix::fs::CWD,
                &new,
                rustix::fs::CWD,
                &current,
                rustix::fs::RenameFlags::EXCHANGE,
            ) {
                // `new` holds the old tree now.
                Ok(()) => return Ok(()),
                Err(e)
                    if e == rustix::io::Errno::INVAL
                        || e == rustix::io::Errno::NOSYS
                        || e == rustix::io::Errno::NOTSUP => {}
                Err(e) => return Err(EmitError::Io(current, e.into())),
            }
        }
        let aside = self.staging.old_tree(self.topology);
        if let Some(dir) = aside.parent() {
            fs::create_dir_all(dir).map_err(at(dir))?;
        }
        fs::rename(&current, &aside).map_err(at(&aside))?;
        if !empty {
            fs::rename(&new, &current).map_err(at(&current))?;
        }
        Ok(())
    }

    /// Removes the old tree, wherever `put_in_place` left it.
    pub(super) fn remove_old(&self) -> Result<(), EmitError> {
        for dir in [
            self.staging.new_tree(self.topology),
            self.staging.old_tree(self.topology),
        ] {
            if fs::symlink_metadata(&dir).is_ok() {
                fs::remove_dir_all(&dir).map_err(at(&dir))?;
            }
        }
        Ok(())
    }
}
