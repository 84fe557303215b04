//! PostgreSQL streaming replication on hosts, run with the real programs:
//!
//! - every example's `postgresql.conf` and `pg_hba.conf` are accepted by
//!   postgres (`-C`, then a start: pg_hba is only read by a starting server;
//!   ../shared/TARGETS.md 1.9);
//! - a primary and a standby run as the compose files start them: the primary's
//!   role script (the image runs it at initdb) through psql, the standby's
//!   `standby.sh` as root (it drops to postgres with gosu) cloning the primary over
//!   its host address with the replication password; then the standby streams,
//!   serves reads, streams again after a restart without a second clone,
//!   refuses writes, and takes writes once promoted (2.5).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use crate::support::{options, read, require, write_artifacts};

pub(crate) const PG_PROGRAMS: [&str; 5] = ["postgres", "initdb", "pg_ctl", "psql", "pg_basebackup"];

pub(crate) fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A command run as the postgres OS user when the tests run as root (postgres
/// refuses root), with an explicit environment.
pub(crate) fn as_postgres(program: &str, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut c = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", "env"]);
        c
    } else {
        Command::new("env")
    };
    c.args(env.iter().map(|(k, v)| format!("{k}={v}")));
    c.arg(program).args(args);
    c
}

pub(crate) fn run(mut c: Command) -> Output {
    c.output().unwrap_or_else(|e| panic!("{c:?}: {e}"))
}

pub(crate) fn ok(c: Command) -> String {
    let what = format!("{c:?}");
    let o = run(c);
    assert!(
        o.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Gives a directory to the postgres user, when the tests run as root.
pub(crate) fn own(dir: &Path) {
    if is_root() {
        let mut c = Command::new("chown");
        c.args(["-R", "postgres:postgres"]).arg(dir);
        ok(c);
    }
}

/// A scratch directory the postgres user can use.
pub(crate) fn scratch() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    own(tmp.path());
    tmp
}

pub(crate) fn initdb(data: &Path) {
    let d = data.display().to_string();
    ok(as_postgres(
        "initdb",
        &["-D", &d, "-U", "postgres", "-A", "trust", "--no-sync"],
        &[],
    ));
}

/// Stops the clusters it was given, even when an assertion fails.
pub(crate) struct Clusters(pub(crate) Vec<PathBuf>);

impl Drop for Clusters {
    fn drop(&mut self) {
        for d in &self.0 {
            let d = d.display().to_string();
            let _ = run(as_postgres(
                "pg_ctl",
                &["-D", &d, "-m", "immediate", "stop"],
                &[],
            ));
        }
    }
}

/// A started script that runs the cluster in the directory: stopped (the
/// cluster first), even when an assertion fails.
pub(crate) struct Running(pub(crate) Child, pub(crate) PathBuf);

impl Drop for Running {
    fn drop(&mut self) {
        drop(Clusters(vec![self.1.clone()]));
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn psql(socket: &Path, port: u16, sql: &str) -> Output {
    let s = socket.display().to_string();
    run(as_postgres(
        "psql",
        &[
            "-h",
            &s,
            "-p",
            &port.to_string(),
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-X",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ],
        &[],
    ))
}

pub(crate) fn query(socket: &Path, port: u16, sql: &str) -> String {
    let o = psql(socket, port, sql);
    assert!(
        o.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

pub(crate) fn wait_for(
    what: &str,
    seconds: u64,
    mut done: impl FnMut() -> bool,
    log: impl Fn() -> String,
) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while !done() {
        assert!(
            Instant::now() < deadline,
            "{what}: not within {seconds} s\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn examples_postgres_configs_are_accepted_by_postgres() {
    if !PG_PROGRAMS.iter().all(|p| require(p)) {
        return;
    }
    let mut checked = 0;
    for path in crate::support::stack_files("examples") {
        let compilation = stackc::compile(read(&path), &options(&path));
        let configs: Vec<&stackc::targets::Artifact> = compilation
            .artifacts
            .iter()
            .filter(|a| a.path.ends_with("/postgresql.conf"))
            .collect();
        for conf in configs {
            let dir = conf.path.trim_end_matches("postgresql.conf");
            let hba = compilation
                .artifacts
                .iter()
                .find(|a| a.path == format!("{dir}pg_hba.conf"))
                .unwrap_or_else(|| panic!("{dir}: a pg_hba.conf beside postgresql.conf"));
            let tmp = scratch();
            let data = tmp.path().join("data");
            initdb(&data);
            let conf_file = tmp.path().join("postgresql.conf");
            let hba_file = tmp.path().join("pg_hba.conf");
            // A `postgres_tls` server's certificates, made for the test.
            let contents = if conf.contents.contains("ssl = 'on'") {
                crate::postgres_tls::with_test_certificates(&conf.contents, tmp.path())
            } else {
                conf.contents.clone()
            };
            fs::write(&conf_file, contents).unwrap_or_else(|e| panic!("{e}"));
            fs::write(&hba_file, &hba.contents).unwrap_or_else(|e| panic!("{e}"));
            let d = data.display().to_string();
            let config = format!("config_file={}", conf_file.display());
            let hba_arg = format!("hba_file={}", hba_file.display());
            // Names and values of postgresql.conf.
            ok(as_postgres(
                "postgres",
                &["-D", &d, "-c", &config, "-c", &hba_arg, "-C", "wal_level"],
                &[],
            ));
            // pg_hba.conf is read by a starting server: start on a socket only.
            let _stop = Clusters(vec![data.clone()]);
            let log = tmp.path().join("log").display().to_string();
            let opts = format!(
                "-c {config} -c {hba_arg} -c listen_addresses='' -c unix_socket_directories={}",
                tmp.path().display()
            );
            let o = run(as_postgres(
                "pg_ctl",
                &["-D", &d, "-w", "-t", "20", "-l", &log, "-o", &opts, "start"],
                &[],
            ));
            assert!(
                o.status.success(),
                "{}: postgres refused the config:\n{}",
                conf.path,
                fs::read_to_string(&log).unwrap_or_default()
            );
            checked += 1;
        }
    }
    assert!(checked >= 2, "an example streams PostgreSQL to a standby");
}

const STREAMING_STACK: &str = r#"
stack replicated

secret db_password
secret replication_password

service db: postgres {
  password = secret.db_password
  port pg { container = 5432  host = 25441 }
}

topology pair {
  host one {
    address = "127.0.0.41"
    run = [db]
  }
  # On loopback, connections to 127.0.0.41 come from 127.0.0.1.
  host two {
    address = "127.0.0.1"
    run = [db]
  }
  override db {
    ha {
      mode = streaming
      replication_password = secret.replication_password
    }
  }
}
"#;

/// A server on `data` started with `opts` (`-c NAME=VALUE ...`), its log in
/// `log`: stopped when the guard is dropped.
pub(crate) fn pg_ctl_start(data: &Path, opts: &str, log: &Path) -> Clusters {
    let stop = Clusters(vec![data.to_path_buf()]);
    let (d, l) = (data.display().to_string(), log.display().to_string());
    let o = run(as_postgres(
        "pg_ctl",
        &["-D", &d, "-w", "-t", "30", "-l", &l, "-o", opts, "start"],
        &[],
    ));
    assert!(
        o.status.success(),
        "postgres: {}",
        fs::read_to_string(log).unwrap_or_default()
    );
    stop
}

/// A streaming primary as its container starts it: the server on `data`
/// with the node's generated files in `dir`, listening on `address` and on
/// `socket`, then the role script (which the image runs at initdb) through
/// psql. Stopped when the guard is dropped.
pub(crate) fn start_primary(
    dir: &Path,
    data: &Path,
    socket: &Path,
    (address, port): (&str, u16),
    password: &str,
    log: &Path,
) -> Clusters {
    let opts = format!(
        "-c config_file={0}/postgresql.conf -c hba_file={0}/pg_hba.conf -c listen_addresses={address} -c port={port} -c unix_socket_directories={1}",
        dir.display(),
        socket.display()
    );
    let stop = pg_ctl_start(data, &opts, log);
    let (s, p) = (socket.display().to_string(), port.to_string());
    ok(as_postgres(
        "sh",
        &[&dir.join("init-replication.sh").display().to_string()],
        &[
            ("POSTGRES_USER", "postgres"),
            ("POSTGRES_DB", "postgres"),
            ("PGHOST", &s),
            ("PGPORT", &p),
            ("STACKC_REPLICATION_PASSWORD", password),
        ],
    ));
    stop
}

#[test]
fn streaming_standby_clones_streams_and_promotes() {
    if !PG_PROGRAMS.iter().all(|p| require(p)) || !require("gosu") || !require("runuser") {
        return;
    }
    let tmp = scratch();
    let stack = tmp.path().join("replicated.stack");
    fs::write(&stack, STREAMING_STACK).unwrap_or_else(|e| panic!("{e}"));
    let compilation = stackc::compile(STREAMING_STACK, &options(&stack));
    assert!(!compilation.has_errors(), "{:?}", compilation.diagnostics);
    let out = tmp.path().join("out");
    write_artifacts(&compilation, &out);
    let primary_dir = out.join("pair/db/one");
    let standby_dir = out.join("pair/db/two");
    let compose = read(&out.join("pair/compose/one.yml"));
    assert!(
        compose.contains("127.0.0.41:25441:5432"),
        "the primary is published on its host's address:\n{compose}"
    );
    for f in [&primary_dir, &standby_dir] {
        for name in ["postgresql.conf", "pg_hba.conf"] {
            assert!(f.join(name).exists(), "{}/{name}", f.display());
        }
    }
    let password = "s3cret-'quoted\"-pw";
    for a in &compilation.artifacts {
        assert!(!a.contents.contains(password), "{}", a.path);
    }
    own(tmp.path());

    // The primary, as the image starts it: initdb, the role script through psql,
    // then the server with the generated config.
    let primary = tmp.path().join("primary");
    initdb(&primary);
    let sock_p = tmp.path().join("sp");
    let sock_s = tmp.path().join("ss");
    for s in [&sock_p, &sock_s] {
        fs::create_dir_all(s).unwrap_or_else(|e| panic!("{e}"));
    }
    own(tmp.path());
    let standby = tmp.path().join("standby");
    let _stop = start_primary(
        &primary_dir,
        &primary,
        &sock_p,
        ("127.0.0.41", 25441),
        password,
        &tmp.path().join("primary.log"),
    );
    query(
        &sock_p,
        25441,
        "CREATE TABLE t (v text); INSERT INTO t VALUES ('before')",
    );

    // The standby, as its container starts it: the script as root, which owns
    // the data directory, drops to postgres and clones the primary.
    let start_standby = |log: &Path| {
        let log_file = fs::File::create(log).unwrap_or_else(|e| panic!("{e}"));
        let mut script = Command::new(if is_root() { "env" } else { "sh" });
        if is_root() {
            script.arg("sh");
        }
        let child = script
            .arg(standby_dir.join("standby.sh"))
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "port=25442",
                "-c",
                &format!("unix_socket_directories={}", sock_s.display()),
            ])
            .env("PGDATA", &standby)
            .env("STACKC_REPLICATION_PASSWORD", password)
            .stdout(log_file.try_clone().unwrap_or_else(|e| panic!("{e}")))
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("standby.sh: {e}"));
        Running(child, standby.clone())
    };
    let streaming = |log: &Path, child: &mut Running| {
        let standby_log = || fs::read_to_string(log).unwrap_or_default();
        wait_for(
            "the standby streams from the primary",
            60,
            || {
                if let Ok(Some(status)) = child.0.try_wait() {
                    panic!("standby.sh exited ({status}):\n{}", standby_log());
                }
                // pg_basebackup's own WAL stream counts until the standby runs.
                psql(
                    &sock_p,
                    25441,
                    "SELECT state FROM pg_stat_replication WHERE application_name = 'two'",
                )
                .stdout
                .starts_with(b"streaming")
                    && psql(&sock_s, 25442, "SELECT pg_is_in_recovery()")
                        .stdout
                        .starts_with(b"t")
            },
            standby_log,
        );
    };
    let slog = tmp.path().join("standby.log");
    let mut child = start_standby(&slog);
    streaming(&slog, &mut child);
    let standby_log = || fs::read_to_string(&slog).unwrap_or_default();
    assert!(
        standby.join("standby.signal").exists(),
        "pg_basebackup -R wrote standby.signal"
    );
    assert_eq!(query(&sock_s, 25442, "SELECT pg_is_in_recovery()"), "t");
    query(&sock_p, 25441, "INSERT INTO t VALUES ('after')");
    wait_for(
        "the standby replays the primary's writes",
        20,
        || {
            psql(
                &sock_s,
                25442,
                "SELECT string_agg(v, ',' ORDER BY v) FROM t",
            )
            .stdout
            .starts_with(b"after,before")
        },
        standby_log,
    );
    assert!(standby_log().contains("cloning the primary"));

    // A restart keeps the data directory: no second clone, and it streams again.
    drop(child);
    let slog2 = tmp.path().join("standby-restart.log");
    let mut child = start_standby(&slog2);
    streaming(&slog2, &mut child);
    let restart_log = fs::read_to_string(&slog2).unwrap_or_default();
    assert!(
        !restart_log.contains("cloning the primary"),
        "a restarted standby does not clone again:\n{restart_log}"
    );
    assert_eq!(query(&sock_s, 25442, "SELECT count(*) FROM t"), "2");

    let refused = psql(&sock_s, 25442, "INSERT INTO t VALUES ('standby')");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("read-only transaction"),
        "a standby refuses writes: {refused:?}"
    );

    // Promotion: the standby takes writes.
    let sd = standby.display().to_string();
    ok(as_postgres("pg_ctl", &["-D", &sd, "-w", "promote"], &[]));
    assert_eq!(query(&sock_s, 25442, "SELECT pg_is_in_recovery()"), "f");
    query(&sock_s, 25442, "INSERT INTO t VALUES ('promoted')");
    assert_eq!(query(&sock_s, 25442, "SELECT count(*) FROM t"), "3");
}
