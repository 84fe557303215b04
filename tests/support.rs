//! Helpers shared by the test modules.

use std::path::{Path, PathBuf};

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The .stack files under a folder of the repository, sorted.
pub fn stack_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = walkdir::WalkDir::new(root().join(dir))
        .into_iter()
        .filter_map(Result::ok)
        .map(|e| e.into_path())
        .filter(|p| p.extension().is_some_and(|e| e == "stack"))
        .collect();
    files.sort();
    files
}

/// The path relative to the repository root, with `/`.
pub fn rel(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/")
}

/// Options as the tests use them: stable names, the default output layout.
pub fn options(path: &Path) -> stackc::Options {
    stackc::Options {
        source_name: rel(path),
        topologies: Vec::new(),
        source_dir_from_compose: "../../..".to_string(),
        source_from_out: format!(
            "../{}",
            path.file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default()
        ),
    }
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Whether an external program is available. Under CI (`CI=true`) a missing
/// program fails the test instead of skipping it.
pub fn require(program: &str) -> bool {
    let found = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{program} is required under CI=true but is not installed (see .ci/run)");
        }
        eprintln!("note: {program} not installed; skipping this check (it fails under CI=true)");
    }
    found
}

/// A generated file of a compilation, by its path in the output directory.
pub fn artifact(compilation: &stackc::Compilation, path: &str) -> String {
    compilation
        .artifacts
        .iter()
        .find(|a| a.path == path)
        .unwrap_or_else(|| panic!("no generated file {path}"))
        .contents
        .clone()
}

/// Writes a compilation's files under `dir`, as `stackc build --out dir` would.
pub fn write_artifacts(compilation: &stackc::Compilation, dir: &std::path::Path) {
    for a in &compilation.artifacts {
        let p = dir.join(&a.path);
        std::fs::create_dir_all(p.parent().unwrap_or(dir)).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(&p, &a.contents).unwrap_or_else(|e| panic!("{e}"));
    }
}

/// Polls `done` every 100 ms until it holds, failing the test after `limit`;
/// returns how long it took.
pub fn wait_for(
    what: &str,
    limit: std::time::Duration,
    mut done: impl FnMut() -> bool,
) -> std::time::Duration {
    let start = std::time::Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    start.elapsed()
}

/// A started program, killed (SIGKILL) and reaped when dropped, even when an
/// assertion fails.
pub struct Running(pub std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Parses docker-compose's output as docker-compose does: YAML 1.1 (PyYAML), where
/// `0o17` or `1_000` are strings, not numbers as in YAML 1.2.
pub fn yaml11(text: &[u8]) -> serde_json::Value {
    use std::io::Write;
    let mut child = std::process::Command::new("/usr/bin/python3")
        .args([
            "-c",
            "import sys, json, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("python3 with PyYAML (installed with docker-compose): {e}"));
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(text).unwrap_or_else(|e| panic!("{e}"));
    }
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("PyYAML output: {e}"))
}

/// The values a POSIX shell reads from an env file (`set -a; . FILE`), for
/// each name in order (an unset one reads as empty).
pub fn sh_env_values<S: AsRef<std::ffi::OsStr>>(file: &Path, names: &[S]) -> Vec<String> {
    let script =
        r#"set -a; . "$1"; shift; for k in "$@"; do eval "printf '%s\0' \"\${$k}\""; done"#;
    let r = std::process::Command::new("sh")
        .env_clear()
        .args(["-c", script, "sh"])
        .arg(file)
        .args(names)
        .output()
        .unwrap_or_else(|e| panic!("sh: {e}"));
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    String::from_utf8_lossy(&r.stdout)
        .split('\0')
        .map(str::to_string)
        .collect()
}

/// Kubernetes' expansion of `$(VAR)` in an env value, `command` or `args`
/// (k8s.io/kubernetes third_party/forked/golang/expansion, as documented for
/// "Define dependent environment variables"): `$$` is a literal `$`; `$(NAME)`
/// is NAME's value when NAME is defined (for env, earlier in the list), else
/// left as written; any other `$` is itself.
pub fn kubernetes_expand(
    value: &str,
    defined: &std::collections::BTreeMap<String, String>,
) -> String {
    let b = value.as_bytes();
    let mut out: Vec<u8> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'$' || i + 1 == b.len() {
            out.push(b[i]);
            i += 1;
            continue;
        }
        match b[i + 1] {
            b'$' => {
                out.push(b'$');
                i += 2;
            }
            b'(' => match value[i + 2..].find(')') {
                Some(end) => {
                    let name = &value[i + 2..i + 2 + end];
                    match defined.get(name) {
                        Some(v) => out.extend_from_slice(v.as_bytes()),
                        None => out.extend_from_slice(format!("$({name})").as_bytes()),
                    }
                    i += end + 3;
                }
                None => {
                    out.extend_from_slice(&b[i..]);
                    i = b.len();
                }
            },
            _ => {
                out.push(b'$');
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_default()
}

/// A compose file as `docker-compose config` resolves it with the secrets'
/// values `env`, `$$` read back as the `$` the container gets.
pub fn compose_resolved(file: &Path, env: &[(&str, &str)]) -> serde_norway::Value {
    let o = std::process::Command::new("docker-compose")
        .args(["-f", &file.display().to_string(), "config"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .output()
        .unwrap_or_else(|e| panic!("docker-compose: {e}"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout).replace("$$", "$");
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{e}"))
}

/// A resolved compose service's environment, every value as text.
pub fn compose_environment(
    service: &serde_norway::Value,
) -> std::collections::BTreeMap<String, String> {
    let Some(map) = service["environment"].as_mapping() else {
        panic!("no environment: {service:?}");
    };
    map.iter()
        .map(|(k, v)| {
            let value = match v {
                serde_norway::Value::String(s) => s.clone(),
                other => serde_norway::to_string(other)
                    .unwrap_or_default()
                    .trim()
                    .to_string(),
            };
            (k.as_str().unwrap_or_default().to_string(), value)
        })
        .collect()
}
