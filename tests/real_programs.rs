//! The generated files of the examples, the test cases and 16 varied
//! generated stacks (`generate`: the checker must accept most of them), run
//! through the real programs: `docker-compose config`
//! (Debian's docker-compose 1.29), yamllint, a POSIX shell reading env files and
//! parsing scripts, and kubernetes-validate (strict, oldest and newest supported
//! Kubernetes).
//! Each check fails when its program is missing under `CI=true`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use stackc::model::Platform;
use stackc::plan::{Out, Plan};

use crate::support::{options, read, rel, require, stack_files, yaml11};

const SECRET_VALUE: &str = "s3cr$t value";

/// Every example, test case and generated stack, built into a directory of
/// its own.
struct Built {
    name: String,
    out: PathBuf,
    plan: Plan,
    files: Vec<String>,
}

/// The builds, made once for all the tests of this module (each reads them),
/// under cargo's temporary directory for integration tests.
fn build_all() -> &'static [Built] {
    static BUILT: std::sync::OnceLock<Vec<Built>> = std::sync::OnceLock::new();
    BUILT.get_or_init(build_everything)
}

fn build_everything() -> Vec<Built> {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("real-programs");
    let _ = fs::remove_dir_all(&root);
    let mut inputs: Vec<(String, String, stackc::Options)> = Vec::new();
    for path in stack_files("examples")
        .into_iter()
        .chain(stack_files("tests/cases"))
    {
        let opts = stackc::Options {
            source_dir_from_compose: "../../../src".to_string(),
            ..options(&path)
        };
        inputs.push((rel(&path), read(&path), opts));
    }
    let mut all: Vec<Built> = inputs
        .into_iter()
        .map(|(name, text, opts)| {
            build(&root, &name, &text, &opts).unwrap_or_else(|e| panic!("{name} has errors: {e}"))
        })
        .collect();
    // Varied generated stacks: those the checker accepts must give files that
    // every validator accepts too.
    let generated = crate::generate::stacks(GENERATED, 0x5EED_0F57_AC45_0001);
    let mut accepted = 0;
    for (name, text) in generated {
        let opts = stackc::Options {
            source_name: format!("{name}.stack"),
            topologies: Vec::new(),
            source_dir_from_compose: "../../../src".to_string(),
            source_from_out: format!("../{name}.stack"),
        };
        let built = build(&root, &name, &text, &opts);
        if let Err(e) = &built {
            eprintln!(
                "REJECTED {name}: {}",
                e.chars().take(400).collect::<String>()
            );
        }
        if let Ok(b) = built {
            all.push(b);
            accepted += 1;
        }
    }
    assert!(
        accepted * 4 >= GENERATED * 3,
        "the checker accepts only {accepted} of {GENERATED} generated stacks"
    );
    all
}

/// How many stacks `build_all` generates.
const GENERATED: usize = 16;

/// Builds one input into a directory of its own under `root`; `Err` lists its
/// errors.
fn build(root: &Path, name: &str, text: &str, opts: &stackc::Options) -> Result<Built, String> {
    let analysis = stackc::analyze(text, opts, stackc::Disposal::Free);
    let (plan, diags) = (analysis.plan, analysis.diagnostics);
    let Some(plan) = plan else {
        return Err(format!("{diags:?}"));
    };
    let compilation = stackc::compile(text, opts);
    if compilation.has_errors() {
        return Err(format!("{:?}", compilation.diagnostics));
    }
    let out = root.join(name.replace('/', "_")).join("out");
    let mut files = Vec::new();
    for a in &compilation.artifacts {
        let p = out.join(&a.path);
        fs::create_dir_all(p.parent().unwrap_or(&out)).unwrap_or_else(|e| panic!("{e}"));
        fs::write(&p, &a.contents).unwrap_or_else(|e| panic!("{e}"));
        files.push(a.path.clone());
    }
    Ok(Built {
        name: name.to_string(),
        out,
        plan,
        files,
    })
}

/// The environment value that a consumer of the generated files must see, with
/// every secret set to `SECRET_VALUE` (or empty, for env files).
fn expected(value: &[Out], secret: &str) -> String {
    let has_secret = value.iter().any(|p| matches!(p, Out::Secret { .. }));
    if has_secret && secret.is_empty() {
        // Env files leave any value that holds a secret as an empty placeholder.
        return String::new();
    }
    value
        .iter()
        .map(|p| match p {
            Out::Text(t) => t.to_string(),
            Out::Secret { .. } => secret.to_string(),
        })
        .collect()
}

fn compose(args: &[&str], env: &[(String, String)], cwd: &Path) -> std::process::Output {
    Command::new("docker-compose")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .current_dir(cwd)
        .output()
        .unwrap_or_else(|e| panic!("docker-compose: {e}"))
}

/// Creates the build contexts and mount sources a compose file names, so that
/// `docker-compose config` can resolve them.
pub(crate) fn make_contexts(compose_file: &Path) {
    let doc: serde_norway::Value =
        serde_norway::from_str(&read(compose_file)).unwrap_or_else(|e| panic!("{e}"));
    let dir = compose_file.parent().unwrap_or(Path::new("."));
    let Some(services) = doc.get("services").and_then(|s| s.as_mapping()) else {
        return;
    };
    for (_, svc) in services {
        if let Some(ctx) = svc
            .get("build")
            .and_then(|b| b.get("context"))
            .and_then(|c| c.as_str())
        {
            fs::create_dir_all(dir.join(ctx)).unwrap_or_else(|e| panic!("{e}"));
        }
        for v in svc
            .get("volumes")
            .and_then(|v| v.as_sequence())
            .into_iter()
            .flatten()
        {
            let Some(spec) = v.as_str() else { continue };
            if spec.starts_with('.') {
                let source = spec.split(':').next().unwrap_or_default();
                let p = dir.join(source);
                if !p.exists() {
                    // A source the test stands in for; generated files are real.
                    fs::create_dir_all(p.parent().unwrap_or(dir)).unwrap_or_else(|e| panic!("{e}"));
                    fs::write(&p, "").unwrap_or_else(|e| panic!("{e}"));
                }
            }
        }
    }
}

#[test]
fn compose_files_pass_docker_compose_config() {
    if !require("docker-compose") {
        return;
    }
    for b in build_all() {
        let secrets: Vec<(String, String)> = b
            .plan
            .secrets
            .values()
            .map(|s| (s.env_name.to_string(), SECRET_VALUE.to_string()))
            .collect();
        let empty = b.out.join("empty.env");
        fs::write(&empty, "").unwrap_or_else(|e| panic!("{e}"));
        for f in b.files.iter().filter(|f| f.contains("/compose/")) {
            let file = b.out.join(f);
            make_contexts(&file);
            let args = [
                "-f",
                file.to_str().unwrap_or_default(),
                "--env-file",
                empty.to_str().unwrap_or_default(),
            ];
            let mut quiet = args.to_vec();
            quiet.extend(["config", "-q"]);
            let r = compose(&quiet, &secrets, &b.out);
            assert!(
                r.status.success(),
                "{} {f}: docker-compose config failed:\n{}",
                b.name,
                String::from_utf8_lossy(&r.stderr)
            );
            // The environment docker-compose resolves is exactly the planned one.
            let mut full = args.to_vec();
            full.push("config");
            let r = compose(&full, &secrets, &b.out);
            let doc = yaml11(&r.stdout);
            let topo = f.split('/').next().unwrap_or_default();
            let host = f
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .trim_end_matches(".yml");
            let plan_host = b
                .plan
                .topologies
                .iter()
                .filter(|t| t.name == topo)
                .flat_map(|t| &t.hosts)
                .find(|h| h.name == host)
                .unwrap_or_else(|| panic!("host {host}"));
            for inst in &plan_host.services {
                let env = doc["services"][inst.name.as_str()]["environment"].clone();
                for var in &inst.env {
                    let got = env[var.key.as_str()].as_str().map(|s| s.replace("$$", "$"));
                    assert_eq!(
                        got.as_deref(),
                        Some(expected(&var.value, SECRET_VALUE).as_str()),
                        "{} {f} {}.{}",
                        b.name,
                        inst.name,
                        var.key
                    );
                }
            }
            // A required secret left unset stops compose with its name.
            if let Some((name, _)) = secrets.first() {
                let needs = b
                    .plan
                    .secrets
                    .values()
                    .any(|s| s.env_name == name && !s.optional)
                    && read(&file).contains(&format!("${{{name}:?"));
                if needs {
                    let r = compose(&quiet, &secrets[1..], &b.out);
                    assert!(
                        !r.status.success(),
                        "{} {f}: missing {name} must fail",
                        b.name
                    );
                    assert!(String::from_utf8_lossy(&r.stderr).contains(name.as_str()));
                }
            }
        }
    }
}

#[test]
fn yaml_has_no_duplicate_keys() {
    if !require("yamllint") {
        return;
    }
    for b in build_all() {
        for f in b
            .files
            .iter()
            .filter(|f| f.ends_with(".yml") || f.ends_with(".yaml"))
        {
            let r = Command::new("yamllint")
                .args(["-d", "{extends: relaxed, rules: {line-length: disable}}"])
                .arg(b.out.join(f))
                .output()
                .unwrap_or_else(|e| panic!("yamllint: {e}"));
            assert!(
                r.status.success(),
                "{} {f}:\n{}",
                b.name,
                String::from_utf8_lossy(&r.stdout)
            );
        }
    }
}

/// Every env file, read back through docker-compose's `--env-file` and through
/// `sh`, gives exactly the intended values (secrets empty).
#[test]
fn env_files_read_back_exactly() {
    let has_compose = require("docker-compose");
    let has_sh = require("sh");
    for b in build_all() {
        // Kubernetes topologies have no env files: their manifests carry the env.
        for topo in b
            .plan
            .topologies
            .iter()
            .filter(|t| t.platform == Platform::Compose)
        {
            for host in &topo.hosts {
                for inst in &host.services {
                    let file = b
                        .out
                        .join(format!("{}/env/{}/{}.env", topo.name, host.name, inst.name));
                    let want: BTreeMap<String, String> = inst
                        .env
                        .iter()
                        .map(|v| (v.key.to_string(), expected(&v.value, "")))
                        .filter(|(k, _)| k != "PATH")
                        .collect();
                    if want.is_empty() {
                        continue;
                    }
                    if has_compose {
                        let probe = b.out.join("probe.yml");
                        let mut yml = String::from(
                            "services:\n  probe:\n    image: busybox\n    environment:\n",
                        );
                        for k in want.keys() {
                            yml.push_str(&format!("      \"{k}\": \"${{{k}}}\"\n"));
                        }
                        fs::write(&probe, yml).unwrap_or_else(|e| panic!("{e}"));
                        let r = compose(
                            &[
                                "-f",
                                probe.to_str().unwrap_or_default(),
                                "--env-file",
                                file.to_str().unwrap_or_default(),
                                "config",
                            ],
                            &[],
                            &b.out,
                        );
                        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
                        let doc = yaml11(&r.stdout);
                        for (k, v) in &want {
                            let got = doc["services"]["probe"]["environment"][k.as_str()]
                                .as_str()
                                .map(|s| s.replace("$$", "$"));
                            assert_eq!(
                                got.as_deref(),
                                Some(v.as_str()),
                                "{} {} {k} via docker-compose",
                                b.name,
                                file.display()
                            );
                        }
                    }
                    if has_sh {
                        let names: Vec<&String> = want.keys().collect();
                        let got = crate::support::sh_env_values(&file, &names);
                        for (i, (k, v)) in want.iter().enumerate() {
                            assert_eq!(
                                got.get(i),
                                Some(v),
                                "{} {} {k} via sh",
                                b.name,
                                file.display()
                            );
                        }
                    }
                }
            }
        }
    }
}

/// The oldest and the newest Kubernetes minor versions stackc supports.
const KUBERNETES_VERSIONS: [&str; 2] = ["1.29.0", "1.37.0"];

#[test]
fn kubernetes_manifests_pass_kubernetes_validate() {
    if !require("kubernetes-validate") {
        return;
    }
    let mut files = 0;
    for b in build_all() {
        let manifests: Vec<PathBuf> = b
            .files
            .iter()
            .filter(|f| f.contains("/k8s/") && f.ends_with(".yaml"))
            .map(|f| b.out.join(f))
            .collect();
        if manifests.is_empty() {
            continue;
        }
        files += manifests.len();
        for version in KUBERNETES_VERSIONS {
            let r = Command::new("kubernetes-validate")
                .args(["--strict", "--quiet", "-k", version])
                .args(&manifests)
                .output()
                .unwrap_or_else(|e| panic!("kubernetes-validate: {e}"));
            assert!(
                r.status.success(),
                "{} against Kubernetes {version}:\n{}{}",
                b.name,
                String::from_utf8_lossy(&r.stdout),
                String::from_utf8_lossy(&r.stderr)
            );
        }
    }
    assert!(
        files > 5,
        "the examples have Kubernetes manifests ({files})"
    );
}

/// The first line of `text` that puts one of `names` on a program's command
/// line, where `ps` shows it to every user of the machine: a secret's
/// variable may be expanded only by the shell's built-ins (`:`, `[`, `case`,
/// `printf`, `exec` of a here-document), as an environment assignment before
/// a program, or inside a here-document (the program's standard input).
fn secret_on_a_command_line(text: &str, names: &[String]) -> Option<String> {
    let mut here_document: Option<String> = None;
    for line in text.lines().map(str::trim) {
        if let Some(end) = &here_document {
            if line == end {
                here_document = None;
            }
            continue;
        }
        if let Some((_, rest)) = line.split_once("<<") {
            let end = rest.trim_start_matches('-').split_whitespace().next();
            here_document = end.map(|e| e.trim_matches(['\'', '"']).to_string());
        }
        if line.starts_with('#') {
            continue;
        }
        for name in names {
            let plain = format!("${name}");
            let braced = format!("${{{name}");
            let in_arguments = format!("$({name})");
            if line.contains(&in_arguments) {
                return Some(line.to_string());
            }
            if !line.contains(&plain) && !line.contains(&braced) {
                continue;
            }
            let builtin = [": \"${", "[ -n \"$", "case \"${", "printf '"]
                .iter()
                .any(|b| line.starts_with(b));
            // `NAME="$X" program ...`: in the program's environment.
            let command = line.trim_start_matches("until ");
            let first = command.split_whitespace().next().unwrap_or_default();
            let assignment = (first.contains(&plain) || first.contains(&braced))
                && first.split_once('=').is_some_and(|(k, _)| {
                    !k.is_empty() && k.chars().all(|c| c.is_ascii_uppercase() || c == '_')
                });
            if !builtin && !assignment {
                return Some(line.to_string());
            }
        }
    }
    None
}

/// The shell lines and commands of a generated file that a program runs:
/// the whole of a script; each command and health check of a compose file
/// (compose turns `$$` into `$`); each container's command and arguments of
/// a Kubernetes manifest (Kubernetes expands `$(VAR)` and turns `$$` into
/// `$`).
fn commands_of(out: &Path, file: &str) -> Vec<String> {
    let text = read(&out.join(file));
    if file.ends_with(".sh") {
        return vec![text];
    }
    if !(file.ends_with(".yml") || file.ends_with(".yaml")) {
        return Vec::new();
    }
    let words = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|w| w.as_str())
            .map(|w| w.replace("$$", "$"))
            .collect()
    };
    let mut commands = Vec::new();
    for doc in serde_norway::Deserializer::from_str(&text) {
        use serde::Deserialize as _;
        let v = serde_json::Value::deserialize(doc).unwrap_or_else(|e| panic!("{file}: {e}"));
        for service in v["services"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(_, s)| s)
        {
            commands.push(words(&service["command"]).join("\n"));
            commands.push(words(&service["entrypoint"]).join("\n"));
            commands.push(words(&service["healthcheck"]["test"]).join("\n"));
        }
        let spec = &v["spec"]["template"]["spec"];
        for container in ["containers", "initContainers"]
            .iter()
            .flat_map(|k| spec[k].as_array().into_iter().flatten())
        {
            let mut all = words(&container["command"]);
            all.extend(words(&container["args"]));
            commands.push(all.join("\n"));
        }
    }
    commands.retain(|c| !c.is_empty());
    commands
}

/// No generated script, compose command or container command puts a secret
/// on a program's command line (`secret_on_a_command_line`).
#[test]
fn generated_commands_put_no_secret_on_a_command_line() {
    let mut checked = 0;
    for b in build_all() {
        let mut names: Vec<String> = b
            .plan
            .secrets
            .values()
            .map(|s| s.env_name.to_string())
            .collect();
        names.extend(
            [
                "STACKC_REPLICATION_PASSWORD",
                "POSTGRES_PASSWORD",
                "REDIS_PASSWORD",
            ]
            .map(str::to_string),
        );
        for f in &b.files {
            for command in commands_of(&b.out, f) {
                if names.iter().any(|n| {
                    command.contains(&format!("${n}")) || command.contains(&format!("${{{n}"))
                }) {
                    checked += 1;
                }
                if let Some(line) = secret_on_a_command_line(&command, &names) {
                    panic!("{} {f}: `{line}` puts a secret on a command line", b.name);
                }
            }
        }
    }
    assert!(checked > 5, "the commands read secrets ({checked})");
}

/// The checker above can fail: each way a secret reaches a command line.
#[test]
fn the_command_line_check_finds_a_secret() {
    let names = ["REDIS_PASSWORD".to_string()];
    for leak in [
        "exec redis-server --requirepass \"$REDIS_PASSWORD\"",
        "redis-cli -a ${REDIS_PASSWORD} ping",
        "redis-server --requirepass $(REDIS_PASSWORD)",
        "exec <<END\nrequirepass x\nEND\nredis-server --masterauth \"$REDIS_PASSWORD\"",
    ] {
        assert!(secret_on_a_command_line(leak, &names).is_some(), "{leak}");
    }
    let safe = "case \"${REDIS_PASSWORD:-}\" in ''|*[!a-z]*) exit 1 ;; esac\nexec <<END\nrequirepass \"$REDIS_PASSWORD\"\nEND\nREDISCLI_AUTH=\"$REDIS_PASSWORD\" redis-cli ping\nexec redis-server -";
    assert_eq!(secret_on_a_command_line(safe, &names), None);
}

#[test]
fn generated_scripts_parse() {
    if !require("sh") {
        return;
    }
    for b in build_all() {
        for f in b.files.iter().filter(|f| f.ends_with(".sh")) {
            let r = Command::new("sh")
                .arg("-n")
                .arg(b.out.join(f))
                .output()
                .unwrap_or_else(|e| panic!("sh: {e}"));
            assert!(
                r.status.success(),
                "{} {f}: {}",
                b.name,
                String::from_utf8_lossy(&r.stderr)
            );
        }
    }
}

/// The upstream host names of an nginx config that are names, not addresses.
fn nginx_names(conf: &str) -> Vec<String> {
    let mut names: Vec<String> = conf
        .lines()
        .filter_map(|l| l.trim().strip_prefix("server "))
        .filter_map(|rest| rest.split(':').next())
        .filter(|h| !h.chars().all(|c| c.is_ascii_digit() || c == '.'))
        .map(str::to_string)
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Every generated nginx config passes `nginx -t`, with its upstream names
/// resolving (a private mount namespace with its own /etc/hosts, as
/// ../shared/TARGETS.md 1.1 shows) and self-signed certificates at the
/// Let's Encrypt paths it names, or, for a proxy that obtains its
/// certificates, the stand-ins its generated ACME script makes.
#[test]
fn nginx_configs_pass_nginx_t() {
    if !require("nginx") || !require("unshare") || !require("openssl") {
        return;
    }
    let mut checked = 0;
    for b in build_all() {
        for f in b
            .files
            .iter()
            .filter(|f| f.contains("/nginx/") && f.ends_with(".conf"))
        {
            let conf = b.out.join(f);
            let text = read(&conf);
            let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
            let mut hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
            for name in nginx_names(&text) {
                hosts.push_str(&format!("127.0.0.1 {name}\n"));
            }
            fs::write(tmp.path().join("hosts"), hosts).unwrap_or_else(|e| panic!("{e}"));
            let le = tmp.path().join("letsencrypt");
            for line in text
                .lines()
                .filter_map(|l| l.trim().strip_prefix("ssl_certificate "))
            {
                let cert = line.trim_end_matches(';');
                let Some(rel) = cert.strip_prefix("/etc/letsencrypt/") else {
                    continue;
                };
                let dir = le
                    .join(rel)
                    .parent()
                    .map(Path::to_path_buf)
                    .unwrap_or_default();
                fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
                let domain = dir
                    .file_name()
                    .and_then(|d| d.to_str())
                    .unwrap_or("localhost")
                    .to_string();
                let r = Command::new("openssl")
                    .args([
                        "req",
                        "-x509",
                        "-newkey",
                        "ec",
                        "-pkeyopt",
                        "ec_paramgen_curve:prime256v1",
                        "-nodes",
                        "-days",
                        "1",
                    ])
                    .args(["-subj", &format!("/CN={domain}")])
                    .arg("-keyout")
                    .arg(dir.join("privkey.pem"))
                    .arg("-out")
                    .arg(dir.join("fullchain.pem"))
                    .output()
                    .unwrap_or_else(|e| panic!("openssl: {e}"));
                assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
            }
            fs::create_dir_all(&le).unwrap_or_else(|e| panic!("{e}"));
            // The mount point must exist; an empty directory is all this leaves.
            fs::create_dir_all("/etc/letsencrypt").unwrap_or_else(|e| panic!("{e}"));
            let prefix = tmp.path().join("prefix");
            fs::create_dir_all(&prefix).unwrap_or_else(|e| panic!("{e}"));
            // The ACME script of this proxy, if it obtains its certificates:
            // its stand-ins, made in the namespace, are what nginx starts on.
            let acme = b
                .out
                .join(f.replace("/nginx/", "/acme/").replace(".conf", ".sh"));
            let stand_ins = if acme.exists() {
                let certs = tmp.path().join("certs");
                fs::create_dir_all(&certs).unwrap_or_else(|e| panic!("{e}"));
                fs::create_dir_all("/etc/stackc/certs").unwrap_or_else(|e| panic!("{e}"));
                format!(
                    "mount --bind {} /etc/stackc/certs && sh {} stand-in >/dev/null && ",
                    certs.display(),
                    acme.display()
                )
            } else {
                String::new()
            };
            let script = format!(
                "mount --bind {hosts} /etc/hosts && mount --bind {le} /etc/letsencrypt && {stand_ins}nginx -e stderr -t -q -p {prefix}/ -g 'pid {prefix}/nginx.pid;' -c {conf}",
                hosts = tmp.path().join("hosts").display(),
                le = le.display(),
                prefix = prefix.display(),
                conf = conf.display(),
            );
            let r = Command::new("unshare")
                .args(["-m", "sh", "-c", &script])
                .output()
                .unwrap_or_else(|e| panic!("unshare: {e}"));
            assert!(
                r.status.success(),
                "{} {f}: nginx -t failed:\n{}",
                b.name,
                String::from_utf8_lossy(&r.stderr)
            );
            checked += 1;
        }
    }
    assert!(checked >= 5, "the examples have nginx proxies ({checked})");
}

/// Every generated HAProxy config passes `haproxy -c -dW`: zero warnings, since a
/// warning can mean a health check that silently never runs
/// (../shared/TARGETS.md 1.2). Names resolve in a private mount namespace;
/// certificates are self-signed PEMs (chain and key together) at the paths named.
#[test]
fn haproxy_configs_pass_haproxy_c() {
    if !require("haproxy") || !require("unshare") || !require("openssl") {
        return;
    }
    let mut checked = 0;
    for b in build_all() {
        for f in b
            .files
            .iter()
            .filter(|f| f.contains("/haproxy/") || f.ends_with("/haproxy.cfg"))
        {
            let conf = b.out.join(f);
            let text = read(&conf);
            let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
            let mut names: Vec<&str> = text
                .lines()
                .filter_map(|l| l.trim().strip_prefix("server "))
                .filter_map(|rest| rest.split_whitespace().nth(1))
                .filter_map(|addr| addr.split(':').next())
                .filter(|h| !h.chars().all(|c| c.is_ascii_digit() || c == '.'))
                .collect();
            names.sort_unstable();
            names.dedup();
            let mut hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
            for name in names {
                hosts.push_str(&format!("127.0.0.1 {name}\n"));
            }
            fs::write(tmp.path().join("hosts"), hosts).unwrap_or_else(|e| panic!("{e}"));
            // The operator's certificates, and those an ACME client installs.
            let dirs = ["/etc/haproxy/certs", "/etc/stackc/certs"];
            let root = tmp.path().join("root");
            for cert in text
                .split_whitespace()
                .filter(|w| dirs.iter().any(|d| w.starts_with(&format!("{d}/"))))
            {
                let file = root.join(cert.trim_start_matches('/'));
                if let Some(parent) = file.parent() {
                    fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{e}"));
                }
                let (key, crt) = (tmp.path().join("k"), tmp.path().join("c"));
                let r = Command::new("openssl")
                    .args([
                        "req",
                        "-x509",
                        "-newkey",
                        "ec",
                        "-pkeyopt",
                        "ec_paramgen_curve:prime256v1",
                        "-nodes",
                        "-days",
                        "1",
                        "-subj",
                        "/CN=stackc.test",
                    ])
                    .arg("-keyout")
                    .arg(&key)
                    .arg("-out")
                    .arg(&crt)
                    .output()
                    .unwrap_or_else(|e| panic!("openssl: {e}"));
                assert!(r.status.success());
                let pem = read(&crt) + &read(&key);
                fs::write(file, pem).unwrap_or_else(|e| panic!("{e}"));
            }
            let mut script = format!(
                "mount --bind {} /etc/hosts",
                tmp.path().join("hosts").display()
            );
            for d in dirs {
                let own = root.join(d.trim_start_matches('/'));
                fs::create_dir_all(&own).unwrap_or_else(|e| panic!("{e}"));
                fs::create_dir_all(d).unwrap_or_else(|e| panic!("{e}"));
                script.push_str(&format!(" && mount --bind {} {d}", own.display()));
            }
            script.push_str(&format!(" && haproxy -c -dW -f {}", conf.display()));
            let r = Command::new("unshare")
                .args(["-m", "sh", "-c", &script])
                .output()
                .unwrap_or_else(|e| panic!("unshare: {e}"));
            assert!(
                r.status.success(),
                "{} {f}: haproxy -c -dW failed:\n{}{}",
                b.name,
                String::from_utf8_lossy(&r.stdout),
                String::from_utf8_lossy(&r.stderr)
            );
            checked += 1;
        }
    }
    assert!(
        checked >= 2,
        "the examples and cases have HAProxy proxies ({checked})"
    );
}

/// Runs `PROGRAM ARGS FILE` on every generated file ending in `suffix`,
/// each of which must pass; returns how many it checked.
fn checks_pass(program: &str, args: &[&str], suffix: &str) -> usize {
    let mut checked = 0;
    for b in build_all() {
        for f in b.files.iter().filter(|f| f.ends_with(suffix)) {
            let r = Command::new(program)
                .args(args)
                .arg(b.out.join(f))
                .output()
                .unwrap_or_else(|e| panic!("{program}: {e}"));
            assert!(
                r.status.success(),
                "{} {f}: {}{}",
                b.name,
                String::from_utf8_lossy(&r.stdout),
                String::from_utf8_lossy(&r.stderr)
            );
            checked += 1;
        }
    }
    checked
}

/// Every generated Prometheus config passes `promtool check config`.
#[test]
fn prometheus_configs_pass_promtool() {
    if !require("promtool") {
        return;
    }
    let checked = checks_pass(
        "promtool",
        &["check", "config"],
        "prometheus/prometheus.yml",
    );
    assert!(
        checked >= 3,
        "the examples have Prometheus configs ({checked})"
    );
}

/// Every generated Alertmanager config passes `amtool check-config`.
#[test]
fn alertmanager_configs_pass_amtool() {
    if !require("amtool") {
        return;
    }
    let checked = checks_pass("amtool", &["check-config"], "alertmanager/alertmanager.yml");
    assert!(
        checked >= 3,
        "the examples have Alertmanager configs ({checked})"
    );
}

/// The generated alerting rules pass `promtool check rules`, and fire as
/// Prometheus evaluates them (`promtool test rules`, on series a down target
/// and a backend left without servers give): a target after two minutes
/// down, not before; a backend after one minute without a server, but never
/// HAProxy's `no_route`, which has none by design.
#[test]
fn prometheus_alerts_fire_as_promtool_evaluates_them() {
    if !require("promtool") {
        return;
    }
    let checked = checks_pass("promtool", &["check", "rules"], "prometheus/alerts.yml");
    assert!(checked >= 3, "the examples have alerting rules ({checked})");
    // The rules of a topology with an HAProxy proxy, evaluated.
    let b = neural_build();
    let rules = b.out.join("cluster/prometheus/alerts.yml");
    assert!(rules.is_file(), "{}", rules.display());
    let test = r#"rule_files: [RULES]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'up{job="api", instance="10.20.1.12:8000"}'
        values: '1 1 0 0 0 0'
      - series: 'up{job="dashboard", instance="10.20.1.11:8050"}'
        values: '1 1 1 1 1 1'
      - series: 'haproxy_backend_active_servers{job="haproxy-lb", proxy="api_http"}'
        values: '3 3 0 0 0 0'
      - series: 'haproxy_backend_active_servers{job="haproxy-lb", proxy="no_route"}'
        values: '0 0 0 0 0 0'
    alert_rule_test:
      - eval_time: 3m
        alertname: TargetDown
        exp_alerts: []
      - eval_time: 4m
        alertname: TargetDown
        exp_alerts:
          - exp_labels: { severity: critical, job: api, instance: "10.20.1.12:8000" }
            exp_annotations:
              summary: "api on 10.20.1.12:8000 is down"
              description: "Prometheus has not scraped 10.20.1.12:8000 (job api) for 2 minutes."
      - eval_time: 2m
        alertname: ProxyBackendWithoutServer
        exp_alerts: []
      - eval_time: 3m
        alertname: ProxyBackendWithoutServer
        exp_alerts:
          - exp_labels: { severity: critical, job: haproxy-lb, proxy: api_http }
            exp_annotations:
              summary: "backend api_http of haproxy-lb has no server up"
              description: "Every server of HAProxy backend api_http fails its health check: its requests get 503."
"#
    .replace("RULES", &rules.display().to_string());
    promtool_test(&test);
}

/// The Patroni alerts of the Neural DSL cluster, as Prometheus evaluates them
/// on series shaped as its nodes' REST APIs serve them (`scope`, `name`, and
/// the scrape job's labels): a new leader, a cluster without one, a node whose
/// PostgreSQL is down, a replica too far behind to take over (and not the
/// leader, whose replay location is 0, nor a replica that keeps up).
#[test]
fn patroni_alerts_fire_as_promtool_evaluates_them() {
    if !require("promtool") {
        return;
    }
    let b = neural_build();
    let config = fs::read_to_string(b.out.join("cluster/prometheus/prometheus.yml"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        config.contains("job_name: patroni-db") && config.contains("10.20.1.23:8008"),
        "the nodes' REST APIs are scraped:\n{config}"
    );
    let rules = b.out.join("cluster/prometheus/alerts.yml");
    let node = |n: u8| {
        format!(
            r#"job="patroni-db", instance="10.20.1.2{n}:8008", host="db-{n}", scope="neural-db", name="db-{n}""#
        )
    };
    let labels = |n: u8| {
        format!(
            r#"{{ job: patroni-db, instance: "10.20.1.2{n}:8008", host: db-{n}, scope: neural-db, name: db-{n}"#
        )
    };
    let test = format!(
        r#"rule_files: ["{rules}"]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - {{ series: 'patroni_primary{{{n1}}}', values: '1 1 1 0 0 0 0 0 0 0 0 0 0 0 0 0' }}
      - {{ series: 'patroni_primary{{{n2}}}', values: '0 0 0 1 1 1 1 1 1 1 1 1 1 1 1 1' }}
      - {{ series: 'patroni_primary{{{n3}}}', values: '0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0' }}
      - {{ series: 'patroni_cluster_unlocked{{{n2}}}', values: '0 0 1 1 1 0 0' }}
      - {{ series: 'patroni_cluster_unlocked{{{n3}}}', values: '0 0 1 1 1 0 0' }}
    alert_rule_test:
      - {{ eval_time: 2m, alertname: PatroniLeaderChanged, exp_alerts: [] }}
      - eval_time: 4m
        alertname: PatroniLeaderChanged
        exp_alerts:
          - exp_labels: {l2}, severity: warning }}
            exp_annotations:
              summary: "db-2 is the new leader of neural-db"
              description: "neural-db failed over or switched over to db-2 in the last 10 minutes."
      - {{ eval_time: 14m, alertname: PatroniLeaderChanged, exp_alerts: [] }}
      - {{ eval_time: 2m, alertname: PatroniClusterWithoutLeader, exp_alerts: [] }}
      - eval_time: 3m
        alertname: PatroniClusterWithoutLeader
        exp_alerts:
          - exp_labels: {{ scope: neural-db, severity: critical }}
            exp_annotations:
              summary: "Patroni cluster neural-db has no leader"
              description: "No node of neural-db holds the leader lock: writes fail until one does."
      - {{ eval_time: 6m, alertname: PatroniClusterWithoutLeader, exp_alerts: [] }}
  - interval: 1m
    input_series:
      - {{ series: 'patroni_replica{{{n1}}}', values: '0x10' }}
      - {{ series: 'patroni_replica{{{n2}}}', values: '1x10' }}
      - {{ series: 'patroni_replica{{{n3}}}', values: '1x10' }}
      - {{ series: 'patroni_xlog_location{{{n1}}}', values: '0+2000000x10' }}
      - {{ series: 'patroni_xlog_location{{{n2}}}', values: '0x10' }}
      - {{ series: 'patroni_xlog_location{{{n3}}}', values: '0x10' }}
      - {{ series: 'patroni_xlog_replayed_location{{{n1}}}', values: '0x10' }}
      - {{ series: 'patroni_xlog_replayed_location{{{n2}}}', values: '0+2000000x10' }}
      - {{ series: 'patroni_xlog_replayed_location{{{n3}}}', values: '0 2000000 4000000x8' }}
      - {{ series: 'patroni_postgres_running{{{n1}}}', values: '1x10' }}
      - {{ series: 'patroni_postgres_running{{{n3}}}', values: '1 1 0 0 0 0 0 0 0 0' }}
    alert_rule_test:
      - {{ eval_time: 4m, alertname: PostgresReplicationLag, exp_alerts: [] }}
      - eval_time: 6m
        alertname: PostgresReplicationLag
        exp_alerts:
          - exp_labels: {l3}, severity: warning }}
            exp_annotations:
              summary: "replica db-3 of neural-db is 7.629MiB behind its leader"
              description: "A replica further behind than Patroni's maximum_lag_on_failover is not promoted when the leader fails."
      - {{ eval_time: 2m, alertname: PatroniPostgresDown, exp_alerts: [] }}
      - eval_time: 3m
        alertname: PatroniPostgresDown
        exp_alerts:
          - exp_labels: {l3}, severity: critical }}
            exp_annotations:
              summary: "PostgreSQL is not running on db-3 of neural-db"
              description: "Patroni on db-3 answers, but its PostgreSQL has not run for a minute."
"#,
        rules = rules.display(),
        n1 = node(1),
        n2 = node(2),
        n3 = node(3),
        l2 = labels(2),
        l3 = labels(3),
    );
    promtool_test(&test);
}

/// The HTTP alerts of the Neural DSL API (its `requests` and `latency`), as
/// Prometheus evaluates them on series shaped as a client library serves
/// them: 10 % of requests answered 500 fires the error-rate alert after its
/// 5 minutes and 2 % never does; a 95th percentile in the bucket above 2 s
/// fires the latency alert, one under it never does.
#[test]
fn http_alerts_fire_as_promtool_evaluates_them() {
    if !require("promtool") {
        return;
    }
    let b = neural_build();
    let rules = b.out.join("cluster/prometheus/alerts.yml");
    let group = |ok: u32, errors: u32, buckets: [u32; 4], fires: bool| {
        let [b05, b1, b25, inf] = buckets;
        let error_alert = if fires {
            r#"
          - exp_labels: { severity: critical, job: api }
            exp_annotations:
              summary: "api answers 10% of its requests with an error"
              description: "More than 5% of the requests to api got a 5xx answer over the last 5 minutes.""#
        } else {
            ""
        };
        let latency_alert = if fires {
            r#"
          - exp_labels: { severity: warning, job: api }
            exp_annotations:
              summary: "api answers in 2.5s at the 95th percentile"
              description: "The slowest 5% of the requests to api took longer than 2s over the last 5 minutes.""#
        } else {
            ""
        };
        let series = |labels: &str, per_minute: u32| {
            format!("      - series: 'http_request_duration_seconds_bucket{{job=\"api\", instance=\"10.20.1.11:8000\", {labels}}}'\n        values: '0+{per_minute}x15'\n")
        };
        format!(
            r#"  - interval: 1m
    input_series:
      - series: 'http_requests_total{{job="api", instance="10.20.1.11:8000", code="200"}}'
        values: '0+{ok}x15'
      - series: 'http_requests_total{{job="api", instance="10.20.1.11:8000", code="500"}}'
        values: '0+{errors}x15'
{}{}{}{}    alert_rule_test:
      - eval_time: 4m
        alertname: HighErrorRate
        exp_alerts: []
      - eval_time: 10m
        alertname: HighErrorRate
        exp_alerts:{}
      - eval_time: 4m
        alertname: HighLatency
        exp_alerts: []
      - eval_time: 10m
        alertname: HighLatency
        exp_alerts:{}
"#,
            series(r#"le="0.5""#, b05),
            series(r#"le="1""#, b1),
            series(r#"le="2.5""#, b25),
            series(r#"le="+Inf""#, inf),
            if fires { error_alert } else { " []" },
            if fires { latency_alert } else { " []" },
        )
    };
    let test = format!(
        "rule_files: [{:?}]\nevaluation_interval: 1m\ntests:\n{}{}",
        rules.display().to_string(),
        group(90, 10, [10, 20, 50, 100], true),
        group(98, 2, [10, 96, 99, 100], false),
    );
    promtool_test(&test);
}

/// The Neural DSL example's build, whose topologies have every alert.
fn neural_build() -> &'static Built {
    build_all()
        .iter()
        .find(|b| b.name.contains("neural-dsl"))
        .unwrap_or_else(|| panic!("the Neural DSL example is built"))
}

/// Runs `promtool check rules` on `rules`, a rule file's text (`what` names
/// it in a failure).
pub(crate) fn promtool_check_rules(rules: &str, what: &str) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = dir.path().join("rules.yml");
    fs::write(&file, rules).unwrap_or_else(|e| panic!("{e}"));
    let r = Command::new("promtool")
        .args(["check", "rules"])
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("promtool: {e}"));
    assert!(
        r.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&r.stdout),
        String::from_utf8_lossy(&r.stderr)
    );
}

/// Runs `promtool test rules` on `test`, a unit test file.
pub(crate) fn promtool_test(test: &str) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let test_file = dir.path().join("alerts_test.yml");
    fs::write(&test_file, test).unwrap_or_else(|e| panic!("{e}"));
    let r = Command::new("promtool")
        .args(["test", "rules"])
        .arg(&test_file)
        .output()
        .unwrap_or_else(|e| panic!("promtool: {e}"));
    assert!(
        r.status.success(),
        "{}{}",
        String::from_utf8_lossy(&r.stdout),
        String::from_utf8_lossy(&r.stderr)
    );
}

/// Every generated `patroni.yml` passes `patroni --validate-config -i` (which
/// skips binding and reaching etcd). The one line it may print is the node
/// image's `bin_dir` when that PostgreSQL version is not installed here.
#[test]
fn patroni_configs_pass_patroni_validate_config() {
    if !require("patroni") {
        return;
    }
    let mut checked = 0;
    for b in build_all() {
        for f in b.files.iter().filter(|f| f.ends_with("/patroni.yml")) {
            // The node's environment holds the REST API's password (from the
            // superuser's secret), which the config does not.
            let out = Command::new("patroni")
                .args(["--validate-config", "-i"])
                .arg(b.out.join(f))
                .env("PATRONI_RESTAPI_PASSWORD", "from-the-environment")
                .output()
                .unwrap_or_else(|e| panic!("patroni: {e}"));
            let text = String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr);
            let problems: Vec<&str> = text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .filter(|l| !(l.contains("bin_dir") && l.contains("does not exist")))
                .collect();
            assert!(problems.is_empty(), "{} {f}: {problems:?}", b.name);
            checked += 1;
        }
    }
    assert!(
        checked >= 3,
        "the examples and generated stacks have Patroni nodes ({checked})"
    );
}

/// Every generated Redis node and sentinel config of a Sentinel-watched Redis
/// on hosts starts (on a copy, on loopback: the listen address is the host's)
/// and stays up.
#[test]
fn sentinel_host_configs_start() {
    if !require("redis-server") {
        return;
    }
    let mut checked = 0;
    for b in build_all() {
        for f in b.files.iter().filter(|f| {
            f.ends_with("/sentinel.conf") || (f.ends_with("/redis.conf") && !f.contains("/k8s/"))
        }) {
            let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
            let copy = tmp.path().join("x.conf");
            fs::copy(b.out.join(f), &copy).unwrap_or_else(|e| panic!("{e}"));
            let port = 27000 + checked as u16;
            let mut cmd = Command::new("redis-server");
            cmd.arg(&copy)
                .args(["--bind", "127.0.0.1", "--port", &port.to_string(), "--dir"])
                .arg(tmp.path());
            if f.ends_with("/sentinel.conf") {
                cmd.arg("--sentinel");
            }
            let mut child = cmd
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("redis-server: {e}"));
            std::thread::sleep(std::time::Duration::from_millis(700));
            let exited = child.try_wait().ok().flatten();
            let _ = child.kill();
            let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
            assert!(
                exited.is_none(),
                "{} {f}: redis-server exited: {}",
                b.name,
                String::from_utf8_lossy(&out.stderr)
            );
            checked += 1;
        }
    }
    assert!(
        checked >= 6,
        "the examples and generated stacks have Sentinel nodes ({checked})"
    );
}
