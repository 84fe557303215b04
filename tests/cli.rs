//! The command line, driven as a user drives it: files in a temporary directory,
//! arguments in, exit code and output out.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
pub(crate) struct Test {
    pub(crate) dir: tempfile::TempDir,
}

pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

pub(crate) const GOOD: &str = r#"
secret db_password

service api {
  image = "api:1"
  port http = 8000
  public = [http]
  env {
    DATABASE_URL = db.url
  }
  health { http = "/health" }
}

service db: postgres {
  password = secret.db_password
}

topology single {
  host main {
    address = "10.0.0.1"
    run = [api, db]
  }
}

topology split {
  host app {
    address = "10.0.0.1"
    run = [api]
  }
  host data {
    address = "10.0.0.2"
    run = [db]
  }
}
"#;

impl Test {
    pub(crate) fn new() -> Test {
        Test {
            dir: tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}")),
        }
    }

    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub(crate) fn write(&self, rel: &str, text: &str) -> &Test {
        let p = self.path(rel);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{e}"));
        }
        fs::write(&p, text).unwrap_or_else(|e| panic!("{e}"));
        self
    }

    pub(crate) fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    pub(crate) fn run(&self, args: &[&str]) -> Run {
        let out = Command::new(env!("CARGO_BIN_EXE_stackc"))
            .args(args)
            .current_dir(self.dir.path())
            .env("NO_COLOR", "1")
            .output()
            .unwrap_or_else(|e| panic!("run stackc: {e}"));
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

pub(crate) fn files_under(dir: &Path) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            let rel = e
                .path()
                .strip_prefix(dir)
                .unwrap_or(e.path())
                .to_string_lossy()
                .into_owned();
            (rel, fs::read_to_string(e.path()).unwrap_or_default())
        })
        .collect();
    files.sort();
    files
}

#[test]
fn check_exit_codes() {
    let t = Test::new();
    t.write("good.stack", GOOD);
    t.write("bad.stack", "service api { image = 1 }\n");
    let good = t.run(&["check", "good.stack"]);
    assert_eq!(good.code, 0);
    // One line says what was checked; `--quiet` keeps silence.
    assert_eq!(
        good.stdout,
        "checked good.stack: 2 topologies (single, split), 2 services; no problem\n"
    );
    let quiet = t.run(&["check", "--quiet", "good.stack"]);
    assert_eq!((quiet.code, quiet.stdout.as_str()), (0, ""));
    let bad = t.run(&["check", "bad.stack"]);
    assert_eq!(bad.code, 1, "{}", bad.stderr);
    assert_eq!(bad.stdout, "", "no summary over errors");
    assert!(bad.stderr.contains("E0202"), "{}", bad.stderr);
    let missing = t.run(&["check", "missing.stack"]);
    assert_eq!(missing.code, 2);
    assert!(
        missing.stderr.contains("missing.stack"),
        "{}",
        missing.stderr
    );
    assert_eq!(t.run(&["frobnicate"]).code, 2);
    assert_eq!(t.run(&["build"]).code, 2);
}

#[test]
fn build_writes_the_layout_to_out() {
    let t = Test::new();
    t.write("app/good.stack", GOOD);
    let r = t.run(&["build", "app/good.stack", "--out", "generated"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let files: Vec<String> = files_under(&t.path("generated"))
        .into_iter()
        .map(|f| f.0)
        .collect();
    assert_eq!(
        files,
        [
            "single/compose/main.yml",
            "single/env/main/api.env",
            "single/env/main/db.env",
            "single/firewall/main.nft",
            "single/stackc-manifest.json",
            "split/compose/app.yml",
            "split/compose/data.yml",
            "split/env/app/api.env",
            "split/env/data/db.env",
            "split/firewall/app.nft",
            "split/firewall/data.nft",
            "split/stackc-manifest.json",
        ]
    );
    // Cross-host: the database is published on its host's address only.
    assert!(t
        .read("generated/split/compose/data.yml")
        .contains("\"10.0.0.2:5432:5432\""));
    assert!(!t
        .read("generated/single/compose/main.yml")
        .contains("5432:5432"));
    // The default output directory is `out` beside the .stack file.
    assert_eq!(t.run(&["build", "app/good.stack"]).code, 0);
    assert!(t.path("app/out/single/compose/main.yml").is_file());
}

#[test]
fn builds_are_deterministic_and_skip_unchanged_files() {
    let t = Test::new();
    t.write("good.stack", GOOD);
    assert_eq!(t.run(&["build", "good.stack", "--out", "a"]).code, 0);
    assert_eq!(t.run(&["build", "good.stack", "--out", "b"]).code, 0);
    assert_eq!(files_under(&t.path("a")), files_under(&t.path("b")));
    let again = t.run(&["build", "good.stack", "--out", "a"]);
    assert!(again.stderr.contains("wrote 0 files"), "{}", again.stderr);
    assert!(again.stderr.contains("12 unchanged"), "{}", again.stderr);
}

#[test]
fn topology_filter() {
    let t = Test::new();
    t.write("s.stack", GOOD);
    let r = t.run(&["build", "s.stack", "--out", "out", "--topology", "split"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(t.path("out/split").is_dir());
    assert!(!t.path("out/single").exists());
    let r = t.run(&["build", "s.stack", "--out", "out", "--topology", "splt"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("did you mean `split`?"), "{}", r.stderr);
}

#[test]
fn json_diagnostics() {
    let t = Test::new();
    t.write("s.stack", "service api {\n  image = \"a\"\n  env { X = dbb.url }\n}\ntopology t { host h { run = [api] } }\n");
    let r = t.run(&["check", "s.stack", "--message-format", "json"]);
    assert_eq!(r.code, 1);
    let lines: Vec<serde_json::Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    assert_eq!(lines.len(), 1, "{}", r.stdout);
    let d = &lines[0];
    assert_eq!(d["code"], "E0101");
    assert_eq!(d["severity"], "error");
    assert_eq!(d["primary"]["line"], 3);
    assert_eq!(d["primary"]["column"], 13);
    assert_eq!(d["primary"]["file"], "s.stack");
    assert_eq!(
        d["help"],
        "declare it with `service NAME { ... }` or `external NAME { url = ... }`"
    );
    assert_eq!(d["fixes"], serde_json::json!([]));
    // A fix: the edit's bytes, applied, give the corrected file.
    let text = "service api {\n  image = \"a\"\n  stop_grace_period = 5\n}\ntopology t { host h { run = [api] } }\n";
    t.write("s.stack", text);
    let r = t.run(&["check", "s.stack", "--message-format", "json"]);
    let d: serde_json::Value =
        serde_json::from_str(r.stdout.lines().next().unwrap_or_default()).unwrap_or_default();
    let edit = &d["fixes"][0]["edits"][0];
    assert_eq!(d["fixes"][0]["preferred"], true, "{d}");
    let (start, end) = (edit["start"].as_u64(), edit["end"].as_u64());
    let (Some(start), Some(end)) = (start, end) else {
        panic!("{d}");
    };
    let fixed = format!(
        "{}{}{}",
        &text[..start as usize],
        edit["text"].as_str().unwrap_or_default(),
        &text[end as usize..]
    );
    t.write("s.stack", &fixed);
    assert_eq!(t.run(&["check", "s.stack"]).code, 0, "{fixed}");
}

#[test]
fn explain() {
    let t = Test::new();
    let r = t.run(&["explain", "E0301"]);
    assert_eq!(r.code, 0);
    assert!(
        r.stdout.starts_with("## E0301 dependency-cycle\n"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("### Wrong") && r.stdout.contains("### Right"),
        "{}",
        r.stdout
    );
    assert_eq!(t.run(&["explain", "port-conflict"]).code, 0);
    assert_eq!(t.run(&["explain", "E9999"]).code, 2);
}

const MESSY: &str = "service api {\n    image=\"api:1\"   # pinned\n  port http=8000\n}\n";
const TIDY: &str = "service api {\n  image = \"api:1\"  # pinned\n  port http = 8000\n}\n";

#[test]
fn fmt_check_prints_a_diff_and_changes_nothing() {
    let t = Test::new();
    t.write("app.stack", MESSY);
    let r = t.run(&["fmt", "--check", "app.stack"]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("--- a/app.stack"), "{}", r.stdout);
    assert!(
        r.stdout.contains("-    image=\"api:1\"   # pinned"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("+  image = \"api:1\"  # pinned"),
        "{}",
        r.stdout
    );
    assert!(
        r.stderr.contains("1 of 1 file is not formatted"),
        "{}",
        r.stderr
    );
    assert_eq!(t.read("app.stack"), MESSY);
}

#[test]
fn fmt_rewrites_files_below_a_directory() {
    let t = Test::new();
    t.write("a.stack", MESSY);
    t.write("deep/b.stack", MESSY);
    t.write(".hidden/c.stack", MESSY);
    t.write("notes.txt", MESSY);
    let r = t.run(&["fmt"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(t.read("a.stack"), TIDY);
    assert_eq!(t.read("deep/b.stack"), TIDY);
    assert_eq!(
        t.read(".hidden/c.stack"),
        MESSY,
        "hidden directories are skipped"
    );
    assert_eq!(t.read("notes.txt"), MESSY);
    let r = t.run(&["fmt", "--check"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, ""), "{}", r.stderr);
}

/// `fmt` rewrites the file a link leads to and keeps the link, and never
/// touches a file beside it that has the name of its temporary file.
#[test]
fn fmt_keeps_links_and_files_of_its_temporary_name() {
    let t = Test::new();
    t.write("real/app.stack", MESSY);
    std::os::unix::fs::symlink("real/app.stack", t.path("app.stack"))
        .unwrap_or_else(|e| panic!("{e}"));
    t.write(".app.stack.stackc-tmp", "mine\n");
    t.write("real/.app.stack.stackc-tmp", "mine too\n");
    let r = t.run(&["fmt", "app.stack"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(t.path("app.stack").is_symlink(), "the link stays a link");
    assert_eq!(t.read("real/app.stack"), TIDY);
    assert_eq!(t.read(".app.stack.stackc-tmp"), "mine\n");
    assert_eq!(t.read("real/.app.stack.stackc-tmp"), "mine too\n");
}

#[test]
fn fmt_reads_standard_input() {
    let t = Test::new();
    let mut child = Command::new(env!("CARGO_BIN_EXE_stackc"))
        .args(["fmt", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    if let Some(mut stdin) = child.stdin.take() {
        std::io::Write::write_all(&mut stdin, MESSY.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    }
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), TIDY);
    drop(t);
}

#[test]
fn fmt_leaves_a_file_with_syntax_errors_alone() {
    let t = Test::new();
    let broken = "service api {\n  image: \"api:1\"\n}\n";
    t.write("bad.stack", broken);
    let r = t.run(&["fmt", "bad.stack"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("E0001"), "{}", r.stderr);
    assert_eq!(t.read("bad.stack"), broken);
}

#[test]
fn build_check_reports_stale_missing_and_extra_files_and_writes_nothing() {
    let t = Test::new();
    t.write("good.stack", GOOD);
    assert_eq!(t.run(&["build", "good.stack"]).code, 0);
    let r = t.run(&["build", "--check", "good.stack"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, ""), "{}", r.stderr);
    assert!(r.stderr.contains("is up to date"), "{}", r.stderr);

    // Stale: the image changed. Missing: a generated file was deleted. Extra:
    // the `single` topology is gone from the source.
    let before = files_under(&t.path("out"));
    let changed = GOOD
        .replace("api:1", "api:2")
        .replace("topology single {\n  host main {\n    address = \"10.0.0.1\"\n    run = [api, db]\n  }\n}\n", "");
    assert!(!changed.contains("topology single"));
    t.write("good.stack", &changed);
    fs::remove_file(t.path("out/split/env/data/db.env")).unwrap_or_else(|e| panic!("{e}"));
    let before_missing: Vec<_> = before
        .iter()
        .filter(|(p, _)| p != "split/env/data/db.env")
        .cloned()
        .collect();
    let r = t.run(&["build", "--check", "good.stack"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stdout
            .contains("--- a/split/compose/app.yml\n+++ b/split/compose/app.yml"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("-    image: \"api:1\"\n+    image: \"api:2\""),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("--- /dev/null\n+++ b/split/env/data/db.env"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("--- a/single/compose/main.yml\n+++ /dev/null"),
        "{}",
        r.stdout
    );
    assert!(r.stderr.contains("out of date"), "{}", r.stderr);
    assert_eq!(
        files_under(&t.path("out")),
        before_missing,
        "nothing is written"
    );
}

#[test]
fn diff_summarises_a_change_by_topology_host_and_target() {
    let t = Test::new();
    t.write("old.stack", GOOD);
    t.write(
        "new.stack",
        &GOOD.replace("port http = 8000", "port http = 8080"),
    );
    let r = t.run(&["diff", "old.stack", "new.stack"]);
    // As `git diff --exit-code`: 1 when something changes.
    assert_eq!(r.code, 1, "{}", r.stderr);
    // Each changed setting of a service, old and new, as compose reads it.
    let health = |port: u16| {
        format!("[\"CMD-SHELL\",\"curl -fsS -o /dev/null http://localhost:{port}/health || wget -q -O /dev/null http://localhost:{port}/health || exit 1\"]")
    };
    let settings = format!(
        "               ~ api.healthcheck.test: {} -> {}\n               ~ api.ports: [\"8000:8000\"] -> [\"8080:8080\"]\n",
        health(8000),
        health(8080)
    );
    let expected = format!(
        "4 generated files change\n\ntopology single\n  host main\n    compose    changed single/compose/main.yml (+2 -2): services ~api\n{settings}    firewall   changed single/firewall/main.nft (+2 -2)\n\ntopology split\n  host app\n    compose    changed split/compose/app.yml (+2 -2): services ~api\n{settings}    firewall   changed split/firewall/app.nft (+2 -2)\n"
    );
    assert_eq!(r.stdout, expected);
    // Against the output directory: what `build` would change.
    assert_eq!(t.run(&["build", "old.stack"]).code, 0);
    let r = t.run(&["diff", "old.stack"]);
    assert_eq!(r.stdout, "no generated file changes\n");
    assert_eq!(r.code, 0, "nothing changes");
    // An input with errors is neither: 2.
    t.write("broken.stack", "service {");
    assert_eq!(t.run(&["diff", "old.stack", "broken.stack"]).code, 2);
    let r = t.run(&["diff", "--patch", "old.stack", "new.stack"]);
    assert!(
        r.stdout.contains("+    healthcheck:") || r.stdout.contains("8080"),
        "{}",
        r.stdout
    );
}

const CYCLE: &str = "service a {\n  image = \"a:1\"\n  port http = 8000\n  env { B = b.url }\n}\n\nservice b {\n  image = \"b:1\"\n  port http = 8000\n  env { A = a.url }\n}\n\ntopology single {\n  host main { run = [a, b] }\n}\n";

#[test]
fn github_annotations() {
    let t = Test::new();
    t.write("app.stack", CYCLE);
    let r = t.run(&["check", "app.stack", "--message-format", "github"]);
    assert_eq!(r.code, 1);
    let line = r.stdout.lines().next().unwrap_or_default();
    assert!(
        line.starts_with("::error file=app.stack,line=4,col=13,endLine=4,endColumn=18,title=E0301 dependency-cycle::dependency cycle: a -> b -> a"),
        "{line}"
    );
    // One line per diagnostic: newlines in the message are escaped.
    assert!(line.contains("%0Ahelp: "), "{line}");
    assert_eq!(r.stdout.lines().count(), 1, "{}", r.stdout);
}

#[test]
fn sarif_log() {
    let t = Test::new();
    t.write("app.stack", CYCLE);
    let r = t.run(&["check", "app.stack", "--message-format", "sarif"]);
    assert_eq!(r.code, 1);
    let log: serde_json::Value =
        serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.stdout));
    assert_eq!(log["version"], "2.1.0");
    let run = &log["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "stackc");
    let rules = run["tool"]["driver"]["rules"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(rules.len(), stackc::diag::Code::ALL.len());
    let results = run["results"].as_array().cloned().unwrap_or_default();
    assert_eq!(results.len(), 1);
    let result = &results[0];
    assert_eq!(result["ruleId"], "E0301");
    assert_eq!(result["level"], "error");
    // ruleIndex points at the rule of the same id.
    let index = result["ruleIndex"].as_u64().unwrap_or(u64::MAX) as usize;
    assert_eq!(rules[index]["id"], "E0301");
    assert_eq!(rules[index]["name"], "dependency-cycle");
    let region = &result["locations"][0]["physicalLocation"]["region"];
    assert_eq!(
        (region["startLine"].as_u64(), region["startColumn"].as_u64()),
        (Some(4), Some(13))
    );
    assert_eq!(
        result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "app.stack"
    );
    // The other steps of the cycle are related locations.
    assert!(result["relatedLocations"]
        .as_array()
        .is_some_and(|a| !a.is_empty()));
    // A clean file is an empty log, not no output.
    t.write("ok.stack", GOOD);
    let r = t.run(&["check", "ok.stack", "--message-format", "sarif"]);
    assert_eq!(r.code, 0);
    let log: serde_json::Value = serde_json::from_str(&r.stdout).unwrap_or_default();
    assert_eq!(log["runs"][0]["results"], serde_json::json!([]));
}

/// The line number of the first line of a generated file containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle} not in:\n{text}"))
        + 1
}

#[test]
fn why_traces_a_generated_line_to_its_source() {
    let t = Test::new();
    t.write("good.stack", GOOD);
    assert_eq!(t.run(&["build", "good.stack"]).code, 0);
    let compose = t.read("out/single/compose/main.yml");
    let at = format!(
        "out/single/compose/main.yml:{}",
        line_of(&compose, "DATABASE_URL")
    );
    let r = t.run(&["why", &at]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(
        lines[1], "  good.stack:9:5: environment variable `DATABASE_URL` of `api`",
        "{}",
        r.stdout
    );
    assert_eq!(lines[2].trim(), "DATABASE_URL = db.url");
    assert_eq!(lines[3], "  good.stack:4:1: service `api`", "{}", r.stdout);
    // A line the file does not have: an error, not an empty answer.
    let past = compose.lines().count() + 1;
    for line in [0, past] {
        let r = t.run(&["why", &format!("out/single/compose/main.yml:{line}")]);
        assert_eq!(r.code, 2, "line {line}: {}", r.stdout);
        assert!(
            r.stderr.contains(&format!("has no line {line}")),
            "{}",
            r.stderr
        );
    }
    // A field: the image.
    let at = format!(
        "out/single/compose/main.yml:{}",
        line_of(&compose, "image: \"api:1\"")
    );
    let r = t.run(&["why", &at]);
    assert!(
        r.stdout
            .contains("  good.stack:5:3: `image` of `api`\n      image = \"api:1\""),
        "{}",
        r.stdout
    );
    // A value from the stdlib kind, and the parameter it takes.
    let env = t.read("out/single/env/main/db.env");
    let at = format!(
        "out/single/env/main/db.env:{}",
        line_of(&env, "POSTGRES_USER=")
    );
    let r = t.run(&["why", &at]);
    assert!(
        r.stdout.contains("<stdlib>/postgres.stack:"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("POSTGRES_USER = self.user"),
        "{}",
        r.stdout
    );
    // A proxy's line: the route it serves.
    t.write(
        "proxied.stack",
        "service web {\n  image = \"web:1\"\n  port http = 3000\n  route \"/app/\"\n}\n\ntopology single {\n  host main { run = [web] }\n  proxy edge: nginx { host = main }\n}\n",
    );
    assert_eq!(t.run(&["build", "proxied.stack", "--out", "p"]).code, 0);
    let conf = t.read("p/single/nginx/edge.conf");
    let at = format!(
        "p/single/nginx/edge.conf:{}",
        line_of(&conf, "location /app/")
    );
    let r = t.run(&["why", &at]);
    assert!(
        r.stdout
            .contains("proxied.stack:4:3: route `/app/` of `web`"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("proxied.stack:9:3: proxy `edge`"),
        "{}",
        r.stdout
    );
    // A program's messages about generated files, on the source lines.
    let messages = format!(
        "[ALERT] (1) : config : parsing [{at}] : unknown keyword 'lcation'\nERROR: yaml.scanner.ScannerError: mapping values are not allowed here\n  in \"./out/single/compose/main.yml\", line {}, column 7\nunrelated line\n",
        line_of(&compose, "DATABASE_URL")
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_stackc"))
        .args(["why", "-"])
        .current_dir(t.dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    if let Some(mut stdin) = child.stdin.take() {
        std::io::Write::write_all(&mut stdin, messages.as_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("proxied.stack:4:3: [ALERT] (1) : config : parsing ["),
        "{stdout}"
    );
    assert!(
        stdout.contains("good.stack:9:5: in \"./out/single/compose/main.yml\", line"),
        "{stdout}"
    );
    assert!(!stdout.contains("unrelated"), "{stdout}");
    // Not a generated file, or no line.
    t.write("notes.txt", "hello\n");
    assert_eq!(t.run(&["why", "notes.txt:1"]).code, 2);
    assert_eq!(t.run(&["why", "out/single/compose/main.yml"]).code, 2);
}

#[test]
fn broken_inputs_get_a_message_and_an_exit_code_never_a_panic() {
    let t = Test::new();
    fs::write(
        t.path("latin1.stack"),
        b"service caf\xe9 { image = \"x\" }\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    t.write("empty.stack", "");
    fs::create_dir_all(t.path("dir.stack")).unwrap_or_else(|e| panic!("{e}"));
    for (args, code, message) in [
        (vec!["check", "latin1.stack"], 2, "valid UTF-8"),
        (vec!["build", "latin1.stack"], 2, "valid UTF-8"),
        (vec!["check", "dir.stack"], 2, "directory"),
        (vec!["check", "missing.stack"], 2, "cannot read"),
        (vec!["check", "empty.stack"], 0, "W0410"),
        (vec!["fmt", "latin1.stack"], 2, "valid UTF-8"),
        (vec!["graph", "dir.stack"], 2, "directory"),
        (vec!["check", "latin1.stack"], 2, "byte 11 (line 1)"),
        (
            vec!["check", "/dev/zero"],
            2,
            "not a regular file or a pipe",
        ),
        (
            vec!["build", "/dev/zero"],
            2,
            "not a regular file or a pipe",
        ),
        (vec!["check", "bom.stack"], 0, ""),
        (vec!["check", "fifo.stack"], 2, "no writer"),
    ] {
        if args[1] == "bom.stack" {
            fs::write(t.path("bom.stack"), format!("\u{feff}{GOOD}"))
                .unwrap_or_else(|e| panic!("{e}"));
        }
        if args[1] == "fifo.stack" {
            // A named pipe nobody writes to: refused after a bounded wait.
            let made = Command::new("mkfifo").arg(t.path("fifo.stack")).status();
            assert!(made.is_ok_and(|s| s.success()), "mkfifo");
        }
        let r = t.run(&args);
        assert_eq!(r.code, code, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(message), "{args:?}: {}", r.stderr);
        assert!(!r.stderr.contains("panicked"), "{args:?}: {}", r.stderr);
    }
    // A process substitution is a pipe with a writer: read as a file.
    t.write("good.stack", GOOD);
    let r = Command::new("bash")
        .args([
            "-c",
            &format!("{} check <(cat good.stack)", env!("CARGO_BIN_EXE_stackc")),
        ])
        .current_dir(t.dir.path())
        .output()
        .unwrap_or_else(|e| panic!("bash: {e}"));
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
}

#[test]
fn secrets_lists_uses_and_init_writes_values_once() {
    use std::os::unix::fs::PermissionsExt;
    let t = Test::new();
    t.write("good.stack", GOOD);
    let r = t.run(&["secrets", "good.stack", "--topology", "split"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "topology split\n  db_password ($DB_PASSWORD, required; inside a URL: letters, digits and `-._~` only)\n    api on app: DATABASE_URL\n    db on data: POSTGRES_PASSWORD\n"
    );
    // A value set by hand is kept; the missing one is added, 0600.
    t.write("good.secrets.env", "# mine\nOTHER=1\n");
    let r = t.run(&["secrets", "init", "good.stack"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let first = t.read("good.secrets.env");
    assert!(
        first.starts_with("# mine\nOTHER=1\nDB_PASSWORD="),
        "{first}"
    );
    let value = first
        .lines()
        .last()
        .unwrap_or_default()
        .trim_start_matches("DB_PASSWORD=");
    assert!(
        value.len() == 64 && value.chars().all(|c| c.is_ascii_hexdigit()),
        "{value}"
    );
    let mode = fs::metadata(t.path("good.secrets.env"))
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or(0);
    assert_eq!(mode, 0o600);
    // Twice: nothing changes.
    assert_eq!(t.run(&["secrets", "init", "good.stack"]).code, 0);
    assert_eq!(t.read("good.secrets.env"), first);
    // Never into an output directory.
    assert_eq!(t.run(&["build", "good.stack"]).code, 0);
    let r = t.run(&[
        "secrets",
        "init",
        "good.stack",
        "--into",
        "out/single/x.env",
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(!t.path("out/single/x.env").exists());
}

/// Secret values in the environment of a build never reach a generated file:
/// every example, built with a unique value set for each of its secrets.
#[test]
fn no_secret_value_reaches_a_generated_file() {
    for path in crate::support::stack_files("examples") {
        let options = crate::support::options(&path);
        let plan = stackc::analyze(
            crate::support::read(&path),
            &options,
            stackc::Disposal::Free,
        )
        .plan;
        let plan = plan.unwrap_or_else(|| panic!("{}", path.display()));
        let t = Test::new();
        let values: Vec<(String, String)> = plan
            .secrets
            .values()
            .map(|s| {
                (
                    s.env_name.to_string(),
                    format!("leak-{}-7f3a9c", s.name.name),
                )
            })
            .collect();
        let out = Command::new(env!("CARGO_BIN_EXE_stackc"))
            .arg("build")
            .arg(&path)
            .arg("--out")
            .arg(t.path("out"))
            .envs(values.iter().map(|(k, v)| (k, v)))
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let files = files_under(&t.path("out"));
        assert!(files.len() > 5);
        for (file, text) in files {
            for (_, value) in &values {
                assert!(
                    !text.contains(value),
                    "{}: {file} holds {value}",
                    path.display()
                );
            }
        }
    }
}

#[test]
fn deny_turns_warnings_into_errors() {
    let t = Test::new();
    t.write(
        "prod.stack",
        "service api { image = \"api:latest\" }\n\ntopology prod {\n  production = true\n  host main { run = [api] }\n}\n",
    );
    let r = t.run(&["check", "prod.stack"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("W0602"), "{}", r.stderr);
    for deny in [
        vec!["--deny", "warnings"],
        vec!["--deny", "W0602"],
        vec!["--deny", "mutable-image-tag"],
    ] {
        let mut args = vec!["check", "prod.stack"];
        args.extend(&deny);
        assert_eq!(t.run(&args).code, 1, "{deny:?}");
    }
    assert_eq!(t.run(&["check", "prod.stack", "--deny", "W0601"]).code, 0);
    assert_eq!(
        t.run(&["check", "prod.stack", "--deny", "sometimes"]).code,
        2
    );
    // A denied warning stops the build: nothing is written.
    let r = t.run(&["build", "prod.stack", "--deny", "warnings"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(!t.path("out").exists());
    assert_eq!(t.run(&["build", "prod.stack"]).code, 0);
    assert!(t.path("out/prod/compose/main.yml").is_file());
}

/// The same input gives the same bytes wherever it is built and however the
/// file is named on the command line: no absolute path, no time, no order
/// from a hash map.
#[test]
fn the_same_input_gives_the_same_bytes_anywhere() {
    let t = Test::new();
    let stack = crate::support::read(&crate::support::root().join("examples/neural-dsl.stack"));
    t.write("one/deep/dir/app.stack", &stack);
    t.write("two/app.stack", &stack);
    let absolute = t.path("one/deep/dir/app.stack");
    let r = t.run(&["build", absolute.to_str().unwrap_or_default()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = Command::new(env!("CARGO_BIN_EXE_stackc"))
        .args(["build", "app.stack"])
        .current_dir(t.path("two"))
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(r.status.success());
    let a = files_under(&t.path("one/deep/dir/out"));
    let b = files_under(&t.path("two/out"));
    assert!(a.len() > 50);
    assert_eq!(a, b);
    let root = t.dir.path().to_string_lossy().into_owned();
    for (path, text) in &a {
        assert!(!text.contains(&root), "{path} holds an absolute path");
    }
}

/// Topologies are planned, generated and written on threads of their own when
/// there are cores for them (`taskset` to one core makes every step sequential):
/// the files, the report and the diagnostics are the same either way.
#[test]
fn one_core_and_every_core_give_the_same_bytes() {
    if !crate::support::require("taskset") {
        return;
    }
    let run = |one_core: bool, args: &[&str]| {
        let mut cmd = if one_core {
            let mut c = Command::new("taskset");
            c.args(["-c", "0"]).arg(env!("CARGO_BIN_EXE_stackc"));
            c
        } else {
            Command::new(env!("CARGO_BIN_EXE_stackc"))
        };
        let out = cmd
            .args(args)
            .env("NO_COLOR", "1")
            .output()
            .unwrap_or_else(|e| panic!("run stackc: {e}"));
        (out.status.code(), out.stdout, out.stderr)
    };
    let t = Test::new();
    t.write("good.stack", GOOD);
    let mut inputs = crate::support::stack_files("examples");
    inputs.push(t.path("good.stack"));
    for (i, input) in inputs.iter().enumerate() {
        let src = input.to_string_lossy().into_owned();
        let (one, all) = (t.path(&format!("one-{i}")), t.path(&format!("all-{i}")));
        let (one_s, all_s) = (one.to_string_lossy(), all.to_string_lossy());
        let a = run(true, &["build", &src, "--out", &one_s]);
        let b = run(false, &["build", &src, "--out", &all_s]);
        assert_eq!(a.0, Some(0), "{src}: {}", String::from_utf8_lossy(&a.2));
        // The report names the output directory.
        let report = |r: &(Option<i32>, Vec<u8>, Vec<u8>), dir: &str| {
            let text = |b: &[u8]| String::from_utf8_lossy(b).replace(dir, "OUT");
            (r.0, text(&r.1), text(&r.2))
        };
        assert_eq!(report(&a, &one_s), report(&b, &all_s), "{src}");
        assert_eq!(files_under(&one), files_under(&all), "{src}");
    }
    // A file large enough for services to be lowered in chunks on threads, with
    // errors in every chunk.
    let mut big = String::from("stack big\n");
    for i in 0..600 {
        big += &match i % 150 {
            7 => format!("service \"s{i}\" {{ image = \"x:1\" }}\n"),
            31 => format!("service s{i} {{ image = \"x:1\"\n  image = \"y:1\" }}\n"),
            77 => format!("service s{i} {{ image = \"x:1\"\n  replica = 2 }}\n"),
            99 => format!("service s{i} {{ image = 3 }}\n"),
            _ => format!(
                "service s{i} {{ image = \"x:1\"\n  env {{ NEXT = s{}.host }} }}\n",
                (i + 1) % 600
            ),
        };
    }
    let names: Vec<String> = (0..600)
        .filter(|i| i % 150 != 7)
        .map(|i| format!("s{i}"))
        .collect();
    big += &format!(
        "topology one {{\n  host main {{\n    address = \"10.0.0.1\"\n    run = [{}]\n  }}\n}}\n",
        names.join(", ")
    );
    t.write("big.stack", &big);
    let big = t.path("big.stack").to_string_lossy().into_owned();
    let args = ["check", &big, "--message-format", "json"];
    let (a, b) = (run(true, &args), run(false, &args));
    assert_eq!(a, b, "big.stack");
    let errors = String::from_utf8_lossy(&a.1)
        .matches("\"severity\":\"error\"")
        .count()
        + String::from_utf8_lossy(&a.2)
            .matches("\"severity\":\"error\"")
            .count();
    assert!(
        errors >= 16,
        "{errors} errors: {}{}",
        String::from_utf8_lossy(&a.1),
        String::from_utf8_lossy(&a.2)
    );
    // Diagnostics found in several topologies, in the same order.
    for input in crate::support::stack_files("tests/errors") {
        let src = input.to_string_lossy().into_owned();
        let args = ["check", &src, "--message-format", "json"];
        let (a, b) = (run(true, &args), run(false, &args));
        assert_eq!(a, b, "{src}");
    }
}

/// A build turns transparent huge pages off for its process (they were a
/// quarter of a large build's peak memory, docs/performance.md); `check` keeps
/// them. Run in this process: the setting is the process's own.
#[cfg(target_os = "linux")]
#[test]
fn a_build_turns_huge_pages_off() {
    let t = Test::new();
    t.write("app.stack", GOOD);
    let src = t.path("app.stack").to_string_lossy().into_owned();
    let out = t.path("out").to_string_lossy().into_owned();
    // Inherited from the process that started the tests, the setting could
    // already be on; then only the build's success is checked.
    let before = rustix::thread::transparent_huge_pages_are_disabled()
        .unwrap_or_else(|e| panic!("prctl: {e}"));
    let args = ["stackc", "check", src.as_str()].map(std::ffi::OsString::from);
    assert_eq!(stackc::cli::run(args), 0);
    assert_eq!(
        rustix::thread::transparent_huge_pages_are_disabled().ok(),
        Some(before),
        "check changed the setting"
    );
    let args =
        ["stackc", "build", src.as_str(), "--out", out.as_str()].map(std::ffi::OsString::from);
    assert_eq!(stackc::cli::run(args), 0);
    assert_eq!(
        rustix::thread::transparent_huge_pages_are_disabled().ok(),
        Some(true)
    );
}

/// The paths a build writes (build contexts, bind mounts) resolve to the same
/// directories however the `.stack` file is named on the command line: `app.stack`
/// from its own directory (whose parent is the empty path), `./app.stack`, or an
/// absolute path. Checked with what `docker-compose config` resolves, and by
/// `build --check` agreeing with `build` whatever the spelling.
#[test]
fn paths_resolve_the_same_however_the_file_is_named() {
    if !crate::support::require("docker-compose") {
        return;
    }
    let t = Test::new();
    t.write(
        "proj/app.stack",
        r#"
service api {
  build = "./api"
  port http = 8000
  mount "./conf" = "/conf"
}
topology single {
  host main { address = "10.0.0.1"  run = [api] }
}
"#,
    );
    fs::create_dir_all(t.path("proj/api")).unwrap_or_else(|e| panic!("{e}"));
    fs::create_dir_all(t.path("proj/conf")).unwrap_or_else(|e| panic!("{e}"));
    let proj = fs::canonicalize(t.path("proj")).unwrap_or_else(|e| panic!("{e}"));
    let absolute = proj.join("app.stack");
    let spellings = [
        "app.stack",
        "./app.stack",
        absolute.to_str().unwrap_or_default(),
    ];
    let stackc = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_stackc"))
            .args(args)
            .current_dir(&proj)
            .output()
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let mut trees = Vec::new();
    for spelling in spellings {
        let _ = fs::remove_dir_all(proj.join("out"));
        let r = stackc(&["build", spelling]);
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        let compose_dir = proj.join("out/single/compose");
        let resolved = Command::new("docker-compose")
            .args(["-f", "main.yml", "config"])
            .current_dir(&compose_dir)
            .output()
            .unwrap_or_else(|e| panic!("docker-compose: {e}"));
        assert!(
            resolved.status.success(),
            "{}",
            String::from_utf8_lossy(&resolved.stderr)
        );
        let doc: serde_norway::Value =
            serde_norway::from_slice(&resolved.stdout).unwrap_or_else(|e| panic!("{e}"));
        let api = &doc["services"]["api"];
        assert_eq!(
            api["build"]["context"].as_str(),
            proj.join("api").to_str(),
            "build context for `{spelling}`"
        );
        let mount = format!("{}:/conf:rw", proj.join("conf").display());
        assert_eq!(
            api["volumes"][0].as_str(),
            Some(mount.as_str()),
            "bind mount for `{spelling}`"
        );
        for other in spellings {
            let r = stackc(&["build", other, "--check"]);
            assert!(
                r.status.success(),
                "`build {spelling}` then `build --check {other}`: {}",
                String::from_utf8_lossy(&r.stdout)
            );
        }
        trees.push(files_under(&proj.join("out")));
    }
    assert_eq!(trees[0], trees[1]);
    assert_eq!(trees[0], trees[2]);
}

/// `secrets init --into` never writes into an output directory (a topology's
/// or the root that holds them) or into a `.stack` file, and writes through a
/// symbolic link, which stays a link.
/// A secret with `generate = false` (a third party's credential) is never
/// made up by `secrets init`, which names it for the user to set; `check
/// --secrets` warns of each required one the values file lacks (W0421), and
/// `--deny W0421` fails until it is set.
#[test]
fn secrets_the_user_brings_are_named_not_made() {
    let t = Test::new();
    t.write(
        "app.stack",
        "secret db_password\nsecret openai_key { generate = false }\n\nservice db: postgres { password = secret.db_password }\n\nservice api {\n  image = \"api:1\"\n  env { OPENAI_API_KEY = secret.openai_key }\n}\n\ntopology single {\n  host main { run = [db, api] }\n}\n",
    );
    let r = t.run(&["secrets", "init", "app.stack"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let values = t.read("app.secrets.env");
    assert!(values.contains("DB_PASSWORD="), "{values}");
    assert!(!values.contains("OPENAI_KEY"), "never made up: {values}");
    assert!(
        r.stderr
            .contains("set these yourself (`generate = false`): openai_key (OPENAI_KEY)"),
        "{}",
        r.stderr
    );
    let r = t.run(&["check", "app.stack", "--secrets", "app.secrets.env"]);
    assert_eq!(r.code, 0, "a warning: {}", r.stderr);
    assert!(r.stderr.contains("W0421"), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("secret `openai_key` is not set in app.secrets.env"),
        "{}",
        r.stderr
    );
    assert!(
        !r.stderr.contains("db_password` is not set"),
        "{}",
        r.stderr
    );
    let strict = [
        "check",
        "app.stack",
        "--secrets",
        "app.secrets.env",
        "--deny",
        "W0421",
    ];
    assert_eq!(t.run(&strict).code, 1);
    t.write("app.secrets.env", &format!("{values}OPENAI_KEY=sk-test\n"));
    let r = t.run(&strict);
    assert_eq!((r.code, r.stderr.as_str()), (0, ""));
    assert_eq!(
        t.run(&["check", "app.stack", "--secrets", "nowhere.env"])
            .code,
        2
    );
}

#[test]
fn secrets_init_keeps_out_of_outputs_and_sources_and_keeps_links() {
    let t = Test::new();
    t.write("good.stack", GOOD);
    assert_eq!(t.run(&["build", "good.stack"]).code, 0);
    for into in [
        "out/values.env",
        "out/single/values.env",
        "good.stack",
        "other.stack",
    ] {
        let before = fs::read(t.path("good.stack")).unwrap_or_default();
        let r = t.run(&["secrets", "init", "good.stack", "--into", into]);
        assert_eq!(r.code, 2, "--into {into}: {}", r.stderr);
        assert!(
            !t.path(into).exists() || into == "good.stack",
            "--into {into} wrote"
        );
        assert_eq!(fs::read(t.path("good.stack")).unwrap_or_default(), before);
    }
    t.write("vault/real.env", "# mine\n");
    std::os::unix::fs::symlink("vault/real.env", t.path("link.env"))
        .unwrap_or_else(|e| panic!("{e}"));
    let r = t.run(&["secrets", "init", "good.stack", "--into", "link.env"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(t.path("link.env").is_symlink(), "the link stays a link");
    assert!(
        t.read("vault/real.env").contains("DB_PASSWORD="),
        "the values go where it leads"
    );
}
