//! PostgreSQL over TLS (the stdlib kind `postgres_tls`), run with the real
//! programs. The certificates are made by a CA of the test's and placed where
//! the compose file mounts them from (`./postgres/tls` beside the .stack
//! file); every container path of the generated files is mapped to the
//! test's. The container's entrypoint line runs as root with the image's
//! entrypoint replaced by a recorder: it copies the key so that PostgreSQL's
//! user owns it with mode 0600, and hands the command on unchanged. Then:
//!
//! - a single server started with its compose command's settings, its
//!   pg_hba.conf as the image writes it then stackc's initdb script leaves
//!   it, answers the client URL (`sslmode=require`) over TLS, and with
//!   `sslmode=verify-full` against the CA (it serves the mounted
//!   certificate), and refuses a client without TLS;
//! - a primary and a standby started as streaming starts them: the standby
//!   clones and streams over TLS (the primary's walsender is encrypted), a
//!   client's connection without TLS is refused (`hostssl`), and the URL's is
//!   taken.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use serde_norway::Value;

use crate::postgres_streaming::{
    as_postgres, initdb, is_root, ok, own, pg_ctl_start, psql, query, run, scratch, start_primary,
    wait_for, Running, PG_PROGRAMS,
};
use stackc::plan::TLS_KEY;

use crate::redis_tls_replica::certificates;
use crate::support::{options, read, require, write_artifacts};

const PASSWORD: &str = "tls-db-secret";

const STACK: &str = r#"
stack tlsdb

secret db_password
secret replication_password

service db: postgres_tls {
  password = secret.db_password
  database = "postgres"
  port pg { container = 5432  host = 25451 }
}

service app {
  image = "app:1"
  env { DATABASE_URL = db.url }
}

topology single {
  host main {
    address = "127.0.0.51"
    run = [db, app]
  }
}

# On loopback, connections to 127.0.0.52 come from 127.0.0.1.
topology pair {
  host one {
    address = "127.0.0.52"
    run = [db]
  }
  host two {
    address = "127.0.0.1"
    run = [db, app]
  }
  override db {
    ha {
      mode = streaming
      replication_password = secret.replication_password
    }
  }
}
"#;

/// The generated files, and the certificates where the compose files mount
/// them from.
struct Built {
    tmp: tempfile::TempDir,
    out: std::path::PathBuf,
}

impl Built {
    fn tls(&self) -> std::path::PathBuf {
        self.tmp.path().join("postgres/tls")
    }

    /// The compose service `name` of a topology's host file.
    fn service(&self, file: &str, name: &str) -> Value {
        let doc: Value = serde_norway::from_str(&read(&self.out.join(file)))
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        doc["services"][name].clone()
    }

    /// A container path as the test's: the mounted certificates, and the
    /// key's copy beside them.
    fn mapped(&self, text: &str) -> String {
        text.replace(TLS_KEY, &self.key().display().to_string())
            .replace("/tls/", &format!("{}/", self.tls().display()))
    }

    fn key(&self) -> std::path::PathBuf {
        self.tmp.path().join("stackc-server.key")
    }
}

/// A config of `postgres_tls` made to start here: a test CA's certificate
/// and key in `dir` (the key as the entrypoint leaves it: postgres's, 0600),
/// the config's container paths replaced by theirs.
pub(crate) fn with_test_certificates(config: &str, dir: &Path) -> String {
    let tls = dir.join("tls");
    fs::create_dir_all(&tls).unwrap_or_else(|e| panic!("{e}"));
    certificates(&tls, "server", &["127.0.0.1"]);
    let key = dir.join("stackc-server.key");
    fs::copy(tls.join("server.key"), &key).unwrap_or_else(|e| panic!("{e}"));
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap_or_else(|e| panic!("{e}"));
    own(dir);
    config
        .replace(TLS_KEY, &key.display().to_string())
        .replace("/tls/", &format!("{}/", tls.display()))
}

fn build() -> Built {
    let tmp = scratch();
    let stack = tmp.path().join("tlsdb.stack");
    fs::write(&stack, STACK).unwrap_or_else(|e| panic!("{e}"));
    let compilation = stackc::compile(STACK, &options(&stack));
    assert!(!compilation.has_errors(), "{:?}", compilation.diagnostics);
    let out = tmp.path().join("out");
    write_artifacts(&compilation, &out);
    let tls = tmp.path().join("postgres/tls");
    fs::create_dir_all(&tls).unwrap_or_else(|e| panic!("{e}"));
    certificates(&tls, "server", &["127.0.0.51", "127.0.0.52", "127.0.0.1"]);
    own(tmp.path());
    Built { tmp, out }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_sequence()
        .into_iter()
        .flatten()
        .map(|s| s.as_str().unwrap_or_default().to_string())
        .collect()
}

/// Runs the container's entrypoint as its root would, the image's
/// entrypoint replaced by one that records its arguments: the key is
/// copied for PostgreSQL's user, and the command handed on.
fn run_entrypoint(b: &Built, db: &Value) {
    let entrypoint = strings(&db["entrypoint"]);
    let command = strings(&db["command"]);
    assert_eq!(entrypoint[..2], ["sh", "-c"], "{entrypoint:?}");
    assert!(
        strings(&db["volumes"]).contains(&"../../../postgres/tls:/tls:ro".to_string()),
        "the certificates are mounted from beside the .stack file: {db:?}"
    );
    let bin = b.tmp.path().join("bin");
    fs::create_dir_all(&bin).unwrap_or_else(|e| panic!("{e}"));
    let args = b.tmp.path().join("args");
    let recorder = bin.join("docker-entrypoint.sh");
    fs::write(
        &recorder,
        format!("#!/bin/sh\nprintf '%s\\n' \"$@\" > {}\n", args.display()),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    fs::set_permissions(&recorder, fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("{e}"));
    let _ = fs::remove_file(b.key());
    // Compose reads `$$` as a `$` (docker-compose config shows the line so).
    let line = entrypoint[2].replace("$$", "$");
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg(b.mapped(&line))
        .args(&entrypoint[3..])
        .args(&command)
        .env(
            "PATH",
            format!(
                "{}:{}",
                bin.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        );
    ok(c);
    let handed: Vec<String> = read(&args).lines().map(str::to_string).collect();
    assert_eq!(
        handed, command,
        "the command reaches the image's entrypoint"
    );
    let meta = fs::metadata(b.key()).unwrap_or_else(|e| panic!("the key's copy: {e}"));
    let postgres_uid = ok({
        let mut c = Command::new("id");
        c.args(["-u", "postgres"]);
        c
    });
    assert_eq!(
        meta.uid().to_string(),
        postgres_uid.trim(),
        "owned by postgres"
    );
    assert_eq!(meta.mode() & 0o777, 0o600, "readable by its owner only");
}

/// Whether the test can run: the programs, and root (to copy the key for
/// another user, as the container's root does).
fn can_run() -> bool {
    let programs = PG_PROGRAMS.iter().all(|p| require(p))
        && require("openssl")
        && require("gosu")
        && require("runuser");
    if programs && !is_root() {
        assert!(
            std::env::var("CI").is_err(),
            "the PostgreSQL TLS tests run as root under CI=true"
        );
        return false;
    }
    programs
}

/// The psql of a client URL, on `sql`.
fn psql_url(url: &str, sql: &str) -> std::process::Output {
    run(as_postgres(
        "psql",
        &[url, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql],
        &[],
    ))
}

/// The URL's client, without TLS, is refused by pg_hba.conf.
fn refused_without_tls(url: &str) {
    let plain = psql_url(
        &url.replace("sslmode=require", "sslmode=disable"),
        "SELECT 1",
    );
    assert!(
        !plain.status.success() && String::from_utf8_lossy(&plain.stderr).contains("no encryption"),
        "a client without TLS is refused: {plain:?}"
    );
}

const OVER_TLS: &str = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()";

/// The app's DATABASE_URL in a compose file, its password filled in and its
/// host and port made the test's.
fn client_url(b: &Built, file: &str, from: &str, to: &str) -> String {
    let app = b.service(file, "app");
    let url = app["environment"]["DATABASE_URL"]
        .as_str()
        .unwrap_or_default()
        .replace("${DB_PASSWORD:?secret db_password is not set}", PASSWORD)
        .replace(from, to);
    assert!(url.ends_with("?sslmode=require"), "{url}");
    url
}

#[test]
fn single_postgres_tls_serves_the_url_over_tls() {
    if !can_run() {
        return;
    }
    let b = build();
    let db = b.service("single/compose/main.yml", "db");
    run_entrypoint(&b, &db);
    let command = strings(&db["command"]);
    assert_eq!(command[0], "postgres");

    // The server, with the command's settings and the image's pg_hba line
    // for the network.
    let data = b.tmp.path().join("data");
    initdb(&data);
    let hba = data.join("pg_hba.conf");
    let mut lines = read(&hba);
    lines.push_str("host all all all scram-sha-256\n");
    fs::write(&hba, lines).unwrap_or_else(|e| panic!("{e}"));
    // Then the image runs the initdb scripts: stackc's makes them `hostssl`.
    assert!(
        strings(&db["volumes"])
            .contains(&"../db/hostssl.sh:/docker-entrypoint-initdb.d/stackc-hostssl.sh:ro".into()),
        "{db:?}"
    );
    let d = data.display().to_string();
    ok(as_postgres(
        "sh",
        &[&b.out.join("single/db/hostssl.sh").display().to_string()],
        &[("PGDATA", &d)],
    ));
    let hba_text = read(&hba);
    assert!(
        hba_text
            .lines()
            .filter(|l| l.starts_with("host"))
            .all(|l| l.starts_with("hostssl")),
        "{hba_text}"
    );
    let socket = b.tmp.path().join("socket");
    fs::create_dir_all(&socket).unwrap_or_else(|e| panic!("{e}"));
    own(b.tmp.path());
    let settings: Vec<String> = command[1..]
        .chunks(2)
        .map(|c| format!("{} {}", c[0], b.mapped(&c[1])))
        .collect();
    let opts = format!(
        "{} -c listen_addresses=127.0.0.51 -c port=25451 -c unix_socket_directories={}",
        settings.join(" "),
        socket.display()
    );
    let _stop = pg_ctl_start(&data, &opts, &b.tmp.path().join("log"));
    query(
        &socket,
        25451,
        &format!("ALTER USER postgres PASSWORD '{PASSWORD}'"),
    );

    let url = client_url(
        &b,
        "single/compose/main.yml",
        "@db:5432/",
        "@127.0.0.51:25451/",
    );
    let o = psql_url(&url, OVER_TLS);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "t", "over TLS");
    let verified = url.replace(
        "sslmode=require",
        &format!(
            "sslmode=verify-full&sslrootcert={}",
            b.tls().join("ca.crt").display()
        ),
    );
    let o = psql_url(&verified, OVER_TLS);
    assert!(
        o.status.success(),
        "the mounted certificate, verified: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    refused_without_tls(&url);
}

#[test]
fn streaming_postgres_tls_replicates_over_tls_and_refuses_plain_clients() {
    if !can_run() {
        return;
    }
    let b = build();
    run_entrypoint(&b, &b.service("pair/compose/one.yml", "db"));
    let one = b.out.join("pair/db/one");
    let two = b.out.join("pair/db/two");
    for dir in [&one, &two] {
        let conf = dir.join("postgresql.conf");
        let text = read(&conf);
        assert!(text.contains("ssl = 'on'"), "{text}");
        fs::write(&conf, b.mapped(&text)).unwrap_or_else(|e| panic!("{e}"));
        let hba = read(&dir.join("pg_hba.conf"));
        assert!(
            hba.lines()
                .filter(|l| l.starts_with("host"))
                .all(|l| l.starts_with("hostssl")),
            "TCP only over TLS:\n{hba}"
        );
    }
    let primary = b.tmp.path().join("primary");
    initdb(&primary);
    let (sock_p, sock_s) = (b.tmp.path().join("sp"), b.tmp.path().join("ss"));
    for s in [&sock_p, &sock_s] {
        fs::create_dir_all(s).unwrap_or_else(|e| panic!("{e}"));
    }
    own(b.tmp.path());
    let _stop = start_primary(
        &one,
        &primary,
        &sock_p,
        ("127.0.0.52", 25451),
        PASSWORD,
        &b.tmp.path().join("primary.log"),
    );
    query(
        &sock_p,
        25451,
        &format!("ALTER USER postgres PASSWORD '{PASSWORD}'"),
    );

    // The standby, as its container starts it (as root).
    let standby = b.tmp.path().join("standby");
    let slog = b.tmp.path().join("standby.log");
    let log_file = fs::File::create(&slog).unwrap_or_else(|e| panic!("{e}"));
    let child = Command::new("sh")
        .arg(two.join("standby.sh"))
        .args(["-c", "listen_addresses=127.0.0.1", "-c", "port=25452"])
        .arg("-c")
        .arg(format!("unix_socket_directories={}", sock_s.display()))
        .env("PGDATA", &standby)
        .env("STACKC_REPLICATION_PASSWORD", PASSWORD)
        .stdout(log_file.try_clone().unwrap_or_else(|e| panic!("{e}")))
        .stderr(log_file)
        .spawn()
        .unwrap_or_else(|e| panic!("standby.sh: {e}"));
    let mut child = Running(child, standby.clone());
    let standby_log = || fs::read_to_string(&slog).unwrap_or_default();
    let replicated = "SELECT s.ssl FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid) WHERE r.application_name = 'two' AND r.state = 'streaming'";
    wait_for(
        "the standby streams from the primary over TLS",
        60,
        || {
            if let Ok(Some(status)) = child.0.try_wait() {
                panic!("standby.sh exited ({status}):\n{}", standby_log());
            }
            // The clone's own WAL stream counts until the standby runs.
            psql(&sock_p, 25451, replicated).stdout.starts_with(b"t")
                && psql(&sock_s, 25452, "SELECT pg_is_in_recovery()")
                    .stdout
                    .starts_with(b"t")
        },
        standby_log,
    );

    let url = client_url(
        &b,
        "pair/compose/two.yml",
        "@127.0.0.52:25451/",
        "@127.0.0.52:25451/",
    );
    refused_without_tls(&url);
    let o = psql_url(&url, OVER_TLS);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "t");
    drop(child);
}
