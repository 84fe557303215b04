//! A Patroni cluster on loopback from exactly the generated files, for the
//! failover and backup tests: etcd, Patroni (managing PostgreSQL) and HAProxy
//! on three loopback addresses, one per host.
//!
//! Each node sees the paths of its container: a mount namespace (`unshare`)
//! binds the node's own directories over the data volume, the socket directory
//! and `/etc/stackc` (the mounted files as compose mounts them), the other
//! generated directories it mounts at their places, and the Patroni installed
//! here at the node image's `/opt/patroni`. Patroni is the command of the
//! node's compose service, with its environment (secrets filled in), run as
//! the postgres user as in the node image. Every `patroni.yml` passes
//! `patroni --validate-config` against the started etcd.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_norway::Value;

use crate::support::{artifact, options, require, wait_for, write_artifacts};

/// The three hosts, as every stack of these tests names them.
pub const HOSTS: [(&str, &str); 3] = [
    ("one", "127.0.0.71"),
    ("two", "127.0.0.72"),
    ("three", "127.0.0.73"),
];

/// The values of the stacks' secrets, as compose would fill them in.
pub const SECRETS: [(&str, &str); 4] = [
    ("DB_PASSWORD", "orders-secret"),
    ("REPLICATION_PASSWORD", "replication-secret"),
    ("BACKUP_ACCESS_KEY", "test-access-key"),
    ("BACKUP_SECRET_KEY", "test-secret-key"),
];

/// The programs a cluster needs here.
pub const PROGRAMS: [&str; 7] = [
    "patroni", "etcd", "etcdctl", "haproxy", "psql", "unshare", "gosu",
];

/// Started programs and the postmasters they leave, killed even when an
/// assertion fails.
pub struct Running {
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
            kill_postmaster(pid_file);
        }
    }
}

fn kill_postmaster(pid_file: &Path) {
    if let Some(pid) = postmaster_pid(pid_file) {
        let _ = Command::new("kill")
            .args(["-9", &pid])
            .stderr(Stdio::null())
            .status();
    }
}

pub fn postmaster_pid(pid_file: &Path) -> Option<String> {
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
pub fn service(compose: &str, name: &str) -> Value {
    let v: Value = serde_norway::from_str(compose).unwrap_or_else(|e| panic!("{e}"));
    v["services"][name].clone()
}

pub fn strings(v: &Value) -> Vec<String> {
    v.as_sequence()
        .unwrap_or_else(|| panic!("not a list: {v:?}"))
        .iter()
        .map(|s| s.as_str().unwrap_or_default().to_string())
        .collect()
}

/// A compose environment, with `${SECRET:?...}` filled in as compose would.
pub fn environment(service: &Value) -> BTreeMap<String, String> {
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

/// The generated files a compose service mounts: (source in `out`, target).
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
/// same places under `/etc/stackc`. The other mounted directories are bound
/// where they are mounted: they are returned.
fn etc_stackc(services: &[&Value], compose_dir: &Path, dir: &Path) -> Vec<(PathBuf, String)> {
    let mut elsewhere = Vec::new();
    for s in services {
        for (source, target) in mounts(s, compose_dir) {
            let Some(rest) = target.strip_prefix("/etc/stackc/") else {
                if !elsewhere.iter().any(|(_, t)| *t == target) {
                    elsewhere.push((source, target));
                }
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
    elsewhere
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

pub fn shell_quote(args: &[String]) -> String {
    args.iter()
        .map(|a| format!("'{}'", a.replace('\'', "'\\''")))
        .collect::<Vec<_>>()
        .join(" ")
}

fn log(path: &Path) -> Stdio {
    Stdio::from(fs::File::create(path).unwrap_or_else(|e| panic!("{e}")))
}

/// The HTTP status of a GET to Patroni's REST API.
pub fn rest_status(address: &str, path: &str) -> u16 {
    status(&rest(address, &get(address, path)))
}

/// The body of the answer to a GET to Patroni's REST API.
pub fn rest_body(address: &str, path: &str) -> String {
    let text = rest(address, &get(address, path));
    text.split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default()
}

fn get(address: &str, path: &str) -> String {
    format!("GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n")
}

/// The HTTP status of a POST to Patroni's REST API, with basic
/// authentication when `user` is `Some((name, password))`.
pub fn rest_post(address: &str, path: &str, user: Option<(&str, &str)>) -> u16 {
    let auth = user.map_or_else(String::new, |(name, password)| {
        format!(
            "Authorization: Basic {}\r\n",
            base64(&format!("{name}:{password}"))
        )
    });
    let request =
        format!("POST {path} HTTP/1.0\r\nHost: {address}\r\n{auth}Content-Length: 0\r\n\r\n");
    status(&rest(address, &request))
}

/// The answer to `request` on the REST API's port; empty when nothing
/// answers.
fn rest(address: &str, request: &str) -> String {
    let Ok(mut s) = TcpStream::connect((address, 8008)) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = s.write_all(request.as_bytes());
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    text
}

/// An HTTP answer's status; 0 for none.
fn status(answer: &str) -> u16 {
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// `text` in base64, by coreutils' `base64`.
fn base64(text: &str) -> String {
    let mut child = Command::new("base64")
        .args(["-w", "0"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("base64: {e}"));
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(text.as_bytes());
    }
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("base64: {e}"));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A query through the generated HAProxy endpoint, as the app's URL connects.
pub fn psql(url: &str, sql: &str) -> Output {
    Command::new("psql")
        .args([url, "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .env("PGCONNECT_TIMEOUT", "3")
        .output()
        .unwrap_or_else(|e| panic!("psql: {e}"))
}

pub fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// Runs a statement, which must succeed.
pub fn execute(url: &str, sql: &str) {
    let o = psql(url, sql);
    assert!(
        o.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The newest PostgreSQL major version installed in /usr/lib/postgresql.
pub fn installed_major() -> String {
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

/// One host's node: its directories, its compose service's environment and
/// command, and its backup task's, when it has one.
pub struct Node {
    pub host: &'static str,
    pub address: &'static str,
    pub volume: PathBuf,
    sockets: PathBuf,
    etc: PathBuf,
    /// Generated directories mounted elsewhere than /etc/stackc.
    elsewhere: Vec<(PathBuf, String)>,
    pub env: BTreeMap<String, String>,
    pub command: Vec<String>,
    pub task: Option<(BTreeMap<String, String>, Vec<String>)>,
    /// Its Patroni's place in `Running::children`, while it runs.
    patroni: Option<usize>,
}

/// A compiled stack's cluster: etcd running, the nodes ready to start.
pub struct Cluster {
    /// First: dropped (every program killed) before the directories go.
    pub running: Running,
    pub tmp: tempfile::TempDir,
    pub compilation: stackc::Compilation,
    pub out: PathBuf,
    pub nodes: Vec<Node>,
    /// PostgreSQL's programs, first on the nodes' PATH.
    path: String,
    /// The Patroni installed here, bound at the node image's /opt/patroni.
    patroni_home: PathBuf,
    /// Last: held until everything above is gone.
    _alone: std::sync::MutexGuard<'static, ()>,
}

/// One cluster at a time: every cluster listens on the same addresses, and
/// its HAProxy on the same ports of all of them.
static ALONE: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl Cluster {
    /// Compiles `stack` (with `MAJOR` the PostgreSQL installed here), starts
    /// etcd on every host and validates every node's config; `extra` is
    /// added to every node's and task's environment, per node. `None` where
    /// a program is missing (a failure under `CI=true`).
    pub fn prepare(stack: &str, extra: &dyn Fn(&Path) -> Vec<(String, String)>) -> Option<Cluster> {
        if !PROGRAMS.iter().all(|p| require(p)) {
            return None;
        }
        // A test that failed holding it leaves nothing running.
        let alone = ALONE.lock().unwrap_or_else(|e| e.into_inner());
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let major = installed_major();
        let stack = stack.replace("MAJOR", &major);
        let compilation = stackc::compile(&stack, &options(&tmp.path().join("ha.stack")));
        assert!(!compilation.has_errors(), "{:?}", compilation.diagnostics);
        let out = tmp.path().join("out");
        write_artifacts(&compilation, &out);
        let patroni_home = which("patroni")
            .parent()
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .unwrap_or_else(|| panic!("patroni's virtual environment"));
        let mut cluster = Cluster {
            path: format!(
                "/usr/lib/postgresql/{major}/bin:{}",
                std::env::var("PATH").unwrap_or_default()
            ),
            tmp,
            compilation,
            out,
            nodes: Vec::new(),
            running: Running {
                children: Vec::new(),
                postmasters: Vec::new(),
                logs: Vec::new(),
            },
            patroni_home,
            _alone: alone,
        };
        for (host, address) in HOSTS {
            let node = cluster.node(host, address, extra);
            cluster.nodes.push(node);
        }
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
        for n in 0..cluster.nodes.len() {
            cluster.validate(n);
        }
        Some(cluster)
    }

    pub fn file(&self, path: &str) -> String {
        artifact(&self.compilation, path)
    }

    /// A host's node: its directories made, its etcd member started.
    fn node(
        &mut self,
        host: &'static str,
        address: &'static str,
        extra: &dyn Fn(&Path) -> Vec<(String, String)>,
    ) -> Node {
        let compose_dir = self.out.join("trio/compose");
        let compose = self.file(&format!("trio/compose/{host}.yml"));
        let db = service(&compose, "db");
        let etcd = service(&compose, "db-etcd");
        let task = service(&compose, "db-backup");
        assert_eq!(db["network_mode"].as_str(), Some("host"), "{compose}");
        let base = self.tmp.path().join(host);
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
        let elsewhere = etc_stackc(&[&db, &etcd], &compose_dir, &etc);
        // The container paths the node binds over.
        for p in [
            "/etc/stackc",
            "/var/lib/etcd",
            "/var/lib/postgresql/data",
            "/var/run/postgresql",
            "/opt/patroni",
        ] {
            mkdir(Path::new(p));
        }
        for (_, target) in &elsewhere {
            mkdir(Path::new(target));
        }
        let etcd_command = shell_quote(&strings(&etcd["command"]));
        let child = in_namespace(
            &[(&etcd_data, "/var/lib/etcd"), (&etc, "/etc/stackc")],
            &etcd_command,
        )
        .stdout(Stdio::null())
        .stderr(log(&base.join("etcd.log")))
        .spawn()
        .unwrap_or_else(|e| panic!("etcd: {e}"));
        self.running.children.push(child);
        self.running.logs.push(base.join("etcd.log"));
        self.running
            .postmasters
            .push(volume.join("pgdata/postmaster.pid"));
        let extra = extra(&base);
        let with_extra = |mut env: BTreeMap<String, String>| {
            env.extend(extra.iter().cloned());
            env
        };
        Node {
            host,
            address,
            volume,
            sockets,
            etc,
            elsewhere,
            env: with_extra(environment(&db)),
            command: strings(&db["command"]),
            task: (!task.is_null())
                .then(|| (with_extra(environment(&task)), strings(&task["command"]))),
            patroni: None,
        }
    }

    /// A command in node `n`'s container paths, as the postgres user, with
    /// `env` only.
    pub fn as_postgres(
        &self,
        n: usize,
        env: &BTreeMap<String, String>,
        args: &[String],
    ) -> Command {
        let node = &self.nodes[n];
        let env: Vec<String> = env
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .chain([
                format!("PATH={}", self.path),
                "HOME=/var/lib/postgresql".into(),
            ])
            .collect();
        let mut line = vec![
            "gosu".to_string(),
            "postgres".into(),
            "env".into(),
            "-i".into(),
        ];
        line.extend(env);
        line.extend(args.iter().cloned());
        let mut binds: Vec<(&Path, &str)> = vec![
            (&node.volume, "/var/lib/postgresql/data"),
            (&node.sockets, "/var/run/postgresql"),
            (&node.etc, "/etc/stackc"),
            (&self.patroni_home, "/opt/patroni"),
        ];
        binds.extend(
            node.elsewhere
                .iter()
                .map(|(s, t)| (s.as_path(), t.as_str())),
        );
        in_namespace(&binds, &shell_quote(&line))
    }

    /// Every node's config passes Patroni's validator, etcd reachable.
    fn validate(&self, n: usize) {
        let node = &self.nodes[n];
        let args = vec![
            "patroni".to_string(),
            "--validate-config".into(),
            node.command[1].clone(),
        ];
        let o = self
            .as_postgres(n, &node.env, &args)
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            o.status.success(),
            "patroni --validate-config: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }

    /// Starts node `n`'s Patroni, the node image's command.
    pub fn start(&mut self, n: usize) {
        let node = &self.nodes[n];
        let patroni_log = self.tmp.path().join(node.host).join("patroni.log");
        let child = self
            .as_postgres(n, &node.env, &node.command)
            .stdout(Stdio::null())
            .stderr(log_append(&patroni_log))
            .spawn()
            .unwrap_or_else(|e| panic!("patroni: {e}"));
        if !self.running.logs.contains(&patroni_log) {
            self.running.logs.push(patroni_log);
        }
        self.running.children.push(child);
        self.nodes[n].patroni = Some(self.running.children.len() - 1);
    }

    /// Kill -9 node `n`: its Patroni and its postmaster.
    pub fn kill(&mut self, n: usize) {
        let node = &mut self.nodes[n];
        let pid_file = node.volume.join("pgdata/postmaster.pid");
        if let Some(i) = node.patroni.take() {
            let patroni = &mut self.running.children[i];
            let _ = patroni.kill();
            let _ = patroni.wait();
        }
        kill_postmaster(&pid_file);
    }

    /// Runs node `n`'s backup task's command, or `args` in its container.
    pub fn task(&self, n: usize, args: Option<&[String]>) -> Output {
        let (env, command) = self.nodes[n]
            .task
            .as_ref()
            .unwrap_or_else(|| panic!("no backup task on {}", self.nodes[n].host));
        self.as_postgres(n, env, args.unwrap_or(command))
            .output()
            .unwrap_or_else(|e| panic!("the backup task: {e}"))
    }

    /// Starts the generated HAProxy of the consumers.
    pub fn start_haproxy(&mut self) {
        let cfg = self.out.join("trio/db/haproxy.cfg");
        let proxy = Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("haproxy: {e}"));
        self.running.children.push(proxy);
    }

    /// The app's URLs (`DATABASE_URL`, `DATABASE_READ_URL`) through the
    /// HAProxy on loopback, and the superuser's to the primary.
    pub fn urls(&self) -> (String, String, String) {
        let app = service(&self.file("trio/compose/one.yml"), "app");
        let env = environment(&app);
        let url = env["DATABASE_URL"].replace("@db-haproxy:", "@127.0.0.1:");
        let read_url = env
            .get("DATABASE_READ_URL")
            .map(|u| u.replace("@db-haproxy:", "@127.0.0.1:"))
            .unwrap_or_default();
        // The replication statistics are the superuser's (its password is
        // the service's, the default); the application's role sees none.
        let admin = url
            .replace("shop:", "postgres:")
            .replace("/orders", "/postgres");
        (url, read_url, admin)
    }

    /// The node that answers `/primary`.
    pub fn leader(&self) -> Option<usize> {
        self.nodes
            .iter()
            .position(|n| rest_status(n.address, "/primary") == 200)
    }
}

fn log_append(path: &Path) -> Stdio {
    Stdio::from(
        fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap_or_else(|e| panic!("{e}")),
    )
}

fn which(program: &str) -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{program} is not on PATH"))
}

/// A primary with `replicas` streaming replicas, and HAProxy's checks
/// settled: every connection of the primary endpoint reaches the primary.
pub fn wait_streaming(url: &str, admin: &str, replicas: usize) {
    let streaming = || {
        text(&psql(
            admin,
            // A base backup streams its WAL too, as `pg_basebackup`.
            "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming' AND application_name <> 'pg_basebackup'",
        ))
    };
    wait_for(
        "a primary with its streaming replicas",
        Duration::from_secs(90),
        || streaming() == replicas.to_string(),
    );
    wait_for(
        "the primary endpoint reaches only the primary",
        Duration::from_secs(20),
        || (0..6).all(|_| text(&psql(url, "SELECT pg_is_in_recovery()")) == "f"),
    );
}
