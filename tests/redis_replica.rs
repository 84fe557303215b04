//! Redis replication on hosts (`ha = replica`), run with the real redis-server:
//! the master and the replica start with exactly the commands of their compose
//! files (only the listening address, port and directory are set for loopback),
//! the replica syncs from the master over its host address and announces its own
//! address, serves reads, refuses writes, and takes writes once promoted with
//! `REPLICAOF NO ONE`.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_norway::Value;

use crate::support::{artifact, options, require, Running};

const STACK: &str = r#"
stack replicated

service cache: redis {
  port redis { container = 6379  host = 26381 }
}

topology pair {
  host one {
    address = "127.0.0.51"
    run = [cache]
  }
  # On loopback, the replica's connections come from 127.0.0.1.
  host two {
    address = "127.0.0.1"
    run = [cache]
  }
  override cache { ha = replica }
}
"#;

/// The command of a service in a generated compose file.
fn compose_command(text: &str, service: &str) -> Vec<String> {
    let v: Value = serde_norway::from_str(text).unwrap_or_else(|e| panic!("{e}"));
    v["services"][service]["command"]
        .as_sequence()
        .unwrap_or_else(|| panic!("{service} has a command in exec form:\n{text}"))
        .iter()
        .map(|a| a.as_str().unwrap_or_default().to_string())
        .collect()
}

/// Starts the compose command's redis-server on a loopback address.
fn start(command: &[String], bind: &str, port: u16, dir: &Path) -> Running {
    assert_eq!(command.first().map(String::as_str), Some("redis-server"));
    let child = Command::new("redis-server")
        .args(&command[1..])
        .args(["--bind", bind, "--port", &port.to_string(), "--save", ""])
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("redis-server: {e}"));
    Running(child)
}

fn cli(host: &str, port: u16, args: &[&str]) -> String {
    let o = Command::new("redis-cli")
        .args(["-h", host, "-p", &port.to_string()])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("redis-cli: {e}"));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within 20 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn redis_replica_syncs_serves_reads_and_promotes() {
    if !require("redis-server") || !require("redis-cli") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let stack = tmp.path().join("replicated.stack");
    let compilation = stackc::compile(STACK, &options(&stack));
    assert!(!compilation.has_errors(), "{:?}", compilation.diagnostics);
    let file = |host: &str| artifact(&compilation, &format!("pair/compose/{host}.yml"));
    let (one, two) = (file("one"), file("two"));
    assert!(
        one.contains("127.0.0.51:26381:6379"),
        "the master is published on its host's address:\n{one}"
    );
    let master_cmd = compose_command(&one, "cache");
    let replica_cmd = compose_command(&two, "cache");
    assert!(!master_cmd.contains(&"--replicaof".to_string()));

    let (dm, dr) = (tmp.path().join("m"), tmp.path().join("r"));
    for d in [&dm, &dr] {
        fs::create_dir_all(d).unwrap_or_else(|e| panic!("{e}"));
    }
    // The master listens where the replica's command says it is.
    let _master = start(&master_cmd, "127.0.0.51", 26381, &dm);
    wait_for("the master answers", || {
        cli("127.0.0.51", 26381, &["ping"]).contains("PONG")
    });
    cli("127.0.0.51", 26381, &["set", "k", "before"]);
    let _replica = start(&replica_cmd, "127.0.0.1", 26382, &dr);
    wait_for("the replica syncs", || {
        cli("127.0.0.1", 26382, &["info", "replication"]).contains("master_link_status:up")
    });
    let info = cli("127.0.0.51", 26381, &["info", "replication"]);
    assert!(
        info.contains("slave0:ip=127.0.0.1,port=26381"),
        "the replica announces its host's address and published port:\n{info}"
    );
    cli("127.0.0.51", 26381, &["set", "k", "after"]);
    wait_for("the replica replays the master's writes", || {
        cli("127.0.0.1", 26382, &["get", "k"]).trim() == "after"
    });
    let refused = cli("127.0.0.1", 26382, &["set", "k", "replica"]);
    assert!(refused.contains("READONLY"), "{refused}");

    // Promotion: the replica takes writes.
    assert!(cli("127.0.0.1", 26382, &["replicaof", "no", "one"]).contains("OK"));
    assert!(cli("127.0.0.1", 26382, &["set", "k", "promoted"]).contains("OK"));
    assert_eq!(cli("127.0.0.1", 26382, &["get", "k"]).trim(), "promoted");
}
