//! A service's `postgresql { ... }` settings, as PostgreSQL reads them where
//! each HA mode writes them: a single server's command line (as
//! `docker-compose config` resolves it) and a streaming node's generated
//! `postgresql.conf`. `postgres -C NAME` prints the value the server would
//! run with, in the setting's base unit, without starting it. (Patroni's are
//! read back from a running cluster in `tests/patroni_failover.rs`.)

use std::path::Path;
use std::process::Command;

use crate::postgres_streaming::{as_postgres, ok, scratch, PG_PROGRAMS};
use crate::support::{options, require, write_artifacts, yaml11};

const STACK: &str = r#"stack tuned

secret db_password
secret replication_password

service db: postgres {
  password = secret.db_password
  postgresql {
    max_connections = 200
    shared_buffers = 1Gi
    wal_keep_size = 512Mi
    log_min_duration_statement = 1m
    synchronous_commit = local
    application_name = "it's a \\ te#st $HOME"
    jit = false
  }
}

topology one {
  host a {
    address = "10.0.0.1"
    run = [db]
  }
}

topology pair {
  host a {
    address = "10.0.0.1"
    run = [db]
  }
  host b {
    address = "10.0.0.2"
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

/// Each setting as `postgres -C` prints it: memory in the setting's unit
/// (8 kB pages for shared_buffers, MB for wal_keep_size), time in ms.
const EXPECTED: [(&str, &str); 7] = [
    ("max_connections", "200"),
    ("shared_buffers", "131072"),
    ("wal_keep_size", "512"),
    ("log_min_duration_statement", "60000"),
    ("synchronous_commit", "local"),
    ("application_name", "it's a \\ te#st $HOME"),
    ("jit", "off"),
];

/// What the server in `data` would run with, for each expected setting.
fn effective(data: &Path, args: &[String]) -> Vec<(String, String)> {
    let data = data.display().to_string();
    EXPECTED
        .iter()
        .map(|(name, _)| {
            let mut line: Vec<&str> = vec!["-D", &data];
            line.extend(args.iter().map(String::as_str));
            line.extend(["-C", name]);
            let value = ok(as_postgres("postgres", &line, &[]));
            (name.to_string(), value.trim_end_matches('\n').to_string())
        })
        .collect()
}

fn expected() -> Vec<(String, String)> {
    EXPECTED
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn settings_reach_postgres_as_written() {
    if !PG_PROGRAMS.iter().chain(&["runuser"]).all(|p| require(p)) {
        return;
    }
    let tmp = scratch();
    let compilation = stackc::compile(STACK, &options(&tmp.path().join("tuned.stack")));
    assert!(!compilation.has_errors(), "{:?}", compilation.diagnostics);
    let out = tmp.path().join("out");
    write_artifacts(&compilation, &out);
    let data = tmp.path().join("data");
    let d = data.display().to_string();
    ok(as_postgres(
        "initdb",
        &["-D", &d, "-U", "postgres", "-A", "trust", "--no-sync"],
        &[],
    ));

    // A streaming node: its generated postgresql.conf, as compose starts it.
    let conf = out.join("pair/db/a/postgresql.conf");
    let args = ["-c".to_string(), format!("config_file={}", conf.display())];
    assert_eq!(effective(&data, &args), expected(), "{}", conf.display());

    // A single server: the command compose runs, after its interpolation.
    if !require("docker-compose") {
        return;
    }
    let r = Command::new("docker-compose")
        .args(["-f", "a.yml", "config"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DB_PASSWORD", "x")
        .current_dir(out.join("one/compose"))
        .output()
        .unwrap_or_else(|e| panic!("docker-compose: {e}"));
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let doc = yaml11(&r.stdout);
    // `config` prints a literal `$` as `$$`.
    let command: Vec<String> = doc["services"]["db"]["command"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|w| w.as_str().unwrap_or_default().replace("$$", "$"))
        .collect();
    assert_eq!(command.first().map(String::as_str), Some("postgres"));
    assert_eq!(effective(&data, &command[1..]), expected(), "{command:?}");
}
