//! Redis watched by Sentinel on hosts, failed over with the real programs: three
//! nodes and three sentinels start on loopback addresses (one per host) with
//! exactly the commands of their compose files (the image's entrypoint stood in
//! by `exec "$@"`, `/data` a directory of the test's, and the listening address
//! and port set as Docker's port mapping would). Once the sentinels know each
//! other and the replicas, the master is killed with SIGKILL; a client that asks
//! the sentinels for the master must write again within `down_after` + 5 s,
//! and the write acknowledged before the kill is still there. The compose files
//! pass `docker-compose config`. The same with a password (`redis_auth`): every
//! node requires it and authenticates to its master, every sentinel to the
//! nodes, and a client without it is refused.

use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_norway::Value;

use crate::support::{artifact, options, require, wait_for, write_artifacts, Running};

const REDIS_PORT: u16 = 26391;
const SENTINEL_PORT: u16 = 26379;
const DOWN_AFTER: Duration = Duration::from_secs(2);
const PASSWORD: &str = "cache-secret";

/// One run: three hosts' names and loopback addresses, with or without a
/// password.
struct Case {
    hosts: [(&'static str, &'static str); 3],
    auth: bool,
    /// `backup {}` on the service: a copy task beside every node.
    backup: bool,
}

fn stack(case: &Case) -> String {
    let [(a, aa), (b, ba), (c, ca)] = case.hosts;
    let (kind, password) = if case.auth {
        ("redis_auth", "\n  password = secret.cache_password")
    } else {
        ("redis", "")
    };
    let backup = if case.backup { "\n  backup {}" } else { "" };
    format!(
        r#"
stack watched

secret cache_password

service cache: {kind} {{
  port redis {{ container = 6379  host = 26391 }}{password}{backup}
}}

service app {{
  image = "app:1"
  env {{
    REDIS_SENTINELS = cache.sentinels
    REDIS_MASTER = cache.master_name
    CELERY_BROKER_URL = cache.sentinel_url
  }}
}}

topology trio {{
  host {a} {{
    address = "{aa}"
    run = [cache, app]
  }}
  host {b} {{
    address = "{ba}"
    run = [cache]
  }}
  host {c} {{
    address = "{ca}"
    run = [cache]
  }}
  override cache {{
    ha {{
      mode = sentinel
      down_after = 2s
      master_name = "main-cache"
    }}
  }}
}}
"#
    )
}

/// redis-cli, with the password for the nodes of a password-protected Redis.
fn cli(auth: bool, host: &str, port: u16, args: &[&str]) -> String {
    let mut c = Command::new("redis-cli");
    c.args(["-h", host, "-p", &port.to_string()]).args(args);
    if auth && port == REDIS_PORT {
        c.env("REDISCLI_AUTH", PASSWORD);
    }
    c.output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// The shell command of a compose service (`sh -c LINE`), as the container's
/// shell receives it (compose turns `$$` into `$`).
fn shell_line(compose: &str, service: &str) -> String {
    let v: Value = serde_norway::from_str(compose).unwrap_or_else(|e| panic!("{e}"));
    let cmd = &v["services"][service]["command"];
    assert_eq!(cmd[0].as_str(), Some("sh"), "{compose}");
    assert_eq!(cmd[1].as_str(), Some("-c"), "{compose}");
    cmd[2].as_str().unwrap_or_default().replace("$$", "$")
}

/// Runs a compose command line here: `/data` and the mounted directory mapped to
/// the test's, the image's entrypoint a pass-through, the address and port set,
/// the password in the environment as compose passes it.
fn start(line: &str, data: &Path, config: &Path, bin: &Path, bind: &str, port: u16) -> Child {
    let line = line
        .replace("/etc/redis/stackc", &config.display().to_string())
        .replace("/data", &data.display().to_string());
    // Redis reads config from standard input only where `-` is first or
    // last: the address and port go before a last `-`.
    let here = format!(" --bind {bind} --port {port}");
    let line = match line.strip_suffix(" -") {
        Some(start) => format!("{start}{here} -"),
        None => format!("{line}{here}"),
    };
    // The image's working directory is /data.
    Command::new("sh")
        .args(["-c", &line])
        .current_dir(data)
        .env(
            "PATH",
            format!(
                "{}:{}",
                bin.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .env("REDIS_PASSWORD", PASSWORD)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("sh: {e}"))
}

fn master_of(sentinel: &str) -> String {
    cli(
        false,
        sentinel,
        SENTINEL_PORT,
        &["sentinel", "get-master-addr-by-name", "main-cache"],
    )
    .lines()
    .next()
    .unwrap_or_default()
    .to_string()
}

#[test]
fn sentinel_fails_over_when_the_master_is_killed() {
    run(&Case {
        hosts: [
            ("one", "127.0.0.61"),
            ("two", "127.0.0.62"),
            ("three", "127.0.0.63"),
        ],
        auth: false,
        backup: false,
    });
}

#[test]
fn sentinel_with_a_password_fails_over_when_the_master_is_killed() {
    run(&Case {
        hosts: [
            ("one", "127.0.0.64"),
            ("two", "127.0.0.65"),
            ("three", "127.0.0.66"),
        ],
        auth: true,
        backup: false,
    });
}

/// Three nodes and their sentinels, running, the sentinels agreed on the
/// master (the first host's) and both replicas online.
struct Group {
    tmp: tempfile::TempDir,
    compilation: stackc::Compilation,
    bin: std::path::PathBuf,
    nodes: Vec<Running>,
    sentinels: Vec<Running>,
}

impl Group {
    /// Compiles the case and starts it; `None` where redis is not installed
    /// (and not in CI).
    fn up(case: &Case) -> Option<Group> {
        if !require("redis-server") || !require("redis-cli") {
            return None;
        }
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let compilation = stackc::compile(stack(case), &options(&tmp.path().join("watched.stack")));
        assert!(!compilation.has_errors(), "{:?}", compilation.diagnostics);
        let bin = tmp.path().join("bin");
        fs::create_dir_all(&bin).unwrap_or_else(|e| panic!("{e}"));
        let entry = bin.join("docker-entrypoint.sh");
        fs::write(&entry, "#!/bin/sh\nexec \"$@\"\n").unwrap_or_else(|e| panic!("{e}"));
        Command::new("chmod")
            .arg("+x")
            .arg(&entry)
            .status()
            .unwrap_or_else(|e| panic!("{e}"));
        let mut group = Group {
            tmp,
            compilation,
            bin,
            nodes: Vec::new(),
            sentinels: Vec::new(),
        };
        for (host, _) in case.hosts {
            let config = group.dir("config", host);
            for name in ["redis.conf", "sentinel.conf"] {
                let text = group.file(&format!("trio/cache/{host}/{name}"));
                fs::write(config.join(name), text).unwrap_or_else(|e| panic!("{e}"));
            }
            group.dir("data", host);
            group.dir("sentinel", host);
        }
        group.start_nodes(case);
        group.start_sentinels(case);
        group.wait_known(case);
        Some(group)
    }

    fn file(&self, path: &str) -> String {
        artifact(&self.compilation, path)
    }

    /// A directory of the test's for a host: `data` (the node's /data),
    /// `sentinel` (its sentinel's), `config` (the mounted files), `copies`.
    fn dir(&self, what: &str, host: &str) -> std::path::PathBuf {
        let d = self.tmp.path().join(what).join(host);
        fs::create_dir_all(&d).unwrap_or_else(|e| panic!("{e}"));
        d
    }

    /// Runs a generated backup script of the service on a host: its node, its
    /// copies and its data directory in place of the container's.
    fn script(&self, name: &str, host: &str, address: &str) -> std::process::Output {
        let text = self
            .file(&format!("trio/cache/backup/{name}"))
            .replace("-h cache -p 6379", &format!("-h {address} -p {REDIS_PORT}"))
            .replace("/backups", &self.dir("copies", host).display().to_string())
            .replace(
                "data='/data'",
                &format!("data='{}'", self.dir("data", host).display()),
            );
        let path = self.dir("scripts", host).join(name);
        fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
        let mut c = Command::new("sh");
        c.arg(path).env("REDIS_PASSWORD", PASSWORD);
        c.output().unwrap_or_else(|e| panic!("sh: {e}"))
    }

    fn start_one(&self, case: &Case, service: &str, data: &str, port: u16) -> Vec<Running> {
        case.hosts
            .iter()
            .map(|(host, address)| {
                let compose = self.file(&format!("trio/compose/{host}.yml"));
                Running(start(
                    &shell_line(&compose, service),
                    &self.dir(data, host),
                    &self.dir("config", host),
                    &self.bin,
                    address,
                    port,
                ))
            })
            .collect()
    }

    fn start_nodes(&mut self, case: &Case) {
        self.nodes = self.start_one(case, "cache", "data", REDIS_PORT);
    }

    fn start_sentinels(&mut self, case: &Case) {
        self.sentinels = self.start_one(case, "cache-sentinel", "sentinel", SENTINEL_PORT);
    }

    /// The sentinels agree on the master and know both replicas and each
    /// other, and both replicas are in sync.
    fn wait_known(&self, case: &Case) {
        let auth = case.auth;
        wait_for(
            "the sentinels know the cluster",
            Duration::from_secs(30),
            || {
                case.hosts.iter().all(|(_, a)| {
                    let m = cli(
                        auth,
                        a,
                        SENTINEL_PORT,
                        &["sentinel", "master", "main-cache"],
                    );
                    let field = |k: &str| {
                        let lines: Vec<&str> = m.lines().collect();
                        lines
                            .iter()
                            .position(|l| *l == k)
                            .and_then(|i| lines.get(i + 1).map(|v| v.to_string()))
                    };
                    field("num-slaves").as_deref() == Some("2")
                        && field("num-other-sentinels").as_deref() == Some("2")
                })
            },
        );
        let master = case.hosts[0].1;
        wait_for("both replicas are online", Duration::from_secs(30), || {
            cli(auth, master, REDIS_PORT, &["info", "replication"])
                .matches("state=online")
                .count()
                == 2
        });
    }
}

fn run(case: &Case) {
    let Some(group) = Group::up(case) else {
        return;
    };
    let [(first, one), (_, two), (_, three)] = case.hosts;
    let auth = case.auth;
    let file = |path: String| group.file(&path);
    let app = file(format!("trio/compose/{first}.yml"));
    let sentinels = format!("{one}:26379,{two}:26379,{three}:26379");
    assert!(
        app.contains(&format!("REDIS_SENTINELS: \"{sentinels}\"")),
        "{app}"
    );
    if auth {
        // Celery's form carries the password, from the secret.
        let with_password = format!(
            "sentinel://:${{CACHE_PASSWORD:?secret cache_password is not set}}@{one}:26379;"
        );
        assert!(app.contains(&with_password), "{app}");
    }
    // The compose files are valid for docker-compose, the mounts included.
    if require("docker-compose") {
        let out = group.tmp.path().join("out");
        write_artifacts(&group.compilation, &out);
        for (host, _) in case.hosts {
            let f = out.join(format!("trio/compose/{host}.yml"));
            let o = Command::new("docker-compose")
                .arg("-f")
                .arg(&f)
                .args(["config", "-q"])
                .env("CACHE_PASSWORD", PASSWORD)
                .output()
                .unwrap_or_else(|e| panic!("docker-compose: {e}"));
            assert!(
                o.status.success(),
                "{}: {}",
                f.display(),
                String::from_utf8_lossy(&o.stderr)
            );
        }
    }
    let mut nodes = group.nodes;
    let _sentinels = group.sentinels;
    assert_eq!(master_of(two), one);
    if auth {
        // A client without the password is refused.
        let refused = cli(false, one, REDIS_PORT, &["set", "k", "anonymous"]);
        assert!(refused.contains("NOAUTH"), "{refused}");
    }
    assert!(cli(auth, one, REDIS_PORT, &["set", "k", "acknowledged"]).contains("OK"));
    let acks = cli(auth, one, REDIS_PORT, &["wait", "2", "10000"]);
    assert_eq!(acks.trim(), "2", "both replicas acknowledge the write");

    // Kill -9 the master.
    let _ = nodes[0].0.kill();
    let _ = nodes[0].0.wait();
    let elapsed = wait_for(
        "a client finds a new master through the sentinels and writes",
        DOWN_AFTER + Duration::from_secs(5),
        || {
            let master = master_of(two);
            master != one
                && !master.is_empty()
                && cli(auth, &master, REDIS_PORT, &["set", "after", "failover"]).contains("OK")
        },
    );
    // The other sentinels learn the new master from the leader's hello messages.
    let master = master_of(two);
    wait_for(
        "the sentinels agree on the new master",
        Duration::from_secs(10),
        || master_of(one) == master && master_of(three) == master,
    );
    assert_eq!(
        cli(auth, &master, REDIS_PORT, &["get", "k"]).trim(),
        "acknowledged",
        "no acknowledged write is lost"
    );
    eprintln!("failover: writes again {elapsed:?} after the kill");
}

/// Backups of a Sentinel-watched Redis: the generated `backup.sh` copies each
/// node on its own host (`-h cache` is the host's node). After a loss the
/// replicas follow (a `FLUSHALL`), the generated `restore.sh` refuses a
/// replica's host and restores on the master's; with the group restarted as
/// its header says (sentinels and nodes stopped, nodes started, then the
/// sentinels), every node has every key and the master is still the master.
#[test]
fn a_sentinel_group_restores_a_copy_on_its_master() {
    let case = Case {
        hosts: [
            ("one", "127.0.0.67"),
            ("two", "127.0.0.68"),
            ("three", "127.0.0.69"),
        ],
        auth: true,
        backup: true,
    };
    let Some(mut group) = Group::up(&case) else {
        return;
    };
    let master = case.hosts[0].1;
    for (host, _) in case.hosts {
        let compose: Value =
            serde_norway::from_str(&group.file(&format!("trio/compose/{host}.yml")))
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            compose["services"]["cache-backup"]["profiles"][0], "scheduled",
            "a copy task on `{host}`"
        );
    }
    for i in 0..50 {
        let set = cli(
            true,
            master,
            REDIS_PORT,
            &["set", &format!("k{i}"), &format!("v{i}")],
        );
        assert!(set.contains("OK"), "{set}");
    }
    assert_eq!(
        cli(true, master, REDIS_PORT, &["wait", "2", "10000"]).trim(),
        "2"
    );

    for (host, address) in case.hosts {
        let out = group.script("backup.sh", host, address);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let copies = fs::read_dir(group.dir("copies", host)).map_or(0, |d| d.count());
        assert_eq!(copies, 1, "one copy on `{host}`");
    }

    // Lost, on every node.
    assert!(cli(true, master, REDIS_PORT, &["flushall"]).contains("OK"));
    wait_for("the replicas follow", Duration::from_secs(10), || {
        case.hosts
            .iter()
            .all(|(_, a)| cli(true, a, REDIS_PORT, &["dbsize"]).trim() == "0")
    });
    let (replica, replica_address) = case.hosts[1];
    let refused = group.script("restore.sh", replica, replica_address);
    assert!(!refused.status.success(), "a replica's host is refused");
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(why.contains("is a replica"), "{why}");

    group.sentinels.clear();
    group.nodes.clear();
    let (first, _) = case.hosts[0];
    let out = group.script("restore.sh", first, master);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    group.start_nodes(&case);
    group.start_sentinels(&case);
    group.wait_known(&case);
    for (host, address) in case.hosts {
        assert_eq!(
            cli(true, address, REDIS_PORT, &["dbsize"]).trim(),
            "50",
            "every key on `{host}`"
        );
        assert_eq!(
            cli(true, address, REDIS_PORT, &["get", "k49"]).trim(),
            "v49"
        );
    }
    assert_eq!(master_of(case.hosts[1].1), master);
}
