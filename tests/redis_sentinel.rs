//! Redis with Sentinel on Kubernetes: what its pods would run, run here. The
//! start scripts from the ConfigMap run with stand-ins for `redis-cli` (no
//! sentinel answers: a first start) and `redis-server` (which captures the config
//! it is given). The configs they produce are then started with the real
//! redis-server and redis-sentinel (start-and-check, ../shared/TARGETS.md 1.4
//! and 1.5), and the master endpoint's config passes `haproxy -c -dW`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_norway::Value;

use crate::support::{options, read, require, root, wait_for};

/// The password the scripts get from the Secret, for a Redis that has one.
const PASSWORD: &str = "k8s-cache-secret";

/// The ConfigMaps of Redis with Sentinel in every example: (name, files).
fn sentinel_configs() -> Vec<(String, Vec<(String, String)>)> {
    let mut out = Vec::new();
    for path in crate::support::stack_files("examples") {
        let compilation = stackc::compile(read(&path), &options(&path));
        for a in compilation
            .artifacts
            .iter()
            .filter(|a| a.path.contains("/k8s/") && a.path.ends_with(".yaml"))
        {
            for doc in serde_norway::Deserializer::from_str(&a.contents) {
                let v = <Value as serde::Deserialize>::deserialize(doc)
                    .unwrap_or_else(|e| panic!("{}: {e}", a.path));
                if v["kind"].as_str() != Some("ConfigMap") {
                    continue;
                }
                let data = &v["data"];
                if data.get("start-sentinel.sh").is_none() {
                    continue;
                }
                let files = data
                    .as_mapping()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| {
                        (
                            k.as_str().unwrap_or_default().to_string(),
                            v.as_str().unwrap_or_default().to_string(),
                        )
                    })
                    .collect();
                out.push((
                    v["metadata"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    files,
                ));
            }
        }
    }
    let _ = root();
    out
}

/// A directory of stand-ins: `redis-cli` (no sentinel answers) and
/// `redis-server` (copies its config to $CAPTURE, and the directives it
/// reads on standard input after it, as Redis applies them, with `-`).
fn stubs(dir: &Path) -> PathBuf {
    let bin = dir.join("stubs");
    fs::create_dir_all(&bin).unwrap_or_else(|e| panic!("{e}"));
    for (name, body) in [
        ("redis-cli", "exit 1\n"),
        (
            "redis-server",
            "cp \"$1\" \"$CAPTURE\"\nif [ \"${2:-}\" = - ]; then cat >> \"$CAPTURE\"; fi\n",
        ),
    ] {
        let p = bin.join(name);
        fs::write(&p, format!("#!/bin/sh\n{body}")).unwrap_or_else(|e| panic!("{e}"));
        Command::new("chmod")
            .arg("+x")
            .arg(&p)
            .status()
            .unwrap_or_else(|e| panic!("{e}"));
    }
    bin
}

fn run_script(script: &Path, env: &[(&str, String)], bin: &Path) {
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let r = Command::new("sh")
        .arg(script)
        .env("PATH", path)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap_or_else(|e| panic!("sh: {e}"));
    assert!(
        r.status.success(),
        "{}: {}",
        script.display(),
        String::from_utf8_lossy(&r.stderr)
    );
}

/// Starts a server with its config; it must still run after it binds (a bad
/// config exits at once with FATAL CONFIG FILE ERROR).
fn accepted(
    program: &str,
    args: &[String],
    ready: impl Fn() -> bool,
    stop: impl Fn(),
) -> Result<(), String> {
    let mut child = Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{program}: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(5);
    let result = loop {
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            break Err(format!("{program} exited ({status}): {err}"));
        }
        if ready() {
            break Ok(());
        }
        if Instant::now() > deadline {
            break Err(format!("{program} did not become ready in 5 s"));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    stop();
    let _ = child.kill();
    let _ = child.wait();
    result
}

#[test]
fn sentinel_pods_configs_run_with_real_redis() {
    if !require("redis-server") || !require("redis-sentinel") || !require("redis-cli") {
        return;
    }
    let configs = sentinel_configs();
    assert!(
        !configs.is_empty(),
        "an example runs Redis with Sentinel on Kubernetes"
    );
    for (i, (name, files)) in configs.iter().enumerate() {
        let service = name.trim_end_matches("-config");
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let config = tmp.path().join("config");
        fs::create_dir_all(&config).unwrap_or_else(|e| panic!("{e}"));
        for (file, text) in files {
            fs::write(config.join(file), text).unwrap_or_else(|e| panic!("{e}"));
        }
        let bin = stubs(tmp.path());

        // Pod 0 starts as the master, pod 1 as its replica; both announce their name.
        for (ordinal, replica) in [(0, false), (1, true)] {
            let data = tmp.path().join(format!("data-{ordinal}"));
            fs::create_dir_all(&data).unwrap_or_else(|e| panic!("{e}"));
            let captured = tmp.path().join(format!("redis-{ordinal}.conf"));
            run_script(
                &config.join("start-redis.sh"),
                &[
                    ("POD_NAME", format!("{service}-{ordinal}")),
                    ("CONFIG_DIR", config.display().to_string()),
                    ("DATA_DIR", data.display().to_string()),
                    ("CAPTURE", captured.display().to_string()),
                    ("REDIS_PASSWORD", PASSWORD.to_string()),
                ],
                &bin,
            );
            let conf = read(&captured);
            assert!(
                conf.contains(&format!(
                    "replica-announce-ip {service}-{ordinal}.{service}-headless."
                )),
                "{conf}"
            );
            assert_eq!(
                conf.contains(&format!("replicaof {service}-0.{service}-headless.")),
                replica,
                "{conf}"
            );
            let sock = tmp.path().join(format!("r{ordinal}.sock"));
            let args: Vec<String> = vec![
                captured.display().to_string(),
                "--port".into(),
                "0".into(),
                "--unixsocket".into(),
                sock.display().to_string(),
                "--daemonize".into(),
                "no".into(),
                "--dir".into(),
                tmp.path().display().to_string(),
                "--save".into(),
                String::new(),
                "--appendonly".into(),
                "no".into(),
            ];
            // With a password, the node requires it: a ping without one is
            // refused, with it answered.
            let auth = files.iter().any(|(_, t)| t.contains("requirepass"));
            let cli = |password: Option<&str>, words: &[&str]| {
                let mut c = Command::new("redis-cli");
                c.arg("-s").arg(&sock).args(words);
                if let Some(p) = password {
                    c.env("REDISCLI_AUTH", p);
                }
                c.output()
                    .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                    .unwrap_or_default()
            };
            let password = auth.then_some(PASSWORD);
            let ready = || {
                sock.exists()
                    && cli(password, &["ping"]).contains("PONG")
                    && (!auth || cli(None, &["ping"]).contains("NOAUTH"))
            };
            accepted("redis-server", &args, ready, || {
                cli(password, &["shutdown", "nosave"]);
            })
            .unwrap_or_else(|e| panic!("{service} pod {ordinal}: {e}\n{conf}"));
        }

        // A sentinel writes its config (monitor line with the pod-0 master) and
        // the real redis-sentinel accepts it, from a copy it may rewrite.
        let sentinel_conf = tmp.path().join("sentinel.conf");
        run_script(
            &config.join("start-sentinel.sh"),
            &[
                ("POD_NAME", format!("{service}-sentinel-0")),
                ("SENTINEL_CONF", sentinel_conf.display().to_string()),
                ("REDIS_PASSWORD", PASSWORD.to_string()),
            ],
            &bin,
        );
        let text = read(&sentinel_conf);
        let monitor = text
            .lines()
            .position(|l| l.starts_with("sentinel monitor "));
        let resolve = text
            .lines()
            .position(|l| l == "sentinel resolve-hostnames yes");
        assert!(
            resolve < monitor && monitor.is_some(),
            "resolve-hostnames comes before the monitor line:\n{text}"
        );
        assert!(!text.contains("sentinel myid"), "no fixed id:\n{text}");
        if files.iter().any(|(_, t)| t.contains("requirepass")) {
            assert!(
                text.contains(&format!(
                    "sentinel auth-pass {} \"{PASSWORD}\"",
                    master_name(&text)
                )),
                "the sentinel authenticates to the nodes:\n{text}"
            );
        }
        let copy = tmp.path().join("sentinel-copy.conf");
        fs::copy(&sentinel_conf, &copy).unwrap_or_else(|e| panic!("{e}"));
        let port = 36379 + i as u16;
        let args: Vec<String> = vec![
            copy.display().to_string(),
            "--port".into(),
            port.to_string(),
            "--bind".into(),
            "127.0.0.1".into(),
            "--daemonize".into(),
            "no".into(),
        ];
        let ping = || {
            Command::new("redis-cli")
                .args(["-p", &port.to_string(), "ping"])
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("PONG"))
        };
        accepted("redis-sentinel", &args, ping, || {
            let _ = Command::new("redis-cli")
                .args(["-p", &port.to_string(), "shutdown", "nosave"])
                .output();
        })
        .unwrap_or_else(|e| panic!("{service} sentinel: {e}\n{text}"));

        // The master endpoint's HAProxy config, with the pods' names resolving.
        if require("haproxy") && require("unshare") {
            let cfg = config.join("haproxy.cfg");
            let text = read(&cfg);
            let hosts_file = tmp.path().join("hosts");
            hosts_with_servers(&text, "127.0.0.1", &hosts_file);
            let script = format!(
                "mount --bind {} /etc/hosts && haproxy -c -dW -f {}",
                hosts_file.display(),
                cfg.display()
            );
            let r = Command::new("unshare")
                .args(["-m", "sh", "-c", &script])
                .output()
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(
                r.status.success(),
                "{service} master endpoint: haproxy -c -dW:\n{}{}\n{text}",
                String::from_utf8_lossy(&r.stdout),
                String::from_utf8_lossy(&r.stderr)
            );
            if text.contains("AUTH") {
                master_endpoint_authenticates(&text, tmp.path(), i);
            }
        }
    }
}

/// The master's name in a sentinel's config.
fn master_name(conf: &str) -> String {
    conf.lines()
        .find_map(|l| l.strip_prefix("sentinel monitor "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_default()
        .to_string()
}

/// This machine's /etc/hosts, with the names of the HAProxy config's
/// servers (the pods') at `address`, written to `path`.
fn hosts_with_servers(config: &str, address: &str, path: &Path) {
    let mut hosts = fs::read_to_string("/etc/hosts").unwrap_or_default();
    for server in config
        .lines()
        .filter_map(|l| l.trim().strip_prefix("server "))
    {
        if let Some(host) = server
            .split_whitespace()
            .nth(1)
            .and_then(|a| a.split(':').next())
        {
            hosts.push_str(&format!("{address} {host}\n"));
        }
    }
    fs::write(path, hosts).unwrap_or_else(|e| panic!("{e}"));
}

/// The master endpoint's checks authenticate, as HAProxy runs them: from the
/// generated config (its bind address aside, and the pods' names resolved
/// once from /etc/hosts instead of by the cluster's DNS), HAProxy keeps a
/// real Redis that requires the password up, and a client reaches it
/// through the frontend; with another password in HAProxy's environment
/// every server goes down and no client gets through.
fn master_endpoint_authenticates(text: &str, dir: &Path, n: usize) {
    let address = format!("127.0.0.{}", 97 - n);
    let hosts_file = dir.join("hosts-auth");
    hosts_with_servers(text, &address, &hosts_file);
    assert!(text.contains("    bind :6379\n"), "{text}");
    let front = format!("{address}:16379");
    let cfg = dir.join("haproxy-auth.cfg");
    let here = text
        .replace("    bind :6379\n", &format!("    bind {front}\n"))
        .replace(" resolvers cluster", "");
    fs::write(&cfg, here).unwrap_or_else(|e| panic!("{e}"));
    let redis = Command::new("redis-server")
        .args([
            "--bind",
            &address,
            "--port",
            "6379",
            "--requirepass",
            PASSWORD,
        ])
        .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("redis-server: {e}"));
    let _redis = crate::support::Running(redis);
    // What a client gets through the frontend: `None` while nothing
    // listens, else whether Redis answered its ping.
    let through = || -> Option<bool> {
        let mut s = std::net::TcpStream::connect(&front).ok()?;
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let ping = format!("AUTH {PASSWORD}\r\nPING\r\n");
        let _ = std::io::Write::write_all(&mut s, ping.as_bytes());
        let mut got = [0u8; 64];
        let mut answer = String::new();
        while let Ok(k) = std::io::Read::read(&mut s, &mut got) {
            if k == 0 {
                break;
            }
            answer.push_str(&String::from_utf8_lossy(&got[..k]));
            if answer.contains("+PONG") {
                return Some(true);
            }
        }
        Some(false)
    };
    for (password, up) in [(PASSWORD, true), ("not-the-password", false)] {
        let script = format!(
            "mount --bind {} /etc/hosts && exec haproxy -db -f {}",
            hosts_file.display(),
            cfg.display()
        );
        let proxy = Command::new("unshare")
            .args(["-m", "sh", "-c", &script])
            .env("REDIS_PASSWORD", password)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("haproxy: {e}"));
        let _proxy = crate::support::Running(proxy);
        let what = if up {
            "clients reach Redis through HAProxy"
        } else {
            "the servers go down when the checks cannot authenticate"
        };
        wait_for(what, Duration::from_secs(10), || through() == Some(up));
        // Checks every second, a change after two: the same after four.
        std::thread::sleep(Duration::from_secs(4));
        assert_eq!(through(), Some(up), "{what}, and stay so");
    }
}
