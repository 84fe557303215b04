//! Redis replication over TLS with a password (the stdlib kind `redis_tls`,
//! seed guide 003), run with the real redis-server: the master and the replica
//! start with exactly the shell lines of their compose commands (the mounted
//! certificate directory mapped to the test's, the listening address set), with
//! certificates signed by a CA the test makes. The plain port is off, a client
//! without the password is refused, the replica authenticates to its master
//! over TLS, replays writes and refuses its own, and a client reads from it with
//! the generated `read_url`'s scheme (`rediss://`).

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_norway::Value;

use crate::support::{artifact, options, require, wait_for, write_artifacts, Running};

const MASTER: &str = "127.0.0.81";
const REPLICA: &str = "127.0.0.82";
const PORT: u16 = 6380;
const PASSWORD: &str = "tls-cache-secret";

const STACK: &str = r#"
stack secured

secret redis_password

service cache: redis_tls {
  password = secret.redis_password
}

service app {
  image = "app:1"
  env {
    REDIS_URL = cache.url
    REDIS_READ_URL = cache.read_url
  }
}

topology pair {
  host main {
    address = "127.0.0.81"
    run = [cache, app]
  }
  host replica {
    address = "127.0.0.82"
    run = [cache, app]
  }
  override cache { ha = replica }
}
"#;

pub(crate) fn openssl(args: &[&str], dir: &Path) {
    let o = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("openssl: {e}"));
    assert!(
        o.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A CA, and a certificate it signs for the addresses: `ca.crt`,
/// `NAME.crt` and `NAME.key`, as a TLS kind mounts them.
pub(crate) fn certificates(dir: &Path, name: &str, ips: &[&str]) {
    openssl(
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=stackc test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
        ],
        dir,
    );
    openssl(
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            &format!("/CN={name}"),
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
        ],
        dir,
    );
    fs::write(
        dir.join("san.ext"),
        format!(
            "subjectAltName = {}\n",
            ips.iter()
                .map(|ip| format!("IP:{ip}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    openssl(
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            "san.ext",
            "-out",
            &format!("{name}.crt"),
        ],
        dir,
    );
}

/// The shell line of a compose service's command, as its shell receives it.
fn shell_line(compose: &str) -> String {
    let v: Value = serde_norway::from_str(compose).unwrap_or_else(|e| panic!("{e}"));
    let cmd = &v["services"]["cache"]["command"];
    assert_eq!(cmd[0].as_str(), Some("sh"), "{compose}");
    cmd[2].as_str().unwrap_or_default().replace("$$", "$")
}

fn start(line: &str, tls: &Path, data: &Path, bind: &str) -> Running {
    let line = line.replace("/tls/", &format!("{}/", tls.display()));
    let line = format!("{line} --bind {bind} --save ''");
    let child = Command::new("sh")
        .args(["-c", &line])
        .current_dir(data)
        .env("REDIS_PASSWORD", PASSWORD)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("sh: {e}"));
    Running(child)
}

/// redis-cli over TLS, trusting the test's CA; with or without the password.
fn cli(tls: &Path, host: &str, password: bool, args: &[&str]) -> String {
    let mut c = Command::new("redis-cli");
    c.args(["--tls", "--cacert"])
        .arg(tls.join("ca.crt"))
        .args(["-h", host, "-p", &PORT.to_string()])
        .args(args);
    if password {
        c.env("REDISCLI_AUTH", PASSWORD);
    }
    let o = c.output().unwrap_or_else(|e| panic!("redis-cli: {e}"));
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}

#[test]
fn redis_replicates_over_tls_with_a_password() {
    if !require("redis-server") || !require("redis-cli") || !require("openssl") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let compilation = stackc::compile(STACK, &options(&tmp.path().join("secured.stack")));
    assert!(!compilation.has_errors(), "{:?}", compilation.diagnostics);
    let main = artifact(&compilation, "pair/compose/main.yml");
    let replica = artifact(&compilation, "pair/compose/replica.yml");
    // Clients connect with TLS and the password, from the secret.
    let secret = "${REDIS_PASSWORD:?secret redis_password is not set}";
    assert!(
        replica.contains(&format!("REDIS_URL: \"rediss://:{secret}@{MASTER}:6380\"")),
        "{replica}"
    );
    assert!(
        replica.contains(&format!(
            "REDIS_READ_URL: \"rediss://:{secret}@cache:6380\""
        )),
        "{replica}"
    );
    assert!(!main.contains(PASSWORD) && !replica.contains(PASSWORD));
    if require("docker-compose") {
        let out = tmp.path().join("out");
        write_artifacts(&compilation, &out);
        for host in ["main", "replica"] {
            let f = out.join(format!("pair/compose/{host}.yml"));
            let o = Command::new("docker-compose")
                .arg("-f")
                .arg(&f)
                .args(["config", "-q"])
                .env("REDIS_PASSWORD", PASSWORD)
                .output()
                .unwrap_or_else(|e| panic!("docker-compose: {e}"));
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        }
    }

    let tls = tmp.path().join("tls");
    let (master_data, replica_data) = (tmp.path().join("m"), tmp.path().join("r"));
    for d in [&tls, &master_data, &replica_data] {
        fs::create_dir_all(d).unwrap_or_else(|e| panic!("{e}"));
    }
    certificates(&tls, "redis", &[MASTER, REPLICA]);
    let _master = start(&shell_line(&main), &tls, &master_data, MASTER);
    let _replica = start(&shell_line(&replica), &tls, &replica_data, REPLICA);

    wait_for(
        "the master answers over TLS",
        Duration::from_secs(10),
        || cli(&tls, MASTER, true, &["ping"]).contains("PONG"),
    );
    // TLS only: a plain connection gets no answer.
    let plain = Command::new("redis-cli")
        .args(["-h", MASTER, "-p", &PORT.to_string(), "ping"])
        .env("REDISCLI_AUTH", PASSWORD)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!String::from_utf8_lossy(&plain.stdout).contains("PONG"));
    // The password is required.
    let anonymous = cli(&tls, MASTER, false, &["set", "k", "anonymous"]);
    assert!(anonymous.contains("NOAUTH"), "{anonymous}");

    // The replica authenticates over TLS and announces its own address.
    wait_for("the replica is online", Duration::from_secs(30), || {
        let info = cli(&tls, MASTER, true, &["info", "replication"]);
        info.contains(&format!("ip={REPLICA},port=6380,state=online"))
    });
    assert!(cli(&tls, MASTER, true, &["set", "k", "over-tls"]).contains("OK"));
    assert_eq!(cli(&tls, MASTER, true, &["wait", "1", "5000"]).trim(), "1");
    assert_eq!(cli(&tls, REPLICA, true, &["get", "k"]).trim(), "over-tls");
    let refused = cli(&tls, REPLICA, true, &["set", "k", "on-replica"]);
    assert!(refused.contains("READONLY"), "{refused}");
}
