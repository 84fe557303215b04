//! The unit tests of `emit`: staging, both ways of swapping a tree in, links, recovery and ownership.

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

fn owner() -> Owner {
    Owner {
        name: "s.stack".into(),
        path: "../s.stack".into(),
    }
}

fn artifact(path: &str, contents: &str) -> Artifact {
    Artifact {
        path: path.into(),
        contents: contents.into(),
    }
}

/// Every entry under `root`: files with their text, links with their target,
/// directories as `/`.
fn tree(root: &Path) -> Vec<(String, String)> {
    let mut entries: Vec<(String, String)> = walkdir::WalkDir::new(root)
        .min_depth(1)
        .into_iter()
        .flatten()
        .map(|e| {
            let rel = e.path().strip_prefix(root).expect("inside").display();
            let what = if e.file_type().is_symlink() {
                format!("-> {}", fs::read_link(e.path()).expect("a link").display())
            } else if e.file_type().is_dir() {
                "/".to_string()
            } else {
                fs::read_to_string(e.path()).expect("a file")
            };
            (rel.to_string(), what)
        })
        .collect();
    entries.sort();
    entries
}

/// A build of `artifacts` with the exchange on or off.
fn build(out: &Path, artifacts: &[Artifact], exchange: bool) -> Result<Report, EmitError> {
    let mut staging = Staging::prepare(out)?;
    staging.exchange = exchange;
    let mut stager = Stager::new(&staging, "t", &owner(), false);
    for a in artifacts {
        stager.stage(a);
    }
    commit(&staging, &owner(), vec![stager], &["t".to_string()])
}

const OLD_MANIFEST: &str = r#"{"source": "s.stack", "source_path": "../s.stack", "files": [{"path": "a.txt"}, {"path": "stale/s.txt"}, {"path": "sub/b.txt"}, {"path": "gone/x.txt"}]}"#;

/// An output directory with a topology built before, hand-made entries in it
/// (a file, an empty directory, a link out of the output, a link where a
/// stale generated directory was), and a directory outside it.
fn before(root: &Path) -> PathBuf {
    let out = root.join("out");
    let outside = root.join("outside");
    put(&outside, "x.txt", "not stackc's\n");
    put(&out, "t/stackc-manifest.json", OLD_MANIFEST);
    put(&out, "t/a.txt", "old a\n");
    put(&out, "t/stale/s.txt", "stale\n");
    put(&out, "t/sub/b.txt", "b\n");
    put(&out, "t/mine.txt", "written by hand\n");
    fs::create_dir_all(out.join("t/empty")).expect("a directory");
    std::os::unix::fs::symlink(&outside, out.join("t/link")).expect("a link");
    std::os::unix::fs::symlink(&outside, out.join("t/gone")).expect("a link");
    out
}

fn new_output() -> Vec<Artifact> {
    let manifest = r#"{"source": "s.stack", "source_path": "../s.stack", "files": [{"path": "a.txt"}, {"path": "c/d.txt"}, {"path": "sub/b.txt"}]}"#;
    vec![
        artifact("t/a.txt", "new a\n"),
        artifact("t/c/d.txt", "new d\n"),
        artifact("t/sub/b.txt", "b\n"),
        artifact("t/stackc-manifest.json", manifest),
    ]
}

/// Exchanged or renamed aside and in, a topology's new tree is the same:
/// changed files new, unchanged and hand-made entries kept (links as links,
/// never followed: the file behind a link where a stale generated directory
/// was stays), stale files gone, no staging directory left.
#[test]
fn both_ways_of_putting_a_tree_in_place_give_the_same_tree() {
    let mut trees = Vec::new();
    for exchange in [true, false] {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let out = before(dir.path());
        let report = build(&out, &new_output(), exchange).expect("built");
        assert_eq!(report.removed, ["t/stale/s.txt"], "exchange {exchange}");
        assert_eq!(report.unchanged, ["t/sub/b.txt"]);
        assert_eq!(
            read(dir.path(), "outside/x.txt").as_deref(),
            Some("not stackc's\n")
        );
        assert!(!out.join(STAGING).exists(), "the staging directory goes");
        let t = tree(&out.join("t"));
        let outside = dir.path().join("outside").display().to_string();
        trees.push(
            t.into_iter()
                .map(|(p, w)| (p, w.replace(&outside, "OUTSIDE")))
                .collect::<Vec<_>>(),
        );
    }
    let expected: Vec<(String, String)> = [
        ("a.txt", "new a\n"),
        ("c", "/"),
        ("c/d.txt", "new d\n"),
        ("empty", "/"),
        ("gone", "-> OUTSIDE"),
        ("link", "-> OUTSIDE"),
        ("mine.txt", "written by hand\n"),
        ("stackc-manifest.json", &new_output()[3].contents),
        ("sub", "/"),
        ("sub/b.txt", "b\n"),
    ]
    .iter()
    .map(|(p, w)| (p.to_string(), w.to_string()))
    .collect();
    assert_eq!(trees[0], expected);
    assert_eq!(trees[1], expected);
}

/// A generated file below a link (the user replaced a generated directory by
/// a link out of the output) is refused, and nothing behind the link changes.
#[test]
fn a_link_on_the_way_of_a_generated_file_is_refused() {
    for exchange in [true, false] {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let out = before(dir.path());
        let mut artifacts = new_output();
        artifacts.push(artifact("t/link/x.txt", "generated\n"));
        let error = build(&out, &artifacts, exchange).expect_err("refused");
        assert!(
            matches!(&error, EmitError::Link(p) if p.ends_with("t/link")),
            "{error}"
        );
        assert_eq!(
            read(dir.path(), "outside/x.txt").as_deref(),
            Some("not stackc's\n")
        );
        assert_eq!(read(&out, "t/a.txt").as_deref(), Some("old a\n"));
        assert!(!out.join(STAGING).exists());
    }
    // The topology's directory itself a link.
    let dir = tempfile::tempdir().expect("a temporary directory");
    let out = dir.path().join("out");
    fs::create_dir_all(&out).expect("a directory");
    std::os::unix::fs::symlink(dir.path(), out.join("t")).expect("a link");
    let error = build(&out, &new_output(), true).expect_err("refused");
    assert!(matches!(error, EmitError::Link(_)), "{error}");
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
    let staging = Staging::prepare(out).expect("prepared");
    let mut stager = Stager::new(&staging, "t", &owner(), false);
    for (path, contents) in [("t/same.txt", "same\n"), ("t/changed.txt", "after\n")] {
        stager.stage(&artifact(path, contents));
    }
    assert_eq!(stager.unchanged, ["t/same.txt"]);
    assert_eq!(stager.written, ["t/changed.txt"]);
    assert!(stager.error.is_none());
    assert_eq!(read(out, "t/changed.txt").as_deref(), Some("before\n"));
    assert_eq!(
        read(out, ".stackc-staging/new/t/changed.txt").as_deref(),
        Some("after\n")
    );
    assert!(!out.join(".stackc-staging/new/t/same.txt").exists());

    put(out, "t/hand.txt", "mine\n");
    stager.stage(&artifact("t/hand.txt", "generated\n"));
    assert!(matches!(stager.error, Some(EmitError::NotOwned(_))));
    let error = commit(&staging, &owner(), vec![stager], &["t".to_string()]);
    assert!(matches!(error, Err(EmitError::NotOwned(_))));
    drop(staging);
    assert_eq!(read(out, "t/hand.txt").as_deref(), Some("mine\n"));
    assert_eq!(read(out, "t/changed.txt").as_deref(), Some("before\n"));
    assert!(!out.join(STAGING).exists(), "the staging directory goes");
}

/// What a build stopped between the two renames left (no tree in place, the
/// old one aside) is put back by the next; a staging directory stackc did
/// not make is refused and left as it is.
#[test]
fn a_stopped_builds_staging_is_recovered_and_a_strangers_refused() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let out = dir.path();
    put(out, ".stackc-staging/README", staging::STAGING_README);
    put(out, ".stackc-staging/old/t/a.txt", "old a\n");
    put(out, ".stackc-staging/new/t/a.txt", "new a, half staged\n");
    put(out, ".stackc-staging/old/u/b.txt", "u's tree aside\n");
    put(out, "u/b.txt", "u's new tree\n");
    drop(Staging::prepare(out).expect("recovered"));
    assert_eq!(read(out, "t/a.txt").as_deref(), Some("old a\n"));
    assert_eq!(read(out, "u/b.txt").as_deref(), Some("u's new tree\n"));
    assert!(!out.join(STAGING).exists());

    // Empty (stopped before its README): stackc's.
    fs::create_dir_all(out.join(STAGING)).expect("a directory");
    drop(Staging::prepare(out).expect("removed"));
    assert!(!out.join(STAGING).exists());

    for (rel, text) in [
        (".stackc-staging/notes.txt", "mine\n"),
        (".stackc-staging/README", "my own readme\n"),
    ] {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let out = dir.path();
        put(out, rel, text);
        let error = Staging::prepare(out).err().expect("refused");
        assert!(matches!(error, EmitError::NotStaging(_)), "{error}");
        assert_eq!(read(out, rel).as_deref(), Some(text));
    }
}

/// A topology made by another source is refused, unless forced; a manifest
/// of an earlier version (no `source_path`) is owned by its file name.
#[test]
fn another_sources_topology_is_refused_unless_forced() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let out = dir.path();
    put(
        out,
        "t/stackc-manifest.json",
        r#"{"source": "s.stack", "source_path": "../a/s.stack", "files": [{"path": "a.txt"}]}"#,
    );
    put(out, "t/a.txt", "a's\n");
    let staging = Staging::prepare(out).expect("prepared");
    let stager = Stager::new(&staging, "t", &owner(), false);
    assert!(
        matches!(&stager.error, Some(EmitError::OtherSource { source, .. }) if source == "../a/s.stack")
    );
    let mut forced = Stager::new(&staging, "t", &owner(), true);
    forced.stage(&artifact("t/a.txt", "b's\n"));
    assert!(forced.error.is_none());
    assert!(existing_topologies(out, &owner()).is_empty());

    put(
        out,
        "t/stackc-manifest.json",
        r#"{"source": "s.stack", "files": [{"path": "a.txt"}]}"#,
    );
    assert_eq!(existing_topologies(out, &owner()), ["t"]);
    assert!(Stager::new(&staging, "t", &owner(), false).error.is_none());
}
