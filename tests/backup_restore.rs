//! Backups end to end, with the real PostgreSQL and pgBackRest: a server runs
//! with the archiving settings of the generated compose command and the
//! generated `pgbackrest.conf`; the generated `backup.sh` takes a full backup;
//! rows are written after it and their WAL is archived; the server is killed
//! and its data directory removed; the generated `restore.sh` restores into a
//! fresh one, and the restored server starts as a primary with every row.
//! Then again to a point in time between two batches of rows: the first batch
//! is there, the second is not. Both for a single server and for a streaming
//! primary (its generated postgresql.conf and pg_hba.conf too).
//!
//! The files run as they are, but for their paths (the data directory, the
//! repository and the socket directory are the test's own) and the server's
//! listening address (none: the socket only).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::postgres_streaming::{as_postgres, ok, own, run, scratch, PG_PROGRAMS};
use crate::s3_store::{Ports, S3Store};
use crate::support::{read, require, root, wait_for};

/// The store of tests/cases/backups-s3.stack (its endpoint's port).
const STORE: Ports = Ports {
    endpoint: 19443,
    moto: 19000,
};

/// The server, stopped at once when dropped, even when an assertion fails.
struct Server(Child, String);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = run(as_postgres(
            "pg_ctl",
            &["-D", &self.1, "-m", "immediate", "stop"],
            &[],
        ));
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn psql(socket: &str, user: &str, sql: &str) -> String {
    ok(as_postgres(
        "psql",
        &[
            "-h",
            socket,
            "-U",
            user,
            "-d",
            "postgres",
            "-XAtq",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ],
        &[],
    ))
    .trim()
    .to_string()
}

/// The server's `-c` settings, from the generated compose command.
fn settings(compose: &str, service: &str) -> Vec<String> {
    let doc: serde_norway::Value =
        serde_norway::from_str(compose).unwrap_or_else(|e| panic!("{e}"));
    let command: Vec<String> = doc["services"][service]["command"]
        .as_sequence()
        .unwrap_or_else(|| panic!("db has a command"))
        .iter()
        .filter_map(|w| w.as_str().map(str::to_string))
        .collect();
    assert_eq!(command.first().map(String::as_str), Some("postgres"));
    command[1..].to_vec()
}

/// The environment of the server and the scripts: the config, and for a
/// bucket its credentials and the store's certificate.
type Env = [(&'static str, String)];

fn env_of(env: &Env) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

fn start(data: &str, socket: &str, settings: &[String], env: &Env) -> Server {
    let mut args = vec!["-D".to_string(), data.to_string()];
    args.extend(settings.iter().cloned());
    args.extend(["-c".into(), "listen_addresses=".into()]);
    args.extend(["-c".into(), format!("unix_socket_directories={socket}")]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let child = as_postgres("postgres", &args, &env_of(env))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("postgres: {e}"));
    let server = Server(child, data.to_string());
    wait_for(
        "the server accepts connections",
        Duration::from_secs(30),
        || {
            run(as_postgres("pg_isready", &["-h", socket, "-q"], &[]))
                .status
                .success()
        },
    );
    server
}

fn script(path: &Path, args: &[&str], env: &Env) {
    let mut c = Command::new("sh");
    c.arg(path).args(args).envs(env_of(env));
    ok(c);
}

/// Where a PostgreSQL service with `backup` is, in a stack's output.
struct Case {
    stack: &'static str,
    topology: &'static str,
    service: &'static str,
    /// Its superuser (`POSTGRES_USER`).
    user: &'static str,
    /// The directory of its streaming config (`config_file`, `hba_file`),
    /// when it has one.
    streaming: Option<&'static str>,
    /// The bucket of its repository, when it is in one.
    bucket: Option<&'static str>,
}

#[test]
fn a_restore_brings_back_every_archived_row_and_the_server_starts() {
    exercise(&Case {
        stack: "tests/cases/backups.stack",
        topology: "single",
        service: "db",
        user: "shop",
        streaming: None,
        bucket: None,
    });
}

/// The same with the repository in an S3-compatible bucket: the generated
/// settings and scripts, the credentials from the environment, as the
/// compose file passes them.
#[test]
fn a_bucket_holds_the_backups_and_the_archive() {
    exercise(&Case {
        stack: "tests/cases/backups-s3.stack",
        topology: "single",
        service: "db",
        user: "shop",
        streaming: None,
        bucket: Some("shop-backups"),
    });
}

/// The same with streaming replication: the primary, with its generated
/// postgresql.conf and pg_hba.conf beside the archiving settings.
#[test]
fn a_streaming_primary_restores_the_same_way() {
    exercise(&Case {
        stack: "examples/synaxic.stack",
        topology: "main-replica",
        service: "postgres",
        user: "synaxic",
        streaming: Some("main-replica/postgres/main"),
        bucket: None,
    });
}

fn exercise(case: &Case) {
    if !PG_PROGRAMS.iter().all(|p| require(p)) || !require("pgbackrest") || !require("gosu") {
        return;
    }
    let path = root().join(case.stack);
    let c = stackc::compile(read(&path), &crate::support::options(&path));
    assert!(!c.has_errors(), "{:?}", c.diagnostics);
    let file = |p: &str| crate::support::artifact(&c, p);
    let (topology, service, user) = (case.topology, case.service, case.user);

    let tmp = scratch();
    let dir = tmp.path();
    let at = |sub: &str| dir.join(sub).display().to_string();
    for sub in ["repo", "run", "conf", "lock"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap_or_else(|e| panic!("{e}"));
    }
    let adapt = |text: String| {
        text.replace("/var/lib/postgresql/data/pgdata", &at("pgdata"))
            .replace("/var/lib/pgbackrest", &at("repo"))
            .replace("/var/run/postgresql", &at("run"))
            .replace("/etc/postgresql/stackc", &at("conf"))
    };
    let write = |name: &str, text: String| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap_or_else(|e| panic!("{e}"));
        p
    };
    let backup_dir = format!("{topology}/{service}/backup");
    let config = write(
        "pgbackrest.conf",
        adapt(file(&format!("{backup_dir}/pgbackrest.conf"))),
    );
    let mut env = vec![
        ("PGBACKREST_CONFIG", config.display().to_string()),
        // pgBackRest's locks are per stanza, in /tmp by default: the tests'
        // servers share a stanza name and run at once.
        ("PGBACKREST_LOCK_PATH", at("lock")),
    ];
    let backup = write("backup.sh", adapt(file(&format!("{backup_dir}/backup.sh"))));
    let restore = write(
        "restore.sh",
        adapt(file(&format!("{backup_dir}/restore.sh"))),
    );
    if let Some(streaming) = case.streaming {
        for f in ["postgresql.conf", "pg_hba.conf"] {
            let text = file(&format!("{streaming}/{f}"));
            // A `postgres_tls` server's certificates, made for the test.
            let text = if text.contains("ssl = 'on'") {
                crate::postgres_tls::with_test_certificates(&text, dir)
            } else {
                text
            };
            write(&format!("conf/{f}"), text);
        }
    }
    own(dir);
    // The store runs as root; its certificate is the postgres user's to read.
    let store = case
        .bucket
        .map(|bucket| S3Store::start(dir, bucket, STORE).unwrap_or_else(|| panic!("no S3 store")));
    if let Some(store) = &store {
        env.extend([
            ("PGBACKREST_REPO1_S3_KEY", "test-access-key".to_string()),
            (
                "PGBACKREST_REPO1_S3_KEY_SECRET",
                "test-secret-key".to_string(),
            ),
            // The store's own certificate: a store with a public one needs
            // nothing here.
            (
                "PGBACKREST_REPO1_STORAGE_CA_FILE",
                store.ca.display().to_string(),
            ),
        ]);
        own(dir);
    }
    let env = env.as_slice();
    let settings: Vec<String> = settings(&file(&format!("{topology}/compose/main.yml")), service)
        .into_iter()
        .map(adapt)
        .collect();
    assert!(
        settings
            .iter()
            .any(|s| s.starts_with("archive_command=pgbackrest ")),
        "{settings:?}"
    );
    assert_eq!(
        settings.iter().any(|s| s.starts_with("config_file=")),
        case.streaming.is_some(),
        "{settings:?}"
    );
    let (data, socket) = (at("pgdata"), at("run"));
    let sql = |q: &str| psql(&socket, user, q);

    // The server as the image's initdb makes it: the superuser, local
    // connections trusted.
    ok(as_postgres(
        "initdb",
        &["-D", &data, "-U", user, "-A", "trust", "--no-sync"],
        &[],
    ));
    let server = start(&data, &socket, &settings, env);
    sql("CREATE TABLE orders (id int PRIMARY KEY)");
    script(&backup, &[], env);

    // Rows after the backup, acknowledged, and their WAL archived: a batch,
    // a moment, another batch.
    sql("INSERT INTO orders SELECT generate_series(1, 100)");
    std::thread::sleep(Duration::from_millis(1100));
    let moment =
        sql("SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'");
    std::thread::sleep(Duration::from_millis(1100));
    sql("INSERT INTO orders SELECT generate_series(101, 200)");
    let segment = sql("SELECT pg_walfile_name(pg_switch_wal() - 1)");
    wait_for(
        "the last segment is archived",
        Duration::from_secs(30),
        || sql("SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver") >= segment,
    );
    assert_eq!(sql("SELECT failed_count FROM pg_stat_archiver"), "0");

    // The server is lost, and its data with it.
    drop(server);
    std::fs::remove_dir_all(&data).unwrap_or_else(|e| panic!("{e}"));

    // The latest: every archived row, and a primary again that takes writes.
    let server = restore_and_start(&restore, &[], &data, &socket, user, &settings, env);
    assert_eq!(sql("SELECT count(*) FROM orders"), "200");
    sql("INSERT INTO orders VALUES (201)");
    drop(server);
    std::fs::remove_dir_all(&data).unwrap_or_else(|e| panic!("{e}"));

    // A point in time: the first batch only.
    let _server = restore_and_start(&restore, &[&moment], &data, &socket, user, &settings, env);
    assert_eq!(sql("SELECT count(*), max(id) FROM orders"), "100|100");
    let local = dir.join(format!("repo/archive/{service}")).is_dir();
    match (&store, case.bucket) {
        (Some(store), Some(bucket)) => {
            assert!(!local, "nothing in the local repository");
            let keys = store.keys(bucket, "shop/db/");
            for part in ["archive", "backup"] {
                let key = format!("<Key>shop/db/{part}/{service}/");
                assert!(keys.contains(&key), "{key} in the bucket: {keys}");
            }
        }
        _ => assert!(local, "the repository holds the archive"),
    }
}

fn restore_and_start(
    restore: &Path,
    args: &[&str],
    data: &str,
    socket: &str,
    user: &str,
    settings: &[String],
    env: &Env,
) -> Server {
    script(restore, args, env);
    let server = start(data, socket, settings, env);
    wait_for("recovery ends", Duration::from_secs(30), || {
        psql(socket, user, "SELECT pg_is_in_recovery()") == "f"
    });
    server
}

/// Redis: the generated `backup.sh` copies a server's dataset, with its
/// password, while it runs; the server and its data are lost; the generated
/// `restore.sh` puts the copy back, and the server, started with the stdlib
/// kind's own `--appendonly yes`, has every key, and keeps new ones.
#[test]
fn a_redis_copy_restores_every_key() {
    if !require("redis-server") || !require("redis-cli") {
        return;
    }
    let path = root().join("tests/cases/backups.stack");
    let c = stackc::compile(read(&path), &crate::support::options(&path));
    assert!(!c.has_errors(), "{:?}", c.diagnostics);
    let file = |p: &str| crate::support::artifact(&c, p);
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let dir = tmp.path();
    let at = |sub: &str| dir.join(sub).display().to_string();
    for sub in ["data", "copies"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap_or_else(|e| panic!("{e}"));
    }
    const PORT: &str = "28679";
    let adapt = |text: String| {
        text.replace("-h cache -p 6379", &format!("-h 127.0.0.1 -p {PORT}"))
            .replace("/backups", &at("copies"))
            .replace("data='/data'", &format!("data='{}'", at("data")))
    };
    let backup = dir.join("backup.sh");
    let restore = dir.join("restore.sh");
    std::fs::write(&backup, adapt(file("single/cache/backup/backup.sh")))
        .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(&restore, adapt(file("single/cache/backup/restore.sh")))
        .unwrap_or_else(|e| panic!("{e}"));
    let compose: serde_norway::Value =
        serde_norway::from_str(&file("single/compose/main.yml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        compose["services"]["cache-backup"]["profiles"][0],
        "scheduled"
    );

    let password = "s3cret-pass";
    let server = || {
        // The stdlib kind's command, with the password on standard input as
        // its start line hands it over, on the test's port and directory.
        let mut child = Command::new("redis-server")
            .args([
                "-",
                "--appendonly",
                "yes",
                "--port",
                PORT,
                "--dir",
                &at("data"),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("redis-server: {e}"));
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().unwrap_or_else(|| panic!("stdin"));
            writeln!(stdin, "requirepass \"{password}\"").unwrap_or_else(|e| panic!("{e}"));
        }
        let server = crate::support::Running(child);
        wait_for("redis answers", Duration::from_secs(10), || {
            cli(PORT, password, &["ping"]) == "PONG"
        });
        server
    };
    let redis = server();
    for i in 0..50 {
        assert_eq!(
            cli(PORT, password, &["set", &format!("k{i}"), &format!("v{i}")]),
            "OK"
        );
    }
    let mut c = Command::new("sh");
    c.arg(&backup).env("REDIS_PASSWORD", password);
    ok(c);
    let copies = std::fs::read_dir(dir.join("copies"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(copies, 1, "one copy, and no partial one left");

    // Lost: the server killed, its data removed.
    drop(redis);
    // A copy of a server that does not answer fails, and leaves nothing.
    let out = Command::new("sh")
        .arg(&backup)
        .env("REDIS_PASSWORD", password)
        .output()
        .unwrap_or_else(|e| panic!("sh: {e}"));
    assert!(!out.status.success(), "a copy of a stopped server fails");
    let after = std::fs::read_dir(dir.join("copies")).map_or(0, |d| d.count());
    assert_eq!(after, 1, "and leaves no copy");
    std::fs::remove_dir_all(dir.join("data")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::create_dir_all(dir.join("data")).unwrap_or_else(|e| panic!("{e}"));
    let mut c = Command::new("sh");
    c.arg(&restore);
    ok(c);
    let redis = server();
    assert_eq!(cli(PORT, password, &["dbsize"]), "50");
    assert_eq!(cli(PORT, password, &["get", "k49"]), "v49");
    // It keeps what it is given after the restore, across a restart.
    assert_eq!(cli(PORT, password, &["set", "after", "1"]), "OK");
    assert_eq!(cli(PORT, password, &["shutdown"]), "");
    drop(redis);
    let _redis = server();
    assert_eq!(cli(PORT, password, &["dbsize"]), "51");
}

fn cli(port: &str, password: &str, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-p", port])
        .args(args)
        .env("REDISCLI_AUTH", password)
        .output()
        .unwrap_or_else(|e| panic!("redis-cli: {e}"));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
