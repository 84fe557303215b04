//! Who a streaming-replicated PostgreSQL lets in: its generated `pg_hba.conf`
//! loaded by a real server in a "container" behind its host, as compose runs
//! it, and clients connecting from hosts of a LAN in network namespaces.
//! The server is reached the way Docker publishes it (DNAT from the host's
//! address, so the client's address is kept); the firewall is not loaded, so
//! what is refused is refused by PostgreSQL itself.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use crate::netns::Lab;
use crate::postgres_streaming::{as_postgres, ok, own, scratch, PG_PROGRAMS};
use crate::support::{options, require, write_artifacts};

const STACK: &str = r#"stack access

secret db_password
secret replication_password

service db: postgres {
  password = secret.db_password
}

service api {
  image = "api:1"
  env {
    DATABASE_URL = db.url
  }
}

topology pair {
  host data {
    address = "10.79.0.1"
    run = [db]
  }
  host app {
    address = "10.79.0.2"
    run = [api]
  }
  host replica {
    address = "10.79.0.4"
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

const PASSWORD: &str = "access-test-pw";

/// The primary lets in its consumer's host and the containers beside it,
/// with the password only, and refuses another host of the LAN by its
/// `pg_hba`.
#[test]
fn the_primary_lets_in_its_readers_only() {
    let programs = ["ip", "runuser"].iter().chain(PG_PROGRAMS.iter());
    if !programs.into_iter().all(|p| require(p)) {
        return;
    }
    let tmp = scratch();
    let compilation = stackc::compile(STACK, &options(&tmp.path().join("access.stack")));
    assert!(!compilation.has_errors(), "{:?}", compilation.diagnostics);
    let out = tmp.path().join("out");
    write_artifacts(&compilation, &out);
    let hba = out.join("pair/db/data/pg_hba.conf");

    let mut lab = Lab::new("pg");
    network(&mut lab);
    let data = tmp.path().join("data");
    let socket = tmp.path().join("socket");
    fs::create_dir_all(&socket).expect("access test step");
    own(tmp.path());
    ok(as_postgres(
        "initdb",
        &[
            "-D",
            &data.display().to_string(),
            "-U",
            "postgres",
            "-A",
            "trust",
            "--no-sync",
        ],
        &[],
    ));
    let _server = Server::start(&lab, &data, &hba, &socket);
    let set = format!("ALTER USER postgres PASSWORD '{PASSWORD}'");
    let sock = socket.display().to_string();
    ok(as_postgres(
        "psql",
        &["-h", &sock, "-U", "postgres", "-c", &set],
        &[],
    ));

    let by_host = psql(&lab, "app", "10.79.0.1", PASSWORD);
    assert!(
        by_host.status.success(),
        "the consumer's host is let in: {}",
        String::from_utf8_lossy(&by_host.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&by_host.stdout).trim(),
        "10.79.0.2",
        "the server sees the consumer's own address"
    );
    let beside = psql(&lab, "beside", "172.30.9.2", PASSWORD);
    assert!(
        beside.status.success(),
        "a container of the same compose network is let in: {}",
        String::from_utf8_lossy(&beside.stderr)
    );
    refused(
        &psql(&lab, "other", "10.79.0.1", PASSWORD),
        "no pg_hba.conf entry for host \"10.79.0.3\"",
        "another host of the LAN",
    );
    refused(
        &psql(&lab, "app", "10.79.0.1", "wrong"),
        "password authentication failed",
        "the consumer's host without the password",
    );
}

/// Hosts `data`, `app` and `other` on one LAN; PostgreSQL's "container"
/// `pg` and a second one, `beside`, on a bridge of `data`, published as
/// Docker publishes a port.
fn network(lab: &mut Lab) {
    for ns in ["lan", "data", "app", "other", "pg", "beside"] {
        lab.add(ns);
    }
    lab.exec("lan", &["ip", "link", "add", "br0", "type", "bridge"]);
    lab.exec("lan", &["ip", "link", "set", "br0", "up"]);
    for (ns, addr) in [
        ("data", "10.79.0.1/24"),
        ("app", "10.79.0.2/24"),
        ("other", "10.79.0.3/24"),
    ] {
        let port = format!("p-{ns}");
        lab.link((ns, "eth0", addr), ("lan", &port));
        lab.exec("lan", &["ip", "link", "set", &port, "master", "br0"]);
    }
    lab.exec("data", &["ip", "link", "add", "br-pg", "type", "bridge"]);
    lab.exec(
        "data",
        &["ip", "addr", "add", "172.30.9.1/24", "dev", "br-pg"],
    );
    lab.exec("data", &["ip", "link", "set", "br-pg", "up"]);
    for (ns, addr) in [("pg", "172.30.9.2/24"), ("beside", "172.30.9.3/24")] {
        let port = format!("v-{ns}");
        lab.link((ns, "eth0", addr), ("data", &port));
        lab.exec("data", &["ip", "link", "set", &port, "master", "br-pg"]);
        lab.exec(ns, &["ip", "route", "add", "default", "via", "172.30.9.1"]);
    }
    lab.exec("data", &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    let nat = "table ip docker-like {\n chain prerouting {\n  type nat hook prerouting priority dstnat;\n  ip daddr 10.79.0.1 tcp dport 5432 dnat to 172.30.9.2\n }\n}\n";
    lab.exec("data", &["nft", nat]);
}

/// PostgreSQL in the namespace `pg` on the generated `pg_hba.conf`, stopped
/// when dropped.
struct Server(std::path::PathBuf);

impl Server {
    fn start(lab: &Lab, data: &Path, hba: &Path, socket: &Path) -> Server {
        let log = data.with_extension("log");
        let opts = format!(
            "-c hba_file={} -c listen_addresses=* -c port=5432 -c unix_socket_directories={}",
            hba.display(),
            socket.display()
        );
        let d = data.display().to_string();
        let l = log.display().to_string();
        let args = ["-D", &d, "-w", "-t", "30", "-l", &l, "-o", &opts, "start"];
        let o = in_namespace(lab, "pg", as_postgres("pg_ctl", &args, &[]))
            .output()
            .expect("access test step");
        assert!(
            o.status.success(),
            "postgres: {}",
            fs::read_to_string(&log).unwrap_or_default()
        );
        Server(data.to_path_buf())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let d = self.0.display().to_string();
        let args = ["-D", &d, "-m", "immediate", "stop"];
        let _ = as_postgres("pg_ctl", &args, &[]).output();
    }
}

/// `command` run in the namespace `name`.
fn in_namespace(lab: &Lab, name: &str, command: Command) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", &lab.ns(name)]);
    c.arg(command.get_program()).args(command.get_args());
    c
}

/// A query from the namespace `from` to `address`, over TCP with `password`:
/// the client's address as the server sees it.
fn psql(lab: &Lab, from: &str, address: &str, password: &str) -> Output {
    let mut c = Command::new("env");
    c.args([
        format!("PGPASSWORD={password}"),
        "PGCONNECT_TIMEOUT=3".into(),
        "psql".into(),
        "-h".into(),
        address.into(),
        "-U".into(),
        "postgres".into(),
        "-d".into(),
        "postgres".into(),
        "-Atc".into(),
        "SELECT host(inet_client_addr())".into(),
    ]);
    in_namespace(lab, from, c)
        .output()
        .expect("access test step")
}

fn refused(out: &Output, why: &str, who: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains(why),
        "{who} is refused ({why}): {stderr}"
    );
}
