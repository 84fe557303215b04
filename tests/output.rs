//! What a build leaves in its output directory, whatever happens around it:
//! errors, files and links that are not stackc's, another source's output,
//! kills at any moment, two builds at once, and power loss (the syncs a
//! build makes, seen by `strace`).

use std::collections::BTreeSet;
use std::fs;
use std::process::Command;

use crate::cli::{files_under, Test, GOOD};

#[test]
fn errors_write_nothing_and_keep_the_previous_output() {
    let t = Test::new();
    t.write(
        "s.stack",
        "service api { image = 1 }\ntopology x { host h { run = [api] } }\n",
    );
    let r = t.run(&["build", "s.stack", "--out", "out"]);
    assert_eq!(r.code, 1);
    assert!(
        !t.path("out").exists(),
        "nothing is written when the input has errors"
    );

    t.write("s.stack", GOOD);
    assert_eq!(t.run(&["build", "s.stack", "--out", "out"]).code, 0);
    let before = files_under(&t.path("out"));
    t.write(
        "s.stack",
        &GOOD.replace("image = \"api:1\"", "image = \"api:2\"\n  bogus { }"),
    );
    assert_eq!(t.run(&["build", "s.stack", "--out", "out"]).code, 1);
    assert_eq!(
        files_under(&t.path("out")),
        before,
        "a failed build leaves the previous output"
    );

    // An error found while the files are made (an env value no env file can
    // hold), after other files of the build were staged: the staged files are
    // removed and the previous output stays.
    t.write(
        "s.stack",
        &GOOD.replace(
            "DATABASE_URL = db.url",
            "DATABASE_URL = db.url\n    TEMPLATE = \"it's $5\"",
        ),
    );
    let r = t.run(&["build", "s.stack", "--out", "out"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("E0501"), "{}", r.stderr);
    assert_eq!(
        files_under(&t.path("out")),
        before,
        "a build that fails while writing leaves the previous output, and no staged file"
    );
    assert!(!t.path("out/.stackc-staging").exists());
}

#[test]
fn refuses_to_overwrite_a_file_it_did_not_generate() {
    let t = Test::new();
    t.write("s.stack", GOOD);
    t.write("out/single/compose/main.yml", "# hand-written\n");
    let r = t.run(&["build", "s.stack", "--out", "out"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("main.yml"),
        "the error names the file: {}",
        r.stderr
    );
    assert_eq!(t.read("out/single/compose/main.yml"), "# hand-written\n");
    assert!(
        !t.path("out/single/env").exists(),
        "nothing else was written"
    );
    assert!(
        !t.path("out/.stackc-staging").exists(),
        "the staging directory goes"
    );

    // Another stack's output is not this stack's to overwrite either.
    let t = Test::new();
    t.write("one.stack", GOOD);
    t.write("two.stack", GOOD);
    assert_eq!(t.run(&["build", "one.stack", "--out", "out"]).code, 0);
    let r = t.run(&["build", "two.stack", "--out", "out"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("../one.stack"), "{}", r.stderr);
}

#[test]
fn removes_stale_files_it_generated_and_nothing_else() {
    let t = Test::new();
    t.write("s.stack", GOOD);
    assert_eq!(t.run(&["build", "s.stack", "--out", "out"]).code, 0);
    t.write("out/split/NOTES.md", "mine\n");
    t.write("out/README", "mine too\n");
    // The split topology goes away, and the single host is renamed.
    let changed = GOOD
        .split("topology split")
        .next()
        .unwrap_or_default()
        .replace("host main", "host primary");
    t.write("s.stack", &changed);
    let r = t.run(&["build", "s.stack", "--out", "out"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let files: Vec<String> = files_under(&t.path("out"))
        .into_iter()
        .map(|f| f.0)
        .collect();
    assert_eq!(
        files,
        [
            "README",
            "single/compose/primary.yml",
            "single/env/primary/api.env",
            "single/env/primary/db.env",
            "single/firewall/primary.nft",
            "single/stackc-manifest.json",
            "split/NOTES.md",
        ]
    );
}

/// A stack of `n` services that all carry `VERSION = "<version>"`.
fn versioned(n: usize, version: &str) -> String {
    let mut s = String::new();
    for i in 0..n {
        s.push_str(&format!(
            "service svc-{i} {{\n  image = \"svc:{version}\"\n  env {{ VERSION = \"{version}\" }}\n}}\n"
        ));
    }
    let names: Vec<String> = (0..n).map(|i| format!("svc-{i}")).collect();
    s.push_str(&format!(
        "topology t {{\n  host main {{ run = [{}] }}\n}}\n",
        names.join(", ")
    ));
    s
}

/// An `--out` that cannot be a directory is named as what it is.
#[test]
fn an_output_that_is_not_a_directory_is_named() {
    let t = Test::new();
    t.write("good.stack", GOOD);
    t.write("a-file", "mine\n");
    std::os::unix::fs::symlink("nowhere", t.path("dangling")).unwrap_or_else(|e| panic!("{e}"));
    for (out, says) in [
        ("a-file", "is a file"),
        ("dangling", "symbolic link to nothing"),
    ] {
        let r = t.run(&["build", "good.stack", "--out", out]);
        assert_eq!(r.code, 2, "{out}: {}", r.stderr);
        assert!(r.stderr.contains(says), "{out}: {}", r.stderr);
    }
    assert_eq!(t.read("a-file"), "mine\n");
    assert!(!t.path("nowhere").exists());
}

/// A tree left after a kill: the topology's directory, or where the fallback
/// renamed it aside when the kill fell between its two renames.
fn tree_after_a_kill(t: &Test, round: usize) -> Vec<(String, String)> {
    let files = files_under(&t.path("out/t"));
    if !files.is_empty() {
        return files;
    }
    let aside = files_under(&t.path("out/.stackc-staging/old/t"));
    assert!(
        !aside.is_empty(),
        "round {round}: no tree in place or aside"
    );
    aside
}

/// Kills a build of `big.stack` at many points across it, with the exchange
/// of directories or without (`STACKC_NO_EXCHANGE`): each time, the tree left
/// is one build's whole (every file of one version, the manifest listing
/// exactly the files there), and the next build recovers what was left.
fn killed_builds(exchange: bool) {
    let t = Test::new();
    let n = 1500;
    let no_exchange = if exchange { "" } else { "1" };
    t.write("big.stack", &versioned(n, "a"));
    assert_eq!(t.run(&["build", "big.stack"]).code, 0);
    // How long a build that rewrites everything takes here: the kills land
    // across it, most of them in its last part, where files are written.
    t.write("big.stack", &versioned(n, "b"));
    let start = std::time::Instant::now();
    assert_eq!(t.run(&["build", "big.stack"]).code, 0);
    let full = start.elapsed().as_millis() as u64;
    let mut seen = BTreeSet::new();
    let fractions = [30u64, 55, 70, 80, 85, 88, 91, 94, 96, 98, 99, 100];
    for (round, percent) in fractions.into_iter().enumerate() {
        let delay_ms = full * percent / 100;
        let version = if round % 2 == 0 { "a" } else { "b" };
        t.write("big.stack", &versioned(n, version));
        let mut child = Command::new(env!("CARGO_BIN_EXE_stackc"))
            .args(["build", "big.stack"])
            .current_dir(t.dir.path())
            .env("STACKC_NO_EXCHANGE", no_exchange)
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{e}"));
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        let files = tree_after_a_kill(&t, round);
        let compose = files
            .iter()
            .find(|(p, _)| p == "compose/main.yml")
            .map(|(_, c)| c.clone())
            .unwrap_or_else(|| panic!("round {round}: no compose file"));
        let tree = if compose.contains("VERSION: a") {
            "a"
        } else {
            "b"
        };
        seen.insert(tree);
        for (path, text) in &files {
            if path.starts_with("env/") {
                assert!(
                    text.contains(&format!("VERSION={tree}")),
                    "round {round} ({delay_ms} ms): {path} is from another build than the compose file"
                );
            }
        }
        let manifest: serde_json::Value = files
            .iter()
            .find(|(p, _)| p == "stackc-manifest.json")
            .and_then(|(_, c)| serde_json::from_str(c).ok())
            .unwrap_or_else(|| panic!("round {round}: no manifest"));
        let listed: BTreeSet<String> = manifest["files"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f["path"].as_str().map(str::to_string))
            .collect();
        let present: BTreeSet<String> = files
            .iter()
            .map(|(p, _)| p.clone())
            .filter(|p| p != "stackc-manifest.json")
            .collect();
        assert_eq!(
            listed, present,
            "round {round}: the manifest lists other files"
        );
    }
    // The next build finishes the job and leaves nothing behind.
    let r = t.run(&["build", "big.stack"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let leftovers: Vec<String> = fs::read_dir(t.path("out"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "t")
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert_eq!(t.run(&["build", "--check", "big.stack"]).code, 0);
    eprintln!("exchange {exchange}: full build {full} ms; trees seen after a kill: {seen:?}");
}

#[test]
fn a_killed_build_leaves_the_old_output_or_the_new_one() {
    killed_builds(true);
}

#[test]
fn a_killed_build_without_directory_exchange_leaves_one_tree_too() {
    killed_builds(false);
}

/// Two builds into one `--out` at once run one after the other (an exclusive
/// lock on the output directory). 50 concurrent pairs of two sources (two
/// `app.stack`, with different files): forced, both succeed and the tree is
/// exactly one's; not forced, the source that owns the output builds and the
/// other is refused, and the tree is exactly the owner's.
#[test]
fn concurrent_builds_into_one_output_leave_one_builds_tree() {
    let t = Test::new();
    // Version b has more services than a: its tree has files a's has not.
    t.write("a/app.stack", &versioned(12, "a"));
    t.write("b/app.stack", &versioned(20, "b"));
    let shared = t.path("shared");
    let alone = |v: &str| t.path(&format!("alone-{v}"));
    for v in ["a", "b"] {
        // Built where the shared output is, so that the manifests name the
        // source by the same path from the output.
        let out = alone(v);
        let r = t.run(&[
            "build",
            &format!("{v}/app.stack"),
            "--out",
            &out.display().to_string(),
        ]);
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    let expected: Vec<Vec<(String, String)>> =
        ["a", "b"].iter().map(|v| files_under(&alone(v))).collect();
    for round in 0..50 {
        let force = round < 25;
        let spawn = |v: &str| {
            let mut c = Command::new(env!("CARGO_BIN_EXE_stackc"));
            c.args(["build", &format!("{v}/app.stack"), "--out"])
                .arg(&shared)
                .current_dir(t.dir.path())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped());
            if force {
                c.arg("--force");
            }
            c.spawn().unwrap_or_else(|e| panic!("{e}"))
        };
        let (first, second) = if round % 2 == 0 {
            ("a", "b")
        } else {
            ("b", "a")
        };
        let owner_before = fs::read_to_string(shared.join("t/stackc-manifest.json"))
            .ok()
            .map(|m| if m.contains("a/app.stack") { "a" } else { "b" });
        let children = [(first, spawn(first)), (second, spawn(second))];
        let mut succeeded = Vec::new();
        for (v, child) in children {
            let o = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
            let stderr = String::from_utf8_lossy(&o.stderr);
            match o.status.code() {
                Some(0) => succeeded.push(v),
                Some(2) if !force => assert!(
                    stderr.contains("--force"),
                    "round {round}: {v} refused without saying how: {stderr}"
                ),
                code => panic!("round {round}: {v} exited {code:?}: {stderr}"),
            }
        }
        let tree = files_under(&shared);
        let which = if tree == expected[0] {
            "a"
        } else if tree == expected[1] {
            "b"
        } else {
            panic!(
                "round {round}: a tree of {} files is neither build's ({} or {})",
                tree.len(),
                expected[0].len(),
                expected[1].len()
            )
        };
        if force {
            assert_eq!(succeeded.len(), 2, "round {round}");
        } else {
            assert_eq!(succeeded, [which], "round {round}: only the owner builds");
            if let Some(owner) = owner_before {
                assert_eq!(owner, which, "round {round}: the owner stays");
            }
        }
    }
}

/// Two sources of one name (`a/app.stack`, `b/app.stack`) own their output
/// apart: the second is refused, names the first, and changes nothing, until
/// `--force`, after which the first is refused in turn.
#[test]
fn a_source_of_the_same_name_does_not_take_anothers_output() {
    let t = Test::new();
    t.write("a/app.stack", GOOD);
    t.write("b/app.stack", &GOOD.replace("api:1", "api:2"));
    let r = t.run(&["build", "a/app.stack", "--out", "out"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let before = files_under(&t.path("out"));
    let r = t.run(&["build", "b/app.stack", "--out", "out"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("../a/app.stack") && r.stderr.contains("--force"),
        "{}",
        r.stderr
    );
    assert_eq!(files_under(&t.path("out")), before, "nothing changed");
    let r = t.run(&["build", "--check", "b/app.stack", "--out", "out"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("holds the output of ../a/app.stack"),
        "{}",
        r.stderr
    );
    let r = t.run(&["build", "b/app.stack", "--out", "out", "--force"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(t.read("out/single/compose/main.yml").contains("api:2"));
    let r = t.run(&["build", "a/app.stack", "--out", "out"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("../b/app.stack"), "{}", r.stderr);
    // A manifest of an earlier version names its source by file name only:
    // still owned by a file of that name.
    for topology in ["single", "split"] {
        let manifest = t.path(&format!("out/{topology}/stackc-manifest.json"));
        let mut old: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&manifest).expect("a manifest"))
                .expect("json");
        old.as_object_mut()
            .expect("an object")
            .remove("source_path");
        fs::write(&manifest, old.to_string()).expect("written");
    }
    let r = t.run(&["build", "a/app.stack", "--out", "out"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

/// The staging directory is stackc's only when it says so: a user's
/// `.stackc-staging` is refused and left as it is, and a directory named as
/// earlier versions staged (`.single.stackc-new`) is not touched.
#[test]
fn a_staging_directory_stackc_did_not_make_is_left_alone() {
    let t = Test::new();
    t.write("s.stack", GOOD);
    t.write("out/.stackc-staging/notes.txt", "mine\n");
    t.write("out/.single.stackc-new/notes.txt", "mine too\n");
    let r = t.run(&["build", "s.stack", "--out", "out"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains(".stackc-staging"), "{}", r.stderr);
    assert_eq!(t.read("out/.stackc-staging/notes.txt"), "mine\n");
    fs::remove_dir_all(t.path("out/.stackc-staging")).expect("removed");
    let r = t.run(&["build", "s.stack", "--out", "out"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(t.read("out/.single.stackc-new/notes.txt"), "mine too\n");
}

/// Links in the output are never followed, with the exchange or without: a
/// generated directory replaced by a link out of the output is refused, and
/// when its topology goes away the files behind the link stay.
#[test]
fn links_in_the_output_are_never_followed() {
    for no_exchange in ["", "1"] {
        let t = Test::new();
        t.write("s.stack", GOOD);
        let build = |t: &Test| {
            let o = Command::new(env!("CARGO_BIN_EXE_stackc"))
                .args(["build", "s.stack", "--out", "out"])
                .current_dir(t.dir.path())
                .env("STACKC_NO_EXCHANGE", no_exchange)
                .output()
                .unwrap_or_else(|e| panic!("{e}"));
            (
                o.status.code(),
                String::from_utf8_lossy(&o.stderr).into_owned(),
            )
        };
        assert_eq!(build(&t).0, Some(0));
        // The split topology's env directory of host `app`, moved out and
        // linked back.
        fs::rename(t.path("out/split/env/app"), t.path("elsewhere")).expect("moved");
        std::os::unix::fs::symlink(t.path("elsewhere"), t.path("out/split/env/app"))
            .expect("a link");
        let outside = files_under(&t.path("elsewhere"));
        assert!(!outside.is_empty());
        t.write(
            "s.stack",
            &GOOD.replace("image = \"api:1\"", "image = \"api:2\""),
        );
        let (code, stderr) = build(&t);
        assert_eq!(code, Some(2), "{stderr}");
        assert!(stderr.contains("symbolic link"), "{stderr}");
        assert_eq!(files_under(&t.path("elsewhere")), outside);
        // The topology removed from the file: its stale files go, the link
        // stays, and nothing behind it is removed.
        let without_split = GOOD.split("topology split").next().unwrap_or_default();
        t.write("s.stack", without_split);
        let (code, stderr) = build(&t);
        assert_eq!(code, Some(0), "{stderr}");
        assert_eq!(
            files_under(&t.path("elsewhere")),
            outside,
            "no_exchange={no_exchange:?}"
        );
        assert!(t.path("out/split/env/app").is_symlink());
        assert!(!t.path("out/split/compose").exists(), "stale files go");
    }
}

/// Before a build puts a tree in place, what it staged is on disk: a
/// `syncfs` before the first rename into the output, and an `fsync` of the
/// output directory after the last (seen by `strace`), with the exchange
/// and without.
#[test]
fn a_build_syncs_before_its_trees_are_put_in_place() {
    if !crate::support::require("strace") {
        return;
    }
    for no_exchange in ["", "1"] {
        let t = Test::new();
        t.write("s.stack", GOOD);
        assert_eq!(t.run(&["build", "s.stack"]).code, 0);
        t.write("s.stack", &GOOD.replace("api:1", "api:2"));
        let log = t.path("strace.log");
        let o = Command::new("strace")
            .args(["-f", "-qq", "-y", "-o"])
            .arg(&log)
            .args(["-e", "trace=syncfs,fsync,rename,renameat,renameat2"])
            .arg(env!("CARGO_BIN_EXE_stackc"))
            .args(["build", "s.stack"])
            .current_dir(t.dir.path())
            .env("STACKC_NO_EXCHANGE", no_exchange)
            .output()
            .unwrap_or_else(|e| panic!("strace: {e}"));
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let calls: Vec<String> = t
            .read("strace.log")
            .lines()
            // The pid, then the call.
            .filter_map(|l| {
                l.split_once(char::is_whitespace)
                    .map(|(_, c)| c.trim().to_string())
            })
            .collect();
        let first_swap = calls
            .iter()
            .position(|c| c.starts_with("rename") && c.contains("/out/single\""))
            .unwrap_or_else(|| panic!("no rename into out/single: {calls:#?}"));
        let synced = calls[..first_swap].iter().any(|c| c.starts_with("syncfs("));
        assert!(synced, "no syncfs before {}: {calls:#?}", calls[first_swap]);
        let last_swap = calls
            .iter()
            .rposition(|c| c.starts_with("rename") && c.contains("/out/"))
            .unwrap_or(first_swap);
        let out = fs::canonicalize(t.path("out")).expect("out");
        let dir_synced = calls[last_swap..]
            .iter()
            .any(|c| c.starts_with("fsync(") && c.contains(&format!("<{}>", out.display())));
        assert!(
            dir_synced,
            "no fsync of {} after {}: {calls:#?}",
            out.display(),
            calls[last_swap]
        );
    }
}
