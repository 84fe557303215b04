//! PostgreSQL run by Patroni on hosts, failed over with the real programs: etcd,
//! Patroni (managing PostgreSQL) and HAProxy start from exactly the generated
//! files on three loopback addresses, one per host.
//!
//! Each node sees the paths of its container: a mount namespace (`unshare`)
//! binds the node's own directories over the data volume, the socket directory
//! and `/etc/stackc`, which holds the mounted files as compose mounts them.
//! Patroni is the command of the node's compose service, with its environment
//! (secrets filled in), run as the postgres user as in the node image.
//!
//! Every `patroni.yml` passes `patroni --validate-config` against the started
//! etcd, the HAProxy config `haproxy -c -dW`, the compose files `docker-compose
//! config`. Then: replicas stream, writes go through the generated primary
//! endpoint and reach both replicas, the primary node is killed (SIGKILL of
//! Patroni and of its postmaster), and writes through the same endpoint must
//! succeed again within ttl + 10 s with every acknowledged write kept. The
//! replica endpoint answers reads from a replica.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_norway::Value;

use crate::support::{artifact, options, require, wait_for, write_artifacts};

const HOSTS: [(&str, &str); 3] = [
    ("one", "127.0.0.71"),
    ("two", "127.0.0.72"),
    ("three", "127.0.0.73"),
];
const TTL: Duration = Duration::from_secs(20);

const STACK: &str = r#"
stack ha

secret db_password
secret replication_password

service db: postgres {
  image = "postgres:MAJOR"
  database = "orders"
  user = "shop"
  password = secret.db_password
}

service app {
  image = "app:1"
  env {
    DATABASE_URL = db.url
    DATABASE_READ_URL = db.read_url
  }
}

topology trio {
  host one {
    address = "127.0.0.71"
    run = [db, app]
  }
  host two {
    address = "127.0.0.72"
    run = [db]
  }
  host three {
    address = "127.0.0.73"
    run = [db]
  }
  override db {
    ha {
      mode = patroni
      ttl = 20s
      loop_wait = 2s
      retry_timeout = 5s
      replication_password = secret.replication_password
    }
  }
}
"#;

const SECRETS: [(&str, &str); 2] = [
    ("DB_PASSWORD", "orders-secret"),
    ("REPLICATION_PASSWORD", "replication-secret"),
];

/// Started programs and the postmasters they leave, killed even when an
/// assertion fails.
struct Running {
    children: Vec<Child>,
    postmasters: Vec<PathBuf>,
    /// Shown when the test fails.
    logs: Vec<PathBuf>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for l in &self.logs {
                let text = fs::read_to_string(l).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                let tail = lines[lines.len().saturating_sub(25)..].join("\n");
                eprintln!("==> {} <==\n{tail}", l.display());
            }
        }
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for pid_file in &self.postmasters {
            if let Some(pid) = postmaster_pid(pid_file) {
                let _ = Command::new("kill")
                    .args(["-9", &pid])
                    .stderr(Stdio::null())
                    .status();
            }
        }
    }
}

fn postmaster_pid(pid_file: &Path) -> Option<String> {
    let text = fs::read_to_string(pid_file).ok()?;
    Some(text.lines().next()?.trim().to_string())
}

fn mkdir(p: &Path) {
    fs::create_dir_all(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
}

fn chown_postgres(p: &Path) {
    let ok = Command::new("chown")
        .args(["-R", "postgres:postgres"])
        .arg(p)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "chown {}", p.display());
}

/// A compose service of a host's file.
fn service(compose: &str, name: &str) -> Value {
    let v: Value = serde_norway::from_str(compose).unwrap_or_else(|e| panic!("{e}"));
    v["services"][name].clone()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_sequence()
        .unwrap_or_else(|| panic!("not a list: {v:?}"))
        .iter()
        .map(|s| s.as_str().unwrap_or_default().to_string())
        .collect()
}

/// A compose environment, with `${SECRET:?...}` filled in as compose would.
fn environment(service: &Value) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for (k, v) in service["environment"].as_mapping().into_iter().flatten() {
        let mut value = v.as_str().unwrap_or_default().to_string();
        for (name, secret) in SECRETS {
            while let Some(start) = value.find(&format!("${{{name}:")) {
                let end = value[start..]
                    .find('}')
                    .map_or(value.len(), |e| start + e + 1);
                value.replace_range(start..end, secret);
            }
        }
        env.insert(k.as_str().unwrap_or_default().to_string(), value);
    }
    env
}

/// The container paths a compose service mounts: (source in `out`, target).
fn mounts(service: &Value, compose_dir: &Path) -> Vec<(PathBuf, String)> {
    strings(&service["volumes"])
        .iter()
        .filter(|v| v.starts_with("../"))
        .map(|v| {
            let mut parts = v.split(':');
            let source = compose_dir.join(parts.next().unwrap_or_default());
            (source, parts.next().unwrap_or_default().to_string())
        })
        .collect()
}

/// Builds a node's `/etc/stackc` from its compose mounts: the same files, at the
/// same places under `/etc/stackc`.
fn etc_stackc(services: &[&Value], compose_dir: &Path, dir: &Path) {
    for s in services {
        for (source, target) in mounts(s, compose_dir) {
            let Some(rest) = target.strip_prefix("/etc/stackc/") else {
                continue;
            };
            let dest = dir.join(rest);
            if source.is_dir() {
                mkdir(&dest);
                for f in fs::read_dir(&source)
                    .unwrap_or_else(|e| panic!("{e}"))
                    .flatten()
                {
                    fs::copy(f.path(), dest.join(f.file_name())).unwrap_or_else(|e| panic!("{e}"));
                }
            } else {
                fs::copy(&source, &dest).unwrap_or_else(|e| panic!("{e}"));
            }
        }
    }
}

/// A shell line that binds `(source, container path)` pairs in a new mount
/// namespace, then runs `command`.
fn in_namespace(binds: &[(&Path, &str)], command: &str) -> Command {
    let mut line = String::new();
    for (source, target) in binds {
        line.push_str(&format!(
            "mount --bind '{}' '{target}' && ",
            source.display()
        ));
    }
    line.push_str("exec ");
    line.push_str(command);
    let mut c = Command::new("unshare");
    c.args(["--mount", "--propagation", "private", "sh", "-c", &line]);
    c
}

fn shell_quote(args: &[String]) -> String {
    args.iter()
        .map(|a| format!("'{}'", a.replace('\'', "'\\''")))
        .collect::<Vec<_>>()
        .join(" ")
}

fn log(path: &Path) -> Stdio {
    Stdio::from(fs::File::create(path).unwrap_or_else(|e| panic!("{e}")))
}

/// The HTTP status of a GET to Patroni's REST API.
fn rest_status(address: &str, path: &str) -> u16 {
    let Ok(mut s) = TcpStream::connect((address, 8008)) else {
        return 0;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = write!(s, "GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n");
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    text.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// A query through the generated HAProxy endpoint, as the app's URL connects.
fn psql(url: &str, sql: &str) -> Output {
    Command::new("psql")
        .args([url, "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .env("PGCONNECT_TIMEOUT", "3")
        .output()
        .unwrap_or_else(|e| panic!("psql: {e}"))
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// The newest PostgreSQL major version installed in /usr/lib/postgresql.
fn installed_major() -> String {
    let mut versions: Vec<u32> = fs::read_dir("/usr/lib/postgresql")
        .unwrap_or_else(|e| panic!("/usr/lib/postgresql: {e}"))
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    versions.sort_unstable();
    versions
        .last()
        .unwrap_or_else(|| panic!("no PostgreSQL in /usr/lib/postgresql"))
        .to_string()
}

#[test]
fn patroni_fails_over_through_the_generated_haproxy() {
    let programs = [
        "patroni", "etcd", "etcdctl", "haproxy", "psql", "unshare", "gosu",
    ];
    if !programs.iter().all(|p| require(p)) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    // The node image's PostgreSQL is the one installed here: its programs are
    // where the generated `bin_dir` says.
    let major = installed_major();
    let stack = STACK.replace("MAJOR", &major);
    let compilation = stackc::compile(&stack, &options(&tmp.path().join("ha.stack")));
    assert!(!compilation.has_errors(), "{:?}", compilation.diagnostics);
    let out = tmp.path().join("out");
    write_artifacts(&compilation, &out);
    let compose_dir = out.join("trio/compose");
    let app = service(&artifact(&compilation, "trio/compose/one.yml"), "app");
    let app_env = environment(&app);
    let url = app_env["DATABASE_URL"].replace("@db-haproxy:", "@127.0.0.1:");
    let read_url = app_env["DATABASE_READ_URL"].replace("@db-haproxy:", "@127.0.0.1:");
    assert!(url.ends_with(":5000/orders"), "{url}");

    if require("docker-compose") {
        for (host, _) in HOSTS {
            let f = compose_dir.join(format!("{host}.yml"));
            let o = Command::new("docker-compose")
                .arg("-f")
                .arg(&f)
                .args(["config", "-q"])
                .envs(SECRETS)
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
    let haproxy_cfg = out.join("trio/db/haproxy.cfg");
    let o = Command::new("haproxy")
        .args(["-c", "-dW", "-f"])
        .arg(&haproxy_cfg)
        .output()
        .unwrap_or_else(|e| panic!("haproxy: {e}"));
    assert!(
        o.status.success(),
        "haproxy -c: {}",
        String::from_utf8_lossy(&o.stderr)
    );

    // The container paths the nodes bind over.
    for p in [
        "/etc/stackc",
        "/var/lib/etcd",
        "/var/lib/postgresql/data",
        "/var/run/postgresql",
    ] {
        mkdir(Path::new(p));
    }
    let mut running = Running {
        children: Vec::new(),
        postmasters: Vec::new(),
        logs: Vec::new(),
    };
    struct Node {
        volume: PathBuf,
        sockets: PathBuf,
        etc: PathBuf,
        env: BTreeMap<String, String>,
        command: Vec<String>,
    }
    let mut nodes = Vec::new();
    for (host, _) in HOSTS {
        let compose = artifact(&compilation, &format!("trio/compose/{host}.yml"));
        let db = service(&compose, "db");
        let etcd = service(&compose, "db-etcd");
        assert_eq!(db["network_mode"].as_str(), Some("host"), "{compose}");
        let base = tmp.path().join(host);
        let (volume, sockets, etc, etcd_data) = (
            base.join("volume"),
            base.join("run"),
            base.join("etc"),
            base.join("etcd"),
        );
        for d in [&volume, &sockets, &etc, &etcd_data] {
            mkdir(d);
        }
        chown_postgres(&volume);
        chown_postgres(&sockets);
        etc_stackc(&[&db, &etcd], &compose_dir, &etc);
        let etcd_command = shell_quote(&strings(&etcd["command"]));
        let child = in_namespace(
            &[(&etcd_data, "/var/lib/etcd"), (&etc, "/etc/stackc")],
            &etcd_command,
        )
        .stdout(Stdio::null())
        .stderr(log(&base.join("etcd.log")))
        .spawn()
        .unwrap_or_else(|e| panic!("etcd: {e}"));
        running.children.push(child);
        running.logs.push(base.join("etcd.log"));
        let mut command = strings(&db["command"]);
        // The node image's Patroni, installed here by the test script.
        command[0] = "patroni".into();
        running
            .postmasters
            .push(volume.join("pgdata/postmaster.pid"));
        nodes.push(Node {
            volume,
            sockets,
            etc,
            env: environment(&db),
            command,
        });
    }
    let path = format!(
        "/usr/lib/postgresql/{major}/bin:{}",
        std::env::var("PATH").unwrap_or_default()
    );
    let as_postgres = |n: &Node, args: &[String]| -> Command {
        let env: Vec<String> = n
            .env
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .chain([format!("PATH={path}"), "HOME=/var/lib/postgresql".into()])
            .collect();
        let mut line = vec![
            "gosu".to_string(),
            "postgres".into(),
            "env".into(),
            "-i".into(),
        ];
        line.extend(env);
        line.extend(args.iter().cloned());
        in_namespace(
            &[
                (&n.volume, "/var/lib/postgresql/data"),
                (&n.sockets, "/var/run/postgresql"),
                (&n.etc, "/etc/stackc"),
            ],
            &shell_quote(&line),
        )
    };
    wait_for("etcd answers", Duration::from_secs(20), || {
        Command::new("etcdctl")
            .args([
                "--endpoints=127.0.0.71:2379,127.0.0.72:2379,127.0.0.73:2379",
                "endpoint",
                "health",
            ])
            .env("ETCDCTL_API", "3")
            .output()
            .is_ok_and(|o| o.status.success())
    });

    // Every node's config passes Patroni's validator, etcd reachable.
    for n in &nodes {
        let mut args = vec!["patroni".to_string(), "--validate-config".into()];
        args.push(n.command[1].clone());
        let o = as_postgres(n, &args)
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            o.status.success(),
            "patroni --validate-config: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
    for (n, (host, _)) in nodes.iter().zip(HOSTS) {
        let patroni_log = tmp.path().join(host).join("patroni.log");
        running.logs.push(patroni_log.clone());
        let child = as_postgres(n, &n.command)
            .stdout(Stdio::null())
            .stderr(log(&patroni_log))
            .spawn()
            .unwrap_or_else(|e| panic!("patroni: {e}"));
        running.children.push(child);
    }
    let proxy = Command::new("haproxy")
        .arg("-db")
        .arg("-f")
        .arg(&haproxy_cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("haproxy: {e}"));
    running.children.push(proxy);
    let streaming = |url: &str| {
        text(&psql(
            url,
            "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'",
        ))
    };
    // The replication statistics are the superuser's (its password is the
    // service's, the default); the application's role sees no states.
    let admin = url
        .replace("shop:", "postgres:")
        .replace("/orders", "/postgres");
    wait_for(
        "a primary with two streaming replicas",
        Duration::from_secs(60),
        || streaming(&admin) == "2",
    );
    // HAProxy starts with every server up: wait until the checks have settled
    // and every connection reaches the primary.
    wait_for(
        "the primary endpoint reaches only the primary",
        Duration::from_secs(10),
        || (0..6).all(|_| text(&psql(&url, "SELECT pg_is_in_recovery()")) == "f"),
    );
    let o = psql(
        &url,
        "CREATE TABLE orders (id serial PRIMARY KEY, item text NOT NULL)",
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for i in 0..20 {
        let o = psql(
            &url,
            &format!("INSERT INTO orders (item) VALUES ('before-{i}')"),
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    // Both replicas have replayed every acknowledged write.
    wait_for(
        "both replicas replay the writes",
        Duration::from_secs(20),
        || {
            text(&psql(
                &admin,
                "SELECT count(*) FROM pg_stat_replication WHERE replay_lsn = pg_current_wal_lsn()",
            )) == "2"
        },
    );
    wait_for(
        "the replica endpoint reads from a replica",
        Duration::from_secs(10),
        || {
            text(&psql(
                &read_url,
                "SELECT pg_is_in_recovery(), count(*) FROM orders",
            )) == "t|20"
        },
    );

    // Kill -9 the primary node: Patroni and its postmaster.
    let leader = HOSTS
        .iter()
        .position(|(_, a)| rest_status(a, "/primary") == 200)
        .unwrap_or_else(|| panic!("no node answers /primary"));
    let postmaster = postmaster_pid(&nodes[leader].volume.join("pgdata/postmaster.pid"))
        .unwrap_or_else(|| panic!("no postmaster.pid on the primary"));
    let patroni = &mut running.children[HOSTS.len() + leader];
    let _ = patroni.kill();
    let _ = patroni.wait();
    let _ = Command::new("kill").args(["-9", &postmaster]).status();
    let elapsed = wait_for(
        "writes through the primary endpoint succeed again",
        TTL + Duration::from_secs(10),
        || {
            psql(&url, "INSERT INTO orders (item) VALUES ('after')")
                .status
                .success()
        },
    );
    let after = text(&psql(
        &url,
        "SELECT count(*) FROM orders WHERE item LIKE 'before-%'",
    ));
    assert_eq!(after, "20", "no acknowledged write is lost");
    let new_leader = HOSTS
        .iter()
        .position(|(_, a)| rest_status(a, "/primary") == 200);
    assert!(
        new_leader.is_some_and(|l| l != leader),
        "a replica was promoted"
    );
    eprintln!("patroni failover: writes again {elapsed:?} after the kill");
    for n in &nodes {
        // Every node's data stayed in its own volume.
        assert!(n.volume.join("pgdata/PG_VERSION").exists());
    }
}
