//! Redis users per client (`roles = per_service` on a `redis_auth`), run with
//! the real redis-server. The compose file is resolved by `docker-compose
//! config` with the secrets' values; the server starts with exactly its
//! command's shell line and environment (only the listening address and port
//! are set for loopback), and each client connects with the URL its
//! environment holds:
//!
//! - the API (`url`) is its own user and reads and writes, but no admin
//!   command runs as it;
//! - the reports (`read_url` only) read, and write nothing;
//! - a wrong password is refused, and the default user (the server's
//!   password: its health check, replicas and sentinels) still works.

use std::fs;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{
    compose_environment, compose_resolved, options, require, write_artifacts, Running,
};

const STACK: &str = r#"
stack cachey

secret cache_password

service cache: redis_auth {
  password = secret.cache_password
  roles = per_service
}

service api {
  image = "api:1"
  env { REDIS_URL = cache.url }
}

service reports {
  image = "reports:1"
  env { REDIS_URL = cache.read_url }
}

topology one {
  host a {
    address = "127.0.0.81"
    run = [cache, api, reports]
  }
}
"#;

const ADDRESS: &str = "127.0.0.81";
const PORT: u16 = 26391;

const SECRETS: [(&str, &str); 3] = [
    ("CACHE_PASSWORD", "server-secret"),
    ("CACHE_API_PASSWORD", "api-secret"),
    ("CACHE_REPORTS_PASSWORD", "reports-secret"),
];

/// redis-cli with `url` (made the test's address), on `args`.
fn as_client(url: &str, args: &[&str]) -> String {
    let url = url.replace("@cache:6379", &format!("@{ADDRESS}:{PORT}"));
    let o = Command::new("redis-cli")
        .args(["-u", &url])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("redis-cli: {e}"));
    // redis-cli warns of a password on its command line: the test's own.
    let stderr: String = String::from_utf8_lossy(&o.stderr)
        .lines()
        .filter(|l| !l.starts_with("Warning: Using a password"))
        .collect();
    String::from_utf8_lossy(&o.stdout).trim().to_string() + stderr.trim()
}

#[test]
fn each_client_is_its_own_redis_user_with_its_access() {
    if !require("redis-server") || !require("redis-cli") || !require("docker-compose") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let stack = tmp.path().join("cachey.stack");
    fs::write(&stack, STACK).unwrap_or_else(|e| panic!("{e}"));
    let c = stackc::compile(STACK, &options(&stack));
    assert!(!c.has_errors(), "{:?}", c.diagnostics);
    let out = tmp.path().join("out");
    write_artifacts(&c, &out);
    let doc = compose_resolved(&out.join("one/compose/a.yml"), &SECRETS);
    let cache = &doc["services"]["cache"];
    assert_eq!(cache["command"][0].as_str(), Some("sh"));
    let line = format!(
        "{} --bind {ADDRESS} --port {PORT} --save ''",
        cache["command"][2].as_str().unwrap_or_default()
    );
    let data = tmp.path().join("data");
    fs::create_dir_all(&data).unwrap_or_else(|e| panic!("{e}"));
    let _server = Running(
        Command::new("sh")
            .args(["-c", &line])
            .current_dir(&data)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(compose_environment(cache))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("sh: {e}")),
    );
    // redis-cli reads an empty user as one named ""; the server's clients
    // (redis-py, ioredis) as the default user.
    let server = "redis://default:server-secret@cache:6379";
    let deadline = Instant::now() + Duration::from_secs(10);
    while as_client(server, &["PING"]) != "PONG" {
        assert!(Instant::now() < deadline, "redis-server does not answer");
        std::thread::sleep(Duration::from_millis(100));
    }

    let api = compose_environment(&doc["services"]["api"])["REDIS_URL"].clone();
    let reports = compose_environment(&doc["services"]["reports"])["REDIS_URL"].clone();
    assert!(api.starts_with("redis://api:api-secret@"), "{api}");
    assert_eq!(as_client(&api, &["ACL", "WHOAMI"]), "api");
    assert_eq!(as_client(&api, &["SET", "greeting", "hello"]), "OK");
    assert_eq!(as_client(&reports, &["GET", "greeting"]), "hello");
    for (who, url, args) in [
        ("reports", &reports, &["SET", "greeting", "bye"][..]),
        ("reports", &reports, &["DEL", "greeting"][..]),
        ("api", &api, &["CONFIG", "GET", "requirepass"][..]),
        ("api", &api, &["ACL", "LIST"][..]),
    ] {
        let answer = as_client(url, args);
        assert!(answer.contains("NOPERM"), "{who} {args:?}: {answer}");
    }
    assert_eq!(as_client(server, &["GET", "greeting"]), "hello");
    let wrong = api.replace("api-secret", "guess");
    let answer = as_client(&wrong, &["PING"]);
    assert!(answer.contains("WRONGPASS"), "{answer}");
}
